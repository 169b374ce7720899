r"""Second-order ideas: Newton's step, Hessian-vector products, and L-BFGS full vs mini-batch.

Newton's method (Soleymani, 2024) replaces the loss near ``w`` by its second-order
Taylor model and jumps to that model's minimum::

    E(w + d) ~ E(w) + grad E(w)^T d + 1/2 d^T H d        H = Hessian of E at w
    d = -H^{-1} grad E(w)                                 set the model's gradient to 0
    w <- w - lr (H + damping I)^{-1} grad E(w)            lr = 1, damping = 0: pure Newton

On a quadratic ``E(w) = 1/2 w^T A w - b^T w`` the model *is* the function, so one
pure Newton step from anywhere lands on the minimum ``A^{-1} b``. Away from a
quadratic the model can mislead (an indefinite ``H`` points the step uphill or at
a saddle); *damping* ``H + lambda I`` (Levenberg, 1944; Marquardt, 1963) blends the step
toward gradient descent with step ``1 / lambda``, and ``lr < 1`` shortens it.

Why not for deep learning: ``H`` has ``n^2`` entries and solving with it costs
about ``n^3 / 3`` operations (Cholesky) for ``n`` parameters
(:func:`hessian_cost`). But ``H v`` for any vector ``v`` costs only about two
gradients, without ever forming ``H`` (Pearlmutter, 1994)::

    H v = grad_w ( grad_w E(w) . v )                     (:func:`hessian_vector_product`)

which is enough for power iteration on the largest curvature
(:func:`top_eigenvalue`), the number that caps gradient descent's step size at
``2 / lambda_max``.

Everything here works on a function of one flat parameter vector ``f(w)``;
:func:`flat_loss` turns a model and a batch into one. :func:`train_for_passes`
trains any optimizer, including ``torch.optim.LBFGS`` (which needs a closure),
for a budget of gradient evaluations, full batch or mini-batch, and records the
full training loss (``coursekit.train.fit`` in closure mode, with a gradient
budget and a step hook): the point of the Optimization II slides (Soleymani, 2024)
that L-BFGS (Liu and Nocedal, 1989) shines on one deterministic loss and falls apart
on mini-batches.

References
----------
.. [1] Soleymani, M. (2024). Training neural networks: Optimization II. Lecture slides,
   Sharif University of Technology, Spring 2024 (adapted from CMU 11-785 and Stanford
   cs231n). [soleymani2024training]
.. [2] Levenberg, K. (1944). A method for the solution of certain non-linear problems in
   least squares. Quarterly of Applied Mathematics, 2(2), 164–168. doi:10.1090/qam/10666.
   [levenberg1944method]
.. [3] Marquardt, D. W. (1963). An algorithm for least-squares estimation of nonlinear
   parameters. Journal of the Society for Industrial and Applied Mathematics, 11(2),
   431–441. doi:10.1137/0111030. [marquardt1963algorithm]
.. [4] Pearlmutter, B. A. (1994). Fast exact multiplication by the Hessian. Neural
   Computation, 6(1), 147–160. doi:10.1162/neco.1994.6.1.147. [pearlmutter1994fast]
.. [5] Liu, D. C. and Nocedal, J. (1989). On the limited memory BFGS method for large scale
   optimization. Mathematical Programming, 45, 503–528. doi:10.1007/BF01589116.
   [liu1989limited]
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from coursekit import _checks as checks
from coursekit.data import Split
from coursekit.landscapes import Landscape, Trajectory
from coursekit.train import StepInfo, evaluate, fit

__all__ = [
    "Curve",
    "flat_loss",
    "gradient",
    "hessian_cost",
    "hessian_vector_product",
    "newton_path",
    "newton_step",
    "top_eigenvalue",
    "train_for_passes",
]

FlatFunction = Callable[[torch.Tensor], torch.Tensor]
_MIN_DAMPING = 1e-3   # adaptive damping restarts here after a rejected pure Newton step
_MAX_DAMPING = 1e12   # ... and gives up on lowering f beyond this


def flat_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
              loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
              ) -> tuple[FlatFunction, torch.Tensor]:
    """The model's loss on ``(x, y)`` as a function of one flat parameter vector.

    Returns ``(f, w0)``: ``f(w)`` puts the entries of ``w`` into the model's
    parameters (in ``model.named_parameters()`` order, without changing the
    model) and returns ``loss(model(x), y)``; ``w0`` holds the model's current
    parameters, detached.
    """
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise checks.invalid("model", "a module with trainable parameters", model)
    names = [name for name, _ in named]
    shapes = [p.shape for _, p in named]
    sizes = [p.numel() for _, p in named]
    w0 = torch.cat([p.detach().reshape(-1) for _, p in named])

    def f(w: torch.Tensor) -> torch.Tensor:
        checks.shape("w", w, tuple(w0.shape))
        pieces = torch.split(w, sizes)
        params = {name: piece.view(shape)
                  for name, piece, shape in zip(names, pieces, shapes, strict=True)}
        return loss(functional_call(model, params, (x,)), y)

    return f, w0


def gradient(f: FlatFunction, w: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """``grad f(w)`` by autograd (``w`` itself is left untouched)."""
    checks.flat_tensor("w", w)
    with torch.enable_grad():
        w = w.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(f(w), w, create_graph=create_graph)
    return g if create_graph else g.detach()


def hessian_vector_product(f: FlatFunction, w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r"""``H v`` at ``w`` without forming ``H``: the gradient of ``grad f(w) . v``.

    .. math::
        H(w)\, v = \nabla_w \big( \nabla_w f(w)^\top v \big)

    (``v`` is held constant; Pearlmutter, 1994). The cost is about two gradient
    evaluations and the memory ``O(n)``, against ``n^2`` numbers for ``H`` itself.

    Parameters
    ----------
    f : callable
        Scalar function of a flat vector (see :func:`flat_loss`).
    w, v : torch.Tensor
        1-D tensors of the same shape.

    References
    ----------
    .. [1] Pearlmutter, B. A. (1994). Fast exact multiplication by the Hessian. Neural
       Computation, 6(1), 147–160. doi:10.1162/neco.1994.6.1.147. [pearlmutter1994fast]
    """
    checks.flat_tensor("w", w)
    checks.flat_tensor("v", v)
    checks.shape("v", v, tuple(w.shape))
    with torch.enable_grad():
        w = w.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(f(w), w, create_graph=True)
        (hv,) = torch.autograd.grad(g, w, grad_outputs=v.detach())
    return hv.detach()


def newton_step(f: FlatFunction, w: torch.Tensor, damping: float = 0.0,
                lr: float = 1.0) -> torch.Tensor:
    r"""One (damped) Newton step: ``w - lr (H + damping I)^{-1} grad f(w)``.

    .. math::
        w_{k+1} = w_k - \eta\, (H_k + \lambda I)^{-1} \nabla f(w_k)

    The Hessian is formed explicitly (``torch.autograd.functional.hessian``) and
    the linear system solved with ``torch.linalg.solve``: fine for the handful of
    parameters of a landscape or a small model, hopeless at scale
    (:func:`hessian_cost`).

    Parameters
    ----------
    f : callable
        Scalar function of a flat vector.
    w : torch.Tensor
        The current point, 1-D.
    damping : float
        ``lambda >= 0`` added to the Hessian's diagonal (Levenberg-Marquardt).
    lr : float
        Step length ``eta >= 0`` (1 is the pure Newton step).

    Returns
    -------
    torch.Tensor
        The new point (``w`` is not modified).

    Raises
    ------
    ValueError
        When ``H + damping I`` is singular (add damping).
    """
    checks.flat_tensor("w", w)
    damping = checks.nonnegative("damping", damping)
    lr = checks.nonnegative("lr", lr)
    w = w.detach()
    g = gradient(f, w)
    H = torch.autograd.functional.hessian(f, w)
    system = H + damping * torch.eye(len(w), dtype=w.dtype, device=w.device)
    try:
        direction = torch.linalg.solve(system, g)
    except RuntimeError as err:  # torch.linalg.LinAlgError is a RuntimeError
        raise checks.invalid("damping", "large enough to make the Hessian + damping * I "
                             "invertible (at this point the Newton step is undefined)",
                             damping) from err
    return w - lr * direction


def newton_path(fn: Landscape, start: Sequence[float] | None = None, steps: int = 10,
                damping: float = 0.0, lr: float = 1.0, *, adaptive: bool = False,
                label: str | None = None) -> Trajectory:
    """Newton's method on a 2-D landscape, recorded as a :class:`~coursekit.landscapes.Trajectory`.

    Repeats :func:`newton_step` with the landscape's exact Hessian, so the result
    plots with :func:`coursekit.viz.plot.trajectories` next to first-order runs. A
    step that lands on a non-finite point stops the run (``diverged``).

    With ``adaptive=True`` the damping is adjusted as in Levenberg-Marquardt: a
    step that would *raise* ``f`` is rejected and retried with ten times the
    damping (a shorter step, turned toward the gradient); an accepted step
    divides the damping by ten for the next one (toward the pure Newton step).
    Every recorded step then lowers ``f``, and near the minimum the steps become
    pure Newton steps again. ``damping`` is the starting value (0 is replaced by
    ``1e-3`` once a step is rejected).

    Parameters
    ----------
    fn : Landscape
        The function to minimize.
    start : pair of float, optional
        Starting point (default ``fn.start``).
    steps : int
        Number of Newton steps, >= 0.
    damping, lr : float
        As in :func:`newton_step`.
    adaptive : bool
        Levenberg-Marquardt damping (see above).
    label : str, optional
        Legend label (default describes the damping and step length).

    References
    ----------
    .. [1] Levenberg, K. (1944). A method for the solution of certain non-linear
       problems in least squares. Quarterly of Applied Mathematics, 2(2), 164–168.
       doi:10.1090/qam/10666. [levenberg1944method]
    .. [2] Marquardt, D. W. (1963). An algorithm for least-squares estimation of
       nonlinear parameters. Journal of the Society for Industrial and Applied
       Mathematics, 11(2), 431–441. doi:10.1137/0111030. [marquardt1963algorithm]
    """
    checks.instance("fn", fn, Landscape, what="a coursekit.landscapes.Landscape")
    checks.integer("steps", steps, minimum=0)
    start = fn.start if start is None else start
    w = torch.tensor(checks.vector("start", start, length=2), dtype=torch.float64)
    damping = checks.nonnegative("damping", damping)
    points, diverged_at = [w], None
    for k in range(1, steps + 1):
        new = newton_step(fn, w, damping=damping, lr=lr)
        while adaptive and not fn(new) <= fn(w) and damping < _MAX_DAMPING:
            damping = max(10 * damping, _MIN_DAMPING)
            new = newton_step(fn, w, damping=damping, lr=lr)
        if adaptive:
            damping /= 10
        if not (torch.isfinite(new).all() and torch.isfinite(fn(new))):
            diverged_at = k
            break
        w = new
        points.append(w)
    xy = torch.stack(points)
    if label is None:
        if adaptive:
            label = "Newton, adaptive damping (Levenberg-Marquardt)"
        elif damping == 0 and lr == 1:
            label = "Newton"
        else:
            label = f"Newton (damping {damping:g}, lr {lr:g})"
    return Trajectory(points=xy.numpy(), values=fn(xy).numpy(),
                      grad_norms=fn.grad(xy).norm(dim=-1).numpy(),
                      lrs=np.full(len(points) - 1, float(lr)), landscape=fn, label=label,
                      diverged=diverged_at is not None, diverged_at=diverged_at)


def top_eigenvalue(f: FlatFunction, w: torch.Tensor, iters: int = 50, seed: int = 0,
                   tol: float = 1e-6) -> float:
    r"""The Hessian eigenvalue of largest magnitude at ``w``, by power iteration on ``H v``.

    .. math::
        v \leftarrow H v / \lVert H v \rVert, \qquad \lambda = v^\top H v

    starting from a random unit ``v`` (seeded), until ``lambda`` changes by less
    than ``tol`` relative or after ``iters`` products. Each iteration costs one
    :func:`hessian_vector_product`. Near a minimum this is ``lambda_max``, and
    gradient descent on the local quadratic model is stable only for
    ``lr < 2 / lambda_max``.
    """
    checks.flat_tensor("w", w)
    checks.integer("iters", iters, minimum=1)
    generator = torch.Generator().manual_seed(seed)
    v = torch.randn(w.shape, generator=generator, dtype=torch.float64).to(w)
    v /= v.norm()
    eigenvalue = 0.0
    for _ in range(iters):
        hv = hessian_vector_product(f, w, v)
        new = float(v @ hv)
        norm = hv.norm()
        if norm == 0:
            return 0.0
        v = hv / norm
        if abs(new - eigenvalue) <= tol * abs(new):
            return new
        eigenvalue = new
    return eigenvalue


def hessian_cost(n_params: int, bytes_per_number: int = 4,
                 flops_per_second: float = 1e15) -> dict[str, float]:
    """What Newton's method would cost for a model with ``n_params`` parameters.

    Parameters
    ----------
    n_params : int
        Number of scalar parameters ``n``.
    bytes_per_number : int
        4 for float32 (the default), 8 for float64, 2 for half precision.
    flops_per_second : float
        Sustained speed assumed for the solve (1e15, a petaflop/s, is roughly one
        modern data-centre GPU in dense low precision; a laptop CPU does ~1e11).

    Returns
    -------
    dict
        ``parameters`` (n), ``gradient bytes`` (n numbers), ``Hessian bytes``
        (n^2 numbers; half of them if only one triangle of the symmetric matrix
        were kept), ``solve flops`` (Cholesky factorisation, ``n^3 / 3``) and
        ``solve seconds`` at ``flops_per_second``.
    """
    checks.integer("n_params", n_params, minimum=1)
    checks.integer("bytes_per_number", bytes_per_number, minimum=1)
    checks.real("flops_per_second", flops_per_second, above=0, allow_inf=True)
    n = float(n_params)
    flops = n**3 / 3
    return {
        "parameters": int(n_params),
        "gradient bytes": n * bytes_per_number,
        "Hessian bytes": n * n * bytes_per_number,
        "solve flops": flops,
        "solve seconds": flops / flops_per_second,
    }


@dataclasses.dataclass(eq=False)
class Curve:
    """Training loss against gradient evaluations, as recorded by :func:`train_for_passes`.

    Attributes
    ----------
    label : str
        Name for legends.
    passes : numpy.ndarray
        Gradient evaluations so far at each record, in passes over the training
        set (``examples whose gradient was computed / n``).
    loss : numpy.ndarray
        The full training loss at each record (the first is at the start).
    steps : int
        ``optimizer.step`` calls made.
    test_accuracy : float
        Accuracy on the test split at the end (NaN when none was given).
    seconds : float
        Wall time of the training (recording included).
    diverged : bool
        True when the loss became non-finite and the run stopped.
    """

    label: str
    passes: np.ndarray
    loss: np.ndarray
    steps: int
    test_accuracy: float
    seconds: float
    diverged: bool

    @property
    def final_loss(self) -> float:
        """The last recorded training loss."""
        return float(self.loss[-1])

    def record(self) -> dict[str, Any]:
        """One row of a results table (``pandas.DataFrame([r.record() for r in results])``)."""
        return {"optimizer": self.label, "steps": self.steps,
                "passes": round(float(self.passes[-1]), 1), "final train loss": self.final_loss,
                "test accuracy": self.test_accuracy, "diverged": self.diverged}


@torch.no_grad()
def _full_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: Callable) -> float:
    """The loss on all of ``(x, y)`` in eval mode (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    value = float(loss(model(x), y))
    model.train(was_training)
    return value


class _Passes:
    """The batches of :func:`train_for_passes`, one pass over ``(x, y)`` per iteration.

    Full batch (``batch_size`` None): the whole set once per pass. Mini-batch:
    one generator seeded by ``seed`` for the whole run, continued across passes,
    draws ``torch.randperm(n)`` at the start of each pass, and the pass yields
    ``x[order[i:i + size]]`` for ``i = 0, size, 2 size, ...``.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int | None,
                 seed: int) -> None:
        self.x, self.y = x, y
        self.size = len(y) if batch_size is None else min(batch_size, len(y))
        self.generator = None if batch_size is None else torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.generator is None:
            yield self.x, self.y
            return
        order = torch.randperm(len(self.y), generator=self.generator).to(self.x.device)
        for i in range(0, len(self.y), self.size):
            index = order[i:i + self.size]
            yield self.x[index], self.y[index]


def train_for_passes(model: nn.Module, optimizer: torch.optim.Optimizer, train: Split,
                     passes: float, *, batch_size: int | None = None, test: Split | None = None,
                     loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
                     seed: int = 0, max_records: int = 400, label: str | None = None) -> Curve:
    """Train until ``passes`` passes' worth of gradients were computed; record the full loss.

    This is :func:`coursekit.train.fit` in closure mode with a gradient budget of
    ``passes * len(train)`` examples and a hook that records the loss. Every step
    calls ``optimizer.step(closure)``; the closure computes the loss and gradient
    on the current batch (the whole training set when ``batch_size`` is None) and
    is charged its examples. Ordinary optimizers call it once per step;
    ``torch.optim.LBFGS`` calls it several times (its inner iterations and line
    search), and every call is charged to the budget, so runs are compared at
    equal gradient work. After steps (at most ``max_records`` times, evenly
    spread, and after the last) the loss on the *whole* training set is recorded.
    A batch loss that is not finite ends the run (``fit``'s divergence rule); the
    full loss at the weights it stopped at is then the last record.

    Parameters
    ----------
    model : nn.Module
        The model, on the device of the data.
    optimizer : torch.optim.Optimizer
        Built on ``model.parameters()``.
    train : Split
        The training data (``x``, ``y`` on the model's device).
    passes : float
        Budget of gradient evaluations in passes over ``train``, > 0.
    batch_size : int, optional
        Mini-batch size; None for full batch. Batches are reshuffled every pass
        by one generator seeded by ``seed`` (continued from pass to pass).
    test : Split, optional
        Evaluated (accuracy) at the end.
    loss : callable
        ``loss(model(x), y)``, averaged over the batch.
    seed : int
        Seed of the batch order.
    max_records : int
        Most loss records kept (the first and last always are).
    label : str, optional
        Default: the optimizer's class name.
    """
    passes = checks.positive("passes", passes)
    checks.optional_integer("batch_size", batch_size, minimum=1)
    checks.integer("max_records", max_records, minimum=1)
    batches = _Passes(train.x, train.y, batch_size, seed)
    x, y, n = train.x, train.y, len(train)
    budget = passes * n
    stride = max(1, math.ceil(passes * len(batches) / max_records))
    records = [(0.0, _full_loss(model, x, y, loss))]
    last_recorded = 0  # the step of the last record

    def record(info: StepInfo) -> None:
        nonlocal last_recorded
        if info.step % stride == 0 or info.examples >= budget:
            records.append((info.examples / n, _full_loss(info.model, x, y, loss)))
            last_recorded = info.step

    start = time.perf_counter()
    # Every step costs at least one closure call on its batch, so ceil(passes)
    # epochs always exhaust the budget.
    history = fit(model, optimizer, batches, math.ceil(passes), loss=loss, progress=False,
                  closure=True, max_examples=budget, on_step=record)
    steps = history.steps - history.diverged
    if history.diverged and last_recorded != steps:
        records.append((history.examples / n, _full_loss(model, x, y, loss)))
    seconds = time.perf_counter() - start
    accuracy = math.nan
    if test is not None:
        accuracy = evaluate(model, test, loss=loss)["accuracy"]
    done, values = zip(*records, strict=True)
    return Curve(label=type(optimizer).__name__ if label is None else label,
                 passes=np.asarray(done), loss=np.asarray(values), steps=steps,
                 test_accuracy=accuracy, seconds=seconds, diverged=history.diverged)
