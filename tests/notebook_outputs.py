"""pytest plugin: keep the outputs of every notebook the suite executes, for the website.

Loaded from pyproject.toml (``-p tests.notebook_outputs``). nbval executes each
lecture and solution notebook cell by cell; when every cell of a notebook has passed,
this plugin writes the notebook with the outputs nbval received to
``_build/executed/<path>`` (``COURSEKIT_EXECUTED`` overrides the folder) through
:func:`coursekit.site.save_executed`, which stamps it with what it was executed from
(cells, library source, CI or full mode). ``coursekit site`` then shows those outputs
instead of executing the lectures a second time: one CI run executes each notebook
once.

Tests marked ``executed_notebooks`` (the site build and its browser test) read those
copies: the plugin runs them after every notebook, and tests/notebook_timing.py puts
them on the notebooks' pytest-xdist worker (their ``xdist_group``), so that the copies
exist when they start. Run alone, they still pass: the build executes any lecture it
finds no fresh copy of.
"""

from __future__ import annotations

import copy
import os
from collections import defaultdict
from pathlib import Path

import nbformat
import pytest

MARKER = "executed_notebooks"   # tests/notebook_timing.py groups these with the notebooks


def executed_dir(root: Path) -> Path:
    """Where executed copies go: ``$COURSEKIT_EXECUTED`` or ``<root>/_build/executed``."""
    folder = os.environ.get("COURSEKIT_EXECUTED")
    return Path(folder) if folder else Path(root) / "_build" / "executed"


_outputs: dict[str, dict[int, list]] = defaultdict(dict)
_failed: set[str] = set()
_last_cell: dict[str, str] = {}


def _is_cell(item) -> bool:
    return str(item.fspath).endswith(".ipynb") and hasattr(item, "cell_num")


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: reads the executed notebooks; runs after them, on their worker")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items) -> None:
    """Run the ``executed_notebooks`` tests last; note each notebook's last cell."""
    later = [item for item in items if item.get_closest_marker(MARKER) is not None]
    if later:
        items[:] = [item for item in items if item.get_closest_marker(MARKER) is None] + later
    for item in items:
        if _is_cell(item):
            _last_cell[str(item.fspath)] = item.nodeid


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if not _is_cell(item):
        return
    report = outcome.get_result()
    path = str(item.fspath)
    if report.failed or report.skipped:
        _failed.add(path)
    elif call.when == "call":
        _outputs[path][item.cell_num] = list(item.test_outputs or [])
    if call.when == "teardown" and item.nodeid == _last_cell.get(path):
        _write(item.config, Path(path), item.parent.nb)


_setup_seconds: list[float] = []


def pytest_runtest_logreport(report) -> None:
    """Note how long the ``executed_notebooks`` tests' fixtures took (the site build)."""
    if report.when == "setup" and MARKER in report.keywords:
        _setup_seconds.append(report.duration)


def pytest_terminal_summary(terminalreporter) -> None:
    if _setup_seconds and max(_setup_seconds) > 1:
        terminalreporter.write_line(
            f"website built for the {MARKER} tests in {max(_setup_seconds):.1f} s "
            "(their longest fixture setup: tests/test_site.py's build)")


def _write(config, path: Path, collected) -> None:
    """Save the notebook as nbval read it (the cells it executed) with its outputs."""
    outputs = _outputs.pop(str(path), {})
    if str(path) in _failed:
        return
    from coursekit.site import save_executed

    notebook = copy.deepcopy(collected)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if set(outputs) != set(range(len(code))):
        return                                  # some cells did not run (deselected)
    for number, cell in enumerate(code):
        cell.outputs = [nbformat.from_dict(dict(output)) for output in outputs[number]]
        cell.execution_count = number + 1
        for output in cell.outputs:
            if output.output_type == "execute_result":
                output.execution_count = number + 1
    save_executed(path, notebook, executed_dir(config.rootpath), config.rootpath)
