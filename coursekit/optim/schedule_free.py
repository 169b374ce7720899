r"""Schedule-Free SGD and AdamW: an average of the iterates in place of a decaying schedule.

Defazio et al. (2024). A learning-rate schedule that decays to zero makes the last
iterate behave like an average of the earlier ones. Schedule-Free keeps that average
explicitly and needs no schedule (nor the training length) in advance. Three sequences:
``z`` takes plain (or Adam-scaled) gradient steps, ``x`` is a running weighted average
of the ``z``'s, and the gradient is taken at ``y``, between the two::

    z_1 = x_1 = theta_0
    for t = 1, 2, ...
        y_t = (1 - beta) z_t + beta x_t                where the gradient is evaluated
        g_t = grad f(y_t)
        d_t = g_t                                       SGD
        d_t = g_t / (sqrt(v_t / (1 - beta2^t)) + eps),  AdamW, with
              v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
        d_t = d_t + wd * y_t                            weight decay, at y
        lr_t = lr * min(1, t / warmup_steps)            linear warmup only
        z_{t+1} = z_t - lr_t d_t
        w_t = t^r * max(lr_1, ..., lr_t)^weight_lr_power   weight of z_{t+1} in the average
        c_{t+1} = w_t / (w_1 + ... + w_t)
        x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}

``beta`` is ``momentum`` (SGD) or ``betas[0]`` (AdamW). With ``r = 0`` and no warmup,
``c = 1/t`` and ``x`` is the plain average of the ``z``'s. As in the authors' package,
the parameter tensor holds ``y`` during training and only ``z`` is stored: substituting
the lines above gives ``y`` directly,

    y_{t+1} = (1 - c_{t+1}) y_t + c_{t+1} z_t + lr_t (beta (1 - c_{t+1}) - 1) d_t,

and ``x = (y - (1 - beta) z) / beta`` is recovered when needed. **The train/eval switch**:
training evaluates gradients at ``y``, but the weights to evaluate, test or save are
``x``. ``optimizer.eval()`` moves the parameters from ``y`` to ``x``
(``p <- p + (1 - 1/beta)(z - p)``) and ``optimizer.train()`` moves them back
(``p <- p + (1 - beta)(z - p)``). Call ``train()`` before the first step (``step()``
refuses to run in eval mode) and ``eval()`` before evaluating, as the package requires.
A model with BatchNorm also needs its running statistics recomputed at ``x``.

The step count ``k``, the weight sum, the largest rate so far and the mode live in each
parameter group (``group["k"]``, ``"weight_sum"``, ``"lr_max"``, ``"scheduled_lr"``,
``"train_mode"``) and the per-parameter state is ``z`` (and AdamW's ``exp_avg_sq``), all
with the package's names, so ``state_dict()`` carries them and moves between the two.

Where this class and the package differ, on purpose: the package adds the weight decay
into ``p.grad`` in place (and its AdamW overwrites ``p.grad`` with the scaled gradient
``d_t``); here ``p.grad`` stays the loss's gradient, as in torch.optim. The paper's
Algorithm 1 puts Adam's bias correction into the rate (``lr_t = lr sqrt(1 - beta2^t)``,
so ``eps`` is not scaled and the averaging weights change) and weights by the current
``lr_t``, not the largest so far; the package keeps that as ``AdamWScheduleFreePaper``
and ships ``AdamWScheduleFree``, which coursekit follows because it is what the authors
distribute and benchmarked in AlgoPerf. tests/test_reference_2020s_a.py checks both
classes against ``SGDScheduleFree`` / ``AdamWScheduleFree`` (warmup, ``r``,
``weight_lr_power``, weight decay, the eval switch; 100+ steps in float64) and records
the differences.

References
----------
.. [1] Defazio, A., Yang, X. A., Mehta, H., Mishchenko, K., Khaled, A. and Cutkosky, A.
   (2024). The road less scheduled. NeurIPS 2024. arXiv:2405.15682. [defazio2024road]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer

__all__ = ["ScheduleFreeAdamW", "ScheduleFreeSGD"]


def _averaging_weight(group: dict) -> float:
    """``w_t = t^r * lr_max^weight_lr_power`` for the group's current step ``t = k``."""
    return group["k"] ** group["r"] * group["lr_max"] ** group["weight_lr_power"]


class _ScheduleFree(Optimizer):
    """The averaging, the warmup and the train/eval switch, shared by SGD and AdamW.

    Subclasses give ``beta(group)`` (the interpolation between ``z`` and ``x``) and
    ``direction(grad, state, group)`` (the step ``d_t`` before weight decay).
    """

    def _schedule_defaults(self, lr: float, weight_decay: float, warmup_steps: int,
                           r: float, weight_lr_power: float) -> dict:
        checks.nonnegative("lr", lr)
        checks.nonnegative("weight_decay", weight_decay)
        checks.integer("warmup_steps", warmup_steps, minimum=0)
        checks.nonnegative("r", r)
        checks.nonnegative("weight_lr_power", weight_lr_power)
        return dict(lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps, r=r,
                    weight_lr_power=weight_lr_power, k=0, train_mode=False, weight_sum=0.0,
                    lr_max=-1.0, scheduled_lr=0.0)

    def beta(self, group: dict) -> float:
        raise NotImplementedError

    def direction(self, grad: torch.Tensor, state: dict, group: dict) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def eval(self) -> None:
        """Put the averaged weights ``x`` into the parameters (to evaluate or save)."""
        for group in self.param_groups:
            if group["train_mode"]:
                for p in group["params"]:
                    if "z" in self.state[p]:
                        p.lerp_(self.state[p]["z"], 1 - 1 / self.beta(group))   # y -> x
                group["train_mode"] = False

    @torch.no_grad()
    def train(self) -> None:
        """Put the gradient point ``y`` back into the parameters (to train)."""
        for group in self.param_groups:
            if not group["train_mode"]:
                for p in group["params"]:
                    if "z" in self.state[p]:
                        p.lerp_(self.state[p]["z"], 1 - self.beta(group))       # x -> y
                group["train_mode"] = True

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Advance every group's schedule and average, then step each parameter."""
        if not all(group["train_mode"] for group in self.param_groups):
            raise RuntimeError(f"{type(self).__name__}.step() needs train mode: call "
                               "optimizer.train() before training and optimizer.eval() "
                               "before evaluating or saving")
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            group["k"] += 1
            t, warmup = group["k"], group["warmup_steps"]
            lr_t = group["lr"] * (min(1.0, t / warmup) if warmup else 1.0)
            group["scheduled_lr"] = lr_t
            group["lr_max"] = max(lr_t, group["lr_max"])
            group["weight_sum"] += _averaging_weight(group)
        super().step()
        return loss

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["z"] = param.detach().clone()

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        y, z = param, state["z"]
        d = self.direction(grad, state, group)
        if group["weight_decay"] != 0:
            d = d.add(y, alpha=group["weight_decay"])
        weight_sum = group["weight_sum"]
        c = _averaging_weight(group) / weight_sum if weight_sum else 0.0
        lr, beta = group["scheduled_lr"], self.beta(group)
        y.lerp_(z, c)                                  # (1 - c) y_t + c z_t
        y.add_(d, alpha=lr * (beta * (1 - c) - 1))     # ... + lr (beta (1 - c) - 1) d_t
        z.sub_(d, alpha=lr)                            # z_{t+1} = z_t - lr d_t


class ScheduleFreeSGD(_ScheduleFree):
    """Schedule-Free SGD (arguments and defaults of the authors' ``SGDScheduleFree``).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Learning rate, >= 0 (the package's default 1.0).
    momentum : float
        ``beta``, the interpolation between ``z`` and ``x``, in (0, 1).
    weight_decay : float
        L2 weight decay, evaluated at ``y``.
    warmup_steps : int
        Length of the linear warmup, >= 0.
    r : float
        Polynomial weighting of the average, ``w_t ∝ t^r``, >= 0.
    weight_lr_power : float
        Weights ``∝ lr_max^weight_lr_power``, so warmup steps count less, >= 0.

    References
    ----------
    .. [1] Defazio, A., Yang, X. A., Mehta, H., Mishchenko, K., Khaled, A. and Cutkosky,
       A. (2024). The road less scheduled. NeurIPS 2024. arXiv:2405.15682.
       [defazio2024road]
    """

    def __init__(self, params, lr: float = 1.0, momentum: float = 0.9,
                 weight_decay: float = 0.0, warmup_steps: int = 0, r: float = 0.0,
                 weight_lr_power: float = 2.0):
        checks.in_unit_interval("momentum", momentum, open_low=True, open_high=True)
        defaults = self._schedule_defaults(lr, weight_decay, warmup_steps, r, weight_lr_power)
        super().__init__(params, dict(momentum=momentum, **defaults))

    def beta(self, group: dict) -> float:
        return group["momentum"]

    def direction(self, grad: torch.Tensor, state: dict, group: dict) -> torch.Tensor:
        return grad


class ScheduleFreeAdamW(_ScheduleFree):
    """Schedule-Free AdamW (arguments and defaults of the authors' ``AdamWScheduleFree``).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Learning rate, >= 0.
    betas : tuple of float
        ``(beta1, beta2)``: ``beta1`` interpolates between ``z`` and ``x`` and must be
        in (0, 1) (``x`` is recovered by dividing by it); ``beta2`` in [0, 1).
    eps : float
        Added to the bias-corrected ``sqrt(v)``.
    weight_decay : float
        Weight decay, added at ``y`` to the Adam-scaled step (decoupled from the scaling).
    warmup_steps : int
        Length of the linear warmup, >= 0.
    r : float
        Polynomial weighting of the average, ``w_t ∝ t^r``, >= 0.
    weight_lr_power : float
        Weights ``∝ lr_max^weight_lr_power``, so warmup steps count less, >= 0.

    References
    ----------
    .. [1] Defazio, A., Yang, X. A., Mehta, H., Mishchenko, K., Khaled, A. and Cutkosky,
       A. (2024). The road less scheduled. NeurIPS 2024. arXiv:2405.15682.
       [defazio2024road]
    """

    def __init__(self, params, lr: float = 0.0025, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, warmup_steps: int = 0,
                 r: float = 0.0, weight_lr_power: float = 2.0):
        checks.betas(betas)
        checks.in_unit_interval("betas[0]", betas[0], open_low=True, open_high=True)
        checks.nonnegative("eps", eps)
        defaults = self._schedule_defaults(lr, weight_decay, warmup_steps, r, weight_lr_power)
        super().__init__(params, dict(betas=tuple(betas), eps=eps, **defaults))

    def beta(self, group: dict) -> float:
        return group["betas"][0]

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        super().init_state(param, state, group)
        state["exp_avg_sq"] = torch.zeros_like(param)   # v

    def direction(self, grad: torch.Tensor, state: dict, group: dict) -> torch.Tensor:
        beta2 = group["betas"][1]
        v = state["exp_avg_sq"]
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = v.div(1 - beta2 ** group["k"]).sqrt_().add_(group["eps"])
        return torch.div(grad, denom, out=denom)        # g / denom, in denom's memory
