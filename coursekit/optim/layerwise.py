r"""LARS and LAMB: one step size per layer, set by the ratio of the weight's norm to the step's.

With very large batches a single learning rate is too large for some layers and too small
for others: the ratio ``||theta|| / ||g||`` differs by orders of magnitude between layers.
LARS (You et al., 2017) scales momentum SGD's step of each parameter tensor ("layer") by a
*trust ratio* so that every layer moves by about the same fraction of its norm; LAMB (You
et al., 2020) does the same to Adam's step. With the warmup and linear scaling rule of
Goyal et al. (2017) they trained ResNet-50 and BERT with batches of tens of thousands.

LARS (the paper's Algorithm 1, with the learning rate outside the momentum buffer as in
``torch.optim.SGD``, which is the same at a constant ``lr``)::

    for every parameter tensor theta, at t = 1, 2, ...
        g_t   = grad f(theta)                                   (-grad when maximize=True)
        ratio = trust_coefficient * ||theta|| / (||g_t|| + weight_decay * ||theta|| + eps)
        d_t   = ratio * (g_t + weight_decay * theta)      (ratio = 1 if a norm is 0)
        b_t   = d_t  if t == 1  else  momentum * b_{t-1} + (1 - dampening) * d_t
        theta = theta - lr * (d_t + momentum * b_t  if nesterov  else  b_t)

LAMB (the paper's Algorithm 2)::

    m_t = beta1 * m_{t-1} + (1 - beta1) * g_t
    v_t = beta2 * v_{t-1} + (1 - beta2) * g_t^2
    r_t = m_hat / (sqrt(v_hat) + eps)       (m_hat, v_hat bias-corrected; m, v without)
    u_t = r_t + weight_decay * theta        (decoupled: theta *= 1 - lr * wd; u_t = r_t)
    theta = theta - lr * phi(||theta||) / ||u_t|| * u_t      (phi(||theta||)/||u_t|| = 1
                                                               if a norm is 0)

``phi`` is the identity, or ``min(||theta||, weight_norm_clip)`` with a clip.

**Which parameters are excluded from the trust ratio.** The algorithm boxes apply the
ratio to every layer; in practice biases and normalisation weights are left out, because
their norms say nothing about the scale of a step (a bias may start at zero, a
normalisation gain at one). The authors' LAMB code for BERT excludes them (by the names
``bias`` and ``LayerNorm``) from weight decay and from the layer adaptation; pytorch-
optimizer's LARS leaves out every parameter with fewer than two dimensions. Here an
excluded parameter takes the plain step (momentum SGD for LARS, Adam's ``r_t`` for LAMB)
with no trust ratio and no weight decay. The ``exclude`` rule chooses, per parameter
group:

- ``"vectors"`` (default): parameters with at most one dimension, that is biases and
  normalisation weights (pytorch-optimizer's LARS rule);
- ``"no_weight_decay"``: every parameter of a group whose ``weight_decay`` is 0
  (torch-optimizer's LARS rule: put biases and norms in such a group);
- ``"all"``: the whole group (a per-group flag: ``{"params": norms, "exclude": "all"}``);
- ``"none"``: nothing, as the algorithm boxes are written (pytorch-optimizer's and
  torch-optimizer's LAMB).

**Where the packages differ** (tests/test_reference_2020s_b.py shows each difference and
each option that reproduces a package). LARS: torch-optimizer adds ``eps = 1e-8`` to the
ratio's denominator (here ``eps=0`` by default, as in the paper; pass ``eps=1e-8``) and
excludes by weight decay; pytorch-optimizer starts the momentum buffer at zero, so its
first step is damped, while coursekit starts it at ``d_1`` as ``torch.optim.SGD`` and
torch-optimizer do (the same unless ``dampening > 0``). LAMB: both packages follow the
paper's third version, which has no bias correction (``bias_correction=False`` here;
coursekit's default is the published Algorithm 2, with it), and both clip ``||theta||``
at 10 (``weight_norm_clip=10``; the default is the authors' BERT code, no clip).
pytorch-optimizer also decouples weight decay by default (``decoupled_weight_decay=True``)
and adds ``eps`` to ``||u_t||`` (``eps_in_trust_ratio=True``); torch-optimizer, like the
paper, adds ``weight_decay * theta`` to the step before the ratio, coursekit's default.

References
----------
.. [1] You, Y., Gitman, I. and Ginsburg, B. (2017). Large batch training of convolutional
   networks. arXiv:1708.03888. [you2017large]
.. [2] You, Y., Li, J., Reddi, S., Hseu, J., Kumar, S., Bhojanapalli, S., Song, X., Demmel,
   J., Keutzer, K. and Hsieh, C.-J. (2020). Large batch optimization for deep learning:
   Training BERT in 76 minutes. ICLR 2020. arXiv:1904.00962. [you2020large]
.. [3] Goyal, P., Dollár, P., Girshick, R., Noordhuis, P., Wesolowski, L., Kyrola, A.,
   Tulloch, A., Jia, Y. and He, K. (2017). Accurate, large minibatch SGD: Training ImageNet
   in 1 hour. arXiv:1706.02677. [goyal2017accurate]
"""

from __future__ import annotations

import torch

from coursekit import _checks as checks
from coursekit.optim.base import Optimizer

__all__ = ["EXCLUDE_RULES", "LAMB", "LARS", "excluded", "trust_ratio"]

EXCLUDE_RULES = ("vectors", "no_weight_decay", "all", "none")


def excluded(param: torch.Tensor, group: dict) -> bool:
    """True if the group's ``exclude`` rule leaves ``param`` out of the trust ratio."""
    rule = group["exclude"]
    return (rule == "all" or (rule == "vectors" and param.ndim <= 1)
            or (rule == "no_weight_decay" and group["weight_decay"] == 0))


def trust_ratio(numerator: torch.Tensor, denominator: torch.Tensor,
                eps: float = 0.0) -> torch.Tensor:
    """``numerator / (denominator + eps)``, or 1 where either norm is 0 (a layer at zero, a
    zero step)."""
    usable = (numerator > 0) & (denominator > 0)
    return torch.where(usable, numerator / torch.where(usable, denominator + eps, 1.0), 1.0)


class _LayerWise(Optimizer):
    """Checks the ``exclude`` rule of every group, including groups added later."""

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        checks.choice("exclude", self.param_groups[-1]["exclude"], EXCLUDE_RULES)


class LARS(_LayerWise):
    """LARS: momentum SGD with a trust ratio per parameter tensor (You et al., 2017).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Global learning rate, >= 0.
    momentum : float
        Momentum factor in [0, 1) (the paper uses 0.9).
    dampening : float
        Dampening of the momentum, in [0, 1].
    weight_decay : float
        L2 coefficient, added to the gradient inside the ratio's scaling (the paper's beta).
    nesterov : bool
        Nesterov momentum (needs ``momentum > 0`` and ``dampening = 0``).
    trust_coefficient : float
        The paper's eta, > 0: how far a layer may move relative to its norm (0.001).
    eps : float
        Added to the ratio's denominator (torch-optimizer uses 1e-8); 0 in the paper.
    exclude : str
        Which parameters skip the trust ratio and weight decay: ``"vectors"``,
        ``"no_weight_decay"``, ``"all"`` or ``"none"`` (see the module docstring).
    maximize : bool
        Ascend the objective instead of descending it.

    References
    ----------
    .. [1] You, Y., Gitman, I. and Ginsburg, B. (2017). Large batch training of
       convolutional networks. arXiv:1708.03888. [you2017large]
    """

    def __init__(self, params, lr: float = 1e-2, momentum: float = 0.9,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False, *,
                 trust_coefficient: float = 1e-3, eps: float = 0.0, exclude: str = "vectors",
                 maximize: bool = False):
        checks.nonnegative("lr", lr)
        checks.beta("momentum", momentum)
        checks.in_unit_interval("dampening", dampening)
        checks.nonnegative("weight_decay", weight_decay)
        checks.positive("trust_coefficient", trust_coefficient)
        checks.nonnegative("eps", eps)
        checks.choice("exclude", exclude, EXCLUDE_RULES)
        if nesterov and (momentum == 0 or dampening != 0):
            raise checks.invalid("nesterov", "False unless momentum > 0 and dampening = 0",
                                 nesterov)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov,
                        trust_coefficient=trust_coefficient, eps=eps, exclude=exclude,
                        maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["step"] = 0
        if group["momentum"] > 0:
            state["momentum_buffer"] = torch.zeros_like(param)  # b

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        wd = group["weight_decay"]
        if excluded(param, group):
            d = grad
        else:
            weight_norm = torch.linalg.vector_norm(param)
            ratio = trust_ratio(group["trust_coefficient"] * weight_norm,
                                torch.linalg.vector_norm(grad) + wd * weight_norm, group["eps"])
            d = grad.add(param, alpha=wd).mul_(ratio)

        momentum = group["momentum"]
        if momentum > 0:
            b = state["momentum_buffer"]
            if state["step"] == 1:
                b.copy_(d)                                             # b_1 = d_1
            else:
                b.mul_(momentum).add_(d, alpha=1 - group["dampening"])
            d = d.add(b, alpha=momentum) if group["nesterov"] else b
        param.add_(d, alpha=-group["lr"])


class LAMB(_LayerWise):
    """LAMB: Adam's step with a trust ratio per parameter tensor (You et al., 2020).

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Global learning rate, >= 0.
    betas : tuple of float
        ``(beta1, beta2)`` in [0, 1).
    eps : float
        Added to ``sqrt(v_hat)``.
    weight_decay : float
        Weight decay coefficient (the paper's lambda), added to the step before the ratio.
    bias_correction : bool
        Divide ``m`` and ``v`` by ``1 - beta^t`` (the published Algorithm 2). The paper's
        third version and both packages have none: ``False``.
    decoupled_weight_decay : bool
        Shrink ``theta *= 1 - lr * wd`` before the step instead (pytorch-optimizer's default).
    weight_norm_clip : float, optional
        Upper bound on ``||theta||`` in the ratio (the paper's phi); both packages use 10.
    eps_in_trust_ratio : bool
        Add ``eps`` to ``||u_t||`` too (pytorch-optimizer).
    exclude : str
        Which parameters take Adam's plain step, without ratio or weight decay:
        ``"vectors"``, ``"no_weight_decay"``, ``"all"`` or ``"none"``.
    maximize : bool
        Ascend the objective instead of descending it.

    References
    ----------
    .. [1] You, Y., Li, J., Reddi, S., Hseu, J., Kumar, S., Bhojanapalli, S., Song, X.,
       Demmel, J., Keutzer, K. and Hsieh, C.-J. (2020). Large batch optimization for deep
       learning: Training BERT in 76 minutes. ICLR 2020. arXiv:1904.00962. [you2020large]
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0, *, bias_correction: bool = True,
                 decoupled_weight_decay: bool = False, weight_norm_clip: float | None = None,
                 eps_in_trust_ratio: bool = False, exclude: str = "vectors",
                 maximize: bool = False):
        checks.nonnegative("lr", lr)
        checks.betas(betas)
        checks.nonnegative("eps", eps)
        checks.nonnegative("weight_decay", weight_decay)
        if weight_norm_clip is not None:
            checks.positive("weight_norm_clip", weight_norm_clip)
        checks.choice("exclude", exclude, EXCLUDE_RULES)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        bias_correction=bias_correction,
                        decoupled_weight_decay=decoupled_weight_decay,
                        weight_norm_clip=weight_norm_clip, eps_in_trust_ratio=eps_in_trust_ratio,
                        exclude=exclude, maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(param)      # m
        state["exp_avg_sq"] = torch.zeros_like(param)   # v

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        t = state["step"]
        beta1, beta2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]

        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        if group["bias_correction"]:
            r = (m / (1 - beta1**t)).div_((v / (1 - beta2**t)).sqrt_().add_(group["eps"]))
        else:
            r = m / v.sqrt().add_(group["eps"])
        if excluded(param, group):
            param.add_(r, alpha=-lr)
            return

        if group["decoupled_weight_decay"]:
            param.mul_(1 - lr * wd)
        elif wd != 0:
            r.add_(param, alpha=wd)                                   # u = r + wd * theta
        weight_norm = torch.linalg.vector_norm(param)
        if group["weight_norm_clip"] is not None:
            weight_norm = weight_norm.clamp(max=group["weight_norm_clip"])  # phi
        eps = group["eps"] if group["eps_in_trust_ratio"] else 0.0
        param.add_(r.mul_(trust_ratio(weight_norm, torch.linalg.vector_norm(r), eps)), alpha=-lr)
