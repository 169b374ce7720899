"""Release: markers stripped into stubs, hidden tests left behind, output deterministic."""

from __future__ import annotations

import inspect
import json
import shutil

import nbformat
import pytest
from grading_helpers import HOMEWORK, SOLUTIONS, full_plan, solution, write
from nbformat.v4 import new_code_cell, new_output

from coursekit.grading import (
    MarkerError,
    check_sync,
    checks_fingerprint,
    release,
    render_release,
    strip_code,
    strip_markdown,
)

SOLVED = '''import math


def area(radius, *, scale=1.0):
    """Area of a disc."""
    ### BEGIN SOLUTION
    return scale * math.pi * radius**2
    ### END SOLUTION


class Stepper:
    def step(self, x):
        if x > 0:
            ### BEGIN SOLUTION
            return x - 1
            ### END SOLUTION
        return x
'''


def test_stub_keeps_the_signature_and_raises_naming_the_function():
    solved, released = {}, {}
    exec(SOLVED, solved)
    exec(strip_code(SOLVED), released)
    assert inspect.signature(released["area"]) == inspect.signature(solved["area"])
    assert released["area"].__doc__ == "Area of a disc."
    with pytest.raises(NotImplementedError, match="area is not implemented yet"):
        released["area"](2.0)
    with pytest.raises(NotImplementedError, match="step is not implemented yet"):
        released["Stepper"]().step(3)
    assert released["Stepper"]().step(-1) == -1
    assert "math.pi" not in strip_code(SOLVED)


def test_top_level_region_becomes_a_stub_at_its_indentation():
    released = strip_code("x = 1\n### BEGIN SOLUTION\ny = x + 1\n### END SOLUTION\n")
    assert released == ("x = 1\n# YOUR CODE HERE\n"
                        'raise NotImplementedError("replace this line with your code")\n')


def test_markdown_answer_becomes_the_placeholder():
    source = "Why?\n\n<!-- BEGIN ANSWER -->\nBecause.\nReally.\n<!-- END ANSWER -->\nEnd."
    assert strip_markdown(source) == "Why?\n\nYOUR ANSWER HERE\nEnd."


@pytest.mark.parametrize(("source", "line", "problem"), [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", 2, "never closed"),
    ("def f():\n    return 1\n    ### END SOLUTION\n", 3, "no matching BEGIN"),
    ("### BEGIN SOLUTION\nx = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\n", 3,
     "not closed"),
    ("### BEGIN HIDDEN TESTS\nassert f() == 1\n### END HIDDEN TESTS\n", 1, "_grading.py"),
    ("x = 1\n<!-- BEGIN ANSWER -->\n", 2, "code cells use"),
])
def test_release_refuses_bad_markers_naming_notebook_cell_and_line(tmp_path, source, line,
                                                                   problem):
    notebook = solution()
    notebook.cells.insert(2, new_code_cell(source, id="broken-cell"))
    write(notebook, tmp_path / "solutions" / "example.ipynb")
    with pytest.raises(MarkerError) as error:
        release(tmp_path / "solutions", tmp_path / "homework")
    message = str(error.value)
    assert f"example.ipynb, cell 3 (code, id broken-cell), line {line}" in message
    assert problem in message
    assert not (tmp_path / "homework").exists()


def test_code_markers_in_markdown_are_refused():
    with pytest.raises(MarkerError, match="markdown cells use"):
        strip_markdown("### BEGIN SOLUTION\nsecret\n### END SOLUTION")


def test_markers_that_would_leave_invalid_python_are_refused():
    source = "if True:\n### BEGIN SOLUTION\n    x = 1\n### END SOLUTION\n"
    with pytest.raises(MarkerError, match="not valid Python"):
        strip_code(source, "cell 7")


def test_release_drops_outputs_and_metadata_and_stamps_the_assignment(tmp_path):
    notebook = solution()
    code = notebook.cells[1]
    code.outputs = [new_output("stream", name="stdout", text="secret output\n")]
    code.execution_count = 7
    code.metadata = {"tags": ["setup"], "collapsed": True, "scrolled": True}
    notebook.metadata["widgets"] = {"state": "huge"}
    write(notebook, tmp_path / "solutions" / "example.ipynb")
    release(tmp_path / "solutions", tmp_path / "homework")
    released = nbformat.read(tmp_path / "homework" / "example.ipynb", as_version=4)
    assert [c.id for c in released.cells] == [c.id for c in notebook.cells]
    assert released.cells[1].outputs == []
    assert released.cells[1].execution_count is None
    assert released.cells[1].metadata == {"tags": ["setup"]}
    assert sorted(released.metadata) == ["coursekit", "kernelspec", "language_info"]
    assert released.metadata["coursekit"] == {"assignment": "example"}  # no grading file
    assert "secret output" not in (tmp_path / "homework" / "example.ipynb").read_text()
    nbformat.validate(released)


def test_release_is_deterministic_and_matches_the_committed_homework(tmp_path):
    first = release(SOLUTIONS, tmp_path / "a")
    second = release(SOLUTIONS, tmp_path / "b")
    assert [p.name for p in first] == ["example.ipynb"]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "a" / "example.ipynb").read_bytes() == \
        (HOMEWORK / "example.ipynb").read_bytes()


def test_example_homework_is_in_sync_with_its_solutions():
    assert check_sync(SOLUTIONS, HOMEWORK) == []


def test_check_sync_reports_edited_missing_and_stale_files(tmp_path):
    homework = tmp_path / "homework"
    homework.mkdir()
    notebook = nbformat.read(HOMEWORK / "example.ipynb", as_version=4)
    notebook.cells[3].source += "\n# edited by hand"
    nbformat.write(notebook, homework / "old.ipynb")
    (homework / "example_public.json").write_text("{}")  # what older releases wrote
    problems = check_sync(SOLUTIONS, homework)
    assert len(problems) == 3
    assert "example.ipynb is missing" in problems[0]
    assert "old.ipynb has no source" in problems[1]
    assert "example_public.json is left from an older release" in problems[2]
    nbformat.write(notebook, homework / "example.ipynb")
    assert "example.ipynb is out of date (first difference in cell 4)" in \
        check_sync(SOLUTIONS, homework)[0]


def _with_checks(path, change, rehash=True):
    """Edit the public checks embedded in the notebook at ``path`` (and their hash)."""
    notebook = nbformat.read(path, as_version=4)
    stamp = notebook.metadata["coursekit"]
    checks = json.loads(stamp["public_checks"])
    change(checks)
    stamp["public_checks"] = json.dumps(checks, sort_keys=True, separators=(",", ":"))
    if rehash:
        stamp["sha256"] = checks_fingerprint(stamp["assignment"], stamp["public_checks"])
    nbformat.write(notebook, path)


def _scale_first_expected(factor):
    def change(checks):
        values = checks["tests"][0]["expected"]["dict"]["theta"]["array"]["data"]
        values[0] = values[0] * factor
    return change


def test_check_sync_tolerates_last_bit_float_differences_only(tmp_path):
    homework = tmp_path / "homework"
    shutil.copytree(HOMEWORK, homework)
    path = homework / "example.ipynb"
    # another machine's release: the last bits of an expected value differ
    _with_checks(path, _scale_first_expected(1 + 1e-15))
    assert path.read_bytes() != (HOMEWORK / "example.ipynb").read_bytes()
    assert check_sync(SOLUTIONS, homework) == []
    out_of_date = [f"{path} is out of date (its embedded public checks differ); "
                   f"run `coursekit release {SOLUTIONS} {homework}`"]
    _with_checks(path, _scale_first_expected(1 + 1e-6))
    assert check_sync(SOLUTIONS, homework) == out_of_date
    # the same tiny difference without a matching hash is an edit, not a release
    shutil.copy(HOMEWORK / "example.ipynb", path)
    _with_checks(path, _scale_first_expected(1 + 1e-15), rehash=False)
    assert check_sync(SOLUTIONS, homework) == out_of_date


def test_embedded_checks_hold_only_public_tests_and_not_the_seed():
    stamp = json.loads(render_release(SOLUTIONS)["example.ipynb"])["metadata"]["coursekit"]
    assert stamp["sha256"] == checks_fingerprint("example", stamp["public_checks"])
    public = json.loads(stamp["public_checks"])
    plan = full_plan()
    assert [(t["question"], t["name"]) for t in public["tests"]] == \
        [(t.question, t.name) for t in plan.tests if not t.hidden]
    assert not any(t["hidden"] for t in public["tests"])
    assert sorted(public["probes"]) == sorted({t.probe for t in plan.tests if not t.hidden})
    for path in HOMEWORK.iterdir():
        assert "20240917" not in path.read_text()


def test_markdown_answer_is_removed_from_the_released_notebook():
    released = render_release(SOLUTIONS)["example.ipynb"]
    original = (SOLUTIONS / "example.ipynb").read_text()
    assert "roughly 3 times larger" in original
    assert "roughly 3 times larger" not in released
    assert "YOUR ANSWER HERE" in released
