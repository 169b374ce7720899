"""Grading throughput: how soon a child runs its first cell, what a crafted notebook
costs the grader, and submissions per minute, started cold and warm.

First, the start-up of one grading child: a notebook whose only cell records
the time is run as a submission (:func:`coursekit.grading.runner.run_submission`:
a fresh process, its limits and, as root, its box), and the time from the
grader's call to the first cell's start is printed (median, min and max of
``--starts`` runs), cold (``python child.py``) and warm (forked from a zygote that
has imported :data:`coursekit.grading.zygote.PRELOAD`), for a notebook that imports
nothing and for one that imports numpy, torch, matplotlib and pandas.

Next, a notebook crafted to be slow to turn into Python (``--crafted`` cells of
499 ``%time`` lines each: IPython's transformer tokenizes the whole cell again
for every magic line, about 11 s per cell) is graded with a short per-cell
limit, and the grader's own CPU time (not its children's) is printed: the
transformation happens in the submission's process, under its limits, so the
grader's share stays that of any notebook.

Then the throughput: ``--copies`` copies of an assignment's solution notebook
are graded as :func:`coursekit.grading.grade` grades a batch, each in its own
sandboxed process: warm with one worker and with two, cold with two, and warm on a
two-worker Dask ``LocalCluster`` (two worker processes, each with its own zygote).
Each line gives submissions per minute, its ratio to the one-worker rate (2.0 would
be perfect scaling on two cores) and the CPU seconds the submissions' processes used
per submission (for warm runs including the zygotes' own imports, once per zygote).
The zygotes, here and on each Dask worker, are started before the clock starts (a batch
pays that once, about 8 s). The example assignment is graded in five times as many
copies, so that its rate is not that of a handful of submissions.

The assignments are Homework 1 (``solutions/hw1_primer_optimizers*``), when it is in
the repository, and the small example assignment of the grader's tests
(``tests/grading_example``), whose notebook does almost nothing: its rate is what the
start-up alone allows. Every run uses ``force=True``, so nothing is reused.

Last, a class: ``--class-size`` submissions (300 by default; 0 skips it) of the example
assignment, copies of its solution and of typical mistakes drawn as the fault tests draw
them (``tests/grading_helpers.py``, ``write_class``; ``tests/test_grading_faults.py``
grades the same class while killing its grader, a Dask worker and its disk), graded warm
with two workers: the batch's minutes and rate, the zygote started before the clock (its
start is printed beside).

    python benchmarks/grade_throughput.py [--starts 7] [--crafted 12] [--copies 8]
                                          [--timeout 600] [--no-dask] [--class-size 300]
                                          [--class-only]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from coursekit.grading import Plan, build_plan, grade, grade_notebook, load_assignment, zygote
from coursekit.grading.runner import run_submission, warm

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "tests" / "grading_example" / "solutions"
IMPORTS = "import numpy, torch, matplotlib.pyplot, pandas"


def assignments() -> list[tuple[Path, Path, str]]:
    """``(grading file, solution notebook, description)`` of each assignment to time."""
    found = []
    for grading in sorted((ROOT / "solutions").glob("hw1_primer_optimizers*_grading.py")):
        notebook = grading.with_name(grading.name.removesuffix("_grading.py") + ".ipynb")
        if notebook.is_file():
            found.append((grading, notebook, f"Homework 1 ({notebook.relative_to(ROOT)})"))
    example = (EXAMPLE / "example_grading.py", EXAMPLE / "example.ipynb",
               "the example assignment (tests/grading_example)")
    return [*found, example]


def notebook(*sources: str) -> bytes:
    """A notebook file (nbformat 4) whose code cells are ``sources``."""
    cells = [{"cell_type": "code", "execution_count": None, "id": f"cell-{i}", "metadata": {},
              "outputs": [], "source": source} for i, source in enumerate(sources)]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                       "nbformat_minor": 5}).encode()


def first_cell_start(repeats: int, preload: tuple[str, ...] | None,
                     imports: str = "") -> list[float]:
    """Seconds from the grader's call to the end of a notebook's first cell (which runs
    ``imports``), per run."""
    cell = f"{imports}\nimport time\nprint('first cell at', repr(time.time()), flush=True)"
    data, plan = notebook(cell), Plan("first-cell", (), ())
    delays = []
    for _ in range(repeats):
        start = time.time()  # wall clock: the child's time.time() is on the same clock
        run = run_submission(data, plan, timeout=60, cell_timeout=60, preload=preload)
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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def per_minute(grading: Path, submissions: Path, out: Path, timeout: float, **how) \
        -> tuple[float, float, Counter]:
    """Submissions graded per minute as ``how`` says (workers, preload, dask), the CPU
    seconds per submission of the processes that ran them (here; counted once they are
    reaped, so the zygotes are stopped first), and the count of each status."""
    preload = how.get("preload")
    if preload is not None and how.get("dask") is None:  # started before the clock
        warm(preload)
    elif preload is not None:  # on every worker of the cluster
        from distributed import Client

        with Client(how["dask"]) as client:
            client.run(warm, preload)
    cpu, start = _children_cpu(), time.perf_counter()
    results = grade(grading, submissions, out, timeout=timeout, progress=False, force=True,
                    **how)
    elapsed = time.perf_counter() - start
    zygote._close_all()
    return (len(results) / elapsed * 60, (_children_cpu() - cpu) / len(results),
            Counter(r.status for r in results))


def throughput(grading: Path, solution: Path, copies: int, timeout: float, dask: bool,
               folder: Path) -> None:
    """Print submissions per minute of ``copies`` copies of ``solution``, each way."""
    submissions = folder / "submissions"
    submissions.mkdir()
    for i in range(copies):
        shutil.copy(solution, submissions / f"student{i:03d}.ipynb")
    ways = [("warm, 1 worker", {"workers": 1, "preload": zygote.PRELOAD}),
            ("warm, 2 workers", {"workers": 2, "preload": zygote.PRELOAD}),
            ("cold, 2 workers", {"workers": 2, "preload": None})]
    cluster = None
    if dask:
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        ways.append(("warm, Dask LocalCluster of 2 worker processes",
                     {"dask": cluster.scheduler_address, "preload": zygote.PRELOAD}))
    try:
        single = None
        for i, (label, how) in enumerate(ways):
            rate, cpu, statuses = per_minute(grading, submissions, folder / f"out{i}", timeout,
                                             **how)
            single = single or rate
            where = "" if "dask" not in how else " (CPU on the workers: not counted here)"
            print(f"  {label}: {rate:.1f} submissions/min, {rate / single:.2f} x one worker; "
                  f"{cpu:.1f} CPU s per submission{where}  (statuses: "
                  f"{dict(sorted(statuses.items()))})")
    finally:
        if cluster is not None:
            cluster.close()


def class_batch(size: int, timeout: float, folder: Path) -> None:
    """Print the minutes and rate of grading a class of ``size`` submissions of the example
    assignment (solutions and typical mistakes), warm, with two workers."""
    sys.path.insert(0, str(ROOT / "tests"))
    from grading_helpers import write_class

    kinds = Counter(write_class(folder / "class", size).values())
    start = time.perf_counter()
    warm(zygote.PRELOAD)
    startup = time.perf_counter() - start
    rate, cpu, statuses = per_minute(EXAMPLE / "example_grading.py", folder / "class",
                                     folder / "class-out", timeout, workers=2,
                                     preload=zygote.PRELOAD)
    print(f"a class of {size} submissions of the example assignment "
          f"({', '.join(f'{n} {kind}' for kind, n in sorted(kinds.items()))}), warm, "
          f"2 workers: {size / rate:.2f} min ({size / rate * 60:.0f} s), {rate:.0f} "
          f"submissions/min, {cpu:.2f} CPU s "
          f"per submission (the zygote's start before it: {startup:.1f} s; statuses: "
          f"{dict(sorted(statuses.items()))})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=8, help="submissions per run")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per submission")
    parser.add_argument("--starts", type=int, default=7, help="runs of the one-cell notebook")
    parser.add_argument("--crafted", type=int, default=12,
                        help="cells of the slow-to-transform notebook")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask cluster")
    parser.add_argument("--class-size", type=int, default=300,
                        help="submissions in the class batch (0: skip it)")
    parser.add_argument("--class-only", action="store_true", help="only the class batch")
    args = parser.parse_args()
    if args.class_only:
        with tempfile.TemporaryDirectory(prefix="coursekit-bench-") as tmp:
            class_batch(args.class_size, args.timeout, Path(tmp))
        return
    for label, preload in (("cold", None), ("warm", zygote.PRELOAD)):
        for what, imports in (("imports nothing", ""), (f"runs {IMPORTS!r}", IMPORTS)):
            if preload is not None:  # the zygote's own start is not part of a submission's
                warm(preload)
            delays = first_cell_start(args.starts, preload, imports)
            print(f"{label} start, first cell that {what}: done "
                  f"{statistics.median(delays):.3f} s after the grader starts its child "
                  f"(median of {len(delays)}; min {min(delays):.3f} s, max {max(delays):.3f} s)")
    zygote._close_all()
    with tempfile.TemporaryDirectory(prefix="coursekit-bench-") as tmp:
        cpu, wall, status = crafted_cost(args.crafted, Path(tmp))
        print(f"crafted notebook ({args.crafted} cells of 499 magic lines): the grader used "
              f"{cpu:.2f} s of CPU time in {wall:.1f} s (status {status})")
        for i, (grading, solution, what) in enumerate(assignments()):
            copies = args.copies * (1 if grading.parent == ROOT / "solutions" else 5)
            print(f"assignment: {what}, {copies} copies of its solution")
            folder = Path(tmp) / f"assignment{i}"
            folder.mkdir()
            throughput(grading, solution, copies, args.timeout, not args.no_dask, folder)
        if args.class_size > 0:
            class_batch(args.class_size, args.timeout, Path(tmp))


if __name__ == "__main__":
    main()
