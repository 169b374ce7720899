"""Students check their own work against an assignment's public tests.

From a terminal, ``coursekit check hw1.ipynb`` runs the saved notebook in a
separate process exactly as the grader will, then runs the public tests and
prints which pass, with what differs. From inside the notebook::

    from coursekit.grading import check
    check(globals())                              # every public test
    check(globals(), "hw1", question="adam")      # one question of assignment hw1

runs the public tests on the functions defined so far, in the notebook's own
kernel, with no need to save.

Where the public tests come from
--------------------------------
``coursekit release`` puts them inside each released notebook, in its metadata
(:func:`embedded_metadata`)::

    "coursekit": {"assignment": "hw1",
                  "public_checks": "<the public plan as compact JSON text>",
                  "sha256": "<hash of the assignment name and that text>"}

so a notebook checks itself wherever it is: renamed, moved, alone in an empty
folder, offline. The checks are kept as one JSON *string*, not as JSON objects,
because front ends re-serialise notebook metadata when they save (JupyterLab and
Colab go through JavaScript, which writes ``1.0`` as ``1``): a string survives
byte for byte, so its hash stays valid. A notebook whose embedded checks were
edited by hand no longer matches its hash; the self-check then stops with
:class:`EditedChecksError` instead of running them. The hash detects edits, it
is no signature (anyone can recompute it); that is enough, because grading never
reads the embedded checks: ``coursekit grade`` uses the instructor's grading file.

``coursekit check NOTEBOOK`` reads the notebook's own metadata. In a kernel,
:func:`check` has no reliable way to know which file it runs in, so it looks, in
this order, at

1. the ``notebook=`` argument, when given;
2. Colab's open notebook (``google.colab._message.blocking_request("get_ipynb")``:
   the notebook as the browser holds it; there is no file on the kernel's disk);
3. the file VS Code names (``__vsc_ipynb_file__``), then the file Jupyter Server
   (JupyterLab, Notebook 7, JupyterHub) names (``__session__`` and the
   ``JPY_SESSION_NAME`` environment variable, set when the kernel started, so
   stale after a rename until the kernel restarts);
4. the released notebooks in the working directory, which is the notebook's own
   folder in Jupyter, VS Code, nbclient and nbval, whatever their names: those
   whose metadata names the assignment (or any released notebook when none is
   named; several with different checks are refused as ambiguous);
5. ``<assignment>_grading.py`` beside the notebook or in the working directory:
   the instructor's solution notebooks, which are not released, use the public
   tests of their grading file.

Passing the public tests is a good sign, not a grade: hidden tests call the
same functions on other inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursekit.grading.child import StudentNamespace, call_probe, decode, describe, encode
from coursekit.grading.feedback_html import render
from coursekit.grading.grader import DEFAULT_CELL_TIMEOUT, DEFAULT_TIMEOUT, grade_notebook
from coursekit.grading.report import feedback
from coursekit.grading.runner import read_notebook
from coursekit.grading.spec import (
    GradingSpecError,
    Plan,
    build_plan,
    load_assignment,
    plan_from_json,
    plan_to_json,
)
from coursekit.grading.verdict import SubmissionResult, TestResult, judge_value

__all__ = ["CheckReport", "EditedChecksError", "check", "check_notebook", "checks_fingerprint",
           "embedded_metadata", "load_public_plan"]

METADATA_KEY = "coursekit"
COLAB_TIMEOUT = 10.0


class EditedChecksError(GradingSpecError):
    """A notebook's embedded public checks do not match the hash the release wrote."""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def checks_fingerprint(assignment: str, public_checks: str) -> str:
    """The SHA-256 (hex) of the canonical JSON of the assignment name and its checks' text."""
    text = _canonical({"assignment": assignment, "public_checks": public_checks})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embedded_metadata(assignment: str, plan: Plan | None) -> dict[str, str]:
    """The ``metadata["coursekit"]`` the release writes: the assignment's name and, when
    ``plan`` is given, its public tests as compact JSON text with their hash."""
    if plan is None:
        return {"assignment": assignment}
    text = _canonical(json.loads(plan_to_json(plan.select(public_only=True))))
    return {"assignment": assignment, "public_checks": text,
            "sha256": checks_fingerprint(assignment, text)}


def _stamp(notebook: Any) -> dict:
    """The notebook's ``metadata["coursekit"]``, or an empty dict."""
    metadata = notebook.get("metadata") if isinstance(notebook, dict) else None
    stamp = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    return stamp if isinstance(stamp, dict) else {}


def _embedded_plan(notebook: Any, source: str) -> Plan | None:
    """The public tests embedded in a notebook (its JSON, as a dict); None when it has none.

    Raises
    ------
    EditedChecksError
        If they no longer match the hash the release wrote beside them.
    """
    stamp = _stamp(notebook)
    if "public_checks" not in stamp:
        return None
    assignment, text = stamp.get("assignment"), stamp.get("public_checks")
    if not (isinstance(assignment, str) and isinstance(text, str)
            and stamp.get("sha256") == checks_fingerprint(assignment, text)):
        raise EditedChecksError(
            f"the public checks inside {source} were changed after `coursekit release` wrote "
            "them (their sha256 no longer matches), so they are not run: they would not be "
            "your instructor's tests. Take a fresh copy of the released notebook and copy "
            "your answers into it, or check against a fresh copy with `coursekit check "
            "NOTEBOOK --checks FRESH_COPY.ipynb`. Grading never uses these embedded checks.")
    return plan_from_json(text, f"the public checks inside {source}").select(public_only=True)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _grading_beside(folder: Path, names: list[str | None]) -> Plan | None:
    """The public tests of the first ``<name>_grading.py`` in ``folder``."""
    for name in dict.fromkeys(n for n in names if n):
        grading = folder / f"{name}_grading.py"
        if grading.is_file():
            return build_plan(load_assignment(grading), include_hidden=False)
    return None


def load_public_plan(notebook: str | Path) -> Plan:
    """The public tests for the notebook at ``notebook``.

    A released notebook carries them in its metadata; a solution notebook (not
    released) uses those of ``<assignment>_grading.py`` beside it.

    Raises
    ------
    EditedChecksError
        If the embedded checks were edited after the release.
    GradingSpecError
        If the notebook has neither.
    """
    path = Path(notebook)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {str(path)!r}")
    data = _read_json(path)
    if data is None:
        raise GradingSpecError(f"{path} is not a readable notebook (not UTF-8 JSON)")
    plan = _embedded_plan(data, str(path))
    if plan is None:
        plan = _grading_beside(path.parent, [_stamp(data).get("assignment"), path.stem])
    if plan is None:
        raise GradingSpecError(
            f"{path} carries no public checks: it was not written by `coursekit release`, or "
            "its metadata was removed (copying cells into a new notebook does that). Check "
            "against a released copy: `coursekit check NOTEBOOK --checks RELEASED.ipynb`, or "
            "check(globals(), notebook=\"RELEASED.ipynb\") in the notebook.")
    return plan


def _kernel_notebooks(namespace: dict[str, Any]) -> Iterator[tuple[str, Path | None, Any]]:
    """The notebook this kernel runs, as far as the front end says: ``(name, file, JSON)``."""
    if "google.colab" in sys.modules:
        try:
            from google.colab import _message  # type: ignore[import-not-found]

            reply = _message.blocking_request("get_ipynb", request="",
                                              timeout_sec=COLAB_TIMEOUT)
            data = reply["ipynb"]
            yield "this Colab notebook", None, json.loads(data) if isinstance(data, str) else data
        except Exception:
            pass
    cwd = Path.cwd()
    for value in (namespace.get("__vsc_ipynb_file__"), namespace.get("__session__"),
                  os.environ.get("JPY_SESSION_NAME")):
        if not (isinstance(value, str) and value.endswith(".ipynb")):
            continue
        path = Path(value)
        # Jupyter Server names the file absolutely, or relatively to its root; the kernel
        # starts in the notebook's folder
        for candidate in ([path] if path.is_absolute() else [cwd / path, cwd / path.name]):
            if candidate.is_file():
                data = _read_json(candidate)
                if data is not None:
                    yield str(candidate), candidate, data
                break


def _released_here(folder: Path, assignment: str | None) -> Plan | None:
    """The embedded checks of the released notebooks in ``folder`` for ``assignment``."""
    found = {}
    for path in sorted(folder.glob("*.ipynb")):
        data = _read_json(path)
        stamp = _stamp(data)
        if "public_checks" in stamp and assignment in (None, stamp.get("assignment")):
            found[path] = data
    if not found:
        return None
    distinct = {(_stamp(d).get("assignment"), _stamp(d).get("public_checks"),
                 _stamp(d).get("sha256")) for d in found.values()}
    if len(distinct) > 1:
        names = ", ".join(p.name for p in found)
        raise GradingSpecError(
            f"several released notebooks in {folder} ({names}) carry different public "
            "checks; name yours: check(globals(), notebook=\"YOUR_NOTEBOOK.ipynb\")")
    path, data = next(iter(found.items()))
    return _embedded_plan(data, str(path))


def _find_plan(namespace: dict[str, Any], assignment: str | None,
               notebook: str | Path | None) -> tuple[Plan, str]:
    """The public tests :func:`check` runs, and the assignment's name (see the module)."""
    if notebook is not None:
        plan = load_public_plan(notebook)
        return plan, assignment or _stamp(_read_json(Path(notebook))).get("assignment") \
            or plan.assignment
    for source, path, data in _kernel_notebooks(namespace):
        named = _stamp(data).get("assignment")
        if assignment is not None and named is not None and named != assignment:
            continue  # the front end's notebook is another assignment's
        plan = _embedded_plan(data, source)
        if plan is None and path is not None:
            plan = _grading_beside(path.parent, [assignment, named, path.stem])
        if plan is not None:
            return plan, assignment or named or plan.assignment
    cwd = Path.cwd()
    plan = _released_here(cwd, assignment) or _grading_beside(cwd, [assignment])
    if plan is not None:
        return plan, assignment or plan.assignment
    which = f"assignment {assignment!r}" if assignment else "this notebook"
    raise GradingSpecError(
        f"no public checks found for {which}: the kernel did not say which notebook it runs, "
        f"and {cwd} holds no released notebook {'of it ' * bool(assignment)}(nor "
        f"{assignment or '<assignment>'}_grading.py). Name the notebook: "
        "check(globals(), notebook=\"path/to/your.ipynb\"), or run `coursekit check "
        "path/to/your.ipynb` in a terminal.")


@dataclass(frozen=True)
class CheckReport:
    """The public tests' results, printable for a student (and as a page: :meth:`html`)."""

    title: str
    result: SubmissionResult
    plan: Plan

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

    def html(self, notebook: str | Path | None = None) -> str:
        """This report as the page the grader writes for each submission, for the public
        tests (:func:`coursekit.grading.feedback_html.render`), with the cells of the
        notebook at ``notebook`` (the one checked) when given."""
        data = None if notebook is None else read_notebook(notebook)
        return render(feedback(self.result, self.plan), data, public_only=True)


def _fmt(points: float) -> str:
    return f"{points:g}"


def check_notebook(path: str | Path, *, checks: str | Path | None = None,
                   timeout: float = DEFAULT_TIMEOUT,
                   cell_timeout: float = DEFAULT_CELL_TIMEOUT) -> CheckReport:
    """Run the saved notebook at ``path`` as the grader would, with its public tests.

    The notebook runs in a separate process from its own folder, with the
    grader's resource limits but as the student's own user. The public tests are
    those embedded in the notebook (see the module docstring), or in ``checks``,
    another released notebook, when given.

    Raises
    ------
    EditedChecksError
        If the embedded checks used were edited after the release.
    GradingSpecError
        If there are no public checks to use.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"no notebook at {str(path)!r}")
    path = Path(path).resolve()  # the child starts in the notebook's folder
    plan = load_public_plan(path if checks is None else checks)
    # the student's own notebook, from its own folder: limits, but no sandbox user
    result = grade_notebook(path, plan, timeout=timeout, cell_timeout=cell_timeout,
                            cwd=path.parent, isolate=False)
    return CheckReport(f"Checking {path.name}", result, plan)


def check(namespace: dict[str, Any], assignment: str | None = None, *,
          question: str | None = None, notebook: str | Path | None = None) -> CheckReport | None:
    """Run the public tests on a live notebook namespace and print the results.

    Parameters
    ----------
    namespace : dict
        The notebook's ``globals()``.
    assignment : str, optional
        The assignment's name (``"hw1"``); by default the one the notebook's
        release metadata names.
    question : str, optional
        Check one question only.
    notebook : path, optional
        The notebook whose embedded public checks to use (normally found without
        help: see the module docstring for where :func:`check` looks).

    Returns
    -------
    CheckReport or None
        None when called while the grader runs the notebook: the grader runs the
        tests itself, so the call only prints that it was skipped.

    Raises
    ------
    EditedChecksError
        If the notebook's embedded checks were edited after the release.
    GradingSpecError
        If no public checks can be found, or ``question`` is not one of them.
    """
    if os.environ.get("COURSEKIT_GRADER_CHILD") == "1":
        print("coursekit check: skipped while grading")
        return None
    if not isinstance(namespace, dict):
        raise TypeError(f"namespace must be a dict such as globals(), got "
                        f"{type(namespace).__name__}")
    plan, name = _find_plan(namespace, assignment, notebook)
    plan = plan.select(question, public_only=True)
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
    title = f"Checking {name}" + (f", question {question}" if question else "")
    report = CheckReport(title, SubmissionResult(name, "ok", "", tuple(results)), plan)
    print(report)
    return report
