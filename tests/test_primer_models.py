"""coursekit.primer models and optimizers against their torch twins (float64, same
initial parameters, same batches), and the properties the old primer got wrong."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from coursekit.primer import (
    SGD,
    Adam,
    BatchIterator,
    ExpressionError,
    MultiNeuronClassifier,
    OneNeuronClassifier,
    Optimizer,
    SGDMomentum,
    Tensor,
    make_two_gaussians,
)

ONE_NEURON = "xw = ab*xa + bc*xb + cd*xc + ac*xd"
LAYERED = [["xw = ap*xp + aq*xq + ar*xr + as*xs", "xz = bp*xp + bq*xq + br*xr + bs*xs"],
           ["xo = cp*xw + cq*xz"]]
NONLINEAR = [["xw = ab*xa^2 - cd*xb", "xz = ef*(xc - xd) / 2"], ["xo = gh*xw*xz + ij*xw"]]

MODELS = {
    "one neuron": lambda: OneNeuronClassifier(ONE_NEURON),
    "layered, dense graph": lambda: MultiNeuronClassifier(LAYERED),
    "layered, expression graph": lambda: MultiNeuronClassifier(LAYERED, fast=False),
    "non-linear expressions": lambda: MultiNeuronClassifier(NONLINEAR, seed=3),
}
OPTIMIZERS = {  # ours, torch's
    "SGD": (lambda ps: SGD(ps, lr=0.5), lambda ps: torch.optim.SGD(ps, lr=0.5)),
    "SGD+": (lambda ps: SGDMomentum(ps, lr=0.1, mu=0.9),
             lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0)),
    "Adam": (lambda ps: Adam(ps, lr=0.02, betas=(0.8, 0.99)),
             lambda ps: torch.optim.Adam(ps, lr=0.02, betas=(0.8, 0.99))),
    "Adam fused": (lambda ps: Adam(ps, lr=0.02, fused=True),
                   lambda ps: torch.optim.Adam(ps, lr=0.02)),
}


@pytest.fixture(scope="module")
def data():
    return make_two_gaussians(400, dim=4, seed=7)


def run_both(model, make_ours, make_theirs, data, iterations=200, loss="mse"):
    """Train the model and its twin on the same batches; return both loss curves."""
    twin = model.to_torch()
    ours, theirs = make_ours(model.parameters()), make_theirs(twin.parameters())
    loss_fn = torch.nn.MSELoss() if loss == "mse" else torch.nn.BCELoss()
    batches = BatchIterator(*data, batch_size=8, seed=1)
    our_losses, their_losses = [], []
    for _ in range(iterations):
        X, y = next(batches)
        ours.zero_grad()
        our_losses.append(model.forward_backward(X, y))
        ours.step()
        theirs.zero_grad()
        t_loss = loss_fn(twin(torch.from_numpy(X)), torch.from_numpy(y))
        t_loss.backward()
        theirs.step()
        their_losses.append(t_loss.item())
    return np.array(our_losses), np.array(their_losses), twin


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("model_name", list(MODELS))
def test_model_and_torch_twin_agree_for_200_iterations(model_name, optimizer, data):
    model = MODELS[model_name]()
    initial = model.named_parameters()
    ours, theirs, twin = run_both(model, *OPTIMIZERS[optimizer], data)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)
    final, twin_final = model.named_parameters(), twin.named_scalars()
    assert set(final) == set(twin_final)
    for name in final:
        assert final[name] == pytest.approx(twin_final[name], abs=1e-9), name
    moved = max(abs(final[n] - initial[n]) for n in final)
    assert moved > 1e-2  # the comparison is about a run that actually trained


def test_twin_kinds_follow_the_network_shape():
    assert isinstance(MultiNeuronClassifier(LAYERED).to_torch().linears[0], torch.nn.Linear)
    assert isinstance(MultiNeuronClassifier(LAYERED, fast=False).to_torch().linears[1],
                      torch.nn.Linear)
    assert not hasattr(MultiNeuronClassifier(NONLINEAR).to_torch(), "linears")
    assert MultiNeuronClassifier(LAYERED).dense
    assert not MultiNeuronClassifier(LAYERED, fast=False).dense
    assert not MultiNeuronClassifier(NONLINEAR).dense


def test_binary_cross_entropy_model_matches_torch_bce(data):
    model = MultiNeuronClassifier(LAYERED, loss="bce", seed=2)
    ours, theirs, _ = run_both(model, *OPTIMIZERS["Adam"], data, iterations=100, loss="bce")
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


def test_dense_and_expression_graphs_give_the_same_numbers(data):
    fast, slow = MultiNeuronClassifier(LAYERED), MultiNeuronClassifier(LAYERED, fast=False)
    assert fast.named_parameters() == slow.named_parameters()
    fast_opt, slow_opt = Adam(fast.parameters(), lr=0.02), Adam(slow.parameters(), lr=0.02)
    batches = BatchIterator(*data, batch_size=8, seed=3)
    for _ in range(200):
        X, y = next(batches)
        for model, opt in ((fast, fast_opt), (slow, slow_opt)):
            opt.zero_grad()
            model.forward_backward(X, y)
        assert fast.loss(X, y) == pytest.approx(slow.loss(X, y), rel=1e-12)
        fast_opt.step()
        slow_opt.step()
    a, b = fast.named_parameters(), slow.named_parameters()
    for name in a:
        assert a[name] == pytest.approx(b[name], rel=1e-11, abs=1e-13), name


@pytest.mark.parametrize("model_name", list(MODELS))
def test_batch_gradient_is_the_mean_of_per_sample_gradients(model_name, data):
    model = MODELS[model_name]()
    X, y = data[0][:8], data[1][:8]
    model.forward_backward(X, y)
    batch = model.gradients()
    for p in model.parameters():
        p.grad = None
    for i in range(8):  # leaf gradients accumulate: the sum of per-sample gradients
        model.forward_backward(X[i:i + 1], y[i:i + 1])
    summed = model.gradients()
    for name in batch:
        assert batch[name] == pytest.approx(summed[name] / 8, rel=1e-12, abs=1e-15), name


def test_predictions_match_the_twin_for_any_number_of_rows(data):
    for make in MODELS.values():
        model = make()
        twin = model.to_torch()
        for rows in (1, 5, 400):
            X = data[0][:rows]
            np.testing.assert_allclose(model(X), twin(torch.from_numpy(X)).detach().numpy(),
                                       rtol=1e-13)


def test_layer_sizes_build_fully_connected_layers():
    sizes = [3, 4, 2, 1]
    model = MultiNeuronClassifier(sizes, seed=5)
    weights = sum(a * b for a, b in itertools.pairwise(sizes))
    assert len(model.param_names) == weights + sum(sizes[1:])
    assert model.dense and len(model.inputs) == 3
    shapes = [tuple(p.weight.shape) for p in model.to_torch().linears]
    assert shapes == [(4, 3), (2, 4), (1, 2)]
    X = np.random.default_rng(0).standard_normal((6, 3))
    np.testing.assert_allclose(model(X), model.to_torch()(torch.from_numpy(X)).detach().numpy(),
                               rtol=1e-13)


def test_initial_parameters_are_uniform_from_the_seed():
    model = OneNeuronClassifier(ONE_NEURON, seed=11)
    expected = np.random.default_rng(11).uniform(0, 1, size=5)
    assert list(model.named_parameters()) == ["ab", "bc", "cd", "ac", "bias_xw"]
    np.testing.assert_array_equal(list(model.named_parameters().values()), expected)


def test_bad_models_and_batches_raise_clear_errors():
    with pytest.raises(ExpressionError, match="exactly one variable"):
        MultiNeuronClassifier([["xw = a*xp", "xz = b*xp"]])
    with pytest.raises(ValueError, match="loss must be one of 'mse', 'bce', got 'l1'"):
        OneNeuronClassifier(ONE_NEURON, loss="l1")
    with pytest.raises(ValueError, match=r"layers must be sizes \[n_inputs, \.\.\., 1\] .*, "
                                         r"got \[4, 2, 2\]"):
        MultiNeuronClassifier([4, 2, 2])
    with pytest.raises(ExpressionError, match="'bias_xw' is reserved"):
        OneNeuronClassifier("xw = bias_xw*xa")
    with pytest.raises(ExpressionError, match="does not depend on any input"):
        MultiNeuronClassifier([["xw = ab*xa"], ["xo = cd"]])
    model = OneNeuronClassifier(ONE_NEURON)
    with pytest.raises(ValueError, match=r"X must be of shape \(batch, 4\) .*, got shape \(3, 5\)"):
        model(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"y must be of shape \(3,\), got shape \(4,\)"):
        model.forward_backward(np.zeros((3, 4)), np.zeros(4))


# --- optimizers --------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda ps, fused: SGD(ps, lr=0.1, fused=fused),
    lambda ps, fused: SGDMomentum(ps, lr=0.1, mu=0.5, fused=fused),
    lambda ps, fused: Adam(ps, lr=0.05, fused=fused),
], ids=["SGD", "SGD+", "Adam"])
def test_fused_step_gives_bitwise_the_same_numbers(make, data):
    models = [MultiNeuronClassifier(LAYERED), MultiNeuronClassifier(LAYERED)]
    opts = [make(models[0].parameters(), False), make(models[1].parameters(), True)]
    batches = BatchIterator(*data, batch_size=8, seed=4)
    for _ in range(50):
        X, y = next(batches)
        for model, opt in zip(models, opts, strict=True):
            opt.zero_grad()
            model.forward_backward(X, y)
            opt.step()
    assert models[0].named_parameters() == models[1].named_parameters()


def test_fused_step_follows_parameters_replaced_from_outside(data):
    models = [OneNeuronClassifier(ONE_NEURON), OneNeuronClassifier(ONE_NEURON)]
    opts = [Adam(models[0].parameters(), lr=0.1), Adam(models[1].parameters(), lr=0.1,
                                                       fused=True)]
    X, y = data[0][:8], data[1][:8]
    for step in range(3):
        if step == 1:
            for model in models:
                model.parameters()[0].value = np.full((4, 1), 0.25)  # not a view
        for model, opt in zip(models, opts, strict=True):
            opt.zero_grad()
            model.forward_backward(X, y)
            opt.step()
    assert models[0].named_parameters() == models[1].named_parameters()


def test_a_student_optimizer_needs_only_update(data):
    class SignSGD(Optimizer):
        def update(self, p, g, state):
            p -= self.lr * np.sign(g)

    model = MultiNeuronClassifier(LAYERED, fast=False)
    before = model.named_parameters()
    model.forward_backward(data[0][:8], data[1][:8])
    grads = model.gradients()
    SignSGD(model.parameters(), lr=0.01).step()
    after = model.named_parameters()
    for name in before:
        assert after[name] == pytest.approx(before[name] - 0.01 * np.sign(grads[name]), abs=1e-15)


def test_sgd_momentum_keeps_its_velocity_per_parameter():
    model = OneNeuronClassifier(ONE_NEURON)
    opt = SGDMomentum(model.parameters(), lr=0.5, mu=0.9)
    p = model.parameters()[0]
    start = p.value.copy()
    g1, g2 = np.array([[1.0], [2.0], [3.0], [4.0]]), np.array([[-1.0], [0.5], [0.0], [2.0]])
    p.grad = g1
    opt.step()
    p.grad = g2
    opt.step()
    v1 = g1
    v2 = 0.9 * v1 + g2
    np.testing.assert_allclose(p.value, start - 0.5 * v1 - 0.5 * v2, rtol=1e-15)


def test_optimizer_arguments_are_validated():
    params = OneNeuronClassifier(ONE_NEURON).parameters()
    with pytest.raises(ValueError, match=r"^lr must be >= 0, got -1.0"):
        SGD(params, lr=-1.0)
    with pytest.raises(ValueError, match=r"^mu must be in \[0, 1\), got 1.0"):
        SGDMomentum(params, lr=0.1, mu=1.0)
    with pytest.raises(ValueError, match=r"^betas\[1\] must be in \[0, 1\), got 1.5"):
        Adam(params, betas=(0.9, 1.5))
    with pytest.raises(ValueError, match=r"^eps must be >= 0, got -1e-08"):
        Adam(params, eps=-1e-8)
    with pytest.raises(ValueError, match=r"^params must be a non-empty list .*, got \[\]"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match=r"^params\[0\] must be a Tensor with requires_grad"):
        SGD([Tensor(1.0)], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        SGD(params + params[:1], lr=0.1)
    with pytest.raises(ValueError, match="fused step needs every gradient"):
        SGD(params, lr=0.1, fused=True).step()
    with pytest.raises(NotImplementedError, match="must implement update"):
        params[0].grad = np.zeros((4, 1))
        Optimizer(params, lr=0.1).step()
