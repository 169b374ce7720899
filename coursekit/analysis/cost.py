"""What an optimizer costs: the memory its state takes, and the time its step takes.

Memory
------

An optimizer's memory is its *state*: whatever it stores between steps for each
parameter tensor. Plain SGD stores nothing, SGD with momentum one buffer the size
of the parameters, Adam two (``m`` and ``v``) and a step counter. For a model with
``n`` float32 parameters that is roughly::

    SGD            0            bytes of state
    SGD + momentum 4 n
    Adagrad        4 n          (the sum of squared gradients)
    RMSprop        4 n          (the running mean of squared gradients)
    Adam / AdamW   8 n          (m and v)

Rather than trusting such a table, :func:`optimizer_state_bytes` walks the
optimizer's ``state`` and adds up what is there, and :func:`memory_table` does it
for several optimizers after one real step, as a ratio to the parameters' own
bytes::

    opt = coursekit.optim.Adam(model.parameters())
    ...one step...
    optimizer_state_bytes(opt) / parameter_bytes(model.parameters())   # ~2.0

Counting rules. A tensor counts ``numel * element_size`` bytes. A Python number
(an ``int`` step counter, a ``float`` product) counts 8 bytes, what one int64 or
float64 takes; ``None`` and strings count nothing. Containers (dicts, lists,
tuples) are walked. Tensors reached twice (the same storage) count once. Wrappers
are followed: :class:`coursekit.optim.Lookahead` adds its inner optimizer's
state to its own slow weights. A hyper-optimizer stack
(:class:`coursekit.optim.hyper.ModuleWrapper`) needs no rule of its own: its
``state`` holds every level's (its state, and its hyperparameters as numbers).

Time
----
An optimizer step reads and writes every element of the parameters, gradients
and state, so its speed is bounded by memory bandwidth (the *roofline*, see
:mod:`coursekit.optim.fast`): :func:`memory_bandwidth` measures the machine's,
:func:`step_times` times steps round-robin, and :func:`roofline_table` puts an
optimizer's step time beside the roofline.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from coursekit import _checks as checks
from coursekit.optim.fast import roofline_bytes_per_param

__all__ = [
    "format_bytes",
    "memory_bandwidth",
    "memory_table",
    "optimizer_state_bytes",
    "parameter_bytes",
    "roofline_table",
    "state_bytes",
    "step_times",
]

PYTHON_NUMBER_BYTES = 8
"""Bytes counted for a Python ``int`` or ``float`` in optimizer state."""


def _tensor_key(tensor: torch.Tensor) -> tuple:
    """Identify a tensor's memory: storage address, offset, shape and strides."""
    return (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
            tuple(tensor.stride()), tensor.dtype, str(tensor.device))


def state_bytes(value: Any, _seen: set | None = None) -> int:
    """Bytes held by ``value``: a tensor, a Python number, or a container of them.

    Parameters
    ----------
    value : Any
        A tensor (``numel * element_size`` bytes), an ``int``/``float``/``bool``
        (8 bytes), ``None`` or a string (0), or a dict/list/tuple/set of these
        (walked recursively).

    Returns
    -------
    int
    """
    seen = set() if _seen is None else _seen
    if isinstance(value, torch.Tensor):
        key = _tensor_key(value)
        if key in seen:
            return 0
        seen.add(key)
        return value.numel() * value.element_size()
    if isinstance(value, (bool, int, float)):
        return PYTHON_NUMBER_BYTES
    if value is None or isinstance(value, (str, bytes)):
        return 0
    if isinstance(value, Mapping):
        return sum(state_bytes(v, seen) for v in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return sum(state_bytes(v, seen) for v in value)
    raise checks.invalid("value", "a tensor, a number, None, a string or a container of them",
                         value, TypeError)


def optimizer_state_bytes(optimizer: Any) -> int:
    """Bytes of state an optimizer keeps between steps (the counting rules of the module).

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Ours, PyTorch's or a hyper-optimizer stack, after at least one step (most
        optimizers create their state lazily, so a fresh one holds nothing yet).

    Returns
    -------
    int
    """
    checks.instance("optimizer", optimizer, torch.optim.Optimizer, what="a torch.optim.Optimizer")
    seen: set = set()
    total = 0
    while isinstance(optimizer, torch.optim.Optimizer):
        total += state_bytes(dict(optimizer.state), seen)
        inner = getattr(optimizer, "optimizer", None)   # Lookahead and other wrappers
        optimizer = inner if inner is not optimizer else None
    return total


def parameter_bytes(params: Iterable[torch.Tensor] | nn.Module) -> int:
    """Bytes of the parameters themselves (each tensor counted once)."""
    if isinstance(params, nn.Module):
        params = params.parameters()
    seen: set = set()
    return sum(state_bytes(p, seen) for p in params)


def format_bytes(n: float) -> str:
    """``n`` bytes in decimal units: ``format_bytes(3.7e10) == '37.0 GB'``."""
    n = checks.nonnegative("n", n)
    if n < 1000:
        return f"{n:.0f} B"
    units = ("kB", "MB", "GB", "TB", "PB", "EB")
    power = min(int(math.log10(n) // 3), len(units))
    if round(n / 1000**power, 1) >= 1000 and power < len(units):  # 999,999 B is 1.0 MB
        power += 1
    return f"{n / 1000**power:.1f} {units[power - 1]}"


OptimizerFactory = Callable[[list[torch.Tensor]], Any]


def memory_table(optimizers: Mapping[str, OptimizerFactory], model_fn: Callable[[], nn.Module],
                 x: torch.Tensor, y: torch.Tensor,
                 loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
                 steps: int = 1) -> list[dict[str, Any]]:
    """Measure each optimizer's state after ``steps`` real steps on a fresh model.

    Each optimizer gets its own model from ``model_fn()`` and takes ``steps`` steps
    on the loss of ``(x, y)`` through a closure (so ``torch.optim.LBFGS`` works
    too); then its state is counted with :func:`optimizer_state_bytes`.

    Parameters
    ----------
    optimizers : mapping of name to factory
        ``factory(params)`` builds the optimizer, e.g.
        ``{"Adam": lambda p: coursekit.optim.Adam(p, lr=1e-3)}``, or
        ``lambda p: hyper.ModuleWrapper(p, hyper.SGD(0.01, optimizer=hyper.SGD(0.01)))``.
    model_fn : callable
        Returns a fresh model.
    x, y : torch.Tensor
        One batch of inputs and targets.
    loss : callable
        ``loss(model(x), y)``, a scalar.
    steps : int
        Steps before measuring (>= 1).

    Returns
    -------
    list of dict
        One record per optimizer: ``optimizer``, ``state bytes``,
        ``parameter bytes``, ``state / parameters`` (the ratio) and
        ``bytes per parameter`` (state bytes over the number of scalar parameters).
    """
    steps = checks.integer("steps", steps, minimum=1)
    records = []
    for name, factory in optimizers.items():
        model = model_fn()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = factory(params)

        def closure(model=model, optimizer=optimizer) -> torch.Tensor:
            optimizer.zero_grad()
            value = loss(model(x), y)
            value.backward()
            return value

        for _ in range(steps):
            optimizer.step(closure)
        state = optimizer_state_bytes(optimizer)
        own = parameter_bytes(params)
        records.append({
            "optimizer": name,
            "state bytes": state,
            "parameter bytes": own,
            "state / parameters": state / own,
            "bytes per parameter": state / sum(p.numel() for p in params),
        })
    return records


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)



def memory_bandwidth(n: int, device: torch.device | str = "cpu", repeats: int = 10) -> float:
    """Measured GB/s of ``a.add_(b)`` on ``n`` fp32 elements (12 bytes moved each).

    Reading two arrays and writing one back in place is the access pattern of an
    optimizer step, so this is the practical ceiling for one on this machine (a
    plain copy understates it: writing to a fresh array also costs a read).
    """
    device = torch.device(device)
    a = torch.randn(n, device=device)
    b = torch.randn(n, device=device)
    a.add_(b)  # touch the pages once
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        a.add_(b)
        _sync(device)
        times.append(time.perf_counter() - start)
    return 12 * n / statistics.median(times) / 1e9



def step_times(optimizers: dict[str, torch.optim.Optimizer], steps: int = 10,
               warmup: int = 2) -> dict[str, float]:
    """Median seconds per ``step()`` of each optimizer, measured round-robin.

    Every optimizer must already hold parameters with gradients. The optimizers
    take turns step by step, so a slow moment of the machine hits them all; the
    first ``warmup`` rounds (allocation, compilation for ``fused=True``) are not
    timed.
    """
    times: dict[str, list[float]] = {name: [] for name in optimizers}
    for i in range(warmup + steps):
        for name, opt in optimizers.items():
            device = opt.param_groups[0]["params"][0].device
            _sync(device)
            start = time.perf_counter()
            opt.step()
            _sync(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}



def roofline_table(factories: dict[str, Callable[[list[torch.Tensor]], torch.optim.Optimizer]],
                   n_params: int, algorithm: str = "adam", steps: int = 10,
                   device: torch.device | str = "cpu", seed: int = 0) -> list[dict[str, Any]]:
    """Time one step of each optimizer on ``n_params`` fp32 parameters against the roofline.

    Each factory gets its own copy of the same parameters and gradients. The
    records give the median step time, the bandwidth the step achieves if it
    moved only the roofline bytes (:func:`roofline_bytes_per_param`), and that as
    a fraction of the measured :func:`memory_bandwidth`: how close each
    implementation comes to the memory system's limit.
    """
    device = torch.device(device)
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(n_params, generator=g).to(device)
    grad = torch.randn(n_params, generator=g).to(device)
    optimizers = {}
    for name, factory in factories.items():
        param = torch.nn.Parameter(values.clone())
        param.grad = grad.clone()
        optimizers[name] = factory([param])
    ceiling = memory_bandwidth(n_params, device)
    moved = roofline_bytes_per_param(algorithm) * n_params
    return [{"optimizer": name, "ms per step": seconds * 1e3,
             "GB/s at roofline": moved / seconds / 1e9,
             "of memory bandwidth": moved / seconds / 1e9 / ceiling}
            for name, seconds in step_times(optimizers, steps=steps).items()]
