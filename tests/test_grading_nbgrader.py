"""nbgrader interop: import an nbgrader source notebook, grade it, export it back.

The nbgrader notebook here is written from nbgrader's documentation of its cell metadata
(docs/source/contributor_guide/metadata.rst, nbgraderformat/v3 schema) and of its cell types
(the "Create Assignment" toolbar): one cell of every type. The rules the exported metadata must
follow are written out below, from the same documentation, not taken from coursekit's code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit.cli import main
from coursekit.grading import build_plan, feedback, grade_notebook, load_assignment, release
from coursekit.grading.nbgrader import (
    NbgraderError,
    check_nbgrader,
    export_nbgrader,
    import_nbgrader,
)
from tests.grading_helpers import GRADING, SOLUTIONS


def _meta(grade=False, solution=False, locked=False, task=False, grade_id=None, points=None):
    meta = {"grade": grade, "solution": solution, "locked": locked, "schema_version": 3}
    if task:
        meta["task"] = True
    if grade_id is not None:
        meta["grade_id"] = grade_id
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


SECRET = "the hidden message 385"


def nbgrader_notebook() -> nbformat.NotebookNode:
    """An nbgrader source notebook with one cell of every type nbgrader documents."""
    cells = [
        new_markdown_cell("# Squares\n\nRead-only instructions.",
                          metadata=_meta(locked=True, grade_id="intro")),
        new_code_cell("import numpy as np", metadata=_meta(locked=True, grade_id="imports")),
        new_markdown_cell("## Part A: a list of squares"),
        # autograded answer with a solution region
        new_code_cell('def squares(n):\n    """The squares 1, 4, ..., n**2."""\n'
                      "    ### BEGIN SOLUTION\n    return [i * i for i in range(1, n + 1)]\n"
                      "    ### END SOLUTION",
                      metadata=_meta(solution=True, grade_id="squares")),
        # autograder tests without hidden tests
        new_code_cell('assert squares(3) == [1, 4, 9], "squares(3) should be [1, 4, 9]"\n'
                      "assert squares(0) == []",
                      metadata=_meta(grade=True, locked=True, grade_id="test_squares",
                                     points=1)),
        new_markdown_cell("## Part B: the sum of squares"),
        # autograded answer without markers: nbgrader replaces the whole cell
        new_code_cell("def sum_of_squares(n):\n    return int(np.sum(squares(n)))",
                      metadata=_meta(solution=True, grade_id="sum_of_squares")),
        # autograder tests with hidden tests
        new_code_cell("assert sum_of_squares(1) == 1\nassert sum_of_squares(2) == 5\n"
                      f"### BEGIN HIDDEN TESTS\nassert sum_of_squares(10) == 385, {SECRET!r}\n"
                      "assert sum_of_squares(0) == 0\n### END HIDDEN TESTS",
                      metadata=_meta(grade=True, locked=True, grade_id="test_sum_of_squares",
                                     points=3)),
        # manually graded answer, code
        new_code_cell("### BEGIN SOLUTION\nprint(squares(5))\n### END SOLUTION",
                      metadata=_meta(grade=True, solution=True, grade_id="show_squares",
                                     points=1)),
        # manually graded answer, markdown, whole cell
        new_markdown_cell("The sum grows like $n^3/3$.",
                          metadata=_meta(grade=True, solution=True, grade_id="growth",
                                         points=2)),
        # manually graded answer, markdown, with a solution region
        new_markdown_cell("Why start at 1?\n\n### BEGIN SOLUTION\nBecause 0 adds nothing.\n"
                          "### END SOLUTION",
                          metadata=_meta(grade=True, solution=True, grade_id="why_one",
                                         points=0.5)),
        # manually graded task
        new_markdown_cell("Plot the squares and describe what you see.",
                          metadata=_meta(locked=True, task=True, grade_id="plot_task",
                                         points=2)),
        new_code_cell("print('an ordinary cell')"),
    ]
    for i, cell in enumerate(cells):
        cell.id = f"c{i:02d}"
    return new_notebook(cells=cells, metadata={"kernelspec": {
        "display_name": "Python 3", "language": "python", "name": "python3"}})


def _cells(notebook: nbformat.NotebookNode) -> list:
    return [(c.cell_type, c.id, c.source, c.metadata.get("nbgrader")) for c in notebook.cells]


@pytest.fixture
def imported(tmp_path):
    source = tmp_path / "nbgrader" / "squares.ipynb"
    source.parent.mkdir()
    nbformat.write(nbgrader_notebook(), source)
    result = import_nbgrader(source, tmp_path / "solutions")
    return tmp_path, result


def test_import_writes_a_solution_notebook_and_grading_file_with_the_points(imported):
    _, result = imported
    notebook = nbformat.read(result.notebook, as_version=4)
    sources = [c.source for c in notebook.cells]
    assert not any("assert" in s for s in sources)  # test cells are removed
    assert not any("HIDDEN" in s for s in sources)
    assert len(notebook.cells) == len(nbgrader_notebook().cells) - 2
    by_id = {c.id: c for c in notebook.cells}
    assert by_id["c06"].source.startswith("### BEGIN SOLUTION\n")  # wrapped: nbgrader clears it
    assert by_id["c09"].source == ("<!-- BEGIN ANSWER -->\nThe sum grows like $n^3/3$.\n"
                                   "<!-- END ANSWER -->")
    assert "<!-- BEGIN ANSWER -->\nBecause 0 adds nothing.\n<!-- END ANSWER -->" \
        in by_id["c10"].source
    assert by_id["c11"].metadata["nbgrader"]["task"] is True  # metadata kept

    assignment = load_assignment(result.grading)
    points = {q.id: q.points for q in assignment.questions}
    assert points == {"test_squares": 1, "test_sum_of_squares": 3}
    assert [q.title for q in assignment.questions] == ["Part A: a list of squares",
                                                        "Part B: the sum of squares"]
    hidden = [t for q in assignment.questions for t in q.tests if t.hidden]
    assert len(hidden) == 1 and SECRET in hidden[0].inputs["code"]
    public = [t for q in assignment.questions for t in q.tests if not t.hidden]
    assert not any(SECRET in t.inputs["code"] for t in public)
    text = result.grading.read_text()
    for grade_id, points in (("show_squares", "1 point"), ("growth", "2 points"),
                             ("why_one", "0.5 points"), ("plot_task", "2 points")):
        assert f"``{grade_id}``" in text and points in text.split(grade_id)[1].split("\n")[0]
    assert result.by_people == (("show_squares", "manually graded answer", 1),
                                ("growth", "manually graded answer", 2),
                                ("why_one", "manually graded answer", 0.5),
                                ("plot_task", "manually graded task", 2))


def test_imported_notebook_releases_without_solutions_tests_or_nbgrader_metadata(imported):
    tmp_path, result = imported
    release(result.notebook.parent, tmp_path / "homework")
    released = json.loads((tmp_path / "homework" / "squares.ipynb").read_text())
    text = json.dumps(released["cells"])
    for secret in ("i * i", "int(np.sum", "print(squares(5))", "n^3/3", "0 adds nothing",
                   SECRET, "BEGIN", "nbgrader"):
        assert secret not in text
    assert "coursekit_nbgrader" not in released["metadata"]
    assert all(set(c["metadata"]) <= {"tags"} for c in released["cells"])
    assert text.count("YOUR ANSWER HERE") == 2
    assert "sum_of_squares(1) == 1" in released["metadata"]["coursekit"]["public_checks"]
    assert "sum_of_squares(10)" not in released["metadata"]["coursekit"]["public_checks"]


def _grade(path: Path, grading: Path):
    plan = build_plan(load_assignment(grading))
    return plan, grade_notebook(path, plan, timeout=60, cell_timeout=20)


def test_imported_solution_earns_full_marks_and_a_stub_nothing(imported):
    tmp_path, result = imported
    plan, full = _grade(result.notebook, result.grading)
    assert full.status == "ok" and full.score() == plan.max_points() == 4
    release(result.notebook.parent, tmp_path / "homework")
    _, stub = _grade(tmp_path / "homework" / "squares.ipynb", result.grading)
    assert stub.score() == 0
    messages = {r.test.key: r.message for r in stub.tests}
    assert "NotImplementedError: squares is not implemented yet" in \
        messages["test_squares/asserts"]
    # nbgrader clears a solution cell without markers whole, its def included
    assert "name 'sum_of_squares' is not defined" in messages["test_sum_of_squares/asserts"]


def test_failing_assert_reaches_public_feedback_but_a_hidden_one_does_not(imported):
    tmp_path, result = imported
    notebook = nbformat.read(result.notebook, as_version=4)
    for cell in notebook.cells:
        cell.source = cell.source.replace("range(1, n + 1)", "range(n)")  # 0, 1, 4
        cell.source = cell.source.replace("int(np.sum(squares(n)))",
                                          "int(np.sum(squares(n))) if n < 5 else 0")
    wrong = tmp_path / "wrong.ipynb"
    nbformat.write(notebook, wrong)
    plan, graded = _grade(wrong, result.grading)
    verdicts = {r.test.key: r for r in graded.tests}
    assert not verdicts["test_squares/asserts"].passed
    assert "line 1: assert squares(3) == [1, 4, 9]" in verdicts["test_squares/asserts"].message
    assert "squares(3) should be [1, 4, 9]" in verdicts["test_squares/asserts"].message
    hidden = verdicts["test_sum_of_squares/hidden_asserts"]
    assert not hidden.passed
    report = json.dumps(feedback(graded, plan))
    assert "squares(3) should be [1, 4, 9]" in report
    assert SECRET not in report and "385" not in report


def test_public_asserts_pass_while_hidden_ones_fail_half_the_points(imported):
    tmp_path, result = imported
    notebook = nbformat.read(result.notebook, as_version=4)
    for cell in notebook.cells:
        cell.source = cell.source.replace("int(np.sum(squares(n)))",
                                          "int(np.sum(squares(n))) if n < 5 else -1")
    wrong = tmp_path / "wrong.ipynb"
    nbformat.write(notebook, wrong)
    plan, graded = _grade(wrong, result.grading)
    assert graded.score("test_squares") == 1
    assert graded.score("test_sum_of_squares") == 1.5
    hidden = next(r for r in graded.tests if r.test.key == "test_sum_of_squares/hidden_asserts")
    assert SECRET in hidden.message  # the instructor's record has it
    report = json.dumps(feedback(graded, plan))
    assert SECRET not in report


def test_import_then_export_gives_the_nbgrader_notebook_back(imported):
    tmp_path, result = imported
    path = export_nbgrader(result.notebook, result.grading, tmp_path / "source" / "squares")
    exported = nbformat.read(path, as_version=4)
    assert _cells(exported) == _cells(nbgrader_notebook())
    assert check_nbgrader(exported) == check_nbgrader(nbgrader_notebook())
    assert "coursekit_nbgrader" not in exported.metadata


def test_round_trip_keeps_points_edited_in_the_grading_file(imported):
    tmp_path, result = imported
    text = result.grading.read_text().replace("points=1.5,", "points=2.5,")
    result.grading.write_text(text)
    path = export_nbgrader(result.notebook, result.grading, tmp_path / "out")
    cells = {c.id: c for c in nbformat.read(path, as_version=4).cells}
    assert cells["c07"].metadata["nbgrader"]["points"] == 5
    assert cells["c04"].metadata["nbgrader"]["points"] == 1


def test_a_question_added_after_the_import_gets_a_generated_test_cell(imported):
    tmp_path, result = imported
    text = result.grading.read_text().replace("ASSIGNMENT = Assignment(seed=0, questions=[", """\
@probe
def cubes(student, n):
    return [student["squares"](n)[i] * (i + 1) for i in range(n)]


def cubes_reference(n):
    return [float(i ** 3) for i in range(1, n + 1)]


ASSIGNMENT = Assignment(seed=0, questions=[
    Question('cubes', 'Cubes from squares', [
        Test('four', cubes, reference=cubes_reference, points=2, inputs={'n': 4}),
    ]),""")
    result.grading.write_text(text)
    exported = nbformat.read(export_nbgrader(result.notebook, result.grading, tmp_path / "x"),
                             as_version=4)
    cells = {c.id: c for c in exported.cells}
    assert cells["test-cubes"].metadata["nbgrader"] == {
        "grade": True, "grade_id": "test_cubes", "locked": True, "points": 2,
        "schema_version": 3, "solution": False}
    order = [c.id for c in exported.cells]
    assert order.index("test-cubes") == order.index("c03") + 2  # after squares and its tests
    assert "[1.0, 8.0, 27.0, 64.0], rtol=1e-06, atol=1e-08" in cells["test-cubes"].source
    assert _cells(nbformat.from_dict({"cells": [c for c in exported.cells
                                                if c.id != "test-cubes"]})) \
        == _cells(nbgrader_notebook())
    errors = _run_cells(exported)
    assert errors == dict.fromkeys(errors) and "test_cubes" in errors


# Exporting a coursekit assignment ---------------------------------------------------------

GRADE_ID = re.compile(r"^[a-zA-Z0-9_\-]*$")


def assert_valid_nbgrader(notebook: nbformat.NotebookNode) -> None:
    """nbgrader's rules for cell metadata (schema version 3), written from its documentation:
    required keys, types, grade_id pattern and uniqueness, points on grade cells, markdown
    grade cells also solution cells and the other way round, tasks markdown."""
    ids = set()
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            continue
        assert set(meta) <= {"schema_version", "grade", "locked", "solution", "task", "grade_id",
                             "points", "checksum", "cell_type"}
        assert meta["schema_version"] == 3
        for key in ("grade", "locked", "solution"):
            assert isinstance(meta[key], bool)
        if meta["grade"] or meta["solution"] or meta["locked"]:
            assert meta["grade_id"] and GRADE_ID.match(meta["grade_id"])
            assert meta["grade_id"] not in ids
            ids.add(meta["grade_id"])
        if meta["grade"]:
            assert isinstance(meta["points"], (int, float)) and meta["points"] >= 0
        if cell.cell_type == "markdown" and not meta.get("task"):
            assert meta["grade"] == meta["solution"]
        if meta.get("task"):
            assert cell.cell_type == "markdown"


def _clear_solutions(source: str, kind: str) -> str:
    """nbgrader's release of a solution cell, from its documentation: each region between
    ### BEGIN SOLUTION and ### END SOLUTION becomes the stub, at the marker's indent."""
    stub = "# YOUR CODE HERE\nraise NotImplementedError()" if kind == "code" \
        else "YOUR ANSWER HERE"
    out, inside = [], False
    for line in source.split("\n"):
        if line.strip() == "### BEGIN SOLUTION":
            indent = line[:line.index("#")]
            out += [indent + s for s in stub.split("\n")]
            inside = True
        elif line.strip() == "### END SOLUTION":
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _run_cells(notebook: nbformat.NotebookNode) -> dict[str, BaseException | None]:
    """Execute the code cells in order in one namespace, as nbgrader's autograder does:
    the error (or None) of each grade cell, by grade_id."""
    namespace, errors = {"__name__": "__main__"}, {}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        try:
            exec(compile(cell.source, cell.id, "exec"), namespace)
            error = None
        except Exception as exc:
            error = exc
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            errors[meta["grade_id"]] = error
    return errors


@pytest.fixture(scope="module")
def exported_example(tmp_path_factory):
    out = tmp_path_factory.mktemp("source")
    path = export_nbgrader(SOLUTIONS / "example.ipynb", GRADING, out)
    return nbformat.read(path, as_version=4)


def test_export_of_a_coursekit_assignment_has_valid_nbgrader_metadata(exported_example):
    assert_valid_nbgrader(exported_example)
    tests = [c for c in exported_example.cells if c.metadata.get("nbgrader", {}).get("grade")
             and c.cell_type == "code"]
    plan = build_plan(load_assignment(GRADING))
    assert [c.metadata["nbgrader"]["points"] for c in tests] == \
        [plan.max_points(q) for q, _ in plan.questions]
    assert all(c.metadata["nbgrader"]["locked"] for c in tests)
    cells = {c.id: c.source for c in tests}
    for t in plan.tests:
        public, _, rest = cells[f"test-{t.question}"].partition("### BEGIN HIDDEN TESTS")
        assert f"# {t.name}" in (rest if t.hidden else public)
        assert f"# {t.name}" not in (public if t.hidden else rest)
    answers = {c.id: c.metadata["nbgrader"] for c in exported_example.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    assert set(answers) == {"momentum-code", "adam-code", "trajectory-code", "bias-text"}
    assert answers["bias-text"]["grade"] and answers["bias-text"]["points"] == 0
    bias = next(c for c in exported_example.cells if c.id == "bias-text")
    assert "### BEGIN SOLUTION" in bias.source and "<!--" not in bias.source


def test_exported_tests_pass_on_the_solution_and_fail_on_the_stub(exported_example):
    errors = _run_cells(exported_example)
    assert set(errors) == {"test_momentum", "test_adam", "test_trajectory"}
    assert errors == dict.fromkeys(errors)  # every test cell passes, hidden tests included
    stub = nbformat.from_dict(json.loads(json.dumps(exported_example)))
    for cell in stub.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = _clear_solutions(cell.source, cell.cell_type)
    failed = _run_cells(stub)
    assert all(isinstance(e, NotImplementedError) for e in failed.values())


def test_exported_tests_catch_a_wrong_momentum_step_and_only_it(exported_example):
    wrong = nbformat.from_dict(json.loads(json.dumps(exported_example)))
    cell = next(c for c in wrong.cells if c.id == "momentum-code")
    cell.source = cell.source.replace("theta - lr * velocity", "theta + lr * velocity")
    errors = _run_cells(wrong)
    assert isinstance(errors["test_momentum"], AssertionError)
    assert str(errors["test_momentum"]) == "first_step: theta differs from the expected value"
    assert errors["test_adam"] is None and errors["test_trajectory"] is None


def test_exported_test_cells_follow_the_functions_they_test(exported_example):
    order = [c.id for c in exported_example.cells]
    for question, function in (("momentum", "momentum-code"), ("adam", "adam-code"),
                               ("trajectory", "trajectory-code")):
        assert order.index(f"test-{question}") == order.index(function) + 1


def test_exported_asserts_use_the_tolerances_of_the_tests(exported_example):
    cell = next(c for c in exported_example.cells if c.id == "test-momentum")
    assert "rtol=1e-06, atol=1e-08" in cell.source
    expected = build_plan(load_assignment(GRADING)).tests[0].expected["theta"]
    assert f"np.array({expected.tolist()!r}, dtype=np.float64)" in cell.source
    assert np.allclose(expected, np.array([1.0, -2.0, 0.5]) - 0.1 * np.array([0.39, -0.1, 1.82]))


# Errors -----------------------------------------------------------------------------------

def _broken(tmp_path: Path, edit) -> Path:
    notebook = nbgrader_notebook()
    edit(notebook)
    path = tmp_path / "broken.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.mark.parametrize(("edit", "message"), [
    (lambda nb: [c.metadata.pop("nbgrader", None) for c in nb.cells],
     "not an nbgrader notebook"),
    (lambda nb: nb.cells[7].metadata["nbgrader"].update(grade_id="test_squares"),
     "cell 8 (code, grade_id test_squares): duplicate grade_id 'test_squares' (also cell 5)"),
    (lambda nb: nb.cells[4].metadata["nbgrader"].pop("points"),
     "cell 5 (code, grade_id test_squares): a grade cell needs points"),
    (lambda nb: setattr(nb.cells[3], "source", nb.cells[3].source.replace(
        "    ### END SOLUTION", "")), "cell 4 (code, grade_id squares), line 3"),
    (lambda nb: setattr(nb.cells[7], "source", nb.cells[7].source.replace(
        "### END HIDDEN TESTS", "")), "cell 8 (code, grade_id test_sum_of_squares), line 3"),
    (lambda nb: setattr(nb.cells[12], "source", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"),
     "cell 13 (code): ### BEGIN SOLUTION in a cell that is not a solution cell"),
    (lambda nb: nb.cells[4].metadata["nbgrader"].update(points=0),
     "worth 0 points cannot be a coursekit test"),
])
def test_import_names_the_cell_that_breaks_a_rule(tmp_path, edit, message):
    path = _broken(tmp_path, edit)
    with pytest.raises(NbgraderError, match=re.escape(message)):
        import_nbgrader(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_imports_and_exports_and_reports_errors_with_status_1(tmp_path, capsys):
    source = tmp_path / "squares.ipynb"
    nbformat.write(nbgrader_notebook(), source)
    assert main(["import-nbgrader", str(source), "--out", str(tmp_path / "sol"),
                 "--assignment", "hw9"]) == 0
    out = capsys.readouterr().out
    assert "hw9_grading.py" in out and "2 autograded questions (4 points)" in out
    assert "plot_task (2)" in out
    assert main(["import-nbgrader", str(source), "--out", str(tmp_path / "sol"),
                 "--assignment", "hw9"]) == 1
    assert "hw9_grading.py already exist; choose another --out" in capsys.readouterr().err
    assert main(["export-nbgrader", str(tmp_path / "sol" / "hw9.ipynb"), "--out",
                 str(tmp_path / "src")]) == 0
    exported = nbformat.read(tmp_path / "src" / "hw9.ipynb", as_version=4)
    assert _cells(exported) == _cells(nbgrader_notebook())
    broken = _broken(tmp_path, lambda nb: nb.cells[4].metadata["nbgrader"].pop("points"))
    assert main(["import-nbgrader", str(broken), "--out", str(tmp_path / "x")]) == 1
    assert "grade_id test_squares): a grade cell needs points" in capsys.readouterr().err


# nbgrader itself (optional: pip install 'coursekit[nbgrader]') -----------------------------

@pytest.mark.slow
def test_nbgrader_releases_the_exported_notebooks_and_autogrades_their_solutions(tmp_path,
                                                                                imported):
    """nbgrader itself: generate_assignment accepts both exported notebooks (its metadata
    checks), releases them without solutions or hidden tests, and autograde gives the
    solutions every autograded point and the released stubs none."""
    pytest.importorskip("nbgrader")
    from nbgrader.api import Gradebook

    _, result = imported
    course = tmp_path / "course"
    (course / "source" / "ps1").mkdir(parents=True)
    export_nbgrader(result.notebook, result.grading, course / "source" / "ps1")
    export_nbgrader(SOLUTIONS / "example.ipynb", GRADING, course / "source" / "ps1")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'course'\n"
        "c.CourseDirectory.db_assignments = [dict(name='ps1')]\n"
        "c.CourseDirectory.db_students = [dict(id='solved'), dict(id='stub')]\n")
    scripts = str(Path(sys.executable).parent)  # nbgrader runs alembic from the PATH
    env = {**os.environ, "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")])}

    def nbgrader(*args: str) -> None:
        run = subprocess.run([shutil.which("nbgrader", path=scripts), *args, "--force"],
                             cwd=course, capture_output=True, text=True, timeout=300, env=env)
        assert run.returncode == 0, run.stdout + run.stderr

    nbgrader("generate_assignment", "ps1")
    released = course / "release" / "ps1"
    for name in ("squares", "example"):
        text = json.dumps([c.source for c in nbformat.read(released / f"{name}.ipynb",
                                                            as_version=4).cells])
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
        assert "YOUR CODE HERE" in text
    assert SECRET not in (released / "squares.ipynb").read_text()
    for student, folder in (("solved", course / "source" / "ps1"), ("stub", released)):
        shutil.copytree(folder, course / "submitted" / student / "ps1")
        nbgrader("autograde", "ps1", "--student", student)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for name, autograded in (("squares", 4), ("example", 10)):
            for student, expected in (("solved", autograded), ("stub", 0)):
                notebook = gradebook.find_submission_notebook(name, "ps1", student)
                assert sum(g.auto_score or 0 for g in notebook.grades) == expected
