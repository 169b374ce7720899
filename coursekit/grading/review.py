"""The grading page for written answers: ``coursekit review ASSIGNMENT --out OUT``.

:func:`serve` starts a small web app on 127.0.0.1 over the out folder's grading store
(:mod:`coursekit.grading.store`). Teaching assistants read each student's written answer
and grade it with the answer's rubric; every grade goes into the store, which keeps it
through any later run of ``coursekit grade``.

Pages and routes
----------------
``/``
    The overview: one row per submission, one column per written answer, each cell's
    state (ungraded, graded with its points, flagged, "answer changed since graded",
    no answer) and, under each column, how many answers are in each state. Each cell
    links to its answer; each column's title starts the "by question" walk.
``/answer?submission=S&answer=Q/A&mode=student|question``
    One answer: the student's Markdown rendered with its math, the outputs of the code
    cells of its part (text, and PNG figures), the rubric items as checkboxes with their
    points, extra points, a comment, a flag, the running score out of the maximum, who
    graded it and when, and Save. ``mode=student`` walks a submission's answers in turn,
    ``mode=question`` (the "by question" mode) walks every student's answer to one
    question, then the next question's.
``/next?mode=M[&submission=S&answer=Q/A]``
    Redirects to the next answer, after the one given in the mode's order and wrapping
    around, that needs a grade: present, and ungraded or changed since it was graded.
    With none left, back to the overview, which says so.
``GET /api/grade?submission=S&answer=Q/A``
    The stored grade as JSON (``{"grade": null}`` when there is none).
``POST /api/grade``
    Saves a grade. The JSON body carries ``submission``, ``answer``, ``items`` (rubric
    item ids), ``extra``, ``comment``, ``flagged``, ``grader``, ``answer_sha256`` (the
    hash of the answer the grader read) and ``version``: the grade's version when the
    page loaded (``null`` when it had none); an empty ``answer_sha256`` stands for
    the answer as the autograder last read it. Answers 200 with the saved grade; 404
    for an unknown submission or answer; 400 naming the problem for an unknown rubric
    item, points outside the rubric's range (``0 <= items + extra <= points``), a
    non-finite extra or a malformed body; 409 with the stored grade when someone
    saved this answer since the page loaded it (below).
``/static/review.js``, ``/static/review.css``
    The page's only script and style sheet.

Keys
----
On an answer: ``1``-``9`` toggle rubric item *n*; ``e`` extra points, ``c`` comment,
``g`` the grader's name (typing there triggers no key; Escape leaves the field);
``f`` flag; ``s`` or Ctrl+Enter save; ``n`` the next answer that needs a grade,
``j``/``k`` the next/previous answer in the mode's order, ``m`` the other mode,
``o`` the overview (all four save first when something changed, and stay when the
save is refused); ``?`` shows the keys. On the overview ``n`` opens the first
answer that needs a grade and ``q`` does so by question. In a conflict, ``r``
reloads the stored grade and ``w`` overwrites it with this grader's.

Two graders at once
-------------------
Every grade carries a version that grows by one per save. A save sends the version its
page loaded, and the store saves only if it is still the stored one, in one SQLite
transaction (:meth:`Store.save_grade`). Otherwise the store writes the attempt into its
append-only log as a ``conflict`` row and raises :class:`~coursekit.grading.store.Conflict`;
the page answers 409 with the other grader's grade, shows it beside this grader's, and
lets the grader reload (taking theirs) or overwrite explicitly (a save against the
version just shown). Nothing is ever lost silently: both attempts are in the log.
Graders on different answers never conflict. The grader's name comes from
``--grader`` (default: the login name), can be changed on the page (the browser keeps
it in ``localStorage``) and goes with each save.

Security
--------
The server listens on 127.0.0.1 with a random token (:func:`secrets.token_urlsafe`),
as Jupyter's own server does: the URL it prints carries ``?token=...``; the first
request with it gets the token back as an ``HttpOnly; SameSite=Strict`` cookie and is
redirected to the same URL without it. Every other request (pages, static files,
the API) without the cookie (named after the port, as is the XSRF cookie, so two pages
on one machine keep theirs), an ``Authorization: token ...`` header or the token is
refused with 403, and so is any request whose ``Host`` header is not this server's own
(DNS rebinding). A POST needs, besides, Tornado's XSRF token (a second cookie, sent
back in the ``X-XSRFToken`` header by the page's script), a JSON body, and an
``Origin`` (when the browser sends one) equal to the server's own.

The student's text is data, never markup: Markdown is rendered with markdown-it-py with
``html=False`` (raw HTML shown as text), math (``$...$``, ``$$...$$``) becomes MathML on
the server with latex2mathml, and that MathML is rebuilt from an allow-list of MathML
elements and attributes with every text escaped (latex2mathml copies ``\\text{...}``
verbatim); LaTeX it cannot convert, or longer than :data:`MAX_MATH_CHARS`, is shown as
escaped code. What is read of the notebook is bounded by :func:`answers.read
<coursekit.grading.answers.read>` (the answer's text, each output, each PNG, the number
of outputs). Outputs: text escaped, PNG images only when the bytes start with the PNG
signature, as ``data:`` URIs, at most :data:`MAX_PAGE_IMAGE_BYTES` on one page. The
page loads
no inline script and the Content Security Policy (:data:`CONTENT_SECURITY_POLICY`)
allows scripts only from the server's ``/static`` path, images only as ``data:``, and
no other connection, frame or form target, so even a missed escape could neither run
a script nor reach the network.

Why Tornado
-----------
A small app on a maintained web framework rather than a Jupyter server extension such
as nbgrader's formgrader: the page needs no kernel, no notebook server and no
JupyterLab build, and ``coursekit review`` runs with the out folder alone, on a
grader's laptop or over an SSH tunnel. Tornado is already installed wherever Jupyter
is (the course's ``lab`` extra pulls it in), is maintained, parses HTTP properly
(the standard library's ``http.server`` is documented as not for production), runs
on asyncio, and brings secure cookie options and XSRF checks. Everything else the page
needs is four small pure-Python packages (the ``review`` extra); the grading layer
imports none of them unless the page is served.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import html
import ipaddress
import json
import math
import re
import secrets
import threading
import webbrowser
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import tornado.httpserver
import tornado.netutil
import tornado.web

from coursekit.grading import answers as _answers
from coursekit.grading.answers import PNG_SIGNATURE
from coursekit.grading.child import MAX_NOTEBOOK_BYTES
from coursekit.grading.feedback_html import _e, _fmt  # the student's page's escaping, numbers
from coursekit.grading.spec import PlannedWritten, load_assignment, written_of
from coursekit.grading.store import Conflict, NotFound, Store, StoreError, written_score

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "MAX_MATH_CHARS",
    "MAX_PAGE_IMAGE_BYTES",
    "Server",
    "app",
    "render_markdown",
    "serve",
]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'")
MAX_MATH_CHARS = 2_000  # longer LaTeX is shown as code, not converted
MAX_PAGE_IMAGE_BYTES = 8 * 2**20  # all images of one page
MAX_COMMENT_CHARS = 20_000
MAX_GRADER_CHARS = 100
MODES = ("student", "question")

_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")


# The student's Markdown and math ------------------------------------------------------------

_MATHML_ELEMENTS = frozenset({
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msup", "msub", "msubsup",
    "mfrac", "msqrt", "mroot", "mstyle", "mtable", "mtr", "mtd", "mlabeledtr", "mover",
    "munder", "munderover", "mpadded", "mphantom", "menclose", "merror", "mmultiscripts",
    "mprescripts", "none", "semantics", "annotation",
})
_MATHML_ATTRIBUTES = frozenset({
    "xmlns", "display", "mathvariant", "mathcolor", "mathbackground", "mathsize", "stretchy",
    "fence", "separator", "accent", "accentunder", "columnalign", "columnlines",
    "columnspacing", "columnspan", "rowalign", "rowlines", "rowspacing", "rowspan",
    "displaystyle", "scriptlevel", "width", "height", "depth", "lspace", "rspace", "voffset",
    "linethickness", "notation", "minsize", "maxsize", "movablelimits", "largeop",
    "symmetric", "form", "align", "frame", "framespacing", "equalrows", "equalcolumns",
    "encoding",
})


class _MathML(HTMLParser):
    """Rebuilds latex2mathml's output from allowed MathML elements and attributes only,
    every text and attribute value escaped, the elements balanced.

    latex2mathml copies the argument of ``\\text{...}`` verbatim, so a tag it holds reaches
    this parser as markup: one that is not MathML is shown as the text the student typed,
    and an end tag closes only the element opened last (so ``</math>`` typed in a text
    cannot end the formula early)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.open: list[str] = []

    def _tag(self, tag: str, attrs: list[tuple[str, str | None]], close: bool) -> None:
        if tag not in _MATHML_ELEMENTS:
            self.parts.append(_e(html.unescape(self.get_starttag_text() or "")))
            return
        kept = "".join(f' {name}="{_e(value or "")}"' for name, value in attrs
                       if name in _MATHML_ATTRIBUTES)
        self.parts.append(f"<{tag}{kept}{'/' if close else ''}>")
        if not close:
            self.open.append(tag)

    def set_cdata_mode(self, *args, **kwargs):
        """Markup after a ``<script>`` or ``<style>`` typed in a text is still parsed."""

    def handle_starttag(self, tag, attrs):
        self._tag(tag, attrs, close=False)

    def handle_startendtag(self, tag, attrs):
        self._tag(tag, attrs, close=True)

    def handle_endtag(self, tag):
        if tag not in _MATHML_ELEMENTS:
            self.parts.append(_e(f"</{tag}>"))
        elif self.open and self.open[-1] == tag:
            self.parts.append(f"</{self.open.pop()}>")

    def handle_data(self, data):
        self.parts.append(_e(data))

    def result(self) -> str:
        self.close()
        return "".join(self.parts) + "".join(f"</{tag}>" for tag in reversed(self.open))


def _math_html(latex: str, display: bool) -> str:
    """``latex`` as sanitised MathML, or as escaped code when it cannot be converted."""
    from latex2mathml.converter import convert

    block = "block" if display else "inline"
    if len(latex) <= MAX_MATH_CHARS:
        try:
            mathml = convert(latex, display=block)
        except Exception:  # latex2mathml raises many kinds on bad LaTeX
            pass
        else:
            parser = _MathML()
            parser.feed(mathml)
            return parser.result()
    tag = "pre" if display else "code"
    return f'<{tag} class="tex-error" title="LaTeX not converted">{_e(latex)}</{tag}>'


_MARKDOWN = None


def render_markdown(text: str) -> str:
    """The student's Markdown as HTML: raw HTML escaped, math as sanitised MathML."""
    global _MARKDOWN
    if _MARKDOWN is None:
        from markdown_it import MarkdownIt
        from mdit_py_plugins.dollarmath import dollarmath_plugin

        _MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table").use(
            dollarmath_plugin, allow_space=True, allow_digits=False, double_inline=True,
            renderer=lambda content, options: _math_html(
                content, bool(options.get("display_mode"))))
    return _MARKDOWN.render(text)


def _outputs_html(outputs: Sequence[tuple[int, Sequence[_answers.Output]]]) -> str:
    """The outputs of the code cells of the answer's part (as :func:`answers.read` keeps
    them, each already cut to its limit): text escaped, PNG bytes checked for the PNG
    signature once more and shown while the page holds under :data:`MAX_PAGE_IMAGE_BYTES`."""
    if not outputs:
        return '<p class="note">The code cells of this part have no outputs.</p>'
    parts, image_bytes = [], 0
    for index, cell_outputs in outputs:
        parts.append(f'<section class="cell"><h3>Code cell {index + 1}</h3>')
        for output in cell_outputs:
            data = output.data
            if output.kind != "png":
                parts.append(f"<pre>{_e(data)}</pre>")
            elif not (isinstance(data, bytes) and data.startswith(PNG_SIGNATURE)):
                parts.append('<p class="note">[an image that is not a PNG: not shown]</p>')
            elif image_bytes + len(data) > MAX_PAGE_IMAGE_BYTES:
                parts.append(f'<p class="note">[a PNG of {len(data):,} bytes: over the '
                             f"page's {MAX_PAGE_IMAGE_BYTES:,} bytes of images, not shown]</p>")
            else:
                image_bytes += len(data)
                parts.append('<img alt="figure output" src="data:image/png;base64,'
                             f'{base64.b64encode(data).decode()}">')
        parts.append("</section>")
    return "".join(parts)


# What the page grades ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Written:
    """One written answer of the plan, as the page uses it."""

    key: str
    title: str
    points: float
    rubric: tuple[tuple[str, float, str], ...]  # (item id, points, description)

    @cached_property
    def items(self) -> dict[str, float]:
        """``{item id: points}``."""
        return {item: points for item, points, _ in self.rubric}


def _planned(assignment_or_plan: Any) -> tuple[str, tuple[PlannedWritten, ...]]:
    """The assignment's name and its written answers with their rubrics, from its grading
    file's path, an :class:`~coursekit.grading.spec.Assignment` or a full
    :class:`~coursekit.grading.spec.Plan`.

    Raises
    ------
    ValueError
        If there are no written answers, or no rubrics (a public plan); a
        :class:`~coursekit.grading.spec.GradingSpecError` for a grading file that cannot
        be loaded.
    """
    if isinstance(assignment_or_plan, (str, Path)):
        assignment_or_plan = load_assignment(assignment_or_plan)
    if hasattr(assignment_or_plan, "written"):
        name, planned = assignment_or_plan.assignment, tuple(assignment_or_plan.written)
    else:
        name, planned = assignment_or_plan.name, written_of(assignment_or_plan)
    if not planned:
        raise ValueError(f"{name} has no written answers to grade (its grading file "
                         "declares none)")
    bare = [w.key for w in planned if not w.rubric]
    if bare:
        raise ValueError(f"{name}: written answers {', '.join(bare)} have no rubric (a "
                         "public plan?): the page needs the grading file's")
    return name, planned


def _page_answers(planned: Sequence[PlannedWritten]) -> tuple[_Written, ...]:
    return tuple(_Written(w.key, w.title, float(w.points),
                          tuple((i.id, float(i.points), i.description) for i in w.rubric))
                 for w in planned)


def _state(row: Any) -> tuple[str, str]:
    """A cell's state class and its text on the overview."""
    if row is None or not row.present:
        return "missing", "no answer"
    if row.grade is None:
        return "ungraded", "ungraded"
    return ("changed" if row.changed else "flagged" if row.grade.flagged else "graded"), ""


def _needs_grade(row: Any) -> bool:
    return row is not None and row.present and (row.grade is None or row.changed)


def _grade_json(grade: Any, rubric: dict[str, float]) -> dict | None:
    if grade is None:
        return None
    return {"items": list(grade.items), "extra": grade.extra, "comment": grade.comment,
            "grader": grade.grader, "graded_at": grade.graded_at, "flagged": grade.flagged,
            "version": grade.version, "answer_sha256": grade.answer_sha256,
            "score": written_score(grade, rubric)}


class _Refused(Exception):
    """A request answered with ``status`` and ``message`` (JSON for the API, else a page)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Review:
    """What every request handler shares: the plan, the store and the server's secrets."""

    assignment: str
    written: tuple[_Written, ...]
    store: Store
    token: str
    grader: str
    port: int
    hosts: frozenset[str] | None  # the Host headers accepted; None: any
    planned: tuple[PlannedWritten, ...]

    @property
    def cookie(self) -> str:
        return f"coursekit-review-{self.port}"

    def find(self, key: str) -> _Written:
        for written in self.written:
            if written.key == key:
                return written
        raise _Refused(404, f"unknown answer {key!r}; this assignment's written answers are "
                            f"{', '.join(w.key for w in self.written)}")

    def order(self, mode: str, names: Sequence[str]) -> list[tuple[str, str]]:
        """Every (submission, answer) in the order the mode walks them."""
        keys = [w.key for w in self.written]
        if mode == "question":
            return [(name, key) for key in keys for name in names]
        return [(name, key) for name in names for key in keys]

    def names(self) -> list[str]:
        return [row.name for row in self.store.submissions()]

    def not_found(self, exc: NotFound) -> _Refused:
        """The store's NotFound as a 404, without the store's path."""
        return _Refused(404, str(exc).removeprefix(f"{self.store.path}: "))


def _href(path: str, **query: str | None) -> str:
    kept = {k: v for k, v in query.items() if v is not None}
    return f"{path}?{urlencode(kept)}" if kept else path


def _answer_href(submission: str, answer: str, mode: str) -> str:
    return (f"/answer?submission={quote(submission, safe='')}&answer={quote(answer, safe='')}"
            f"&mode={mode}")


# Requests ------------------------------------------------------------------------------------

class _Handler(tornado.web.RequestHandler):
    """Checks the host and the token on every request; sets the security headers."""

    def initialize(self, review: _Review) -> None:
        self.review = review

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Frame-Options", "DENY")

    def check_xsrf_cookie(self) -> None:
        self._authenticate()  # no token: 403 before anything else is looked at
        super().check_xsrf_cookie()

    def prepare(self) -> None:
        self._authenticate()
        if self.request.method == "GET" and self.get_query_argument("token", None) is not None:
            # the token has just been checked and put in the cookie: take it out of the URL
            query = [(k, v) for k, values in self.request.query_arguments.items()
                     if k != "token" for v in values]
            self.redirect(self.request.path + (f"?{urlencode(query)}" if query else ""))

    def _authenticate(self) -> None:
        review = self.review
        if review.hosts is not None and self.request.host.lower() not in review.hosts:
            self._refuse(403, f"this server answers only at {sorted(review.hosts)[0]}")
        query = self.get_query_argument("token", None)
        header = self.request.headers.get("Authorization", "")
        for given in (query, self.get_cookie(review.cookie),
                      header[6:] if header.lower().startswith("token ") else None):
            if given is not None and secrets.compare_digest(given.encode(), review.token.encode()):
                if given is query:
                    self.set_cookie(review.cookie, review.token, httponly=True,
                                    samesite="Strict")
                return
        self._refuse(403, "forbidden: open the page with the URL, token included, that "
                          "coursekit review printed")

    def _refuse(self, status: int, message: str) -> None:
        raise _Refused(status, message)

    def _api(self) -> bool:
        return self.request.path.startswith("/api/")

    def _execute_refused(self, refused: _Refused) -> None:
        self.clear()
        self.set_status(refused.status)
        if self._api():
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"error": refused.message}))
        else:
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                        f"<title>{refused.status}</title></head><body><p>{_e(refused.message)}"
                        f"</p></body></html>")

    def log_exception(self, typ, value, tb) -> None:
        if not isinstance(value, _Refused):
            super().log_exception(typ, value, tb)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, _Refused):
            self._execute_refused(exc)
        elif isinstance(exc, StoreError):
            self._execute_refused(_Refused(503, str(exc)))
        else:
            super().send_error(status_code, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = self._reason or "error"
        if status_code == 403:  # Tornado's own XSRF check
            message = f"forbidden: {message}"
        self._execute_refused(_Refused(status_code, message))

    def page(self, title: str, body: str, data: dict[str, str]) -> None:
        attrs = "".join(f' data-{name}="{_e(value)}"' for name, value in data.items())
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="xsrf" content="{_e(self.xsrf_token.decode())}">'
            f"<title>{_e(title)}</title>"
            f'<link rel="stylesheet" href="/static/review.css">'
            f'<script src="/static/review.js" defer></script></head>'
            f'<body><main id="review"{attrs}>{body}{_HELP}</main></body></html>')

    def grader_box(self) -> str:
        return ('<label class="grader">grader <input id="grader" type="text" '
                f'autocomplete="off" maxlength="{MAX_GRADER_CHARS}" '
                f'data-default="{_e(self.review.grader)}"></label>')


_HELP = """<div id="help" hidden><h2>Keys</h2><table>
<tr><td><kbd>1</kbd>-<kbd>9</kbd></td><td>toggle rubric item n</td></tr>
<tr><td><kbd>e</kbd> / <kbd>c</kbd> / <kbd>g</kbd></td>
<td>type the extra points / the comment / your name (<kbd>Esc</kbd> leaves the field)</td></tr>
<tr><td><kbd>f</kbd></td><td>flag (or unflag) the answer</td></tr>
<tr><td><kbd>s</kbd>, <kbd>Ctrl</kbd>+<kbd>Enter</kbd></td><td>save</td></tr>
<tr><td><kbd>n</kbd></td><td>next answer that needs a grade (saves first)</td></tr>
<tr><td><kbd>j</kbd> / <kbd>k</kbd></td><td>next / previous answer (saves first)</td></tr>
<tr><td><kbd>m</kbd></td><td>switch between by student and by question (saves first)</td></tr>
<tr><td><kbd>o</kbd></td><td>the overview (saves first)</td></tr>
<tr><td><kbd>q</kbd></td><td>on the overview: first answer that needs a grade, by question</td></tr>
<tr><td><kbd>r</kbd> / <kbd>w</kbd></td>
<td>after a conflict: reload the stored grade / overwrite it with yours</td></tr>
<tr><td><kbd>?</kbd></td><td>show or hide these keys</td></tr>
</table></div>"""


class _Overview(_Handler):
    def get(self) -> None:
        review = self.review
        names = review.names()
        rows = {(row.submission, row.answer): row for row in review.store.answers()}
        counts = {w.key: dict.fromkeys(("graded", "ungraded", "flagged", "changed", "missing"), 0)
                  for w in review.written}
        hrefs = [_e(f"answer={quote(w.key, safe='')}&mode=student") for w in review.written]
        body_rows = []
        for name in names:
            cells = [f'<th scope="row">{_e(name)}</th>']
            quoted = _e(quote(name, safe=""))
            for written, href in zip(review.written, hrefs, strict=True):
                row = rows.get((name, written.key))
                state, text = _state(row)
                counts[written.key][state] += 1
                if row is not None and row.grade is not None:
                    text = _fmt(written_score(row.grade, written.items))
                    if state == "changed":
                        text += " (answer changed since graded)"
                    elif state == "flagged":
                        text += " \u2691"
                cells.append(f'<td class="{state}"><a href="/answer?submission={quoted}&amp;'
                             f'{href}">{_e(text)}</a></td>')
            body_rows.append(f"<tr>{''.join(cells)}</tr>")
        head = "".join(
            f'<th scope="col"><a href="{_e(_href("/next", mode="question", answer=w.key))}" '
            f'title="grade this question by question">{_e(w.key)}</a>'
            f'<span class="title">{_e(w.title)}</span>'
            f'<span class="points">{_fmt(w.points)} points</span></th>'
            for w in review.written)
        foot = "".join(
            "<td>" + "".join(f'<span class="{state}">{count} {state}</span>'
                                 for state, count in counts[w.key].items() if count) + "</td>"
            for w in review.written)
        needed = sum(c["ungraded"] + c["changed"] for c in counts.values())
        done = ("<p class=\"done\">Every answer is graded.</p>" if self.get_query_argument(
            "done", None) and not needed else "")
        body = (
            f"<header><h1>{_e(review.assignment)}: written answers</h1>{self.grader_box()}"
            f"</header>{done}"
            f'<p class="summary">{len(names)} submissions, {len(review.written)} written answers; '
            f"{needed} to grade. <kbd>n</kbd> grades the next answer by student, <kbd>q</kbd> "
            f"by question, <kbd>?</kbd> shows the keys.</p>"
            f'<table class="overview"><thead><tr><th scope="col">submission</th>{head}</tr>'
            f"</thead><tbody>{''.join(body_rows)}</tbody>"
            f'<tfoot><tr><th scope="row">answers</th>{foot}</tr></tfoot></table>')
        self.page(f"{review.assignment}: written answers", body, {"page": "overview"})


class _Next(_Handler):
    def get(self) -> None:
        review = self.review
        mode = self.get_query_argument("mode", "student")
        if mode not in MODES:
            raise _Refused(400, f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        rows = {(row.submission, row.answer): row for row in review.store.answers()}
        order = review.order(mode, review.names())
        current = (self.get_query_argument("submission", ""),
                   self.get_query_argument("answer", ""))
        only = self.get_query_argument("answer", None) if current[0] == "" else None
        if only is not None:  # a column's title: start that question, then go on
            review.find(only)
            start = next((i for i, (_, key) in enumerate(order) if key == only), 0)
        else:
            start = order.index(current) + 1 if current in order else 0
        for submission, answer in order[start:] + order[:start]:
            if _needs_grade(rows.get((submission, answer))):
                self.redirect(_answer_href(submission, answer, mode))
                return
        self.redirect("/?done=1")


class _Answer(_Handler):
    def get(self) -> None:
        review = self.review
        name = self.get_query_argument("submission", "")
        written = review.find(self.get_query_argument("answer", ""))
        mode = self.get_query_argument("mode", "student")
        if mode not in MODES:
            mode = "student"
        submissions = {row.name: row for row in review.store.submissions()}
        if name not in submissions:
            raise _Refused(404, f"unknown submission {name!r}")
        row = _answer_row(review.store, name, written.key)
        read, problem = _read_answer(review, submissions[name], written.key)
        names = list(submissions)
        order = review.order(mode, names)
        index = order.index((name, written.key))
        grade = row.grade if row is not None else None

        if problem:
            answer_html = f'<p class="problem">{_e(problem)}</p>'
        elif read is None or not read.present:
            note = read.note if read is not None and read.note else (
                "the notebook has no cell for this answer")
            answer_html = f'<p class="missing">No answer: {_e(note)}.</p>'
        else:
            answer_html = render_markdown(read.text) if read.text.strip() else (
                '<p class="missing">The answer cell is empty.</p>')
            if read.cut:
                answer_html += (f'<p class="note">[the answer is longer: its first '
                                f"{_answers.MAX_ANSWER_CHARS:,} characters are shown]</p>")
            if row is not None and row.sha256 and read.sha256 != row.sha256:
                answer_html = ('<p class="problem">The notebook on disk differs from the one '
                               "the autograder last read: run coursekit grade again.</p>"
                               + answer_html)
        outputs_html = _outputs_html(read.outputs) if read is not None and not problem else ""

        chosen = set(grade.items) if grade else set()
        items = []
        for number, (item, points, description) in enumerate(written.rubric, start=1):
            key = f"<kbd>{number}</kbd>" if number <= 9 else ""
            sign = "+" if points >= 0 else "\u2212"
            items.append(
                f'<li><label><input type="checkbox" value="{_e(item)}" data-points="'
                f'{points!r}"{" checked" if item in chosen else ""}> {key} '
                f'<span class="pts">{sign}{_fmt(abs(points))}</span> {_e(description)}'
                f' <span class="id">{_e(item)}</span></label></li>')
        unknown = sorted(chosen - set(written.items))
        stale = (f'<p class="problem">Items no longer in the rubric (they count 0): '
                 f"{_e(', '.join(unknown))}</p>" if unknown else "")
        who = (f"graded by {_e(grade.grader)} at {_e(grade.graded_at)} (version {grade.version})"
               if grade else "not graded yet")
        changed = ('<p class="changed">The answer changed since it was graded; the grade is '
                   "kept. Save again to confirm it.</p>" if row is not None and row.changed
                   else "")
        if mode == "question":
            position = (f"{written.key}: student {names.index(name) + 1} of {len(names)}")
        else:
            position = (f"{name}: answer {[w.key for w in review.written].index(written.key) + 1}"
                        f" of {len(review.written)}; submission {names.index(name) + 1} of "
                        f"{len(names)}")
        other = "question" if mode == "student" else "student"
        extra = _e(_fmt(grade.extra)) if grade else ""
        comment = _e(grade.comment) if grade else ""
        data = {
            "page": "answer", "submission": name, "answer": written.key, "mode": mode,
            "version": "" if grade is None else str(grade.version),
            "sha": (row.sha256 if row is not None else "") or "",
            "max": repr(written.points),
            "next": _href("/next", mode=mode, submission=name, answer=written.key),
            "forward": _answer_href(*order[(index + 1) % len(order)], mode),
            "back": _answer_href(*order[index - 1], mode),
            "other": _answer_href(name, written.key, other),
            "overview": "/",
        }
        body = (
            f'<header><h1><a href="/">{_e(review.assignment)}</a>: {_e(written.key)} '
            f"{_e(written.title)}</h1>{self.grader_box()}</header>"
            f'<p class="position">{"by question" if mode == "question" else "by student"}: '
            f"{_e(position)}. <kbd>?</kbd> shows the keys.</p>"
            f'<div class="columns"><article class="answer"><h2>{_e(name)}\'s answer</h2>'
            f"{changed}{answer_html}<h2>Outputs of this part</h2>{outputs_html}</article>"
            f'<aside class="grading"><h2>Rubric <span class="max">{_fmt(written.points)} '
            f'points</span></h2><ol id="rubric">{"".join(items)}</ol>{stale}'
            f'<label class="field">extra points <kbd>e</kbd> <input id="extra" type="text" '
            f'inputmode="decimal" autocomplete="off" value="{extra}"></label>'
            f'<label class="field">comment <kbd>c</kbd> <textarea id="comment" rows="4" '
            f'maxlength="{MAX_COMMENT_CHARS}">{comment}</textarea></label>'
            f'<label class="flag"><input id="flagged" type="checkbox"'
            f'{" checked" if grade and grade.flagged else ""}> <kbd>f</kbd> flagged</label>'
            f'<p class="score">score <output id="score"></output> / {_fmt(written.points)}</p>'
            f'<p id="who">{who}</p>'
            f'<button id="save" type="button">Save '
            f"<kbd>s</kbd></button> <span id=\"status\" role=\"status\"></span>"
            f'<div id="conflict" hidden><p id="conflict-text"></p>'
            f'<button id="reload" type="button">Reload theirs <kbd>r</kbd></button> '
            f'<button id="overwrite" type="button">Overwrite with mine <kbd>w</kbd></button>'
            f"</div></aside></div>")
        self.page(f"{written.key} {name}", body, data)


def _answer_row(store: Store, submission: str, answer: str) -> Any:
    try:
        return store.answer(submission, answer)
    except NotFound:
        return None  # the autograder has not recorded this answer: shown as missing


def _read_answer(review: _Review, submission: Any, key: str) -> tuple[Any, str]:
    """The student's answer as the notebook holds it now, or a problem to show instead."""
    path = Path(submission.path)
    if not path.is_absolute():
        folder = review.store.meta().get("submissions_folder")
        path = (Path(folder) if folder else review.store.path.parent) / path
    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return None, f"{path} is over {MAX_NOTEBOOK_BYTES:,} bytes: not read"
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read the notebook {path}: {exc.strerror or exc}"
    return _answers.read(data, review.planned).get(key), ""


class _GradeApi(_Handler):
    def get(self) -> None:
        review = self.review
        name = self.get_query_argument("submission", "")
        written = review.find(self.get_query_argument("answer", ""))
        try:
            row = review.store.answer(name, written.key)
        except NotFound as exc:
            raise review.not_found(exc) from None
        self.finish({"grade": _grade_json(row.grade, written.items), "changed": row.changed})

    def post(self) -> None:
        review = self.review
        origin = self.request.headers.get("Origin")
        own = f"{self.request.protocol}://{self.request.host}"
        if origin is not None and origin.lower() != own.lower():
            raise _Refused(403, f"forbidden: a request from another origin ({origin})")
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type != "application/json":
            raise _Refused(400, "the body must be JSON (Content-Type: application/json)")
        try:
            body = json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _Refused(400, f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _Refused(400, "the body must be a JSON object")
        name, key = body.get("submission"), body.get("answer")
        if not isinstance(name, str) or not isinstance(key, str):
            raise _Refused(400, "submission and answer must be strings")
        written = review.find(key)
        grade = _checked(body, written)
        if not grade["answer_sha256"]:  # the client did not say: the answer as last read
            row = _answer_row(review.store, name, written.key)
            grade["answer_sha256"] = row.sha256 if row is not None else ""
        try:
            saved = review.store.save_grade(
                name, written.key, items=grade["items"], extra=grade["extra"],
                comment=grade["comment"], grader=grade["grader"],
                expected_version=grade["version"], answer_sha256=grade["answer_sha256"],
                flagged=grade["flagged"], rubric=written.items, maximum=written.points)
        except Conflict as conflict:
            self.set_status(409)
            current = conflict.current
            self.finish({"error": "another grader saved this answer since you opened it",
                         "current": _grade_json(current, written.items)})
            return
        except NotFound as exc:
            raise review.not_found(exc) from None
        except ValueError as exc:  # the store's own range and item checks
            raise _Refused(400, str(exc)) from None
        self.finish({"grade": _grade_json(saved, written.items)})


def _checked(body: dict, written: _Written) -> dict:
    """The grade in a POST body, checked against the answer's rubric (400 naming the problem)."""
    items = body.get("items", [])
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise _Refused(400, "items must be a list of rubric item ids")
    unknown = sorted(set(items) - set(written.items))
    if unknown:
        raise _Refused(400, f"unknown rubric item{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(map(repr, unknown))} for {written.key}; its items are "
                            f"{', '.join(written.items) or 'none'}")
    extra = body.get("extra", 0)
    if isinstance(extra, bool) or not isinstance(extra, (int, float)) or not math.isfinite(extra):
        raise _Refused(400, f"extra must be a finite number, got {extra!r}")
    score = math.fsum([*(written.items[i] for i in set(items)), float(extra)])
    if not 0 <= score <= written.points:
        raise _Refused(400, f"points outside the rubric's range: {_fmt(score)} is not in "
                            f"[0, {_fmt(written.points)}] for {written.key}")
    comment, flagged = body.get("comment", ""), body.get("flagged", False)
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
        raise _Refused(400, f"comment must be text of at most {MAX_COMMENT_CHARS:,} characters")
    if not isinstance(flagged, bool):
        raise _Refused(400, f"flagged must be true or false, got {flagged!r}")
    grader = body.get("grader")
    if not isinstance(grader, str) or not grader.strip() or len(grader) > MAX_GRADER_CHARS:
        raise _Refused(400, f"grader must be a name of 1 to {MAX_GRADER_CHARS} characters")
    version = body.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise _Refused(400, f"version must be an integer or null, got {version!r}")
    sha = body.get("answer_sha256") or ""
    if not isinstance(sha, str) or (sha and not _SHA256.match(sha)):
        raise _Refused(400, "answer_sha256 must be a SHA-256 in hexadecimal")
    return {"items": sorted(set(items)), "extra": float(extra), "comment": comment,
            "flagged": flagged, "grader": grader.strip(), "version": version,
            "answer_sha256": sha}


class _Static(_Handler):
    def get(self, name: str) -> None:
        if name not in _STATIC:
            raise _Refused(404, f"no static file {name!r}")
        content_type, text = _STATIC[name]
        self.set_header("Content-Type", content_type)
        self.finish(text)


# The server ----------------------------------------------------------------------------------

def _quiet(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log, for server errors only (URLs may carry the token)."""
    if handler.get_status() >= 500:
        tornado.web.app_log.error("%d %s %s", handler.get_status(), handler.request.method,
                                  handler.request.path)


def app(assignment_or_plan: Any, store: Store, *, token: str, grader: str | None = None,
        port: int = 0, hosts: Iterable[str] | None = None) -> tornado.web.Application:
    """The Tornado application of the page (:func:`serve` runs it; tests may too).

    Parameters
    ----------
    assignment_or_plan : path, Assignment or Plan
        The grading file (``<hw>_grading.py``), the assignment it defines or its full
        plan: its written answers and their rubrics.
    store : Store
        The out folder's grading store, used from the thread that runs the app only.
    token : str
        The secret every request must carry.
    grader : str, optional
        The default grader's name (the login name when not given).
    port : int
        The server's port (names the cookie, so two pages on one host do not clash).
    hosts : iterable of str, optional
        The ``Host`` headers accepted (``name:port``); None accepts any.
    """
    name, planned = _planned(assignment_or_plan)
    review = _Review(
        assignment=name, written=_page_answers(planned), store=store, token=token,
        grader=grader or _login(), port=port,
        hosts=None if hosts is None else frozenset(h.lower() for h in hosts), planned=planned)
    shared = {"review": review}
    return tornado.web.Application([
        (r"/", _Overview, shared),
        (r"/answer", _Answer, shared),
        (r"/next", _Next, shared),
        (r"/api/grade", _GradeApi, shared),
        (r"/static/([a-z.]+)", _Static, shared),
    ], xsrf_cookies=True, xsrf_cookie_name=f"{review.cookie}-xsrf",
        xsrf_cookie_kwargs={"httponly": True, "samesite": "Strict"},
        log_function=_quiet, default_handler_class=_NotFound, default_handler_args=shared)


class _NotFound(_Handler):
    def prepare(self) -> None:
        self._authenticate()
        raise _Refused(404, f"no page {self.request.path}")


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment
        return "grader"


class Server:
    """A running grading page (:func:`serve`): its :attr:`url` and :meth:`stop`."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop, thread: threading.Thread):
        self.url = url
        self._loop = loop
        self._thread = thread

    def stop(self) -> None:
        """Stop serving and close the store (waits for the request in progress)."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def wait(self) -> None:
        """Block until :meth:`stop` is called from another thread (or Ctrl+C, which stops)."""
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            self.stop()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _hosts(host: str, port: int) -> frozenset[str] | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return frozenset({f"{host}:{port}".lower()})
    if address.is_unspecified:
        return None  # every interface: the token alone guards it
    names = {f"{host}:{port}", f"[{host}]:{port}" if address.version == 6 else f"{host}:{port}"}
    if address.is_loopback:
        names |= {f"{name}:{port}" for name in _LOCAL_NAMES}
    return frozenset(names)


def serve(assignment_or_plan: Any, out: str | Path, *, host: str = "127.0.0.1", port: int = 0,
          token: str | None = None, grader: str | None = None,
          open_browser: bool = False) -> Server:
    """Serve the grading page of ``plan``'s written answers over ``out``'s store.

    Parameters
    ----------
    assignment_or_plan : path, Assignment or Plan
        The grading file (``<hw>_grading.py``), the assignment it defines
        (:func:`~coursekit.grading.spec.load_assignment`) or its full plan: its written
        answers and their rubrics.
    out : path
        The out folder of ``coursekit grade`` (its ``grades.sqlite``).
    host, port : str, int
        Where to listen (port 0: a free one).
    token : str, optional
        The secret of the URL; a fresh ``secrets.token_urlsafe(32)`` when not given.
    grader : str, optional
        The default grader's name (the login name when not given).
    open_browser : bool
        Open :attr:`Server.url` in the default browser.

    Returns
    -------
    Server
        Serving from a thread of its own; ``url`` carries the token.

    Raises
    ------
    StoreError
        If the store is missing, locked or unreadable (nothing is served).
    ValueError
        If the plan has no written answers.
    """
    if isinstance(assignment_or_plan, (str, Path)):  # loaded once, here
        assignment_or_plan = load_assignment(assignment_or_plan)
    _planned(assignment_or_plan)  # raises before any socket opens
    token = token or secrets.token_urlsafe(32)
    sockets = tornado.netutil.bind_sockets(port, host)
    port = sockets[0].getsockname()[1]
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        store = None
        http = None
        try:
            store = Store.open(out)
            application = app(assignment_or_plan, store, token=token, grader=grader, port=port,
                              hosts=_hosts(host, port))

            async def start() -> tornado.httpserver.HTTPServer:
                server = tornado.httpserver.HTTPServer(application)
                server.add_sockets(sockets)
                return server

            http = loop.run_until_complete(start())
        except BaseException as exc:  # handed to serve()'s caller
            failure.append(exc)
            for sock in sockets:
                sock.close()
            if store is not None:
                store.close()
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            http.stop()
            loop.run_until_complete(http.close_all_connections())
            store.close()
            loop.close()

    thread = threading.Thread(target=run, name=f"coursekit-review-{port}", daemon=True)
    thread.start()
    ready.wait()
    if failure:
        raise failure[0]
    shown = f"[{host}]" if ":" in host else host
    server = Server(f"http://{shown}:{port}/?token={token}", loop, thread)
    if open_browser:
        webbrowser.open(server.url)
    return server


# The page's style sheet and script: files beside this module -----------------------------------

def _static(name: str) -> str:
    return (Path(__file__).parent / "review_static" / name).read_text(encoding="utf-8")


_STATIC = {"review.js": ("text/javascript; charset=utf-8", _static("review.js")),
           "review.css": ("text/css; charset=utf-8", _static("review.css"))}
