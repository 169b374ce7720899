"""Grading throughput: submissions per minute with 1 and 2 workers, and the scaling ratio.

Grades ``--copies`` copies of an assignment's solution notebook, each in its own
sandboxed process (as :func:`coursekit.grading.grade` does in a real batch),
first with one worker, then with two, and prints submissions per minute and the
ratio two workers / one worker (2.0 would be perfect scaling; on a two-core
machine the grader's own work and the children's start-up keep it below).

The assignment is Homework 1 (``solutions/hw1_primer_optimizers*``) when it is in
the repository, else the small example assignment of the grader's tests
(``tests/grading_example``); the first line says which. Both runs use
``force=True``, so nothing is reused from an earlier run.

    python benchmarks/grade_throughput.py [--copies 8] [--timeout 600]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from coursekit.grading import grade

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
    args = parser.parse_args()
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
