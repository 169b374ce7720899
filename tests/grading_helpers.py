"""Shared by the grading tests: the example assignment and notebooks built from it.

Test notebooks are made here from the committed solution, with nbformat, rather
than committed one by one: each helper names the edit a real submission makes.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import random
import re
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit.grading import Plan, build_plan, grade, load_assignment

EXAMPLE = Path(__file__).parent / "grading_example"
SOLUTIONS = EXAMPLE / "solutions"
HOMEWORK = EXAMPLE / "homework"
GRADING = SOLUTIONS / "example_grading.py"


def full_plan() -> Plan:
    """Every test of the example assignment, hidden ones included."""
    return build_plan(load_assignment(GRADING))


def solution() -> nbformat.NotebookNode:
    """A fresh copy of the example's solution notebook."""
    return nbformat.read(SOLUTIONS / "example.ipynb", as_version=4)


def homework() -> nbformat.NotebookNode:
    """A fresh copy of the example's released homework notebook."""
    return nbformat.read(HOMEWORK / "example.ipynb", as_version=4)


def index(notebook: nbformat.NotebookNode, cell_id: str) -> int:
    """Position of the cell with id ``cell_id``."""
    return next(i for i, cell in enumerate(notebook.cells) if cell.id == cell_id)


def edit(notebook: nbformat.NotebookNode, cell_id: str, old: str,
         new: str) -> nbformat.NotebookNode:
    """Replace ``old`` by ``new`` in one cell (``old`` must be there)."""
    cell = notebook.cells[index(notebook, cell_id)]
    assert old in cell.source, f"{old!r} not in cell {cell_id}"
    cell.source = cell.source.replace(old, new)
    return notebook


def with_cell(notebook: nbformat.NotebookNode, source: str,
              after: str | None = None) -> nbformat.NotebookNode:
    """Insert a code cell after the cell ``after`` (at the end by default)."""
    position = len(notebook.cells) if after is None else index(notebook, after) + 1
    notebook.cells.insert(position, new_code_cell(source))
    return notebook


def without(notebook: nbformat.NotebookNode, cell_id: str) -> nbformat.NotebookNode:
    """Delete one cell."""
    del notebook.cells[index(notebook, cell_id)]
    return notebook


def as_markdown(notebook: nbformat.NotebookNode, cell_id: str) -> nbformat.NotebookNode:
    """Turn one code cell into a markdown cell with the same text."""
    i = index(notebook, cell_id)
    notebook.cells[i] = new_markdown_cell(notebook.cells[i].source)
    return notebook


def duplicated(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Every cell twice in a row, as after a careless copy and paste."""
    cells = []
    for cell in notebook.cells:
        twin = copy.deepcopy(cell)
        twin.id = f"{cell.id}-copy"
        cells += [cell, twin]
    notebook.cells = cells
    return notebook


def moved_first(notebook: nbformat.NotebookNode, cell_id: str) -> nbformat.NotebookNode:
    """Move one cell to the top of the notebook."""
    cell = notebook.cells.pop(index(notebook, cell_id))
    notebook.cells.insert(0, cell)
    return notebook


def emptied(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove every cell."""
    notebook.cells = []
    return notebook


def stamped(notebook: nbformat.NotebookNode, assignment: str) -> nbformat.NotebookNode:
    """Give the notebook release metadata naming ``assignment``."""
    notebook.metadata["coursekit"] = {"assignment": assignment}
    return notebook


def notebook_bytes(*sources: str) -> bytes:
    """The file of a notebook whose code cells are ``sources``, as the grader reads it."""
    notebook = new_notebook(cells=[new_code_cell(source) for source in sources])
    return nbformat.writes(notebook).encode()


def write(notebook: nbformat.NotebookNode | str, path: Path) -> Path:
    """Save a notebook (or raw text, for broken files) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(notebook, str):
        path.write_text(notebook, encoding="utf-8")
    else:
        nbformat.write(notebook, path)
    return path


def points_without(plan: Plan, *failing: str) -> float:
    """The score of a submission that fails exactly the tests whose key starts
    with one of ``failing`` (``"adam/"`` for a question, ``"adam/moments"`` for a test)."""
    return sum(t.points for t in plan.tests if not t.key.startswith(failing))


# Typical wrong answers, as edits of the solution.
SIGN_ERROR = ("momentum-code", "theta = theta - lr * velocity", "theta = theta + lr * velocity")
NO_BIAS_CORRECTION = ("adam-code", "theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)",
                      "theta = theta - lr * m / (np.sqrt(v) + eps)")
OFF_BY_ONE = ("trajectory-code", "for t in range(1, num_steps + 1):",
              "for t in range(1, num_steps):")


def grade_batch(grading: Path, notebooks: dict[str, nbformat.NotebookNode | str], root: Path, *,
                timeout: float, cell_timeout: float) -> dict:
    """Write ``notebooks`` to ``root/submissions`` and grade them in one batch, two workers.

    Returns the results by submission name; the grader's files are in ``root/out``.
    """
    for name, notebook in notebooks.items():
        write(notebook, root / "submissions" / f"{name}.ipynb")
    results = grade(grading, root / "submissions", root / "out", workers=2, timeout=timeout,
                    cell_timeout=cell_timeout, progress=False)
    return {result.name: result for result in results}


def points_split(plan: Plan, grading: Path) -> tuple[tuple[float, ...] | None, tuple[float, ...]]:
    """(what the grading file's docstring says, what the plan has): total, public, hidden points.

    The docstring states it as "Points: N in all, P on public tests and H on hidden ones";
    the first item is None when it does not.
    """
    public = sum(t.points for t in plan.tests if not t.hidden)
    hidden = sum(t.points for t in plan.tests if t.hidden)
    docstring = ast.get_docstring(ast.parse(grading.read_text(encoding="utf-8"))) or ""
    said = re.search(r"Points: (\d+) in all, (\d+) on public tests and (\d+) on hidden ones",
                     " ".join(docstring.split()))
    stated = tuple(float(n) for n in said.groups()) if said else None
    return stated, (plan.max_points(), public, hidden)


def load_module(path: Path, name: str):
    """A grading file imported as a module (its probes and helpers, called in-process)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# A class: copies of the solution and of typical mistakes, as a real batch looks.
CLASS_MIX = {"solution": 10, "wrong_sign": 3, "no_bias_correction": 3, "off_by_one": 2,
             "not_attempted": 2}
"""How often each kind of submission is drawn (weights) by :func:`write_class`."""


def class_notebook(kind: str) -> nbformat.NotebookNode:
    """A submission of ``kind`` (a key of :data:`CLASS_MIX`)."""
    edits = {"wrong_sign": SIGN_ERROR, "no_bias_correction": NO_BIAS_CORRECTION,
             "off_by_one": OFF_BY_ONE}
    if kind == "not_attempted":
        return homework()
    return edit(solution(), *edits[kind]) if kind in edits else solution()


def write_class(folder: Path, size: int, seed: int = 18) -> dict[str, str]:
    """Write ``size`` submissions ``s000.ipynb``, ``s001.ipynb``, ... to ``folder``: each
    of a kind drawn from :data:`CLASS_MIX` by a generator seeded with ``seed``, so the
    first ``n`` of a class of any size are the same. Returns each name's kind."""
    rng = random.Random(seed)
    kinds, weights = zip(*CLASS_MIX.items(), strict=True)
    files = {kind: nbformat.writes(class_notebook(kind)) for kind in kinds}
    folder.mkdir(parents=True, exist_ok=True)
    drawn = {}
    for i in range(size):
        drawn[f"s{i:03d}"] = kind = rng.choices(kinds, weights)[0]
        (folder / f"s{i:03d}.ipynb").write_text(files[kind], encoding="utf-8")
    return drawn
