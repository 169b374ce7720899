"""A submission's written answers, read from its notebook file without running anything.

The release marks each graded answer's cell with its name
(``metadata["coursekit"]["answer"] = "part3/a"``, see
:func:`coursekit.grading.authoring.release_notebook`), so the student's answer is that
cell's Markdown, however they edited it. Beside it a grader wants what the answer
discusses: the outputs of the code cells of its part, i.e. the code cells between the
last heading before the answer cell and the answer cell itself, as the student submitted
them (their figures and tables, not a re-run); a written answer's ``shows`` names other
parts by the start of their headings instead (a discussion section about earlier figures).

Everything here reads a file a student wrote, so it is bounded and never raises on what
it finds: a notebook that is not JSON, a cell whose source is a number, an "image" that
is not a PNG. The text of an answer is cut at :data:`MAX_ANSWER_CHARS`, each output at
:data:`MAX_TEXT_CHARS` characters or :data:`MAX_PNG_BYTES` bytes, and at most
:data:`MAX_OUTPUTS` outputs are kept per answer.

:func:`digest` is the hash the grading store keeps with a grade: when a resubmission's
answer hashes differently, the grade stays and is flagged "answer changed since graded".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from coursekit.grading.spec import PlannedWritten

__all__ = ["MAX_ANSWER_CHARS", "MAX_OUTPUTS", "MAX_PNG_BYTES", "MAX_TEXT_CHARS", "PNG_SIGNATURE",
           "Output",
           "WrittenAnswer", "digest", "read"]

MAX_ANSWER_CHARS = 50_000
MAX_TEXT_CHARS = 20_000
MAX_PNG_BYTES = 2 * 2**20
MAX_OUTPUTS = 24
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
"""The first bytes of every PNG file: an output image is kept only if it starts with them."""


@dataclass(frozen=True)
class Output:
    """One output of a code cell: ``kind`` "text" (``data`` a str) or "png" (bytes that
    start with the PNG signature)."""

    kind: str
    data: str | bytes


@dataclass(frozen=True)
class WrittenAnswer:
    """The student's answer ``key`` as submitted.

    ``present`` is False when the notebook has no cell for it (or cannot be read:
    ``note`` says why); ``text`` is the answer cell's Markdown (cut to
    :data:`MAX_ANSWER_CHARS`; ``cut`` says so); ``outputs`` pairs the index of each code
    cell of the answer's part with that cell's outputs.
    """

    key: str
    present: bool
    text: str = ""
    sha256: str = ""
    cell: int | None = None
    cut: bool = False
    outputs: tuple[tuple[int, tuple[Output, ...]], ...] = ()
    note: str = ""


def digest(text: str) -> str:
    """The hash of an answer's text, blind to trailing spaces and line endings (which
    editors change without the student writing anything)."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return hashlib.sha256("\n".join(lines).strip().encode("utf-8", "replace")).hexdigest()


def _text(value: Any) -> str | None:
    """A notebook's multiline string (a str, or a list of str) as one str; else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    return None


def _cut(text: str, limit: int) -> tuple[str, bool]:
    return (text, False) if len(text) <= limit else (text[:limit], True)


def _heading(cell: Any) -> str | None:
    """A markdown cell's heading text (its first line without the ``#``), if it starts
    with one."""
    source = _text(cell.get("source"))
    if cell.get("cell_type") != "markdown" or source is None \
            or not source.lstrip().startswith("#"):
        return None
    return source.lstrip().split("\n", 1)[0].lstrip("#").strip()


def _png(value: Any) -> bytes | None:
    encoded = _text(value)
    if encoded is None or len(encoded) > MAX_PNG_BYTES * 4 // 3 + 1024:
        return None
    try:
        data = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if data.startswith(PNG_SIGNATURE) and len(data) <= MAX_PNG_BYTES else None


def _outputs(cell: Any) -> tuple[Output, ...]:
    kept = []
    outputs = cell.get("outputs")
    for output in outputs if isinstance(outputs, list) else ():
        if not isinstance(output, dict):
            continue
        kind = output.get("output_type")
        if kind == "stream":
            text = _text(output.get("text"))
        elif kind in ("execute_result", "display_data"):
            data = output.get("data") if isinstance(output.get("data"), dict) else {}
            image = _png(data.get("image/png"))
            if image is not None:
                kept.append(Output("png", image))
                continue
            text = _text(data.get("text/plain"))
        elif kind == "error":
            text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
            text = text if isinstance(text, str) else None
        else:
            text = None
        if text:
            kept.append(Output("text", _cut(text, MAX_TEXT_CHARS)[0]))
    return tuple(kept)


def _answer_cell(cell: Any) -> str | None:
    meta = cell.get("metadata")
    mark = meta.get("coursekit") if isinstance(meta, dict) else None
    answer = mark.get("answer") if isinstance(mark, dict) else None
    return answer if isinstance(answer, str) else None


def read(data: bytes, written: Sequence[PlannedWritten]) -> dict[str, WrittenAnswer]:
    """The answers to ``written`` in the notebook file ``data``, by answer key.

    A key the notebook has no cell for is ``present=False``; so is every key when
    ``data`` is not a notebook (``note`` says why). The first cell marked with a key
    is its answer. Never raises on the notebook's content.
    """
    keys = [w.key for w in written]
    try:
        notebook = json.loads(data)
        cells = notebook.get("cells") if isinstance(notebook, dict) else None
        if not isinstance(cells, list):
            raise ValueError("it has no list of cells")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        note = f"the notebook cannot be read: {exc}"[:300]
        return {key: WrittenAnswer(key, False, note=note) for key in keys}
    shows = {w.key: w.shows for w in written}
    sections: list[tuple[str, int]] = []  # every code cell with the heading it is under
    heading = ""
    for index, cell in enumerate(cells):
        if isinstance(cell, dict):
            heading = _heading(cell) if _heading(cell) is not None else heading
            if cell.get("cell_type") == "code":
                sections.append((heading, index))
    found: dict[str, WrittenAnswer] = {}
    part: list[int] = []  # the code cells since the last heading
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            continue
        key = _answer_cell(cell)
        if key in keys and key not in found:
            text, cut = _cut(_text(cell.get("source")) or "", MAX_ANSWER_CHARS)
            outputs, count = [], 0
            chosen = part if not shows.get(key) else [
                code for title, code in sections if title.startswith(shows[key])]
            for code in chosen:
                shown = _outputs(cells[code])[:MAX_OUTPUTS - count]
                if shown:
                    outputs.append((code, shown))
                    count += len(shown)
            found[key] = WrittenAnswer(key, True, text, digest(text), index, cut,
                                       tuple(outputs))
        if _heading(cell) is not None:
            part = []
        elif cell.get("cell_type") == "code":
            part.append(index)
    return {key: found.get(key) or WrittenAnswer(
        key, False, note="the notebook has no cell for this answer") for key in keys}
