"""``coursekit slides``: lecture notebooks to reveal.js slides, the notebooks untouched.

The slide structure is read back from the HTML nbconvert writes: reveal.js nests one
``<section>`` per horizontal slide inside ``<div class="slides">``, and one inner
``<section>`` per sub-slide inside it.
"""

from __future__ import annotations

import hashlib
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from coursekit import slides
from coursekit.cli import main

ROOT = Path(__file__).resolve().parents[1]
LECTURE = ROOT / "lectures" / "01_gradient_descent_and_the_graph.ipynb"


class _Slides(HTMLParser):
    """Text of each horizontal slide, and how many sub-slides each has."""

    def __init__(self) -> None:
        super().__init__()
        self.slides: list[dict] = []
        self._depth = 0          # nesting of <section> inside div.slides
        self._inside = False

    def handle_starttag(self, tag, attrs):
        if tag == "div" and ("class", "slides") in attrs:
            self._inside = True
        elif tag == "section" and self._inside:
            self._depth += 1
            if self._depth == 1:
                self.slides.append({"text": "", "subslides": 0, "headings": []})
            elif self._depth == 2:
                self.slides[-1]["subslides"] += 1
        elif tag in ("h1", "h2") and self._depth:
            self.slides[-1]["headings"].append("")

    def handle_endtag(self, tag):
        if tag == "section" and self._depth:
            self._depth -= 1

    def handle_data(self, data):
        if self._depth:
            self.slides[-1]["text"] += data
            if self.slides[-1]["headings"] and self.lasttag in ("h1", "h2"):
                self.slides[-1]["headings"][-1] += data


def _read_slides(html: str) -> list[dict]:
    parser = _Slides()
    parser.feed(html)
    return parser.slides


def _headings(path: Path) -> list[str]:
    """Every # and ## heading of a notebook's markdown, in order, without the #s."""
    notebook = nbformat.read(path, as_version=4)
    return [line.lstrip("#").strip() for cell in notebook.cells if cell.cell_type == "markdown"
            for piece in slides.split_headings(cell.source)
            for line in piece.splitlines()[:1] if line.startswith(("# ", "## "))]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_lecture_exports_one_slide_per_section_and_is_not_changed(tmp_path):
    before = _digest(LECTURE)
    assert main(["slides", str(LECTURE), "--out", str(tmp_path)]) == 0
    assert _digest(LECTURE) == before
    html = (tmp_path / f"{LECTURE.stem}.slides.html").read_text(encoding="utf-8")
    assert "reveal.js" in html
    found = _read_slides(html)
    expected = _headings(LECTURE)
    assert len(expected) >= 5                      # the title, sections, summary, references
    assert [s["headings"][0].rstrip("¶").strip() for s in found] == expected
    assert sum(s["subslides"] for s in found) > len(found)     # sections have sub-slides


def test_markdown_is_split_at_top_level_headings_outside_code_fences():
    text = "intro\n\n## A\ntext a\n```\n# a comment, not a heading\n```\n### C\n\n## B\nb"
    assert slides.split_headings(text) == [
        "intro", "## A\ntext a\n```\n# a comment, not a heading\n```\n### C", "## B\nb"]
    assert slides.split_headings("# Title only") == ["# Title only"]


def test_slide_types_follow_headings_and_cell_sizes():
    long_code = "\n".join(f"x{i} = {i}" for i in range(slides.LONG_CODE + 5))
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title\n\nwords\n\n## First section\nmore words"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("### A sub-section"),
        nbformat.v4.new_code_cell(long_code),
        nbformat.v4.new_markdown_cell("after the long cell"),
        nbformat.v4.new_markdown_cell("chosen by the author"),
    ])
    nb.cells[-1].metadata["slideshow"] = {"slide_type": "skip"}
    kinds = [(c.source.splitlines()[0], c.metadata["slideshow"]["slide_type"])
             for c in slides.slide_notebook(nb).cells]
    assert kinds == [("# Title", "slide"), ("## First section", "slide"), ("x = 1", "fragment"),
                     ("### A sub-section", "subslide"), ("x0 = 0", "subslide"),
                     ("after the long cell", "subslide"), ("chosen by the author", "skip")]
    assert "slideshow" not in nb.cells[0].metadata           # the input notebook is untouched
    crowded = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("## S")] + [
        nbformat.v4.new_markdown_cell("\n".join(["line"] * 8)) for _ in range(4)])
    assert [c.metadata["slideshow"]["slide_type"] for c in slides.slide_notebook(
        crowded, max_lines=20).cells] == ["slide", "fragment", "fragment", "subslide", "fragment"]


def test_executed_slides_show_the_outputs_and_leave_the_notebook_as_it_was(tmp_path):
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Tiny\n\n## Answer"),
        nbformat.v4.new_code_cell("print(6 * 7)")]), path)
    before = _digest(path)
    written = slides.build([tmp_path], tmp_path / "out", execute=True, timeout=60)
    assert written == [tmp_path / "out" / "tiny.slides.html"]
    assert _digest(path) == before
    found = _read_slides(written[0].read_text(encoding="utf-8"))
    assert [s["headings"][0].rstrip("¶").strip() for s in found] == ["Tiny", "Answer"]
    assert "42" in found[1]["text"]


def test_bad_paths_are_errors(tmp_path, capsys):
    assert main(["slides", str(tmp_path / "missing.ipynb"), "--out", str(tmp_path)]) == 2
    assert "no notebook at" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no notebooks in"):
        slides.build([tmp_path], tmp_path / "out")
    with pytest.raises(ValueError, match="max_lines"):
        slides.slide_notebook(nbformat.v4.new_notebook(), max_lines=0)
