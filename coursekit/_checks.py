"""Argument checks shared across coursekit, with one message style.

Every message reads ``<name> must be <rule>, got <value>``::

    lr must be >= 0, got -1
    betas must be a pair (beta1, beta2), got 0.9
    window must be an integer >= 1, got 2.5
    mode must be one of 'min', 'max', got 'x'
    y must have 10 targets, one per row of x, got 9      (a count: "must have")

raised at the call, instead of a NaN or a division by zero twenty lines further down.
Each check returns the value it accepted, converted where that helps (``float``, ``int``,
a NumPy array), so ``lr = checks.nonnegative("lr", lr)`` reads as a declaration. A bad
value raises ``ValueError``; a value of the wrong kind for :func:`instance` and
:func:`function` raises ``TypeError``. A rule no helper covers builds the same message
with :func:`invalid`: ``raise checks.invalid("depth", "6n + 2", depth)``.

NumPy only (no torch at import), so that every layer, the primer included, can use it.
"""

from __future__ import annotations

import math
import reprlib
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "array",
    "beta",
    "betas",
    "choice",
    "flat_tensor",
    "function",
    "in_unit_interval",
    "instance",
    "integer",
    "integers",
    "invalid",
    "length",
    "nonnegative",
    "optional_integer",
    "per_group",
    "positive",
    "real",
    "series",
    "shape",
    "vector",
]

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlist = _REPR.maxtuple = 6


# ----------------------------------------------------------------------------- messages


def _show(value: Any) -> str:
    """A short repr of ``value`` for a message: a big array or tensor by its shape only."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and (len(shape) > 1 or math.prod(shape) > _REPR.maxlist):
        return f"{type(value).__name__} of shape {tuple(shape)}"
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    return _REPR.repr(value)


def _number(x: float) -> str:
    """``0``, ``1``, ``0.5``, ``4294967295``: a bound as a reader would write it."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _fail(name: str, rule: str, got: str, error: type[Exception] = ValueError) -> Exception:
    return error(f"{name} must be {rule}, got {got}")


def invalid(name: str, rule: str, value: Any, error: type[Exception] = ValueError) -> Exception:
    """The error for ``name`` breaking ``rule``: ``<name> must be <rule>, got <value>``."""
    return _fail(name, rule, _show(value), error)


# ----------------------------------------------------------------------------- numbers


def _bounds(at_least: float | None, above: float | None, at_most: float | None,
            below: float | None) -> str:
    """The rule the bounds state: ``>= 0``, ``> 0``, ``in [0, 1)``; empty without bounds."""
    low = next(((sign, bracket, x) for sign, bracket, x in ((">=", "[", at_least),
                                                             (">", "(", above))
                if x is not None), None)
    high = next(((sign, bracket, x) for sign, bracket, x in (("<=", "]", at_most),
                                                              ("<", ")", below))
                 if x is not None), None)
    if low and high:
        return f"in {low[1]}{_number(low[2])}, {_number(high[2])}{high[1]}"
    bound = low or high
    return f"{bound[0]} {_number(bound[2])}" if bound else ""


def _outside(values: np.ndarray, at_least: float | None, above: float | None,
             at_most: float | None, below: float | None) -> np.ndarray:
    """True where an entry of ``values`` breaks a bound."""
    bad = np.zeros(values.shape, dtype=bool)
    if at_least is not None:
        bad |= values < at_least
    if above is not None:
        bad |= values <= above
    if at_most is not None:
        bad |= values > at_most
    if below is not None:
        bad |= values >= below
    return bad


def real(name: str, value: Any, *, at_least: float | None = None, above: float | None = None,
         at_most: float | None = None, below: float | None = None,
         allow_inf: bool = False) -> float:
    """``value`` as a float: a real number, not NaN, finite unless ``allow_inf``, within bounds."""
    number = value
    if hasattr(value, "numel") and hasattr(value, "item") and value.numel() == 1:
        number = value.item()  # a one-element torch tensor
    if isinstance(number, bool) or not isinstance(number, (int, float, np.integer, np.floating)):
        raise invalid(name, "a real number", value)
    number = float(number)
    if math.isnan(number) or (math.isinf(number) and not allow_inf):
        raise invalid(name, "a real number, not NaN" if allow_inf else "finite", value)
    if _outside(np.float64(number), at_least, above, at_most, below):
        raise invalid(name, _bounds(at_least, above, at_most, below), value)
    return number


def nonnegative(name: str, value: Any) -> float:
    """A finite real number >= 0 (learning rates, eta_min, decay constants k)."""
    return real(name, value, at_least=0)


def positive(name: str, value: Any) -> float:
    """A finite real number > 0 (gamma, periods that may be fractional)."""
    return real(name, value, above=0)


def in_unit_interval(name: str, value: Any, *, open_low: bool = False,
                     open_high: bool = False) -> float:
    """A real number in [0, 1], with either end optionally excluded."""
    return real(name, value, at_least=None if open_low else 0, above=0 if open_low else None,
                at_most=None if open_high else 1, below=1 if open_high else None)


def beta(name: str, value: Any) -> float:
    """A decay rate (beta, alpha, momentum) in [0, 1)."""
    return in_unit_interval(name, value, open_high=True)


def betas(value: Any) -> tuple[float, float]:
    """A pair ``(beta1, beta2)``, each in [0, 1)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise invalid("betas", "a pair (beta1, beta2)", value)
    return beta("betas[0]", value[0]), beta("betas[1]", value[1])


# ----------------------------------------------------------------------------- integers


def _is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def integer(name: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    """An integer (not a bool, not a float) >= ``minimum`` (and <= ``maximum`` when given)."""
    if not _is_integer(value) or value < minimum or (maximum is not None and value > maximum):
        rule = (f"an integer >= {minimum}" if maximum is None
                else f"an integer in [{minimum}, {maximum}]")
        raise invalid(name, rule, value)
    return int(value)


def optional_integer(name: str, value: Any, *, minimum: int) -> int | None:
    """None, or an integer >= ``minimum`` (a batch size where None means the whole set)."""
    if value is None:
        return None
    if not _is_integer(value) or value < minimum:
        raise invalid(name, f"None or an integer >= {minimum}", value)
    return int(value)


def integers(name: str, values: Any, *, minimum: int,
             length: int | None = None) -> tuple[int, ...]:
    """A non-empty sequence of integers >= ``minimum`` (of ``length`` entries if given)."""
    sequence = isinstance(values, (list, tuple, range)) or (isinstance(values, np.ndarray)
                                                             and values.ndim == 1)
    if not sequence or len(values) == 0 or (length is not None and len(values) != length):
        count = "a non-empty sequence of" if length is None else f"a sequence of {length}"
        raise invalid(name, f"{count} integers >= {minimum}", values)
    return tuple(integer(f"{name}[{i}]", v, minimum=minimum) for i, v in enumerate(values))


# ----------------------------------------------------------------------------- kinds


def choice(name: str, value: Any, options: Iterable[Any]) -> Any:
    """One of a fixed set of options (modes as strings; ``None``, ``True``, ``False``).

    An option matches a value of its own type only, so ``1`` is not ``True``.
    """
    options = tuple(options)
    if not any(isinstance(value, type(option)) and value == option for option in options):
        raise invalid(name, f"one of {', '.join(map(repr, options))}", value)
    return value


def _a(word: str) -> str:
    return f"{'an' if word[0].lower() in 'aeiou' else 'a'} {word}"


def instance(name: str, value: Any, types: type | tuple[type, ...], *,
             what: str | None = None) -> Any:
    """An instance of ``types``, else ``TypeError`` (``what`` names them: "a Landscape")."""
    if not isinstance(value, types):
        kinds = types if isinstance(types, tuple) else (types,)
        raise invalid(name, what or " or ".join(_a(t.__name__) for t in kinds), value, TypeError)
    return value


def function(name: str, value: Any, *, what: str = "callable") -> Any:
    """A callable, else ``TypeError`` (``what`` says which, e.g. "a function of the step")."""
    if not callable(value):
        raise invalid(name, what, value, TypeError)
    return value


def per_group(name: str, value: Any, n_groups: int) -> list[Any]:
    """A scalar repeated for every parameter group, or a list with one entry per group."""
    if isinstance(value, (list, tuple)):
        if len(value) != n_groups:
            raise invalid(name, f"one value or a list of {n_groups} (one per parameter group)",
                          value)
        return list(value)
    return [value] * n_groups


# ----------------------------------------------------------------------------- arrays


def _float_array(name: str, values: Any, rule: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid(name, rule, values) from None


def array(name: str, values: Any, *, at_least: float | None = None, above: float | None = None,
          at_most: float | None = None, below: float | None = None) -> np.ndarray:
    """A float64 array (any shape) of finite numbers, each within the bounds."""
    result = _float_array(name, values, "numbers")
    bad = ~np.isfinite(result) | _outside(result, at_least, above, at_most, below)
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        entry = f"{name}[{', '.join(map(str, index))}]" if index else name
        finite = np.isfinite(result[index])
        raise invalid(entry, _bounds(at_least, above, at_most, below) if finite else "finite",
                      result[index])
    return result


def vector(name: str, values: Any, *, length: int | None = None, at_least: float | None = None,
           above: float | None = None, at_most: float | None = None,
           below: float | None = None) -> np.ndarray:
    """A non-empty 1-D float64 array of finite numbers (a grid of learning rates, a point)."""
    count = "a non-empty sequence of" if length is None else f"a sequence of {length}"
    result = _float_array(name, values, f"{count} numbers")
    if result.ndim != 1 or result.size == 0 or (length is not None and result.size != length):
        raise invalid(name, f"{count} numbers", values)
    return array(name, result, at_least=at_least, above=above, at_most=at_most, below=below)


def series(name: str, values: Any) -> np.ndarray:
    """A 1-D float64 array (a loss curve, say); NaN and inf are allowed."""
    result = _float_array(name, values, "a 1-D sequence of numbers")
    if result.ndim != 1:
        raise _fail(name, "a 1-D sequence of numbers", f"shape {result.shape}")
    return result


def length(name: str, value: Any, expected: int, what: str = "entries") -> Any:
    """A sized value with ``expected`` entries (``what`` says which: "targets, one per x")."""
    if len(value) != expected:
        raise ValueError(f"{name} must have {expected} {what}, got {len(value)}")
    return value


def shape(name: str, value: Any, expected: tuple[Any, ...]) -> Any:
    """An array or tensor of shape ``expected``; a leading ``...`` allows any leading axes."""
    actual = tuple(value.shape)
    if expected and expected[0] is Ellipsis:
        tail = tuple(expected[1:])
        ok = len(actual) >= len(tail) and actual[len(actual) - len(tail):] == tail
        text = "(" + ", ".join(["...", *map(str, tail)]) + ")"
    else:
        ok, text = actual == tuple(expected), str(tuple(expected))
    if not ok:
        raise _fail(name, f"of shape {text}", f"shape {actual}")
    return value


def flat_tensor(name: str, value: Any) -> Any:
    """A 1-D floating-point torch tensor (a flat parameter vector ``w``)."""
    torch = sys.modules.get("torch")  # a tensor exists only once torch is imported
    if torch is None or not isinstance(value, torch.Tensor) or value.ndim != 1 \
            or not value.is_floating_point():
        raise invalid(name, "a 1-D floating-point tensor", value)
    return value
