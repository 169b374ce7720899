"""Grading throughput: how soon a child runs its first cell, and submissions per minute.

First, the start-up of one grading child: a notebook whose only cell records
the time is run as a submission (:func:`coursekit.grading.runner.run_submission`:
a fresh process, its limits and, as root, its box), and the time from the
grader's call to the first cell's start is printed (median, min and max of
``--starts`` runs). The notebook imports nothing, so this is what every
submission pays before its own code runs.

Then the throughput: ``--copies`` copies of an assignment's solution notebook
are graded, each in its own sandboxed process (as :func:`coursekit.grading.grade`
does in a real batch), first with one worker, then with two, and submissions per
minute are printed with the ratio two workers / one worker (2.0 would be perfect
scaling; on a two-core machine the grader's own work and the children's start-up
keep it below).

The assignment is Homework 1 (``solutions/hw1_primer_optimizers*``) when it is in
the repository, else the small example assignment of the grader's tests
(``tests/grading_example``); the first line says which. Both runs use
``force=True``, so nothing is reused from an earlier run.

    python benchmarks/grade_throughput.py [--starts 7] [--copies 8] [--timeout 600]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from coursekit.grading import Plan, grade
from coursekit.grading.runner import Submission, run_submission

ROOT = Path(__file__).resolve().parent.parent


def assignment() -> tuple[Path, Path, str]:
    """``(grading file, solution notebook, description)`` of the assignment to time."""
    for grading in sorted((ROOT / "solutions").glob("hw1_primer_optimizers*_grading.py")):
        notebook = grading.with_name(grading.name.removesuffix("_grading.py") + ".ipynb")
        if notebook.is_file():
            return grading, notebook, f"Homework 1 ({notebook.relative_to(ROOT)})"
    example = ROOT / "tests" / "grading_example" / "solutions"
    return (example / "example_grading.py", example / "example.ipynb",
            "the example assignment (tests/grading_example; Homework 1 not found)")


def first_cell_start(repeats: int) -> list[float]:
    """Seconds from the grader's call to the start of a notebook's first cell, per run."""
    cell = "import time\nprint('first cell at', repr(time.time()), flush=True)"
    submission, plan = Submission(((1, cell),)), Plan("first-cell", (), ())
    delays = []
    for _ in range(repeats):
        start = time.time()  # wall clock: the child's time.time() is on the same clock
        run = run_submission(submission, plan, timeout=60, cell_timeout=60)
        if not run.finished:
            raise RuntimeError(f"the one-cell notebook did not run:\n{run.log_tail}")
        delays.append(float(run.log_tail.split("first cell at")[1].split()[0]) - start)
    return delays


def per_minute(grading: Path, submissions: Path, out: Path, workers: int,
               timeout: float) -> tuple[float, Counter]:
    """Submissions graded per minute with ``workers``, and the count of each status."""
    start = time.perf_counter()
    results = grade(grading, submissions, out, workers=workers, timeout=timeout,
                    progress=False, force=True)
    elapsed = time.perf_counter() - start
    return len(results) / elapsed * 60, Counter(r.status for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=8, help="submissions per run")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per submission")
    parser.add_argument("--starts", type=int, default=7, help="runs of the one-cell notebook")
    args = parser.parse_args()
    delays = first_cell_start(args.starts)
    print(f"first cell of a notebook that imports nothing starts {statistics.median(delays):.3f}"
          f" s after the grader starts its child (median of {len(delays)}; min "
          f"{min(delays):.3f} s, max {max(delays):.3f} s)")
    grading, notebook, what = assignment()
    print(f"assignment: {what}, {args.copies} copies of its solution")
    with tempfile.TemporaryDirectory(prefix="coursekit-bench-") as tmp:
        submissions = Path(tmp) / "submissions"
        submissions.mkdir()
        for i in range(args.copies):
            shutil.copy(notebook, submissions / f"student{i:03d}.ipynb")
        rates = {}
        for workers in (1, 2):
            rate, statuses = per_minute(grading, submissions, Path(tmp) / f"out{workers}",
                                        workers, args.timeout)
            rates[workers] = rate
            print(f"workers={workers}: {rate:.1f} submissions/min  (statuses: "
                  f"{dict(sorted(statuses.items()))})")
    print(f"scaling, 2 workers / 1 worker: {rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()
