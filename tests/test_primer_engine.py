"""coursekit.primer.engine: every operation's value and gradient against torch.autograd
(float64) and against central differences, over hypothesis-generated shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays, mutually_broadcastable_shapes

from coursekit.primer.engine import Graph, Tensor, bce, mse, sigmoid_layer

SETTINGS = settings(max_examples=25, deadline=None)


def _values(shape, low=-2.0, high=2.0):
    return arrays(np.float64, shape, elements=st.floats(low, high, allow_nan=False))


def _away_from_zero(shape):
    """Values with |x| >= 0.2, so that relu's kink is out of the finite differences' reach."""
    return _values(shape, 0.2, 2.0).flatmap(
        lambda a: arrays(np.int8, shape, elements=st.sampled_from([-1, 1])).map(lambda s: a * s))


def _central_differences(f, inputs: list[np.ndarray], h: float = 1e-6) -> list[np.ndarray]:
    """d f / d inputs[i] entry by entry: (f(x + h e) - f(x - h e)) / 2h."""
    grads = []
    for x in inputs:
        g = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            saved = x[idx]
            x[idx] = saved + h
            up = f()
            x[idx] = saved - h
            down = f()
            x[idx] = saved
            g[idx] = (up - down) / (2 * h)
        grads.append(g)
    return grads


def check_op(ours, reference, inputs: list[np.ndarray], seed: int = 0, fd_rtol: float = 1e-5):
    """Compare ``ours(*Tensors)`` with ``reference(*torch tensors)`` in value and gradient.

    The scalar differentiated is ``sum(out * R)`` with a fixed random ``R``, so every
    entry of the upstream gradient differs.
    """
    inputs = [np.array(x, dtype=np.float64) for x in inputs]
    leaves = [Tensor(x.copy(), requires_grad=True) for x in inputs]
    out = ours(*leaves)
    R = np.random.default_rng(seed).uniform(0.5, 1.5, size=out.shape)
    (out * R).sum().backward()

    t_leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
    t_out = reference(*t_leaves)
    (t_out * torch.from_numpy(R)).sum().backward()
    np.testing.assert_allclose(out.value, t_out.detach().numpy(), rtol=1e-12, atol=1e-14)
    for leaf, t_leaf in zip(leaves, t_leaves, strict=True):
        np.testing.assert_allclose(leaf.grad, t_leaf.grad.numpy(), rtol=1e-10, atol=1e-12)

    arrays_ = [x.copy() for x in inputs]
    numeric = _central_differences(
        lambda: float(np.sum(ours(*[Tensor(a) for a in arrays_]).value * R)), arrays_)
    for leaf, g in zip(leaves, numeric, strict=True):
        np.testing.assert_allclose(leaf.grad, g, rtol=fd_rtol, atol=1e-6)


@SETTINGS
@given(st.data(), mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
       st.sampled_from(["add", "sub", "mul", "div"]))
def test_binary_op_gradients_with_broadcasting_match_torch_and_differences(data, shapes, op):
    a = data.draw(_values(shapes.input_shapes[0]))
    if op == "div":
        b = data.draw(_away_from_zero(shapes.input_shapes[1]))
    else:
        b = data.draw(_values(shapes.input_shapes[1]))
    fn = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y,
          "mul": lambda x, y: x * y, "div": lambda x, y: x / y}[op]
    check_op(fn, fn, [a, b])


UNARY = {
    "neg": (lambda x: -x, lambda x: -x, _values),
    "sigmoid": (Tensor.sigmoid, torch.sigmoid, lambda s: _values(s, -6.0, 6.0)),
    "relu": (Tensor.relu, torch.relu, _away_from_zero),
    "tanh": (Tensor.tanh, torch.tanh, _values),
    "exp": (Tensor.exp, torch.exp, _values),
    "log": (Tensor.log, torch.log, lambda s: _values(s, 0.2, 3.0)),
    "square": (lambda x: x**2, lambda x: x**2, _values),
    "cube": (lambda x: x**3, lambda x: x**3, _values),
    "sqrt": (lambda x: x**0.5, lambda x: x**0.5, lambda s: _values(s, 0.3, 3.0)),
    "reciprocal": (lambda x: x**-1, lambda x: x**-1, lambda s: _values(s, 0.3, 3.0)),
    "power 1.5": (lambda x: x**1.5, lambda x: x**1.5, lambda s: _values(s, 0.3, 3.0)),
}


@SETTINGS
@given(st.data(), array_shapes(min_dims=0, max_dims=3, max_side=4),
       st.sampled_from(sorted(UNARY)))
def test_unary_op_gradients_match_torch_and_differences(data, shape, name):
    ours, reference, values = UNARY[name]
    check_op(ours, reference, [data.draw(values(shape))])


@SETTINGS
@given(st.data(), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4),
       st.sampled_from(["matrix @ matrix", "matrix @ vector", "vector @ matrix",
                        "vector @ vector"]))
def test_matmul_gradients_match_torch_and_differences(data, n, k, m, form):
    a_shape = (k,) if form.startswith("vector") else (n, k)
    b_shape = (k,) if form.endswith("vector") else (k, m)
    a, b = data.draw(_values(a_shape)), data.draw(_values(b_shape))
    check_op(lambda x, y: x @ y, torch.matmul, [a, b])


@SETTINGS
@given(st.data(), array_shapes(min_dims=1, max_dims=3, max_side=4),
       st.sampled_from(["sum", "mean"]))
def test_reduction_gradients_match_torch_and_differences(data, shape, reduction):
    x = data.draw(_values(shape))
    axis = data.draw(st.sampled_from([None, *range(len(shape))]))

    def ours(t):
        return getattr(t, reduction)(axis)

    def reference(t):
        f = getattr(torch, reduction)
        return f(t) if axis is None else f(t, dim=axis)

    check_op(ours, reference, [x])


@SETTINGS
@given(st.data(), array_shapes(min_dims=1, max_dims=2, max_side=5))
def test_mse_gradients_match_torch_and_differences(data, shape):
    p, y = data.draw(_values(shape)), data.draw(_values(shape))
    check_op(mse, torch.nn.functional.mse_loss, [p, y])


@SETTINGS
@given(st.data(), array_shapes(min_dims=1, max_dims=2, max_side=5))
def test_bce_gradients_match_torch_and_differences(data, shape):
    p = data.draw(_values(shape, 0.05, 0.95))
    y = data.draw(_values(shape, 0.0, 1.0))

    def reference(tp, ty):  # written out: torch's own BCE has no gradient for the target
        return -(ty * torch.log(tp) + (1 - ty) * torch.log(1 - tp)).mean()

    check_op(bce, reference, [p, y])
    np.testing.assert_allclose(
        bce(Tensor(p), Tensor(y)).value,
        torch.nn.functional.binary_cross_entropy(torch.from_numpy(p), torch.from_numpy(y)).item(),
        rtol=1e-12)


@SETTINGS
@given(st.data(), st.integers(1, 5), st.integers(1, 4), st.integers(1, 3))
def test_sigmoid_layer_matches_torch_differences_and_its_composition(data, batch, n, m):
    h, W, b = (data.draw(_values(s)) for s in [(batch, n), (n, m), (m,)])
    check_op(sigmoid_layer, lambda th, tw, tb: torch.sigmoid(th @ tw + tb), [h, W, b])

    fused = [Tensor(x, requires_grad=True) for x in (h, W, b)]
    composed = [Tensor(x, requires_grad=True) for x in (h, W, b)]
    sigmoid_layer(*fused).sum().backward()
    (composed[0] @ composed[1] + composed[2]).sigmoid().sum().backward()
    for f, c in zip(fused, composed, strict=True):
        np.testing.assert_allclose(f.grad, c.grad, rtol=1e-13, atol=1e-15)


def test_shared_subexpression_gradients_add_up_like_torch():
    x = Tensor([0.3, -1.2, 2.0], requires_grad=True)
    w = Tensor(0.7, requires_grad=True)
    u = x * w
    loss = (u * u + u.sigmoid() * x - u / (w + 2.0)).mean()
    loss.backward()
    tx = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    tu = tx * tw
    (tu * tu + torch.sigmoid(tu) * tx - tu / (tw + 2.0)).mean().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(w.grad, tw.grad.numpy(), rtol=1e-13)


def test_topological_order_puts_parents_first_and_is_the_same_on_rebuild():
    def build():
        a = Tensor(1.0, requires_grad=True, name="a")
        b = Tensor(2.0, requires_grad=True, name="b")
        c = a * b
        c.name = "c"
        d = c + a
        d.name = "d"
        e = (d * c).sigmoid()
        e.name = "e"
        return e

    order = Graph(build()).order
    position = {id(node): i for i, node in enumerate(order)}
    for node in order:
        for parent in node.parents:
            assert position[id(parent)] < position[id(node)]
    assert len(order) == len(position)  # each node once
    assert [n.name for n in order] == [n.name for n in Graph(build()).order]


def test_rerunning_a_graph_on_new_leaf_values_matches_torch():
    x = Tensor(np.zeros((3, 2)))
    w = Tensor([[0.5], [-0.25]], requires_grad=True)
    loss = mse((x @ w).tanh(), Tensor(np.zeros((3, 1))))
    graph = Graph(loss)
    rng = np.random.default_rng(1)
    for _ in range(3):
        batch = rng.standard_normal((3, 2))
        x.value = batch
        w.grad = None
        graph.forward()
        graph.backward()
        tw = torch.tensor([[0.5], [-0.25]], dtype=torch.float64, requires_grad=True)
        t_loss = (torch.tanh(torch.from_numpy(batch) @ tw) ** 2).mean()
        t_loss.backward()
        assert loss.value == pytest.approx(t_loss.item(), rel=1e-13)
        np.testing.assert_allclose(w.grad, tw.grad.numpy(), rtol=1e-12)


def test_leaf_gradients_accumulate_across_backward_calls_like_torch():
    w = Tensor([1.0, -2.0], requires_grad=True)
    graph = Graph(((w * 3.0).exp()).sum())
    graph.backward()
    once = w.grad.copy()
    graph.backward()
    np.testing.assert_allclose(w.grad, 2 * once)
    np.testing.assert_allclose(once, 3 * np.exp(3 * np.array([1.0, -2.0])))


def test_inputs_and_constants_get_no_gradient():
    x = Tensor([1.0, 2.0])
    w = Tensor(0.5, requires_grad=True)
    (x * w + 1.0).sum().backward()
    assert x.grad is None
    assert w.grad == pytest.approx(3.0)


def test_bad_shapes_and_exponents_raise_clear_errors():
    with pytest.raises(ValueError, match=r"prediction shape \(3,\) differs from target shape"):
        mse(Tensor(np.zeros(3)), Tensor(np.zeros((3, 1))))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        Tensor(np.zeros((2, 2, 2))) @ Tensor(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="exponent k must be a constant"):
        Tensor(2.0) ** Tensor(3.0)
    with pytest.raises(ValueError, match=r"sigmoid_layer needs h \(batch, n\)"):
        sigmoid_layer(Tensor(np.zeros((2, 3))), Tensor(np.zeros((2, 1))), Tensor(np.zeros(1)))
