"""Run a submitted notebook in a separate process and collect its probes' raw outputs.

The grader's side of ``child.py``. For each submission, :func:`run_submission`

1. starts ``python child.py`` in a new session with a small environment (one
   thread, no GPU, CI mode), sets it up with :mod:`.sandbox` (limits; as root,
   namespaces and an unprivileged user of its own) and hands it the notebook
   file's bytes (:func:`read_notebook`: at most ``MAX_NOTEBOOK_BYTES`` are read)
   on a file descriptor. The child parses the notebook and turns each cell into
   Python under its own limits, so no notebook costs the grader more than
   reading its bytes;
2. sends it the cells (by number), the public tests and last the hidden tests,
   one request at a time over a pipe, each with a fresh random id. It keeps the
   wall-clock limit of the whole submission, kills everything the submission
   started when it ends, and keeps only the tail of its output;
3. reads each reply within a bound (:data:`MAX_SMALL_REPLY_BYTES` for cells,
   ``MAX_MESSAGE_BYTES`` for a probe's value, at most :data:`MAX_REPLY_ITEMS`
   values and :data:`MAX_REPLY_CONTAINERS` lists and dicts) and decodes each
   probe's output with :func:`coursekit.grading.child.decode`: numbers and
   arrays of checked dtype and shape, never a pickle, never a verdict. Error
   messages are cut to ``MAX_TEXT`` characters.

Everything is deterministic: same notebook, same plan, same records.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursekit.grading import child, zygote
from coursekit.grading.child import (
    MAX_CODE_CELLS,
    MAX_ELEMENTS,
    MAX_MESSAGE_BYTES,
    MAX_NOTEBOOK_BYTES,
    WireError,
    clip,
    decode,
    encode,
)
from coursekit.grading.sandbox import Limits, SandboxError, configure, kill_user, sandbox_uid
from coursekit.grading.spec import Plan

__all__ = [
    "CellProblem",
    "Outcome",
    "RunResult",
    "read_notebook",
    "run_submission",
    "warm",
]

CHILD_SCRIPT = Path(child.__file__).resolve()
PACKAGE_DIR = CHILD_SCRIPT.parents[1]  # coursekit/, found without importing it
LOG_TAIL_CHARS = 2000
SETUP_TIMEOUT = 120.0
MAX_SMALL_REPLY_BYTES = 64 * 2**10  # replies to setup, read and cell requests
MAX_REPLY_ITEMS = 2 * MAX_ELEMENTS  # commas in one reply: a bound on the values it holds
MAX_REPLY_CONTAINERS = 100_000  # "[" and "{" in one reply


def read_notebook(path: str | Path) -> bytes:
    """The file's bytes, or only its first ``MAX_NOTEBOOK_BYTES + 1`` when it is larger
    (enough for the grader to call it too large)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size > MAX_NOTEBOOK_BYTES:
            return f.read(MAX_NOTEBOOK_BYTES + 1)
        return f.read()


@dataclass(frozen=True)
class CellProblem:
    """A cell that raised (``status="error"``) or ran past its limit (``"timeout"``)."""

    cell: int
    status: str
    error: str


@dataclass(frozen=True)
class Outcome:
    """What one probe call produced: a plain ``value``, or an ``error`` message."""

    value: Any = None
    error: str | None = None
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """True when the probe returned a value."""
        return self.error is None


@dataclass(frozen=True)
class RunResult:
    """The outcome of running one submission in its own process.

    Attributes
    ----------
    finished : bool
        The child ran every cell and every probe and exited on its own.
    timed_out : bool
        The grader killed it at the submission's wall-clock limit.
    returncode : int or None
        The child's exit status (negative: killed by that signal).
    cell_problems : tuple of CellProblem
        Cells that raised or timed out, in notebook order.
    last_cell : int or None
        The cell that was running when the child stopped, if it stopped in one.
    outputs : dict
        Probe outcomes by test key; tests whose probe never ran are absent.
    log_tail : str
        The end of the child's stdout and stderr, for debugging by hand. It may
        hold anything the submission printed, so feedback never shows it.
    cpu_limited : bool
        The process was stopped at its CPU-time limit.
    last_test : str or None
        The test whose probe was running when the child stopped, if any.
    hidden_started : bool
        The child had been sent a hidden test when it stopped (what it does then
        must not show in feedback).
    output_bytes : int
        How much the child wrote to stdout and stderr (only the tail is kept).
    isolation : dict
        What :func:`coursekit.grading.sandbox.enter` reported, and ``start``:
        ``"warm"`` (forked from a zygote, :mod:`.zygote`) or ``"cold"``.
    problem : (str, str) or None
        ``(status, detail)`` when the notebook could not run at all: ``"invalid"``,
        ``"empty"`` or ``"wrong_assignment"``, found by the child while reading
        it, before any of its code ran.
    """

    finished: bool
    timed_out: bool
    returncode: int | None
    cell_problems: tuple[CellProblem, ...] = ()
    last_cell: int | None = None
    outputs: dict[str, Outcome] = field(default_factory=dict)
    log_tail: str = ""
    cpu_limited: bool = False
    last_test: str | None = None
    hidden_started: bool = False
    output_bytes: int = 0
    isolation: dict = field(default_factory=dict)
    problem: tuple[str, str] | None = None


def _child_env() -> dict[str, str]:
    """The child's whole environment: nothing of the grader's but PATH and locale."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")
           if key in os.environ}
    env.update({
        "PYTHONPATH": str(PACKAGE_DIR.parent),
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "MPLBACKEND": "Agg",
        "COURSEKIT_FAST": "1",
        "COURSEKIT_GRADER_CHILD": "1",
    })
    return env


class _Child:
    """The grader's end of a running child: requests out, replies and output in.

    Only the first reply line that starts with the ``id`` of the request in
    flight is kept and read as JSON, if it is within the request's size limit
    and holds few enough values; everything else that arrives on the reply pipe
    is dropped unparsed as it comes (never more than the ``id``'s length of a
    line is held to decide), so nothing a submission writes there before a
    request exists can pass for its reply, or fill the grader's memory. Output is
    drained as it comes and only its tail kept.
    """

    def __init__(self, pid: int, requests: int, replies: int, output: int, *,
                 pidfd: int | None, poll: Callable[[], bool],
                 reap: Callable[[], tuple[int, float]]):
        self.pid = pid
        self.warm = False
        self.exited = False
        self.output_bytes = 0
        self._requests, self._replies, self._output = requests, replies, output
        self._open = {replies, output}
        for fd in (requests, replies, output):
            os.set_blocking(fd, False)
        self._pidfd = pidfd  # readable once the process has ended
        self._poll = poll  # without a pidfd: whether it has ended
        self._reap = reap  # its exit status and CPU seconds, once it is killed
        self._tail = bytearray()
        self._line = bytearray()
        self._skipping = False
        self._prefix = b""  # how the reply to the request in flight starts
        self._limit = MAX_SMALL_REPLY_BYTES
        self._reply: bytes | None = None
        self._pending = b""

    def ask(self, message: dict, deadline: float,
            limit: int = MAX_SMALL_REPLY_BYTES) -> dict | None:
        """Send ``message`` and return the reply (at most ``limit`` bytes), or None if
        the child stopped first or ``deadline`` (``time.monotonic()``) passed."""
        nonce = secrets.token_hex(16)
        self._pending = (json.dumps({"id": nonce, **message}) + "\n").encode()
        self._prefix, self._limit, self._reply = f'{{"id": "{nonce}"'.encode(), limit, None
        try:
            while self._reply is None:
                if self.exited or time.monotonic() >= deadline:
                    return None
                self._pump(deadline - time.monotonic())
            return _parse_reply(self._reply)
        finally:
            self._prefix, self._reply = b"", None

    def tell(self, message: dict) -> None:
        """Send ``message`` without waiting for a reply (``done``)."""
        self._pending = (json.dumps({"id": "", **message}) + "\n").encode()
        self._pump(0)

    def wait(self, deadline: float) -> bool:
        """Keep draining until the child exits or ``deadline``; True if it exited."""
        while not self.exited and time.monotonic() < deadline:
            self._pump(deadline - time.monotonic())
        return self.exited

    @property
    def log_tail(self) -> str:
        return self._tail.decode("utf-8", "replace")[-LOG_TAIL_CHARS:]

    def _pump(self, timeout: float) -> None:
        poller = select.poll()
        for fd in self._open:
            poller.register(fd, select.POLLIN)
        if self._pidfd is not None:
            poller.register(self._pidfd, select.POLLIN)
            wait = timeout
        else:
            wait = min(timeout, 0.05)
        if self._pending:
            poller.register(self._requests, select.POLLOUT)
        events = dict(poller.poll(max(0, int(wait * 1000))))
        for fd in sorted(self._open & set(events)):
            self._read(fd)
        if self._requests in events and self._pending:
            try:
                self._pending = self._pending[os.write(self._requests, self._pending):]
            except BlockingIOError:
                pass
            except OSError:  # the child closed its end: it is exiting
                self._pending = b""
        if self._pidfd in events if self._pidfd is not None else self._poll():
            self.exited = True
            for fd in sorted(self._open):  # what it wrote just before exiting
                self._read(fd, limit=MAX_MESSAGE_BYTES)

    def _read(self, fd: int, limit: int = 1 << 16) -> None:
        """Read at most ``limit`` bytes of what ``fd`` has now."""
        while limit > 0:
            try:
                data = os.read(fd, min(limit, 1 << 16))
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._open.discard(fd)
                return
            limit -= len(data)
            if fd == self._output:
                self.output_bytes += len(data)
                self._tail = (self._tail + data)[-4 * LOG_TAIL_CHARS:]
            else:
                self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Split reply data into lines and keep the first that can be the reply in
        flight; a line is dropped as soon as it cannot (another start, too long)."""
        *complete, rest = data.split(b"\n")
        for piece in complete:
            if not self._skipping:
                line = bytes(self._line + piece)
                if self._reply is None and self._prefix and line.startswith(self._prefix) \
                        and len(line) <= self._limit:
                    self._reply = line
            self._line.clear()
            self._skipping = False
        if rest and not self._skipping:
            self._line += rest
            start = bytes(self._line[:len(self._prefix)])
            if len(self._line) > self._limit or not self._prefix \
                    or start != self._prefix[:len(start)]:
                self._line.clear()
                self._skipping = True

    def close(self, uid: int | None) -> tuple[int, float]:
        """Kill whatever is left (the process group; as root every process of
        ``uid``), reap the child and return its exit status and CPU seconds.

        The pid cannot have been reused: nothing reaps the child before this does."""
        try:
            for kill in (os.killpg, os.kill):  # its group, and itself if it left the group
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(self.pid, signal.SIGKILL)
            if uid is not None:
                kill_user(uid)
            return self._reap()
        finally:
            for fd in (self._requests, self._replies, self._output, self._pidfd):
                if fd is not None:
                    os.close(fd)


def _parse_reply(line: bytes) -> dict:
    """A reply line as a dict, read only if it holds few enough values to be cheap."""
    if line.count(b",") > MAX_REPLY_ITEMS \
            or line.count(b"[") + line.count(b"{") > MAX_REPLY_CONTAINERS:
        return {"error": f"the reply holds too many values to read (at most {MAX_REPLY_ITEMS} "
                         f"values and {MAX_REPLY_CONTAINERS} lists and dicts)"}
    try:
        reply = json.loads(line)
    except (ValueError, RecursionError):
        return {"error": "the reply could not be read"}
    return reply if isinstance(reply, dict) else {}


def _outcome(record: dict) -> Outcome:
    if record.get("ok") is True and "value" in record:
        try:
            return Outcome(value=decode(record["value"]))
        except WireError as exc:
            return Outcome(error=clip(f"the grader could not read the returned value: {exc}"))
    error = record.get("error")
    return Outcome(error=clip(error) if isinstance(error, str) else "the probe failed",
                   timed_out=record.get("timeout") is True)


def _cell_problem(number: int, reply: dict) -> CellProblem | None:
    status = reply.get("status")
    if status == "ok":
        return None
    if status in ("error", "timeout") and isinstance(reply.get("error"), str):
        return CellProblem(number, status, clip(reply["error"]))
    return CellProblem(number, "error", "the cell's result could not be read")


def _read_problem(reply: dict | None) -> tuple[str, str] | None:
    """Why the notebook cannot run, from the child's reply to ``read``; None if it can."""
    if reply is None:
        return "invalid", "it could not be read within the submission's limits"
    problem, detail, cells = reply.get("problem"), reply.get("detail"), reply.get("cells")
    if problem in ("invalid", "empty", "wrong_assignment") and isinstance(detail, str):
        return problem, clip(detail)
    if isinstance(cells, list) and len(cells) <= MAX_CODE_CELLS \
            and all(type(n) is int for n in cells):
        return None
    return "invalid", "it could not be read"


def run_submission(notebook: bytes, plan: Plan, *, timeout: float,
                   cell_timeout: float, cwd: str | Path | None = None,
                   limits: Limits | None = None, isolate: bool = True,
                   hide: tuple[str | Path, ...] = (),
                   preload: tuple[str, ...] | None = None) -> RunResult:
    """Run a notebook's cells, then ``plan``'s probes, in a fresh Python process.

    Parameters
    ----------
    notebook : bytes
        The notebook file's bytes (:func:`read_notebook`). The child reads them:
        one that is not a notebook, has no code, or belongs to another assignment
        than ``plan``'s comes back with a ``problem`` and nothing of it runs.
    plan : Plan
        The tests whose probes to call (their expected outputs stay here).
    timeout : float
        Wall-clock seconds for the whole submission (not counting the process's
        start); then everything it started is killed.
    cell_timeout : float
        Seconds for each cell and each probe call, enforced inside the child.
    cwd : path, optional
        The child's working directory; default a fresh empty scratch folder.
    limits : Limits, optional
        Memory, CPU time (default: ``timeout``), processes, file size, disk.
    isolate : bool
        When the grader is root: namespaces and an unprivileged user (see
        :mod:`coursekit.grading.sandbox`). ``coursekit check`` runs a student's
        own notebook with ``isolate=False``.
    hide : paths
        What the submission must not see (covered when namespaces are available).
    preload : tuple of str, optional
        Start warm: fork the process from this grading process's zygote, which has
        imported these modules (:mod:`coursekit.grading.zygote`; a batch passes
        :data:`~coursekit.grading.zygote.PRELOAD`). None, or a system without warm
        starts, starts ``child.py`` cold. The result is the same either way.

    Raises
    ------
    SandboxError
        If the child could not be set up (nothing of the submission had run).
    """
    for name, value in (("timeout", timeout), ("cell_timeout", cell_timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    limits = Limits() if limits is None else limits
    if not isinstance(limits, Limits):
        raise ValueError(f"limits must be a Limits, got {limits!r}")
    if os.name != "posix":
        raise SandboxError("running a notebook in a separate process needs Linux or macOS "
                           "(on Windows, use WSL; inside a notebook, check(globals(), ...) "
                           "works everywhere)")
    cpu_seconds = limits.cpu_seconds or float(timeout)
    as_root = isolate and os.name == "posix" and os.geteuid() == 0
    with tempfile.TemporaryDirectory(prefix="coursekit-run-") as tmp, \
            tempfile.TemporaryFile(dir=tmp) as notebook_file:
        notebook_file.write(notebook)
        notebook_file.seek(0)
        scratch = Path(tmp) / "work"
        scratch.mkdir()
        child, uid = _start(scratch, notebook_file.fileno(), preload), None
        try:
            if as_root:
                uid = sandbox_uid(child.pid)
                os.chmod(tmp, 0o711)  # for the scratch folder, when namespaces are missing
                os.chown(scratch, uid, uid)
            config = configure(limits, cpu_seconds=cpu_seconds, uid=uid,
                               workdir=str(cwd or scratch), package_dir=str(PACKAGE_DIR),
                               hide=[os.path.abspath(p) for p in hide])
            setup = child.ask({"type": "setup", "sandbox": config,
                               "cell_timeout": float(cell_timeout)},
                              time.monotonic() + SETUP_TIMEOUT)
            if setup is not None and "isolation" in setup:
                run = _drive(child, plan, time.monotonic() + timeout)
        finally:
            returncode, cpu = child.close(uid)
    if setup is None or "isolation" not in setup:
        why = (setup or {}).get("error") or f"it stopped with status {returncode}"
        raise SandboxError(f"the grading process could not be set up: {why}\n{child.log_tail}")
    timed_out = not child.exited
    finished = child.exited and run["done"] and returncode == 0
    killed = returncode in (-signal.SIGXCPU, -signal.SIGKILL)
    cpu_limited = not finished and not timed_out and killed and (
        returncode == -signal.SIGXCPU or cpu >= cpu_seconds)
    return RunResult(finished=finished, timed_out=timed_out, returncode=returncode,
                     cell_problems=tuple(run["problems"]), last_cell=run["last_cell"],
                     outputs=run["outputs"], log_tail=child.log_tail, cpu_limited=cpu_limited,
                     last_test=run["last_test"], hidden_started=run["hidden_started"],
                     output_bytes=child.output_bytes,
                     isolation={**setup["isolation"], "start": "warm" if child.warm else "cold"},
                     problem=run["problem"])


def warm(preload: tuple[str, ...] = zygote.PRELOAD) -> bool:
    """Start this process's zygote for ``preload`` now, rather than with the first
    submission (on Dask: ``client.run(warm)`` starts one on every worker). True if this
    process has one, False where warm starts are unavailable (submissions start cold)."""
    return zygote.shared(tuple(preload), [sys.executable, str(CHILD_SCRIPT)],
                         _child_env()) is not None


def _start(cwd: Path, notebook_fd: int, preload: tuple[str, ...] | None) -> _Child:
    """A fresh process for one submission, in a new session in ``cwd``, its three pipes
    connected to a :class:`_Child` and ``notebook_fd`` (the notebook's bytes) passed on:
    forked by the zygote for ``preload`` when there is one, else ``child.py`` started cold."""
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    output_r, output_w = os.pipe()
    ours = (requests_w, replies_r, output_r)
    try:
        warm = None if preload is None else zygote.shared(
            tuple(preload), [sys.executable, str(CHILD_SCRIPT)], _child_env())
        if warm is not None:
            try:
                pid, pidfd = warm.spawn(requests_r, replies_w, output_w, notebook_fd, cwd)
            except zygote.ZygoteError:
                zygote.forget(warm)  # the next submission gets a new one; this one starts cold
            else:
                child = _Child(pid, *ours, pidfd=pidfd, poll=lambda: False,
                               reap=lambda: warm.reap(pid))
                child.warm = True
                return child
        process = subprocess.Popen(
            [sys.executable, str(CHILD_SCRIPT), str(requests_r), str(replies_w),
             str(notebook_fd)],
            stdin=subprocess.DEVNULL, stdout=output_w, stderr=output_w,
            pass_fds=(requests_r, replies_w, notebook_fd), cwd=str(cwd), env=_child_env(),
            start_new_session=True)
    except BaseException:
        for fd in ours:
            os.close(fd)
        raise
    finally:
        for fd in (requests_r, replies_w, output_w):
            os.close(fd)
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # not Linux >= 5.3: poll instead
        pidfd = None
    return _Child(process.pid, *ours, pidfd=pidfd, poll=lambda: process.poll() is not None,
                  reap=lambda: _reap(process))


def _reap(process: subprocess.Popen) -> tuple[int, float]:
    """The exit status and CPU seconds of a killed cold child."""
    if process.returncode is not None:  # reaped by poll(): no usage left to read
        return process.returncode, 0.0
    _, wait_status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(wait_status)
    return process.returncode, usage.ru_utime + usage.ru_stime


def _drive(child: _Child, plan: Plan, deadline: float) -> dict:
    """Have the notebook read, then send its cells, the public tests, the hidden tests
    and ``done``."""
    run = {"problems": [], "outputs": {}, "last_cell": None, "last_test": None,
           "hidden_started": False, "done": False, "problem": None}
    reply = child.ask({"type": "read", "assignment": plan.assignment}, deadline)
    run["problem"] = _read_problem(reply)
    if run["problem"] is not None:
        child.tell({"type": "done"})
        run["done"] = child.wait(deadline)
        return run
    for number in reply["cells"]:
        reply = child.ask({"type": "cell", "cell": number}, deadline)
        if reply is None:
            run["last_cell"] = number
            return run
        problem = _cell_problem(number, reply)
        if problem is not None:
            run["problems"].append(problem)
    for test in sorted(plan.tests, key=lambda t: t.hidden):  # public first
        run["hidden_started"] |= test.hidden
        reply = child.ask({"type": "call", "key": test.key, "probe": test.probe,
                           "source": plan.probes[test.probe], "inputs": encode(test.inputs)},
                          deadline, MAX_MESSAGE_BYTES)
        if reply is None:
            run["last_test"] = test.key
            return run
        run["outputs"][test.key] = _outcome(reply)
    child.tell({"type": "done"})
    run["done"] = child.wait(deadline)
    return run
