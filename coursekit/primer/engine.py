r"""A small autograd engine on numpy arrays: the whole of backpropagation in one file.

Backpropagation is Rumelhart et al. (1986): the chain rule applied node by node,
from the output back to the leaves.

A :class:`Tensor` is a node of a computational graph. It holds a ``value`` (a
float64 array, usually with a batch dimension first), a ``grad`` of the same
shape, and, unless it is a leaf, the :class:`Op` that made it and the
``parents`` it was made from. Arithmetic on tensors builds the graph and
computes the value at once, as in micrograd::

    w = Tensor([0.5, -1.0], requires_grad=True)     # a learnable leaf
    x = Tensor([[1.0, 2.0], [3.0, 4.0]])            # a batch of two inputs
    loss = ((x @ w).sigmoid() - 1.0).mean()
    loss.backward()                                  # fills w.grad

Every operation is a small class whose two methods sit side by side: the
forward value ``out = f(a, b)`` and the local derivatives. ``backward``
receives the upstream gradient ``g = dL/d out`` and returns ``dL/da = g *
d out/da`` for each input (the chain rule, one link). Broadcasting is undone
in one place, :func:`_unbroadcast`, which sums a gradient back to its input's
shape.

:class:`Graph` holds the nodes that lead to an output in a fixed topological
order (parents before children, found by depth-first search in the order the
parents were given, so nothing depends on hashing or set order). Because the
order is kept, a model builds its graph once and then, for every new batch,
assigns new leaf values and calls ``forward()`` and ``backward()`` again,
creating no new nodes. :class:`SigmoidLayer` is the one fused operation: a
whole layer of sigmoid neurons, ``sigmoid(h @ W + b)``, as a single node,
the same numbers as the three-node composition with fewer numpy calls.

Gradients of leaves *accumulate* across calls to ``backward`` (as in torch);
clear them with ``optimizer.zero_grad()`` or by setting ``grad = None``.
Gradient arrays may be shared between nodes, so they are never modified in
place.

References
----------
.. [1] Rumelhart, D. E., Hinton, G. E. and Williams, R. J. (1986). Learning representations
   by back-propagating errors. Nature, 323(6088), 533–536. doi:10.1038/323533a0.
   [rumelhart1986learning]
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BCE",
    "MSE",
    "Add",
    "Div",
    "Exp",
    "Graph",
    "Log",
    "MatMul",
    "Mean",
    "Mul",
    "Neg",
    "Op",
    "Pow",
    "ReLU",
    "Sigmoid",
    "SigmoidLayer",
    "Sub",
    "Sum",
    "Tanh",
    "Tensor",
    "bce",
    "mse",
    "sigmoid_layer",
]


class Tensor:
    """A value in the graph, its gradient, and the operation that produced it.

    Parameters
    ----------
    value : array_like
        The value; stored as a float64 array.
    requires_grad : bool
        Whether ``backward`` should compute ``dL/d value`` for this leaf
        (``True`` for learnable parameters, ``False`` for inputs and constants).
    name : str
        A label for pictures and error messages.
    """

    __slots__ = ("grad", "name", "op", "parents", "requires_grad", "value")

    def __init__(self, value, *, requires_grad: bool = False, name: str = ""):
        self.value = np.array(value, dtype=np.float64)
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad
        self.name = name
        self.op: Op | None = None
        self.parents: tuple[Tensor, ...] = ()

    def __repr__(self) -> str:
        label = f"{self.name!r}, " if self.name else ""
        made_by = f", op={type(self.op).__name__}" if self.op is not None else ""
        return f"Tensor({label}shape={self.value.shape}{made_by})"

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``value``."""
        return self.value.shape

    def backward(self) -> None:
        """Compute ``d self / d leaf`` for every leaf that requires a gradient."""
        Graph(self).backward()

    # Arithmetic builds the graph: each operator applies one Op.
    def __add__(self, other) -> Tensor:
        return Add().apply(self, other)

    def __radd__(self, other) -> Tensor:
        return Add().apply(other, self)

    def __sub__(self, other) -> Tensor:
        return Sub().apply(self, other)

    def __rsub__(self, other) -> Tensor:
        return Sub().apply(other, self)

    def __mul__(self, other) -> Tensor:
        return Mul().apply(self, other)

    def __rmul__(self, other) -> Tensor:
        return Mul().apply(other, self)

    def __truediv__(self, other) -> Tensor:
        return Div().apply(self, other)

    def __rtruediv__(self, other) -> Tensor:
        return Div().apply(other, self)

    def __neg__(self) -> Tensor:
        return Neg().apply(self)

    def __pow__(self, k: float) -> Tensor:
        return Pow(k).apply(self)

    def __matmul__(self, other) -> Tensor:
        return MatMul().apply(self, other)

    def sum(self, axis: int | None = None) -> Tensor:
        """Sum over ``axis`` (all axes when ``None``)."""
        return Sum(axis).apply(self)

    def mean(self, axis: int | None = None) -> Tensor:
        """Mean over ``axis`` (all axes when ``None``)."""
        return Mean(axis).apply(self)

    def sigmoid(self) -> Tensor:
        """The logistic function ``1 / (1 + exp(-x))``."""
        return Sigmoid().apply(self)

    def relu(self) -> Tensor:
        """``max(x, 0)``."""
        return ReLU().apply(self)

    def tanh(self) -> Tensor:
        """The hyperbolic tangent."""
        return Tanh().apply(self)

    def exp(self) -> Tensor:
        """``e ** x``."""
        return Exp().apply(self)

    def log(self) -> Tensor:
        """The natural logarithm."""
        return Log().apply(self)


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


class Op:
    """One operation: its forward value and its local derivatives, side by side.

    Subclasses implement ``forward(*inputs) -> out`` and
    ``backward(g, out, *inputs) -> (dL/d input, ...)`` on numpy arrays, where
    ``g = dL/d out`` has the shape of ``out``. A returned gradient may have a
    broadcast shape; :class:`Graph` sums it back to the input's shape.
    """

    def forward(self, *inputs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, g: np.ndarray, out: np.ndarray,
                 *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def apply(self, *inputs) -> Tensor:
        """Compute ``forward`` on the inputs' values and record the new node."""
        parents = tuple(_as_tensor(x) for x in inputs)
        out = Tensor(self.forward(*(p.value for p in parents)))
        out.op = self
        out.parents = parents
        out.requires_grad = any(p.requires_grad for p in parents)
        return out


class Add(Op):
    """out = a + b;  da = g,  db = g."""

    def forward(self, a, b):
        return a + b

    def backward(self, g, out, a, b):
        return g, g


class Sub(Op):
    """out = a - b;  da = g,  db = -g."""

    def forward(self, a, b):
        return a - b

    def backward(self, g, out, a, b):
        return g, -g


class Mul(Op):
    """out = a * b;  da = g * b,  db = g * a."""

    def forward(self, a, b):
        return a * b

    def backward(self, g, out, a, b):
        return g * b, g * a


class Div(Op):
    """out = a / b;  da = g / b,  db = -g * a / b^2 = -g * out / b."""

    def forward(self, a, b):
        return a / b

    def backward(self, g, out, a, b):
        return g / b, -g * out / b


class Neg(Op):
    """out = -a;  da = -g."""

    def forward(self, a):
        return -a

    def backward(self, g, out, a):
        return (-g,)


class Pow(Op):
    """out = a^k for a constant k;  da = g * k * a^(k-1)."""

    def __init__(self, k: float):
        if isinstance(k, bool) or not isinstance(k, (int, float, np.integer, np.floating)):
            raise TypeError(f"the exponent k must be a constant number, got {k!r}")
        self.k = float(k)

    def forward(self, a):
        return a**self.k

    def backward(self, g, out, a):
        return (g * self.k * a ** (self.k - 1),)


class MatMul(Op):
    """out = a @ b for 1-D or 2-D a, b;  da = g @ b^T,  db = a^T @ g.

    A 1-D ``a`` is a row and a 1-D ``b`` a column, as in ``numpy.matmul``.
    """

    def forward(self, a, b):
        if not (1 <= a.ndim <= 2 and 1 <= b.ndim <= 2):
            raise ValueError(f"matmul needs 1-D or 2-D operands, got shapes {a.shape} and "
                             f"{b.shape}")
        return a @ b

    def backward(self, g, out, a, b):
        if a.ndim == 2 and b.ndim == 2:
            return g @ b.T, a.T @ g
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        g2 = np.reshape(g, (a2.shape[0], b2.shape[1]))
        return (g2 @ b2.T).reshape(a.shape), (a2.T @ g2).reshape(b.shape)


class Sum(Op):
    """out = sum of a over ``axis``;  da = g copied along that axis."""

    def __init__(self, axis: int | None = None):
        self.axis = axis

    def forward(self, a):
        return a.sum(axis=self.axis)

    def backward(self, g, out, a):
        if self.axis is not None:
            g = np.expand_dims(g, self.axis)
        return (np.broadcast_to(g, a.shape),)


class Mean(Op):
    """out = mean of a over ``axis`` (n entries);  da = g / n copied along that axis."""

    def __init__(self, axis: int | None = None):
        self.axis = axis

    def forward(self, a):
        return a.mean(axis=self.axis)

    def backward(self, g, out, a):
        n = a.size if self.axis is None else a.shape[self.axis]
        if self.axis is not None:
            g = np.expand_dims(g, self.axis)
        return (np.broadcast_to(g / n, a.shape),)


class Sigmoid(Op):
    """out = 1 / (1 + e^-a);  da = g * out * (1 - out)."""

    def forward(self, a):
        return 1.0 / (1.0 + np.exp(-a))

    def backward(self, g, out, a):
        return (g * out * (1.0 - out),)


class ReLU(Op):
    """out = max(a, 0);  da = g where a > 0, else 0."""

    def forward(self, a):
        return np.maximum(a, 0.0)

    def backward(self, g, out, a):
        return (g * (a > 0),)


class Tanh(Op):
    """out = tanh(a);  da = g * (1 - out^2)."""

    def forward(self, a):
        return np.tanh(a)

    def backward(self, g, out, a):
        return (g * (1.0 - out * out),)


class Exp(Op):
    """out = e^a;  da = g * out."""

    def forward(self, a):
        return np.exp(a)

    def backward(self, g, out, a):
        return (g * out,)


class Log(Op):
    """out = ln a;  da = g / a."""

    def forward(self, a):
        return np.log(a)

    def backward(self, g, out, a):
        return (g / a,)


class SigmoidLayer(Op):
    """A layer of sigmoid neurons as one node: out = sigmoid(h @ W + b).

    The same numbers as ``(h @ W + b).sigmoid()``, with the chain rule through
    the three steps done inside one node (fewer nodes, fewer numpy calls):
    dz = g * out * (1 - out);  dh = dz @ W^T,  dW = h^T @ dz,  db = sum of dz over the batch.
    """

    def forward(self, h, W, b):
        return 1.0 / (1.0 + np.exp(-(h @ W + b)))

    def backward(self, g, out, h, W, b):
        dz = g * out * (1.0 - out)
        return dz @ W.T, h.T @ dz, dz.sum(axis=0)


class MSE(Op):
    """Mean squared error over all n entries: out = (1/n) sum (p - y)^2.

    dp = g * 2 (p - y) / n,  dy = -dp.
    """

    def forward(self, p, y):
        d = p - y
        return (d * d).sum() / d.size

    def backward(self, g, out, p, y):
        dp = g * (2.0 / p.size) * (p - y)
        return dp, -dp


class BCE(Op):
    """Binary cross-entropy of probabilities p against targets y, mean over n entries.

    out = -(1/n) sum [y ln p + (1 - y) ln(1 - p)];
    dp = g (p - y) / (p (1 - p) n),  dy = g (ln(1 - p) - ln p) / n.
    """

    def forward(self, p, y):
        return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))

    def backward(self, g, out, p, y):
        n = p.size
        return g * (p - y) / (p * (1.0 - p) * n), g * (np.log(1.0 - p) - np.log(p)) / n


def mse(prediction: Tensor, target) -> Tensor:
    """Mean squared error ``mean((prediction - target)^2)`` (shapes must match)."""
    return _loss(MSE(), prediction, target)


def bce(probability: Tensor, target) -> Tensor:
    """Binary cross-entropy of ``probability`` in (0, 1) against ``target`` in [0, 1]."""
    return _loss(BCE(), probability, target)


def sigmoid_layer(h: Tensor, W: Tensor, b: Tensor) -> Tensor:
    """``sigmoid(h @ W + b)`` as one :class:`SigmoidLayer` node.

    ``h`` is (batch, n_in), ``W`` is (n_in, n_out) and ``b`` is (n_out,).
    """
    h, W, b = _as_tensor(h), _as_tensor(W), _as_tensor(b)
    if h.value.ndim != 2 or W.value.ndim != 2 or b.shape != (W.shape[1],) \
            or h.shape[1] != W.shape[0]:
        raise ValueError(f"sigmoid_layer needs h (batch, n), W (n, m) and b (m,), got shapes "
                         f"{h.shape}, {W.shape} and {b.shape}")
    return SigmoidLayer().apply(h, W, b)


def _loss(op: Op, prediction, target) -> Tensor:
    prediction, target = _as_tensor(prediction), _as_tensor(target)
    if prediction.shape != target.shape:
        raise ValueError(f"{type(op).__name__}: prediction shape {prediction.shape} differs "
                         f"from target shape {target.shape}")
    return op.apply(prediction, target)


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach ``shape``."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def _topological_order(output: Tensor) -> list[Tensor]:
    """Every node that ``output`` depends on, each after all its parents.

    Depth-first search visiting parents in the order they were given, so the
    order depends only on how the graph was built.
    """
    order: list[Tensor] = []
    seen: set[int] = set()  # ids of visited nodes; only tested, never iterated
    stack: list[tuple[Tensor, bool]] = [(output, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((parent, False) for parent in reversed(node.parents))
    return order


class Graph:
    """The nodes leading to ``output``, in a fixed topological order, re-runnable.

    Parameters
    ----------
    output : Tensor
        The node to evaluate and differentiate (usually a scalar loss).

    Attributes
    ----------
    order : list of Tensor
        Parents before children; ``order[-1]`` is ``output``.
    """

    def __init__(self, output: Tensor):
        self.output = output
        self.order = _topological_order(output)
        self._computed = [node for node in self.order if node.op is not None]
        # A node that requires a gradient passes that on to all its children, so
        # every one of these receives a gradient from the output.
        self._to_differentiate = [node for node in reversed(self._computed)
                                  if node.requires_grad]

    def leaves(self) -> list[Tensor]:
        """The leaves that require a gradient (the learnable parameters), in order."""
        return [node for node in self.order if node.op is None and node.requires_grad]

    def forward(self) -> np.ndarray:
        """Recompute every node from the current leaf values; return the output's value."""
        for node in self._computed:
            node.value = node.op.forward(*[p.value for p in node.parents])
        return self.output.value

    def backward(self, seed: float = 1.0) -> None:
        """Backpropagate ``dL/d output = seed`` (1 for a loss) to every node, children first.

        Intermediate gradients are recomputed from scratch; leaf gradients are
        added to what they already hold.
        """
        for node in self._computed:
            node.grad = None
        self.output.grad = np.full(self.output.value.shape, seed, dtype=np.float64)
        for node in self._to_differentiate:
            grads = node.op.backward(node.grad, node.value, *[p.value for p in node.parents])
            for parent, g in zip(node.parents, grads):  # noqa: B905 - one grad per parent
                if parent.requires_grad:
                    if g.shape != parent.value.shape:
                        g = _unbroadcast(g, parent.value.shape)
                    parent.grad = g if parent.grad is None else parent.grad + g
