"""The learning-rate range test on least squares, where the answer is known analytically.

Full-batch gradient descent on the mean squared error of a linear model is stable
exactly when ``lr < 2 / lambda_max(H)``, with ``H = (2/n) A^T A`` the Hessian and
``A = [X, 1]``. Below that rate every eigencomponent of the error shrinks, so the
loss (and its moving average) can only fall: the test must not stop before the
rate has crossed ``2 / lambda_max``, and a good suggestion lies below it.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import pytest
import torch

import coursekit.optim as ck_optim
from coursekit.schedules import lr_find

N, D = 256, 5


def _least_squares(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Anisotropic regression data and the stability limit 2 / lambda_max of full-batch GD."""
    gen = torch.Generator().manual_seed(seed)
    scales = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0], dtype=torch.float64)
    X = torch.randn(N, D, generator=gen, dtype=torch.float64) * scales
    y = X @ torch.randn(D, 1, generator=gen, dtype=torch.float64)
    y += 0.1 * torch.randn(N, 1, generator=gen, dtype=torch.float64)
    A = torch.cat([X, torch.ones(N, 1, dtype=torch.float64)], dim=1)
    lambda_max = torch.linalg.eigvalsh(2.0 / N * A.T @ A).max().item()
    return X, y, 2.0 / lambda_max


def _model(seed: int = 1) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Linear(D, 1).double()


def _sgd_factory(params):
    return torch.optim.SGD(params, lr=1.0)


def test_range_test_stops_only_past_the_stability_limit_and_suggests_a_rate_below_it():
    X, y, limit = _least_squares()
    model = _model()
    result = lr_find(model, torch.nn.functional.mse_loss, (X, y), _sgd_factory,
                     start_lr=1e-5, end_lr=10.0, num_steps=200)

    assert result.stopped_early and len(result.lrs) < 200
    assert result.lrs[-2] > limit                  # the loss cannot explode below 2 / lambda_max
    assert result.smoothed_losses[-1] > 4 * np.min(result.smoothed_losses[:-1])
    assert result.lrs[0] < result.suggestion < min(limit, result.min_loss_lr)
    i = int(np.searchsorted(result.lrs, result.suggestion))
    assert result.smoothed_losses[i + 1] < result.smoothed_losses[i - 1]   # still falling there

    # Independent confirmation: plain GD at the suggested rate makes real progress.
    fresh = _model()
    opt = torch.optim.SGD(fresh.parameters(), lr=result.suggestion)
    start = torch.nn.functional.mse_loss(fresh(X), y).item()
    for _ in range(50):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(fresh(X), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * start


def test_rates_grow_geometrically_from_start_to_end():
    X, y, _ = _least_squares()
    result = lr_find(_model(), torch.nn.functional.mse_loss, (X, y), _sgd_factory,
                     start_lr=1e-6, end_lr=1e-3, num_steps=50)
    assert not result.stopped_early and len(result.lrs) == 50
    assert result.lrs[0] == 1e-6 and result.lrs[-1] == pytest.approx(1e-3, rel=1e-12)
    np.testing.assert_allclose(np.diff(np.log(result.lrs)), math.log(1e3) / 49, rtol=1e-9)


def test_model_parameters_grads_and_mode_are_restored_bit_for_bit():
    X, y, _ = _least_squares()
    model = _model()
    torch.nn.functional.mse_loss(model(X), y).backward()      # leave gradients behind
    model.eval()
    before = copy.deepcopy(model.state_dict())
    grads = [p.grad.clone() for p in model.parameters()]

    lr_find(model, torch.nn.functional.mse_loss, (X, y), _sgd_factory, num_steps=100)

    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    for param, grad in zip(model.parameters(), grads, strict=True):
        assert torch.equal(param.grad, grad)
    assert not model.training


def test_a_given_optimizer_gets_its_rates_and_momentum_buffers_back():
    X, y, _ = _least_squares()
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(X), y).backward()
        opt.step()
    before = copy.deepcopy(opt.state_dict())

    result = lr_find(model, torch.nn.functional.mse_loss, (X, y), opt, num_steps=80)

    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for key, state in before["state"].items():
        assert torch.equal(after["state"][key]["momentum_buffer"], state["momentum_buffer"])
    assert len(result.lrs) > 3


def test_nan_loss_stops_the_test_and_the_model_is_still_restored():
    X, y, _ = _least_squares()
    model = _model()
    before = copy.deepcopy(model.state_dict())
    calls = []

    def poisoned_loss(prediction, target):
        calls.append(None)
        loss = torch.nn.functional.mse_loss(prediction, target)
        return loss * math.nan if len(calls) == 7 else loss

    result = lr_find(model, poisoned_loss, (X, y), _sgd_factory, start_lr=1e-4, end_lr=1e-2,
                     num_steps=100)
    assert result.stopped_early and len(result.losses) == 7 and math.isnan(result.losses[-1])
    assert np.isfinite(result.min_loss_lr)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_model_is_restored_when_the_loss_function_raises():
    X, y, _ = _least_squares()
    model = _model()
    before = copy.deepcopy(model.state_dict())
    calls = []

    def failing_loss(prediction, target):
        calls.append(None)
        if len(calls) == 5:
            raise RuntimeError("out of memory, say")
        return torch.nn.functional.mse_loss(prediction, target)

    with pytest.raises(RuntimeError, match="out of memory"):
        lr_find(model, failing_loss, (X, y), _sgd_factory, num_steps=20)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_minibatches_are_cycled_with_a_coursekit_optimizer_on_logistic_regression():
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(128, 2, generator=gen)
    labels = (X @ torch.tensor([2.0, -1.0]) > 0).float()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, labels[:, None]),
                                         batch_size=32)
    model = torch.nn.Linear(2, 1)
    result = lr_find(model, torch.nn.functional.binary_cross_entropy_with_logits, loader,
                     functools.partial(ck_optim.SGD, lr=1.0), start_lr=1e-3, end_lr=1e3,
                     num_steps=60)
    assert len(result.losses) > 4 * len(loader)                      # went round several times
    assert result.suggestion is not None
    assert result.smoothed_losses[np.searchsorted(result.lrs, result.suggestion)] < math.log(2)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(start_lr=0.0), ValueError, r"^start_lr must be > 0, got 0\.0"),
    (dict(start_lr=1e-2, end_lr=1e-3), ValueError,
     r"^end_lr must be > start_lr = 0\.01, got 0\.001"),
    (dict(num_steps=1), ValueError, r"^num_steps must be an integer >= 2, got 1"),
    (dict(smoothing=1.0), ValueError, r"^smoothing must be in \[0, 1\), got 1\.0"),
    (dict(diverge_factor=1.0), ValueError, r"^diverge_factor must be > 1, got 1\.0"),
    (dict(optimizer="sgd"), TypeError, r"^optimizer must be .*, got 'sgd'"),
    (dict(data=[]), ValueError, r"^data must be an iterable that yields batches .*, got \[\]"),
])
def test_bad_arguments_raise_errors_naming_them(kwargs, error, match):
    X, y, _ = _least_squares()
    arguments = {"data": (X, y), "optimizer": _sgd_factory, **kwargs}
    with pytest.raises(error, match=match):
        lr_find(_model(), torch.nn.functional.mse_loss, **arguments)
