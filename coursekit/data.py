"""Datasets as in-memory tensors, split with a fixed seed, and a fast batch iterator.

Every dataset the course uses fits in memory, so it is loaded once into two
tensors and stays there (on the GPU when there is one)::

    data = coursekit.data.load("digits")            # real data, bundled, no download
    data.train.x.shape                               # torch.Size([1293, 1, 8, 8])
    for xb, yb in data.train.batches(batch_size=64):
        ...

Names (``available()``):

=================  ================  =============================================
name               one example       source
=================  ================  =============================================
``digits``         ``(1, 8, 8)``     scikit-learn's bundled 8x8 handwritten digits
``mnist``          ``(1, 28, 28)``   ``torchvision.datasets.MNIST``
``fashion_mnist``  ``(1, 28, 28)``   ``torchvision.datasets.FashionMNIST``
``cifar10``        ``(3, 32, 32)``   ``torchvision.datasets.CIFAR10``
``two_gaussians``  ``(2,)``          two Gaussian blobs, drawn from ``seed``
``moons``          ``(2,)``          scikit-learn's two interleaving half circles
``circles``        ``(2,)``          scikit-learn's two concentric circles
``spirals``        ``(2,)``          two interleaved Archimedean spirals
=================  ================  =============================================

Labels ``y`` are ``int64`` class indices of shape ``(n,)``; inputs ``x`` are
``float32`` of shape ``(n, *one example)``.

Normalisation. Pixels are scaled to [0, 1] (divided by 255, or by 16 for the
digits), then every channel ``c`` (every feature, for the 2-D sets) is
standardised with statistics of the *training* split only,

    x <- (x - mean_c) / std_c,

so no information leaks from the validation or test split. ``Dataset.mean`` and
``Dataset.std`` keep ``mean_c`` and ``std_c`` so a figure can undo it.

Splits. Where the dataset has an official test set (MNIST, Fashion-MNIST,
CIFAR-10) it is the test split; otherwise ``test_fraction`` of the examples are
drawn at random. ``valid_fraction`` of the remaining training examples become
the validation split. The draws come from ``numpy.random.default_rng(seed)``, and
each split keeps its examples in their original relative order.

Offline first. coursekit never downloads by itself: the torchvision datasets are
looked for under ``root``, else ``$COURSEKIT_DATA``, else ``~/.coursekit/data``
(``data_root()``). When they are missing, ``load`` raises
``DatasetNotFoundError`` saying where to put the files and how to get them,
unless ``fallback="digits"`` was given, in which case it warns once and returns
the digits. ``download=True`` asks torchvision to download when online.

CIFAR-10 integrity. torchvision checks each CIFAR-10 file against the MD5 sum of
the official release. ``verify=False`` skips that check (and only that check:
the files are still read by torchvision's own CIFAR-10 reader), for a re-packed
or reduced copy in the same format, such as the small files the tests write.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal, overload

import numpy as np
import torch

from coursekit import _checks as checks

__all__ = [
    "Batches",
    "Dataset",
    "DatasetCorruptError",
    "DatasetNotFoundError",
    "Split",
    "available",
    "data_root",
    "is_present",
    "load",
    "steps_per_epoch",
]

DEFAULT_ROOT = Path("~/.coursekit/data")
SYNTHETIC = ("two_gaussians", "moons", "circles", "spirals")
TORCHVISION = ("mnist", "fashion_mnist", "cifar10")

_TORCHVISION_CLASS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}
_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CIFAR10_FOLDER = "cifar-10-batches-py"
_CIFAR10_FILES = (
    *(f"data_batch_{i}" for i in range(1, 6)),
    "test_batch",
    "batches.meta",
)
_SYNTHETIC_NOISE = {"two_gaussians": 1.0, "moons": 0.1, "circles": 0.05, "spirals": 0.2}
_FALLBACK_WARNED: set[tuple[str, str]] = set()


class DatasetNotFoundError(FileNotFoundError):
    """A torchvision dataset is not on disk where coursekit looked for it."""


class DatasetCorruptError(RuntimeError):
    """The dataset's files are present but torchvision rejected them (checksum or format)."""


def available() -> list[str]:
    """The dataset names ``load`` accepts, sorted."""
    return sorted(["digits", *TORCHVISION, *SYNTHETIC])


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where the torchvision datasets are looked for: ``root``, ``$COURSEKIT_DATA``, a default.

    The default is ``~/.coursekit/data``. The path is returned expanded, whether or
    not it exists.
    """
    if root is None:
        root = os.environ.get("COURSEKIT_DATA") or DEFAULT_ROOT
    return Path(root).expanduser()


def is_present(name: str, root: str | os.PathLike | None = None) -> bool:
    """True when ``load(name, root=root)`` will find its files without downloading."""
    name = _dataset_name("name", name)
    return name not in TORCHVISION or not _missing_files(name, data_root(root))


# ----------------------------------------------------------------------------- records


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """One part of a dataset: inputs ``x`` and integer labels ``y``, in memory.

    Attributes
    ----------
    x : torch.Tensor
        ``float32`` inputs of shape ``(n, *input_shape)``, normalised.
    y : torch.Tensor
        ``int64`` class labels of shape ``(n,)``, in ``[0, num_classes)``.
    name : str
        The dataset's name (``"digits"``...).
    part : str
        ``"train"``, ``"valid"`` or ``"test"``.
    classes : tuple of str
        The class names; ``classes[k]`` is the name of label ``k``.
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str
    part: str
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        checks.length("y", self.y, len(self.x), "targets, one per row of x")

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return (f"Split({self.name!r}, {self.part!r}, x={tuple(self.x.shape)} {self.x.dtype}, "
                f"y={tuple(self.y.shape)}, {self.num_classes} classes, on {self.x.device})")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example, e.g. ``(1, 8, 8)``."""
        return tuple(self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        """How many classes the labels range over."""
        return len(self.classes)

    @property
    def device(self) -> torch.device:
        """The device the tensors live on."""
        return self.x.device

    def to(self, device: torch.device | str) -> Split:
        """The same split with its tensors on ``device`` (``self`` if already there)."""
        device = torch.device(device)
        if self.x.device == device and self.y.device == device:
            return self
        return dataclasses.replace(self, x=self.x.to(device), y=self.y.to(device))

    def batches(self, batch_size: int = 128, shuffle: bool = True, drop_last: bool = False,
                seed: int = 0) -> Batches:
        """A :class:`Batches` iterator over this split."""
        return Batches(self.x, self.y, batch_size, shuffle=shuffle, drop_last=drop_last,
                       seed=seed)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset split three ways, with the statistics used to normalise it.

    Attributes
    ----------
    name : str
        The dataset's name.
    train, valid, test : Split
        The three parts (``valid`` is empty when ``valid_fraction=0``).
    classes : tuple of str
        Class names, shared by the three parts.
    mean, std : tuple of float
        Per-channel (per-feature) statistics of the training split that were
        subtracted and divided out: ``x = (x_raw - mean_c) / std_c``.
    """

    name: str
    train: Split
    valid: Split
    test: Split
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}: train {len(self.train)}, valid {len(self.valid)}, "
                f"test {len(self.test)}; input_shape={self.input_shape}, "
                f"{self.num_classes} classes, on {self.train.device})")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example, e.g. ``(1, 28, 28)``."""
        return self.train.input_shape

    @property
    def num_classes(self) -> int:
        """How many classes there are."""
        return len(self.classes)

    def to(self, device: torch.device | str) -> Dataset:
        """The same dataset with every split on ``device``."""
        return dataclasses.replace(self, train=self.train.to(device), valid=self.valid.to(device),
                                   test=self.test.to(device))

    def split(self, part: str) -> Split:
        """The split named ``part``: ``"train"``, ``"valid"`` or ``"test"``."""
        return getattr(self, checks.choice("part", part, ("train", "valid", "test")))


# ----------------------------------------------------------------------------- batches


def steps_per_epoch(examples: int, batch_size: int, *, drop_last: bool = False) -> int:
    """The batches (optimizer steps) in one epoch of ``examples`` at ``batch_size``: the
    last, smaller batch counts unless ``drop_last``, as :class:`Batches` yields them."""
    examples = checks.integer("examples", examples, minimum=0)
    batch_size = checks.integer("batch_size", batch_size, minimum=1)
    return examples // batch_size if drop_last else math.ceil(examples / batch_size)


class Batches:
    """Minibatches of in-memory tensors, shuffled by index on the tensors' device.

    Each epoch draws one permutation ``order`` of ``0..n-1`` and yields
    ``(x[order[i:i+b]], y[order[i:i+b]])`` for ``i = 0, b, 2b, ...``: one indexing
    operation per batch instead of a Python call per example, which is what a
    ``DataLoader`` over a ``TensorDataset`` does (``benchmarks/loader_speed.py``).

    The permutation of epoch ``e`` comes from a CPU ``torch.Generator`` seeded by
    ``(seed, e)``, so the batches are a pure function of the seed and the epoch
    number: the same on every device, and a run resumed at epoch ``e`` sees the
    same batches as one that never stopped. Iterating advances ``epoch`` by one;
    ``set_epoch`` moves it explicitly.

    Parameters
    ----------
    x, y : torch.Tensor
        Inputs and targets with the same first dimension, on any device.
    batch_size : int
        Examples per batch.
    shuffle : bool
        Draw a fresh order every epoch; otherwise yield contiguous slices in order.
    drop_last : bool
        Skip the final batch when it is smaller than ``batch_size``.
    seed : int
        Seed of the shuffling.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 128,
                 shuffle: bool = True, drop_last: bool = False, seed: int = 0) -> None:
        checks.length("y", y, len(x), "targets, one per row of x")
        self.x, self.y = x, y
        self.batch_size = checks.integer("batch_size", batch_size, minimum=1)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = checks.integer("seed", seed, minimum=0)
        self.epoch = 0

    def __len__(self) -> int:
        return steps_per_epoch(len(self.y), self.batch_size, drop_last=self.drop_last)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the order of ``epoch``."""
        self.epoch = checks.integer("epoch", epoch, minimum=0)

    def order(self, epoch: int) -> torch.Tensor:
        """The permutation of example indices used in ``epoch`` (on the CPU)."""
        generator = torch.Generator().manual_seed(_derive_seed(self.seed, epoch))
        return torch.randperm(len(self.y), generator=generator)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        order = self.order(epoch).to(self.x.device) if self.shuffle else None
        return self._batches(order)

    def _batches(self, order: torch.Tensor | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        stop = len(self) * self.batch_size if self.drop_last else len(self.y)
        for start in range(0, stop, self.batch_size):
            if order is None:
                yield self.x[start:start + self.batch_size], self.y[start:start + self.batch_size]
            else:
                index = order[start:start + self.batch_size]
                yield self.x.index_select(0, index), self.y.index_select(0, index)


def _derive_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed from integer keys, independent of ``hash()``."""
    words = np.random.SeedSequence(list(keys)).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


# ----------------------------------------------------------------------------- load


@overload
def load(name: str = ..., split: None = ..., **options: Any) -> Dataset: ...


@overload
def load(name: str, split: Literal["train", "valid", "test"], **options: Any) -> Split: ...


def load(name: str = "digits", split: str | None = None, *,
         root: str | os.PathLike | None = None, fallback: str | None = None,
         download: bool = False, verify: bool = True, valid_fraction: float = 0.1,
         test_fraction: float = 0.2, seed: int = 0, n_samples: int | None = None,
         noise: float | None = None, device: torch.device | str | None = None,
         ) -> Dataset | Split:
    """Load a dataset into memory, normalised and split with a fixed seed.

    Parameters
    ----------
    name : str
        One of ``available()``; ``"digits"`` needs no download.
    split : {None, "train", "valid", "test"}
        ``None`` returns the whole :class:`Dataset`; a part's name returns that
        :class:`Split` only (normalised with the training statistics all the same).
    root : path, optional
        Folder holding the torchvision datasets (see ``data_root``).
    fallback : str, optional
        A dataset that needs no download (``"digits"``) to return, with a warning
        shown once per process, when ``name`` is not on disk.
    download : bool
        Let torchvision download a missing dataset (needs the internet).
    verify : bool
        Check CIFAR-10's files against the official MD5 sums (see module notes).
    valid_fraction : float in [0, 1)
        Share of the training examples held out for validation.
    test_fraction : float in (0, 1)
        Share of all examples held out for testing, for datasets without an
        official test set (digits and the synthetic sets).
    seed : int
        Seed of the split (and of the synthetic data).
    n_samples : int, optional
        Synthetic sets only: how many examples to draw (default 1000).
    noise : float, optional
        Synthetic sets only: the noise level (defaults: two_gaussians 1.0 (the
        standard deviation around centres (-1, -1) and (1, 1)), moons 0.1,
        circles 0.05, spirals 0.2).
    device : torch.device or str, optional
        Where to put the tensors (default: the CPU).

    Returns
    -------
    Dataset or Split

    Raises
    ------
    DatasetNotFoundError
        A torchvision dataset is missing and no ``fallback`` was given.
    DatasetCorruptError
        Its files are present but torchvision rejects them.
    """
    name = _dataset_name("name", name)
    checks.choice("split", split, (None, "train", "valid", "test"))
    checks.in_unit_interval("valid_fraction", valid_fraction, open_high=True)
    checks.in_unit_interval("test_fraction", test_fraction, open_low=True, open_high=True)
    checks.integer("seed", seed, minimum=0)
    if name not in SYNTHETIC and (n_samples is not None or noise is not None):
        raise ValueError(f"n_samples and noise must be None for {name!r} (they apply to the "
                         f"synthetic sets {SYNTHETIC}), got n_samples={n_samples!r}, "
                         f"noise={noise!r}")
    if fallback is not None and _dataset_name("fallback", fallback) in TORCHVISION:
        raise checks.invalid("fallback", "a dataset that needs no download", fallback)

    common = dict(valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed)
    if name == "digits":
        data = _load_digits(**common)
    elif name in SYNTHETIC:
        data = _load_synthetic(name, n_samples, noise, **common)
    else:
        try:
            data = _load_torchvision(name, data_root(root), download, verify, valid_fraction, seed)
        except DatasetNotFoundError as err:
            if fallback is None:
                raise
            if (name, fallback) not in _FALLBACK_WARNED:
                _FALLBACK_WARNED.add((name, fallback))
                warnings.warn(f"{err.args[0].splitlines()[0]} Using {fallback!r} instead "
                              f"(fallback={fallback!r}).", UserWarning, stacklevel=2)
            return load(fallback, split, valid_fraction=valid_fraction,
                        test_fraction=test_fraction, seed=seed, device=device)
    if device is not None:
        data = data.to(device)
    return data if split is None else data.split(split)


def _dataset_name(argument: str, name: Any) -> str:
    """``name`` in lower case, one of :func:`available` (case-insensitive)."""
    return checks.choice(argument, name.lower() if isinstance(name, str) else name, available())


@functools.cache
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as uint8 pixels 0..16 (n, 1, 8, 8) and labels, read once."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels, labels = bunch.images.astype(np.uint8)[:, None], bunch.target.astype(np.int64)
    pixels.flags.writeable = labels.flags.writeable = False
    return pixels, labels


def _load_digits(valid_fraction: float, test_fraction: float, seed: int) -> Dataset:
    pixels, labels = (torch.tensor(array) for array in _digits_arrays())
    classes = tuple(str(k) for k in range(10))
    return _split_and_normalise("digits", pixels, labels, classes, 16.0, valid_fraction,
                                test_fraction, seed)


def _load_synthetic(name: str, n_samples: int | None, noise: float | None,
                    valid_fraction: float, test_fraction: float, seed: int) -> Dataset:
    n = 1000 if n_samples is None else n_samples
    n = checks.integer("n_samples", n, minimum=10)
    noise = checks.nonnegative("noise", _SYNTHETIC_NOISE[name] if noise is None else noise)
    rng = np.random.default_rng(seed)
    points, labels = _SYNTHETIC_MAKERS[name](n, float(noise), rng)
    x = torch.as_tensor(points, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.int64)
    return _split_and_normalise(name, x, y, ("0", "1"), 1.0, valid_fraction, test_fraction,
                                seed)


def _two_gaussians(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Class k in {0, 1} ~ N(mu_k, noise^2 I) with mu_0 = (-1, -1), mu_1 = (1, 1)."""
    labels = np.arange(n) % 2
    centres = np.where(labels[:, None] == 1, 1.0, -1.0)
    return centres + noise * rng.standard_normal((n, 2)), labels


def _moons(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import make_moons

    return make_moons(n, noise=noise, random_state=int(rng.integers(2**31)))


def _circles(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import make_circles

    return make_circles(n, noise=noise, factor=0.5, random_state=int(rng.integers(2**31)))


def _spirals(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Two arms r = theta, theta in [pi/2, 3 pi], the second rotated by pi, plus noise."""
    labels = np.arange(n) % 2
    theta = rng.uniform(np.pi / 2, 3 * np.pi, n)
    angle = theta + np.pi * labels
    arms = np.stack([theta * np.cos(angle), theta * np.sin(angle)], axis=1) / np.pi
    return arms + noise * rng.standard_normal((n, 2)), labels


_SYNTHETIC_MAKERS = {
    "two_gaussians": _two_gaussians,
    "moons": _moons,
    "circles": _circles,
    "spirals": _spirals,
}


def _split_and_normalise(name: str, x: torch.Tensor, y: torch.Tensor, classes: tuple[str, ...],
                         scale: float, valid_fraction: float, test_fraction: float, seed: int,
                         x_test: torch.Tensor | None = None,
                         y_test: torch.Tensor | None = None) -> Dataset:
    """Hold out test (unless given) and validation examples at random; standardise.

    ``x`` holds raw values (``uint8`` pixels, or floats) of shape ``(n, C, H, W)``
    or ``(n, features)``; they are divided by ``scale`` and standardised with the
    per-channel statistics of the training split.
    """
    rng = np.random.default_rng(seed)
    if x_test is None:
        test, rest = _draw(len(y), test_fraction, rng)
        x_test, y_test = x[test], y[test]
        x, y = x[rest], y[rest]
    valid, train = _draw(len(y), valid_fraction, rng)
    mean, std = _channel_statistics(x[train], scale)

    def part(label: str, values: torch.Tensor, targets: torch.Tensor) -> Split:
        shape = (1, -1, *[1] * (values.ndim - 2))
        normalised = values.to(torch.float32).div_(scale)
        normalised.sub_(mean.float().view(shape)).div_(std.float().view(shape))
        return Split(normalised, targets, name, label, classes)

    return Dataset(name, part("train", x[train], y[train]), part("valid", x[valid], y[valid]),
                   part("test", x_test, y_test), classes, tuple(mean.tolist()),
                   tuple(std.tolist()))


def _channel_statistics(x: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (1/N) standard deviation of ``x / scale`` per channel (dimension 1), float64.

    Two passes over chunks of examples, so that a large uint8 set such as CIFAR-10
    is never copied whole into float64.
    """
    def per_channel(chunk: torch.Tensor) -> torch.Tensor:
        return (chunk.double() / scale).transpose(0, 1).reshape(x.shape[1], -1)

    count = x.numel() // x.shape[1]
    mean = sum(per_channel(chunk).sum(dim=1) for chunk in x.split(1024)) / count
    squares = sum(((per_channel(chunk) - mean[:, None]) ** 2).sum(dim=1)
                  for chunk in x.split(1024))
    return mean, (squares / count).sqrt().clamp_min(1e-12)


def _draw(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a random ``fraction`` of ``range(n)`` and of the rest, each sorted."""
    chosen = np.zeros(n, dtype=bool)
    chosen[rng.permutation(n)[:round(fraction * n)]] = True
    return np.flatnonzero(chosen), np.flatnonzero(~chosen)


# ----------------------------------------------------------------------------- torchvision


def _missing_files(name: str, root: Path) -> list[Path]:
    if name == "cifar10":
        expected = [root / _CIFAR10_FOLDER / file for file in _CIFAR10_FILES]
    else:
        expected = [root / _TORCHVISION_CLASS[name] / "raw" / file for file in _MNIST_FILES]
    return [path for path in expected if not path.is_file()]


def _not_found_message(name: str, root: Path, missing: list[Path]) -> str:
    cls = _TORCHVISION_CLASS[name]
    folder = root / (_CIFAR10_FOLDER if name == "cifar10" else f"{cls}/raw")
    shown = ", ".join(path.name for path in missing[:4]) + (" ..." if len(missing) > 4 else "")
    return (
        f"{name} was not found under {root} (missing in {folder}: {shown}).\n"
        f"coursekit looks in root=..., else $COURSEKIT_DATA, else {DEFAULT_ROOT}.\n"
        f"To get it, on a machine with internet run\n"
        f"    python -c \"import torchvision; torchvision.datasets.{cls}('{root}', "
        f"download=True)\"\n"
        f"(or call coursekit.data.load({name!r}, download=True)), then copy the folder "
        f"{folder.parent if name != 'cifar10' else folder} here.\n"
        f"Offline, pass fallback='digits' to use the bundled 8x8 digits instead."
    )


def _load_torchvision(name: str, root: Path, download: bool, verify: bool,
                      valid_fraction: float, seed: int) -> Dataset:
    missing = _missing_files(name, root)
    if missing and not download:
        raise DatasetNotFoundError(_not_found_message(name, root, missing))
    dataset_class = _torchvision_class(name, verify)
    try:
        train = dataset_class(str(root), train=True, download=download)
        test = dataset_class(str(root), train=False, download=download)
    except Exception as err:  # torchvision reports bad files with asserts, RuntimeError...
        missing = _missing_files(name, root)
        if missing:  # only reachable with download=True: the download failed
            raise DatasetNotFoundError(f"{_not_found_message(name, root, missing)}\n"
                                       f"The download failed: {err}") from err
        hint = " Pass verify=False to skip the MD5 check." if name == "cifar10" else ""
        raise DatasetCorruptError(
            f"{name} files under {root} are present but torchvision rejected them "
            f"({type(err).__name__}: {err}). They may be a partial download or a different "
            f"release; delete them and download again.{hint}") from err

    x_train, x_test = (_images(part.data) for part in (train, test))
    y_train, y_test = (torch.as_tensor(part.targets, dtype=torch.int64) for part in (train, test))
    return _split_and_normalise(name, x_train, y_train, tuple(train.classes), 255.0,
                                valid_fraction, test_fraction=0.0, seed=seed, x_test=x_test,
                                y_test=y_test)


def _images(data: Any) -> torch.Tensor:
    """uint8 images, (n, H, W) or channels-last (n, H, W, C), as uint8 (n, C, H, W)."""
    images = torch.as_tensor(np.asarray(data))
    return images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2).contiguous()


def _torchvision_class(name: str, verify: bool) -> type:
    from torchvision import datasets

    dataset_class = getattr(datasets, _TORCHVISION_CLASS[name])
    if name != "cifar10" or verify:
        return dataset_class

    class UnverifiedCIFAR10(dataset_class):
        """torchvision's CIFAR10 reader with the MD5 sums of the official files removed."""

        train_list: ClassVar = [[file, None] for file, _ in dataset_class.train_list]
        test_list: ClassVar = [[file, None] for file, _ in dataset_class.test_list]
        meta: ClassVar = {**dataset_class.meta, "md5": None}

    return UnverifiedCIFAR10
