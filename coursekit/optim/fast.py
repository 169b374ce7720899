"""The fast paths: multi-tensor (``foreach``) and fused, compiled (``fused``) updates.

The readable path of every optimizer updates one parameter tensor at a time:
each line of the algorithm is one torch operation, i.e. one pass over memory.
For Adam that is about eight passes, each reading and writing whole tensors.

``foreach=True``
    applies each line to *all* tensors of a group at once with PyTorch's
    multi-tensor ``torch._foreach_*`` operations. The arithmetic is the same as
    the readable path, element for element, so the numbers are identical. On a
    GPU it launches a handful of kernels instead of thousands; on a CPU the gain
    is only the Python overhead (PyTorch's CPU foreach ops loop over tensors).
``fused=True``
    hands the whole update to ``torch.compile``, which fuses it into one loop
    per tensor: each element of ``param``, ``grad`` and the state is read once
    and written once. That is the *roofline* of an optimizer: Adam in fp32 must
    move at least 28 bytes per parameter (read param, grad, m, v: 16 B; write
    param, m, v: 12 B), and a fused kernel gets close to the machine's memory
    bandwidth. Results agree with the readable path to rounding (the compiler
    may reorder floating-point operations), not bit for bit. Compiling takes a
    few seconds at the first step and needs a C++ compiler on CPU (Triton on GPU).

With ``foreach=None`` (the default, as in PyTorch) the multi-tensor path is used
when every parameter is on a CUDA device and the readable path otherwise.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import torch

__all__ = [
    "bucket",
    "compiled",
    "group_mode",
    "memory_bandwidth",
    "roofline_bytes_per_param",
    "roofline_table",
    "step_times",
]

# Bytes moved per parameter by one fused step in fp32 (4-byte elements):
# tensors read + tensors written, per optimizer.
_TENSORS_MOVED = {
    "sgd": (2, 1),              # read param, grad; write param
    "sgd_momentum": (3, 2),     # + read/write momentum buffer
    "rmsprop": (3, 2),          # read param, grad, square_avg; write param, square_avg
    "adam": (4, 3),             # read param, grad, m, v; write param, m, v
}


def roofline_bytes_per_param(algorithm: str, element_size: int = 4) -> int:
    """Minimum bytes one step must move per parameter (``"adam"`` in fp32: 28)."""
    if algorithm not in _TENSORS_MOVED:
        raise ValueError(f"Unknown algorithm {algorithm!r}; known: {sorted(_TENSORS_MOVED)}")
    reads, writes = _TENSORS_MOVED[algorithm]
    return (reads + writes) * element_size


def check_fast_flags(foreach: bool | None, fused: bool | None) -> None:
    """Validate the ``foreach`` / ``fused`` constructor arguments."""
    for name, value in (("foreach", foreach), ("fused", fused)):
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"Invalid {name}: {value!r} (expected True, False or None)")
    if foreach and fused:
        raise ValueError("Invalid foreach=True with fused=True: choose one fast path")


def group_mode(group: dict, params: list[torch.Tensor]) -> str:
    """``"fused"``, ``"foreach"`` or ``"single"`` (the readable path) for this group."""
    if group.get("fused"):
        return "fused"
    foreach = group.get("foreach")
    if foreach is None:
        foreach = bool(params) and all(p.device.type == "cuda" for p in params)
    return "foreach" if foreach else "single"


def bucket(items: Iterable[Any], key: Callable[[Any], Hashable]) -> list[list[Any]]:
    """Split ``items`` into lists sharing ``key`` (device, dtype, step...), in first-seen order."""
    groups: dict[Hashable, list[Any]] = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    return list(groups.values())


def compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``torch.compile(fn)``, created on first use, with a clear error if compiling fails."""
    cache: dict[str, Callable[..., Any]] = {}

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        if "fn" not in cache:
            cache["fn"] = torch.compile(fn, dynamic=False)
        try:
            return cache["fn"](*args, **kwargs)
        except Exception as error:  # the compiler's own errors are long and cryptic
            raise RuntimeError(
                f"fused=True could not compile the optimizer step ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}). torch.compile needs a "
                "C++ compiler on CPU or Triton on GPU; use foreach=True instead."
            ) from error

    return run


def scalar(value: float, like: torch.Tensor) -> torch.Tensor:
    """A 0-d tensor holding ``value``: changing hyperparameters must not trigger recompiles."""
    return torch.tensor(value, dtype=like.dtype, device=like.device)


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
