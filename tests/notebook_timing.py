"""pytest plugin: run notebooks in CI mode, time each one, enforce the time budget.

Loaded from pyproject.toml (``-p tests.notebook_timing``). nbval executes every
notebook under ``lectures/`` and ``solutions/`` cell by cell (lax mode: outputs are
not compared, errors fail). This plugin

* sets ``COURSEKIT_FAST=1`` (unless already set) so that the kernels nbval starts
  run the small CI-sized experiments;
* adds up the time of each notebook's cells (kernel start included) and prints a
  table at the end of the run;
* fails the run when a notebook exceeds its budget: ``COURSEKIT_NOTEBOOK_BUDGET``
  seconds (default 60, the course's promise for two CPU cores), with an allowance of
  a quarter under ``-n``, where the notebook shares the cores with unit tests
  (:data:`SHARED_ALLOWANCE`);
* under pytest-xdist (``pytest -n auto``, as CI runs, with ``--dist loadgroup``),
  puts every notebook in one ``xdist_group``, so one worker executes the notebooks
  one after the other (each notebook's cells in order, in one kernel) while the
  others run the unit tests: a notebook shares the machine with one test process,
  not with another notebook, and its time stays comparable to a run on its own.
  Tests marked ``executed_notebooks`` (tests/notebook_outputs.py), which read the
  notebooks' executed copies, join that group and run after them. Every other test
  is grouped by its file, so a module's fixtures (a graded batch
  of submissions, say) are built once, on one worker. Where the operating system
  allows it (CI runs as root), the notebook worker and the kernels it starts get a
  higher scheduling priority (nice -5) than the unit tests beside them, so the
  budget measures a notebook as if it ran on its own, not the tests it shares the
  machine with; elsewhere nothing changes.
"""

from __future__ import annotations

import os
from collections import defaultdict

import pytest

DEFAULT_BUDGET_S = 60.0

_times: dict[str, float] = defaultdict(float)
_over_budget: list[str] = []


SHARED_ALLOWANCE = 1.25
"""Under ``-n`` a notebook shares the two cores with the unit tests beside it, which
costs it about a quarter of its time (lecture 07: 42.9 s alone, 57 s beside them);
the budget is checked with that allowance there. Run ``pytest lectures solutions``
without ``-n`` to hold every notebook to the budget on its own."""


def budget_seconds(config=None) -> float:
    """The per-notebook budget in seconds (``COURSEKIT_NOTEBOOK_BUDGET`` or 60), times
    :data:`SHARED_ALLOWANCE` when pytest-xdist runs tests beside the notebooks."""
    budget = float(os.environ.get("COURSEKIT_NOTEBOOK_BUDGET", DEFAULT_BUDGET_S))
    workers = getattr(config.option, "numprocesses", None) if config is not None else None
    return budget * SHARED_ALLOWANCE if isinstance(workers, int) and workers > 1 else budget


def pytest_configure(config) -> None:
    os.environ.setdefault("COURSEKIT_FAST", "1")


def pytest_itemcollected(item) -> None:
    """Mark each item's group as it is collected, before xdist reads the groups (its own
    ``pytest_collection_modifyitems`` runs ahead of any plugin's)."""
    path = str(item.fspath)
    notebook = path.endswith(".ipynb") or item.get_closest_marker("executed_notebooks")
    item.add_marker(pytest.mark.xdist_group("notebooks" if notebook else path))


_favoured = False


@pytest.hookimpl(tryfirst=True)  # before nbval starts the notebook's kernel
def pytest_runtest_setup(item) -> None:
    global _favoured
    if _favoured or not str(item.fspath).endswith(".ipynb") \
            or not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    _favoured = True
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -5)  # the kernels started from here inherit it
    except (OSError, AttributeError):            # not allowed (not root), or not POSIX
        pass


def pytest_runtest_logreport(report) -> None:
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _times[path] += report.duration


def pytest_sessionfinish(session, exitstatus) -> None:
    budget = budget_seconds(session.config)
    _over_budget[:] = sorted(p for p, t in _times.items() if t > budget)
    if _over_budget and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter) -> None:
    if not _times:
        return
    budget = budget_seconds(terminalreporter.config)
    tr = terminalreporter
    tr.section("notebook run times (CI mode)")
    width = max(len(p) for p in _times)
    for path, seconds in sorted(_times.items()):
        flag = "  OVER BUDGET" if seconds > budget else ""
        tr.write_line(f"{path:<{width}}  {seconds:7.1f} s{flag}")
    tr.write_line(f"{'total':<{width}}  {sum(_times.values()):7.1f} s   (budget {budget:.0f} s "
                  "per notebook)")
    if _over_budget:
        tr.write_line(f"FAILED: {len(_over_budget)} notebook(s) over the {budget:.0f} s budget: "
                      + ", ".join(_over_budget), red=True)
