"""Lecture notebooks as reveal.js slides: ``coursekit slides lectures/ --out _build/slides``.

Publishing tooling, on the top layer beside the command line: it reads notebooks and
writes HTML, and never changes the notebooks it reads. Each notebook is read into
memory, given slide metadata there (:func:`slide_notebook`), optionally executed there
(``execute=True``, so that the slides show the figures and tables), and exported with
nbconvert's ``SlidesExporter`` (:func:`export`).

How the cells become slides (a cell that already has ``slideshow`` metadata keeps it):

- a markdown cell is first split at every ``#`` and ``##`` heading (outside code
  fences), so that each such heading opens a cell of its own;
- a ``#`` or ``##`` heading starts a new slide: one horizontal slide per section;
- a ``###`` heading starts a sub-slide, below the section's slide;
- any other cell is added to the current slide as a fragment (shown on the next click)
  while the slide stays within ``max_lines`` lines; otherwise it starts a sub-slide;
- a code cell longer than ``long_code`` lines (its source, or its outputs once
  executed) gets a sub-slide of its own, and the slides scroll vertically, so a long
  cell stays readable instead of running off the screen.

Lines are counted roughly: source lines wrapped at 100 characters, text outputs by
their lines (at most 20), an image as 15 lines.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import nbformat

__all__ = ["SLIDE_TYPES", "build", "export", "slide_notebook", "split_headings"]

SLIDE_TYPES = ("slide", "subslide", "fragment", "skip", "notes", "-")
"""The values of a cell's ``metadata.slideshow.slide_type`` that reveal.js understands."""

MAX_LINES = 22
LONG_CODE = 18
_WRAP = 100
_IMAGE_LINES = 15
_TEXT_OUTPUT_LINES = 20
_HEADING = re.compile(r"^(#{1,6})\s+\S")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _heading_level(line: str) -> int:
    match = _HEADING.match(line)
    return len(match.group(1)) if match else 0


def split_headings(source: str, levels: int = 2) -> list[str]:
    """Split markdown at every heading of level ``levels`` or less (``#``, ``##``).

    Each returned piece after the first starts with such a heading; a heading inside
    a fenced code block does not count. Blank lines at the cuts are dropped.
    """
    pieces: list[list[str]] = [[]]
    fenced = False
    for line in source.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        if not fenced and 0 < _heading_level(line) <= levels and any(
                text.strip() for text in pieces[-1]):
            pieces.append([])
        pieces[-1].append(line)
    return ["\n".join(piece).strip("\n") for piece in pieces if any(t.strip() for t in piece)]


def _lines(text: str) -> int:
    return sum(max(1, -(-len(line) // _WRAP)) for line in text.splitlines())


def _output_lines(cell: nbformat.NotebookNode) -> int:
    total = 0
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if any(key.startswith("image/") for key in data):
            total += _IMAGE_LINES
        elif output.get("output_type") == "stream":
            total += min(_lines(output.get("text", "")), _TEXT_OUTPUT_LINES)
        elif "text/html" in data or "text/plain" in data:
            text = data.get("text/plain", "")
            total += min(_lines(text if isinstance(text, str) else "".join(text)),
                         _TEXT_OUTPUT_LINES)
    return total


def _size(cell: nbformat.NotebookNode) -> int:
    size = _lines(cell.source)
    return size + _output_lines(cell) if cell.cell_type == "code" else size


def _split_cells(cells: Iterable[nbformat.NotebookNode]) -> list[nbformat.NotebookNode]:
    out = []
    for cell in cells:
        pieces = split_headings(cell.source) if cell.cell_type == "markdown" else [cell.source]
        if len(pieces) <= 1 or "slideshow" in cell.get("metadata", {}):
            out.append(cell)
            continue
        for number, piece in enumerate(pieces):
            part = nbformat.v4.new_markdown_cell(piece)
            part.id = f"{cell.get('id') or 'cell'}-{number}"
            if number == 0 and cell.get("attachments"):
                part.attachments = cell.attachments
            out.append(part)
    return out


def slide_notebook(notebook: nbformat.NotebookNode, *, max_lines: int = MAX_LINES,
                   long_code: int = LONG_CODE) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with slide metadata on every cell (the rules above).

    Parameters
    ----------
    notebook : nbformat.NotebookNode
        A version-4 notebook; it is not changed.
    max_lines : int
        Roughly how many lines fit on one slide before a cell starts a sub-slide.
    long_code : int
        Code cells longer than this get a sub-slide of their own.

    Returns
    -------
    nbformat.NotebookNode
        The copy, without the cells tagged ``remove-cell`` (left out of the website
        too), with markdown cells split at ``#``/``##`` headings and
        ``metadata.slideshow.slide_type`` set on every cell.
    """
    if max_lines < 1 or long_code < 1:
        raise ValueError(f"max_lines and long_code must be >= 1, got {max_lines} and "
                         f"{long_code}")
    slides = copy.deepcopy(notebook)
    slides.cells = _split_cells([c for c in slides.cells  # e.g. the launch links' cell
                                 if "remove-cell" not in c.get("metadata", {}).get("tags", [])])
    used, alone = 0, False          # lines on the current (sub-)slide; a long cell is on it
    for number, cell in enumerate(slides.cells):
        size = _size(cell)
        given = cell.get("metadata", {}).get("slideshow", {}).get("slide_type")
        level = _heading_level(cell.source.lstrip()) if cell.cell_type == "markdown" else 0
        long = cell.cell_type == "code" and size > long_code
        if given in SLIDE_TYPES:
            kind = given
        elif number == 0 or 0 < level <= 2:
            kind = "slide"
        elif level == 3 or long or alone or used + size > max_lines:
            kind = "subslide"
        else:
            kind = "fragment"
        if kind in ("slide", "subslide"):
            used = 0
        if kind not in ("skip", "notes"):
            used += size
        alone = long and kind in ("slide", "subslide")
        cell.setdefault("metadata", {})["slideshow"] = {"slide_type": kind}
    return slides


def _execute(notebook: nbformat.NotebookNode, folder: Path, timeout: float) -> None:
    from nbclient import NotebookClient

    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()


def export(notebook: str | Path, out: str | Path, *, execute: bool = False,
           timeout: float = 600.0, reveal_prefix: str | None = None) -> Path:
    """Write ``<out>/<notebook stem>.slides.html``, reveal.js slides of one notebook.

    Parameters
    ----------
    notebook : path
        The notebook; it is read, never written.
    out : path
        Folder for the HTML (created if missing).
    execute : bool
        Run a copy of the notebook first (in its own folder, a fresh ``python3``
        kernel), so that the slides show its outputs. Without it the slides show the
        notebook as saved: the course's notebooks are saved without outputs.
    timeout : float
        Seconds per cell when executing.
    reveal_prefix : str, optional
        Where the HTML loads reveal.js from (default: nbconvert's CDN address); a
        local copy makes the slides work offline.

    Returns
    -------
    pathlib.Path
        The HTML file written.
    """
    from nbconvert import SlidesExporter

    path = Path(notebook)
    if path.suffix != ".ipynb" or not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    nb = nbformat.read(path, as_version=4)
    if execute:
        _execute(nb, path.parent.resolve(), timeout)
    exporter = SlidesExporter(reveal_scroll=True)
    if reveal_prefix:
        exporter.reveal_url_prefix = reveal_prefix
    html, _ = exporter.from_notebook_node(slide_notebook(nb))
    target = Path(out) / f"{path.stem}.slides.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    return target


def build(paths: Sequence[str | Path], out: str | Path, *, execute: bool = False,
          timeout: float = 600.0, reveal_prefix: str | None = None) -> list[Path]:
    """Export every notebook in ``paths`` (notebooks, or folders of notebooks) to ``out``.

    A folder contributes its ``*.ipynb`` files, sorted, not those of its subfolders.
    Returns the HTML files written, in that order.
    """
    notebooks: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            found = sorted(given.glob("*.ipynb"))
            if not found:
                raise FileNotFoundError(f"no notebooks in {given}")
            notebooks += found
        else:
            notebooks.append(given)
    return [export(path, out, execute=execute, timeout=timeout, reveal_prefix=reveal_prefix)
            for path in notebooks]
