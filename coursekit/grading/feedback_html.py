"""The feedback report as one HTML page, for the student and for the instructor.

:func:`render` turns a submission's feedback (:func:`coursekit.grading.report.feedback`,
the JSON the grader writes as ``feedback/<submission>.json``) and, when given, the
notebook's bytes into one self-contained page: inline CSS, no script, no image, no
font, nothing fetched from the network. ``coursekit grade`` writes it as
``feedback/<submission>.html``; ``coursekit check NOTEBOOK --html PATH`` writes the
same page for the public tests.

What the page shows
-------------------
- the assignment, the submission, how its run went (status and detail), the total score
  ``x / max`` with its percentage, and each question's score out of its maximum;
- each **public** test: its name, description, points, passed or failed, the
  comparison's message, its inputs, and what was expected beside what the notebook
  gave. Arrays are printed compactly (NumPy's way: the first and last entries around
  ``...`` when they are long) and the entries that differ are marked on both sides,
  as :func:`coursekit.grading.verdict.differing` decides it with the test's tolerances
  (the very comparison that gave the verdict);
- each **hidden** test: its name, points and passed or failed, nothing else;
- the cells that raised or ran out of time, with the cell number and the error,
  whose traceback holds only the student's own lines
  (:func:`coursekit.grading.child.describe`);
- the student's notebook: each cell's source (code highlighted with Pygments,
  markdown as plain text), numbered as the grader numbers cells (every cell counts,
  markdown included, from 1), with its problem under it and the failing line marked.

Why nothing hidden leaks
------------------------
The feedback JSON already carries no more of a hidden test than its name, points and
verdict. The renderer reads only those keys of any test not marked ``"public"``, so a
feedback dict that carries more by mistake still shows no more. References, seeds and
hidden inputs never reach it.

A hostile notebook
------------------
Everything that comes from the submission (cell sources, error messages, returned
values, the submission's name) is escaped, and the page carries a Content Security
Policy that allows inline styles and nothing else, so even a missed escape could not
run a script or load anything. The notebook's stored outputs are never shown: they
are not what the grader ran, and they are the student's to forge. Rendering runs in
the grader's process, so its cost is linear in the notebook's bytes and bounded: at
most :data:`MAX_NOTEBOOK_BYTES` are parsed, and only when they hold at most
:data:`MAX_JSON_VALUES` JSON values (counted on the bytes before parsing); at most
:data:`MAX_CELLS` cells, :data:`MAX_CELL_CHARS` characters of each,
:data:`MAX_SOURCE_CHARS` in all and about :data:`MAX_NOTEBOOK_HTML` characters of HTML
are shown, each value at most :data:`MAX_VALUE_HTML`, and the page says what it left
out. So a page holds the assignment's own text (descriptions, public inputs and
expected values) and at most a few MiB more, whatever the submission.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from coursekit.grading.child import MAX_NOTEBOOK_BYTES
from coursekit.grading.verdict import differing

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "MAX_CELLS",
    "MAX_CELL_CHARS",
    "MAX_JSON_VALUES",
    "MAX_NOTEBOOK_BYTES",
    "MAX_NOTEBOOK_HTML",
    "MAX_SOURCE_CHARS",
    "MAX_VALUE_HTML",
    "render",
]

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
MAX_JSON_VALUES = 2_000_000
MAX_CELLS = 500
MAX_CELL_CHARS = 10_000
MAX_SOURCE_CHARS = 200_000
MAX_NOTEBOOK_HTML = 2**20
MAX_VALUE_HTML = 20_000
EDGE_ITEMS = 3  # entries shown at each end of a long axis, as NumPy prints
SUMMARY_THRESHOLD = 60  # arrays with more entries than this are summarised
MAX_ROWS = 50  # rows of expected against got per test
MAX_ITEMS = 20  # items shown of a list or dict that is not an array
MAX_VALUE_CHARS = 1000  # characters shown of a string value
MAX_NUMBER_CHARS = 40

_TRACEBACK_LINE = re.compile(r"\bcell (\d{1,5}), line (\d{1,7})\b")
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_MISSING = object()

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1f24;
       margin: 0 auto; max-width: 1100px; padding: 1.5em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
h3 { font-size: 1em; margin: 0 0 0.3em 0; }
.meta { color: #57606a; margin-top: 0; }
.detail { white-space: pre-wrap; }
.total { font-size: 1.3em; font-weight: 600; }
.banner { background: #fff8c5; border: 1px solid #d4a72c; padding: 0.6em 0.9em;
          border-radius: 6px; }
.status { display: inline-block; padding: 0.1em 0.6em; border-radius: 1em; font-weight: 600; }
.status.good { background: #dafbe1; color: #116329; }
.status.warn { background: #fff1c2; color: #7d4e00; }
.status.bad { background: #ffebe9; color: #a40e26; }
table { border-collapse: collapse; margin: 0.4em 0; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.test { border: 1px solid #d0d7de; border-left: 6px solid #d0d7de; border-radius: 6px;
        padding: 0.6em 0.9em; margin: 0.7em 0; }
.test.passed { border-left-color: #2da44e; } .test.failed { border-left-color: #cf222e; }
.verdict { font-weight: 700; } .passed .verdict, td.passed { color: #116329; }
.failed .verdict, td.failed { color: #a40e26; }
.message { background: #f6f8fa; padding: 0.3em 0.6em; border-radius: 4px; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word;
      font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
mark.differs { background: #ffcecb; color: #82071e; font-weight: 700; padding: 0 1px; }
td.differs { background: #fff5f5; }
.note { color: #57606a; font-style: italic; }
.error { background: #ffebe9; border: 1px solid #ff8182; border-radius: 4px;
         padding: 0.4em 0.6em; margin-top: 0.4em; }
.cell { display: flex; gap: 0.8em; margin: 0.5em 0; }
.cell .number { flex: 0 0 4.5em; color: #57606a; font: 12px ui-monospace, monospace;
                text-align: right; padding-top: 0.5em; }
.cell .body { flex: 1; min-width: 0; }
.cell.code .source { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 4px;
                     padding: 0.4em 0.6em; }
.cell.markdown .text, .cell.raw .text { padding: 0.4em 0.6em; border-left: 3px solid #d0d7de; }
.cell.problem .source { border-color: #ff8182; }
.linenos { color: #8c959f; padding-right: 0.8em; user-select: none; }
.hll { background: #ffebe9; display: block; }
.written { border: 1px solid #d0d7de; border-left: 6px solid #8250df; border-radius: 6px;
           padding: 0.6em 0.9em; margin: 0.7em 0; }
.written.ungraded { border-left-color: #d0d7de; color: #57606a; }
.written .comment { background: #fbefff; padding: 0.3em 0.6em; border-radius: 4px; }
.late { background: #fff8c5; border: 1px solid #d4a72c; padding: 0.4em 0.9em;
        border-radius: 6px; }
"""


# Values: arrays printed compactly, the differing entries marked ------------------------------

def _e(value: Any) -> str:
    """``value`` as text, escaped for HTML (quotes included)."""
    return html.escape(value if isinstance(value, str) else str(value), quote=True)


def _fmt(points: Any) -> str:
    """Points as the gradebook writes them."""
    try:
        return f"{float(points):.6g}"
    except (TypeError, ValueError):
        return "?"


def _restored(value: Any) -> Any:
    """A value of the feedback JSON with its non-finite numbers back: JSON has none, so
    the grader writes NaN and the infinities as ``"nan"``, ``"inf"`` and ``"-inf"``."""
    if isinstance(value, list):
        return [_restored(item) for item in value]
    if isinstance(value, str) and value in _NONFINITE:
        return _NONFINITE[value]
    return value


def _all_numbers(value: Any) -> bool:
    if isinstance(value, list):
        return all(_all_numbers(item) for item in value)
    return type(value) in (bool, int, float)


def _as_array(value: Any) -> np.ndarray | None:
    """``value`` (restored) as an array, if it is a number or a rectangular nested list
    of numbers; else None."""
    if not _all_numbers(value):
        return None
    try:
        array = np.array(value)
    except (ValueError, OverflowError):  # ragged
        return None
    return array if array.dtype.kind in "biuf" or array.dtype == object else None


def _number(x: Any, digits: int | None = None) -> str:
    """One entry as Python prints it: a float to ``digits`` significant digits, or
    exactly (its shortest repr) when ``digits`` is None."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    text = f"{x:.{digits}g}" if isinstance(x, float) and digits is not None else repr(x)
    if len(text) > MAX_NUMBER_CHARS:
        return f"<an integer of {len(text.lstrip('-'))} digits>"
    return text


def _kept_indices(length: int, summarise: bool) -> list[int | None]:
    """The indices shown along an axis (None where ``...`` stands)."""
    if not summarise or length <= 2 * EDGE_ITEMS:
        return list(range(length))
    return [*range(EDGE_ITEMS), None, *range(length - EDGE_ITEMS, length)]


def _digits(expected: np.ndarray, got: np.ndarray, bad: np.ndarray) -> int:
    """The fewest significant digits, 8 at least, at which each differing entry reads
    differently in ``expected`` and in ``got`` (all of them at 17)."""
    pairs = [(expected.reshape(-1).item(k), got.reshape(-1).item(k))
             for k in np.flatnonzero(bad)[:100]]
    for digits in (8, 11, 14):
        if all(_number(e, digits) != _number(g, digits) for e, g in pairs):
            return digits
    return 17


def _array_html(array: np.ndarray, bad: np.ndarray | None, digits: int | None) -> str:
    """``array`` printed as NumPy prints it, summarised when long, floats to ``digits``
    significant digits (None: exactly), the entries where ``bad`` is True marked; a note
    says how many marked entries the ``...`` hide."""
    flat = array.ndim > 3
    shown, marks = (array.ravel(), None if bad is None else bad.ravel()) if flat else (array, bad)
    summarise = shown.size > SUMMARY_THRESHOLD
    kept = [_kept_indices(n, summarise) for n in shown.shape]

    def entry(index: tuple[int, ...]) -> str:
        text = _e(_number(shown.item(index) if shown.ndim else shown.item(), digits))
        return f'<mark class="differs">{text}</mark>' if marks is not None and marks[index] \
            else text

    def block(prefix: tuple[int, ...]) -> str:
        axis = len(prefix)
        if axis == shown.ndim:
            return entry(prefix)
        parts = ["..." if i is None else block((*prefix, i)) for i in kept[axis]]
        separator = ", " if axis == shown.ndim - 1 else \
            ",\n" + "\n" * (shown.ndim - axis - 2) + " " * (axis + 1)
        return "[" + separator.join(parts) + "]"

    text = block(())
    if flat:
        text = f"shape {array.shape}, entries in C order: {text}"
    note = ""
    if bad is not None and summarise and bad.any():
        visible = np.zeros(shown.shape, dtype=bool)
        visible[np.ix_(*[[i for i in k if i is not None] for k in kept])] = True
        hidden = np.argwhere(marks & ~visible)
        if len(hidden):
            where = ", ".join(str(tuple(int(i) for i in np.unravel_index(
                int(np.ravel_multi_index(tuple(h), shown.shape)), array.shape)))
                for h in hidden[:3])
            note = (f'<div class="note">{int(marks.sum())} entries differ, {len(hidden)} of '
                    f"them inside the ...: at {_e(where)}{', ...' * (len(hidden) > 3)}</div>")
    return f'<pre class="array">{text}</pre>{note}'


def _value_html(value: Any, bad: np.ndarray | None = None, digits: int | None = None) -> str:
    """Any value of the feedback, escaped: arrays compactly (floats to ``digits``
    significant digits, None: exactly), strings by their repr; at most
    :data:`MAX_VALUE_HTML` characters of HTML, else a note (the JSON has it all)."""
    text = _any_html(value, bad, digits, 0)
    if len(text) > MAX_VALUE_HTML:
        return (f'<span class="note">({len(text)} characters of HTML: too long to show here; '
                "the feedback's JSON file has it)</span>")
    return text


def _any_html(value: Any, bad: np.ndarray | None, digits: int | None, depth: int) -> str:
    if value is _MISSING:
        return '<span class="note">(missing)</span>'
    array = _as_array(_restored(value))
    if array is not None:
        return _array_html(array, bad if bad is not None and bad.shape == array.shape else None,
                           digits)
    if isinstance(value, str):
        if value.startswith("(not kept: "):
            return f'<span class="note">{_e(value)}</span>'
        text = repr(value[:MAX_VALUE_CHARS])
        more = f" ... ({len(value) - MAX_VALUE_CHARS} more characters)" \
            if len(value) > MAX_VALUE_CHARS else ""
        return f"<pre>{_e(text)}{more}</pre>"
    if depth > 8 or not isinstance(value, (list, dict)):
        return f"<pre>{_e(repr(value)[:MAX_VALUE_CHARS])}</pre>"
    items = list(value.items() if isinstance(value, dict) else enumerate(value))
    rows = "".join(f"<tr><th>{_e(repr(key))}</th><td>"
                   f"{_any_html(item, None, digits, depth + 1)}</td></tr>"
                   for key, item in items[:MAX_ITEMS])
    if len(items) > MAX_ITEMS:
        rows += f'<tr><td colspan="2" class="note">... {len(items) - MAX_ITEMS} more</td></tr>'
    kind = "dict" if isinstance(value, dict) else "list"
    return f'<span class="note">{kind} of {len(items)}</span><table>{rows}</table>'


def _label(path: str, part: str) -> str:
    """A part of a result named as :func:`coursekit.grading.compare` names it."""
    if part.startswith("["):
        return f"{path}{part}"
    return part if path == "result" else f"{path}.{part}"


def _pairs(expected: Any, got: Any, path: str = "result") -> Iterator[tuple[str, Any, Any]]:
    """``(name, expected, got)`` for each part of a result compared on its own: the
    expected structure's dict entries and the items of its lists that are not arrays."""
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in expected:
            yield from _pairs(expected[key], got.get(key, _MISSING), _label(path, key))
        for key in got:
            if key not in expected:
                yield _label(path, key), _MISSING, got[key]
    elif (isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got)
          and _as_array(_restored(expected)) is None):
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            yield from _pairs(e, g, _label(path, f"[{i}]"))
    else:
        yield path, expected, got


def _comparison_html(entry: Mapping[str, Any]) -> str:
    """Expected beside got, part by part, the differing entries marked."""
    rtol, atol = entry.get("rtol"), entry.get("atol")
    tolerances = all(type(t) in (int, float) for t in (rtol, atol))
    rows = []
    pairs = _pairs(entry.get("expected"), entry.get("got"))
    for count, (name, expected, got) in enumerate(pairs):
        if count == MAX_ROWS:
            rows.append('<tr><td colspan="3" class="note">... more parts not shown</td></tr>')
            break
        bad, digits = None, 8
        if tolerances and expected is not _MISSING and got is not _MISSING:
            bad = differing(_restored(got), _restored(expected), rtol=rtol, atol=atol)
        differs = ' class="differs"' if bad is not None and bad.any() else ""
        if differs:
            digits = _digits(_as_array(_restored(expected)), _as_array(_restored(got)), bad)
        rows.append(f"<tr><th>{_e(name)}</th><td{differs}>{_value_html(expected, bad, digits)}"
                    f"</td><td{differs}>{_value_html(got, bad, digits)}</td></tr>")
    tolerance = f" (rtol={_e(_number(rtol))}, atol={_e(_number(atol))})" if tolerances else ""
    return (f'<table class="comparison"><tr><th></th><th>expected{tolerance}</th>'
            f"<th>your notebook gave</th></tr>{''.join(rows)}</table>")


# The feedback: scores, tests, cell problems ---------------------------------------------------

def _status_class(status: str) -> str:
    return {"ok": "good", "errors": "warn", "cell_timeout": "warn"}.get(status, "bad")


def _verdict(passed: Any) -> tuple[str, str]:
    return ("passed", "PASSED") if passed is True else ("failed", "FAILED")


def _public_test_html(entry: Mapping[str, Any]) -> str:
    css, verdict = _verdict(entry.get("passed"))
    inputs = entry.get("inputs")
    inputs_html = "".join(f"<tr><th>{_e(key)}</th><td>{_value_html(value)}</td></tr>"
                          for key, value in inputs.items()) if isinstance(inputs, dict) else ""
    return (f'<div class="test {css}"><h3><span class="verdict">{verdict}</span> '
            f'<span class="test-name">{_e(entry.get("name", ""))}</span> '
            f'<span class="points">{_fmt(entry.get("points"))} / '
            f'{_fmt(entry.get("max_points"))}</span> points</h3>'
            f'<p>{_e(entry.get("description", ""))}</p>'
            f'<pre class="message">{_e(entry.get("message", ""))}</pre>'
            f"<details{' open' * (css == 'failed')}><summary>inputs</summary>"
            f"<table>{inputs_html}</table></details>{_comparison_html(entry)}</div>")


def _hidden_tests_html(entries: list[Mapping[str, Any]]) -> str:
    """Hidden tests: only their name, points and verdict are ever read."""
    if not entries:
        return ""
    rows = []
    for entry in entries:
        css, verdict = _verdict(entry.get("passed"))
        rows.append(f'<tr class="hidden-test"><td>{_e(entry.get("name", ""))}</td>'
                    f'<td class="points">{_fmt(entry.get("points"))} / '
                    f'{_fmt(entry.get("max_points"))}</td><td class="{css}">{verdict}</td></tr>')
    return ('<table class="hidden-tests"><tr><th>hidden test</th><th>points</th><th>verdict'
            f"</th></tr>{''.join(rows)}</table>")


def _written_html(entry: Mapping[str, Any]) -> str:
    """A written answer: its points, the rubric items awarded and the grader's comment."""
    answer = _e(entry.get("answer", ""))
    if not entry.get("graded"):
        state = ("not graded yet" if entry.get("present", True)
                 else "no answer found in the notebook")
        return (f'<div class="written ungraded" data-answer="{answer}"><h3>Written answer '
                f'{answer}: {_e(entry.get("title", ""))} <span class="points">'
                f'{_e(state)} (out of {_fmt(entry.get("max_points"))})</span></h3></div>')
    items = [i for i in entry.get("items", []) if isinstance(i, Mapping)]
    rows = "".join(f'<li><span class="points">{_fmt(i.get("points"))}</span> '
                   f'{_e(i.get("description", ""))}</li>' for i in items)
    comment = entry.get("comment") or ""
    return (f'<div class="written graded" data-answer="{answer}"><h3>Written answer '
            f'{answer}: {_e(entry.get("title", ""))} <span class="points">'
            f'{_fmt(entry.get("points"))} / {_fmt(entry.get("max_points"))}</span> points, '
            f"graded by hand</h3>{f'<ul class=rubric>{rows}</ul>' if rows else ''}"
            f"{f'<pre class=comment>{_e(comment)}</pre>' if comment else ''}</div>")


def _late_html(late: Any) -> str:
    if not isinstance(late, Mapping):
        return ""
    penalty = late.get("penalty_points")
    deducted = (f" ({_fmt(penalty)} points)" if isinstance(penalty, (int, float))
                and penalty else "")
    return f'<p class="late">{_e(late.get("explanation", ""))}{_e(deducted)}</p>'


def _question_html(question: Mapping[str, Any]) -> str:
    tests = [t for t in question.get("tests", []) if isinstance(t, Mapping)]
    public = [t for t in tests if t.get("visibility") == "public"]
    hidden = [t for t in tests if t.get("visibility") != "public"]
    written = [w for w in question.get("written", []) if isinstance(w, Mapping)]
    qid = _e(question.get("id", ""))
    return (f'<section class="question" id="question-{qid}"><h2>Question {qid}: '
            f'{_e(question.get("title", ""))} <span class="score" data-question="{qid}">'
            f'{_fmt(question.get("score"))} / {_fmt(question.get("max_score"))}</span></h2>'
            f"{''.join(_public_test_html(t) for t in public)}{_hidden_tests_html(hidden)}"
            f"{''.join(_written_html(w) for w in written)}</section>")


def _problem_html(problem: Mapping[str, Any]) -> str:
    what = "ran out of time" if problem.get("status") == "timeout" else "raised an error"
    return (f'<div class="error"><strong>cell {_e(problem.get("cell", "?"))} {what}</strong>'
            f'<pre>{_e(problem.get("error", ""))}</pre></div>')


# The notebook: every cell's source, its problem under it -------------------------------------

class _Cell(NamedTuple):
    number: int
    kind: str
    source: str


def _notebook_cells(data: bytes) -> tuple[list[_Cell] | None, str]:
    """The notebook's cells numbered as the grader numbers them
    (:func:`coursekit.grading.child.notebook_cells`: every cell, from 1), or None and
    why not. Linear in the bytes: too many JSON values are refused before parsing."""
    if len(data) > MAX_NOTEBOOK_BYTES:
        return None, f"it is larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB"
    values = data.count(b",") + data.count(b"[") + data.count(b"{")
    if values > MAX_JSON_VALUES:
        return None, f"it holds more than {MAX_JSON_VALUES} JSON values"
    try:
        notebook = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError, MemoryError) as exc:
        return None, f"it is not readable JSON ({type(exc).__name__})"
    version = notebook.get("nbformat") if isinstance(notebook, dict) else None
    if version == 4:
        cells, key = notebook.get("cells"), "source"
    elif version in (2, 3) and isinstance(notebook.get("worksheets"), list):
        cells, key = [], "input"
        for sheet in notebook["worksheets"]:
            inner = sheet.get("cells", []) if isinstance(sheet, dict) else None
            cells += inner if isinstance(inner, list) else [None]
    else:
        return None, "it is not a notebook this grader reads"
    if not isinstance(cells, list):
        return None, "its cells are not a list"
    found = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            found.append(_Cell(number, "unknown", ""))
            continue
        kind = cell.get("cell_type")
        source = cell.get(key if kind == "code" else "source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        found.append(_Cell(number, kind if kind in ("code", "markdown", "raw") else "unknown",
                           source if isinstance(source, str) else ""))
    return found, ""


def _highlighted(source: str, lines: list[int]) -> str:
    """Python source as HTML (Pygments escapes every token), lines numbered, ``lines``
    marked."""
    from pygments import highlight  # here: only a page with code needs it
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    formatter = HtmlFormatter(linenos="inline", hl_lines=lines, cssclass="source",
                              wrapcode=True)
    return highlight(source, PythonLexer(stripnl=False), formatter)


def _style() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(cssclass="source").get_style_defs(".source")


def _cell_html(cell: _Cell, problems: list[Mapping[str, Any]], lines: list[int],
               budget: int) -> str:
    """One cell: its number, its source (``lines`` marked), its problems under it."""
    source = cell.source[:min(MAX_CELL_CHARS, budget)]
    cut = len(cell.source) - len(source)
    if cell.kind == "code":
        body = _highlighted(source, lines)
    else:
        body = f'<pre class="text">{_e(source)}</pre>'
    if cut:
        body += f'<div class="note">({cut} more characters of this cell are not shown)</div>'
    body += "".join(_problem_html(p) for p in problems)
    css = f"cell {cell.kind}{' problem' * bool(problems)}"
    return (f'<div class="{css}" id="cell-{cell.number}"><div class="number">cell '
            f'{cell.number}<br>{_e(cell.kind)}</div><div class="body">{body}</div></div>')


def _notebook_html(data: bytes | None, problems: dict[int, list[Mapping[str, Any]]]) -> str:
    head = "<h2>Your notebook</h2>"
    if data is None:
        return f'{head}<p class="note">The notebook is not part of this report.</p>'
    cells, why = _notebook_cells(data)
    if cells is None:
        return f'{head}<p class="note">The notebook cannot be shown: {_e(why)}.</p>'
    parts = [f'{head}<p class="note">As the grader ran it: cells are numbered as in the '
             "messages above (every cell counts, markdown included, from 1). The outputs "
             "saved in the notebook are not shown: they are not what the grader ran.</p>"]
    # the lines the errors' tracebacks name, in whichever cell they are
    marked: dict[int, set[int]] = {}
    for problem in (p for found in problems.values() for p in found):
        for number, line in _TRACEBACK_LINE.findall(str(problem.get("error", ""))):
            marked.setdefault(int(number), set()).add(int(line))
    budget, size = MAX_SOURCE_CHARS, 0
    for i, cell in enumerate(cells):
        if i == MAX_CELLS or budget <= 0 or size > MAX_NOTEBOOK_HTML:
            parts.append(f'<p class="note">{len(cells) - i} more cells are not shown (this '
                         f"report shows at most {MAX_CELLS} cells, {MAX_SOURCE_CHARS} "
                         f"characters of source and about {MAX_NOTEBOOK_HTML // 2**20} MiB of "
                         "notebook).</p>")
            break
        parts.append(_cell_html(cell, problems.get(cell.number, []),
                                sorted(marked.get(cell.number, ())), budget))
        budget -= min(len(cell.source), MAX_CELL_CHARS)
        size += len(parts[-1])
    return "".join(parts)


# The page -------------------------------------------------------------------------------------

def render(feedback: Mapping[str, Any], notebook: bytes | None = None, *,
           public_only: bool = False) -> str:
    """The feedback report of one submission as a self-contained HTML page.

    Parameters
    ----------
    feedback : mapping
        The submission's feedback (:func:`coursekit.grading.report.feedback`, or that
        JSON read back). Of a test not marked ``"public"`` only its name, points and
        verdict are read.
    notebook : bytes, optional
        The notebook file that was graded, shown with each cell's problem under it;
        None leaves the notebook out. Bytes that are not a readable notebook are
        left out, with the reason on the page.
    public_only : bool
        A self-check (``coursekit check``): the page says that grading adds hidden tests.

    Returns
    -------
    str
        The page. It depends only on its arguments (no date), so rendering the same
        feedback twice gives the same text.
    """
    assignment, name = feedback.get("assignment", ""), feedback.get("submission", "")
    status = str(feedback.get("status", ""))
    score, maximum = feedback.get("score"), feedback.get("max_score")
    try:
        percent = f" ({100.0 * float(score) / float(maximum):.4g}%)" if float(maximum) > 0 else ""
    except (TypeError, ValueError):
        percent = ""
    questions = [q for q in feedback.get("questions", []) if isinstance(q, Mapping)]
    cells = [c for c in feedback.get("cells", []) if isinstance(c, Mapping)]
    problems: dict[int, list[Mapping[str, Any]]] = {}
    for problem in cells:
        if type(problem.get("cell")) is int:
            problems.setdefault(problem["cell"], []).append(problem)
    banner = ('<p class="banner">A self-check: public tests only. Grading adds hidden tests '
              "on other inputs, so passing these is necessary, not sufficient.</p>"
              if public_only else "")
    summary = "".join(
        f'<tr><td><a href="#question-{_e(q.get("id", ""))}">{_e(q.get("id", ""))}</a></td>'
        f'<td>{_e(q.get("title", ""))}</td><td>{_fmt(q.get("score"))} / '
        f'{_fmt(q.get("max_score"))}</td></tr>' for q in questions)
    problems_html = ("<h2>Cells that did not run cleanly</h2>"
                     + "".join(_problem_html(p) for p in cells)) if cells else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(assignment)}: feedback for {_e(name)}</title>
<style>{_CSS}{_style()}</style>
</head>
<body>
<h1>{_e(assignment)}: feedback</h1>
<p class="meta">submission <strong class="submission">{_e(name)}</strong></p>
{banner}
<p class="total">Score: <span class="score" data-question="">{_fmt(score)} / {_fmt(maximum)}\
</span>{_e(percent)}</p>
{_late_html(feedback.get("late"))}
<p><span class="status {_status_class(status)}">{_e(status)}</span> \
<span class="detail">{_e(feedback.get("detail", ""))}</span></p>
<table class="questions"><tr><th>question</th><th></th><th>score</th></tr>{summary}</table>
{problems_html}
{"".join(_question_html(q) for q in questions)}
{_notebook_html(notebook, problems)}
</body>
</html>
"""
