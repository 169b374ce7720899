"""Worked solutions to the lecture exercises: complete, clean, and never released to students.

They live in ``solutions/lectures/<lecture>_exercises.ipynb``, one notebook per lecture
with an ``## Exercises`` section, with a ``## Exercise N`` heading for each of its
exercises. nbval executes them with the rest of ``solutions/`` (pyproject's testpaths);
``coursekit release`` reads only the notebooks directly in the folder it is given, so
the subfolder stays out of the student release.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit.grading.authoring import release, render_release

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions" / "lectures"
LECTURES = sorted((ROOT / "lectures").glob("[0-9][0-9]_*.ipynb"))
EXERCISE_ITEM = re.compile(r"^(\d+)\.\s", re.MULTILINE)
SOLUTION_HEADING = re.compile(r"^## Exercise (\d+)\b", re.MULTILINE)


def _exercise_numbers(lecture: Path) -> list[int]:
    """The numbers of the items of a lecture's ``## Exercises`` section."""
    for cell in nbformat.read(lecture, as_version=4).cells:
        if cell.cell_type != "markdown" or "## Exercises" not in cell.source:
            continue
        section = cell.source.split("## Exercises", 1)[1].split("\n## ", 1)[0]
        return [int(n) for n in EXERCISE_ITEM.findall(section)]
    return []


def _solution(lecture: Path) -> Path:
    return SOLUTIONS / f"{lecture.stem}_exercises.ipynb"


WITH_EXERCISES = [p for p in LECTURES if _exercise_numbers(p)]


def _id(path: Path) -> str:
    return path.stem


def test_the_lectures_have_exercises():
    assert len(WITH_EXERCISES) >= 7


@pytest.mark.parametrize("lecture", WITH_EXERCISES, ids=_id)
def test_every_exercise_has_a_worked_solution(lecture):
    path = _solution(lecture)
    assert path.is_file(), f"no worked solutions for {lecture.name}: write {path}"
    text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells
                     if c.cell_type == "markdown")
    solved = [int(n) for n in SOLUTION_HEADING.findall(text)]
    assert solved == sorted(set(solved)), f"{path.name}: exercises out of order or repeated"
    assert solved == _exercise_numbers(lecture), (
        f"{path.name} solves exercises {solved}; {lecture.name} has "
        f"{_exercise_numbers(lecture)}")


@pytest.mark.parametrize("path", sorted(SOLUTIONS.glob("*.ipynb")), ids=_id)
def test_solution_notebook_is_clean_and_belongs_to_a_lecture(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert any(_solution(lecture) == path for lecture in WITH_EXERCISES), (
        f"{path.name} matches no lecture with exercises")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {i} has outputs"


def test_release_leaves_the_exercise_solutions_out():
    released = render_release(ROOT / "solutions")
    assert released, "the course's solutions release something"
    stems = {path.stem for path in SOLUTIONS.glob("*.ipynb")}
    assert not [name for name in released if any(stem in name for stem in stems)]


def test_release_does_not_descend_into_subfolders(tmp_path):
    solutions, homework = tmp_path / "solutions", tmp_path / "homework"
    (solutions / "lectures").mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION")]),
        solutions / "hw.ipynb")
    shutil.copy(_solution(WITH_EXERCISES[0]), solutions / "lectures")
    written = release(solutions, homework)
    assert written and all(path.parent == homework for path in written)
    assert sorted(p.relative_to(homework) for p in homework.rglob("*")) == sorted(
        p.relative_to(homework) for p in written)
    assert not any("exercises" in path.name for path in written)


def test_pytest_collects_the_exercise_solutions():
    """nbval (pyproject's testpaths include solutions/) finds every notebook in the subfolder."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", "solutions"], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "COURSEKIT_FAST": "1"}, timeout=300)
    collected = {line.split("::")[0] for line in out.stdout.splitlines() if "::" in line}
    expected = {str(path.relative_to(ROOT)) for path in SOLUTIONS.glob("*.ipynb")}
    assert expected and expected <= collected, out.stdout[-2000:] + out.stderr[-2000:]
