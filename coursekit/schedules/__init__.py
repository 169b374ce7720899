"""Learning-rate and hyperparameter schedules, in two forms each, and the lr range test.

Every schedule the lectures teach exists as

1. a **pure function** of the step, stateless and plottable
   (:mod:`~coursekit.schedules.functions`, :mod:`~coursekit.schedules.cycles`,
   :mod:`~coursekit.schedules.plateau`)::

       lrs = cosine_annealing(np.arange(100), lr0=0.1, T_max=100)

2. a **scheduler class** with ``torch.optim.lr_scheduler``'s contract, which calls
   that function (:mod:`~coursekit.schedules.schedulers`)::

       scheduler = CosineAnnealingLR(optimizer, T_max=100)

=========================  ==========================  ==============================
schedule                   pure function               scheduler
=========================  ==========================  ==============================
constant                   ``constant``                ``ConstantLR(factor=1.0)``
step decay                 ``step_decay``              ``StepLR``
multi-step                 ``multistep_decay``         ``MultiStepLR``
exponential, e^(-k t)      ``exponential_decay``       ``ExponentialDecayLR``
exponential, gamma^t       ``geometric_decay``         ``ExponentialLR``
halving                    ``halving``                 ``HalvingLR``
inverse time               ``inverse_time_decay``      ``InverseTimeLR``
1/t (Robbins-Monro)        ``one_over_t``              ``OneOverTLR``
inverse square root        ``inverse_sqrt_decay``      ``InverseSqrtLR``
polynomial                 ``polynomial_decay``        ``PolynomialLR``
linear (interpolation)     ``linear_schedule``         ``LinearLR``
linear decay               ``linear_decay``            ``LinearLR(1.0, 0.0, T)``
reduced start              ``constant_factor``         ``ConstantLR``
cosine annealing           ``cosine_annealing``        ``CosineAnnealingLR``
SGDR (warm restarts)       ``cosine_warm_restarts``    ``CosineAnnealingWarmRestarts``
linear warm-up             ``linear_warmup``           ``LinearWarmupLR``
warm-up + any schedule     ``with_warmup``             ``SequentialLR``
trapezoidal                ``trapezoidal``             ``TrapezoidalLR``
warm-up + cosine to zero   ``warmup_cosine``           ``WarmupCosineLR``
schedules in sequence      ``sequential``              ``SequentialLR``
any multiplier             (any function)              ``LambdaLR``
cyclical (+ momentum)      ``cyclical``                ``CyclicLR``
one-cycle (+ momentum)     ``one_cycle``               ``OneCycleLR``
reduce on plateau          ``reduce_on_plateau``       ``ReduceLROnPlateau``
=========================  ==========================  ==============================

Classes PyTorch also has keep its names, arguments and defaults and give the same
rates. :class:`HyperparameterScheduler` schedules any other param-group value
(Adam's betas, momentum, weight decay), and :func:`lr_find` runs the
learning-rate range test.
"""

from coursekit.schedules.cycles import (
    CyclicLR,
    OneCycleLR,
    cyclical,
    cyclical_momentum,
    one_cycle,
    one_cycle_momentum,
)
from coursekit.schedules.functions import (
    Schedule,
    Steps,
    constant,
    constant_factor,
    cosine_annealing,
    cosine_warm_restarts,
    exponential_decay,
    geometric_decay,
    halving,
    inverse_sqrt_decay,
    inverse_time_decay,
    linear_decay,
    linear_schedule,
    linear_warmup,
    multistep_decay,
    one_over_t,
    per_epoch,
    polynomial_decay,
    sequential,
    step_decay,
    trapezoidal,
    warmup_cosine,
    with_warmup,
)
from coursekit.schedules.hyperparameter import HyperparameterScheduler
from coursekit.schedules.lr_finder import LRFindResult, lr_find
from coursekit.schedules.plateau import (
    PlateauState,
    ReduceLROnPlateau,
    plateau_step,
    reduce_on_plateau,
    reduced_lr,
)
from coursekit.schedules.schedulers import (
    ClosedFormLR,
    ConstantLR,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    ExponentialDecayLR,
    ExponentialLR,
    FormulaLR,
    HalvingLR,
    InverseSqrtLR,
    InverseTimeLR,
    LambdaLR,
    LinearLR,
    LinearWarmupLR,
    MultiStepLR,
    OneOverTLR,
    PolynomialLR,
    SequentialLR,
    StepLR,
    TrapezoidalLR,
    WarmupCosineLR,
)

__all__ = [
    "ClosedFormLR",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialDecayLR",
    "ExponentialLR",
    "FormulaLR",
    "HalvingLR",
    "HyperparameterScheduler",
    "InverseSqrtLR",
    "InverseTimeLR",
    "LRFindResult",
    "LambdaLR",
    "LinearLR",
    "LinearWarmupLR",
    "MultiStepLR",
    "OneCycleLR",
    "OneOverTLR",
    "PlateauState",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "Schedule",
    "SequentialLR",
    "StepLR",
    "Steps",
    "TrapezoidalLR",
    "WarmupCosineLR",
    "constant",
    "constant_factor",
    "cosine_annealing",
    "cosine_warm_restarts",
    "cyclical",
    "cyclical_momentum",
    "exponential_decay",
    "geometric_decay",
    "halving",
    "inverse_sqrt_decay",
    "inverse_time_decay",
    "linear_decay",
    "linear_schedule",
    "linear_warmup",
    "lr_find",
    "multistep_decay",
    "one_cycle",
    "one_cycle_momentum",
    "one_over_t",
    "per_epoch",
    "plateau_step",
    "polynomial_decay",
    "reduce_on_plateau",
    "reduced_lr",
    "sequential",
    "step_decay",
    "trapezoidal",
    "warmup_cosine",
    "with_warmup",
]
