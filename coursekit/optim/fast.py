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
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import torch

from coursekit import _checks as checks

__all__ = [
    "bucket",
    "compiled",
    "group_mode",
    "roofline_bytes_per_param",
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
    checks.choice("algorithm", algorithm, sorted(_TENSORS_MOVED))
    reads, writes = _TENSORS_MOVED[algorithm]
    return (reads + writes) * element_size


def check_fast_flags(foreach: bool | None, fused: bool | None) -> None:
    """Validate the ``foreach`` / ``fused`` constructor arguments."""
    checks.choice("foreach", foreach, (None, True, False))
    checks.choice("fused", fused, (None, True, False))
    if foreach and fused:
        raise checks.invalid("fused", "False with foreach=True (choose one fast path)", fused)


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


