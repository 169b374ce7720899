"""Authoring, release and autograding of the course's assignments.

Instructors write ``solutions/<hw>.ipynb`` with nbgrader-style markers and the
grading tests beside it in ``solutions/<hw>_grading.py`` (:mod:`.spec`); then

- ``coursekit release solutions/ homework/`` writes the student notebooks, each
  carrying its public checks in its metadata (:func:`release`; :func:`check_sync`
  tests the result);
- ``coursekit check <hw>.ipynb``, or ``check(globals())`` in a notebook, runs the
  public tests for a student, wherever the notebook is (:func:`check_notebook`,
  :func:`check`);
- ``coursekit grade <hw> SUBMISSIONS/ --out DIR`` grades a folder, each
  submission in its own limited (as root: isolated, unprivileged) process,
  comparisons in the grader (:func:`grade`; :mod:`.sandbox` for the isolation);
- ``coursekit import-nbgrader`` / ``export-nbgrader`` carry assignments from and to
  nbgrader (:func:`import_nbgrader`, :func:`export_nbgrader`).

See ``docs/grading.md`` for the full guide.

Names are loaded from their submodule on first use, so that a notebook's
``from coursekit.grading import check`` does not pay for the release machinery
(nbformat's schema validation is slow to import).
"""

import importlib

_SOURCES = {
    "answers": ["WrittenAnswer"],
    "authoring": ["MarkerError", "answer_names", "check_sync", "release", "release_notebook",
                  "render_release", "strip_code", "strip_markdown"],
    "selfcheck": ["CheckReport", "EditedChecksError", "check", "check_notebook",
                  "checks_fingerprint", "embedded_metadata", "load_public_plan"],
    "grader": ["grade", "grade_notebook"],
    "nbgrader": ["NbgraderError", "export_nbgrader", "import_nbgrader"],
    "report": ["feedback"],
    "sandbox": ["Limits", "SandboxError"],
    "spec": ["Assignment", "GradingSpecError", "Item", "Late", "Plan", "PlannedTest",
             "PlannedWritten", "Probe", "Question", "Test", "Written", "build_plan",
             "load_assignment", "plan_from_json", "plan_to_json", "probe", "written_of"],
    "verdict": ["STATUSES", "SubmissionResult", "TestResult", "compare"],
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'coursekit.grading' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"coursekit.grading.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))
