r"""Optimizers for primer models, written so that a new one is a dozen lines.

The extension point (Homework 1 writes SGD+ and Adam here, as the ECE 60146 report did)
---------------------------------------------------------------------------------------
Subclass :class:`Optimizer` and write two methods, both for *one* parameter
array ``p`` with its gradient ``g = dL/dp`` and its own ``state`` dict:

``init_state(self, p, state)``
    Called once, before the first update: create the buffers the method
    keeps (``state["v"] = np.zeros_like(p)``, a step counter...).
``update(self, p, g, state)``
    Change ``p`` *in place* (``p -= self.lr * g``; ``p = p - ...`` would only
    rebind a local name) from ``g`` and ``state``. Never modify ``g``: gradient
    arrays may be shared between nodes of the graph.

Hyperparameters are attributes set in ``__init__`` (``self.lr``, ``self.mu``),
checked there so that a typo fails at once. :class:`SGD` below is the whole
pattern::

    class SGD(Optimizer):
        def update(self, p, g, state):
            p -= self.lr * g

``step()`` runs ``update`` for every parameter that has a gradient;
``zero_grad()`` clears the gradients, which otherwise accumulate.

The fused fast path
-------------------
With ``fused=True`` the parameters are moved into one flat array (each
parameter's ``value`` becomes a view of it) and ``update`` runs once on that
array and the concatenated gradients. For an element-wise method (all three
here) the numbers are identical to the per-parameter loop, with a handful of
numpy calls per step instead of a handful per parameter. A method that looks
at a parameter as a whole (a per-tensor norm, say) must leave it off.

References
----------
.. [1] ECE 60146 (2024). Homework 2 report: SGD with momentum (SGD+) and Adam for Avi Kak's
   ComputationalGraphPrimer. Student homework report, ECE 60146 Deep Learning, Purdue
   University, Spring 2024. [ece60146hw2]
.. [2] Kingma, D. P. and Ba, J. (2015). Adam: A method for stochastic optimization.
   ICLR 2015. arXiv:1412.6980. [kingma2015adam]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from coursekit import _checks as checks
from coursekit.primer.engine import Tensor

__all__ = ["SGD", "Adam", "Optimizer", "SGDMomentum"]


class Optimizer:
    """Base class: subclasses implement ``update`` (and ``init_state`` if they keep state).

    Parameters
    ----------
    params : iterable of Tensor
        The learnable leaves, e.g. ``model.parameters()``.
    lr : float
        Learning rate, >= 0.
    fused : bool
        Update all parameters as one flat array (see the module docstring).
    """

    def __init__(self, params: Iterable[Tensor], lr: float, *, fused: bool = False):
        self.params = list(params)
        if not self.params:
            raise checks.invalid("params", "a non-empty list of Tensors to update", self.params)
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise checks.invalid(f"params[{i}]", "a Tensor with requires_grad=True", p)
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError("params must list each Tensor once, got one more than once")
        checks.nonnegative("lr", lr)
        self.lr = lr
        self.fused = fused
        self.state: list[dict] = [{} for _ in self.params]
        self._flat: np.ndarray | None = None
        self._views: list[np.ndarray] = []

    def init_state(self, p: np.ndarray, state: dict) -> None:
        """Create the per-parameter state before the first update (default: none)."""

    def update(self, p: np.ndarray, g: np.ndarray, state: dict) -> None:
        """Update ``p`` in place from its gradient ``g``; subclasses must override."""
        raise NotImplementedError(f"{type(self).__name__} must implement update(p, g, state)")

    def zero_grad(self) -> None:
        """Forget the accumulated gradients."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        if self.fused:
            self._fused_step()
            return
        for p, state in zip(self.params, self.state, strict=True):
            if p.grad is None:
                continue
            if not state:
                self.init_state(p.value, state)
            self.update(p.value, p.grad, state)

    def _fused_step(self) -> None:
        missing = [p for p in self.params if p.grad is None]
        if missing:
            raise ValueError(f"a fused step needs every gradient; {missing[0]!r} has none")
        if self._flat is None or any(p.value is not view
                                     for p, view in zip(self.params, self._views, strict=True)):
            self._gather()
        g = np.concatenate([p.grad.ravel() for p in self.params])
        state = self.state[0]
        if not state:
            self.init_state(self._flat, state)
        self.update(self._flat, g, state)

    def _gather(self) -> None:
        """Copy the parameters into one flat array and make each ``value`` a view of it."""
        self._flat = np.concatenate([p.value.ravel() for p in self.params])
        self._views, start = [], 0
        for p in self.params:
            view = self._flat[start:start + p.value.size].reshape(p.value.shape)
            start += p.value.size
            p.value = view
            self._views.append(view)


class SGD(Optimizer):
    r"""Stochastic gradient descent: :math:`p \leftarrow p - \text{lr}\, g`."""

    def update(self, p: np.ndarray, g: np.ndarray, state: dict) -> None:
        p -= self.lr * g


class SGDMomentum(Optimizer):
    r"""SGD with momentum, the "SGD+" of the primer homework (ECE 60146, 2024).

    .. math::
        v_{t+1} = \mu\, v_t + g_{t+1}, \qquad p_{t+1} = p_t - \text{lr}\, v_{t+1},
        \qquad v_0 = 0

    (``torch.optim.SGD(momentum=mu, dampening=0)``.)

    Parameters
    ----------
    params : iterable of Tensor
        The learnable leaves.
    lr : float
        Learning rate, >= 0.
    mu : float
        Momentum coefficient in [0, 1); ``mu=0`` is plain SGD.
    fused : bool
        Update all parameters as one flat array.

    References
    ----------
    .. [1] ECE 60146 (2024). Homework 2 report: SGD with momentum (SGD+) and Adam for
       Avi Kak's ComputationalGraphPrimer. Student homework report, ECE 60146 Deep
       Learning, Purdue University, Spring 2024. [ece60146hw2]
    """

    def __init__(self, params: Iterable[Tensor], lr: float, mu: float = 0.9, *,
                 fused: bool = False):
        super().__init__(params, lr, fused=fused)
        checks.beta("mu", mu)
        self.mu = mu

    def init_state(self, p: np.ndarray, state: dict) -> None:
        state["v"] = np.zeros_like(p)

    def update(self, p: np.ndarray, g: np.ndarray, state: dict) -> None:
        v = state["v"]
        v *= self.mu
        v += g
        p -= self.lr * v


class Adam(Optimizer):
    r"""Adam (Kingma and Ba, 2015), with ``torch.optim.Adam``'s defaults.

    .. math::
        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2,

        \hat m_t = m_t / (1 - \beta_1^t), \qquad \hat v_t = v_t / (1 - \beta_2^t), \qquad
        p_t = p_{t-1} - \text{lr}\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

    Parameters
    ----------
    params : iterable of Tensor
        The learnable leaves.
    lr : float
        Learning rate, >= 0.
    betas : tuple of float
        ``(beta1, beta2)``, the decay rates of the two moments, each in [0, 1).
    eps : float
        Added to :math:`\sqrt{\hat v_t}` so that the step stays finite, >= 0.
    fused : bool
        Update all parameters as one flat array.

    References
    ----------
    .. [1] Kingma, D. P. and Ba, J. (2015). Adam: A method for stochastic optimization.
       ICLR 2015. arXiv:1412.6980. [kingma2015adam]
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, *,
                 fused: bool = False):
        super().__init__(params, lr, fused=fused)
        checks.betas(betas)
        checks.nonnegative("eps", eps)
        self.beta1, self.beta2 = betas
        self.eps = eps

    def init_state(self, p: np.ndarray, state: dict) -> None:
        state["t"] = 0
        state["m"] = np.zeros_like(p)
        state["v"] = np.zeros_like(p)

    def update(self, p: np.ndarray, g: np.ndarray, state: dict) -> None:
        state["t"] += 1
        t, m, v = state["t"], state["m"], state["v"]
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        m_hat = m / (1 - self.beta1**t)
        v_hat = v / (1 - self.beta2**t)
        p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
