"""Students' self-check (command line and in-notebook) and the `coursekit` command."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import pytest
from grading_helpers import (
    GRADING,
    HOMEWORK,
    NO_BIAS_CORRECTION,
    SIGN_ERROR,
    SOLUTIONS,
    edit,
    full_plan,
    homework,
    solution,
    with_cell,
    write,
)

from coursekit.cli import main
from coursekit.grading import check, check_notebook

PUBLIC = [t for t in full_plan().tests if not t.hidden]


def _namespace(notebook):
    namespace = {}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            exec(cell.source, namespace)
    return namespace


def test_check_notebook_passes_the_solution_and_explains_a_wrong_answer(tmp_path):
    # a submission made from the released notebook: its metadata carries the public checks
    stamp = homework().metadata["coursekit"]
    answer = solution()
    answer.metadata["coursekit"] = stamp
    write(answer, tmp_path / "answer.ipynb")
    assert check_notebook(tmp_path / "answer.ipynb").passed
    wrong = edit(solution(), *NO_BIAS_CORRECTION)
    wrong.metadata["coursekit"] = stamp
    write(wrong, tmp_path / "answer.ipynb")
    report = check_notebook(tmp_path / "answer.ipynb")
    verdicts = {r.test.key: r.passed for r in report.result.tests}
    # the trajectory calls adam_step, so it inherits the mistake
    assert verdicts == {t.key: t.question == "momentum" for t in PUBLIC}
    assert "FAIL  adam/first_step" in str(report) and "theta: 3 of 3 values differ" in str(report)


def test_check_notebook_on_the_homework_says_what_is_not_implemented():
    report = check_notebook(HOMEWORK / "example.ipynb")
    text = str(report)
    assert not report.passed
    assert "momentum_step is not implemented yet (cell 4, line 7)" in text
    assert "notebook: cell 9 raised NotImplementedError" in text
    assert f"0 of {len(PUBLIC)} public tests passed" in text


def test_check_in_a_notebook_runs_the_public_tests_on_live_functions(capsys, monkeypatch):
    monkeypatch.delenv("COURSEKIT_GRADER_CHILD", raising=False)
    namespace = _namespace(edit(solution(), *SIGN_ERROR))
    report = check(namespace, "example", notebook=HOMEWORK / "example.ipynb")
    printed = capsys.readouterr().out
    assert {r.test.key: r.passed for r in report.result.tests} == \
        {t.key: not t.key.startswith("momentum/") for t in PUBLIC}
    assert "FAIL  momentum/first_step" in printed
    only = check(namespace, question="adam", notebook=HOMEWORK / "example.ipynb")
    assert [r.test.key for r in only.result.tests] == ["adam/first_step"] and only.passed


def test_check_in_a_notebook_reads_the_grading_file_in_solutions(capsys, monkeypatch):
    monkeypatch.delenv("COURSEKIT_GRADER_CHILD", raising=False)
    monkeypatch.chdir(SOLUTIONS)
    report = check(_namespace(solution()), "example")
    assert report.passed and len(report.result.tests) == len(PUBLIC)


@pytest.mark.slow  # two fresh interpreters that import torch: ~5 s idle, ~15 s on a busy machine
def test_check_cell_is_skipped_when_the_grader_runs_the_notebook(tmp_path):
    notebook = with_cell(solution(), 'from coursekit.grading import check\n'
                                     'report = check(globals(), "example")\n'
                                     'assert report is None')
    write(notebook, tmp_path / "subs" / "alice.ipynb")
    status = subprocess.run(
        [sys.executable, "-m", "coursekit.cli", "grade", str(GRADING), str(tmp_path / "subs"),
         "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"],
        capture_output=True, text=True, timeout=300)
    assert status.returncode == 0, status.stderr
    assert "graded 1 submissions" in status.stdout
    with open(tmp_path / "out" / "gradebook.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[2][0] == "alice" and rows[2][-2:] == ["ok", ""]
    total, percent = rows[0].index("total"), rows[0].index("percent")
    assert float(rows[2][total]) == pytest.approx(full_plan().max_points())
    assert float(rows[2][percent]) == pytest.approx(100)


def test_cli_check_exit_status_follows_the_public_tests(capsys):
    assert main(["check", str(SOLUTIONS / "example.ipynb")]) == 0
    assert main(["check", str(HOMEWORK / "example.ipynb")]) == 1
    assert "0 of 3 public tests passed" in capsys.readouterr().out


def test_cli_grade_finds_the_grading_file_by_name_and_reports(tmp_path, monkeypatch, capsys):
    write(homework(), tmp_path / "subs" / "bob.ipynb")
    write("not json", tmp_path / "subs" / "carol.ipynb")
    monkeypatch.chdir(tmp_path)
    status = main(["grade", "example", "subs", "--out", "out", "--solutions", str(SOLUTIONS),
                   "--workers", "2", "--timeout", "60", "--cell-timeout", "10", "--no-progress"])
    assert status == 0
    assert "graded 2 submissions" in capsys.readouterr().out
    feedback = json.loads((tmp_path / "out" / "feedback" / "carol.json").read_text())
    assert feedback["status"] == "invalid" and feedback["score"] == 0


def test_cli_release_writes_homework_and_reports_errors(tmp_path, capsys):
    assert main(["release", str(SOLUTIONS), str(tmp_path / "hw")]) == 0
    assert (tmp_path / "hw" / "example.ipynb").read_bytes() == \
        (HOMEWORK / "example.ipynb").read_bytes()
    assert main(["release", str(tmp_path / "missing"), str(tmp_path / "hw")]) == 2
    assert "solutions must be a folder" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["grade", "example", ".", "--out", "o", "--workers", "0"],
    ["grade", "example", ".", "--out", "o", "--timeout", "-1"],
    ["check", "x.ipynb", "--cell-timeout", "soon"],
])
def test_cli_rejects_bad_numbers_naming_the_option(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    option = next(a for a in argv if a.startswith("--") and a != "--out")
    assert f"argument {option}" in capsys.readouterr().err


def test_cli_grade_names_a_missing_grading_file(tmp_path, capsys):
    assert main(["grade", "nope", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--solutions", str(tmp_path)]) == 2
    assert f"looked for {tmp_path / 'nope_grading.py'}" in capsys.readouterr().err


def test_check_notebook_accepts_a_path_relative_to_the_working_directory(monkeypatch):
    """`coursekit check homework/hw.ipynb` from the repository root, as the README says."""
    monkeypatch.chdir(HOMEWORK.parent)
    relative = HOMEWORK.relative_to(HOMEWORK.parent) / "example.ipynb"
    report = check_notebook(relative)
    assert "momentum_step is not implemented yet" in str(report)


def test_check_notebook_leaves_nothing_in_the_homework_folder(tmp_path):
    shutil.copy(HOMEWORK / "example.ipynb", tmp_path)
    check_notebook(tmp_path / "example.ipynb")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["example.ipynb"]
