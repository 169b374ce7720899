"""The program that runs one submission, in a process of its own.

The grader (``coursekit.grading.runner``) starts this file as a script::

    python .../coursekit/grading/child.py  < job.json

The job names the notebook's code cells, the per-cell time limit, the probes
(small functions from the assignment's grading file) with the inputs to call
them on, and the file to write results to. The child runs the cells one by one
in one namespace, as a student pressing shift-enter would: a cell that raises is
recorded and the next cell still runs. Then it calls every probe on the
student's namespace and writes what each returned, converted to plain data.

The child never sees a reference answer and never decides whether a test
passed: it only reports raw outputs, which the grader reads back as numbers and
arrays of checked dtype and shape (never a pickle) and compares in its own
process.

This file imports only the standard library and NumPy at the top, so a
submission that never imports torch does not pay for it. The grader imports the
same file as a module for the wire format (``encode`` and ``decode``), so both
sides agree on it.

Wire format
-----------
``None``, ``bool``, ``int``, ``float`` and ``str`` travel as JSON values; lists
and tuples as JSON lists; a dict with string keys as ``{"dict": {...}}``; a
NumPy array or torch tensor as ``{"array": {"dtype": ..., "shape": [...],
"data": [...]}}`` with the values flattened in C order. Python's ``json`` writes
floats with ``repr``, so float64 values cross exactly (NaN and infinities too).
"""

from __future__ import annotations

import builtins
import contextlib
import json
import math
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

__all__ = [
    "DTYPES",
    "MissingName",
    "StudentNamespace",
    "WireError",
    "call_probe",
    "decode",
    "describe",
    "encode",
]

DTYPES = frozenset({
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
})
MAX_ELEMENTS = 1_000_000
MAX_STRING = 10_000
MAX_DEPTH = 32
ALARM_REPEAT_S = 0.5

_dumps = json.dumps  # bound at start: a submission replacing json.dumps changes no record


class WireError(ValueError):
    """A value that cannot cross between a submission and the grader."""


class MissingName(LookupError):
    """A probe asked for a name the notebook does not define."""

    def __init__(self, name: str):
        super().__init__(
            f"the notebook does not define {name!r} (was its cell deleted, renamed, "
            "turned into markdown, or did it raise before defining it?)")


class _Interrupted(BaseException):
    """Raised inside a cell or a probe that runs past its time limit."""


class StudentNamespace(Mapping):
    """What a probe sees as ``student``: the notebook's globals, read by name.

    ``student["adam_step"]`` returns the notebook's ``adam_step``; a missing name
    raises :class:`MissingName` with a message a student can act on.
    """

    def __init__(self, namespace: Mapping[str, Any]):
        self._namespace = namespace

    def __getitem__(self, name: str) -> Any:
        try:
            return self._namespace[name]
        except KeyError:
            raise MissingName(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(k for k in self._namespace if isinstance(k, str)))

    def __len__(self) -> int:
        return sum(isinstance(k, str) for k in self._namespace)


def encode(value: Any, _depth: int = 0) -> Any:
    """Convert a probe's result to JSON-safe data (see the module docstring).

    Raises
    ------
    WireError
        For anything other than numbers, strings, ``None``, arrays, tensors and
        lists, tuples or string-keyed dicts of them.
    """
    if _depth > MAX_DEPTH:
        raise WireError(f"the value is nested more than {MAX_DEPTH} levels deep")
    kind = type(value)
    if value is None or kind in (bool, int, float):
        return value
    if kind is str:
        if len(value) > MAX_STRING:
            raise WireError(f"a string of {len(value)} characters is too long "
                            f"(at most {MAX_STRING})")
        return value
    if isinstance(value, np.generic) and value.dtype.name in DTYPES:
        return value.item()
    if isinstance(value, np.ndarray):
        return _encode_array(value.view(np.ndarray))
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return _encode_array(_tensor_to_numpy(torch, value))
    if kind in (list, tuple):
        return [encode(item, _depth + 1) for item in value]
    if kind is dict:
        if not all(type(key) is str for key in value):
            raise WireError("a dict sent to the grader must have string keys")
        return {"dict": {key: encode(value[key], _depth + 1) for key in sorted(value)}}
    raise WireError(f"cannot send a {kind.__name__} to the grader: return numbers, "
                    "arrays, tensors, or lists, tuples or dicts of them")


def _tensor_to_numpy(torch: Any, tensor: Any) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    if tensor.is_complex():
        raise WireError(f"cannot send a complex tensor ({tensor.dtype}) to the grader")
    return tensor.numpy()


def _encode_array(array: np.ndarray) -> dict:
    if array.dtype.name not in DTYPES:
        raise WireError(f"cannot send an array of dtype {array.dtype} to the grader "
                        f"(allowed: {', '.join(sorted(DTYPES))})")
    if array.size > MAX_ELEMENTS:
        raise WireError(f"an array of {array.size} values is too large "
                        f"(at most {MAX_ELEMENTS})")
    return {"array": {"dtype": array.dtype.name, "shape": list(array.shape),
                      "data": array.ravel().tolist()}}


def decode(data: Any, _depth: int = 0) -> Any:
    """Rebuild a value from :func:`encode`'s output, checking every part of it.

    Arrays come back as fresh ``np.ndarray`` objects whose dtype is in
    :data:`DTYPES` and whose shape matches their data; nothing else is built.

    Raises
    ------
    WireError
        If ``data`` is not something :func:`encode` produces.
    """
    if _depth > MAX_DEPTH:
        raise WireError(f"the value is nested more than {MAX_DEPTH} levels deep")
    kind = type(data)
    if data is None or kind in (bool, int, float, str):
        return data
    if kind is list:
        return [decode(item, _depth + 1) for item in data]
    if kind is dict and len(data) == 1:
        tag, body = next(iter(data.items()))
        if tag == "dict" and type(body) is dict:
            return {key: decode(body[key], _depth + 1) for key in sorted(body)}
        if tag == "array" and type(body) is dict:
            return _decode_array(body)
    raise WireError(f"malformed value of type {kind.__name__}")


_ELEMENT_TYPES = {"b": (bool,), "i": (int,), "u": (int,), "f": (int, float)}


def _decode_array(body: dict) -> np.ndarray:
    if sorted(body) != ["data", "dtype", "shape"]:
        raise WireError(f"malformed array with fields {sorted(body)}")
    dtype, shape, data = body["dtype"], body["shape"], body["data"]
    if type(dtype) is not str or dtype not in DTYPES:
        raise WireError(f"array dtype {dtype!r} is not allowed")
    if (type(shape) is not list or len(shape) > MAX_DEPTH
            or not all(type(n) is int and n >= 0 for n in shape)):
        raise WireError(f"malformed array shape {shape!r}")
    size = math.prod(shape)
    if size > MAX_ELEMENTS:
        raise WireError(f"an array of {size} values is too large (at most {MAX_ELEMENTS})")
    if type(data) is not list or len(data) != size:
        raise WireError(f"array of shape {tuple(shape)} needs {size} values")
    allowed = _ELEMENT_TYPES[np.dtype(dtype).kind]
    if not all(type(x) in allowed for x in data):
        raise WireError(f"array of dtype {dtype} holds values of the wrong type")
    try:
        return np.array(data, dtype=dtype).reshape(shape)
    except (OverflowError, ValueError) as exc:
        raise WireError(f"array values do not fit dtype {dtype}: {exc}") from None


def describe(exc: BaseException) -> str:
    """``"Type: message (cell 4, line 7)"``: an exception as a student should see it."""
    try:
        message = str(exc)
    except BaseException:
        message = "<the exception's message could not be printed>"
    if len(message) > 500:
        message = message[:500] + "..."
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    where = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith("<cell "):
            where = f"{filename[1:-1]}, line {tb.tb_lineno}"
        tb = tb.tb_next
    return f"{text} ({where})" if where else text


def call_probe(source: str, name: str, student: Mapping[str, Any], inputs: dict) -> Any:
    """Define probe ``name`` from its ``source`` and call it as ``probe(student, **inputs)``.

    A probe's globals are only the builtins, ``np`` and ``math``: it runs in the
    student's process, where nothing else from the grading file exists.
    """
    env = {"__builtins__": builtins, "__name__": "coursekit_probe", "np": np, "math": math}
    exec(compile(source, f"<probe {name}>", "exec"), env)
    return env[name](student, **inputs)


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Interrupted


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt the block after ``seconds``, and again every half second after.

    The repeat catches code that swallows the first interruption with a bare
    ``except``; code that swallows every one is stopped by the grader, which
    kills the whole process at the submission's wall-clock limit.
    """
    if seconds is None or not hasattr(signal, "setitimer"):
        yield
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, ALARM_REPEAT_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _Shell:
    """A stand-in for ``get_ipython()``: enough for the calls magics turn into.

    ``%time``, ``%%time`` and ``%%capture`` run their code once; every other magic
    and shell command (``%timeit``, ``!pip install``) does nothing.
    """

    def __init__(self, namespace: dict):
        self._namespace = namespace

    def run_line_magic(self, name: str, line: str, _stack_depth: int = 1) -> None:
        if name == "time":
            exec(compile(line, f"<magic %{name}>", "exec"), self._namespace)

    def run_cell_magic(self, name: str, line: str, cell: str) -> None:
        if name in ("time", "capture"):
            exec(compile(cell, f"<magic %%{name}>", "exec"), self._namespace)

    def system(self, command: str) -> None:
        return None

    def getoutput(self, command: str) -> list:
        return []


def _new_namespace() -> dict:
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    shell = _Shell(namespace)
    namespace["get_ipython"] = lambda: shell
    namespace["display"] = lambda *objects, **options: None
    return namespace


def _run_cell(cell: dict, namespace: dict, limit: float | None) -> tuple[str, str | None]:
    try:
        with _time_limit(limit):
            exec(compile(cell["source"], f"<cell {cell['cell']}>", "exec"), namespace)
    except _Interrupted:
        return "timeout", f"stopped after {limit:g} s (an infinite loop?)"
    except BaseException as exc:
        return "error", describe(exc)
    return "ok", None


def _run_call(call: dict, probes: dict, student: StudentNamespace,
              limit: float | None) -> dict:
    try:
        with _time_limit(limit):
            value = call_probe(probes[call["probe"]], call["probe"], student,
                               decode(call["inputs"]))
            return {"ok": True, "value": encode(value)}
    except _Interrupted:
        return {"ok": False, "timeout": True, "error": f"stopped after {limit:g} s"}
    except BaseException as exc:
        return {"ok": False, "error": describe(exc)}


def main() -> None:
    """Run the job on stdin: cells, then probes, writing one JSON record per line."""
    job = json.load(sys.stdin)
    sys.stdin = open(os.devnull)  # input() in a cell gets EOF rather than blocking
    sys.path[0] = ""  # like a notebook kernel: the working directory, not this folder
    results = open(job["results"], "a", encoding="utf-8")

    def emit(record: dict) -> None:
        results.write(_dumps(record) + "\n")
        results.flush()

    limit = job["cell_timeout"]
    namespace = _new_namespace()
    np.random.seed(0)  # noqa: NPY002 - a notebook that forgets to seed still repeats
    for cell in job["cells"]:
        emit({"kind": "cell", "cell": cell["cell"], "status": "running"})
        status, error = _run_cell(cell, namespace, limit)
        emit({"kind": "cell", "cell": cell["cell"], "status": status, "error": error})
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    student = StudentNamespace(namespace)
    for call in job["calls"]:
        emit({"kind": "probe", "key": call["key"], **_run_call(call, job["probes"], student,
                                                               limit)})
    emit({"kind": "done"})
    results.close()
    os._exit(0)  # skip atexit hooks and threads a submission may have left behind


if __name__ == "__main__":
    main()
