"""Warm starts: each submission forked from a zygote is a fresh process, set up as a cold one.

What is checked here: nothing a submission changes reaches the next one forked from
the same zygote; the fork holds no descriptor but its own; warm and cold grading write
the same files; the memory limit gives the same room either way; a dead zygote is
replaced; and a grader that dies takes its zygote and the zygote's processes with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from grading_helpers import (
    GRADING,
    NO_BIAS_CORRECTION,
    edit,
    notebook_bytes,
    solution,
    with_cell,
    write,
)

from coursekit.grading import Limits, Plan, grade, zygote
from coursekit.grading.runner import CHILD_SCRIPT, _child_env, run_submission

pytestmark = pytest.mark.skipif(not zygote.available(), reason="warm starts need Linux")

EMPTY = Plan("zygote", (), ())
SMALL = ("numpy", "json")  # a zygote that starts in a fraction of a second

# Everything a submission can leave behind in its own process, then a report of what
# the process sees of it. The first submission runs LEAVE then LOOK (so LOOK is shown to
# see what LEAVE did); the second, forked from the same zygote, runs only LOOK.
LEAVE = """
import builtins, os, random, signal, sys, threading, time, types
import numpy as np
np.LEFT_BEHIND = 1
json.LEFT_BEHIND = 1
builtins.LEFT_BEHIND = 1
sys.modules["left_behind"] = types.ModuleType("left_behind")
sys.path.append("/left/behind")
os.environ["LEFT_BEHIND"] = "1"
with open("/tmp/left_behind", "w") as f:
    f.write("1")
with open("left_behind", "w") as f:
    f.write("1")
np.random.seed(123)
random.seed(123)
signal.signal(signal.SIGUSR1, signal.SIG_IGN)
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
"""
LOOK = """
import builtins, json, os, random, signal, sys, threading
import numpy as np
print("LOOK " + json.dumps({
    "numpy": hasattr(np, "LEFT_BEHIND"), "json": hasattr(json, "LEFT_BEHIND"),
    "builtins": hasattr(builtins, "LEFT_BEHIND"), "module": "left_behind" in sys.modules,
    "path": "/left/behind" in sys.path, "environment": "LEFT_BEHIND" in os.environ,
    "tmp": os.path.exists("/tmp/left_behind"), "cwd": os.path.exists("left_behind"),
    "signal": signal.getsignal(signal.SIGUSR1) is signal.SIG_IGN,
    "threads": threading.active_count(),
    "numpy_random": float(np.random.random()), "random": random.random(),
    "fds": fds(),
}), flush=True)
"""
FDS = """
import os
def fds():
    kinds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            kinds.append(os.readlink(f"/proc/self/fd/{fd}").split(":")[0])
        except OSError:  # the descriptor listdir itself used
            pass
    return sorted(kinds)
"""


def _look(run) -> dict:
    assert run.finished, run.log_tail
    return json.loads(run.log_tail.split("LOOK ")[-1].splitlines()[0])


def _run(data: bytes, **options):
    return run_submission(data, EMPTY, timeout=60, cell_timeout=30, preload=SMALL, **options)


def test_nothing_a_submission_leaves_behind_reaches_the_next_from_the_same_zygote():
    first = _run(notebook_bytes(FDS, "import json", LEAVE, LOOK))
    second = _run(notebook_bytes(FDS, "import json", LOOK))
    fresh = run_submission(notebook_bytes(FDS, "import json", LOOK), EMPTY, timeout=60,
                           cell_timeout=30)  # cold: what a fresh process sees
    assert (first.isolation["start"], second.isolation["start"], fresh.isolation["start"]) \
        == ("warm", "warm", "cold")
    left, after, cold = _look(first), _look(second), _look(fresh)
    changed = ["numpy", "json", "builtins", "module", "path", "environment", "tmp", "cwd",
               "signal"]
    assert all(left[key] for key in changed), left  # LOOK sees what LEAVE did...
    assert left["threads"] == 2
    assert not any(after[key] for key in changed), after  # ...and none of it is in the next
    assert after["threads"] == 1
    # the generators start as in a cold process (the child seeds them with 0), not where
    # the first submission's np.random.seed(123) and random.seed(123) put them
    assert (after["numpy_random"], after["random"]) == (cold["numpy_random"], cold["random"])
    assert (left["numpy_random"], left["random"]) != (cold["numpy_random"], cold["random"])


def test_a_forked_process_holds_only_its_own_descriptors():
    looked = _look(_run(notebook_bytes(FDS, "import json", LOOK)))
    # stdin (/dev/null), stdout and stderr (one pipe), the request and reply pipes: no
    # socket (the zygote's), no file of the grader's, the notebook's descriptor closed
    assert sorted(looked["fds"]) == sorted(["/dev/null", "pipe", "pipe", "pipe", "pipe"]), \
        looked["fds"]


def test_warm_and_cold_grading_write_the_same_files(tmp_path):
    submissions = tmp_path / "subs"
    write(solution(), submissions / "ann.ipynb")
    write(edit(solution(), *NO_BIAS_CORRECTION), submissions / "ben.ipynb")
    write(with_cell(solution(), "1 / 0"), submissions / "dee.ipynb")
    write("{not json", submissions / "fay.ipynb")
    files = {}
    for start, preload in (("warm", zygote.PRELOAD), ("cold", None)):
        results = grade(GRADING, submissions, tmp_path / start, workers=2, timeout=60,
                        cell_timeout=10, progress=False, preload=preload)
        ran = [r for r in results if r.isolation]
        assert ran and {r.isolation["start"] for r in ran} == {start}
        folder = tmp_path / start
        files[start] = {p.relative_to(folder).as_posix(): p.read_bytes()
                        for p in sorted(folder.rglob("*")) if p.is_file()
                        and not p.name.startswith("grades.sqlite")}  # times of grading
    assert files["warm"] == files["cold"]


@pytest.mark.parametrize(("mib", "fits"), [(300, True), (700, False)])
def test_the_memory_limit_gives_a_warm_start_the_same_room_as_a_cold_one(mib, fits):
    grab = f"block = bytearray({mib} * 2**20)\nprint('GOT', flush=True)"
    limits = Limits(memory_mb=512)
    runs = {start: run_submission(notebook_bytes(grab), EMPTY, timeout=60, cell_timeout=30,
                                  limits=limits, preload=preload)
            for start, preload in (("warm", zygote.PRELOAD), ("cold", None))}
    for start, run in runs.items():
        assert run.isolation["start"] == start
        assert ("GOT" in run.log_tail) is fits, (start, run.log_tail)
        assert bool(run.cell_problems) is not fits
        if not fits:
            assert run.cell_problems[0].error.startswith("MemoryError")


def test_a_zygote_that_died_is_replaced():
    warm = zygote.shared(SMALL, [sys.executable, str(CHILD_SCRIPT)], _child_env())
    assert warm is not None and warm.alive
    warm._process.kill()
    warm._process.wait()
    run = _run(notebook_bytes("print('after', flush=True)"))
    assert run.finished and "after" in run.log_tail
    assert run.isolation["start"] == "warm"
    replacement = zygote.shared(SMALL, [sys.executable, str(CHILD_SCRIPT)], _child_env())
    assert replacement is not warm and replacement.alive


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            return any(line.split()[1] == "Z" for line in f if line.startswith("State:"))
    except FileNotFoundError:
        return True


def test_a_grader_that_dies_takes_its_zygote_its_processes_and_its_folder_with_it(tmp_path):
    # a grading process forks a child that waits for its setup forever, then dies
    # without closing anything (as a killed grader would)
    script = tmp_path / "grader.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys
        from coursekit.grading import zygote
        from coursekit.grading.runner import CHILD_SCRIPT, _child_env
        warm = zygote.shared({SMALL!r}, [sys.executable, str(CHILD_SCRIPT)], _child_env())
        requests_r, requests_w = os.pipe()
        replies_r, replies_w = os.pipe()
        output_r, output_w = os.pipe()
        notebook = os.open(os.devnull, os.O_RDONLY)
        pid, _ = warm.spawn(requests_r, replies_w, output_w, notebook, os.getcwd())
        print(warm._process.pid, pid, warm._folder.name, flush=True)
        os._exit(1)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, check=False)
    zygote_pid, child_pid, folder = out.stdout.split()
    zygote_pid, child_pid = int(zygote_pid), int(child_pid)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (_gone(zygote_pid) and _gone(child_pid)
                                               and not os.path.exists(folder)):
        time.sleep(0.1)
    assert _gone(zygote_pid) and _gone(child_pid)
    assert not os.path.exists(folder)  # removed by the zygote: the dead grader could not


def test_grade_refuses_a_preload_that_is_not_module_names(tmp_path):
    with pytest.raises(ValueError, match="preload must be a sequence of module names"):
        grade(GRADING, tmp_path, tmp_path / "out", preload="numpy")


def test_the_zygote_reports_what_it_could_not_import():
    warm = zygote.Zygote(("numpy", "no_such_module_here"), [sys.executable, str(CHILD_SCRIPT)],
                         _child_env())
    try:
        assert warm.preloaded == ("numpy",)
        assert list(warm.failed) == ["no_such_module_here"]
        assert "ModuleNotFoundError" in warm.failed["no_such_module_here"]
    finally:
        warm.close()
    assert not warm.alive
