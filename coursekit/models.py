"""The small networks the course trains, each named for what it is.

Every model takes the shape of one example and the number of classes, so the
same class serves the 8x8 digits ``(1, 8, 8)``, MNIST ``(1, 28, 28)``, CIFAR-10
``(3, 32, 32)`` and the 2-D synthetic sets ``(2,)``; pass ``data.input_shape``
and ``data.num_classes`` from ``coursekit.data.load``. Every model returns
logits ``z`` (no softmax): ``cross_entropy(z, y)`` applies ``log softmax`` itself.

====================  =======================================================
model                 where the course uses it
====================  =======================================================
LogisticRegression    the convex baseline: ``z = W x + b``
MLP                   one hidden layer of 128 units, tanh or ReLU, as in a
                      student presentation of Chandra et al. (2022)
BatchNormMLP          hidden layers with BatchNorm and dropout, as on the
                      STAT 453 slides (Raschka, 2021)
SmallCNN              the presentation's CIFAR-10 network: two 3x3
                      convolutions of 16 filters, then the MLP's head
ResNet                a CIFAR-style residual network (He et al., 2016), 6n+2 layers
====================  =======================================================

A model checks the shape of its input and says what it expected, so that
digits fed to an MNIST-sized model fail with a readable message.

References
----------
.. [1] A student presentation of Chandra et al. (2022): final presentation on "Gradient
   Descent: The Ultimate Optimizer", with a running-mean gradient-norm clipping rule for the
   top-level step size. [chandra2022presentation]
.. [2] Raschka, S. (2021). Lecture 12: Improving gradient descent-based optimization.
   Lecture slides, STAT 453: Introduction to Deep Learning and Generative Models, University
   of Wisconsin–Madison, Spring 2021. [raschka2021stat453]
.. [3] He, K., Zhang, X., Ren, S. and Sun, J. (2016). Deep residual learning for image
   recognition. CVPR 2016, 770–778. doi:10.1109/CVPR.2016.90. arXiv:1512.03385. [he2016deep]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from coursekit import _checks as checks

__all__ = [
    "MLP",
    "BatchNormMLP",
    "LogisticRegression",
    "ResNet",
    "SmallCNN",
    "available",
    "create",
    "num_parameters",
]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def num_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """How many scalar parameters ``model`` has (only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class _Classifier(nn.Module):
    """Shared plumbing: validate and keep the shapes, check inputs, run ``self.layers``."""

    layers: nn.Module

    def __init__(self, input_shape: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.input_shape = checks.integers("input_shape", input_shape, minimum=1)
        self.num_classes = checks.integer("num_classes", num_classes, minimum=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(n, num_classes)`` for inputs of shape ``(n, *input_shape)``."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"x must be of shape (n, {', '.join(map(str, self.input_shape))}) "
                             f"for {type(self).__name__}, got shape {tuple(x.shape)}")
        return self.layers(x)

    def extra_repr(self) -> str:
        return f"input_shape={self.input_shape}, num_classes={self.num_classes}"


def _activation(name: str) -> nn.Module:
    return _ACTIVATIONS[checks.choice("activation", name, sorted(_ACTIVATIONS))]()


def _widths(argument: str, value: int | Sequence[int]) -> list[int]:
    """One layer width or a list of them, each an integer >= 1."""
    if isinstance(value, (list, tuple)):
        return list(checks.integers(argument, value, minimum=1))
    return [checks.integer(argument, value, minimum=1)]


def _image_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """``input_shape`` if it has three entries ``(C, H, W)``."""
    if len(input_shape) != 3:
        raise checks.invalid("input_shape", "an image shape (C, H, W)", input_shape)
    return input_shape


class LogisticRegression(_Classifier):
    """Multinomial logistic regression: ``z = W x + b``, ``p(y = k | x) = softmax(z)_k``.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one example; it is flattened to ``d = prod(input_shape)`` features.
    num_classes : int
        ``K``; ``W`` is ``K x d``.
    """

    def __init__(self, input_shape: Sequence[int] = (1, 8, 8), num_classes: int = 10) -> None:
        super().__init__(input_shape, num_classes)
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(self.input_shape),
                                                            num_classes))


class MLP(_Classifier):
    """A fully connected network: ``h = act(W1 x + b1)``, ``z = W2 h + b2``.

    The default is the network of a student presentation of Chandra et al. (2022):
    one hidden layer of 128 units. A sequence ``hidden=(h1, h2, ...)`` stacks more
    hidden layers, each followed by ``act``.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one example, flattened to ``prod(input_shape)`` features.
    num_classes : int
        Number of outputs.
    hidden : int or sequence of int
        Width of the hidden layer(s).
    activation : {"relu", "tanh"}
        The nonlinearity ``act``.

    References
    ----------
    .. [1] A student presentation of Chandra et al. (2022): final presentation on
       "Gradient Descent: The Ultimate Optimizer", with a running-mean gradient-norm
       clipping rule for the top-level step size. [chandra2022presentation]
    """

    def __init__(self, input_shape: Sequence[int] = (1, 8, 8), num_classes: int = 10,
                 hidden: int | Sequence[int] = 128, activation: str = "relu") -> None:
        super().__init__(input_shape, num_classes)
        widths = [math.prod(self.input_shape), *_widths("hidden", hidden)]
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in itertools.pairwise(widths):
            layers += [nn.Linear(fan_in, fan_out), _activation(activation)]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.layers = nn.Sequential(*layers)


class BatchNormMLP(_Classifier):
    """A regularised MLP: each hidden layer is Linear -> BatchNorm -> ReLU -> Dropout.

    The network of the STAT 453 slides (Raschka, 2021).

    For a minibatch, BatchNorm standardises every unit ``a`` of ``W x`` with the
    batch's mean and variance, then rescales: ``BN(a) = gamma (a - mu_B) /
    sqrt(sigma_B^2 + eps) + beta`` (running averages replace ``mu_B``, ``sigma_B``
    in ``eval()`` mode). Because ``beta`` shifts every unit, the Linear layers
    before BatchNorm carry no bias of their own. Dropout zeroes each unit with
    probability ``dropout`` in training and scales the rest by ``1 / (1 - dropout)``.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one example, flattened.
    num_classes : int
        Number of outputs.
    hidden : int or sequence of int
        Widths of the hidden layers (default two of 128).
    dropout : float in [0, 1)
        Drop probability (the slides use 0.5).

    References
    ----------
    .. [1] Raschka, S. (2021). Lecture 12: Improving gradient descent-based
       optimization. Lecture slides, STAT 453: Introduction to Deep Learning and
       Generative Models, University of Wisconsin–Madison, Spring 2021.
       [raschka2021stat453]
    """

    def __init__(self, input_shape: Sequence[int] = (1, 8, 8), num_classes: int = 10,
                 hidden: int | Sequence[int] = (128, 128), dropout: float = 0.5) -> None:
        super().__init__(input_shape, num_classes)
        checks.in_unit_interval("dropout", dropout, open_high=True)
        widths = [math.prod(self.input_shape), *_widths("hidden", hidden)]
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in itertools.pairwise(widths):
            layers += [nn.Linear(fan_in, fan_out, bias=False), nn.BatchNorm1d(fan_out),
                       nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.layers = nn.Sequential(*layers)


class SmallCNN(_Classifier):
    """A small CNN: two 3x3 convolutions of 16 filters, then the MLP head.

    The CIFAR-10 network of a student presentation of Chandra et al. (2022).

    ``a1 = act(conv3x3(x))``, ``a2 = act(conv3x3(a1))`` (padding 1, stride 1, so
    the image keeps its ``H x W`` size), then ``z = W2 act(W1 flatten(a2) + b1) + b2``
    with ``hidden`` units, as in :class:`MLP`.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)``.
    num_classes : int
        Number of outputs.
    channels : int
        Filters per convolution (16 in the presentation).
    hidden : int
        Width of the head's hidden layer (128).
    activation : {"relu", "tanh"}
        The nonlinearity.

    References
    ----------
    .. [1] A student presentation of Chandra et al. (2022): final presentation on
       "Gradient Descent: The Ultimate Optimizer", with a running-mean gradient-norm
       clipping rule for the top-level step size. [chandra2022presentation]
    """

    def __init__(self, input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10,
                 channels: int = 16, hidden: int = 128, activation: str = "relu") -> None:
        super().__init__(input_shape, num_classes)
        in_channels, height, breadth = _image_shape(self.input_shape)
        width = checks.integer("channels", channels, minimum=1)
        units = checks.integer("hidden", hidden, minimum=1)
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=3, padding=1), _activation(activation),
            nn.Conv2d(width, width, kernel_size=3, padding=1), _activation(activation),
            nn.Flatten(),
            nn.Linear(width * height * breadth, units), _activation(activation),
            nn.Linear(units, num_classes),
        )


class _ResidualBlock(nn.Module):
    """``out = relu(F(x) + S(x))`` with ``F = conv-BN-relu-conv-BN``.

    The shortcut ``S`` is the identity, or a strided 1x1 convolution with BatchNorm
    when the block changes the width or halves the image.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.residual(x) + self.shortcut(x))


class ResNet(_Classifier):
    """A residual network for CIFAR-sized images (He et al., 2016, section 4.2).

    A 3x3 convolution to ``widths[0]`` channels, then three stages of ``n``
    residual blocks with ``widths = (16, 32, 64)`` channels (the second and third
    stage halve the image), global average pooling and one linear layer:
    ``6n + 2`` weighted layers, so ``depth=20`` is ResNet-20 and ``depth=8`` a
    quick one for a CPU. Convolutions carry no bias (BatchNorm follows each).

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)``, e.g. ``(3, 32, 32)``.
    num_classes : int
        Number of outputs.
    depth : int
        ``6n + 2`` for an integer ``n >= 1``: 8, 14, 20, 32, 44, 56...
    widths : tuple of three ints
        Channels of the three stages.

    References
    ----------
    .. [1] He, K., Zhang, X., Ren, S. and Sun, J. (2016). Deep residual learning for
       image recognition. CVPR 2016, 770–778. doi:10.1109/CVPR.2016.90.
       arXiv:1512.03385. [he2016deep]
    """

    def __init__(self, input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10,
                 depth: int = 20, widths: Sequence[int] = (16, 32, 64)) -> None:
        super().__init__(input_shape, num_classes)
        _image_shape(self.input_shape)
        if checks.integer("depth", depth, minimum=8) % 6 != 2:
            raise checks.invalid("depth", "6n + 2 with n >= 1 (8, 14, 20, ...)", depth)
        widths = checks.integers("widths", widths, minimum=1, length=3)
        blocks_per_stage = (depth - 2) // 6
        layers: list[nn.Module] = [
            nn.Conv2d(self.input_shape[0], widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        ]
        in_channels = widths[0]
        for stage, out_channels in enumerate(widths):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(_ResidualBlock(in_channels, out_channels, stride))
                in_channels = out_channels
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, num_classes)]
        self.layers = nn.Sequential(*layers)


_REGISTRY: dict[str, type[_Classifier]] = {
    "batchnorm_mlp": BatchNormMLP,
    "logistic_regression": LogisticRegression,
    "mlp": MLP,
    "resnet": ResNet,
    "small_cnn": SmallCNN,
}


def available() -> list[str]:
    """Names accepted by :func:`create`, sorted."""
    return sorted(_REGISTRY)


def create(name: str, input_shape: Sequence[int], num_classes: int, **options: Any) -> nn.Module:
    """Build a model by name: ``create("mlp", data.input_shape, data.num_classes, hidden=64)``."""
    key = name.lower().replace("-", "_") if isinstance(name, str) else name
    return _REGISTRY[checks.choice("name", key, available())](input_shape, num_classes, **options)
