"""The separate process: time limits, crashes, its environment, repeatable results, and
IPython syntax turned into the Python IPython itself runs."""

from __future__ import annotations

import ast
import signal
from pathlib import Path

import nbformat
import pytest
from grading_helpers import (
    GRADING,
    NO_BIAS_CORRECTION,
    SIGN_ERROR,
    edit,
    emptied,
    full_plan,
    moved_first,
    points_without,
    solution,
    with_cell,
    write,
)

from coursekit.grading import grade, grade_notebook
from coursekit.grading.child import python_source

PLAN = full_plan()
ROOT = Path(__file__).resolve().parents[1]


def test_a_submission_that_swallows_every_interrupt_is_stopped_at_the_wall_clock_limit(
        tmp_path):
    stubborn = "import time\nwhile True:\n    try:\n        time.sleep(60)\n" \
               "    except BaseException:\n        pass"
    path = write(with_cell(solution(), stubborn), tmp_path / "stubborn.ipynb")
    result = grade_notebook(path, PLAN, timeout=3, cell_timeout=0.5)
    last = len(solution().cells) + 1
    assert result.status == "timeout"
    assert result.detail == f"stopped after 3 s while running cell {last}"
    assert result.score() == 0
    assert {r.message for r in result.tests} == \
        {"not run: the submission ran out of time first"}


def test_a_graded_call_that_never_returns_costs_only_its_own_tests(tmp_path):
    hanging = edit(solution(), "momentum-code", "    velocity = mu * velocity + grad\n",
                   "    while True:\n        pass\n")
    result = grade_notebook(write(hanging, tmp_path / "hang.ipynb"), PLAN, timeout=60,
                            cell_timeout=0.5)
    assert result.status == "cell_timeout"
    assert result.score() == pytest.approx(points_without(PLAN, "momentum/"))
    assert "test momentum/first_step was stopped at the per-cell limit" in result.detail


@pytest.mark.parametrize(("source", "how"), [
    ("import os\nos._exit(3)", "exited with status 3"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
     f"was killed by {signal.SIGKILL.name}"),
])
def test_a_process_that_dies_is_reported_as_crashed(tmp_path, source, how):
    notebook = with_cell(solution(), source, after="imports")
    result = grade_notebook(write(notebook, tmp_path / "dies.ipynb"), PLAN, timeout=60,
                            cell_timeout=10)
    assert result.status == "crashed"
    assert result.detail.startswith(f"the process {how} while running cell 3")
    assert result.score() == 0


def test_student_code_runs_in_a_scratch_folder_with_a_minimal_environment(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("GRADER_ONLY_SECRET", "do-not-leak")
    probe_cell = ("import os\n"
                  "assert 'GRADER_ONLY_SECRET' not in os.environ, 'environment leaked'\n"
                  "assert os.listdir('.') == [], os.listdir('.')\n"
                  "assert os.environ['OMP_NUM_THREADS'] == '1'\n"
                  "assert os.environ['CUDA_VISIBLE_DEVICES'] == ''")
    notebook = with_cell(solution(), probe_cell, after="imports")
    result = grade_notebook(write(notebook, tmp_path / "env.ipynb"), PLAN, timeout=60,
                            cell_timeout=10)
    assert result.status == "ok", result.detail
    assert result.score() == PLAN.max_points()


def test_patching_numpy_comparisons_in_the_submission_changes_no_verdict(tmp_path):
    cheat = ("import numpy as np\n"
             "np.allclose = lambda *args, **kwargs: True\n"
             "np.isclose = lambda a, b, **kwargs: np.ones(np.shape(a), dtype=bool)\n"
             "np.testing.assert_allclose = lambda *args, **kwargs: None")
    notebook = with_cell(edit(solution(), *SIGN_ERROR), cheat)
    result = grade_notebook(write(notebook, tmp_path / "cheat.ipynb"), PLAN, timeout=60,
                            cell_timeout=10)
    assert result.status == "ok"
    assert result.score() == pytest.approx(points_without(PLAN, "momentum/"))


def test_grading_twice_gives_identical_gradebooks_and_feedback(tmp_path):
    submissions = tmp_path / "subs"
    write(solution(), submissions / "ann.ipynb")
    write(edit(solution(), *NO_BIAS_CORRECTION), submissions / "ben.ipynb")
    write(moved_first(solution(), "try-it"), submissions / "cy" / "example.ipynb")
    write(with_cell(solution(), "1 / 0"), submissions / "dee.ipynb")
    write(emptied(solution()), submissions / "eve.ipynb")
    write("{not json", submissions / "fay.ipynb")
    write(solution(), submissions / ".ipynb_checkpoints" / "ann-checkpoint.ipynb")
    outputs = []
    for run, workers in (("first", 1), ("second", 2)):
        grade(GRADING, submissions, tmp_path / run, workers=workers, timeout=60,
              cell_timeout=10, progress=False)
        files = sorted(p for p in (tmp_path / run).rglob("*") if p.is_file()
                       and not p.name.startswith("grades.sqlite"))  # it holds grading times
        outputs.append({p.relative_to(tmp_path / run).as_posix(): p.read_bytes()
                        for p in files})
    first, second = outputs
    names = ["ann", "ben", "cy/example", "dee", "eve", "fay"]
    assert sorted(first) == sorted([".lock", "gradebook.csv", "summary.json",
                                    *(f"{folder}/{name}.{suffix}" for name in names
                                      for folder, suffix in (("feedback", "json"),
                                                             ("feedback", "html"),
                                                             ("results", "json")))])
    assert first == second


# IPython syntax, as IPython itself would run it: plain Python skips the transformer
TRICKY_CELLS = [
    "%time x = 1", "\n\n  \nx = 1\n1 / 0", "%%time\nx = 1", "x = !ls", "a?", "!pip install foo",
    ">>> x = 1\n>>> y = 2", "In [1]: x = 1", "def f():\n    %time pass", "s = '%time'",
    "x = 1  # %time is not a magic here", "if True:\n    !ls", "print(1)\n%matplotlib inline\n",
    "x = (1,\n     2)\n%time y = x", "x = 1 \\\n    + 2", "\tx = 1", "x = 1\r\ny = 2", "# notes",
    "x = [\n%time\n]", "def broken(:\n    pass", "x = 1\n\x00", "%%capture\nprint('hidden')",
    "[nav] In [1]: x = 1", "x = 1\n   ...: y = 2", "  # indented comment\nx = 1", "...",
    "x = [1,\n... ]", "x = 1\n>>> y = 2", "def f():\n    \"\"\"\n    >>> f()\n    \"\"\"\n",
    "x = 1\ny = 2\n... \n",
]


def _repository_cells():
    for path in (p for folder in ("lectures", "solutions", "homework")
                 for p in sorted((ROOT / folder).glob("*.ipynb"))):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                yield cell.source


def _tree(source):
    try:
        return ast.dump(ast.parse(source))
    except (SyntaxError, ValueError):
        return "does not parse"


def test_cells_become_the_python_ipython_makes_of_them():
    from IPython.core.inputtransformer2 import TransformerManager

    cells = [*TRICKY_CELLS, *_repository_cells()]
    assert len(cells) > 100
    for source in cells:
        assert _tree(python_source(source)) == \
            _tree(TransformerManager().transform_cell(source)), source
