"""The box, as root: a submission sees only what it needs, and cannot trace, mount or nest.

Each test runs a cell that tries, and reports what it managed; and the same cell run
without the box (``isolate=False``, as ``coursekit check`` runs a student's own notebook)
shows that the cell does find what is there to find.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from grading_helpers import GRADING, notebook_bytes, solution, write

from coursekit.grading import Plan, grade, zygote
from coursekit.grading.runner import run_submission
from coursekit.grading.sandbox import DEVICES, SYSTEM_PATHS, _seccomp

pytestmark = pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0,
    reason="the box (namespaces, an allow-list view, a system call filter) is built only "
           "when the grader runs as root")

ROOT = Path(__file__).resolve().parents[1]
EMPTY = Plan("box", (), ())
NO_FILTER = _seccomp() if isinstance(_seccomp(), str) else None
needs_filter = pytest.mark.skipif(NO_FILTER is not None, reason=f"system calls {NO_FILTER}: "
                                  "install libseccomp2 (Debian, Ubuntu: it is there by default)")

LOOK = """
import json, os
def look(path):
    try:
        if os.path.isdir(path):
            return sorted(os.listdir(path))
        with open(path, "rb") as f:
            return f.read(64).decode("latin-1")
    except OSError as exc:
        return type(exc).__name__
print("LOOK " + json.dumps({path: look(path) for path in PATHS}), flush=True)
"""

TRY = """
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
def result(value):
    return "ok" if value >= 0 else os.strerror(ctypes.get_errno())
calls = {
    "ptrace": lambda: libc.ptrace(0, 0, 0, 0),  # PTRACE_TRACEME
    "mount": lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None),
    "mount namespace": lambda: libc.unshare(0x00020000),
    "user namespace": lambda: libc.unshare(0x10000000),
    "keyring": lambda: libc.syscall(250, 0, -3, 0),  # keyctl(KEYCTL_GET_KEYRING_ID, ...)
}
tried = {name: result(calls[name]()) for name in TRY}
pid = os.fork()  # processes and threads still work
if pid == 0:
    os._exit(7)
tried["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print("TRIED " + json.dumps(tried), flush=True)
"""
EVERYTHING = ["ptrace", "mount", "mount namespace", "user namespace", "keyring"]
# Outside the box the cell runs as root on the host itself: only calls that change
# nothing outside its own process (a mount or a trace there would be real)
HARMLESS = ["user namespace", "keyring"]


def _report(run, tag: str) -> dict:
    assert run.finished, run.log_tail
    return json.loads(run.log_tail.split(f"{tag} ")[-1].splitlines()[0])


OWN = ("/etc/passwd", "/etc/group", "/tmp", "/var/tmp", "/dev/shm", "/proc", "/dev/fd",
       "/dev/stdin", "/dev/stdout", "/dev/stderr")  # what the box makes for itself


def _related(path: str, shown: set[str]) -> bool:
    """Whether ``path`` is shown, inside something shown, or a folder leading to it."""
    return any(path == p or p.startswith(path.rstrip("/") + "/") or path.startswith(p + "/")
               for p in shown)


def _python_or_system(path: str) -> bool:
    """Whether ``path`` is one the box may show: Python's installation and packages,
    coursekit, or a system path it names."""
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)} | {
        sys.prefix, sys.base_prefix, str(ROOT / "coursekit")}
    return path in (*SYSTEM_PATHS, *DEVICES) or any(
        path == r or path.startswith(r + "/") for r in roots)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A world-readable file outside the project, as another course's gradebook would be."""
    folder = tmp_path_factory.mktemp("elsewhere")
    folder.chmod(0o755)
    secret = folder / "other_course_grades.csv"
    secret.write_text("student,grade\nzoe,A\n")
    secret.chmod(0o644)
    return secret


@pytest.mark.parametrize("start", ["warm", "cold"])
def test_a_cell_sees_nothing_of_the_host_outside_the_allow_list(planted, tmp_path, start):
    out = tmp_path / "out"
    out.mkdir()
    (out / "gradebook.csv").write_text("last year's grades\n")
    paths = ["/", "/work", "/home", "/root", "/srv", "/mnt", "/opt", "/var", "/etc",
             "/etc/shadow", "/etc/hostname", "/proc/1/environ", "/proc/1/cmdline",
             str(ROOT), str(ROOT / "solutions"), str(ROOT / ".git"), str(out),
             str(out / "gradebook.csv"), str(planted), str(planted.parent)]
    data = notebook_bytes(f"PATHS = {paths!r}", LOOK)
    run = run_submission(data, EMPTY, timeout=120, cell_timeout=60,
                         preload=zygote.PRELOAD if start == "warm" else None)
    assert (run.isolation["start"], run.isolation["view"]) == (start, "allow-list")
    boxed = _report(run, "LOOK")
    two = notebook_bytes(f"PATHS = {[str(planted), str(out / 'gradebook.csv')]!r}", LOOK)
    open_ = _report(run_submission(two, EMPTY, timeout=120, cell_timeout=60, isolate=False),
                    "LOOK")  # (the host's listings would not fit in the log's tail)
    # without the box the cell reads what is there: the planted file, the out folder...
    assert open_[str(planted)].startswith("student,grade")
    assert open_[str(out / "gradebook.csv")].startswith("last year")
    # ...in the box, only Python, its packages, coursekit and the system paths the box
    # names are shown, and every path the cell tried is missing or leads to one of them
    shown = set(run.isolation["visible"])
    assert shown and all(_python_or_system(p) for p in shown), sorted(shown)
    shown |= set(OWN)
    for path, seen in boxed.items():
        if seen == "FileNotFoundError":
            continue
        assert _related(path, shown), (path, seen)
        for name in seen if isinstance(seen, list) else ():
            assert _related(os.path.join(path, name), shown), (path, name)
    for path in ("/home", "/srv", "/mnt", "/opt", "/etc/shadow", "/etc/hostname",
                 "/proc/1/environ", str(ROOT / "solutions"), str(ROOT / ".git"), str(out),
                 str(planted), str(planted.parent)):
        assert boxed[path] == "FileNotFoundError", (path, boxed[path])


@needs_filter
def test_a_cell_cannot_trace_mount_or_make_namespaces_but_can_fork():
    boxed = _report(run_submission(notebook_bytes(f"TRY = {EVERYTHING!r}", TRY), EMPTY,
                                   timeout=60, cell_timeout=30, preload=zygote.PRELOAD), "TRIED")
    open_ = _report(run_submission(notebook_bytes(f"TRY = {HARMLESS!r}", TRY), EMPTY,
                                   timeout=60, cell_timeout=30, isolate=False), "TRIED")
    assert open_ == {"user namespace": "ok", "keyring": "ok", "fork": 7}  # the calls work...
    assert boxed == {**dict.fromkeys(EVERYTHING, "Operation not permitted"), "fork": 7}


@needs_filter
def test_summary_json_says_which_box_the_submissions_ran_in(tmp_path):
    write(solution(), tmp_path / "subs" / "ann.ipynb")
    write("{not json", tmp_path / "subs" / "bob.ipynb")
    grade(GRADING, tmp_path / "subs", tmp_path / "out", timeout=60, cell_timeout=10,
          progress=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["isolation"] == [{"user": "own uid", "namespaces": True, "network": "off",
                                     "processes": "own", "view": "allow-list",
                                     "syscalls": "filtered", "unenforced": []}]
    record = json.loads((tmp_path / "out" / "results" / "ann.json").read_text())
    assert record["isolation"] == summary["isolation"][0]
