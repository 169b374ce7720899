"""Faults at class scale (issue 18, part 3): a batch whose grader is killed again and
again, whose Dask worker dies mid-batch, or whose output disk fills up ends with the
gradebook of an uninterrupted run, every submission in it exactly once.

The class is ``COURSEKIT_CLASS_SIZE`` submissions (24 by default, to keep CI short; the
issue's 300 with ``COURSEKIT_CLASS_SIZE=300``): copies of the example's solution and of
typical mistakes (``grading_helpers.write_class``, named ``s000``, ``s001``, ... and
drawn from a seeded generator). The reference is an uninterrupted run of the same class
on two workers, itself checked against the score each kind of submission must get.
Mechanism tests that need no class (a worker death with no retry left, a read-only
folder) grade its first few submissions, against the same reference's rows.

The out folder's disk is a small tmpfs mounted, as root, on a fresh empty folder made
under the test's ``tmp_path`` (never over an existing path) and unmounted in a
``finally``; those tests are skipped with the reason when not root.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from grading_helpers import GRADING, full_plan, points_without, write_class

from coursekit.cli import main
from coursekit.grading import grade, zygote
from coursekit.grading.runner import warm

REPO = Path(__file__).resolve().parent.parent
SIZE = int(os.environ.get("COURSEKIT_CLASS_SIZE", "24"))
FEW = min(SIZE, 6)  # submissions for the tests of one mechanism
TIMEOUT, CELL_TIMEOUT = "60", "30"
GONE_WITHIN_S = 10.0  # how long a killed grader's processes may take to end
LINUX = sys.platform.startswith("linux")

PLAN = full_plan()
EXPECTED = {  # kind: (status, total), as tests/test_grading_grade.py establishes them
    "solution": ("ok", PLAN.max_points()),
    "wrong_sign": ("ok", points_without(PLAN, "momentum/")),
    "no_bias_correction": ("ok", points_without(PLAN, "adam/first_step", "adam/later_step",
                                                "adam/several_steps", "trajectory/")),
    "off_by_one": ("ok", points_without(PLAN, "trajectory/")),
    "not_attempted": ("errors", 0.0),
}


class Reference:
    """An uninterrupted run of the class: its kinds, gradebook and summary."""

    def __init__(self, root: Path):
        self.kinds = write_class(root / "subs", SIZE)
        out = root / "out"
        grade(GRADING, root / "subs", out, workers=2, timeout=float(TIMEOUT),
              cell_timeout=float(CELL_TIMEOUT), progress=False)
        self.gradebook = (out / "gradebook.csv").read_text(encoding="utf-8")
        self.summary = (out / "summary.json").read_text(encoding="utf-8")

    def rows(self, names: list[str]) -> str:
        """The reference gradebook of only ``names`` (rows do not depend on each other)."""
        lines = self.gradebook.splitlines(keepends=True)
        return "".join(lines[:2] + [line for line in lines[2:]
                                    if line.split(",", 1)[0] in names])


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Reference:
    ref = Reference(tmp_path_factory.mktemp("reference"))
    rows = list(csv.DictReader(io.StringIO(ref.gradebook)))[1:]
    assert [row["submission"] for row in rows] == sorted(ref.kinds)
    assert {row["submission"]: (row["status"], float(row["total"])) for row in rows} == \
        {name: EXPECTED[kind] for name, kind in ref.kinds.items()}
    return ref


def _command(submissions: Path, out: Path) -> list[str]:
    return ["grade", str(GRADING), str(submissions), "--out", str(out), "--workers", "2",
            "--timeout", TIMEOUT, "--cell-timeout", CELL_TIMEOUT, "--no-progress"]


def _records(out: Path) -> dict[str, tuple[int, int, bytes]]:
    """Each record's inode, modification time and bytes, by submission name."""
    return {p.stem: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted((out / "results").glob("*.json"))}


def _assert_whole(records: dict[str, tuple[int, int, bytes]]) -> None:
    """Every record is a whole JSON record of its own submission (never half written)."""
    for name, (_, _, data) in records.items():
        assert json.loads(data)["submission"] == name


def _graded_line(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("graded")) \
        .split(" in ")[0]


# Processes: what a killed process leaves behind ------------------------------------------

def _stat(pid: int) -> tuple[int, str, int] | None:
    """``(parent pid, state, start time)`` of ``pid``, or None if there is no such process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[0], int(fields[19])


def _tree(root: int) -> dict[int, tuple[int, str]]:
    """``root`` and every process below it: pid -> (start time, command line)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            children.setdefault(stat[0], []).append(int(entry))
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        stat = _stat(pid)
        if stat is None:
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            command = ""
        found[pid] = (stat[2], command)
        todo += children.get(pid, [])
    return found


def _survivors(processes: dict[int, tuple[int, str]]) -> list[str]:
    """Those of ``processes`` still running after :data:`GONE_WITHIN_S` seconds (a zombie
    has ended; a pid now used by a process started later is not the same process)."""
    deadline = time.monotonic() + GONE_WITHIN_S
    while True:
        alive = [f"{pid}: {command}" for pid, (start, command) in processes.items()
                 if (stat := _stat(pid)) is not None and stat[1] != "Z" and stat[2] == start]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _zygote_folders(processes: dict[int, tuple[int, str]]) -> list[Path]:
    """The temporary folders the zygotes among ``processes`` run in: their grader removes
    one when it closes its zygote, which a killed grader cannot (a few dozen KB each)."""
    folders = []
    for pid, (_, command) in processes.items():
        if "child.py --zygote" in command:
            with contextlib.suppress(OSError):
                folders.append(Path(os.readlink(f"/proc/{pid}/cwd")))
    return folders


def _remove(folders: list[Path]) -> None:
    for folder in folders:
        if folder.name.startswith("coursekit-zygote-"):
            shutil.rmtree(folder, ignore_errors=True)


# (a) The grader killed three times ---------------------------------------------------------

def _forged(data: bytes, fingerprint: str | None = None) -> str:
    """A record with every test's verdict reversed (and, if given, another fingerprint):
    read as a grade, it would change its submission's gradebook row."""
    saved = json.loads(data)
    for test in saved["tests"].values():
        test["passed"] = not test["passed"]
    if fingerprint is not None:
        saved["fingerprint"] = fingerprint
    return json.dumps(saved)


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="finds the killed grader's processes in /proc (Linux)")
def test_a_grader_killed_three_times_at_random_points_ends_with_the_reference_gradebook(
        reference, tmp_path):
    write_class(tmp_path / "subs", SIZE)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "coursekit.cli", *_command(tmp_path / "subs", out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(20180303)
    kept: dict[str, tuple[int, int, bytes]] = {}
    for kill in range(3):
        # a random point: after 1 to SIZE/6 more records, then up to 0.3 s more (a longer
        # pause could let the third run grade the rest of a small class and end before the
        # kill: its zygote gone, nothing left to interrupt)
        wait_for = len(kept) + rng.randint(1, max(1, SIZE // 6))
        pause = rng.uniform(0.0, 0.3)
        with open(tmp_path / f"run{kill}.log", "wb") as log:
            run = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 300
        while len(list((out / "results").glob("*.json"))) < wait_for:
            assert run.poll() is None, (tmp_path / f"run{kill}.log").read_text()
            assert time.monotonic() < deadline, f"run {kill} recorded too little in 300 s"
            time.sleep(0.02)
        time.sleep(pause)
        os.kill(run.pid, signal.SIGSTOP)  # no new process while the tree is listed
        processes = _tree(run.pid)
        folders = _zygote_folders(processes)
        os.kill(run.pid, signal.SIGKILL)
        assert run.wait() == -signal.SIGKILL
        assert any("child.py --zygote" in command for _, command in processes.values())
        del processes[run.pid]
        assert _survivors(processes) == []  # the zygote and the submissions died with it
        _remove(folders)
        records = _records(out)
        _assert_whole(records)
        assert {name: records[name] for name in kept} == kept  # each recorded once
        kept = records
    assert 3 <= len(kept) < SIZE

    # What no run may read as a grade: a torn record, a record of another version of the
    # notebook (stale fingerprint) and a temporary file, each reversing its verdicts.
    torn, stale, partial = sorted(kept)[:3]
    results = out / "results"
    (results / f"{torn}.json").write_bytes(kept[torn][2][: len(kept[torn][2]) // 2])
    (results / f"{stale}.json").write_text(
        _forged(kept[stale][2], hashlib.sha256(b"an earlier version").hexdigest()))
    (results / f"{partial}.json").unlink()
    (results / f".{partial}.json.k1ll3d.partial").write_text(_forged(kept[partial][2]))
    for name in (torn, stale, partial):
        del kept[name]

    last = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert _graded_line(last.stdout) == (
        f"graded {SIZE - len(kept)} submissions and kept {len(kept)} recorded by an earlier "
        "run (--force grades them again)")
    assert (out / "gradebook.csv").read_text(encoding="utf-8") == reference.gradebook
    assert (out / "summary.json").read_text(encoding="utf-8") == reference.summary
    records = _records(out)
    assert sorted(records) == sorted(reference.kinds)
    _assert_whole(records)
    assert {name: records[name] for name in kept} == kept
    assert list(out.rglob("*.partial")) == []


# (b) A Dask worker killed ------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not "
                                      "installed (pip install 'coursekit[cluster]')")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local:
        yield local
        with distributed.Client(local.scheduler_address) as client:
            client.run(zygote._close_all)  # their temporary folders with them


def _worker_pids(cluster) -> dict[str, int]:
    """The workers' pids, by address, once both run and have a warm zygote (a worker
    still importing one would let the other take every task before it runs any)."""
    from distributed import Client

    with Client(cluster.scheduler_address) as client:
        client.wait_for_workers(2, timeout=120)
        assert set(client.run(warm).values()) == {True}
        return client.run(os.getpid)


class _WorkerKiller:
    """An ``on_result`` that, at the ``at``-th result, sets off a hunt (in a thread of its
    own, so that the grader keeps sending notebooks: it keeps only a few in flight) that
    SIGKILLs the first of the Dask workers ``pids`` seen running a submission (its zygote
    has a child: whichever worker the scheduler gave the next task), noting what it killed.
    :meth:`join` waits for the hunt to end."""

    def __init__(self, pids: list[int], at: int):
        self.pids, self.at, self.seen, self.killed, self.folders = pids, at, 0, {}, []
        self.pid, self._hunt = None, None

    def __call__(self, result) -> None:
        self.seen += 1
        if self.seen == self.at:
            self._hunt = threading.Thread(target=self._kill, daemon=True)
            self._hunt.start()

    def _kill(self) -> None:
        deadline = time.monotonic() + 60
        while not self.killed and time.monotonic() < deadline:
            for pid in self.pids:
                processes = _tree(pid)
                zygotes = [p for p, (_, command) in processes.items() if "--zygote" in command]
                if zygotes and any(_stat(p)[0] in zygotes for p in processes if _stat(p)):
                    self.folders = _zygote_folders(processes)
                    os.kill(pid, signal.SIGKILL)
                    self.pid, self.killed = pid, processes
                    return
            time.sleep(0.01)

    def join(self) -> None:
        assert self._hunt is not None, f"only {self.seen} results came, fewer than {self.at}"
        self._hunt.join()
        assert self.killed, "no worker was seen running a submission"


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="finds the killed worker's processes in /proc (Linux)")
def test_a_dask_worker_killed_mid_batch_is_replaced_and_the_batch_ends_with_the_reference(
        reference, cluster, tmp_path):
    write_class(tmp_path / "subs", SIZE)
    pids = _worker_pids(cluster)
    rng = random.Random(20180304)
    killer = _WorkerKiller(sorted(pids.values()), rng.randint(1, max(1, SIZE // 3)))
    results = grade(GRADING, tmp_path / "subs", tmp_path / "out", dask=cluster.scheduler_address,
                    timeout=float(TIMEOUT), cell_timeout=float(CELL_TIMEOUT), progress=False,
                    on_result=killer)
    killer.join()
    assert killer.killed and killer.seen == SIZE  # killed mid-batch, while grading
    assert (tmp_path / "out" / "gradebook.csv").read_text(encoding="utf-8") == \
        reference.gradebook
    assert [r.name for r in results] == sorted(reference.kinds)
    del killer.killed[killer.pid]
    assert _survivors(killer.killed) == []  # its zygote and submission went with it
    _remove(killer.folders)
    assert killer.pid not in _worker_pids(cluster).values()  # the nanny started another


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="finds the killed worker's processes in /proc (Linux)")
def test_a_submission_whose_worker_died_with_no_retry_left_is_graded_again_next_run(
        reference, cluster, tmp_path):
    names = sorted(write_class(tmp_path / "subs", FEW))
    pids = _worker_pids(cluster)
    killer = _WorkerKiller(sorted(pids.values()), 1)
    scheduler, allowed = cluster.scheduler, cluster.scheduler.allowed_failures
    scheduler.allowed_failures = 0  # a task whose worker dies fails at once (KilledWorker)
    try:
        first = grade(GRADING, tmp_path / "subs", tmp_path / "out",
                      dask=cluster.scheduler_address, timeout=float(TIMEOUT),
                      cell_timeout=float(CELL_TIMEOUT), progress=False, on_result=killer)
    finally:
        scheduler.allowed_failures = allowed
    killer.join()
    assert killer.killed
    del killer.killed[killer.pid]
    assert _survivors(killer.killed) == []
    _remove(killer.folders)
    lost = [r for r in first if r.status == "grader_error"]
    assert lost  # not vanished: in the gradebook, with the reason
    # the task on the killed worker fails (KilledWorker); one the scheduler had sent there
    # next may come back cancelled instead (FutureCancelledError): either way the same
    # status, a reason, and graded again by the next run
    causes = {"KilledWorker", "FutureCancelledError"}
    assert {r.detail for r in lost} <= {
        f"the grader failed while grading it on a Dask worker ({cause})" for cause in causes}
    assert any("KilledWorker" in r.detail for r in lost)
    book = list(csv.DictReader(io.StringIO(
        (tmp_path / "out" / "gradebook.csv").read_text(encoding="utf-8"))))[1:]
    assert [row["submission"] for row in book] == names
    assert all(row["reason"].startswith("the grader failed while grading it on a Dask worker")
               for row in book if row["status"] == "grader_error")

    again = grade(GRADING, tmp_path / "subs", tmp_path / "out", dask=cluster.scheduler_address,
                  timeout=float(TIMEOUT), cell_timeout=float(CELL_TIMEOUT), progress=False)
    assert sorted(r.name for r in again if not r.reused) == sorted(r.name for r in lost)
    assert (tmp_path / "out" / "gradebook.csv").read_text(encoding="utf-8") == \
        reference.rows(names)


# (c) The out folder's disk full, or read-only ----------------------------------------------

def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture
def disk(tmp_path) -> Iterator[Path]:
    """A 300 KiB tmpfs on a fresh, empty folder of this test's own, unmounted afterwards."""
    if not LINUX or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs as the out folder's disk needs root on Linux")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("mounting a small tmpfs needs mount and umount")
    point = tmp_path / "disk"
    point.mkdir()  # fresh and empty: nothing of the system is ever mounted over
    mounted = _mount("-t", "tmpfs", "-o", "size=300k,mode=0700", "coursekit-faults", str(point))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield point
    finally:
        if os.path.ismount(point) and subprocess.run(["umount", str(point)]).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], check=True)


def _remount(point: Path, options: str) -> None:
    done = _mount("-o", f"remount,{options}", str(point))
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_a_full_out_disk_stops_the_batch_naming_the_path_and_a_rerun_completes_it(
        reference, disk, tmp_path, capsys):
    write_class(tmp_path / "subs", SIZE)
    out = disk / "out"
    argv = _command(tmp_path / "subs", out)
    assert main(argv) == 2
    error = capsys.readouterr().err
    # at the first write that failed, a submission's (not the gradebook, after the batch),
    # or the grading store's, which the grader updates as each submission is done
    assert re.search(rf"coursekit grade: error: cannot write to {re.escape(str(out))}/"
                     r"(feedback|results)/s\d{3}\.(json|html): No space left on device",
                     error) or re.search(rf"coursekit grade: error: {re.escape(str(out))}/"
                                         r"grades\.sqlite: database or disk is full", error)
    assert not (out / "gradebook.csv").exists()  # no gradebook rather than a short one
    assert not (out / "summary.json").exists()
    assert list(out.rglob("*.partial")) == []
    before = _records(out)
    _assert_whole(before)
    assert 0 < len(before) < SIZE

    _remount(disk, "size=64m")  # room made
    assert main(argv) == 0
    assert _graded_line(capsys.readouterr().out) == (
        f"graded {SIZE - len(before)} submissions and kept {len(before)} recorded by an "
        "earlier run (--force grades them again)")
    assert (out / "gradebook.csv").read_text(encoding="utf-8") == reference.gradebook
    assert {name: data for name, data in _records(out).items() if name in before} == before


@pytest.mark.slow
def test_a_read_only_out_folder_is_a_clear_error_and_leaves_its_gradebook_whole(
        reference, disk, tmp_path, capsys):
    names = sorted(write_class(tmp_path / "subs", FEW))
    late = tmp_path / "late.ipynb"  # handed in after the first run
    (tmp_path / "subs" / f"{names[-1]}.ipynb").rename(late)
    out = disk / "out"
    argv = _command(tmp_path / "subs", out)
    _remount(disk, "size=64m")

    _remount(disk, "ro")
    assert main(argv) == 2
    assert f"error: cannot write to {out}: Read-only file system" in capsys.readouterr().err
    assert not out.exists()

    _remount(disk, "rw")
    assert main(argv) == 0
    capsys.readouterr()
    graded = (out / "gradebook.csv").read_bytes()
    assert graded.decode() == reference.rows(names[:-1])
    late.rename(tmp_path / "subs" / f"{names[-1]}.ipynb")

    _remount(disk, "ro")
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert f"error: cannot write to {out}" in error and "Read-only file system" in error
    assert (out / "gradebook.csv").read_bytes() == graded  # the earlier one, whole

    _remount(disk, "rw")
    assert main(argv) == 0
    assert _graded_line(capsys.readouterr().out).startswith(
        f"graded 1 submissions and kept {len(names) - 1}")
    assert (out / "gradebook.csv").read_text(encoding="utf-8") == reference.rows(names)


@pytest.mark.slow
def test_a_write_error_of_one_submission_alone_is_its_grader_error_and_the_batch_goes_on(
        tmp_path):
    long = "s" * 240  # a legal file name, but its record's temporary file's is too long
    kinds = write_class(tmp_path / "subs", 1)
    shutil.copy(tmp_path / "subs" / "s000.ipynb", tmp_path / "subs" / f"{long}.ipynb")
    results = {r.name: r for r in grade(GRADING, tmp_path / "subs", tmp_path / "out",
                                        timeout=float(TIMEOUT),
                                        cell_timeout=float(CELL_TIMEOUT), progress=False)}
    assert (results["s000"].status, results["s000"].score()) == EXPECTED[kinds["s000"]]
    assert (results[long].status, results[long].detail) == (
        "grader_error", "the grader failed while writing its feedback (OSError)")
    assert "File name too long" in results[long].note
    book = (tmp_path / "out" / "gradebook.csv").read_text(encoding="utf-8")
    assert [line.split(",")[0] for line in book.splitlines()[2:]] == sorted(results)
