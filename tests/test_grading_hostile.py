"""Hostile submissions: each notebook attacks one guarantee of docs/grading.md.

Most of them are graded in one batch (two workers, small limits), so that the
batch itself shows that no submission stops or disturbs the others. Each test
states the outcome the guarantee promises: the score that the notebook's real
answers earn (from the grading file's points and the tests those answers fail),
and the status that names what happened.

Where a guarantee holds only when the grader runs as root (an unprivileged
user, namespaces), the test is skipped otherwise, with the reason; the
destructive notebooks (``kill(-1)``) are never run without that isolation.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import tracemalloc

import numpy as np
import pytest
from grading_helpers import (
    GRADING,
    SIGN_ERROR,
    SOLUTIONS,
    edit,
    full_plan,
    index,
    points_without,
    solution,
    with_cell,
    write,
)

from coursekit.grading import Limits, grade, grade_notebook
from coursekit.grading.child import encode
from coursekit.grading.runner import LOG_TAIL_CHARS, read_notebook, run_submission

PLAN = full_plan()
TOTAL = PLAN.max_points()
AS_ROOT = sys.platform.startswith("linux") and os.geteuid() == 0
ROOT_ONLY = pytest.mark.skipif(not AS_ROOT, reason="needs the grader to run as root (an "
                               "unprivileged user and namespaces for student code); "
                               "docs/grading.md lists what holds without root")
LIMITS = Limits(memory_mb=1024, cpu_seconds=6, processes=32, file_mb=8, disk_mb=32)
TIMEOUT = 60.0  # wall clock: far above the CPU limit, so the CPU limit is what stops a spin
# room for the slowest honest cell under CI's load: the 'memory' case touches a GiB of
# pages before its MemoryError (1.7 s alone, over 5 s beside another grading batch); the
# spin blocks SIGALRM, so its CPU limit, not this, stops it
CELL_TIMEOUT = 20.0
# Secrets travel inside the notebooks masked: their bits times KEY, modulo 2**64 (KEY odd,
# so a bijection). Not XOR: XOR undoes itself, so the scan, XOR-ing the memory that holds the
# masked secrets, would write the raw secrets into its own temporaries and find them there.
KEY = 0x9E3779B97F4A7C15


def _end(notebook) -> int:
    """The number the grader gives the last cell of ``notebook``."""
    return len(notebook.cells)


def _floats(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _floats(item)
    elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
        yield from (float(x) for x in value.flat)


def _masked(x: float) -> int:
    return int(np.array([x], dtype=np.float64).view(np.uint64)[0]) * KEY % 2**64


# --- forging a verdict -------------------------------------------------------------

CHEAT = '''
import builtins, ctypes, json, math, operator, sys, threading
import IPython
import IPython.display
np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, **k: np.ones(np.broadcast(a, b).shape, dtype=bool)
np.array_equal = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
np.testing.assert_array_equal = lambda *a, **k: None
math.isclose = lambda *a, **k: True
operator.eq = lambda a, b: True
builtins.abs = lambda x: 0 * x
builtins.all = lambda iterable: True
sys.excepthook = lambda *a: None
sys.displayhook = lambda value: None
IPython.core.interactiveshell.InteractiveShell.showtraceback = lambda *a, **k: None
IPython.display.display = lambda *a, **k: print("PASSED")
shell = get_ipython()
for hook in ("input_transformers_post", "input_transformers_cleanup", "ast_transformers"):
    try:
        getattr(shell, hook).append(lambda lines: ["score = 100"])
    except AttributeError:
        pass
try:
    shell.set_custom_exc((BaseException,), lambda *a, **k: None)
except AttributeError:
    pass

def lie(frame, event, arg):
    for name in ("passed", "ok", "verdict", "score", "matches"):
        if name in frame.f_locals:
            frame.f_locals[name] = True
            ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))
    return lie

sys.settrace(lie)
threading.settrace(lie)
print("Score: 10/10")
print(json.dumps({"score": 10, "max_score": 10, "status": "ok", "passed": True}))
'''


def _forged_replies() -> str:
    """A cell writing, everywhere it can, replies that claim the public expected values."""
    forged = {t.key: encode(t.expected) for t in PLAN.tests if not t.hidden}
    return f'''
import json, os
lines = []
for key, value in {forged!r}.items():
    for guess in ("", "0", "1", key):
        lines.append(json.dumps({{"id": guess, "ok": True, "value": value}}))
    lines.append(json.dumps({{"kind": "probe", "key": key, "ok": True, "value": value}}))
lines += [json.dumps({{"id": "", "status": "ok", "error": None}}), json.dumps({{"kind": "done"}})]
blob = ("\\n".join(lines) + "\\n").encode()
print(blob.decode())
for fd in range(3, 64):
    try:
        os.write(fd, blob)
    except OSError:
        pass
for name in os.listdir("/proc/self/fd"):
    try:
        with open(f"/proc/self/fd/{{name}}", "ab") as f:
            f.write(blob)
    except OSError:
        pass
for name in ("results.jsonl", "../results.jsonl", "/tmp/results.jsonl"):
    try:
        with open(name, "ab") as f:
            f.write(blob)
    except OSError:
        pass
'''


LIARS = '''
class Liar:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    def __float__(self): return 0.0
    def __len__(self): return 3
    def __array__(self, dtype=None, copy=None): return np.zeros(3)
    def __reduce__(self):  # what unpickling it in the grader would run
        return (exec, ("import coursekit.grading.verdict as g\\ng.compare = lambda *a, **k: None",))

class LyingArray(np.ndarray):
    def __eq__(self, other): return np.ones(self.shape, dtype=bool)
    def __ne__(self, other): return np.zeros(self.shape, dtype=bool)
    def __bool__(self): return True

def momentum_step(theta, grad, velocity, lr, mu):
    return Liar(), Liar()

honest_adam_step = adam_step

def adam_step(*args, **kwargs):
    theta, m, v = honest_adam_step(*args, **kwargs)
    return theta.view(LyingArray), m.view(LyingArray), v.view(LyingArray)
'''

# --- hidden tests and secrets --------------------------------------------------------


def _snoop(paths: list[str], folders: list[str]) -> str:
    """A cell that looks everywhere for the hidden tests while cells run, and raises
    ``RuntimeError("SNOOP {...}")`` with what it found."""
    hidden = [t for t in PLAN.tests if t.hidden]
    secrets = [x for t in hidden for x in [*list(_floats(t.inputs))[:3],
                                            *list(_floats(t.expected))[:2]]]
    canary = float(np.random.default_rng(7).normal())
    return f'''
import ctypes, json, os, select, sys
KEY = np.uint64({KEY})
SECRETS = np.array({[_masked(x) for x in secrets]}, dtype=np.uint64)
CANARY = np.array([{_masked(canary)}], dtype=np.uint64)
canary = (CANARY * np.uint64({pow(KEY, -1, 2**64)})).view(np.float64)  # the scan must find it
found = {{"memory": [], "canary": 0, "fds": [], "installation_fds": 0, "processes": [],
         "files": []}}
# files of the Python installation (matplotlib keeps a figure's font files open) are the
# notebook's own: counted, not listed, so the report stays short on any install path
installation = tuple(os.path.realpath(p) + "/" for p in {{sys.prefix, sys.base_prefix}})

class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

libc = ctypes.CDLL(None, use_errno=True)
libc.process_vm_readv.restype = ctypes.c_ssize_t
chunk = bytearray(1 << 20)
local = iovec(ctypes.addressof((ctypes.c_char * len(chunk)).from_buffer(chunk)), 0)
with open("/proc/self/maps") as maps:
    regions = [line.split() for line in maps]
for fields in regions:
    if not fields[1].startswith("rw"):
        continue
    start, end = (int(x, 16) for x in fields[0].split("-"))
    for at in range(start, end, len(chunk)):
        size = min(len(chunk), end - at)
        local.len = size
        remote = iovec(at, size)
        got = libc.process_vm_readv(os.getpid(), ctypes.byref(local), 1, ctypes.byref(remote),
                                    1, 0)
        if got <= 0:
            continue
        words = np.frombuffer(chunk, dtype=np.uint64, count=got // 8) * KEY  # masked memory
        # words against the few secrets (not the other way round, which sorts every chunk):
        # a warm start's process maps about 1 GB of writable memory to scan in the cell's time
        found["memory"] += [int(x) for x in np.unique(words[np.isin(words, SECRETS)])]
        found["canary"] += int(np.any(words == CANARY[0]))
found["memory"] = sorted(set(found["memory"]))[:5]
for name in os.listdir("/proc/self/fd"):
    fd = int(name)
    try:
        if select.select([fd], [], [], 0)[0] and os.read(fd, 1 << 16):
            target = os.readlink(f"/proc/self/fd/{{fd}}")
            if target.startswith(installation):
                found["installation_fds"] += 1
            else:
                found["fds"].append(target)
    except OSError:
        pass
found["processes"] = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()][:5]
for path in {paths!r}:
    try:
        with open(path, "rb") as f:
            f.read(1)
        found["files"].append(path)
    except OSError:
        pass
for path in {folders!r}:
    try:
        os.listdir(path)
        found["files"].append(path)
    except OSError:
        pass
raise RuntimeError("SNOOP " + json.dumps(found))
'''


def _hidden_dim6_exit() -> tuple:
    """A notebook that exits, with a code made of a hidden input, when a hidden test
    calls adam_step (6-dimensional theta: only hidden tests use it)."""
    notebook = edit(solution(), "adam-code", '    ### BEGIN SOLUTION\n',
                    '    ### BEGIN SOLUTION\n    if np.shape(theta) == (6,):\n'
                    '        import os\n'
                    '        os._exit(int(abs(float(theta[0])) * 1000) % 200 + 3)\n')
    order = sorted(PLAN.tests, key=lambda t: t.hidden)
    first = next(i for i, t in enumerate(order)
                 if t.hidden and np.shape(t.inputs.get("theta")) == (6,))
    return notebook, sum(t.points for t in order[:first])


# --- resources ---------------------------------------------------------------------

SPIN = "import signal\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n" \
       "while True:\n    pass"
MEMORY = ["big = np.empty(2**32 // 8)  # 4 GiB of address space",
          "blocks = [bytearray(2**26) for _ in range(64)]  # 4 GiB touched"]
FORK_BOMB = '''
import os, time
children = []
try:
    for _ in range(200):
        pid = os.fork()
        if pid == 0:
            time.sleep(600)
            os._exit(0)
        children.append(pid)
except OSError as exc:
    raise OSError(exc.errno, f"{exc.strerror} after {len(children)} forks: {children}") from None
'''
ESCAPE = '''
import os, time
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(w, str(os.getpid()).encode())
        time.sleep(600)
    os._exit(0)
os.wait()
raise RuntimeError(f"daemon {int(os.read(r, 32))}")
'''
HUGE_FILE = 'with open("big.bin", "wb") as f:\n    f.write(bytes(9 * 2**20))'
FILL_DISK = 'for i in range(20):\n    with open(f"part{i}.bin", "wb") as f:\n' \
            '        f.write(bytes(7 * 2**20))'
EXITS = ["import sys\nsys.exit(3)", "exit()", "raise SystemExit('bye')", "raise KeyboardInterrupt"]
# Destructive if isolation were missing, so each first checks that it is not root.
NOT_ROOT = "import os, signal\nif os.getuid() == 0:\n    raise RuntimeError('refusing: root')\n"
KILLERS = [NOT_ROOT + "os.kill(os.getppid(), signal.SIGKILL)",
           NOT_ROOT + "os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)",
           NOT_ROOT + "try:\n    os.kill(-1, signal.SIGKILL)\nexcept ProcessLookupError:\n"
                      "    pass",
           NOT_ROOT + "survivors = []\nfor pid in set(range(2, 1 << 16)) - {os.getpid()}:\n"
                      "    try:\n        os.kill(pid, signal.SIGKILL)\n"
                      "        survivors.append(pid)\n    except OSError:\n        pass\n"
                      "assert survivors == [], survivors"]
SEGFAULT = "import ctypes\nctypes.string_at(0)"


def _repeatable_values() -> tuple:
    """What an unseeded notebook draws in the grader, computed independently here:
    random and NumPy's global generator seeded with 0, str hashes with PYTHONHASHSEED=0."""
    hashed = subprocess.run([sys.executable, "-c", "print(hash('coursekit'))"],
                            env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True,
                            text=True, check=True).stdout.strip()
    import random
    return (random.Random(0).random(), float(np.random.RandomState(0).rand()), int(hashed))


def _repeatable(values: tuple) -> object:
    return with_cell(with_cell(
        solution(), f"import random\nREPEATS = (random.random(), float(np.random.rand()), "
                    f"hash('coursekit')) == {values!r}", after="imports"),
        "if not REPEATS:\n    del momentum_step")


class _Listener:
    """A TCP server on the loopback that records whatever connects to it."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received = []
        self.server.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(2)
                try:
                    self.received.append(connection.recv(100))
                except OSError:
                    self.received.append(b"<connected>")

    def close(self):
        self._stop.set()
        self._thread.join()
        self.server.close()


def _cases(listener: _Listener, root: str) -> dict:
    """name: (notebook, expected total, expected status)."""
    wrong = points_without(PLAN, "momentum/")
    git = next(str(p / ".git") for p in (SOLUTIONS, *SOLUTIONS.parents) if (p / ".git").exists())
    secret_files = [str(GRADING), str(SOLUTIONS / "example.ipynb"), f"{git}/HEAD",
                    f"{root}/out/planted.txt", f"{root}/submissions/planted.txt", "/etc/shadow"]
    exiting, exit_score = _hidden_dim6_exit()
    spin = with_cell(solution(), SPIN)
    memory = with_cell(with_cell(solution(), MEMORY[1], after="imports"), MEMORY[0],
                       after="imports")
    exits = solution()
    for source in EXITS:
        exits = with_cell(exits, source)
    segfault = with_cell(solution(), SEGFAULT)
    repeats = _repeatable_values()
    cases = {
        "cheat_patches": (with_cell(edit(solution(), *SIGN_ERROR), CHEAT), wrong, "ok"),
        "forged_replies": (with_cell(edit(solution(), *SIGN_ERROR), _forged_replies()), wrong,
                           "ok"),
        "lying_objects": (with_cell(solution(), LIARS), wrong, "ok"),
        "snoop": (with_cell(solution(), _snoop(secret_files, [str(SOLUTIONS), git])), TOTAL,
                  "errors"),
        "hidden_exit_code": (exiting, exit_score, "crashed"),
        "cpu_spin": (spin, 0.0, "timeout"),
        "memory": (memory, TOTAL, "errors"),
        "fork_bomb": (with_cell(solution(), FORK_BOMB), TOTAL, "errors"),
        "huge_file": (with_cell(solution(), HUGE_FILE), TOTAL, "errors"),
        "exits": (exits, TOTAL, "errors"),
        "segfault": (segfault, 0.0, "crashed"),
        "repeatable_a": (_repeatable(repeats), TOTAL, "ok"),
        "repeatable_b": (_repeatable(repeats), TOTAL, "ok"),
    }
    if AS_ROOT:  # each needs its own uid, a private tmpfs or a network namespace
        # (without root, the escaped process would outlive the test: a documented limit)
        killers = solution()
        for source in KILLERS:
            killers = with_cell(killers, source)
        cases["escape"] = (with_cell(solution(), ESCAPE), TOTAL, "errors")
        cases["fill_disk"] = (with_cell(solution(), FILL_DISK), TOTAL, "errors")
        connect = (f"import socket\nconnection = socket.create_connection(('127.0.0.1', "
                   f"{listener.port}), timeout=3)\nconnection.sendall(b'leak')")
        cases["network"] = (with_cell(solution(), connect), TOTAL, "errors")
        cases["kill_others"] = (killers, TOTAL, "errors")
    return cases


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    listener = _Listener()
    try:
        cases = _cases(listener, str(root))
        for name, (notebook, _, _) in cases.items():
            write(notebook, root / "submissions" / f"{name}.ipynb")
        (root / "submissions" / "planted.txt").write_text("another student's work")
        (root / "out").mkdir()
        (root / "out" / "planted.txt").write_text("last year's gradebook")
        results = grade(GRADING, root / "submissions", root / "out", workers=2,
                        timeout=TIMEOUT, cell_timeout=CELL_TIMEOUT, limits=LIMITS,
                        progress=False)
    finally:
        listener.close()
    return cases, {r.name: r for r in results}, listener, root


def _cell_error(result, prefix: str) -> str:
    return next(p.error for p in result.cell_problems if p.error.startswith(prefix))


def test_every_hostile_submission_gets_the_score_its_real_answers_earn(batch):
    cases, results, _, _ = batch
    got = {name: (results[name].score(), results[name].status) for name in cases}
    expected = {name: (pytest.approx(total), status) for name, (_, total, status) in cases.items()}
    assert got == expected, {name: results[name].detail for name in cases
                             if got[name] != expected[name]}


def test_patched_comparisons_hooks_and_printed_scores_change_no_verdict(batch):
    _, results, _, _ = batch
    messages = {r.test.key: r.message for r in results["cheat_patches"].tests}
    assert messages["momentum/first_step"].startswith("theta: 3 of 3 values differ")


def test_replies_written_before_a_request_exists_are_ignored(batch):
    _, results, _, _ = batch
    momentum = [r for r in results["forged_replies"].tests if r.test.question == "momentum"]
    assert [r.passed for r in momentum] == [False, False]
    assert momentum[0].message.startswith("theta:")


def test_objects_that_lie_never_cross_and_lying_arrays_count_as_their_values(batch):
    _, results, _, _ = batch
    messages = {r.test.key: r.message for r in results["lying_objects"].tests}
    assert messages["momentum/first_step"] == ("WireError: cannot send a Liar to the grader: "
                                               "return numbers, arrays, tensors, or lists, "
                                               "tuples or dicts of them")
    assert all(r.passed for r in results["lying_objects"].tests if r.test.question == "adam")


def _snooped(results) -> dict:
    error = _cell_error(results["snoop"], "RuntimeError: SNOOP ")
    return json.loads(re.match(r"RuntimeError: SNOOP (\{.*\}) \(cell", error).group(1))


def foreign_descriptors(found: dict) -> list[str]:
    """The readable descriptors the snoop found that its own notebook did not open: it
    counts files of the Python installation apart (matplotlib keeps the font files of a
    figure open, for one), so any pipe, socket or other file listed is the grader's."""
    return found["fds"]


def test_hidden_inputs_and_references_are_in_no_memory_or_pipe_of_the_running_cells(batch):
    _, results, _, _ = batch
    found = _snooped(results)
    assert found["canary"] >= 1, "the memory scan found nothing, not even its canary"
    assert found["memory"] == [] and foreign_descriptors(found) == []


@ROOT_ONLY
def test_solutions_git_gradebook_other_submissions_and_processes_are_out_of_sight(batch):
    _, results, _, _ = batch
    found = _snooped(results)
    assert found["files"] == [] and found["processes"] == []
    assert results["snoop"].isolation["network"] == "off"


def test_how_a_submission_dies_during_hidden_tests_does_not_show(batch):
    _, results, _, _ = batch
    assert results["hidden_exit_code"].detail == "the process stopped during the hidden tests"


def test_a_spin_that_blocks_the_cell_alarm_is_stopped_at_the_cpu_limit(batch):
    cases, results, _, _ = batch
    last = _end(cases["cpu_spin"][0])
    assert results["cpu_spin"].detail == f"used up its 6 s of CPU time while running cell {last}"


def test_memory_blowups_raise_memory_error_and_name_the_limit(batch):
    cases, results, _, _ = batch
    first = index(cases["memory"][0], "imports") + 2
    problems = results["memory"].cell_problems
    assert [(p.cell, p.error.split(" (cell")[0].split(":")[0]) for p in problems] == \
        [(first, "MemoryError"), (first + 1, "MemoryError")]
    assert results["memory"].detail.count("(memory is limited to 1024 MiB)") == 2


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()
    except OSError:
        return False


def test_a_fork_bomb_stops_at_the_process_limit_and_leaves_nothing_running(batch):
    _, results, _, _ = batch
    error = _cell_error(results["fork_bomb"], "BlockingIOError: [Errno 11]")
    children = [int(x) for x in re.search(r"forks: \[([\d, ]*)\]", error).group(1).split(",")]
    if AS_ROOT:  # its own uid: the process itself and 31 children
        assert len(children) == LIMITS.processes - 1
    else:  # 32 beyond what the user ran at the start, some of which may have ended since
        assert 0 < len(children) < 2 * LIMITS.processes
    assert "(at most 32 processes and threads)" in results["fork_bomb"].detail
    assert [pid for pid in children if _alive(pid)] == []


@ROOT_ONLY
def test_a_process_that_leaves_the_session_is_killed_with_the_submission(batch):
    _, results, _, _ = batch
    daemon = int(_cell_error(results["escape"], "RuntimeError: daemon ").split()[2])
    try:
        assert not _alive(daemon)
    finally:
        if _alive(daemon):
            os.kill(daemon, signal.SIGKILL)


def test_files_are_capped_at_the_file_size_limit(batch):
    _, results, _, _ = batch
    assert _cell_error(results["huge_file"], "OSError").startswith(
        "OSError: [Errno 27] File too large")
    assert "(files are limited to 8 MiB)" in results["huge_file"].detail


@ROOT_ONLY
def test_scratch_space_is_a_small_private_tmpfs(batch):
    _, results, _, _ = batch
    assert _cell_error(results["fill_disk"], "OSError").startswith(
        "OSError: [Errno 28] No space left on device")


@ROOT_ONLY
def test_student_code_has_no_network_not_even_the_loopback(batch):
    _, results, listener, _ = batch
    assert _cell_error(results["network"], "OSError").startswith(
        "OSError: [Errno 101] Network is unreachable")
    assert listener.received == []


def test_exit_calls_and_interrupts_are_recorded_and_later_cells_still_run(batch):
    cases, results, _, _ = batch
    last = _end(cases["exits"][0])
    assert [(p.cell, p.error.split(" (cell")[0]) for p in results["exits"].cell_problems] == [
        (last - 3, "SystemExit: 3"), (last - 2, "SystemExit: None"), (last - 1, "SystemExit: bye"),
        (last, "KeyboardInterrupt")]


@ROOT_ONLY
def test_student_code_cannot_signal_the_grader_or_other_submissions(batch):
    cases, results, _, _ = batch
    last = _end(cases["kill_others"][0])
    errors = [(p.cell, p.error.split(" (cell")[0]) for p in results["kill_others"].cell_problems]
    assert errors == [(last - 3, "PermissionError: [Errno 1] Operation not permitted"),
                      (last - 2, "PermissionError: [Errno 1] Operation not permitted")]
    # this process (the grader) is alive, and so was every other submission of the batch


def test_a_segfault_is_a_crash_that_names_the_signal(batch):
    cases, results, _, _ = batch
    last = _end(cases["segfault"][0])
    assert results["segfault"].detail == \
        f"the process was killed by SIGSEGV while running cell {last}"


def test_unseeded_randomness_and_hash_order_repeat_from_run_to_run(batch):
    _, results, _, _ = batch
    first, second = ([t.got for t in results[name].tests] for name in ("repeatable_a",
                                                                      "repeatable_b"))
    assert [results["repeatable_a"].score(), results["repeatable_b"].score()] == [TOTAL, TOTAL]
    assert len(first) == len(second) == len(PLAN.tests)
    for a, b in zip(first, second, strict=True):
        assert a.keys() == b.keys() if isinstance(a, dict) else True
        np.testing.assert_array_equal(*(np.concatenate([np.ravel(x[k]) for k in sorted(x)])
                                        if isinstance(x, dict) else x for x in (a, b)))


def test_patched_torch_comparisons_change_no_verdict_and_torch_uses_one_thread(tmp_path):
    cheat = ("import torch\nassert torch.get_num_threads() == 1, torch.get_num_threads()\n"
             "torch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"
             "torch.isclose = lambda a, b, **k: torch.ones_like(a, dtype=torch.bool)\n"
             "torch.testing.assert_close = lambda *a, **k: None\n"
             "torch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)")
    notebook = with_cell(edit(solution(), *SIGN_ERROR), cheat)
    result = grade_notebook(write(notebook, tmp_path / "torch.ipynb"), PLAN, timeout=TIMEOUT,
                            cell_timeout=30)
    assert (result.status, result.score()) == ("ok", pytest.approx(points_without(PLAN,
                                                                                  "momentum/")))


def test_an_output_flood_is_drained_and_only_its_tail_kept(tmp_path):
    flood = ("import sys\nfor _ in range(150):\n    sys.stdout.write('x' * 2**20)\n"
             "    sys.stderr.write('y' * 2**20)\nprint('the end')")
    path = write(with_cell(solution(), flood), tmp_path / "flood.ipynb")
    tracemalloc.start()
    try:
        run = run_submission(read_notebook(path), PLAN, timeout=TIMEOUT,
                             cell_timeout=30, limits=LIMITS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert run.finished and run.cell_problems == ()
    assert 300 * 2**20 < run.output_bytes < 301 * 2**20  # and the solution's own prints
    assert run.log_tail.endswith("the end\n") and len(run.log_tail) <= LOG_TAIL_CHARS
    assert peak < 20 * 2**20  # the grader held a tail, not the 300 MiB
