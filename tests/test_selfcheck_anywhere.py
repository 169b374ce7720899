"""A released notebook checks itself wherever it is opened: alone, renamed, moved, offline.

The release puts the public tests inside the notebook's metadata with a hash of them
(``coursekit.grading.selfcheck``). HW1 is released, copied alone under another name into
an empty folder, given one part of the solution, and checked there with the ``coursekit``
command as a student runs it. The in-kernel ``check(globals())`` is tested on the small
example assignment, in each of the places it looks for its notebook. Edited embedded
checks are refused by the self-check, and grading ignores them whatever they say.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
from grading_helpers import GRADING, HOMEWORK, SIGN_ERROR, SOLUTIONS, edit, points_without, solution

from coursekit.grading import (
    EditedChecksError,
    GradingSpecError,
    build_plan,
    check,
    checks_fingerprint,
    grade,
    load_assignment,
    load_public_plan,
    release,
)

ROOT = Path(__file__).resolve().parents[1]
HW1 = "hw1_primer_optimizers"
EXAMPLE_PUBLIC = [t for t in build_plan(load_assignment(GRADING)).tests if not t.hidden]


def _namespace(notebook: nbformat.NotebookNode) -> dict:
    namespace = {}
    for cell in notebook.cells:
        if cell.cell_type == "code" and "check(" not in cell.source:
            exec(cell.source, namespace)
    return namespace


def _edit_checks(path: Path, change, rehash: bool = False) -> None:
    """Apply ``change`` to the public checks embedded in the notebook at ``path``, as a
    student editing the file by hand would (``rehash``: and recompute the hash too)."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    stamp = notebook["metadata"]["coursekit"]
    checks = json.loads(stamp["public_checks"])
    change(checks)
    stamp["public_checks"] = json.dumps(checks)
    if rehash:
        stamp["sha256"] = checks_fingerprint(stamp["assignment"], stamp["public_checks"])
    path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")


def _loose(checks: dict) -> None:
    """Tolerances so wide that any number passes."""
    for test in checks["tests"]:
        test["rtol"], test["atol"] = 1e12, 1e12


def _verdicts(output: str) -> dict[str, bool]:
    return {key: verdict == "PASS"
            for verdict, key in re.findall(r"^  (PASS|FAIL)  (\S+)", output, re.MULTILINE)}


@pytest.mark.slow  # a release of HW1 and a run of its notebook: ~40 s on a busy machine
def test_hw1_copied_alone_under_another_name_checks_itself(tmp_path):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    for name in (f"{HW1}.ipynb", f"{HW1}_grading.py"):
        shutil.copy(ROOT / "solutions" / name, solutions / name)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)  # where the launch links point
    written = release(solutions, tmp_path / "homework")
    assert [p.name for p in written] == [f"{HW1}.ipynb"]  # the checks travel inside it

    # the student fills in one part, Adam, with the solution's cell
    answer = nbformat.read(solutions / f"{HW1}.ipynb", as_version=4)
    notebook = nbformat.read(written[0], as_version=4)
    adam = next(c for c in answer.cells if c.id == "adam-code")
    stub = next(c for c in notebook.cells if c.id == "adam-code")
    assert "NotImplementedError" in stub.source and "NotImplementedError" not in adam.source
    stub.source = adam.source
    folder = tmp_path / "somewhere else"
    folder.mkdir()
    mine = folder / "my homework (copy).ipynb"
    nbformat.write(notebook, mine)

    def coursekit_check() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "coursekit.cli", "check", mine.name],
                              cwd=folder, capture_output=True, text=True, timeout=500)

    run = coursekit_check()
    assert run.returncode == 1, run.stderr  # some public tests fail
    public = [t for t in build_plan(load_assignment(solutions / f"{HW1}_grading.py")).tests
              if not t.hidden]
    # Adam's tests pass; every other public test calls a part still left to write
    assert _verdicts(run.stdout) == {t.key: t.question == "adam" for t in public}
    assert sorted(p.name for p in folder.iterdir()) == [mine.name]

    _edit_checks(mine, _loose)
    run = coursekit_check()
    assert run.returncode == 2
    assert "were changed after `coursekit release`" in run.stderr
    assert mine.name in run.stderr and "PASS" not in run.stdout


@pytest.fixture
def released(tmp_path) -> Path:
    """The example's released notebook, alone in a folder, under another name."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    return Path(shutil.copy(HOMEWORK / "example.ipynb", folder / "renamed.ipynb"))


@pytest.fixture
def kernel(monkeypatch, tmp_path):
    """A kernel outside the grader, started in an empty folder, that names no notebook."""
    monkeypatch.delenv("COURSEKIT_GRADER_CHILD", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    return empty


def _passes_every_public_test(report) -> bool:
    return report.passed and [r.test.key for r in report.result.tests] == \
        [t.key for t in EXAMPLE_PUBLIC]


def test_the_kernel_finds_its_released_notebook_in_its_folder_under_any_name(
        released, kernel, monkeypatch, capsys):
    monkeypatch.chdir(released.parent)  # where Jupyter, VS Code and nbclient start it
    report = check(_namespace(solution()))
    assert _passes_every_public_test(report)
    assert report.title == "Checking example"  # the name comes from the notebook
    wrong = check(_namespace(edit(solution(), *SIGN_ERROR)), "example", question="momentum")
    assert not wrong.passed and "FAIL  momentum/first_step" in capsys.readouterr().out


def test_the_kernel_follows_jupyter_servers_and_vs_codes_notebook_path(released, kernel,
                                                                       monkeypatch):
    namespace = _namespace(solution())
    assert _passes_every_public_test(check({**namespace, "__session__": str(released)}))
    assert _passes_every_public_test(
        check({**namespace, "__vsc_ipynb_file__": str(released)}, "example"))
    monkeypatch.setenv("JPY_SESSION_NAME", str(released))
    assert _passes_every_public_test(check(namespace))
    # renamed after the kernel started: the session's name is stale, the folder is searched
    monkeypatch.setenv("JPY_SESSION_NAME", str(released.with_name("untitled.ipynb")))
    with pytest.raises(GradingSpecError, match="Name the notebook"):
        check(namespace)
    monkeypatch.chdir(released.parent)
    assert _passes_every_public_test(check(namespace))


def test_the_kernel_asks_colab_for_its_notebook(released, kernel, monkeypatch):
    """Colab keeps the notebook in the browser; its kernel asks the front end for it."""
    asked = []

    def blocking_request(kind, request="", timeout_sec=None):
        asked.append(kind)
        return {"ipynb": json.loads(released.read_text())}

    message = types.ModuleType("google.colab._message")
    message.blocking_request = blocking_request
    colab = types.ModuleType("google.colab")
    colab._message = message
    google = types.ModuleType("google")
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab._message", message)
    assert _passes_every_public_test(check(_namespace(solution()), "example"))
    assert asked == ["get_ipynb"]


def test_a_kernel_that_cannot_find_its_notebook_says_how_to_name_it(released, kernel):
    namespace = _namespace(solution())
    with pytest.raises(GradingSpecError, match=r'notebook="path/to/your.ipynb"'):
        check(namespace, "example")
    assert _passes_every_public_test(check(namespace, notebook=released))


def test_the_embedded_checks_survive_a_front_end_rewriting_the_json(released):
    """JupyterLab and Colab re-serialise metadata (JavaScript writes 1.0 as 1); the checks
    are one string inside it, so their hash and values come through unchanged."""
    notebook = json.loads(released.read_text())
    released.write_text(json.dumps(notebook, ensure_ascii=True, separators=(",", ":")))
    plan = load_public_plan(released)
    assert [(t.key, t.rtol, t.atol) for t in plan.tests] == \
        [(t.key, t.rtol, t.atol) for t in EXAMPLE_PUBLIC]


def test_edited_embedded_checks_are_reported_and_not_run(released, kernel, monkeypatch):
    _edit_checks(released, _loose)
    wrong = _namespace(edit(solution(), *SIGN_ERROR))
    with pytest.raises(EditedChecksError, match="changed after `coursekit release`"):
        check(wrong, notebook=released)
    monkeypatch.chdir(released.parent)
    with pytest.raises(EditedChecksError, match=r"renamed\.ipynb"):
        check(wrong)
    # a fresh copy's checks can still be used on the edited notebook
    assert not check(wrong, notebook=HOMEWORK / "example.ipynb").passed


def test_several_released_copies_in_a_folder_are_fine_unless_their_checks_differ(released,
                                                                                 kernel,
                                                                                 monkeypatch):
    monkeypatch.chdir(released.parent)
    copy = Path(shutil.copy(released, released.with_name("renamed (copy).ipynb")))
    namespace = _namespace(solution())
    assert _passes_every_public_test(check(namespace))
    _edit_checks(copy, _loose)
    with pytest.raises(GradingSpecError, match=r"renamed \(copy\).ipynb, renamed.ipynb"):
        check(namespace)
    assert _passes_every_public_test(check(namespace, notebook=released))


def test_grading_ignores_the_embedded_checks_even_a_forgery_with_a_valid_hash(
        tmp_path, kernel, capsys):
    """The hash catches edits, it is no signature: a student can recompute it. So grading
    never reads the embedded checks; the grading file decides."""
    submission = tmp_path / "subs" / "mallory.ipynb"
    submission.parent.mkdir()
    notebook = nbformat.read(HOMEWORK / "example.ipynb", as_version=4)
    wrong = edit(solution(), *SIGN_ERROR)
    notebook.cells = wrong.cells
    nbformat.write(notebook, submission)
    _edit_checks(submission, _loose, rehash=True)
    # the forged checks pass the wrong momentum step in the self-check ...
    assert check(_namespace(wrong), notebook=submission).passed
    # ... and grading, from the grading file, takes its points away all the same
    [result] = grade(GRADING, submission.parent, tmp_path / "out", workers=1, timeout=120,
                     cell_timeout=60, progress=False)
    full = build_plan(load_assignment(GRADING))
    assert result.status == "ok"
    assert result.score() == pytest.approx(points_without(full, "momentum/"))
    assert result.score() < full.max_points()


def test_a_solution_notebook_uses_its_grading_file(kernel, monkeypatch):
    """The instructor's notebooks are not released: they use the grading file beside them."""
    assert [t.key for t in load_public_plan(SOLUTIONS / "example.ipynb").tests] == \
        [t.key for t in EXAMPLE_PUBLIC]
    monkeypatch.chdir(SOLUTIONS)  # where nbval runs the solutions
    assert _passes_every_public_test(check(_namespace(solution()), "example"))
