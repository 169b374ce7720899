"""The program that runs one submission, in a process of its own.

The grader (``coursekit.grading.runner``) starts this file as a script::

    python .../coursekit/grading/child.py REQUESTS_FD REPLIES_FD NOTEBOOK_FD

or, for a batch, forks it from a zygote (:func:`serve`, started as ``child.py
--zygote``), a process that has imported the course's libraries once and never
runs submitted code; either way each submission gets a fresh process, which the
grader drives over two pipes, one request at a time, each a line of JSON with
a fresh random ``id`` that the reply must carry:

1. ``setup``: limits and isolation (:func:`sandbox.enter`), done before any
   submitted code runs; the reply reports what holds;
2. ``read``: read the notebook file's bytes from ``NOTEBOOK_FD`` (then closed) and
   find its code cells (:func:`notebook_cells`), here, under the limits just set
   and before any of its code runs; the reply lists the cells' numbers, or says
   why the notebook cannot run;
3. ``cell``, once per code cell, in notebook order: turn its IPython syntax into
   Python (:func:`python_source`) and run it in the notebook's namespace, as a
   student pressing shift-enter would (a cell that raises is recorded and the
   next cell still comes); both steps count towards the cell's time limit;
4. ``call``, once per test: define the probe from its source and call it on the
   inputs, replying with what it returned as plain data. Public tests come
   first; the grader sends the hidden tests' probes and inputs only after every
   cell and public test has finished, so nothing a cell does can see them;
5. ``done``: exit.

Everything a notebook can make costly (parsing its JSON, transforming its
magics, running its code) happens in this process, under its limits; the grader
only reads the file's bytes and the replies, whose size it bounds.

Stdout and stderr are not part of this channel (the grader keeps only their
tail, for debugging). The child never sees a reference answer and never decides
whether a test passed: the grader rebuilds each value as numbers and arrays of
checked dtype and shape (never a pickle) and compares in its own process. A
submission can write to the reply pipe, but the grader reads only the line that
carries the ``id`` of the request in flight, which no code could know before the
request was sent.

This file imports only the standard library and NumPy at the top (IPython only
for a cell that is not plain Python), so a submission that never imports torch
does not pay for it. The grader imports the
same file as a module for the wire format (``encode`` and ``decode``), so both
sides agree on it.

Wire format
-----------
``None``, ``bool``, ``int``, ``float`` and ``str`` travel as JSON values; lists
and tuples as JSON lists; a dict with string keys as ``{"dict": {...}}``; a
NumPy array or torch tensor as ``{"array": {"dtype": ..., "shape": [...],
"data": [...]}}`` with the values flattened in C order. Python's ``json`` writes
floats with ``repr``, so float64 values cross exactly (NaN and infinities too).
Both sides refuse strings (and dict keys) longer than :data:`MAX_STRING`
characters, nesting deeper than :data:`MAX_DEPTH` levels and arrays of more than
:data:`MAX_ELEMENTS` values.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import math
import os
import random
import re
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
    "clip",
    "decode",
    "describe",
    "encode",
    "notebook_cells",
    "python_source",
]

DTYPES = frozenset({
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
})
MAX_ELEMENTS = 1_000_000
MAX_STRING = 10_000
MAX_DEPTH = 32
MAX_MESSAGE_BYTES = 64 * 2**20
MAX_NOTEBOOK_BYTES = 64 * 2**20
MAX_CODE_CELLS = 2000
MAX_TEXT = 1000
REQUESTS = frozenset({"setup", "read", "cell", "call", "done"})
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
        return _short(value)
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
        return {"dict": {_short(key): encode(value[key], _depth + 1) for key in sorted(value)}}
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
    if data is None or kind in (bool, int, float):
        return data
    if kind is str:
        return _short(data)
    if kind is list:
        return [decode(item, _depth + 1) for item in data]
    if kind is dict and len(data) == 1:
        tag, body = next(iter(data.items()))
        if tag == "dict" and type(body) is dict:
            return {_short(key): decode(body[key], _depth + 1) for key in sorted(body)}
        if tag == "array" and type(body) is dict:
            return _decode_array(body)
    raise WireError(f"malformed value of type {kind.__name__}")


def _short(text: str) -> str:
    if len(text) > MAX_STRING:
        raise WireError(f"a string of {len(text)} characters is too long (at most {MAX_STRING})")
    return text


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


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` as the grader stores it: at most ``limit`` characters (the cut said at
    the end) and no lone surrogate (written as its escape, ``\\udc80``), so that any
    string a submission sends can be written to a UTF-8 file."""
    if len(text) > limit:
        keep = max(limit - len(f"... ({len(text)} more characters)"), 0)
        text = f"{text[:keep]}... ({len(text) - keep} more characters)"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def notebook_cells(data: bytes, assignment: str) -> tuple[list[tuple[int, str]], str | None, str]:
    """The code cells of a notebook file's bytes, as ``(cells, problem, detail)``.

    ``cells`` holds ``(number, source)`` for every non-blank code cell, numbered
    from 1 among all the notebook's cells (nbformat 4, or 2 and 3 with their
    worksheets, as ``nbformat`` numbers them once converted). ``problem`` is
    None, or ``"invalid"`` (not UTF-8 JSON, not a notebook, over
    :data:`MAX_NOTEBOOK_BYTES` or :data:`MAX_CODE_CELLS`), ``"wrong_assignment"``
    (its release metadata names another assignment than ``assignment``) or
    ``"empty"``, explained by ``detail``. Never raises for bad bytes.
    """
    if len(data) > MAX_NOTEBOOK_BYTES:
        return [], "invalid", f"larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB"
    try:
        notebook = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return [], "invalid", f"cannot be read as UTF-8 text: {exc}"
    except (ValueError, RecursionError) as exc:
        first_line = (str(exc).splitlines() or [""])[0][:200]
        return [], "invalid", f"not a notebook: not JSON ({type(exc).__name__}: {first_line})"
    version = notebook.get("nbformat") if isinstance(notebook, dict) else None
    if type(version) is not int:
        return [], "invalid", "not a notebook: it has no nbformat version"
    metadata = notebook.get("metadata", {})
    if version == 4:
        cells, key = notebook.get("cells"), "source"
    elif version in (2, 3):
        sheets = notebook.get("worksheets", [])
        cells, key = None, "input"
        if isinstance(sheets, list) and all(isinstance(w, dict) for w in sheets):
            cells = [c for w in sheets for c in
                     (w.get("cells", []) if isinstance(w.get("cells", []), list) else [None])]
    else:
        return [], "invalid", f"not a notebook this grader reads (nbformat {version}; Jupyter " \
                              "writes 4)"
    if not isinstance(cells, list) or not isinstance(metadata, dict):
        return [], "invalid", "not a valid notebook: its cells must be a list and its " \
                              "metadata an object"
    stamp = metadata.get("coursekit", {})
    other = stamp.get("assignment") if isinstance(stamp, dict) else None
    if other is not None and other != assignment:
        return [], "wrong_assignment", clip(f"this notebook is for assignment {other!r}, not "
                                            f"{assignment!r}", 200)
    code = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get(key, "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if isinstance(source, str) and source.strip():
            code.append((number, source))
    if len(code) > MAX_CODE_CELLS:
        return [], "invalid", f"more than {MAX_CODE_CELLS} code cells ({len(code)})"
    if not code:
        return [], "empty", "the notebook has no code to run"
    return code, None, ""


def _without_leading_blank_lines(source: str) -> str:
    """What IPython runs of a cell: its lines from the first one that is not blank."""
    lines = source.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line and not line.isspace():
            return "".join(lines[i:])
    return source


# What IPython strips from a cell even when it is valid Python (its cleanup transforms in
# IPython.core.inputtransformer2): the indentation when the first line is indented, and
# console prompts when the first line, or the second, starts with one (``In [1]: x = 1``
# is an annotated assignment; ``x = [1,`` then ``... ]`` is a list holding Ellipsis).
_FIRST_PROMPT = re.compile(r">>>( |$)|((\[nav\]|\[ins\])? )?In \[\d+\]: |\s*\.{3,}: ?")
_NEXT_PROMPT = re.compile(r"(>>>|\.\.\.)( |$)|((\[nav\]|\[ins\])? )?In \[\d+\]: |\s*\.{3,}: ?")


def _plain_python(source: str) -> bool:
    """Whether IPython would run ``source`` (without leading blank lines) as it is."""
    lines = source.splitlines()[:2]
    if source[:1].isspace() or (lines and _FIRST_PROMPT.match(lines[0])) \
            or (len(lines) > 1 and _NEXT_PROMPT.match(lines[1])):
        return False
    try:
        compile(source, "<cell>", "exec")
    except (SyntaxError, ValueError):  # ValueError: a null byte (Python < 3.12)
        return False
    return True


def _ipython_source(source: str) -> str:
    # here, not at the top: only a cell that is not plain Python needs IPython
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def python_source(source: str) -> str:
    """A cell's source as plain Python, as IPython runs it.

    Magics and ``!`` commands become calls to the child's stand-in
    ``get_ipython()`` (IPython's ``TransformerManager``). IPython is imported only
    for a cell that is not already plain Python: one that compiles, starts
    unindented and holds no console prompt comes back as it is, less its leading
    blank lines, as IPython drops them. Source IPython cannot parse is kept as
    is, so that running it reports the syntax error.

    IPython's transformer can take time quadratic in a cell's size (each magic
    line makes it tokenize the whole cell again): the child calls it inside the
    cell's time limit, never the grader.
    """
    plain = _without_leading_blank_lines(source)
    return plain if _plain_python(plain) else _ipython_source(plain)


_CELL_LINES: dict[str, tuple[int, list[str]]] = {}
"""Per compiled cell (``"<cell N>"``): how many blank lines IPython dropped at its top
(line numbers of the Python that ran count from the first other line), and the cell's
lines as the student wrote them, for the traceback lines :func:`describe` quotes."""
MAX_FRAMES = 6
MAX_LINE = 160


def _compile_cell(source: str, filename: str) -> Any:
    """:func:`python_source` compiled, its lines kept for :func:`describe`."""
    python = python_source(source)
    dropped = len(source.splitlines()) - len(_without_leading_blank_lines(source).splitlines())
    _CELL_LINES[filename] = (dropped, source.splitlines())
    return compile(python, filename, "exec")


def _cell_line(filename: str, line: int) -> tuple[int, str]:
    """Where line ``line`` of the Python compiled as ``filename`` (``"<cell N>"``) is in
    the student's cell, and its text, stripped and cut to :data:`MAX_LINE` characters."""
    dropped, lines = _CELL_LINES.get(filename, (0, []))
    line += dropped
    text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    if len(text) > MAX_LINE:
        text = text[:MAX_LINE - 3] + "..."
    return line, text


def _student_frames(exc: BaseException) -> list[str]:
    """The traceback of ``exc`` in the student's cells only (``"<cell N>"`` files; never
    this file, a probe, a magic or a library), outermost first: ``"cell N, line L, in
    f"`` and the line's text, a repeated frame said once with its count, at most
    :data:`MAX_FRAMES` frames (the first and the innermost ones)."""
    frames: list[list] = []
    tb = exc.__traceback__
    while tb is not None:
        filename, name = tb.tb_frame.f_code.co_filename, tb.tb_frame.f_code.co_name
        if filename.startswith("<cell "):
            line, text = _cell_line(filename, tb.tb_lineno)
            where = f"{filename[1:-1]}, line {line}, in {name[:MAX_LINE]}"
            if frames and frames[-1][0] == where:
                frames[-1][2] += 1
            else:
                frames.append([where, text, 0])
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and isinstance(exc.filename, str) \
            and exc.filename.startswith("<cell ") and isinstance(exc.lineno, int):
        line, text = _cell_line(exc.filename, exc.lineno)
        frames.append([f"{exc.filename[1:-1]}, line {line}", text, 0])
    shown = [f"  {where}" + (f"\n    {text}" if text else "")
             + (f"\n  [the frame above repeated {again} more times]" if again else "")
             for where, text, again in frames]
    if len(shown) > MAX_FRAMES:
        left_out = len(shown) - MAX_FRAMES
        shown = [shown[0], f"  [{left_out} more frames]", *shown[-(MAX_FRAMES - 1):]]
    return shown


def describe(exc: BaseException) -> str:
    """An exception as a student should see it, at most :data:`MAX_TEXT` characters.

    The first line is ``"Type: message (cell 4, line 7)"`` (the innermost line of the
    student's cells that it passed through); the next lines are its traceback in the
    student's cells only, as Python prints one::

        ZeroDivisionError: division by zero (cell 4, line 2)
          cell 4, line 2, in <module>
            loss = total / count

    Line numbers count the cell's lines as the notebook shows them. Frames of the
    grader (this file, probes), of magics and of libraries are left out.
    """
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
            where = f"{filename[1:-1]}, line {_cell_line(filename, tb.tb_lineno)[0]}"
        tb = tb.tb_next
    text = f"{text} ({where})" if where else text
    return clip("\n".join([text, *_student_frames(exc)]))


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
    code = None
    try:
        with _time_limit(limit):
            code = _compile_cell(source, f"<cell {number}>")
            exec(code, namespace)
    except _Interrupted:
        if code is None:
            return {"status": "timeout", "error": f"stopped after {limit:g} s while compiling it "
                                                  "(turning its IPython magics and !commands into "
                                                  "Python)"}
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


def _read_notebook(request: dict, fd: int, limit: float) -> tuple[dict, dict[int, str]]:
    """Read the notebook from ``fd`` (closed after) and find its code cells: the reply to
    ``read`` and the cells by number. Runs before any of the notebook's code."""
    try:
        with _time_limit(limit):
            chunks, size = [], 0
            while size <= MAX_NOTEBOOK_BYTES and (chunk := os.read(fd, 1 << 20)):
                chunks.append(chunk)
                size += len(chunk)
            cells, problem, detail = notebook_cells(b"".join(chunks), request["assignment"])
    except _Interrupted:
        cells, problem, detail = [], "invalid", f"reading it took more than {limit:g} s"
    except MemoryError:
        cells, problem, detail = [], "invalid", "reading it needs more memory than the limit"
    finally:
        os.close(fd)
    if problem is not None:
        return {"problem": problem, "detail": detail}, {}
    return {"cells": [number for number, _ in cells]}, dict(cells)


def run(requests: int, replies: int, notebook_fd: int) -> None:
    """Answer the grader's requests on ``requests``/``replies`` (see the module docstring)
    until ``done``, reading the notebook from ``notebook_fd``; then exit."""
    import sandbox  # the file beside this one; coursekit.grading.sandbox would import coursekit

    channel = _Channel(requests, replies)
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
    cells: dict[int, str] = {}
    while (request := channel.receive()) is not None and request["type"] != "done":
        if request["type"] == "read" and notebook_fd is not None:
            reply, cells = _read_notebook(request, notebook_fd, limit)
            notebook_fd = None
            channel.send(request, reply)
        elif request["type"] == "cell":
            source = cells.get(request.get("cell"))
            channel.send(request, {"status": "error", "error": "no such code cell"}
                         if source is None else _run_cell(source, request["cell"], namespace,
                                                          limit))
        elif request["type"] == "call":
            torch = sys.modules.get("torch")
            if torch is not None:
                torch.set_num_threads(1)
            channel.send(request, _run_call(request, student, limit))
    _flush()
    os._exit(0)  # skip atexit hooks and threads a submission may have left behind


# The warm start: a zygote that forks one fresh process per submission ---------------------

def serve(control: int, modules: list[str]) -> None:
    """Be the zygote (see :mod:`coursekit.grading.zygote`): import ``modules``, then fork
    a process per ``spawn`` request on the ``control`` socket until the grader closes it.

    Requests and replies are one JSON datagram each:

    - ``{"spawn": {"cwd": folder}}`` with four file descriptors (requests, replies,
      output, notebook) -> ``{"pid": pid}`` with a pidfd of the new process, which
      closes every other descriptor, starts a session of its own in ``folder`` and
      then is exactly a cold child: :func:`run`, from ``setup`` on;
    - ``{"reap": pid}``, sent once the grader has killed it -> ``{"status": exit status,
      "cpu": seconds}`` from ``wait4``.

    The zygote itself never runs a line of any submission, so each submission starts
    from the same imported modules and nothing one leaves behind reaches the next.
    When the grader goes away (end of file on ``control``), every process the zygote
    started is killed and its folder (``coursekit-zygote-*``) removed.
    """
    import socket

    import sandbox  # noqa: F401  (loaded once, here, for every submission)

    sys.path[0] = ""
    home = os.getcwd()  # the folder the grader made for it
    channel = socket.socket(fileno=control)
    loaded, failed = [], {}
    for name in modules:
        try:
            __import__(name)
            loaded.append(name)
        except BaseException as exc:  # a module this machine lacks: the submission imports it
            failed[name] = clip(describe(exc), 200)
    threads = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1
    _flush()
    channel.send(_dumps({"ready": True, "preloaded": loaded, "failed": failed,
                         "threads": threads}).encode())
    children: set[int] = set()
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(channel, 4096, 4)
        except OSError:
            break
        if not data:
            break  # the grader has gone
        try:
            request = json.loads(data)
        except ValueError:
            request = None
        request = request if isinstance(request, dict) else {}
        if "spawn" in request and len(fds) == 4:
            _flush()
            pid = os.fork()
            if pid == 0:
                _forked(channel, fds, request["spawn"]["cwd"])
            children.add(pid)
            pidfd = os.pidfd_open(pid)
            socket.send_fds(channel, [_dumps({"pid": pid}).encode()], [pidfd])
            os.close(pidfd)
        elif request.get("reap") in children:
            pid = request["reap"]
            _, status, usage = os.wait4(pid, 0)
            children.discard(pid)
            channel.send(_dumps({"pid": pid, "status": os.waitstatus_to_exitcode(status),
                                 "cpu": usage.ru_utime + usage.ru_stime}).encode())
        else:
            channel.send(_dumps({"error": f"not a request the zygote answers: {data[:80]!r}"})
                         .encode())
        for fd in fds:
            os.close(fd)
    for pid in children:
        for kill in (os.killpg, os.kill):
            with contextlib.suppress(OSError):
                kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.waitpid(pid, 0)
    if os.path.basename(home).startswith("coursekit-zygote-"):  # its folder, even if the
        import shutil  # grader was killed and cannot remove it

        shutil.rmtree(home, ignore_errors=True)
    os._exit(0)


def _forked(channel: Any, fds: list[int], cwd: str) -> None:
    """The new process of a ``spawn``: keep only its own descriptors, then :func:`run`."""
    try:
        requests, replies, output, notebook = fds
        channel.close()  # the zygote's socket: nothing of the submission may ever reach it
        os.setsid()
        os.dup2(output, 1)
        os.dup2(output, 2)
        keep = {0, 1, 2, requests, replies, notebook}
        for name in os.listdir("/proc/self/fd"):
            if int(name) not in keep:
                with contextlib.suppress(OSError):
                    os.close(int(name))
        os.chdir(cwd)
        run(requests, replies, notebook)
    finally:
        os._exit(70)


def main() -> None:
    """``child.py REQUESTS REPLIES NOTEBOOK`` runs one submission (:func:`run`);
    ``child.py --zygote CONTROL MODULE...`` is the zygote (:func:`serve`)."""
    if sys.argv[1] == "--zygote":
        serve(int(sys.argv[2]), sys.argv[3:])
    else:
        run(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))


if __name__ == "__main__":
    main()
