"""The program that runs one submission, in a process of its own.

The grader (``coursekit.grading.runner``) starts this file as a script::

    python .../coursekit/grading/child.py REQUESTS_FD REPLIES_FD

and drives it over two pipes, one request at a time, each a line of JSON with
a fresh random ``id`` that the reply must carry:

1. ``setup``: limits and isolation (:func:`sandbox.enter`), done before any
   submitted code runs; the reply reports what holds;
2. ``cell``, once per code cell, in notebook order: run it in the notebook's
   namespace, as a student pressing shift-enter would (a cell that raises is
   recorded and the next cell still comes);
3. ``call``, once per test: define the probe from its source and call it on the
   inputs, replying with what it returned as plain data. Public tests come
   first; the grader sends the hidden tests' probes and inputs only after every
   cell and public test has finished, so nothing a cell does can see them;
4. ``done``: exit.

Stdout and stderr are not part of this channel (the grader keeps only their
tail, for debugging). The child never sees a reference answer and never decides
whether a test passed: the grader rebuilds each value as numbers and arrays of
checked dtype and shape (never a pickle) and compares in its own process. A
submission can write to the reply pipe, but the grader reads only the line that
carries the ``id`` of the request in flight, which no code could know before the
request was sent.

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
import random
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
MAX_MESSAGE_BYTES = 64 * 2**20
REQUESTS = frozenset({"setup", "cell", "call", "done"})
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


def _flush() -> None:
    """Push what the cells printed to the grader's log (stdout is a buffered pipe)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()


def _run_cell(source: str, number: int, namespace: dict, limit: float) -> dict:
    try:
        with _time_limit(limit):
            exec(compile(source, f"<cell {number}>", "exec"), namespace)
    except _Interrupted:
        return {"status": "timeout", "error": f"stopped after {limit:g} s (an infinite loop?)"}
    except BaseException as exc:
        return {"status": "error", "error": describe(exc)}
    finally:
        _flush()
    return {"status": "ok", "error": None}


def _run_call(request: dict, student: StudentNamespace, limit: float) -> dict:
    try:
        with _time_limit(limit):
            value = call_probe(request["source"], request["probe"], student,
                               decode(request["inputs"]))
            return {"ok": True, "value": encode(value)}
    except _Interrupted:
        return {"ok": False, "timeout": True, "error": f"stopped after {limit:g} s"}
    except BaseException as exc:
        return {"ok": False, "error": describe(exc)}


class _Channel:
    """This side of the pipes: one JSON request in, one JSON reply out, ``id`` first."""

    def __init__(self, requests: int, replies: int):
        self._requests = os.fdopen(requests, "rb")
        self._replies = replies

    def receive(self) -> dict | None:
        """The next request, or None at the end; lines that are not one are skipped
        (only the submission itself could have written them, into its own pipe)."""
        while line := self._requests.readline(MAX_MESSAGE_BYTES):
            with contextlib.suppress(ValueError, RecursionError):
                request = json.loads(line)
                if isinstance(request, dict) and request.get("type") in REQUESTS \
                        and isinstance(request.get("id"), str):
                    return request
        return None

    def send(self, request: dict, reply: dict) -> None:
        data = (_dumps({"id": request["id"], **reply}) + "\n").encode()
        if len(data) > MAX_MESSAGE_BYTES:
            message = f"the returned value is too large to send ({len(data) / 2**20:.0f} MiB)"
            data = (_dumps({"id": request["id"], "ok": False, "error": message}) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self._replies, view):]


def main() -> None:
    """Answer the grader's requests (see the module docstring) until ``done``."""
    import sandbox  # the file beside this one; coursekit.grading.sandbox would import coursekit

    channel = _Channel(int(sys.argv[1]), int(sys.argv[2]))
    sys.path[0] = ""  # like a notebook kernel: the working directory, not this folder
    setup = channel.receive()
    if setup is None:
        os._exit(0)
    try:
        report = sandbox.enter(setup["sandbox"])
    except (sandbox.SandboxError, OSError) as exc:
        channel.send(setup, {"error": f"{type(exc).__name__}: {exc}"})
        os._exit(70)
    channel.send(setup, {"isolation": report})
    limit = setup["cell_timeout"]
    namespace = _new_namespace()
    random.seed(0)  # a notebook that forgets to seed still repeats
    np.random.seed(0)  # noqa: NPY002
    student = StudentNamespace(namespace)
    while (request := channel.receive()) is not None and request["type"] != "done":
        if request["type"] == "cell":
            channel.send(request, _run_cell(request["source"], request["cell"], namespace, limit))
        elif request["type"] == "call":
            torch = sys.modules.get("torch")
            if torch is not None:
                torch.set_num_threads(1)
            channel.send(request, _run_call(request, student, limit))
    _flush()
    os._exit(0)  # skip atexit hooks and threads a submission may have left behind


if __name__ == "__main__":
    main()
