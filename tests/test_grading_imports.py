"""Grading stands alone: it loads nothing of the course library, and no torch or matplotlib,
until a student's code or a probe asks for them.

Each check looks at ``sys.modules`` in a fresh interpreter: one started here for the
grader's modules, and a real grading child (the process a submission runs in) for the
student's side.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from grading_helpers import notebook_bytes

from coursekit.grading import Plan
from coursekit.grading.runner import run_submission
from coursekit.grading.spec import PlannedTest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"torch", "matplotlib"}
# What of coursekit grading may load: the (lazy) package itself, the CLI and grading.
PACKAGE = {"coursekit", "coursekit._lazy", "coursekit.cli"}


def _course_library(modules: list[str]) -> list[str]:
    """The coursekit modules in ``modules`` that are not on the grading side."""
    return sorted(m for m in modules if m.split(".")[0] == "coursekit" and m not in PACKAGE
                  and m.split(".")[:2] != ["coursekit", "grading"])


def _heavy(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules} & HEAVY


@pytest.mark.parametrize("module", ["coursekit.grading", "coursekit.grading.child",
                                    "coursekit.grading.grader", "coursekit.grading.selfcheck",
                                    "coursekit.cli"])
def test_importing_the_grading_side_loads_no_torch_matplotlib_or_course_library(module):
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert module in modules
    assert _heavy(modules) == set()
    assert _course_library(modules) == []


def test_the_checks_catch_a_course_library_module_and_torch():
    loaded = ["coursekit", "coursekit.grading.grader", "coursekit.optim.adam", "torch.nn",
              "numpy"]
    assert _course_library(loaded) == ["coursekit.optim.adam"]
    assert _heavy(loaded) == {"torch"}


def _loaded_by_child(cells: list[str]) -> list[str]:
    """``sys.modules`` of a grading child after it ran ``cells``, as its probe reads it."""
    probe = "def loaded(student):\n    return student['LOADED']\n"
    test = PlannedTest("q", "loaded", "", 1.0, False, "loaded", {}, None, 0.0, 0.0)
    plan = Plan("imports", (("q", "Q"),), (test,), {"loaded": probe})
    cells = [*cells, "import sys\nLOADED = sorted(sys.modules)"]
    run = run_submission(notebook_bytes(*cells), plan, timeout=60, cell_timeout=30)
    assert run.finished, run.log_tail
    return run.outputs["q/loaded"].value


def test_a_grading_child_for_a_notebook_that_imports_nothing_has_loaded_no_torch():
    modules = _loaded_by_child([])
    assert "numpy" in modules  # the child's own wire format
    assert _heavy(modules) == set()
    assert [m for m in modules if m.split(".")[0] == "coursekit"] == []
    assert "IPython" not in modules  # plain Python needs no transformer


def test_a_grading_child_loads_ipython_only_to_turn_magics_into_python():
    modules = _loaded_by_child(["%time x = 1\nassert x == 1"])
    assert "IPython" in modules
    assert _heavy(modules) == set()


def test_a_grading_child_still_gives_a_notebook_the_torch_it_imports():
    modules = _loaded_by_child(["import torch\nx = torch.ones(2).sum().item()"])
    assert _heavy(modules) == {"torch"}
