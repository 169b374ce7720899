"""coursekit.models: shapes, parameter counts worked out by formula, and forward passes
recomputed by hand from each model's own weights in float64."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from coursekit import models

IMAGE_SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]


def _build(name, shape, num_classes=10, **options):
    if name == "resnet":
        options.setdefault("depth", 8)
    return models.create(name, shape, num_classes, **options)


@pytest.mark.parametrize("shape", IMAGE_SHAPES)
@pytest.mark.parametrize("name", models.available())
def test_every_model_maps_a_batch_to_logits(name, shape):
    model = _build(name, shape, num_classes=7).eval()
    assert model(torch.randn(5, *shape)).shape == (5, 7)


@pytest.mark.parametrize("name", ["logistic_regression", "mlp", "batchnorm_mlp"])
def test_vector_models_take_2d_points(name):
    assert _build(name, (2,), num_classes=2).eval()(torch.randn(4, 2)).shape == (4, 2)


@pytest.mark.parametrize("shape", IMAGE_SHAPES)
def test_parameter_counts_match_the_formulas(shape):
    d, k = math.prod(shape), 10
    channels, height, width = shape
    assert models.num_parameters(models.LogisticRegression(shape, k)) == d * k + k
    assert models.num_parameters(models.MLP(shape, k)) == (d * 128 + 128) + (128 * k + k)
    assert models.num_parameters(models.MLP(shape, k, hidden=(50, 30))) == (
        d * 50 + 50 + 50 * 30 + 30 + 30 * k + k)
    # BatchNorm layers: no Linear bias, a scale gamma and shift beta per unit
    assert models.num_parameters(models.BatchNormMLP(shape, k, hidden=(64, 32))) == (
        d * 64 + 2 * 64 + 64 * 32 + 2 * 32 + 32 * k + k)
    conv = 9 * channels * 16 + 16 + 9 * 16 * 16 + 16
    head = 16 * height * width * 128 + 128 + 128 * k + k
    assert models.num_parameters(models.SmallCNN(shape, k)) == conv + head


def _resnet_parameters(in_channels, depth, widths, k):
    """3x3 stem + BN, then blocks of two 3x3 convs + BNs, 1x1 projection when needed."""
    n = (depth - 2) // 6
    total = 9 * in_channels * widths[0] + 2 * widths[0]
    previous = widths[0]
    for stage, width in enumerate(widths):
        for block in range(n):
            total += 9 * previous * width + 2 * width + 9 * width * width + 2 * width
            if previous != width or (stage > 0 and block == 0):
                total += previous * width + 2 * width
            previous = width
    return total + previous * k + k


@pytest.mark.parametrize(("depth", "in_channels"), [(8, 3), (20, 3), (14, 1)])
def test_resnet_parameter_count_matches_the_formula(depth, in_channels):
    model = models.ResNet((in_channels, 32, 32), 10, depth=depth)
    assert models.num_parameters(model) == _resnet_parameters(in_channels, depth,
                                                              (16, 32, 64), 10)


def test_resnet20_has_the_published_size():
    # He et al. (2016), table 6: ResNet-20 for CIFAR-10 has 0.27M parameters
    assert round(models.num_parameters(models.ResNet(depth=20)) / 1e6, 2) == 0.27


def test_mlp_forward_is_one_hidden_layer_of_tanh():
    model = models.MLP((1, 8, 8), 10, activation="tanh").double()
    first, second = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    x = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    hidden = torch.tanh(x.reshape(6, 64) @ first.weight.T + first.bias)
    expected = hidden @ second.weight.T + second.bias
    assert first.weight.shape == (128, 64)
    torch.testing.assert_close(model(x), expected, rtol=1e-12, atol=1e-12)


def test_small_cnn_forward_is_two_same_padded_convolutions_then_the_head():
    model = models.SmallCNN((3, 32, 32), 10).double()
    conv1, conv2 = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    fc1, fc2 = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    a1 = torch.relu(F.conv2d(x, conv1.weight, conv1.bias, padding=1))
    a2 = torch.relu(F.conv2d(a1, conv2.weight, conv2.bias, padding=1))
    expected = torch.relu(a2.flatten(1) @ fc1.weight.T + fc1.bias) @ fc2.weight.T + fc2.bias
    assert conv1.weight.shape == (16, 3, 3, 3) and conv2.weight.shape == (16, 16, 3, 3)
    torch.testing.assert_close(model(x), expected, rtol=1e-10, atol=1e-10)


def test_batchnorm_mlp_in_eval_mode_uses_running_statistics():
    torch.manual_seed(0)
    model = models.BatchNormMLP((4,), 3, hidden=(5,), dropout=0.5).double()
    model.train()
    for _ in range(3):  # move the running statistics away from (0, 1)
        model(torch.randn(16, 4, dtype=torch.float64) * 3 + 1)
    linear, out = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d))
    model.eval()
    x = torch.randn(8, 4, dtype=torch.float64)
    a = x @ linear.weight.T
    normalised = (a - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
    expected = torch.relu(bn.weight * normalised + bn.bias) @ out.weight.T + out.bias
    assert linear.bias is None
    torch.testing.assert_close(model(x), expected, rtol=1e-10, atol=1e-10)


def test_batchnorm_mlp_drops_units_in_training_only():
    model = models.BatchNormMLP((1, 8, 8), 10, dropout=0.5)
    x = torch.randn(32, 1, 8, 8)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("name", models.available())
def test_every_parameter_receives_a_gradient(name):
    model = _build(name, (3, 16, 16))
    F.cross_entropy(model(torch.randn(4, 3, 16, 16)), torch.tensor([0, 1, 2, 3])).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_resnet_identity_block_adds_its_input():
    block = models._ResidualBlock(8, 8, stride=1).eval()
    x = torch.randn(2, 8, 6, 6)
    assert isinstance(block.shortcut, torch.nn.Identity)
    torch.testing.assert_close(block(x), torch.relu(block.residual(x) + x))


def test_wrong_input_shape_is_reported_with_the_expected_shape():
    with pytest.raises(ValueError, match=r"x must be of shape \(n, 1, 28, 28\) for MLP, got "
                                         r"shape \(3, 1, 8, 8\)"):
        models.MLP((1, 28, 28))(torch.randn(3, 1, 8, 8))


@pytest.mark.parametrize(("build", "match"), [
    (lambda: models.MLP((1, 8, 8), activation="sigmoid"),
     "^activation must be one of 'relu', 'tanh', got 'sigmoid'"),
    (lambda: models.MLP((1, 8, 8), hidden=0), "^hidden must be an integer >= 1, got 0"),
    (lambda: models.MLP((1, 8, 8), hidden=[64, 0]),
     r"^hidden\[1\] must be an integer >= 1, got 0"),
    (lambda: models.MLP("1x8x8"), "^input_shape must be a non-empty sequence .*, got '1x8x8'"),
    (lambda: models.MLP((1, 8, 8), num_classes=1), "^num_classes must be an integer >= 2, got 1"),
    (lambda: models.BatchNormMLP(dropout=1.0), r"^dropout must be in \[0, 1\), got 1\.0"),
    (lambda: models.SmallCNN((64,)), r"^input_shape must be an image shape .*, got \(64,\)"),
    (lambda: models.ResNet(depth=10), r"^depth must be 6n \+ 2 .*, got 10"),
    (lambda: models.ResNet(widths=(16, 32)),
     r"^widths must be a sequence of 3 integers >= 1, got \(16, 32\)"),
    (lambda: models.create("vgg", (3, 32, 32), 10), "^name must be one of .*'mlp'.*, got 'vgg'"),
])
def test_bad_arguments_are_named(build, match):
    with pytest.raises(ValueError, match=match):
        build()
