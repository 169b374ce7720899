"""nbgrader interop: nbgrader source notebooks in, and back out.

nbgrader marks a notebook's cells with metadata (``cell.metadata["nbgrader"]``: ``grade``,
``solution``, ``locked``, ``task``, ``points``, ``grade_id``, ``schema_version`` 3) and keeps
its tests in the notebook as cells of asserts. coursekit keeps the same solution markers but
its tests in a grading file (:mod:`coursekit.grading.spec`). The mapping, both ways, for
each of nbgrader's cell types (:func:`cell_kind`):

- **autograded answer** (code; ``solution``). Import: the same cell, since ``### BEGIN/END
  SOLUTION`` are coursekit's markers too; a cell without them is wrapped in them (nbgrader
  replaces such a cell whole). Export: a code cell with solution markers becomes one, its
  ``grade_id`` the cell id (or its function's name).
- **manually graded answer** (``solution`` + ``grade`` + ``points``; code or markdown).
  Import: the same cell, a markdown answer between ``<!-- BEGIN/END ANSWER -->``; listed as
  graded by people. Export: a markdown cell with answer markers becomes one, worth the
  points of its written answer (``<!-- BEGIN ANSWER q/a -->`` and a ``Written`` in the
  grading file; its grade id ``q_a``), or 0 for an unnamed region.
- **autograder tests** (code; ``grade`` + ``points``; ``### BEGIN/END HIDDEN TESTS``).
  Import: removed from the notebook; a question of the grading file (below). Export: one
  locked cell per question after the cell that defines what it tests: each test's probe
  called on its inputs and asserts that the result matches the expected value to the test's
  tolerances, hidden tests between the hidden-test markers; worth the question's points.
- **read-only** (``locked``). Import: the same cell; the release does not keep the lock.
  Export: coursekit has no such cells.
- **manually graded task** (markdown; ``task`` + ``points``). Import: the same cell; listed
  as graded by people. Export: coursekit has no such cells.

Every cell keeps its ``nbgrader`` metadata in the solution notebook; ``coursekit release``
keeps only ``tags`` of a cell's metadata, so students never see it. The removed test cells'
places and metadata go into the notebook's metadata (``coursekit_nbgrader``, also dropped by
the release), their code into the grading file; so exporting an imported notebook with its
imported grading file gives the nbgrader notebook back, cell for cell.

**Questions.** Each autograder test cell becomes one question (a gradebook column, as it is a
grade in nbgrader), with an id from its ``grade_id`` (lower case, other characters as ``_``)
and the title of the nearest heading above it. Its probe, :data:`TEST_CELL_PROBE`, runs the
cell's code in a copy of the student's namespace, after the notebook has run, and returns
True when every assert holds; a failing assert raises an ``AssertionError`` naming its line,
which public feedback shows and hidden feedback never does. A cell with hidden tests becomes
two tests, each worth half its points: ``asserts`` (the cell as students see it) and
``hidden_asserts`` (the whole cell, as nbgrader's autograder runs it), so a notebook that
passes every assert earns the cell's points, as in nbgrader, and one that passes only the
public asserts earns half, where nbgrader gives none.

Cells graded by people (manually graded answers and tasks) keep their points in their
``nbgrader`` metadata and are listed in the grading file's docstring; to grade them with
``coursekit review``, name the answer's region and give it a ``Written`` with a rubric in
the grading file (docs/grading.md, "Written answers, graded by people").
:class:`NbgraderError` (a ``ValueError``) names the notebook and the cell
of anything that breaks nbgrader's rules (:func:`check_nbgrader`) or cannot be carried over.
"""

from __future__ import annotations

import ast
import copy
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

from coursekit.grading.authoring import MarkerError, balanced_regions, release_notebook
from coursekit.grading.child import python_source
from coursekit.grading.spec import Assignment, Question, load_assignment

__all__ = [
    "SCHEMA_VERSION",
    "TEST_CELL_PROBE",
    "ImportResult",
    "NbgraderError",
    "cell_kind",
    "check_nbgrader",
    "export_nbgrader",
    "export_notebook",
    "import_nbgrader",
    "import_notebook",
]

SCHEMA_VERSION = 3
METADATA_KEY = "coursekit_nbgrader"  # notebook metadata: where the removed test cells stood
TEST_CELL_PROBE = "nbgrader_test_cell"

AUTOGRADED_ANSWER = "autograded answer"
MANUAL_ANSWER = "manually graded answer"
TESTS = "autograder tests"
READ_ONLY = "read-only"
TASK = "manually graded task"

_GRADE_ID = re.compile(r"[A-Za-z0-9_\-]+\Z")
_CELL_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}\Z")
_SOLUTION = re.compile(r"###\s*(BEGIN|END)\s+SOLUTION\Z")
_HIDDEN = re.compile(r"###\s*(BEGIN|END)\s+HIDDEN\s+TESTS\Z")
_ANSWER = re.compile(r"<!--\s*(BEGIN|END)\s+ANSWER"
                     r"(?:\s+(?P<answer>[a-z][a-z0-9_]*/[a-z][a-z0-9_]*))?\s*-->\Z")
_BEGIN_ANSWER, _END_ANSWER = "<!-- BEGIN ANSWER -->", "<!-- END ANSWER -->"
_BEGIN_SOLUTION, _END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
_BEGIN_HIDDEN, _END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
_WRAPPED = "wrapped"  # cell metadata coursekit_nbgrader: the import added the markers


class NbgraderError(ValueError):
    """A notebook that breaks nbgrader's rules, or that cannot be carried across."""


# nbgrader's schema ------------------------------------------------------------------------

def _flags(meta: dict) -> tuple[bool, bool, bool, bool]:
    return (bool(meta.get("grade")), bool(meta.get("solution")), bool(meta.get("locked")),
            bool(meta.get("task")))


def cell_kind(cell: dict) -> str | None:
    """Which of nbgrader's cell types ``cell`` is, from its ``nbgrader`` metadata.

    Returns
    -------
    str or None
        ``"autograded answer"`` (solution), ``"manually graded answer"`` (solution and
        grade), ``"autograder tests"`` (grade, not solution), ``"manually graded task"``
        (task), ``"read-only"`` (locked only), or None for an ordinary cell.
    """
    meta = cell.get("metadata", {}).get("nbgrader")
    if not isinstance(meta, dict):
        return None
    grade, solution, locked, task = _flags(meta)
    if task:
        return TASK
    if solution:
        return MANUAL_ANSWER if grade else AUTOGRADED_ANSWER
    if grade:
        return TESTS
    return READ_ONLY if locked else None


def _where(name: str, number: int, cell: dict) -> str:
    meta = cell.get("metadata", {}).get("nbgrader") or {}
    what = f"{name}, cell {number} ({cell.get('cell_type')}"
    if meta.get("grade_id"):
        what += f", grade_id {meta['grade_id']}"
    return what + ")"


def _marked(source: str, pattern: re.Pattern, where: str) -> list[tuple[int, int]]:
    """``(begin, end)`` line indices of each region; raises if they do not balance."""
    return balanced_regions(source.split("\n"), pattern, where, NbgraderError)


def check_nbgrader(notebook: dict, name: str = "notebook") -> list[str | None]:
    """Check a notebook against nbgrader's rules and return each cell's kind.

    The rules (nbgrader's cell metadata schema, version 3, and its release steps):
    ``grade``, ``solution`` and ``locked`` are booleans; a cell with any of them true has a
    non-empty ``grade_id`` of letters, digits, ``_`` and ``-``, unique in the notebook; a
    ``grade`` cell has ``points``, a number >= 0; a markdown cell that is ``grade`` is also
    ``solution`` and the other way round, unless it is a ``task``; a ``task`` is markdown;
    ``### BEGIN/END SOLUTION`` appear only in solution cells and ``### BEGIN/END HIDDEN
    TESTS`` only in grade cells, balanced and not nested.

    Raises
    ------
    NbgraderError
        Naming the notebook and the cell, if a rule is broken or no cell has nbgrader
        metadata.
    """
    cells = notebook.get("cells", [])
    if not any("nbgrader" in cell.get("metadata", {}) for cell in cells):
        raise NbgraderError(f"{name} is not an nbgrader notebook: no cell has nbgrader "
                            "metadata (cell.metadata.nbgrader)")
    kinds, seen = [], {}
    for number, cell in enumerate(cells, start=1):
        where = _where(name, number, cell)
        meta = cell.get("metadata", {}).get("nbgrader")
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if meta is None:
            kinds.append(None)
            _no_markers(source, where, solution=False, grade=False)
            continue
        if not isinstance(meta, dict):
            raise NbgraderError(f"{where}: its nbgrader metadata is not a dict")
        for key in ("grade", "solution", "locked", "task"):
            if key in meta and not isinstance(meta[key], bool):
                raise NbgraderError(f"{where}: nbgrader {key} must be true or false, "
                                    f"got {meta[key]!r}")
        grade, solution, locked, task = _flags(meta)
        if grade or solution or locked:
            grade_id = meta.get("grade_id")
            if not isinstance(grade_id, str) or not _GRADE_ID.match(grade_id):
                raise NbgraderError(f"{where}: an nbgrader cell needs a grade_id of letters, "
                                    f"digits, _ and -, got {grade_id!r}")
            if grade_id in seen:
                raise NbgraderError(f"{where}: duplicate grade_id {grade_id!r} (also cell "
                                    f"{seen[grade_id]})")
            seen[grade_id] = number
        if grade:
            points = meta.get("points")
            if isinstance(points, bool) or not isinstance(points, (int, float)) \
                    or not math.isfinite(points) or points < 0:
                raise NbgraderError(f"{where}: a grade cell needs points, a number >= 0, "
                                    f"got {points!r}")
        kind = cell.get("cell_type")
        if task and kind != "markdown":
            raise NbgraderError(f"{where}: task cells have to be markdown")
        if not task and kind == "markdown" and grade != solution:
            raise NbgraderError(f"{where}: a markdown cell must be both grade and solution "
                                "(a manually graded answer) or neither")
        if kind == "raw" and (grade or solution):
            raise NbgraderError(f"{where}: raw cells cannot be graded or hold solutions")
        _no_markers(source, where, solution=solution, grade=grade)
        kinds.append(cell_kind(cell))
    return kinds


def _no_markers(source: str, where: str, *, solution: bool, grade: bool) -> None:
    """Markers where nbgrader allows them, balanced."""
    if _marked(source, _SOLUTION, where) and not solution:
        raise NbgraderError(f"{where}: ### BEGIN SOLUTION in a cell that is not a solution "
                            "cell")
    if _marked(source, _HIDDEN, where) and not grade:
        raise NbgraderError(f"{where}: ### BEGIN HIDDEN TESTS in a cell that is not an "
                            "autograder tests cell")


# Import: nbgrader -> coursekit ------------------------------------------------------------

@dataclass(frozen=True)
class ImportResult:
    """What an import found, and the files :func:`import_nbgrader` wrote (None before).

    ``questions`` are ``(question id, grade_id, points)`` of each autograder test cell;
    ``by_people`` are ``(grade_id, kind, points)`` of the cells graded by people.
    """

    questions: tuple[tuple[str, str, float], ...]
    by_people: tuple[tuple[str, str, float], ...]
    notebook: Path | None = None
    grading: Path | None = None

    def report(self) -> str:
        """A few lines for the command line."""
        lines = [f"wrote {path}" for path in (self.notebook, self.grading) if path is not None]
        lines += [f"{len(self.questions)} autograded question"
                 f"{'s' * (len(self.questions) != 1)} "
                 f"({_points(sum(p for _, _, p in self.questions))} points)"]
        if self.by_people:
            lines.append("graded by people, not by coursekit (points in the cells' metadata): "
                         + ", ".join(f"{g} ({_points(p)})" for g, _, p in self.by_people))
        return "\n".join(lines)


def _points(value: float) -> str:
    return f"{value:g}"


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _question_id(grade_id: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9_]+", "_", grade_id.lower()).strip("_") or "question"
    if not base[0].isalpha():
        base = f"q_{base}"
    qid, n = base, 2
    while qid in taken:
        qid, n = f"{base}_{n}", n + 1
    taken.add(qid)
    return qid


def _heading(source: str) -> str | None:
    for line in source.split("\n"):
        if line.startswith("#"):
            return line.lstrip("#").strip() or None
    return None


def _wrap(source: str, begin: str, end: str) -> str:
    return f"{begin}\n{source}\n{end}"


def _unwrap(source: str) -> str:
    return "\n".join(source.split("\n")[1:-1])


def _swap_markers(source: str, old: re.Pattern, begin: str, end: str) -> str:
    """Each line matching ``old`` replaced by ``begin``/``end``, at its indentation."""
    lines = []
    for line in source.split("\n"):
        match = old.match(line.strip())
        if match:
            indent = line[:len(line) - len(line.lstrip())]
            line = indent + (begin if match.group(1) == "BEGIN" else end)
        lines.append(line)
    return "\n".join(lines)


def _without_hidden(source: str, where: str) -> str:
    """The test cell as nbgrader releases it: hidden regions and their markers removed."""
    lines, kept, last = source.split("\n"), [], 0
    for begin, end in _marked(source, _HIDDEN, where):
        kept += lines[last:begin]
        last = end + 1
    return "\n".join(kept + lines[last:])


def _set_ids(notebook: nbformat.NotebookNode) -> None:
    """Give every cell a unique id (nbformat 4.5), keeping those it has."""
    taken = {c.get("id") for c in notebook.cells if c.get("id")}
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.get("id"):
            continue
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
        new = grade_id if _CELL_ID.match(grade_id or "") and grade_id not in taken \
            else f"cell-{number}"
        while new in taken:
            new += "-x"
        cell["id"] = new
        taken.add(new)
    notebook.nbformat, notebook.nbformat_minor = 4, max(5, notebook.get("nbformat_minor", 5))


def import_notebook(notebook: nbformat.NotebookNode, name: str,
                    source: str = "notebook") -> tuple[nbformat.NotebookNode, str, ImportResult]:
    """Turn an nbgrader source notebook into a coursekit solution notebook and grading file.

    Parameters
    ----------
    notebook : NotebookNode
        The nbgrader source notebook (not changed).
    name : str
        The assignment's name: the files are ``<name>.ipynb`` and ``<name>_grading.py``.
    source : str
        How error messages and the grading file name the nbgrader notebook.

    Returns
    -------
    (NotebookNode, str, ImportResult)
        The solution notebook, the grading file's text, and what was found.

    Raises
    ------
    NbgraderError
        If the notebook breaks nbgrader's rules (:func:`check_nbgrader`), a test cell is
        worth 0 points or is not plain Python, or the solution notebook would not release.
    """
    nb = copy.deepcopy(notebook)
    kinds = check_nbgrader(nb, source)
    _set_ids(nb)
    kept, tests, by_people, taken = [], [], [], set()
    heading, previous = None, None
    for number, (cell, kind) in enumerate(zip(nb.cells, kinds, strict=True), start=1):
        where = _where(source, number, cell)
        meta = cell.metadata.get("nbgrader", {})
        text = _source(cell)
        if kind == TESTS:
            tests.append(_test_cell(cell, text, meta, where, previous, heading, taken))
        else:
            if kind in (AUTOGRADED_ANSWER, MANUAL_ANSWER):
                _mark_answer(cell, text)
            if kind in (MANUAL_ANSWER, TASK):
                by_people.append((meta["grade_id"], kind, meta.get("points", 0)))
            kept.append(cell)
        if cell.cell_type == "markdown":
            heading = _heading(text) or heading
        previous = cell.id
    if not tests:
        raise NbgraderError(f"{source} has no autograder tests cell: nothing for coursekit "
                            "to grade (mark a cell of asserts as 'Autograder tests')")
    nb.cells = kept
    nb.metadata[METADATA_KEY] = {"test_cells": [
        {"question": t["question"], "id": t["id"], "after": t["after"],
         "metadata": t["metadata"]} for t in tests]}
    try:
        release_notebook(nb, name, f"{name}.ipynb")
    except MarkerError as exc:
        raise NbgraderError(f"the imported notebook would not release: {exc}") from None
    questions = tuple((t["question"], t["grade_id"], t["points"]) for t in tests)
    result = ImportResult(questions, tuple(by_people))
    return nb, _grading_text(name, source, tests, by_people), result


def _mark_answer(cell: nbformat.NotebookNode, text: str) -> None:
    """Give a solution cell coursekit's markers: nbgrader clears a cell without them whole."""
    if any(_SOLUTION.match(line.strip()) for line in text.split("\n")):
        if cell.cell_type == "markdown":
            cell.source = _swap_markers(text, _SOLUTION, _BEGIN_ANSWER, _END_ANSWER)
        return
    if cell.cell_type == "markdown":
        cell.source = _wrap(text, _BEGIN_ANSWER, _END_ANSWER)
    else:
        cell.source = _wrap(text, _BEGIN_SOLUTION, _END_SOLUTION)
    cell.metadata[METADATA_KEY] = _WRAPPED


def _test_cell(cell: nbformat.NotebookNode, text: str, meta: dict, where: str,
               previous: str | None, heading: str | None, taken: set[str]) -> dict:
    if cell.cell_type != "code":
        raise NbgraderError(f"{where}: autograder tests must be code cells")
    if not meta["points"] > 0:
        raise NbgraderError(f"{where}: an autograder tests cell worth 0 points cannot be a "
                            "coursekit test (tests are worth > 0 points); give it points or "
                            "make it read-only")
    try:
        compile(text, where, "exec")
    except SyntaxError as exc:
        raise NbgraderError(f"{where}: autograder tests must be plain Python ({exc.msg}, line "
                            f"{exc.lineno})") from None
    public = _without_hidden(text, where)
    hidden = text if public != text else None
    return {"question": _question_id(meta["grade_id"], taken), "grade_id": meta["grade_id"],
            "title": heading or meta["grade_id"], "points": meta["points"], "public": public,
            "hidden": hidden, "id": cell.id, "after": previous,
            "metadata": copy.deepcopy(dict(cell.metadata))}


_PROBE_SOURCE = '''\
@probe
def nbgrader_test_cell(student, cell, code):
    """Run an nbgrader test cell's code in a copy of the notebook's namespace: True when
    every assert holds; a failing assert raises an AssertionError naming its line."""
    namespace = {name: student[name] for name in student}
    filename = f"<test cell {cell}>"
    try:
        exec(compile(code, filename, "exec"), namespace)
    except AssertionError as exc:
        line, tb = None, exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == filename:
                line = tb.tb_lineno
            tb = tb.tb_next
        where = f"line {line}: {code.splitlines()[line - 1].strip()}" if line else cell
        message = f"{where} failed" + (f": {exc}" if str(exc) else "")
        raise AssertionError(message) from None
    return True


def all_asserts_hold(cell, code):
    """The reference: in a correct notebook, every assert of the cell holds."""
    return True
'''


def _literal_text(text: str) -> str:
    """``text`` as a Python string literal, triple-quoted when that reads as the text."""
    plain = all(c in "\n\t" or c.isprintable() for c in text)
    if plain and "'''" not in text and "\\" not in text and not text.endswith("'"):
        return "'''\\\n" + text + "'''"
    return repr(text)


def _grading_text(name: str, source: str, tests: list[dict], by_people: list) -> str:
    people = "\n".join(f"- ``{g}`` ({kind}): {_points(p)} point{'s' * (p != 1)}"
                       for g, kind, p in by_people) or "- none"
    lines = [
        f'"""Grading tests of ``{name}.ipynb``, imported from the nbgrader notebook '
        f"``{Path(source).name}``.",
        "",
        "Written by ``coursekit import-nbgrader``; edit it like any grading file. Each nbgrader",
        "autograder test cell is a question: its asserts run in a copy of the notebook's",
        "namespace after the notebook has run (``asserts``: the cell as students see it;",
        "``hidden_asserts``: the whole cell, hidden tests included, half the points each).",
        "``coursekit export-nbgrader`` puts the cells back from the code below.",
        "",
        "Graded by people, not by coursekit (their points are in the cells' nbgrader metadata):",
        "",
        people,
        '"""',
        "",
        "from coursekit.grading import Assignment, Question, Test, probe",
        "",
        "",
        _PROBE_SOURCE,
        "",
    ]
    for t in tests:
        upper = t["question"].upper()
        lines.append(f"{upper}_PUBLIC = {_literal_text(t['public'])}")
        if t["hidden"] is not None:
            lines.append(f"{upper}_CELL = {_literal_text(t['hidden'])}")
        lines.append("")
    lines += ["", "ASSIGNMENT = Assignment(seed=0, questions=["]
    for t in tests:
        upper, gid, points = t["question"].upper(), t["grade_id"], t["points"]
        share = points / 2 if t["hidden"] is not None else points
        lines += [
            f"    Question({t['question']!r}, {t['title']!r}, [",
            f"        Test('asserts', nbgrader_test_cell, reference=all_asserts_hold, "
            f"points={share!r},",
            f"             description={f'the asserts of test cell {gid}'!r},",
            f"             inputs={{'cell': {gid!r}, 'code': {upper}_PUBLIC}}),",
        ]
        if t["hidden"] is not None:
            lines += [
                f"        Test('hidden_asserts', nbgrader_test_cell, reference=all_asserts_hold,"
                f" points={share!r},",
                "             hidden=True,",
                "             description="
                f"{f'every assert of test cell {gid}, hidden included'!r},",
                f"             inputs={{'cell': {gid!r}, 'code': {upper}_CELL}}),",
            ]
        lines.append("    ]),")
    lines.append("])")
    return "\n".join(lines) + "\n"


def _notebook_text(notebook: nbformat.NotebookNode) -> str:
    text = nbformat.writes(notebook, version=4)
    return text if text.endswith("\n") else text + "\n"


def _read(path: Path) -> nbformat.NotebookNode:
    if not path.is_file():
        raise FileNotFoundError(f"no such notebook: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return nbformat.read(path, as_version=4)
    except Exception as exc:
        raise NbgraderError(f"{path} is not a readable notebook: {exc}") from None


def _write_new(files: dict[Path, str], force: bool) -> None:
    existing = [str(p) for p in files if p.exists()]
    if existing and not force:
        raise NbgraderError(f"{', '.join(existing)} already exist{'s' * (len(existing) == 1)};"
                            " choose another --out or pass --force to overwrite")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def import_nbgrader(source: str | Path, out: str | Path = "solutions",
                    assignment: str | None = None, *, force: bool = False) -> ImportResult:
    """Write ``out/<assignment>.ipynb`` and ``out/<assignment>_grading.py`` from an nbgrader
    source notebook (see the module docstring and :func:`import_notebook`).

    ``assignment`` defaults to the notebook's file name without ``.ipynb``. Existing files
    are overwritten only with ``force``.

    Raises
    ------
    NbgraderError
        If the notebook breaks nbgrader's rules or cannot be carried over, or a file exists.
    FileNotFoundError
        If ``source`` does not exist.
    """
    source, out = Path(source), Path(out)
    name = assignment or source.stem
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise NbgraderError(f"an assignment name is letters, digits, _ and -, got {name!r}")
    notebook, grading, found = import_notebook(_read(source), name, source.name)
    paths = out / f"{name}.ipynb", out / f"{name}_grading.py"
    _write_new({paths[0]: _notebook_text(notebook), paths[1]: grading}, force)
    return replace(found, notebook=paths[0], grading=paths[1])


# Export: coursekit -> nbgrader --------------------------------------------------------------

def _literal(value: Any) -> str:
    """``value`` (plain data: numbers, strings, arrays, lists, dicts) as Python source."""
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return f"np.zeros({value.shape!r}, dtype=np.{value.dtype.name})"
        return f"np.array({_literal(value.tolist())}, dtype=np.{value.dtype.name})"
    if isinstance(value, np.generic):
        return _literal(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return "np.nan" if math.isnan(value) else ("np.inf" if value > 0 else "-np.inf")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _numeric(value: Any) -> np.ndarray | None:
    if isinstance(value, np.ndarray):
        return value if value.dtype.kind in "biuf" else None
    if isinstance(value, list) and not value:
        return None
    if type(value) in (bool, int, float) or isinstance(value, list):
        try:
            array = np.asarray(value)
        except (ValueError, OverflowError):
            return None
        return array if array.dtype.kind in "biuf" else None
    return None


def _part(path: str, part: str) -> str:
    """The name of a part of a result in messages: ``theta``, ``theta.m``, ``result[2]``."""
    if part.startswith("["):
        return f"{path}{part}"
    return part if path == "result" else f"{path}.{part}"


def _asserts(expr: str, expected: Any, rtol: float, atol: float, label: str,
             path: str = "result") -> list[str]:
    """Assert statements checking that ``expr`` matches ``expected`` as coursekit's
    comparison would (shapes equal, ``|got - expected| <= atol + rtol |expected|``); their
    messages start with ``label`` and name the part (``path``) that differs."""
    message = f"{label}: {path} differs from the expected value"
    if isinstance(expected, dict):
        keys = sorted(expected)
        lines = [f"assert isinstance({expr}, dict) and sorted({expr}) == {keys!r}, "
                 f"{f'{label}: {path} should be a dict with keys {keys}'!r}"]
        for key in keys:
            lines += _asserts(f"{expr}[{key!r}]", expected[key], rtol, atol, label,
                              _part(path, str(key)))
        return lines
    if expected is None:
        return [f"assert {expr} is None, {message!r}"]
    if isinstance(expected, str):
        return [f"assert {expr} == {expected!r}, {message!r}"]
    array = _numeric(expected)
    if array is None:
        lines = [f"assert len({expr}) == {len(expected)}, "
                 f"{f'{label}: {path} should have {len(expected)} items'!r}"]
        for i, item in enumerate(expected):
            lines += _asserts(f"{expr}[{i}]", item, rtol, atol, label, _part(path, f"[{i}]"))
        return lines
    shape = f"assert np.shape({expr}) == {array.shape!r}, " \
            f"{f'{label}: {path} should have shape {array.shape}'!r}"
    if array.dtype == bool:
        return [shape, f"assert np.array_equal({expr}, {_literal(expected)}), {message!r}"]
    return [shape, f"assert np.allclose(np.asarray({expr}, dtype=float), {_literal(expected)}, "
                   f"rtol={rtol!r}, atol={atol!r}, equal_nan=True), {message!r}"]


def _probe_def(name: str, source: str) -> str:
    return source.replace(f"def {name}(", f"def _{name}(", 1).rstrip("\n")


def _generated_test_cell(qid: str, title: str, tests: Sequence, probes: dict[str, str],
                         grading: str) -> str:
    public = [t for t in tests if not t.hidden]
    hidden = [t for t in tests if t.hidden]
    used = {t.probe for t in public}
    hidden_only = sorted({t.probe for t in hidden} - used)
    needs_math = any("math." in probes[p] for p in {t.probe for t in tests})
    lines = [f"# Question {qid!r}: {title}",
             f"# (from {grading}, by coursekit export-nbgrader). Each test calls the notebook's",
             "# functions through its probe and compares the result with the expected value,",
             "# computed by the test's reference when exporting.",
             "import numpy as np"]
    if needs_math:
        lines.append("import math")
    for name in sorted(used):
        lines += ["", _probe_def(name, probes[name])]

    def calls(group: list) -> list[str]:
        out = []
        for t in group:
            args = ", ".join(f"{k}={_literal(v)}" for k, v in t.inputs.items())
            out += ["", f"# {t.name}" + (f": {t.description}" if t.description else ""),
                    f"_got = _{t.probe}(globals(){', ' if args else ''}{args})"]
            out += _asserts("_got", t.expected, t.rtol, t.atol, t.name)
        return out

    lines += calls(public)
    if hidden:
        lines += ["", _BEGIN_HIDDEN]
        for name in hidden_only:
            lines += [_probe_def(name, probes[name]), ""]
        lines += [*calls(hidden)[1:], _END_HIDDEN]
    return "\n".join(lines)


def _defined_names(source: str) -> set[str]:
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _unique(base: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_\-]+", "_", base).strip("_") or "cell"
    new, n = base, 2
    while new in taken:
        new, n = f"{base}_{n}", n + 1
    taken.add(new)
    return new


def _nbgrader_meta(grade: bool, solution: bool, locked: bool, grade_id: str,
                   points: float | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked,
            "schema_version": SCHEMA_VERSION, "solution": solution}
    if points is not None:
        meta["points"] = points
    return meta


def _restore_cell(cell: nbformat.NotebookNode) -> None:
    """An imported cell as it was in the nbgrader notebook."""
    wrapped = cell.metadata.pop(METADATA_KEY, None) == _WRAPPED
    if wrapped:
        cell.source = _unwrap(cell.source)
    elif cell.cell_type == "markdown":
        cell.source = _swap_markers(cell.source, _ANSWER, _BEGIN_SOLUTION, _END_SOLUTION)


def _mark_cell(cell: nbformat.NotebookNode, number: int, taken: set[str],
               written: dict[str, float] | None = None) -> None:
    """Give a coursekit cell with markers nbgrader's metadata; a named written answer
    (``<!-- BEGIN ANSWER q/a -->``) keeps its points from ``written``, by key, and its key
    as its grade id."""
    source = cell.source
    if cell.cell_type == "code" and any(_SOLUTION.match(line.strip())
                                        for line in source.split("\n")):
        defs = re.findall(r"^\s*def\s+([A-Za-z_]\w*)", source, re.MULTILINE)
        grade_id = _unique(cell.get("id") or (defs[0] if defs else f"cell-{number}"), taken)
        cell.metadata["nbgrader"] = _nbgrader_meta(False, True, False, grade_id)
    elif cell.cell_type == "markdown" and any(_ANSWER.match(line.strip())
                                              for line in source.split("\n")):
        names = [m.group("answer") for line in source.split("\n")
                 if (m := _ANSWER.match(line.strip())) and m.group("answer")]
        key = names[0] if names else None
        grade_id = _unique(key.replace("/", "_") if key else cell.get("id")
                           or f"cell-{number}", taken)
        cell.source = _swap_markers(source, _ANSWER, _BEGIN_SOLUTION, _END_SOLUTION)
        points = _same_points(None, (written or {}).get(key, 0))
        cell.metadata["nbgrader"] = _nbgrader_meta(True, True, False, grade_id, points)


def _imported_code(question: Question) -> str | None:
    """The test cell's code if ``question`` is one :func:`import_nbgrader` wrote."""
    if not all(t.probe.name == TEST_CELL_PROBE and isinstance(t.inputs, dict)
               and isinstance(t.inputs.get("code"), str) for t in question.tests):
        return None
    hidden = [t for t in question.tests if t.hidden]
    return (hidden or list(question.tests))[0].inputs["code"]


def _same_points(recorded: Any, total: float) -> Any:
    if isinstance(recorded, (int, float)) and math.isclose(recorded, total, rel_tol=1e-9):
        return recorded
    return int(total) if float(total).is_integer() else total


def export_notebook(solution: nbformat.NotebookNode, assignment: Assignment | None = None,
                    name: str = "notebook") -> nbformat.NotebookNode:
    """An nbgrader source notebook from a coursekit solution notebook and its assignment.

    Cells that carry ``nbgrader`` metadata (an imported notebook) are restored as nbgrader
    had them, and so are the test cells of questions :func:`import_notebook` wrote (from the
    notebook's ``coursekit_nbgrader`` metadata and the grading file's code). Other cells get
    metadata from their markers (see the module docstring), and every other question a
    locked autograder tests cell after the cell that defines what its probes call: asserts
    comparing each test's probe result with the expected value computed now (hidden tests
    in ``### BEGIN HIDDEN TESTS``), worth the question's points.

    Raises
    ------
    NbgraderError
        If the result breaks nbgrader's rules (e.g. duplicate grade_ids in the cells).
    GradingSpecError
        If the assignment's plan cannot be built.
    """
    from coursekit.grading.spec import build_plan

    nb = copy.deepcopy(solution)
    _set_ids(nb)
    imported = {t["question"]: t
                for t in nb.metadata.pop(METADATA_KEY, {}).get("test_cells", [])}
    taken = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
             if isinstance(c.metadata.get("nbgrader"), dict)
             and c.metadata["nbgrader"].get("grade_id")}
    written = {} if assignment is None else {
        f"{q.id}/{w.name}": w.points for q in assignment.questions for w in q.written}
    for number, cell in enumerate(nb.cells, start=1):
        if "nbgrader" in cell.metadata:
            _restore_cell(cell)
        else:
            _mark_cell(cell, number, taken, written)
    if assignment is None:
        check_nbgrader(nb, name)
        return nb
    plan = build_plan(assignment)
    for question in assignment.questions:
        if not question.tests:  # written answers only: their cells carry the points
            continue
        code, record = _imported_code(question), imported.get(question.id)
        if code is not None and record is not None:
            meta = copy.deepcopy(record["metadata"])
            meta["nbgrader"]["points"] = _same_points(meta["nbgrader"].get("points"),
                                                      plan.max_points(question.id))
            cell = nbformat.v4.new_code_cell(code, metadata=meta)
            cell.id = record["id"]
            anchor = record["after"]
        else:
            tests = [t for t in plan.tests if t.question == question.id]
            source = _generated_test_cell(question.id, question.title, tests, plan.probes,
                                          f"{assignment.name or name}_grading.py")
            points = _same_points(None, plan.max_points(question.id))
            cell = nbformat.v4.new_code_cell(source, metadata={"nbgrader": _nbgrader_meta(
                True, False, True, _unique(f"test_{question.id}", taken), points)})
            cell.id = _unique(f"test-{question.id}", {c.id for c in nb.cells})
            anchor = _anchor(nb, tests, plan.probes)
        ids = [c.id for c in nb.cells]
        position = 0 if anchor is None else (ids.index(anchor) + 1 if anchor in ids
                                             else len(ids))
        nb.cells.insert(position, cell)
    check_nbgrader(nb, name)
    nbformat.validate(nb)
    return nb


def _anchor(nb: nbformat.NotebookNode, tests: Sequence, probes: dict[str, str]) -> str | None:
    """The id of the last cell defining a name the tests' probes take from ``student``,
    skipping test cells; the last cell when none does."""
    wanted = set()
    for t in tests:
        wanted |= set(re.findall(r"student\[['\"](\w+)['\"]\]", probes[t.probe]))
    found = None
    for cell in nb.cells:
        if cell.cell_type == "code" and cell_kind(cell) != TESTS \
                and _defined_names(cell.source) & wanted:
            found = cell.id
    if found is None:
        return nb.cells[-1].id if nb.cells else None
    ids = [c.id for c in nb.cells]
    index = ids.index(found)
    while index + 1 < len(nb.cells) and cell_kind(nb.cells[index + 1]) == TESTS:
        index += 1  # after the test cells already placed there, in question order
    return ids[index]


def export_nbgrader(solution: str | Path, grading: str | Path | None = None,
                    out: str | Path | None = None, *, force: bool = False) -> Path:
    """Write the nbgrader source notebook of ``solution`` to ``out/<name>.ipynb``.

    ``grading`` defaults to ``<name>_grading.py`` beside the notebook, if it exists (else
    the notebook gets nbgrader metadata but no test cells). ``out`` defaults to
    ``source/<name>``, nbgrader's layout of a course folder. Existing files are overwritten
    only with ``force``. See :func:`export_notebook`.

    Raises
    ------
    NbgraderError
        If the result breaks nbgrader's rules, or the file exists.
    FileNotFoundError
        If ``solution`` or a given ``grading`` does not exist.
    """
    solution = Path(solution)
    name = solution.stem
    if grading is None:
        beside = solution.with_name(f"{name}_grading.py")
        grading = beside if beside.is_file() else None
    elif not Path(grading).is_file():
        raise FileNotFoundError(f"no such grading file: {grading}")
    assignment = load_assignment(grading) if grading is not None else None
    notebook = export_notebook(_read(solution), assignment, solution.name)
    path = (Path("source") / name if out is None else Path(out)) / f"{name}.ipynb"
    _write_new({path: _notebook_text(notebook)}, force)
    return path

