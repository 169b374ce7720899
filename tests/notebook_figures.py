"""pytest plugin: every figure a notebook draws keeps to the course's figure rules.

Loaded from pyproject.toml (``-p tests.notebook_figures``). The kernels nbval starts
for the lecture and solution notebooks inherit ``IPYTHONDIR``, which this plugin
points at a profile whose startup file (``figure_check.py`` below) registers an
IPython ``post_execute`` callback. After every cell, before the inline backend
shows and closes the cell's figures, the callback inspects each open figure and
writes one line of JSON per rule broken to a log file. After each nbval cell the
plugin reads the new lines and fails that cell with them, so the failure names the
notebook, the cell and the axes.

The rule checked (issue 27): **no axes overlays more than four curves**. A curve
is a drawn line of more than two points that a reader is meant to follow: lines
fainter than alpha 0.5 (the other runs behind a small multiple, raw losses behind
their running mean) and two-point lines (``axhline``, ``axvline``, reference
segments) do not count; markers without a line (``"o"``) do not count. More curves
than that go into small multiples (``plot.small_multiples``) or separate panels.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

MAX_CURVES = 4

STARTUP = '''
import json as _json
import os as _os


def _coursekit_check_figures():
    import sys
    if "matplotlib.pyplot" not in sys.modules:
        return
    from matplotlib._pylab_helpers import Gcf
    log = _os.environ.get("COURSEKIT_FIGURE_LOG")
    if not log:
        return
    problems = []
    for manager in Gcf.get_all_fig_managers():
        number, figure = manager.num, manager.canvas.figure
        for index, ax in enumerate(figure.axes):
            curves = [line for line in ax.get_lines()
                      if len(line.get_xdata()) > 2 and line.get_visible()
                      and line.get_linestyle() not in ("None", "", " ")
                      and (line.get_alpha() is None or line.get_alpha() >= 0.5)]
            if len(curves) > MAX_CURVES:
                labels = [line.get_label() for line in curves]
                problems.append({"figure": number, "axes": index, "title": ax.get_title(),
                                 "curves": len(curves), "labels": labels})
    if problems:
        with open(log, "a", encoding="utf-8") as stream:
            for problem in problems:
                stream.write(_json.dumps(problem) + "\\n")


get_ipython().events.register("post_execute", _coursekit_check_figures)
'''.replace("MAX_CURVES", str(MAX_CURVES))

_log: Path | None = None
_read = 0


def pytest_configure(config) -> None:
    global _log
    root = Path(tempfile.mkdtemp(prefix="coursekit-ipython-"))
    startup = root / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-coursekit-figure-check.py").write_text(STARTUP, encoding="utf-8")
    _log = root / "figures.jsonl"
    _log.touch()
    os.environ["IPYTHONDIR"] = str(root)
    os.environ["COURSEKIT_FIGURE_LOG"] = str(_log)


def _new_problems() -> list[dict]:
    global _read
    if _log is None or not _log.exists():
        return []
    lines = _log.read_text(encoding="utf-8").splitlines()
    fresh, _read = lines[_read:], len(lines)
    return [json.loads(line) for line in fresh if line.strip()]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or type(item).__name__ != "IPyNbCell":
        return
    problems = _new_problems()
    if problems and report.passed:
        lines = [f"figure {p['figure']}, axes {p['axes']} ({p['title']!r}) overlays "
                 f"{p['curves']} curves (at most {MAX_CURVES}; use plot.small_multiples or "
                 f"separate panels): {', '.join(map(str, p['labels']))}" for p in problems]
        report.outcome = "failed"
        report.longrepr = "\n".join(lines)
