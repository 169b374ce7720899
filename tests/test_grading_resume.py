"""Nothing is lost: one record per submission written atomically, a killed run resumed.

The main test kills the ``coursekit grade`` command with SIGKILL in the middle of a
batch, starts it again, and checks that the submissions recorded before the kill
are kept untouched, the others graded, and that the final files are identical to
those of a full regrade with ``--force``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from grading_helpers import (
    GRADING,
    NO_BIAS_CORRECTION,
    SIGN_ERROR,
    edit,
    homework,
    solution,
    with_cell,
    write,
)

from coursekit.cli import main
from coursekit.grading import grade
from coursekit.grading.report import write_atomic

try:
    import fcntl
except ImportError:
    fcntl = None

REPO = Path(__file__).resolve().parent.parent


def _batch(folder: Path) -> list[str]:
    notebooks = {
        "a_solution": solution(),
        "b_homework": homework(),
        "c_wrong_sign": edit(solution(), *SIGN_ERROR),
        "d_slow": with_cell(solution(), "import time\ntime.sleep(1)"),
        "e_no_bias": edit(solution(), *NO_BIAS_CORRECTION),
        "f_crash": with_cell(solution(), "import os\nos._exit(3)"),
        "g_slow_again": with_cell(solution(), "import time\ntime.sleep(1)"),
    }
    for name, notebook in notebooks.items():
        write(notebook, folder / f"{name}.ipynb")
    return sorted(notebooks)


def _command(submissions: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "coursekit.cli", "grade", str(GRADING), str(submissions),
            "--out", str(out), "--workers", "1", "--timeout", "60", "--cell-timeout", "30",
            "--no-progress", *extra]


def _records(out: Path) -> dict[str, tuple[int, int, bytes]]:
    return {p.stem: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted((out / "results").glob("*.json"))}


def _outputs(out: Path) -> dict[str, bytes]:
    files = [out / "gradebook.csv", out / "summary.json", *sorted((out / "feedback").iterdir())]
    return {p.name: p.read_bytes() for p in files}


@pytest.mark.slow  # two runs of the command and one in-process: ~20 s idle, more when busy
def test_a_run_killed_mid_batch_resumes_grading_each_submission_once(tmp_path):
    names = _batch(tmp_path / "subs")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(_command(tmp_path / "subs", out), env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(list((out / "results").glob("*.json"))) < 2 and first.poll() is None:
        assert time.monotonic() < deadline, "the first run recorded nothing in 300 s"
        time.sleep(0.05)
    first.kill()  # SIGKILL: no chance to clean up
    first.wait()
    before = _records(out)
    assert 2 <= len(before) < len(names)  # mid-batch
    assert all(json.loads(data)["submission"] == name for name, (_, _, data) in before.items())

    resumed = subprocess.run(_command(tmp_path / "subs", out), env=env, capture_output=True,
                             text=True, check=True)
    kept = len(before)
    assert f"graded {len(names) - kept} submissions and kept {kept} recorded" in resumed.stdout
    after = _records(out)
    assert sorted(after) == names
    assert {name: after[name] for name in before} == before  # untouched: graded once
    assert list((out).rglob("*.partial")) == []
    resumed_outputs = _outputs(out)

    regraded = grade(GRADING, tmp_path / "subs", out, timeout=60, cell_timeout=30,
                     progress=False, force=True)
    assert not any(r.reused for r in regraded)
    assert all(_records(out)[name][0] != after[name][0] for name in names)  # rewritten
    assert {n: r[2] for n, r in _records(out).items()} == {n: r[2] for n, r in after.items()}
    assert _outputs(out) == resumed_outputs
    with open(out / "gradebook.csv", newline="") as f:
        assert [row[0] for row in csv.reader(f)][2:] == names


def _grade(tmp_path: Path, **options):
    return grade(GRADING, tmp_path / "subs", tmp_path / "out", timeout=60, cell_timeout=10,
                 progress=False, **options)


def test_torn_records_are_graded_again_and_whole_ones_kept(tmp_path):
    write(solution(), tmp_path / "subs" / "ann.ipynb")
    write(homework(), tmp_path / "subs" / "bob.ipynb")
    first = {r.name: r for r in _grade(tmp_path)}
    record = tmp_path / "out" / "results" / "ann.json"
    record.write_bytes(record.read_bytes()[:100])  # what a non-atomic write killed midway leaves
    (tmp_path / "out" / "results" / ".bob.json.x1y2.partial").write_text("{")
    second = {r.name: r for r in _grade(tmp_path)}
    assert {n: r.reused for n, r in second.items()} == {"ann": False, "bob": True}
    assert {n: (r.status, r.score()) for n, r in second.items()} == \
        {n: (r.status, r.score()) for n, r in first.items()}
    assert list((tmp_path / "out").rglob("*.partial")) == []


def test_a_changed_notebook_or_another_seed_is_graded_again(tmp_path):
    write(solution(), tmp_path / "subs" / "ann.ipynb")
    write(solution(), tmp_path / "subs" / "bob.ipynb")
    _grade(tmp_path)
    write(edit(solution(), *SIGN_ERROR), tmp_path / "subs" / "bob.ipynb")
    again = {r.name: r.reused for r in _grade(tmp_path)}
    assert again == {"ann": True, "bob": False}
    assert {r.name: r.reused for r in _grade(tmp_path, seed=7)} == {"ann": False, "bob": False}


def test_an_interrupted_write_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "gradebook.csv"
    write_atomic(path, "old\n")

    def crash(*args):
        raise OSError("killed")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="killed"):
        write_atomic(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["gradebook.csv"]


@pytest.mark.skipif(fcntl is None, reason="the output folder is locked with fcntl (POSIX)")
def test_a_second_run_on_the_same_output_folder_is_refused_and_the_folder_is_private(
        tmp_path):
    write(solution(), tmp_path / "subs" / "ann.ipynb")
    (tmp_path / "out").mkdir(mode=0o755)
    with open(tmp_path / "out" / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(ValueError, match="another coursekit grade is writing to"):
            _grade(tmp_path)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o700
    assert [r.status for r in _grade(tmp_path)] == ["ok"]


def test_cli_force_grades_what_an_earlier_run_recorded(tmp_path, capsys):
    write(solution(), tmp_path / "subs" / "ann.ipynb")
    argv = ["grade", str(GRADING), str(tmp_path / "subs"), "--out", str(tmp_path / "out"),
            "--timeout", "60", "--cell-timeout", "10", "--no-progress"]
    assert main(argv) == 0 and main(argv) == 0 and main([*argv, "--force"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("graded")]
    assert [line.split(" in ")[0] for line in printed] == [
        "graded 1 submissions", "graded 0 submissions and kept 1 recorded by an earlier run "
        "(--force grades them again)", "graded 1 submissions"]
