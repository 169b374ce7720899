"""Committed notebooks are clean: valid, without outputs, and in the course's shape.

Executing them is nbval's job (see pyproject.toml and tests/notebook_timing.py);
these checks are about what is committed.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for folder in ("lectures", "homework", "solutions")
                   for p in (ROOT / folder).glob("*.ipynb"))
LECTURES = [p for p in NOTEBOOKS if p.parent.name == "lectures"]


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {i} of {_id(path)} has outputs"
            assert cell.execution_count is None, f"cell {i} of {_id(path)} has an execution count"


@pytest.mark.parametrize("path", [p for p in LECTURES if not p.name.startswith("00_")], ids=_id)
def test_lecture_has_the_course_shape(path):
    nb = nbformat.read(path, as_version=4)
    launch = {"coursekit-launch", "coursekit-setup"}  # the cells coursekit.launch writes
    cells = [c for c in nb.cells if not launch & set(c.metadata.get("tags", []))]
    markdown = [c.source for c in cells if c.cell_type == "markdown"]
    code = [c.source for c in cells if c.cell_type == "code"]
    assert markdown and markdown[0].lstrip().startswith("# "), "starts with a title"
    assert any("learning goals" in m.lower() for m in markdown[:3]), "learning goals up front"
    settings = next((c for c in code if not c.lstrip().startswith(("import", "from"))), "")
    assert any(line.split("=")[0].strip().isupper() for line in settings.splitlines()
               if "=" in line), "an ALL_CAPS settings cell before the story"
    headings = [line.strip().lower() for m in markdown for line in m.splitlines()
                if line.startswith("#")]
    assert any("summary" in h for h in headings) and any("exercises" in h for h in headings)
