"""Warm starts: a zygote imports the course's libraries once, then forks a process per submission.

A cold start runs ``python child.py`` for every submission, and each one imports
NumPy, torch, matplotlib and pandas again before its first cell: about six seconds
of CPU per Homework 1 submission, more than its own optimizer code takes. A batch
instead starts one *zygote* (``child.py --zygote``, :func:`coursekit.grading.child.serve`)
per grading process: it imports :data:`PRELOAD` under the children's environment
(one thread, CI mode, ``PYTHONHASHSEED=0``) and then only forks. Each submission
is still one fresh process, forked from a zygote that has never run submitted code:

- the fork closes every descriptor but its own pipes and the notebook's, starts a
  session of its own and only then receives ``setup``, so limits, namespaces and
  the drop to its own uid (:mod:`.sandbox`) happen exactly as in a cold start,
  before any of the submission's code;
- what a submission changes (modules, files in its private ``/tmp``, its
  environment, the random generators it seeds) is in its own copy of the memory
  or its own mounts, gone when it ends; the next submission is forked from the
  unchanged zygote (``tests/test_grading_zygote.py`` checks it);
- the memory limit counts only what the submission maps beyond what it was forked
  with (:class:`~coursekit.grading.sandbox.Limits`), so preloading gives a
  notebook no more and no less room than a cold start.

The grader talks to its zygote over a private ``AF_UNIX`` datagram socket: it
sends ``spawn`` with the new process's four descriptors and gets back its pid and
a pidfd, which tells it when the process ends; it kills the process as it kills a
cold child and then asks the zygote, the process's parent, to ``reap`` it for its
exit status and CPU time. One zygote serves every thread of a grading process
(requests are serialised by a lock), and every worker of a Dask cluster starts its
own. It ends when the grading process closes the socket or exits, killing whatever
it still has. Warm starts need Linux (``fork``, pidfds, ``SCM_RIGHTS``); elsewhere,
or when a zygote cannot start, the grader starts children cold.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

__all__ = ["PRELOAD", "Zygote", "ZygoteError", "shared"]

PRELOAD = (
    "numpy", "torch", "torch._dynamo", "torch.optim", "matplotlib.pyplot", "pandas",
    "IPython.core.inputtransformer2", "coursekit.primer", "coursekit.viz.plot",
    "coursekit.experiments.sweep", "coursekit.grading.selfcheck", "pyseccomp",
)
"""What the course's notebooks import (``torch._dynamo`` is what a first
``optimizer.step()`` loads, two seconds by itself), and the system call filter's
binding; a module this machine lacks is skipped, and the submission that needs it
imports it."""

START_TIMEOUT = 120.0  # seconds for the imports
ANSWER_TIMEOUT = 60.0  # seconds for a fork or a reap (both take milliseconds)
_REPLY_BYTES = 4096


class ZygoteError(RuntimeError):
    """The zygote could not start, or stopped answering."""


class Zygote:
    """A running zygote and the grader's end of its socket.

    Parameters
    ----------
    preload : sequence of str
        Modules to import before the first fork.
    command : list of str
        How to start it: ``[python, child.py]``.
    env : dict
        Its whole environment (the children's).
    """

    def __init__(self, preload: tuple[str, ...], command: list[str], env: dict[str, str]):
        self.preload = tuple(preload)
        self._lock = threading.Lock()
        self._folder = tempfile.TemporaryDirectory(prefix="coursekit-zygote-",
                                                   ignore_cleanup_errors=True)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log = Path(self._folder.name, "zygote.log")
        env = {**env, "HOME": self._folder.name, "MPLCONFIGDIR": self._folder.name,
               "TMPDIR": self._folder.name}
        try:
            with open(log, "wb") as output:
                self._process = subprocess.Popen(
                    [*command, "--zygote", str(theirs.fileno()), *self.preload],
                    stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                    pass_fds=(theirs.fileno(),), cwd=self._folder.name, env=env,
                    start_new_session=True)
        except OSError as exc:
            ours.close()
            self._folder.cleanup()
            raise ZygoteError(f"the zygote could not start: {exc}") from exc
        finally:
            theirs.close()
        self._socket = ours
        self._socket.settimeout(START_TIMEOUT)
        try:
            ready = self._receive()[0]
        except ZygoteError as exc:
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
            self.close()
            raise ZygoteError(f"{exc}\n{tail}") from None
        self._socket.settimeout(ANSWER_TIMEOUT)
        self.preloaded = tuple(ready.get("preloaded", ()))
        self.failed = dict(ready.get("failed", {}))
        if ready.get("threads") != 1:  # forking a threaded process could deadlock its copy
            self.close()
            raise ZygoteError(f"the zygote runs {ready.get('threads')} threads after its "
                              "imports; it can only fork safely with one")

    def spawn(self, requests: int, replies: int, output: int, notebook: int,
              cwd: str | Path) -> tuple[int, int]:
        """Fork a fresh process that will read requests from ``requests``, reply on
        ``replies``, write its output to ``output`` and find the notebook on ``notebook``,
        in the folder ``cwd``; return its ``(pid, pidfd)``."""
        message = json.dumps({"spawn": {"cwd": os.fspath(cwd)}}).encode()
        with self._lock:
            self._send(message, [requests, replies, output, notebook])
            reply, fds = self._receive()
        if "pid" not in reply or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise ZygoteError(f"the zygote could not fork: {reply.get('error', reply)}")
        return int(reply["pid"]), fds[0]

    def reap(self, pid: int) -> tuple[int, float]:
        """The exit status and CPU seconds of ``pid`` (a process it forked, killed already)."""
        with self._lock:
            self._send(json.dumps({"reap": pid}).encode(), [])
            reply, _ = self._receive()
        if reply.get("pid") != pid:
            raise ZygoteError(f"the zygote could not reap process {pid}: {reply}")
        return int(reply["status"]), float(reply["cpu"])

    def close(self) -> None:
        """End the zygote (and anything it still runs) and remove its folder."""
        with contextlib.suppress(OSError):
            self._socket.close()
        if self._process.poll() is None:
            try:
                self._process.wait(timeout=10)  # end of file: it kills its children, exits
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._folder.cleanup()

    @property
    def alive(self) -> bool:
        """True while the zygote runs."""
        return self._process.poll() is None

    def _send(self, message: bytes, fds: list[int]) -> None:
        try:
            socket.send_fds(self._socket, [message], fds)
        except OSError as exc:
            raise ZygoteError(f"the zygote stopped answering: {exc}") from exc

    def _receive(self) -> tuple[dict, list[int]]:
        try:
            data, fds, _, _ = socket.recv_fds(self._socket, _REPLY_BYTES, 1)
        except (OSError, TimeoutError) as exc:
            raise ZygoteError(f"the zygote stopped answering: {exc}") from exc
        if not data:
            raise ZygoteError("the zygote has exited")
        return json.loads(data), fds


_LOCK = threading.Lock()
_SHARED: dict[tuple, Zygote] = {}


def available() -> bool:
    """Whether this system can start children warm (Linux, with pidfds)."""
    return sys.platform.startswith("linux") and hasattr(os, "pidfd_open") \
        and hasattr(socket, "send_fds")


def shared(preload: tuple[str, ...], command: list[str], env: dict[str, str]) -> Zygote | None:
    """This process's zygote for ``preload`` (started on first use, restarted if it has
    died), or None where warm starts are unavailable or the zygote would not start."""
    if not available():
        return None
    key = (tuple(preload), tuple(command), tuple(sorted(env.items())))
    with _LOCK:
        zygote = _SHARED.get(key)
        if zygote is not None and zygote.alive:
            return zygote
        if zygote is not None:
            zygote.close()
        try:
            _SHARED[key] = zygote = Zygote(preload, command, env)
        except ZygoteError:
            _SHARED.pop(key, None)
            return None
        return zygote


def forget(zygote: Zygote) -> None:
    """Stop ``zygote`` (it failed) so that the next :func:`shared` starts another."""
    with _LOCK:
        for key, value in list(_SHARED.items()):
            if value is zygote:
                del _SHARED[key]
    zygote.close()


@atexit.register
def _close_all() -> None:
    with _LOCK:
        zygotes = list(_SHARED.values())
        _SHARED.clear()
    for zygote in zygotes:
        with contextlib.suppress(Exception):
            zygote.close()
