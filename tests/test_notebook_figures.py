"""The figure rule the notebook plugin enforces (tests/notebook_figures.py), run in-process."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest

from tests import notebook_figures

matplotlib.use("Agg")
import matplotlib.pyplot as plt


class _Events:
    def __init__(self):
        self.callbacks = {}

    def register(self, event, callback):
        self.callbacks[event] = callback


@pytest.fixture
def check(tmp_path, monkeypatch):
    """The startup file's callback, writing to a log in tmp_path; returns what it logged."""
    log = tmp_path / "figures.jsonl"
    monkeypatch.setenv("COURSEKIT_FIGURE_LOG", str(log))
    events = _Events()
    exec(notebook_figures.STARTUP, {"get_ipython": lambda: type("Shell", (), {"events": events})})

    def run():
        events.callbacks["post_execute"]()
        plt.close("all")
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return run


def test_more_than_four_curves_on_one_axes_are_reported(check):
    x = np.arange(10.0)
    _, (crowded, fine) = plt.subplots(1, 2)
    for k in range(notebook_figures.MAX_CURVES + 1):
        crowded.plot(x, k * x, label=f"run {k}")
    for k in range(notebook_figures.MAX_CURVES):
        fine.plot(x, k * x)
    (problem,) = check()
    assert problem["axes"] == 0 and problem["curves"] == notebook_figures.MAX_CURVES + 1
    assert problem["labels"] == [f"run {k}" for k in range(notebook_figures.MAX_CURVES + 1)]


def test_faint_lines_reference_lines_and_markers_do_not_count(check):
    x = np.arange(10.0)
    _, ax = plt.subplots()
    for k in range(notebook_figures.MAX_CURVES):
        ax.plot(x, k * x)
    for k in range(5):
        ax.plot(x, -k * x, alpha=0.3)      # the other runs behind a small multiple
        ax.axhline(k)                      # reference lines: two points
        ax.plot(x, x + k, "o")             # markers without a line
    assert check() == []
