"""An executed lecture shows a figure for every explorer, also where widgets cannot render.

The lecture is executed headless through nbclient, as ``jupyter nbconvert
--execute``, Jupyter Book and myst-nb do. Every cell that calls
``widgets.explore`` must leave an ordinary ``image/png`` output (what nbviewer,
GitHub and a site without widget support show), carried by the same output as the
widget view (what JupyterLab shows), and that image must be the figure the widget
itself holds in the notebook's saved widget state. No Output widget may be in that
state: drawing into one is what made these runs stall (see
:mod:`coursekit.viz.widgets`).

The lecture is the quickest one with an explorer in the runs of
``benchmarks/nbclient_stress.py`` (lecture 4, which has two).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LECTURE = ROOT / "lectures" / "04_momentum.ipynb"
PNG = b"\x89PNG\r\n\x1a\n"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _image_widget_png(state: dict, box_id: str) -> bytes:
    """The PNG held by the Image widget at the bottom of the explorer box ``box_id``."""
    image_id = state[box_id]["state"]["children"][-1].removeprefix("IPY_MODEL_")
    image = state[image_id]
    assert image["model_name"] == "ImageModel"
    (buffer,) = [b for b in image.get("buffers", []) if b["path"] == ["value"]]
    assert buffer["encoding"] == "base64"
    return base64.b64decode(buffer["data"])


@pytest.mark.slow
def test_every_explorer_of_an_executed_lecture_leaves_an_image(monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("COURSEKIT_FAST", "1")  # CI mode, and this checkout's coursekit:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [
        str(ROOT), os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(LECTURE, as_version=4)
    explorers = [i for i, cell in enumerate(nb.cells)
                 if cell.cell_type == "code" and "explore(" in cell.source]
    assert explorers, f"{LECTURE.name} has no explorer: pick another lecture"
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(LECTURE.parent)}}).execute()

    state = nb.metadata.widgets[WIDGET_STATE]["state"]
    assert not [model for model in state.values() if model["model_name"] == "OutputModel"]
    for i in explorers:
        shown = [output for output in nb.cells[i].outputs if "image/png" in output.get("data", {})]
        assert shown, f"cell {i} (an explorer) has no image/png output"
        (output,) = shown
        png = base64.b64decode(output.data["image/png"])
        assert png.startswith(PNG)
        assert WIDGET_VIEW in output.data, f"cell {i}: the image is not the widget's fallback"
        box_id = output.data[WIDGET_VIEW]["model_id"]
        assert png == _image_widget_png(state, box_id)
