"""Solution notebooks in, student notebooks out: markers, release, and the sync check.

Instructors write the full answer inside markers, the nbgrader way. In code::

    def momentum_step(theta, grad, velocity, lr, mu):
        \"\"\"One heavy-ball step.\"\"\"
        ### BEGIN SOLUTION
        velocity = mu * velocity + grad
        return theta - lr * velocity, velocity
        ### END SOLUTION

and in markdown, with markers that do not show when the cell is rendered::

    <!-- BEGIN ANSWER -->
    Early on, m and v are biased towards their zero start...
    <!-- END ANSWER -->

``coursekit release solutions/ homework/`` (:func:`release`) replaces each code
region by a stub that keeps the signature and raises ``NotImplementedError``
naming the function, and each markdown region by ``YOUR ANSWER HERE``; it drops
outputs, execution counts and cell metadata other than tags, and stamps the
notebook's metadata with its assignment's name and the public tests of
``<hw>_grading.py`` with their hash (see :mod:`coursekit.grading.selfcheck`), so
the notebook checks itself wherever it is copied. Hidden tests stay behind. A
solution notebook that has launch links (:mod:`coursekit.launch`) is released with
links to ``homework/<hw>.ipynb``, the student version's path in the repository, and
with its setup cell. The output depends on the solutions (and the repository's
``[tool.coursekit.launch]``) alone (stable JSON, no timestamps), and nothing
is written unless every notebook releases cleanly: unbalanced or misplaced
markers stop the release with an error naming the notebook, the cell and the line.

:func:`check_sync` tells whether a homework folder is what the release of its
solutions would produce.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path
from typing import Any

import nbformat

from coursekit.grading.child import python_source
from coursekit.grading.selfcheck import checks_fingerprint, embedded_metadata
from coursekit.grading.spec import Plan, build_plan, load_assignment

__all__ = ["MarkerError", "answer_names", "check_sync", "release", "release_notebook",
           "render_release", "strip_code", "strip_markdown"]

ANSWER_PLACEHOLDER = "YOUR ANSWER HERE"
_CODE_MARKER = re.compile(r"###\s*(BEGIN|END)\s+(SOLUTION|HIDDEN\s+TESTS)\Z", re.IGNORECASE)
_ANSWER_MARKER = re.compile(
    r"<!--\s*(BEGIN|END)\s+ANSWER(?:\s+(?P<answer>[a-z][a-z0-9_]*/[a-z][a-z0-9_]*))?\s*-->\Z",
    re.IGNORECASE)
_DEF = re.compile(r"\s*(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(")


class MarkerError(ValueError):
    """A solution notebook whose markers cannot be released as written."""


def balanced_regions(lines: list[str], marker: re.Pattern, where: str,
                     error: type[Exception] = MarkerError) -> list[tuple[int, int]]:
    """``(begin, end)`` line indices of each region that ``marker`` (whose first group is
    ``BEGIN`` or ``END``) opens and closes; raises ``error`` naming ``where`` and the line
    when they do not balance. nbgrader's import reads its markers with it too."""
    regions, begin = [], None
    for i, line in enumerate(lines):
        match = marker.match(line.strip())
        if match is None:
            continue
        text = line.strip()
        if match.group(1).upper() == "BEGIN":
            if begin is not None:
                raise error(f"{where}, line {i + 1}: {text!r} inside the region opened "
                            f"on line {begin + 1}, which is not closed")
            begin = i
        else:
            if begin is None:
                raise error(f"{where}, line {i + 1}: {text!r} has no matching BEGIN")
            regions.append((begin, i))
            begin = None
    if begin is not None:
        raise error(f"{where}, line {begin + 1}: {lines[begin].strip()!r} is never "
                    "closed by an END marker")
    return regions


def _regions(lines: list[str], marker: re.Pattern, where: str) -> list[tuple[int, int]]:
    """:func:`balanced_regions` of a solution notebook, which holds no hidden tests."""
    for i, line in enumerate(lines):
        match = marker.match(line.strip())
        if marker is _CODE_MARKER and match is not None \
                and match.group(2).upper().startswith("HIDDEN"):
            raise MarkerError(f"{where}, line {i + 1}: {line.strip()!r}: hidden tests belong "
                              "in the assignment's _grading.py, never in the notebook")
    return balanced_regions(lines, marker, where)


def _enclosing_function(lines: list[str], index: int) -> str | None:
    """The name of the function whose body contains line ``index``, if any."""
    indent = len(lines[index]) - len(lines[index].lstrip())
    for line in reversed(lines[:index]):
        if not line.strip():
            continue
        level = len(line) - len(line.lstrip())
        if level < indent:
            match = _DEF.match(line)
            if match:
                return match.group(1)
            indent = level
            if level == 0:
                return None
    return None


def _join(lines: list[str], source: str) -> str:
    return "\n".join(lines) + ("\n" if source.endswith("\n") else "")


def _refuse(source: str, marker: re.Pattern, where: str, use: str) -> None:
    for i, line in enumerate(source.splitlines()):
        if marker.match(line.strip()):
            raise MarkerError(f"{where}, line {i + 1}: {line.strip()!r} does not belong in "
                              f"this kind of cell; {use}")


def strip_code(source: str, where: str = "cell") -> str:
    """Replace each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region by a stub.

    The stub, at the marker's indentation, is a ``# YOUR CODE HERE`` comment and
    ``raise NotImplementedError("<function> is not implemented yet")``, so the
    function's signature and docstring stay and calling it fails clearly.

    Raises
    ------
    MarkerError
        Unbalanced or nested markers, hidden-test markers, markdown markers in
        code, or a release that would not be valid Python; ``where`` names the cell.
    """
    _refuse(source, _ANSWER_MARKER, where, "code cells use ### BEGIN/END SOLUTION")
    lines = source.splitlines()
    regions = _regions(lines, _CODE_MARKER, where)
    if not regions:
        return source
    out, last = [], 0
    for begin, end in regions:
        out += lines[last:begin]
        indent = lines[begin][:len(lines[begin]) - len(lines[begin].lstrip())]
        name = _enclosing_function(lines, begin)
        message = f"{name} is not implemented yet" if name else "replace this line with your code"
        out += [f"{indent}# YOUR CODE HERE", f'{indent}raise NotImplementedError("{message}")']
        last = end + 1
    out += lines[last:]
    released = _join(out, source)
    _check_compiles(source, released, where)
    return released


def _check_compiles(source: str, released: str, where: str) -> None:
    try:
        compile(python_source(source), where, "exec")
    except SyntaxError:
        return  # the solution itself is not plain Python; nothing to compare with
    try:
        compile(python_source(released), where, "exec")
    except SyntaxError as exc:
        raise MarkerError(f"{where}: the released code is not valid Python ({exc.msg}, "
                          f"line {exc.lineno}); put the markers around whole statements, "
                          "inside a block that has other lines") from None


def answer_names(source: str, where: str = "cell") -> list[str]:
    """The names of the written answers a markdown cell's regions declare
    (``<!-- BEGIN ANSWER part3/a -->`` declares ``part3/a``), in order.

    Raises
    ------
    MarkerError
        Unbalanced markers, an END naming another answer than its BEGIN, or more
        than one named answer in the cell (each graded answer has a cell of its own,
        which is how the grader finds it in a submission).
    """
    lines = source.splitlines()
    names = []
    for begin, end in _regions(lines, _ANSWER_MARKER, where):
        name = _ANSWER_MARKER.match(lines[begin].strip()).group("answer")
        closing = _ANSWER_MARKER.match(lines[end].strip()).group("answer")
        if closing is not None and closing != name:
            raise MarkerError(f"{where}, line {end + 1}: {lines[end].strip()!r} closes the "
                              f"answer opened on line {begin + 1} as {name!r}")
        if name is not None:
            names.append(name)
    if len(names) > 1:
        raise MarkerError(f"{where}: holds the written answers {', '.join(names)}; give each "
                          "graded answer a markdown cell of its own")
    return names


def _points_line(points: float) -> str:
    return f"*{points:g} point{'s' * (points != 1)}, graded by hand.*"


def strip_markdown(source: str, where: str = "cell",
                   points: dict[str, float] | None = None) -> str:
    """Replace each ``<!-- BEGIN ANSWER -->`` ... ``<!-- END ANSWER -->`` region by
    ``YOUR ANSWER HERE``; a named answer's region (``<!-- BEGIN ANSWER part3/a -->``)
    is preceded by its points from ``points`` ("3 points, graded by hand").

    Raises
    ------
    MarkerError
        Unbalanced or nested markers, or code markers in markdown.
    """
    _refuse(source, _CODE_MARKER, where, "markdown cells use <!-- BEGIN/END ANSWER -->")
    lines = source.splitlines()
    regions = _regions(lines, _ANSWER_MARKER, where)
    out, last = [], 0
    for begin, end in regions:
        name = _ANSWER_MARKER.match(lines[begin].strip()).group("answer")
        shown = [_points_line(points[name]), ""] if points and name in points else []
        out += [*lines[last:begin], *shown, ANSWER_PLACEHOLDER]
        last = end + 1
    return _join(out + lines[last:], source) if regions else source


def _check_answers(declared: dict[str, str], checks: Plan | None, name: str) -> None:
    """Every named answer region has a written answer in the grading file, and back."""
    expected = {w.key for w in checks.written} if checks is not None else set()
    for key, where in declared.items():
        if key not in expected:
            grading = (f"{checks.assignment}_grading.py" if checks is not None
                       else "no grading file")
            raise MarkerError(f"{where}: the answer region {key!r} has no Written answer "
                              f"in {grading}")
    missing = sorted(expected - set(declared))
    if missing:
        raise MarkerError(f"{checks.assignment}_grading.py declares the written answer"
                          f"{'s' * (len(missing) > 1)} {', '.join(missing)}, but {name} has "
                          f"no region <!-- BEGIN ANSWER {missing[0]} --> for "
                          f"{'them' if len(missing) > 1 else 'it'}")


def release_notebook(notebook: nbformat.NotebookNode, assignment: str,
                     name: str = "notebook", checks: Plan | None = None) -> nbformat.NotebookNode:
    """The student version of a solution notebook (see the module docstring).

    ``name`` (the file name) appears in error messages. Cells keep their ids
    (``cell-<n>`` when a cell has none) and only their ``tags`` metadata. The
    public tests of ``checks`` (hidden ones are dropped) go into the notebook's
    metadata with their hash, as :func:`~coursekit.grading.selfcheck.embedded_metadata`
    writes them. A cell holding a named written answer (``<!-- BEGIN ANSWER part3/a
    -->``) shows its points and keeps its name in ``metadata["coursekit"]["answer"]``,
    where the grader finds the student's answer; the rubric stays behind.

    Raises
    ------
    MarkerError
        Misplaced markers, or an answer region and the written answers of ``checks``
        that do not match one to one (each names the other).
    """
    points = {w.key: w.points for w in checks.written} if checks is not None else {}
    cells, declared = [], {}
    for number, cell in enumerate(notebook.cells, start=1):
        kind = cell.get("cell_type")
        cell_id = cell.get("id") or f"cell-{number}"
        where = f"{name}, cell {number} ({kind}, id {cell_id})"
        answers = []
        if kind == "code":
            new = nbformat.v4.new_code_cell(strip_code(cell.source, where))
        elif kind == "markdown":
            answers = answer_names(cell.source, where)
            for key in answers:
                if key in declared:
                    raise MarkerError(f"{where}: the answer {key!r} is declared again "
                                      f"(first in {declared[key]})")
                declared[key] = where
            new = nbformat.v4.new_markdown_cell(strip_markdown(cell.source, where, points))
            if cell.get("attachments"):
                new.attachments = cell.attachments
        else:
            _refuse(cell.source, _CODE_MARKER, where, "markers belong in code or markdown")
            _refuse(cell.source, _ANSWER_MARKER, where, "markers belong in code or markdown")
            new = nbformat.v4.new_raw_cell(cell.source)
        new.id = cell_id
        tags = cell.get("metadata", {}).get("tags")
        if tags:
            new.metadata = nbformat.NotebookNode({"tags": list(tags)})
        if answers:
            new.metadata["coursekit"] = {"answer": answers[0]}
        cells.append(new)
    _check_answers(declared, checks, name)
    released = nbformat.v4.new_notebook(cells=cells)
    for key in ("kernelspec", "language_info"):
        if key in notebook.metadata:
            released.metadata[key] = notebook.metadata[key]
    released.metadata["coursekit"] = embedded_metadata(assignment, checks)
    nbformat.validate(released)
    return released


def _notebook_text(notebook: nbformat.NotebookNode) -> str:
    text = nbformat.writes(notebook, version=4)
    return text if text.endswith("\n") else text + "\n"


def _relaunch(notebook: nbformat.NotebookNode, solutions: Path, path: str) -> None:
    """Point a released notebook's launch links at ``path``, if its solution had them."""
    from coursekit import launch  # publishing, on the grading side's layer: loaded on use

    if not any(launch.LAUNCH_TAG in cell.get("metadata", {}).get("tags", [])
               for cell in notebook.cells):
        return
    try:
        config = launch.read_config(launch.find_root(solutions))
    except FileNotFoundError as exc:
        raise ValueError(f"{solutions} has notebooks with launch links, whose release reads "
                         f"[tool.coursekit.launch] from the repository's pyproject.toml: "
                         f"{exc}") from None
    launch.apply(notebook, config, path)
    nbformat.validate(notebook)


def render_release(solutions: str | Path) -> dict[str, str]:
    """The files ``release(solutions, ...)`` writes, by file name, as text.

    For every ``<hw>.ipynb`` in ``solutions`` (not recursive): the released
    ``<hw>.ipynb``, carrying the public tests of ``<hw>_grading.py`` if it exists.
    A notebook with a launch cell gets the launch and setup cells of
    ``homework/<hw>.ipynb`` from the configuration of the repository that holds
    ``solutions`` (:func:`coursekit.launch.apply`): the links point at the student
    version on GitHub, wherever this release is written.

    Raises
    ------
    MarkerError
        If a notebook's markers are unbalanced or misplaced.
    ValueError
        If ``solutions`` is not a folder, a notebook cannot be read, a grading
        file has no notebook, or notebooks with launch links have no repository
        configuration (``pyproject.toml``) at or above ``solutions``.
    """
    solutions = Path(solutions)
    if not solutions.is_dir():
        raise ValueError(f"solutions must be a folder, got {str(solutions)!r}")
    files = {}
    notebooks = sorted(solutions.glob("*.ipynb"))
    for path in notebooks:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                notebook = nbformat.read(path, as_version=4)
        except Exception as exc:
            raise ValueError(f"{path} is not a readable notebook: {exc}") from None
        grading = solutions / f"{path.stem}_grading.py"
        plan = (build_plan(load_assignment(grading), include_hidden=False)
                if grading.is_file() else None)
        released = release_notebook(notebook, path.stem, path.name, plan)
        _relaunch(released, solutions, f"homework/{path.name}")
        files[path.name] = _notebook_text(released)
    stems = {p.stem for p in notebooks}
    orphans = sorted(p.name for p in solutions.glob("*_grading.py")
                     if p.name.removesuffix("_grading.py") not in stems)
    if orphans:
        raise ValueError(f"grading files without a notebook in {solutions}: {', '.join(orphans)}")
    return files


def release(solutions: str | Path, homework: str | Path) -> list[Path]:
    """Write the student versions of every notebook in ``solutions`` to ``homework``.

    Everything is rendered before anything is written, so a marker error leaves
    ``homework`` untouched. Returns the paths written, sorted.
    """
    files = render_release(solutions)
    homework = Path(homework)
    homework.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sorted(files.items()):
        path = homework / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _same_json(a: Any, b: Any) -> bool:
    """Equal JSON values, floats equal to 1e-9 relative (platforms round differently)."""
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) \
                or isinstance(a, bool) or isinstance(b, bool):
            return False
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9,
                                                                  abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return sorted(a) == sorted(b) and all(_same_json(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _same_checks(actual: Any, expected: Any) -> bool:
    """Whether two notebooks' ``metadata["coursekit"]`` hold the same assignment and public
    tests (expected values to 1e-9 relative), the actual one with a valid hash."""
    if not isinstance(actual, dict) or not isinstance(expected, dict) \
            or sorted(actual) != sorted(expected) \
            or actual.get("assignment") != expected.get("assignment"):
        return False
    if "public_checks" not in expected:
        return actual == expected
    text = actual.get("public_checks")
    if not isinstance(text, str) or actual.get("sha256") != checks_fingerprint(
            actual["assignment"], text):
        return False
    try:
        return _same_json(json.loads(text), json.loads(expected["public_checks"]))
    except ValueError:
        return False


def _as_written(notebook: Any) -> str | None:
    """The text nbformat writes for a notebook's JSON, None if it is not a notebook."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _notebook_text(nbformat.from_dict(notebook))
    except Exception:  # anything nbformat refuses is out of date
        return None


def _compare_notebooks(actual: str, expected: str) -> str:
    """Why the notebook text ``actual`` is not the release ``expected``; "" when it is.

    Byte for byte, except that expected values in the embedded public checks may
    differ in their last bits (1e-9 relative), as releases on different machines do.
    """
    if actual == expected:
        return ""
    try:
        old, new = json.loads(actual), json.loads(expected)
        old_cells, new_cells = old.get("cells", []), new["cells"]
        old_stamp = old.get("metadata", {}).get("coursekit")
        new_stamp = new["metadata"]["coursekit"]
    except (ValueError, AttributeError, KeyError, TypeError):
        return "it is not a readable notebook"
    if _same_checks(old_stamp, new_stamp) and _as_written(old) == actual:
        old["metadata"]["coursekit"] = new_stamp
        if _as_written(old) == expected:
            return ""
    for number, (a, b) in enumerate(zip(old_cells, new_cells, strict=False), start=1):
        if a != b:
            return f"first difference in cell {number}"
    if len(old_cells) != len(new_cells):
        return f"it has {len(old_cells)} cells, the release has {len(new_cells)}"
    if not _same_checks(old_stamp, new_stamp):
        return "its embedded public checks differ"
    return "notebook metadata or formatting differ"


def check_sync(solutions: str | Path, homework: str | Path) -> list[str]:
    """What differs between ``homework`` and the release of ``solutions``.

    Notebooks must match the release byte for byte, except for expected values
    in their embedded public checks, which must be equal to 1e-9 relative (the
    last bits of a float can differ between machines) with a valid hash.
    Notebooks in ``homework`` with no source, and ``<hw>_public.json`` files
    (older releases wrote them; nothing reads them now), are reported too.

    Returns
    -------
    list of str
        One message per problem; empty when in sync. Use as
        ``assert check_sync("solutions", "homework") == []``.
    """
    solutions, homework = Path(solutions), Path(homework)
    expected = render_release(solutions)
    fix = f"run `coursekit release {solutions} {homework}`"
    problems = []
    for name, text in sorted(expected.items()):
        path = homework / name
        if not path.is_file():
            problems.append(f"{path} is missing; {fix}")
            continue
        why = _compare_notebooks(path.read_text(encoding="utf-8"), text)
        if why:
            problems.append(f"{path} is out of date ({why}); {fix}")
    for path in sorted(homework.glob("*.ipynb")):
        if path.name not in expected:
            problems.append(f"{path} has no source in {solutions}; delete it or add its "
                            "solution")
    for path in sorted(homework.glob("*_public.json")):
        problems.append(f"{path} is left from an older release (the public checks are inside "
                        "the notebook now, and nothing reads this file); delete it")
    return problems
