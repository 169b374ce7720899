r"""Hyper-optimizers: learn an optimizer's hyperparameters by gradient descent, stacked.

Chandra et al. (2022), "Gradient Descent: The Ultimate Optimizer". Take SGD and let
its step size ``alpha`` be learned by a second SGD with step size ``kappa``::

    alpha_t = alpha_{t-1} - kappa * d f(w_t) / d alpha_{t-1}        (hypergradient)
    w_{t+1} = w_t - alpha_t * g_t                                   (g_t = grad f(w_t))

Since ``w_t = w_{t-1} - alpha_{t-1} g_{t-1}``, the hypergradient is
``-g_t . g_{t-1}``: alpha grows while successive gradients agree and shrinks
when they point against each other (Baydin et al., 2018, derived such updates by
hand for SGD and Adam). Nobody has to derive that by hand: build
``w_t`` *on the autograd graph* as a function of the hyperparameters, and the
gradient of the next loss, pulled back through that one update, *is* the
hypergradient. The same holds for Adam's betas or RMSProp's gamma, and for the
hyperparameters of the optimizer that learns them, so optimizers stack to any
height (written bottom first, as in the paper)::

    Adam(alpha=1e-3, optimizer=SGD(1e-5))                 Adam / SGD(1e-5)
    SGD(0.01, optimizer=SGD(0.01, optimizer=SGD(1e-4)))   SGD / SGD / SGD

A level without ``optimizer=`` is the top of its stack: its hyperparameters stay
fixed, and on its own it is the plain optimizer.

:class:`ModuleWrapper` makes a stack a ``torch.optim.Optimizer`` over any
``torch.nn.Module``'s parameters, so torch's loop, ``coursekit.train.fit``,
schedulers and ``coursekit.analysis.cost`` drive it like any other optimizer::

    stack = hyper.Adam(alpha=1e-3, optimizer=hyper.SGD(1e-5))
    opt = hyper.ModuleWrapper(model, stack)
    for x, y in batches:         # or: coursekit.train.fit(model, opt, data.train, epochs)
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()          # an ordinary backward; no create_graph needed
        opt.step()
    stack.history["alpha"]       # the alpha used at every step, for plotting

What is treated as a constant (the paper's detach rule): the gradient ``g_t``,
the weights ``w_t`` and every state buffer (momentum, moments) enter an update
detached; only the hyperparameters carry graph. So a hypergradient sees one step
back, the graph lives for exactly one step, and the cost per step is O(1) extra
small ops per level. Within a step the levels update top first, and every level
updates the one below with the values it has just been given (``w_{t+1}`` uses
``alpha_t``), as in the paper's code. That code calls
``loss.backward(create_graph=True)`` but then detaches the gradient, so the
second-order graph it builds is never used; we skip building it, with the same
hypergradients (the tests check ``-g_t . g_{t-1}`` exactly, and that
``create_graph`` changes no value of the paper's code).

Where we differ from the paper's code, and why. ``tests/test_reference_gdtuo.py``
runs a transcription of that code (the ``gdtuo`` module of Chandra et al.'s package)
beside these classes: they agree to float64 rounding once each difference below is
given our choice, and each difference is shown to be there.

- The base rules are torch.optim's (``eps`` added outside the square root, Adam
  and RMSProp moments starting at 0, AdaGrad's sum at
  ``initial_accumulator_value = 0``), so with the top step size 0 every stack
  reproduces ``torch.optim.SGD/Adam/Adagrad/RMSprop`` exactly. The paper's code
  puts ``eps`` inside the square root for RMSProp and AdaGrad (``sqrt(v + eps)``),
  starts Adam's ``v`` at ``eps`` and AdaGrad's sum at 0.1; with ``eps = 0`` on
  both sides, :class:`RMSProp` is its RMSProp, and
  ``AdaGrad(initial_accumulator_value=0.1)`` its AdaGrad.
- The paper's code starts ``v`` at ``eps`` because ``d sqrt(v) / dv`` is infinite
  at 0. We keep ``v_0 = 0`` and take that derivative as 0 where ``v`` is exactly 0
  (:func:`_zero_safe_sqrt`): ``v`` is then 0 for every value of the
  hyperparameters (all past gradients of that coordinate were 0), so 0 is the
  exact derivative, where autograd alone would give ``0 * inf = nan``.
- Reparameterisations keep learned hyperparameters in range, as the paper's code
  does: ``beta1``, ``beta2`` and ``gamma`` are stored as ``x`` with
  ``beta = (1 + tanh x) / 2`` in (0, 1), RMSProp's ``alpha`` as ``a`` with
  ``alpha = a^2 >= 0``. SGD's and Adam's ``alpha`` are learned as they are (and
  may turn negative, as in the paper's code). SGD's momentum ``mu``, which the
  paper's code leaves unconstrained, goes through the same map as the betas here,
  so that no step can push it to 1 or beyond. The level above descends on the
  stored ``x`` or ``a``; :attr:`HyperOptimizer.history` records the natural values.
- At the first step there is no hypergradient yet, and the levels above the bottom
  do not step at all (:meth:`ModuleWrapper.step`). The paper's code steps them with
  a zero hypergradient, which only a level with state notices: an Adam above the
  bottom counts that empty step in its bias correction, which shrinks its first
  real step to ``sqrt(1 + beta2) / (1 + beta1)`` of Adam's usual first step
  (about 0.74 at the defaults, with ``v_0 = 0``).
  We count only steps that have something to learn from.
- ``learn=`` chooses which hyperparameters the level above learns; the paper's
  code learns all of a level's (SGD's ``mu`` even without momentum, where its
  hypergradient is 0 and it stays 0), except in its ``RMSPropAlpha`` and
  ``AdamBaydin`` (our :class:`AdamAlpha`). Our hyperparameters take the model's
  dtype and device; the paper's code makes them in torch's default dtype (float32
  unless changed) whatever the model's.

References
----------
.. [1] Chandra, K., Xie, A., Ragan-Kelley, J. and Meijer, E. (2022). Gradient descent: The
   ultimate optimizer. NeurIPS 2022. arXiv:1909.13371. [chandra2022gradient]
.. [2] Baydin, A. G., Cornish, R., Martínez Rubio, D., Schmidt, M. and Wood, F. (2018).
   Online learning rate adaptation with hypergradient descent. ICLR 2018. arXiv:1703.04782.
   [baydin2018online]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from coursekit import _checks as checks

__all__ = [
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamAlpha",
    "HyperOptimizer",
    "ModuleWrapper",
    "RMSProp",
    "RMSPropAlpha",
]

Clip = Callable[[list[torch.Tensor]], list[torch.Tensor]]
"""A gradient transformation such as :class:`coursekit.optim.clip.RunningMeanClip`."""


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _to_unit_interval(x: torch.Tensor) -> torch.Tensor:
    """``(1 + tanh x) / 2``: the real line onto (0, 1), so a decay rate stays one."""
    return (1 + torch.tanh(x)) / 2


def _from_unit_interval(beta: torch.Tensor) -> torch.Tensor:
    return torch.atanh(2 * beta - 1)


def _zero_safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(x)`` for ``x >= 0`` whose derivative is 0 instead of inf where ``x == 0``."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, 1.0).sqrt(), 0.0)


_AS_IS = (_identity, _identity)
_UNIT_INTERVAL = (_from_unit_interval, _to_unit_interval)
_SQUARED = (torch.sqrt, torch.square)


class HyperOptimizer:
    """One level of a stack: an update rule whose hyperparameters may be learned.

    A subclass declares its hyperparameters' reparameterisations in ``_reparam``
    (name -> (natural to stored, stored to natural)) and writes two methods for
    *one* tensor, as :class:`coursekit.optim.base.Optimizer` subclasses do:
    ``init_state(param, state)`` and ``update(param, grad, state, h) -> new
    param``, where ``h`` maps names to the current natural hyperparameters.
    ``update`` must return a new tensor (no in-place ops) and store only detached
    tensors in ``state``, so that the result depends on ``h`` alone; it replaces
    the entries of ``state`` rather than changing them in place, so that the
    update can be redone from a copy of ``state`` (how
    :meth:`ModuleWrapper.load_state_dict` rebuilds its graph).

    Parameters
    ----------
    hyperparameters : dict
        Initial natural values, e.g. ``{"alpha": 1e-3, "beta1": 0.9}``.
    optimizer : HyperOptimizer or None
        The level above, which learns the hyperparameters named in ``learn``.
        ``None`` makes this the top of the stack, with fixed hyperparameters.
    learn : iterable of str or None
        Which hyperparameters the level above learns; ``None`` means all of them
        when ``optimizer`` is given (none otherwise).
    clip : callable or None
        Applied to the list of gradients this level receives before it uses
        them (the parameters' gradients at the bottom, hypergradients above),
        e.g. :class:`coursekit.optim.clip.RunningMeanClip`.

    References
    ----------
    .. [1] Chandra, K., Xie, A., Ragan-Kelley, J. and Meijer, E. (2022). Gradient
       descent: The ultimate optimizer. NeurIPS 2022. arXiv:1909.13371.
       [chandra2022gradient]
    """

    _reparam: ClassVar[dict[str, tuple[Callable, Callable]]] = {}

    def __init__(self, hyperparameters: dict[str, float], *,
                 optimizer: HyperOptimizer | None = None,
                 learn: Iterable[str] | None = None, clip: Clip | None = None):
        checks.instance("optimizer", optimizer, (HyperOptimizer, type(None)),
                        what="a hyper-optimizer such as hyper.SGD(1e-5), or None for the top "
                             "of the stack")
        if clip is not None:
            checks.function("clip", clip, what="a callable on a list of gradients")
        names = tuple(hyperparameters)
        if learn is None:
            learn = names if optimizer is not None else ()
        else:
            learn = tuple(learn)
            if any(name not in names for name in learn):
                raise checks.invalid("learn", f"a subset of {type(self).__name__}'s "
                                     f"hyperparameters {list(names)}", learn)
            if optimizer is None and learn:
                raise checks.invalid("learn", "empty without optimizer= (the level that learns "
                                     "them, e.g. optimizer=hyper.SGD(1e-5))", learn)
            if optimizer is not None and not learn:
                raise checks.invalid("learn", f"at least one of {list(names)} when optimizer= "
                                     "is given", learn)
        for name in learn:
            if self._reparam[name] is _UNIT_INTERVAL and not 0 < hyperparameters[name] < 1:
                raise checks.invalid(name, f"in (0, 1) when learned (it is stored as "
                                     f"atanh(2 {name} - 1))", hyperparameters[name])
        self.optimizer = optimizer
        self.learn: tuple[str, ...] = learn
        self.clip = clip
        self.initial = dict(hyperparameters)
        self.state: list[dict[str, torch.Tensor | int]] = []
        self._stored: dict[str, torch.Tensor] = {}
        self._record: dict[str, list[torch.Tensor]] = {name: [] for name in names}
        self._bound = False
        # The inputs of this level's last update while its output carries a graph (self.learn
        # non-empty): what ModuleWrapper.load_state_dict redoes to rebuild that graph.
        self._last: tuple[list[torch.Tensor], list[torch.Tensor], list[dict]] | None = None

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={value:g}" for name, value in self.initial.items())
        above = "" if self.optimizer is None else f" / {self.optimizer!r}"
        return f"{type(self).__name__}({args}){above}"

    def init_state(self, param: torch.Tensor, state: dict) -> None:
        """Create the per-tensor state on the first step (default: none)."""

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict,
               h: dict[str, torch.Tensor]) -> torch.Tensor:
        """Return the updated ``param``; must be overridden."""
        raise NotImplementedError(f"{type(self).__name__} must implement update()")

    def levels(self) -> list[HyperOptimizer]:
        """This level and every level above it, bottom first."""
        return [self] if self.optimizer is None else [self, *self.optimizer.levels()]

    def hyperparameters(self) -> dict[str, float]:
        """The current natural value of every hyperparameter (initial ones before training)."""
        if not self._bound:
            return dict(self.initial)
        return {name: value.item() for name, value in self._natural().items()}

    @property
    def history(self) -> dict[str, list[float]]:
        """Per hyperparameter, the natural value in force at each training step so far.

        Entry ``s`` is the value this level used at step ``s + 1`` (to update the
        weights at the bottom level, or the hyperparameters below it higher up).
        """
        return {name: torch.stack(values).tolist() if values else []
                for name, values in self._record.items()}

    def _bind(self, like: torch.Tensor, count: int) -> None:
        """Create the hyperparameter tensors (dtype and device of ``like``) and the state of
        ``count`` tensors, here and in every level above."""
        if self._bound:
            raise RuntimeError(f"{self!r} already drives a model; build a new stack for each")
        self._bound = True
        self.state = [{} for _ in range(count)]
        for name, value in self.initial.items():
            stored = torch.tensor(value, dtype=like.dtype, device=like.device)
            if name in self.learn:
                stored = self._reparam[name][0](stored).requires_grad_()
            self._stored[name] = stored
        if self.optimizer is not None:
            self.optimizer._bind(like, len(self.learn))

    def _natural(self) -> dict[str, torch.Tensor]:
        """Natural values, differentiable w.r.t. the stored tensors of the learned ones."""
        return {name: self._reparam[name][1](stored) if name in self.learn else stored
                for name, stored in self._stored.items()}

    def _learned(self) -> list[torch.Tensor]:
        return [self._stored[name] for name in self.learn]

    def _set_learned(self, values: Sequence[torch.Tensor]) -> None:
        for name, value in zip(self.learn, values, strict=True):
            # Below a fixed top level the new value has no graph: make it a leaf
            # that the next hypergradient can reach.
            self._stored[name] = value if value.requires_grad else value.requires_grad_()

    def _step(self, params: Sequence[torch.Tensor],
              grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """New values of the (detached) ``params`` as functions of this level's hyperparameters."""
        grads = list(grads) if self.clip is None else self.clip(list(grads))
        for param, state in zip(params, self.state, strict=True):
            if not state:
                self.init_state(param, state)
        if self.learn:
            # Copies of the inputs (the weights at the bottom change in place after this
            # step); gradients and state entries are never changed in place.
            self._last = ([p.clone() for p in params], grads, [dict(s) for s in self.state])
        return self._apply(params, grads, self.state)

    def _apply(self, params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor],
               states: Sequence[dict]) -> list[torch.Tensor]:
        h = self._natural()
        return [self.update(param, grad, state, h)
                for param, grad, state in zip(params, grads, states, strict=True)]

    def _replay(self) -> list[torch.Tensor]:
        """The last update once more, from its saved inputs and the current hyperparameters
        (the same values, and the same graph, as the first time)."""
        params, grads, before = self._last
        return self._apply(params, grads, [dict(state) for state in before])

    def _remember(self) -> None:
        for name, value in self._natural().items():
            self._record[name].append(value.detach())

    def _state_dict(self, with_state: bool) -> dict[str, Any]:
        """This level for :meth:`ModuleWrapper.state_dict` (``state`` only when ``with_state``:
        the bottom level's is torch's per-parameter ``state``)."""
        last = None
        if self._last is not None:
            inputs, grads, before = self._last
            last = {"inputs": inputs, "grads": grads, "before": before}
        clip_state = getattr(self.clip, "state_dict", None)
        return {
            "kind": type(self).__name__,
            "hyperparameters": list(self.initial),
            "learn": list(self.learn),
            "stored": {name: value.detach() for name, value in self._stored.items()},
            "state": self.state if with_state else None,
            "last": last,
            "history": {name: torch.stack(values) if values else torch.empty(0)
                        for name, values in self._record.items()},
            "clip": clip_state() if clip_state is not None else None,
        }

    def _load_state_dict(self, saved: dict[str, Any], like: torch.Tensor) -> None:
        """Restore what :meth:`_state_dict` saved, on the dtype and device of ``like``."""
        def cast(value: Any) -> Any:
            if isinstance(value, torch.Tensor):
                dtype = like.dtype if value.is_floating_point() else None
                return value.to(device=like.device, dtype=dtype)
            if isinstance(value, dict):
                return {key: cast(item) for key, item in value.items()}
            if isinstance(value, list):
                return [cast(item) for item in value]
            return value

        stored = {}
        for name, value in saved["stored"].items():
            value = cast(value).detach().clone()
            stored[name] = value.requires_grad_() if name in self.learn else value
        self._stored = stored
        if saved["state"] is not None:
            self.state = cast(saved["state"])
        last = saved["last"]
        self._last = None if last is None else (cast(last["inputs"]), cast(last["grads"]),
                                                cast(last["before"]))
        self._record = {name: list(values.to(like.device).unbind(0))
                        for name, values in saved["history"].items()}
        if saved["clip"] is not None:
            self.clip.load_state_dict(cast(saved["clip"]))


class SGD(HyperOptimizer):
    r"""SGD whose step size ``alpha`` (and momentum ``mu``, if used) can be learned.

    ``torch.optim.SGD(lr=alpha, momentum=mu)`` written as a hyper-optimizer::

        b_t     = g_t                         if t == 1       (only when mu > 0)
        b_t     = mu * b_{t-1} + g_t          otherwise
        w_{t+1} = w_t - alpha * b_t           (b_t = g_t without momentum)

    Parameters
    ----------
    alpha : float
        Step size, >= 0. Learned as it is, so it may become negative.
    mu : float
        Momentum in [0, 1); 0 disables momentum (and ``mu`` is then not a
        hyperparameter). Learned as ``mu = (1 + tanh x) / 2`` (the paper's code
        learns it as it is; see the module docstring).
    optimizer, learn, clip
        See :class:`HyperOptimizer`; ``learn`` may name ``"alpha"`` and ``"mu"``.

    References
    ----------
    .. [1] Chandra, K., Xie, A., Ragan-Kelley, J. and Meijer, E. (2022). Gradient
       descent: The ultimate optimizer. NeurIPS 2022. arXiv:1909.13371.
       [chandra2022gradient]
    .. [2] Baydin, A. G., Cornish, R., Martínez Rubio, D., Schmidt, M. and Wood, F.
       (2018). Online learning rate adaptation with hypergradient descent. ICLR 2018.
       arXiv:1703.04782. [baydin2018online]
    """

    _reparam: ClassVar = {"alpha": _AS_IS, "mu": _UNIT_INTERVAL}

    def __init__(self, alpha: float = 0.01, mu: float = 0.0, *,
                 optimizer: HyperOptimizer | None = None,
                 learn: Iterable[str] | None = None, clip: Clip | None = None):
        checks.nonnegative("alpha", alpha)
        checks.beta("mu", mu)
        hyperparameters = {"alpha": float(alpha)}
        if mu > 0:
            hyperparameters["mu"] = float(mu)
        super().__init__(hyperparameters, optimizer=optimizer, learn=learn, clip=clip)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict,
               h: dict[str, torch.Tensor]) -> torch.Tensor:
        if "mu" in h:
            if "momentum_buffer" in state:
                grad = h["mu"] * state["momentum_buffer"] + grad
            state["momentum_buffer"] = grad.detach()
        return param - h["alpha"] * grad


class Adam(HyperOptimizer):
    r"""Adam whose ``alpha``, ``beta1`` and ``beta2`` can be learned.

    ``torch.optim.Adam(lr=alpha, betas=(beta1, beta2), eps=eps)`` written as a
    hyper-optimizer::

        m_t     = beta1 * m_{t-1} + (1 - beta1) * g_t            (m_0 = 0)
        v_t     = beta2 * v_{t-1} + (1 - beta2) * g_t^2          (v_0 = 0)
        m_hat   = m_t / (1 - beta1^t),   v_hat = v_t / (1 - beta2^t)
        w_{t+1} = w_t - alpha * m_hat / (sqrt(v_hat) + eps)

    Both moments depend on the betas of *this* step only: ``m_{t-1}`` and
    ``v_{t-1}`` are detached. The paper's code starts ``v`` at ``eps`` instead
    (``v_0 = eps``); with ``v_0 = 0`` it is this rule (module docstring).

    Parameters
    ----------
    alpha : float
        Step size, >= 0. Learned as it is.
    beta1, beta2 : float
        Moment decay rates in [0, 1) (in (0, 1) when learned, as
        ``beta = (1 + tanh x) / 2``).
    eps : float
        Added to ``sqrt(v_hat)``; fixed.
    optimizer, learn, clip
        See :class:`HyperOptimizer`; ``learn`` may name ``"alpha"``,
        ``"beta1"`` and ``"beta2"``.

    References
    ----------
    .. [1] Kingma, D. P. and Ba, J. (2015). Adam: A method for stochastic optimization.
       ICLR 2015. arXiv:1412.6980. [kingma2015adam]
    .. [2] Chandra, K., Xie, A., Ragan-Kelley, J. and Meijer, E. (2022). Gradient
       descent: The ultimate optimizer. NeurIPS 2022. arXiv:1909.13371.
       [chandra2022gradient]
    """

    _reparam: ClassVar = {"alpha": _AS_IS, "beta1": _UNIT_INTERVAL, "beta2": _UNIT_INTERVAL}

    def __init__(self, alpha: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, *, optimizer: HyperOptimizer | None = None,
                 learn: Iterable[str] | None = None, clip: Clip | None = None):
        checks.nonnegative("alpha", alpha)
        checks.beta("beta1", beta1)
        checks.beta("beta2", beta2)
        checks.nonnegative("eps", eps)
        self.eps = float(eps)
        super().__init__({"alpha": float(alpha), "beta1": float(beta1), "beta2": float(beta2)},
                         optimizer=optimizer, learn=learn, clip=clip)

    def init_state(self, param: torch.Tensor, state: dict) -> None:
        state["step"] = 0
        state["m"] = torch.zeros_like(param)
        state["v"] = torch.zeros_like(param)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict,
               h: dict[str, torch.Tensor]) -> torch.Tensor:
        state["step"] += 1
        t = state["step"]
        beta1, beta2 = h["beta1"], h["beta2"]
        m = beta1 * state["m"] + (1 - beta1) * grad
        v = beta2 * state["v"] + (1 - beta2) * grad * grad
        state["m"], state["v"] = m.detach(), v.detach()
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        return param - h["alpha"] * m_hat / (_zero_safe_sqrt(v_hat) + self.eps)


class AdamAlpha(Adam):
    """Adam^alpha: Adam that learns only its step size ``alpha`` (the betas stay fixed).

    Same arguments as :class:`Adam`, without ``learn``. The paper's code calls it
    ``AdamBaydin`` (after Baydin et al., 2018); it differs as :class:`Adam` does.
    """

    def __init__(self, alpha: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, *, optimizer: HyperOptimizer | None = None,
                 clip: Clip | None = None):
        super().__init__(alpha, beta1, beta2, eps, optimizer=optimizer,
                         learn=None if optimizer is None else ("alpha",), clip=clip)


class AdaGrad(HyperOptimizer):
    r"""AdaGrad whose step size ``alpha`` can be learned.

    ``torch.optim.Adagrad(lr=alpha, eps=eps,
    initial_accumulator_value=initial_accumulator_value)`` written as a
    hyper-optimizer::

        s_t     = s_{t-1} + g_t^2                      (s_0 = initial_accumulator_value)
        w_{t+1} = w_t - alpha * g_t / (sqrt(s_t) + eps)

    The paper's code starts at ``s_0 = 0.1`` and divides by ``sqrt(s_t + eps)``:
    with ``eps = 0`` on both sides, ``initial_accumulator_value=0.1`` is its rule.

    Parameters
    ----------
    alpha : float
        Step size, >= 0. Learned as it is.
    eps : float
        Added to ``sqrt(s_t)``; fixed.
    initial_accumulator_value : float
        Starting value of the squared-gradient sum, >= 0.
    optimizer, clip
        See :class:`HyperOptimizer`; the level above learns ``alpha``.

    References
    ----------
    .. [1] Duchi, J., Hazan, E. and Singer, Y. (2011). Adaptive subgradient methods for
       online learning and stochastic optimization. Journal of Machine Learning
       Research, 12, 2121–2159. [duchi2011adaptive]
    .. [2] Chandra, K., Xie, A., Ragan-Kelley, J. and Meijer, E. (2022). Gradient
       descent: The ultimate optimizer. NeurIPS 2022. arXiv:1909.13371.
       [chandra2022gradient]
    """

    _reparam: ClassVar = {"alpha": _AS_IS}

    def __init__(self, alpha: float = 1e-2, eps: float = 1e-10,
                 initial_accumulator_value: float = 0.0, *,
                 optimizer: HyperOptimizer | None = None, clip: Clip | None = None):
        checks.nonnegative("alpha", alpha)
        checks.nonnegative("eps", eps)
        checks.nonnegative("initial_accumulator_value", initial_accumulator_value)
        self.eps = float(eps)
        self.initial_accumulator_value = float(initial_accumulator_value)
        super().__init__({"alpha": float(alpha)}, optimizer=optimizer, clip=clip)

    def init_state(self, param: torch.Tensor, state: dict) -> None:
        state["sum"] = torch.full_like(param, self.initial_accumulator_value)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict,
               h: dict[str, torch.Tensor]) -> torch.Tensor:
        state["sum"] = state["sum"] + grad * grad
        return param - h["alpha"] * grad / (state["sum"].sqrt() + self.eps)


class RMSProp(HyperOptimizer):
    r"""RMSProp whose step size ``alpha`` and smoothing ``gamma`` can be learned.

    ``torch.optim.RMSprop(lr=alpha, alpha=gamma, eps=eps)`` written as a
    hyper-optimizer (note torch's name ``alpha`` for what the paper calls
    ``gamma``)::

        v_t     = gamma * v_{t-1} + (1 - gamma) * g_t^2         (v_0 = 0)
        w_{t+1} = w_t - alpha * g_t / (sqrt(v_t) + eps)

    The paper's code divides by ``sqrt(v_t + eps)``: with ``eps = 0`` on both sides
    the two rules are the same.

    Parameters
    ----------
    alpha : float
        Step size, >= 0. Learned as ``alpha = a^2``, so it stays >= 0.
    gamma : float
        Smoothing constant in [0, 1) (in (0, 1) when learned, as
        ``gamma = (1 + tanh x) / 2``).
    eps : float
        Added to ``sqrt(v_t)``; fixed.
    optimizer, learn, clip
        See :class:`HyperOptimizer`; ``learn`` may name ``"alpha"`` and ``"gamma"``.

    References
    ----------
    .. [1] Hinton, G., Srivastava, N. and Swersky, K. (2012). Neural networks for
       machine learning, Lecture 6 (6d: a separate, adaptive learning rate for each
       connection; 6e: rmsprop: divide the gradient by a running average of its recent
       magnitude). Lecture slides, Coursera, University of Toronto. [hinton2012neural]
    .. [2] Chandra, K., Xie, A., Ragan-Kelley, J. and Meijer, E. (2022). Gradient
       descent: The ultimate optimizer. NeurIPS 2022. arXiv:1909.13371.
       [chandra2022gradient]
    """

    _reparam: ClassVar = {"alpha": _SQUARED, "gamma": _UNIT_INTERVAL}

    def __init__(self, alpha: float = 1e-2, gamma: float = 0.99, eps: float = 1e-8, *,
                 optimizer: HyperOptimizer | None = None,
                 learn: Iterable[str] | None = None, clip: Clip | None = None):
        checks.nonnegative("alpha", alpha)
        checks.beta("gamma", gamma)
        checks.nonnegative("eps", eps)
        self.eps = float(eps)
        super().__init__({"alpha": float(alpha), "gamma": float(gamma)},
                         optimizer=optimizer, learn=learn, clip=clip)

    def init_state(self, param: torch.Tensor, state: dict) -> None:
        state["v"] = torch.zeros_like(param)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict,
               h: dict[str, torch.Tensor]) -> torch.Tensor:
        gamma = h["gamma"]
        v = gamma * state["v"] + (1 - gamma) * grad * grad
        state["v"] = v.detach()
        return param - h["alpha"] * grad / (_zero_safe_sqrt(v) + self.eps)


class RMSPropAlpha(RMSProp):
    """RMSProp^alpha: RMSProp that learns only its step size ``alpha`` (``gamma`` stays fixed).

    Same arguments as :class:`RMSProp`, without ``learn``.
    """

    def __init__(self, alpha: float = 1e-2, gamma: float = 0.99, eps: float = 1e-8, *,
                 optimizer: HyperOptimizer | None = None, clip: Clip | None = None):
        super().__init__(alpha, gamma, eps, optimizer=optimizer,
                         learn=None if optimizer is None else ("alpha",), clip=clip)


class _Hyperparameters(Mapping):
    """A level's current natural hyperparameters as Python numbers, read when asked.

    A live view (like ``dict.items()``), kept in ``ModuleWrapper.state`` so that the
    hyperparameters count as optimizer state without a device sync at every step.
    """

    def __init__(self, level: HyperOptimizer):
        self._level = level

    def __getitem__(self, name: str) -> float:
        return self._level.hyperparameters()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._level.initial)

    def __len__(self) -> int:
        return len(self._level.initial)

    def __repr__(self) -> str:
        return repr(dict(self))


class ModuleWrapper(torch.optim.Optimizer):
    """A stack of hyper-optimizers as a ``torch.optim.Optimizer`` over a module's parameters.

    ::

        opt = hyper.ModuleWrapper(model, hyper.SGD(0.01, optimizer=hyper.SGD(0.01)))
        for x, y in batches:          # or coursekit.train.fit(model, opt, data.train, epochs)
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()

    The module's parameters stay ordinary leaf ``nn.Parameter`` s, so ``model(x)``,
    ``model.state_dict()`` and evaluation work as usual. Move the module to its
    device and dtype before wrapping it: the hyperparameters are created to match.
    One wrapper drives one stack, which drives one model: build both anew per run.

    Torch's optimizer protocol, as it reads for a stack:

    - ``param_groups``: one group with every parameter. Its ``"lr"`` is the bottom
      level's step size ``alpha``: after each :meth:`step` it holds the alpha that
      step used (so :func:`coursekit.train.fit`, which reads it before a step,
      records for each step the alpha of the step before; ``stack.history`` has
      the exact values). Setting it, as a learning-rate scheduler does, sets the
      bottom level's alpha for the next steps when that alpha is fixed; a learned
      alpha belongs to the level above, and :meth:`step` refuses a new value.
      NaN when the bottom level has no ``alpha``.
    - ``step(closure=None)``: with a closure (which zeroes the gradients, computes
      the loss, calls ``backward()`` and returns the loss), calls it under
      ``torch.enable_grad()`` first and returns its loss, as torch's optimizers do.
    - ``zero_grad(set_to_none=True)``: torch's.
    - ``state``: what the stack keeps between steps, the way torch's optimizers keep
      it. ``state[p]`` is the bottom level's state of parameter ``p`` (Adam's ``m``,
      ``v`` and ``step``; SGD's ``momentum_buffer``; nothing for plain SGD);
      ``state["hyperparameters"]`` holds every level's current hyperparameters,
      bottom first, as numbers; ``state["above"]`` the state of every level above
      the bottom (one dict per hyperparameter it learns). That is what
      :func:`coursekit.analysis.cost.optimizer_state_bytes` counts.
    - ``state_dict()`` / ``load_state_dict()``: besides torch's ``state`` and
      ``param_groups``, ``state_dict()["stack"]`` holds every level's stored
      hyperparameters (in the form the level above learns them), its state, its
      history, its clip's state (when the clip has ``state_dict()``, as
      :class:`coursekit.optim.clip.RunningMeanClip` does; a stateful clip without one
      resumes with the state it has) and the inputs of its last update. From those
      inputs ``load_state_dict`` redoes the last step's updates, which rebuilds the
      autograd graph the next hypergradient flows through, so a stack saved
      mid-training and loaded into a freshly built wrapper (same model, same kind of
      stack) continues exactly as if it had never stopped. Those inputs are kept
      between steps beside that graph, outside ``state`` (the graph is not optimizer
      state either): a copy of the weights before the last update, and that
      update's gradients and previous state (often the graph holds these anyway).

    Parameters
    ----------
    params : nn.Module or iterable of tensors
        The model (its parameters that require grad), or the tensors themselves.
    stack : HyperOptimizer
        The bottom of the stack, e.g. ``hyper.Adam(1e-3, optimizer=hyper.SGD(1e-5))``.
    """

    def __init__(self, params: nn.Module | Iterable[torch.Tensor], stack: HyperOptimizer):
        checks.instance("stack", stack, HyperOptimizer,
                        what="a hyper-optimizer stack such as "
                             "hyper.SGD(0.01, optimizer=hyper.SGD(0.01))")
        tensors = list(params.parameters() if isinstance(params, nn.Module) else params)
        if not all(isinstance(p, torch.Tensor) for p in tensors):
            raise checks.invalid("params", "a module or an iterable of tensors (one stack "
                                 "drives one group of parameters)", params, TypeError)
        tensors = [p for p in tensors if p.requires_grad]
        if not tensors:
            raise checks.invalid("params", "parameters of which some require grad", params)
        first = tensors[0]
        for p in tensors:
            if not p.is_leaf or not p.is_floating_point():
                raise checks.invalid("params", "floating-point leaf tensors",
                                     f"one of dtype {p.dtype} with is_leaf={p.is_leaf}")
            if (p.dtype, p.device) != (first.dtype, first.device):
                raise checks.invalid("params", "tensors of one dtype and device",
                                     f"{first.dtype} on {first.device} and {p.dtype} on "
                                     f"{p.device}")
        self._lr = stack.initial.get("alpha", math.nan)
        super().__init__(tensors, {"lr": self._lr})
        self.stack = stack
        stack._bind(first, len(tensors))
        self._link_state()
        # The bottom level's last output: the current weights once more, as a graph
        # whose inputs are the hyperparameters that produced them (None until the
        # first step, or when nothing is learned).
        self._pending: list[torch.Tensor] | None = None

    def __repr__(self) -> str:
        return f"ModuleWrapper({self.stack!r})"

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Torch's, for the one group ``__init__`` makes; a stack drives no second group."""
        if self.param_groups:
            raise ValueError("param_groups must be one group (the stack drives one; wrap other "
                             "parameters in a ModuleWrapper with a stack of their own), got a "
                             "second")
        super().add_param_group(param_group)

    def _link_state(self) -> None:
        """Make ``self.state`` show the stack's state (the same dicts, not copies)."""
        levels = self.stack.levels()
        for p, state in zip(self.param_groups[0]["params"], levels[0].state, strict=True):
            self.state[p] = state
        self.state["hyperparameters"] = [_Hyperparameters(level) for level in levels]
        self.state["above"] = [level.state for level in levels[1:]]

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update the hyperparameters of every level (top first), then the parameters.

        Step t, with ``p.grad = dL_t/dw_t`` filled by ``loss.backward()`` (or by
        ``closure``, called first under ``torch.enable_grad()``):

        1. hypergradients: pull ``dL_t/dw_t`` back through last step's update, which
           produced ``w_t`` from the hyperparameters then in force;
        2. from the top of the stack down, each level updates the hyperparameters
           of the level below with its own rule;
        3. the bottom level computes ``w_{t+1}`` with the new hyperparameters.

        The first step has no previous update, hence no hypergradient: only the
        parameters move, the hyperparameters keep their initial values and the
        levels above the bottom neither step nor count it (their state, such as
        Adam's step count or a clip's running mean, starts at step 2). The
        hyperparameters of the level ``k`` places above the bottom first get a
        non-zero hypergradient at step ``k + 2``, once a graph runs through them.

        Returns
        -------
        The closure's loss, or None without a closure.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        group = self.param_groups[0]
        self._take_lr(group["lr"])
        params = group["params"]
        # Cloned so that a later in-place change of p.grad (zero_grad(set_to_none=False),
        # gradient accumulation) cannot alter the tensors saved in the graph below.
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
                 for p in params]
        levels = self.stack.levels()
        with torch.enable_grad():
            if self._pending is not None:
                self._update_hyperparameters(levels, grads)
            # w_t enters detached, so w_{t+1}'s graph reaches back exactly one step:
            # to the hyperparameters just updated, and through them to the levels above.
            new = levels[0]._step([p.detach() for p in params], grads)
        with torch.no_grad():
            for p, value in zip(params, new, strict=True):
                p.copy_(value)
        self._pending = new if levels[0].learn else None
        for level in levels:
            level._remember()
        if "alpha" in self.stack.learn:
            self._lr = group["lr"] = self.stack._record["alpha"][-1].item()
        return loss

    def _take_lr(self, lr: float) -> None:
        """Give the bottom level's fixed alpha a value set from outside (by a scheduler)."""
        if lr == self._lr or (math.isnan(lr) and math.isnan(self._lr)):
            return
        bottom = self.stack
        if "alpha" not in bottom.initial or "alpha" in bottom.learn:
            has = "learns its alpha" if "alpha" in bottom.learn else "has no alpha"
            raise RuntimeError(f"param_groups[0]['lr'] was set to {lr!r}, but {bottom!r} {has}; "
                               "only a fixed alpha can be set from outside (a scheduler)")
        checks.nonnegative("lr", lr)
        fixed = bottom._stored["alpha"]
        bottom._stored["alpha"] = torch.tensor(float(lr), dtype=fixed.dtype, device=fixed.device)
        self._lr = lr

    def _update_hyperparameters(self, levels: list[HyperOptimizer],
                                grads: list[torch.Tensor]) -> None:
        learners = levels[:-1]  # every level but the top has its hyperparameters learned
        inputs = [h for level in learners for h in level._learned()]
        # Chain rule split in two: loss.backward() gave dL/dw_t; this pulls it back
        # through w_t = update(w_{t-1}, h), giving dL/dh for the h of every level
        # (a level's h reaches w_t through the hyperparameters below it). The graph
        # is freed here: each one is used exactly once.
        # (Weights that do not depend on any learned h yet, like SGD's at step 2 when
        # only its momentum is learned, contribute nothing.)
        linked = [(w, g) for w, g in zip(self._pending, grads, strict=True) if w.requires_grad]
        hypergrads = [None] * len(inputs)
        if linked:
            hypergrads = torch.autograd.grad([w for w, _ in linked], inputs,
                                             grad_outputs=[g for _, g in linked],
                                             allow_unused=True)
        hypergrads = [torch.zeros_like(h) if g is None else g
                      for h, g in zip(inputs, hypergrads, strict=True)]
        per_level, start = [], 0
        for level in learners:
            per_level.append(hypergrads[start:start + len(level.learn)])
            start += len(level.learn)
        # Top first, so each level updates the one below with its own new values
        # (whose graph reaches one step back, to the level above it).
        for level, level_hypergrads in reversed(list(zip(learners, per_level, strict=True))):
            old = [h.detach() for h in level._learned()]
            level._set_learned(level.optimizer._step(old, level_hypergrads))

    def state_dict(self) -> dict[str, Any]:
        """Torch's ``state`` (the bottom level's, per parameter) and ``param_groups``, and
        ``"stack"``: per level, what :meth:`load_state_dict` needs to continue exactly."""
        packed = super().state_dict()
        packed["state"] = {key: value for key, value in packed["state"].items()
                           if isinstance(key, int)}
        packed["stack"] = [level._state_dict(with_state=k > 0)
                           for k, level in enumerate(self.stack.levels())]
        return packed

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` into this wrapper (built like the one saved), and
        rebuild the graph of the last update, so that training continues exactly."""
        levels = self.stack.levels()
        saved = state_dict.get("stack")

        def layout(entries: list[dict[str, Any]]) -> list[tuple]:
            return [(e["kind"], list(e["hyperparameters"]), list(e["learn"])) for e in entries]

        mine = [level._state_dict(with_state=False) for level in levels]
        if saved is None or layout(saved) != layout(mine):
            found = "no stack" if saved is None else layout(saved)
            raise ValueError(f"state_dict must be the state of a stack like this wrapper's "
                             f"{layout(mine)} (kind, hyperparameters, learned; build the stack "
                             f"that was saved), got {found}")
        for level, entry in zip(levels, saved, strict=True):
            if entry["clip"] is not None and not hasattr(level.clip, "load_state_dict"):
                raise ValueError(f"state_dict must hold no clip state for {level!r}, whose "
                                 f"clip has no load_state_dict() (clip={level.clip!r}), got "
                                 "a clip's state")
        super().load_state_dict({key: value for key, value in state_dict.items()
                                 if key != "stack"})
        params = self.param_groups[0]["params"]
        levels[0].state = [self.state[p] for p in params]   # torch's copies, cast to params
        for level, entry in zip(levels, saved, strict=True):
            level._load_state_dict(entry, params[0])
        self._link_state()
        self._lr = self.param_groups[0]["lr"]
        # Redo the last step's updates, top first (each level's new hyperparameters
        # from the level above's), then the bottom's: the graph the next step needs.
        with torch.enable_grad():
            for level in reversed(levels[:-1]):
                if level.optimizer._last is not None:
                    level._set_learned(level.optimizer._replay())
            self._pending = levels[0]._replay() if levels[0]._last is not None else None
