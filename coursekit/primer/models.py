r"""Classifiers written as expressions, and their torch.nn twins.

A neuron computes :math:`\sigma(\text{expression} + b)`: its assignment's
right-hand side, plus a bias ``bias_<variable>`` of its own, through the
logistic sigmoid. :class:`MultiNeuronClassifier` stacks layers of neurons
(the last layer has one, the predicted probability of class 1);
:class:`OneNeuronClassifier` is the one-neuron case::

    model = MultiNeuronClassifier([
        ["xw = ap*xp + aq*xq + ar*xr + as*xs",
         "xz = bp*xp + bq*xq + br*xr + bs*xs"],
        ["xo = cp*xw + cq*xz"],
    ])

Every name that is not a variable is a scalar parameter, initialised uniformly
in [0, 1) from ``seed`` (in the order of ``param_names``). The loss is the
batch mean of the squared error (``"mse"``, the primer's) or of the binary
cross-entropy (``"bce"``).

How a model is evaluated
------------------------
The model builds its graph once, on placeholder leaves, and keeps it (an
:class:`~coursekit.primer.engine.Graph`); each batch only replaces the leaf
values and reruns ``forward()`` and ``backward()``. There are two ways to
build that graph, giving the same numbers:

* **expression graph** (always available): every assignment becomes the
  engine operations it spells, on batch vectors, with each parameter a scalar
  leaf. This is the picture to have in mind when reading the primer.
* **dense layers** (``fast=True``, the default, when the network allows it):
  when every neuron of a layer is a sum ``p1*v1 + p2*v2 + ...`` over *all* the
  previous layer's variables with parameters used nowhere else, the layer is
  ``sigmoid(H @ W + b)``, one :class:`~coursekit.primer.engine.SigmoidLayer`
  node, and the scalar parameters are entries of ``W`` and ``b``. A few numpy
  calls per layer instead of a few per term; the tests check that both graphs
  give the same losses, gradients and parameters.

``to_torch()`` returns a torch.nn twin with identical parameters: ``nn.Linear``
layers for dense networks, otherwise a module that evaluates the same
expressions with torch operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from coursekit import _checks as checks
from coursekit.primer.engine import Graph, Tensor, bce, mse, sigmoid_layer
from coursekit.primer.expressions import ExpressionError, Program, linear_terms, parse_layers

__all__ = ["MultiNeuronClassifier", "OneNeuronClassifier"]

_LOSSES = {"mse": mse, "bce": bce}


def _bias_name(variable: str) -> str:
    """The name of the bias of the neuron that defines ``variable``."""
    return f"bias_{variable}"


def _layers_from_sizes(sizes: Sequence[int]) -> list[list[str]]:
    """Fully connected layers: inputs ``x0_i``, neuron ``j`` of layer ``l`` is ``x<l>_<j>``."""
    layers, previous = [], [f"x0_{i}" for i in range(sizes[0])]
    for l, size in enumerate(sizes[1:], start=1):
        layer = [f"x{l}_{j} = " + " + ".join(f"w{l}_{j}_{i}*{v}" for i, v in enumerate(previous))
                 for j in range(size)]
        layers.append(layer)
        previous = [f"x{l}_{j}" for j in range(size)]
    return layers


def _dense_weight_names(program: Program) -> list[list[list[str]]] | None:
    """Per layer, the parameter name at ``W[i][j]`` (previous variable i -> neuron j).

    None unless every layer is dense: each neuron a sum of ``parameter *
    variable`` over exactly the previous layer's variables, and no parameter
    used twice.
    """
    previous, matrices, params = program.inputs, [], []
    for layer in program.layers:
        matrix = [[""] * len(layer) for _ in previous]
        for j, target in enumerate(layer):
            terms = linear_terms(program[target].expr)
            if terms is None or sorted(v for _, v in terms) != sorted(previous):
                return None
            for param, var in terms:
                matrix[previous.index(var)][j] = param
                params.append(param)
        matrices.append(matrix)
        previous = layer
    return matrices if len(params) == len(set(params)) else None


class MultiNeuronClassifier:
    """A layered network of sigmoid neurons written as expressions.

    Parameters
    ----------
    layers : list of list of str, or list of int
        The assignments of each layer (the last layer has exactly one), or
        layer sizes ``[n_inputs, n_1, ..., 1]`` for fully connected layers
        with generated names.
    inputs : list of str, optional
        The input variables in the order of the data's columns (default: in
        order of first use).
    loss : {"mse", "bce"}
        Batch-mean squared error (the primer's) or binary cross-entropy.
    seed : int
        Seed for the uniform [0, 1) initial parameters.
    fast : bool
        Evaluate dense layers as matrix products (same numbers, much faster).

    Attributes
    ----------
    program : Program
        The parsed, checked network.
    param_names : tuple of str
        The scalar parameters: the expressions' parameters, then the biases.
    dense : bool
        Whether the dense-layer graph is in use.
    graph : Graph
        The cached graph from the placeholders to the loss.
    """

    def __init__(self, layers: Sequence[Sequence[str]] | Sequence[int], *,
                 inputs: Sequence[str] | None = None, loss: Literal["mse", "bce"] = "mse",
                 seed: int = 0, fast: bool = True):
        if (isinstance(layers, Sequence) and not isinstance(layers, str) and layers
                and all(isinstance(n, (int, np.integer)) for n in layers)):
            if len(layers) < 2 or any(n < 1 for n in layers) or layers[-1] != 1:
                raise checks.invalid("layers", "sizes [n_inputs, ..., 1] with every size >= 1",
                                     list(layers))
            layers = _layers_from_sizes(layers)
        checks.choice("loss", loss, _LOSSES)
        self.program = parse_layers(layers, inputs=inputs)
        if len(self.program.outputs) != 1:
            raise ExpressionError(f"the last layer must define exactly one variable (the class-1 "
                                  f"probability), got {list(self.program.outputs)}")
        if not self.program.inputs:
            raise ExpressionError("the network reads no input variable")
        self.inputs = self.program.inputs
        self.output = self.program.outputs[0]
        self.loss_name = loss
        neurons = [target for layer in self.program.layers for target in layer]
        biases = tuple(_bias_name(t) for t in neurons)
        clash = [b for b in biases if b in self.program.params]
        if clash:
            raise ExpressionError(f"parameter name {clash[0]!r} is reserved for a bias")
        self.param_names = self.program.params + biases
        self._weight_names = _dense_weight_names(self.program) if fast else None
        self.dense = self._weight_names is not None
        initial = np.random.default_rng(seed).uniform(0.0, 1.0, size=len(self.param_names))
        if self.dense:
            self._build_dense(dict(zip(self.param_names, initial, strict=True)))
        else:
            self._build_expressions(dict(zip(self.param_names, initial, strict=True)))
        self._y = Tensor(np.zeros(self._prediction.shape), name="y")
        self._loss = _LOSSES[loss](self._prediction, self._y)
        self.graph = Graph(self._loss)
        self._predict_graph = Graph(self._prediction)

    def _build_dense(self, values: dict[str, float]) -> None:
        """``h_l = sigmoid(h_{l-1} @ W_l + b_l)``; W_l[i, j] is the weight from i to neuron j."""
        self._x = [Tensor(np.zeros((2, len(self.inputs))), name="X")]
        self._params = []
        self._location: dict[str, tuple[Tensor, tuple[int, ...]]] = {}
        h = self._x[0]
        for l, (matrix, layer) in enumerate(zip(self._weight_names, self.program.layers,
                                                strict=True), start=1):
            W = Tensor([[values[name] for name in row] for row in matrix],
                       requires_grad=True, name=f"W{l}")
            b = Tensor([values[_bias_name(t)] for t in layer], requires_grad=True, name=f"b{l}")
            for i, row in enumerate(matrix):
                for j, name in enumerate(row):
                    self._location[name] = (W, (i, j))
            for j, target in enumerate(layer):
                self._location[_bias_name(target)] = (b, (j,))
            self._params += [W, b]
            h = sigmoid_layer(h, W, b)
        self._prediction = h

    def _build_expressions(self, values: dict[str, float]) -> None:
        """Each assignment as engine operations on batch vectors; scalar parameter leaves."""
        self._x = [Tensor(np.zeros(2), name=name) for name in self.inputs]
        self._params = [Tensor(values[name], requires_grad=True, name=name)
                        for name in self.param_names]
        self._location = {p.name: (p, ()) for p in self._params}
        leaves = {t.name: t for t in (*self._x, *self._params)}
        env = self.program.evaluate(
            leaves, activation=lambda target, v: (v + leaves[_bias_name(target)]).sigmoid())
        self._prediction = env[self.output]
        if self._prediction.shape != (2,):
            raise ExpressionError(f"the output {self.output!r} does not depend on any input")

    # --- using the model -----------------------------------------------------------------

    def parameters(self) -> list[Tensor]:
        """The learnable leaves of the graph, in a fixed order (give them to an optimizer)."""
        return list(self._params)

    def named_parameters(self) -> dict[str, float]:
        """Every scalar parameter by name, in the order of ``param_names``."""
        return {name: float(self._location[name][0].value[self._location[name][1]])
                for name in self.param_names}

    def gradients(self) -> dict[str, float]:
        """The accumulated ``dL/dp`` of every scalar parameter by name (0 where none)."""
        grads = {}
        for name in self.param_names:
            tensor, index = self._location[name]
            grads[name] = 0.0 if tensor.grad is None else float(tensor.grad[index])
        return grads

    def _set_batch(self, X: np.ndarray) -> None:
        if X.ndim != 2 or X.shape[1] != len(self.inputs):
            raise ValueError(f"X must be of shape (batch, {len(self.inputs)}) for inputs "
                             f"{list(self.inputs)}, got shape {X.shape}")
        if self.dense:
            self._x[0].value = X
        else:
            for leaf, column in zip(self._x, X.T, strict=True):
                leaf.value = column

    def _set_targets(self, X: np.ndarray, y: np.ndarray) -> None:
        checks.shape("y", y, (X.shape[0],))
        self._y.value = y[:, None] if self.dense else y

    def __call__(self, X) -> np.ndarray:
        """The predicted probability of class 1 for each row of ``X``, shape (n,)."""
        X = np.asarray(X, dtype=np.float64)
        self._set_batch(X)
        return self._predict_graph.forward().reshape(-1).copy()

    def loss(self, X, y) -> float:
        """The loss on ``(X, y)``, without gradients."""
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        self._set_batch(X)
        self._set_targets(X, y)
        return float(self.graph.forward())

    def forward_backward(self, X, y) -> float:
        """The loss on the batch ``(X, y)``; adds ``dL/dp`` to each parameter's ``grad``."""
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        self._set_batch(X)
        self._set_targets(X, y)
        loss = float(self.graph.forward())
        self.graph.backward()
        return loss

    def to_torch(self) -> Any:
        """A float64 torch.nn twin with the current parameters; it maps ``(n, d)`` to ``(n,)``.

        The twin's ``named_scalars()`` reads its parameters back by primer name.
        """
        from coursekit.primer.twins import DenseTwin, ExpressionTwin

        values = self.named_parameters()
        weight_names = _dense_weight_names(self.program)
        if weight_names is not None:
            return DenseTwin(weight_names, self.program.layers, values)
        return ExpressionTwin(self.program, values)


class OneNeuronClassifier(MultiNeuronClassifier):
    """One sigmoid neuron: ``sigmoid(expression + bias)``.

    Parameters
    ----------
    expression : str
        One assignment, e.g. ``"xw = ab*xa + bc*xb + cd*xc + ac*xd"``.
    inputs, loss, seed, fast
        As for :class:`MultiNeuronClassifier`.
    """

    def __init__(self, expression: str, *, inputs: Sequence[str] | None = None,
                 loss: Literal["mse", "bce"] = "mse", seed: int = 0, fast: bool = True):
        checks.instance("expression", expression, str, what="a string")
        super().__init__([[expression]], inputs=inputs, loss=loss, seed=seed, fast=fast)


