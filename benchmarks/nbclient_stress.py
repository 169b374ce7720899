"""Execute the lectures headless through nbclient, several passes in a row, timing every cell.

nbclient is what ``jupyter nbconvert --execute``, Jupyter Book and myst-nb use to
publish executed notebooks. A run that stalls there (the kernel has finished a
cell and gone idle, the client waits until its cell timeout) shows up as a cell
that takes about the timeout. This script executes each notebook ``--passes``
times, each time in a fresh kernel, in CI mode (``COURSEKIT_FAST=1``), and times
every code cell from the client's side (request sent to reply received). It also
measures each cell's *lag*: how long after the kernel sent its ``execute_reply``
(the reply's own timestamp) the client was done with the cell. A lag of more than
``--stall`` seconds is a stall whatever the machine's load, while a slow cell may
just be a busy machine.

It prints, per pass and notebook, the total time, the largest lag and the slowest
cell, then every cell slower than ``--limit`` seconds and every stall, and exits
with status 1 if there is one (or if a notebook fails).

    python benchmarks/nbclient_stress.py                       # every lecture, 5 passes
    python benchmarks/nbclient_stress.py --passes 2 lectures/0[1456]_*.ipynb
    python benchmarks/nbclient_stress.py --timeout 60 --limit 30 --stall 5 --json out.json

The cell timeout (``--timeout``, default 120 s) is what a stalled cell waits; it is
well above the limit, so a stall is reported as a stall, not as an error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class CellTime:
    """One executed code cell: which, how long the client waited for it, and how long
    after the kernel's reply the client was done with it (``lag``)."""

    notebook: str
    run: int
    cell: int
    seconds: float
    lag: float
    first_line: str


def execute(path: Path, run: int, *, timeout: float) -> tuple[list[CellTime], float, str | None]:
    """Execute ``path`` once in a fresh kernel; per-cell times, total seconds, error if any."""
    nb = nbformat.read(path, as_version=4)
    started: dict[int, float] = {}
    times: list[CellTime] = []

    def on_cell_execute(cell, cell_index, **_):
        started[cell_index] = time.perf_counter()

    def on_cell_executed(cell, cell_index, execute_reply, **_):
        seconds = time.perf_counter() - started[cell_index]
        sent = execute_reply["header"]["date"]
        sent = sent if isinstance(sent, datetime) else datetime.fromisoformat(str(sent))
        first = next((line for line in cell.source.splitlines() if line.strip()), "")
        times.append(CellTime(str(path.relative_to(ROOT)), run, cell_index, seconds,
                              time.time() - sent.timestamp(), first[:60]))

    client = NotebookClient(nb, timeout=int(timeout), kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            on_cell_execute=on_cell_execute, on_cell_executed=on_cell_executed)
    start = time.perf_counter()
    error = None
    try:
        client.execute()
    except Exception as exc:  # a failing notebook is reported, and the passes go on
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200]}"
    return times, time.perf_counter() - start, error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: every lecture)")
    parser.add_argument("--passes", type=int, default=5, help="passes over the notebooks")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="nbclient's cell timeout in seconds")
    parser.add_argument("--limit", type=float, default=30.0,
                        help="a cell slower than this (seconds) fails the run")
    parser.add_argument("--stall", type=float, default=5.0,
                        help="a lag after the kernel's reply longer than this (seconds) is a "
                             "stall, and fails the run")
    parser.add_argument("--json", type=Path, help="write every cell's times to this file")
    args = parser.parse_args(argv)

    notebooks = [p.resolve() for p in args.notebooks] or sorted(
        (ROOT / "lectures").glob("*.ipynb"))
    os.environ.setdefault("COURSEKIT_FAST", "1")
    print(f"{len(notebooks)} notebooks x {args.passes} passes, cell timeout {args.timeout:g} s, "
          f"limit {args.limit:g} s, stall {args.stall:g} s, "
          f"COURSEKIT_FAST={os.environ['COURSEKIT_FAST']}")
    every: list[CellTime] = []
    errors: list[str] = []
    for run in range(1, args.passes + 1):
        for path in notebooks:
            times, total, error = execute(path, run, timeout=args.timeout)
            every += times
            line = f"pass {run}  {path.name:<42} {total:6.1f} s"
            if times:
                slowest = max(times, key=lambda t: t.seconds)
                line += (f"   largest lag {max(t.lag for t in times):5.2f} s   slowest: cell "
                         f"{slowest.cell:>2} {slowest.seconds:6.1f} s ({slowest.first_line})")
            if error:
                line += f"   FAILED {error}"
                errors.append(f"pass {run} {path.name}: {error}")
            print(line, flush=True)

    slow = sorted((t for t in every if t.seconds > args.limit), key=lambda t: -t.seconds)
    stalls = sorted((t for t in every if t.lag > args.stall), key=lambda t: -t.lag)
    print()
    if every:
        worst = max(every, key=lambda t: t.seconds)
        laggard = max(every, key=lambda t: t.lag)
        print(f"slowest cell of all {len(every)}: {worst.notebook} cell {worst.cell}, "
              f"pass {worst.run}: {worst.seconds:.1f} s ({worst.first_line})")
        print(f"largest lag after the kernel's reply: {laggard.notebook} cell {laggard.cell}, "
              f"pass {laggard.run}: {laggard.lag:.2f} s")
    print(f"cells over {args.limit:g} s: {len(slow)}")
    for t in slow:
        print(f"  pass {t.run} {t.notebook} cell {t.cell}: {t.seconds:.1f} s ({t.first_line})")
    print(f"stalls (lag over {args.stall:g} s): {len(stalls)}")
    for t in stalls:
        print(f"  pass {t.run} {t.notebook} cell {t.cell}: done {t.lag:.1f} s after the "
              f"kernel's reply ({t.first_line})")
    for error in errors:
        print(f"  {error}")
    if args.json:
        args.json.write_text(json.dumps([asdict(t) for t in every], indent=1) + "\n")
    return 1 if slow or stalls or errors else 0


if __name__ == "__main__":
    sys.exit(main())
