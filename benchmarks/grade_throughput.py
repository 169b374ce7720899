"""Grading throughput: how soon a child runs its first cell, what a crafted notebook
costs the grader, and submissions per minute.

First, the start-up of one grading child: a notebook whose only cell records
the time is run as a submission (:func:`coursekit.grading.runner.run_submission`:
a fresh process, its limits and, as root, its box), and the time from the
grader's call to the first cell's start is printed (median, min and max of
``--starts`` runs). The notebook imports nothing, so this is what every
submission pays before its own code runs.

Next, a notebook crafted to be slow to turn into Python (``--crafted`` cells of
499 ``%time`` lines each: IPython's transformer tokenizes the whole cell again
for every magic line, about 11 s per cell) is graded with a short per-cell
limit, and the grader's own CPU time (not its children's) is printed: the
transformation happens in the submission's process, under its limits, so the
grader's share stays that of any notebook.

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

    python benchmarks/grade_throughput.py [--starts 7] [--crafted 12] [--copies 8]
                                          [--timeout 600]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from coursekit.grading import Plan, build_plan, grade, grade_notebook, load_assignment
from coursekit.grading.runner import run_submission

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "tests" / "grading_example" / "solutions"


def assignment() -> tuple[Path, Path, str]:
    """``(grading file, solution notebook, description)`` of the assignment to time."""
    for grading in sorted((ROOT / "solutions").glob("hw1_primer_optimizers*_grading.py")):
        notebook = grading.with_name(grading.name.removesuffix("_grading.py") + ".ipynb")
        if notebook.is_file():
            return grading, notebook, f"Homework 1 ({notebook.relative_to(ROOT)})"
    return (EXAMPLE / "example_grading.py", EXAMPLE / "example.ipynb",
            "the example assignment (tests/grading_example; Homework 1 not found)")


def notebook(*sources: str) -> bytes:
    """A notebook file (nbformat 4) whose code cells are ``sources``."""
    cells = [{"cell_type": "code", "execution_count": None, "id": f"cell-{i}", "metadata": {},
              "outputs": [], "source": source} for i, source in enumerate(sources)]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                       "nbformat_minor": 5}).encode()


def first_cell_start(repeats: int) -> list[float]:
    """Seconds from the grader's call to the start of a notebook's first cell, per run."""
    cell = "import time\nprint('first cell at', repr(time.time()), flush=True)"
    data, plan = notebook(cell), Plan("first-cell", (), ())
    delays = []
    for _ in range(repeats):
        start = time.time()  # wall clock: the child's time.time() is on the same clock
        run = run_submission(data, plan, timeout=60, cell_timeout=60)
        if not run.finished:
            raise RuntimeError(f"the one-cell notebook did not run:\n{run.log_tail}")
        delays.append(float(run.log_tail.split("first cell at")[1].split()[0]) - start)
    return delays


def crafted_cost(cells: int, folder: Path) -> tuple[float, float, str]:
    """``(grader CPU seconds, wall seconds, status)`` of grading a notebook of ``cells``
    cells of 499 magic lines each, with a 2 s per-cell limit, against the example
    assignment (whose probes import nothing that 2 s could interrupt)."""
    magics = "".join(f"%time x{j} = {j}\n" for j in range(499))
    path = folder / "crafted.ipynb"
    path.write_bytes(notebook(*[magics] * cells))
    plan = build_plan(load_assignment(EXAMPLE / "example_grading.py"))
    cpu, start = time.process_time(), time.perf_counter()  # this process only, not children
    result = grade_notebook(path, plan, timeout=600, cell_timeout=2)
    return time.process_time() - cpu, time.perf_counter() - start, result.status


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
    parser.add_argument("--crafted", type=int, default=12,
                        help="cells of the slow-to-transform notebook")
    args = parser.parse_args()
    delays = first_cell_start(args.starts)
    print(f"first cell of a notebook that imports nothing starts {statistics.median(delays):.3f}"
          f" s after the grader starts its child (median of {len(delays)}; min "
          f"{min(delays):.3f} s, max {max(delays):.3f} s)")
    grading, solution, what = assignment()
    with tempfile.TemporaryDirectory(prefix="coursekit-bench-") as tmp:
        cpu, wall, status = crafted_cost(args.crafted, Path(tmp))
        print(f"crafted notebook ({args.crafted} cells of 499 magic lines): the grader used "
              f"{cpu:.2f} s of CPU time in {wall:.1f} s (status {status})")
        print(f"assignment: {what}, {args.copies} copies of its solution")
        submissions = Path(tmp) / "submissions"
        submissions.mkdir()
        for i in range(args.copies):
            shutil.copy(solution, submissions / f"student{i:03d}.ipynb")
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
