"""Students check their own work against an assignment's public tests.

From a terminal, ``coursekit check homework/hw1.ipynb`` runs the saved notebook
in a separate process exactly as the grader will, then runs the public tests
and prints which pass, with what differs. From inside the notebook::

    from coursekit.grading import check
    check(globals(), "hw1")                      # every public test
    check(globals(), "hw1", question="adam")     # one question

runs the public tests on the functions defined so far, in the notebook's own
kernel, with no need to save. Both read ``hw1_public.json`` (written by
``coursekit release`` beside the homework) or, in ``solutions/``,
``hw1_grading.py`` (public tests only).

Passing the public tests is a good sign, not a grade: hidden tests call the
same functions on other inputs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursekit.grading.child import StudentNamespace, call_probe, decode, describe, encode
from coursekit.grading.grader import DEFAULT_CELL_TIMEOUT, DEFAULT_TIMEOUT, grade_notebook
from coursekit.grading.spec import (
    GradingSpecError,
    Plan,
    build_plan,
    load_assignment,
    plan_from_json,
)
from coursekit.grading.verdict import SubmissionResult, TestResult, judge_value

__all__ = ["CheckReport", "check", "check_notebook", "load_public_plan"]


def load_public_plan(folder: str | Path, assignment: str) -> Plan:
    """The public tests of ``assignment``, from ``folder``.

    Reads ``<assignment>_public.json`` (homework) or else ``<assignment>_grading.py``
    (solutions), keeping only public tests.

    Raises
    ------
    GradingSpecError
        If neither file is in ``folder``.
    """
    folder = Path(folder)
    public = folder / f"{assignment}_public.json"
    if public.is_file():
        return plan_from_json(public.read_text(encoding="utf-8"), str(public))
    grading = folder / f"{assignment}_grading.py"
    if grading.is_file():
        return build_plan(load_assignment(grading), include_hidden=False)
    raise GradingSpecError(f"no public checks for assignment {assignment!r}: expected "
                           f"{public} (from `coursekit release`) or {grading}")


def _assignment_of(notebook: Path) -> str:
    """The assignment a notebook belongs to: its release metadata, else its file name."""
    try:
        name = json.loads(notebook.read_text(encoding="utf-8"))["metadata"]["coursekit"][
            "assignment"]
    except (OSError, ValueError, KeyError, TypeError):
        name = None
    return name if isinstance(name, str) and name else notebook.stem


@dataclass(frozen=True)
class CheckReport:
    """The public tests' results, printable for a student."""

    title: str
    result: SubmissionResult

    @property
    def passed(self) -> bool:
        """True when every public test passed."""
        return all(r.passed for r in self.result.tests)

    def __str__(self) -> str:
        tests = self.result.tests
        lines = [f"{self.title}: {len(tests)} public test{'s' * (len(tests) != 1)}"]
        width = max((len(r.test.key) for r in tests), default=0)
        for r in tests:
            verdict = "PASS" if r.passed else "FAIL"
            about = r.test.description if r.passed else r.message
            lines.append(f"  {verdict}  {r.test.key:<{width}}  {_fmt(r.points)}/"
                         f"{_fmt(r.test.points)}  {about}")
        for p in self.result.cell_problems:
            what = "raised " if p.status == "error" else ""
            lines.append(f"  notebook: cell {p.cell} {what}{p.error}")
        if self.result.status not in ("ok", "errors", "cell_timeout"):
            lines.append(f"  notebook: {self.result.status}: {self.result.detail}")
        earned = sum(r.passed for r in tests)
        lines.append(f"{earned} of {len(tests)} public tests passed "
                     f"({_fmt(self.result.score())} of "
                     f"{_fmt(sum(r.test.points for r in tests))} points). Grading adds hidden "
                     "tests on other inputs, so passing these is necessary, not sufficient.")
        return "\n".join(lines)

    def __repr__(self) -> str:
        tests = self.result.tests
        return f"<CheckReport: {sum(r.passed for r in tests)}/{len(tests)} public tests passed>"


def _fmt(points: float) -> str:
    return f"{points:g}"


def check_notebook(path: str | Path, *, checks: str | Path | None = None,
                   timeout: float = DEFAULT_TIMEOUT,
                   cell_timeout: float = DEFAULT_CELL_TIMEOUT) -> CheckReport:
    """Run the saved notebook at ``path`` as the grader would, with its public tests.

    The notebook runs in a separate process from its own folder, with the
    grader's resource limits but as the student's own user. ``checks`` is
    the public-checks file; by default ``<assignment>_public.json`` beside the
    notebook, the assignment named by the notebook's metadata or file name.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"no notebook at {str(path)!r}")
    path = Path(path).resolve()  # the child starts in the notebook's folder
    if checks is not None:
        checks = Path(checks)
        plan = plan_from_json(checks.read_text(encoding="utf-8"), str(checks))
    else:
        plan = load_public_plan(path.parent, _assignment_of(path))
    # the student's own notebook, from its own folder: limits, but no sandbox user
    result = grade_notebook(path, plan.select(public_only=True), timeout=timeout,
                            cell_timeout=cell_timeout, cwd=path.parent, isolate=False)
    return CheckReport(f"Checking {path.name}", result)


def check(namespace: dict[str, Any], assignment: str, *, question: str | None = None,
          folder: str | Path = ".") -> CheckReport | None:
    """Run the public tests on a live notebook namespace and print the results.

    Parameters
    ----------
    namespace : dict
        The notebook's ``globals()``.
    assignment : str
        The assignment's name (``"hw1"`` for ``hw1.ipynb``).
    question : str, optional
        Check one question only.
    folder : path
        Where ``<assignment>_public.json`` is; the notebook's folder by default.

    Returns
    -------
    CheckReport or None
        None when called while the grader runs the notebook: the grader runs the
        tests itself, so the call only prints that it was skipped.
    """
    if os.environ.get("COURSEKIT_GRADER_CHILD") == "1":
        print("coursekit check: skipped while grading")
        return None
    if not isinstance(namespace, dict):
        raise TypeError(f"namespace must be a dict such as globals(), got "
                        f"{type(namespace).__name__}")
    plan = load_public_plan(folder, assignment).select(question, public_only=True)
    student = StudentNamespace(namespace)
    results = []
    for test in plan.tests:
        try:
            value = decode(encode(call_probe(plan.probes[test.probe], test.probe, student,
                                             decode(encode(test.inputs)))))
        except Exception as exc:
            results.append(TestResult(test, False, describe(exc)))
            continue
        results.append(judge_value(test, value))
    title = f"Checking {assignment}" + (f", question {question}" if question else "")
    report = CheckReport(title, SubmissionResult(assignment, "ok", "", tuple(results)))
    print(report)
    return report
