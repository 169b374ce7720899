"""The feedback page (coursekit.grading.feedback_html): what students and instructors read.

Fast tests render hand-made feedback dicts: the page is self-contained and escapes
everything (parsed back with html.parser: no script, no event handler, no external
resource), hidden tests show their name, points and verdict only even when the dict
carries more, the entries marked as differing are those np.isclose finds, scores read
back equal the feedback's, and a hostile notebook of ~10 MB renders within the caps.
The cell numbers are checked against the real child: a notebook whose third code cell
raises (in a function of an earlier cell, after blank lines) gets its error and
traceback lines under the cells they name.

One batch grades three HW1 submissions (the released homework, the solution with one
mistake, the solution) and their pages are checked against the feedback JSON written
beside them, read again from a resumed run, and opened in Chromium (screenshots saved).
"""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pytest
from grading_helpers import full_plan, grade_batch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell
from PIL import Image

from coursekit.cli import main
from coursekit.grading import build_plan, grade, grade_notebook, load_assignment
from coursekit.grading.feedback_html import (
    MAX_CELL_CHARS,
    MAX_CELLS,
    MAX_JSON_VALUES,
    MAX_NOTEBOOK_HTML,
    render,
)
from coursekit.grading.report import feedback
from tests.browser_support import launch_chromium, require_browser, save_artifact

CSP = "default-src 'none'; style-src 'unsafe-inline'"  # as the issue asks for it
HOSTILE = ('<script>alert(1)</script>', '<img src=x onerror="alert(2)">',
           '"><svg onload=alert(3)>', "</pre></div><iframe src=javascript:alert(4)>",
           "<!-- </style><script>alert(5)</script> -->")
LIVE_TAGS = {"script", "img", "iframe", "svg", "object", "embed", "link", "base", "form",
             "input", "button", "frame", "audio", "video", "source", "math", "meta-refresh"}


# Reading a page back ---------------------------------------------------------------------------

class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None = None):
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs):
        for child in self.children:
            if isinstance(child, str):
                continue
            if ((tag is None or child.tag == tag) and (cls is None or cls in child.classes())
                    and all(child.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())):
                yield child
            yield from child.find_all(tag, cls, **attrs)

    def find(self, tag: str | None = None, cls: str | None = None, **attrs) -> Node:
        found = list(self.find_all(tag, cls, **attrs))
        assert len(found) == 1, (tag, cls, attrs, len(found))
        return found[0]


VOID = {"meta", "br", "img", "input", "link", "hr", "wbr", "source", "col", "area", "base",
        "embed", "param", "track"}


class _Builder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.node = Node("#root", {})
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.node)
        self.node.children.append(node)
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.node = node

    def handle_startendtag(self, tag, attrs):
        self.node.children.append(Node(tag, dict(attrs), self.node))
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        node = self.node
        while node.tag != tag and node.parent is not None:
            node = node.parent
        assert node.tag == tag, f"</{tag}> closes nothing"
        self.node = node.parent

    def handle_data(self, data):
        self.node.children.append(data)


def parse(page: str) -> tuple[Node, list[tuple[str, dict]]]:
    builder = _Builder()
    builder.feed(page)
    builder.close()
    return builder.root, builder.tags


def assert_inert(page: str) -> Node:
    """The page has no element or attribute that could run code or fetch anything."""
    root, tags = parse(page)
    assert not [t for t, _ in tags if t in LIVE_TAGS]
    assert not [(t, a) for t, attrs in tags for a in attrs if a.lower().startswith("on")]
    links = [attrs.get("href") for _, attrs in tags if "href" in attrs]
    assert all(link.startswith("#") for link in links), links
    assert not [a for _, attrs in tags for a in attrs if a in ("src", "srcset", "action")]
    metas = [attrs for t, attrs in tags if t == "meta" and "http-equiv" in attrs]
    assert metas == [{"http-equiv": "Content-Security-Policy", "content": CSP}]
    return root


def scores(root: Node) -> dict[str, tuple[float, float]]:
    """Each ``span.score`` as (score, maximum), by question ("" for the total)."""
    found = {}
    for span in root.find_all("span", "score"):
        earned, maximum = (float(x) for x in span.text().split(" / "))
        found[span.attrs["data-question"]] = (earned, maximum)
    return found


def entries(pre: Node) -> list[tuple[str, bool]]:
    """The entries printed in an array's ``<pre>``: (text, marked as differing)."""
    text = "".join(c if isinstance(c, str) else f"!{c.text()}" for c in pre.children)
    return [(e.lstrip("!"), e.startswith("!")) for e in re.split(r"[\[\],\s]+", text)
            if e and e != "..."]


def readable(array: np.ndarray) -> list:
    """A float array as the feedback JSON holds it (NaN as "nan")."""
    if array.ndim > 1:
        return [readable(row) for row in array]
    return ["nan" if math.isnan(x) else x for x in array.tolist()]


def assert_scores(root: Node, fb: dict) -> None:
    """The scores on the page are the feedback's (to the 6 digits the page prints)."""
    wanted = {"": (fb["score"], fb["max_score"]),
              **{q["id"]: (q["score"], q["max_score"]) for q in fb["questions"]}}
    found = scores(root)
    assert sorted(found) == sorted(wanted)
    for key, pair in wanted.items():
        assert found[key] == pytest.approx(pair, rel=1e-5), key


# Hand-made feedback ---------------------------------------------------------------------------

def public_test(name="first_step", expected=None, got=None, passed=False, **more) -> dict:
    return {"name": name, "visibility": "public", "passed": passed, "points": float(passed),
            "max_points": 1.0, "description": "one step", "message": "theta: values differ",
            "rtol": 1e-6, "atol": 1e-8, "inputs": {"lr": 0.1},
            "expected": {"theta": [1.0, 2.0]} if expected is None else expected,
            "got": {"theta": [1.0, 2.5]} if got is None else got, **more}


def hidden_test(name="later_steps", passed=True, **more) -> dict:
    return {"name": name, "visibility": "hidden", "passed": passed,
            "points": 2.0 * passed, "max_points": 2.0, **more}


def report(tests=None, cells=(), **more) -> dict:
    tests = [public_test(), hidden_test()] if tests is None else tests
    score = sum(t["points"] for t in tests)
    maximum = sum(t["max_points"] for t in tests)
    return {"assignment": "hw0", "submission": "alice", "status": "ok",
            "detail": "every cell ran without error", "score": score, "max_score": maximum,
            "questions": [{"id": "adam", "title": "One Adam step", "score": score,
                           "max_score": maximum, "tests": tests}],
            "cells": list(cells), **more}


def notebook(*cells) -> bytes:
    """A notebook file (nbformat 4) holding ``cells``."""
    return json.dumps(new_notebook(cells=list(cells))).encode()


# The page -------------------------------------------------------------------------------------

def test_the_page_is_self_contained_and_its_scores_are_the_feedbacks():
    fb = report(tests=[public_test(passed=True), hidden_test(passed=False),
                       hidden_test("third", passed=True)])
    root = assert_inert(render(fb, notebook(new_code_cell("x = 1"))))
    assert_scores(root, fb)
    total = root.find("p", "total").text()
    assert f"({100 * fb['score'] / fb['max_score']:.4g}%)" in total
    assert root.find("strong", "submission").text() == "alice"


def test_everything_from_the_submission_is_escaped():
    evil = " ".join(HOSTILE)
    fb = report(tests=[public_test(message=evil, got={"theta": evil}, description=evil),
                       hidden_test(name=evil)],
                cells=[{"cell": 2, "status": "error", "error": evil}],
                submission=evil, detail=evil, status=evil)
    data = notebook(new_markdown_cell(evil), new_code_cell(f"x = {evil!r}\n# {evil}"),
                    new_raw_cell(evil))
    page = render(fb, data)
    root = assert_inert(page)
    text = root.text()
    for attack in HOSTILE:  # shown as text, not dropped
        assert attack in text
    # one error box under the cell, one in the list of cells at the top
    assert sum(1 for _ in root.find_all("div", "error")) == 2
    assert root.find("div", id="cell-2").find("div", "error").find("pre").text() == evil


def test_a_hidden_test_shows_its_name_points_and_verdict_and_nothing_else():
    secrets = {key: f"SECRET-{key}-{i}" for i, key in enumerate(
        ("message", "description", "inputs", "expected", "got", "reference", "seed"))}
    for visibility in ("hidden", None, "Public"):  # anything but "public" is hidden
        entry = hidden_test(**secrets)
        entry.update(inputs={"x": secrets["inputs"]}, expected=[secrets["expected"]])
        if visibility is None:
            del entry["visibility"]
        else:
            entry["visibility"] = visibility
        page = render(report(tests=[public_test(), entry]))
        assert "SECRET" not in page
        root = assert_inert(page)
        row = root.find("tr", "hidden-test")
        cells = [td.text() for td in row.find_all("td")]
        assert cells == ["later_steps", "2 / 2", "PASSED"]


def _comparison_row(root: Node, name: str) -> tuple[Node, Node]:
    table = root.find("table", "comparison")
    row = next(tr for tr in table.find_all("tr") if [th.text() for th in tr.find_all("th")]
               == [name])
    expected, got = row.find_all("td")
    return expected, got


def test_the_entries_marked_as_differing_are_those_outside_the_tolerance():
    rng = np.random.default_rng(3)
    expected = rng.normal(size=(4, 5))
    got = expected.copy()
    got[0, 1] += 1e-3
    got[2, 3] *= 1 + 1e-9  # within rtol
    got[3, 4] = np.nan
    expected[1, 1] = got[1, 1] = np.nan  # NaN matches NaN
    got[1, 2] = -got[1, 2]
    rtol, atol = 1e-6, 1e-8
    differs = ~np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    fb = report(tests=[public_test(expected={"theta": readable(expected)},
                                   got={"theta": readable(got)})])
    root = assert_inert(render(fb))
    for side in _comparison_row(root, "theta"):
        shown = entries(side.find("pre", "array"))
        assert len(shown) == expected.size
        assert [marked for _, marked in shown] == differs.ravel().tolist()
        assert "differs" in side.classes()


def test_a_long_array_is_summarised_and_says_which_differing_entries_it_hides():
    expected = np.linspace(0.0, 1.0, 1000)
    got = expected.copy()
    wrong = [1, 500, 700, 998]
    got[wrong] += 0.5
    differs = ~np.isclose(got, expected, rtol=1e-6, atol=1e-8)
    fb = report(tests=[public_test(expected={"theta": readable(expected)},
                                   got={"theta": readable(got)})])
    _, side = _comparison_row(assert_inert(render(fb)), "theta")
    shown = entries(side.find("pre", "array"))
    assert len(shown) == 6  # three at each end, as NumPy prints
    assert [m for _, m in shown] == [*differs[:3], *differs[-3:]]
    inside = np.flatnonzero(differs[3:-3]) + 3
    note = side.find("div", "note").text()
    assert f"{differs.sum()} entries differ, {len(inside)} of them inside the ..." in note
    assert re.findall(r"\((\d+),\)", note) == [str(i) for i in inside]


def test_differing_numbers_are_printed_with_the_digits_that_tell_them_apart():
    expected, got = 1.0, 1.0 + 3e-11
    fb = report(tests=[public_test(expected=expected, got=got, rtol=0.0, atol=0.0)])
    marks = [m.text() for m in assert_inert(render(fb)).find_all("mark", "differs")]
    assert len(marks) == 2 and marks[0] != marks[1]
    assert float(marks[0]) == expected and float(marks[1]) == pytest.approx(got, abs=1e-13)


def test_the_notebooks_stored_outputs_are_never_shown():
    cell = new_code_cell("print(1)")
    cell.outputs = [nbformat.v4.new_output("stream", text="STORED-OUTPUT <b>forged</b>"),
                    nbformat.v4.new_output("display_data",
                                           data={"text/html": "<script>STORED</script>",
                                                 "image/png": "iVBORw0KGgo="})]
    page = render(report(), notebook(cell))
    assert "STORED" not in page and "iVBORw0KGgo" not in page
    assert "print" in assert_inert(page).find("div", id="cell-1").text()


def test_a_hostile_notebook_of_ten_megabytes_renders_within_the_caps():
    fb = report()
    base = len(render(fb, None))
    line = f"x = {HOSTILE[0]!r}  # {HOSTILE[1]}\n"
    many = notebook(*[new_code_cell(line * 80) for _ in range(2500)],
                    new_markdown_cell(HOSTILE[2] * 100_000))
    assert len(many) > 10_000_000
    page = render(fb, many)
    root = assert_inert(page)
    shown = list(root.find_all("div", "cell"))
    assert 0 < len(shown) <= MAX_CELLS
    assert f"{2501 - len(shown)} more cells are not shown" in root.text()
    assert len(page) - base <= 2 * MAX_NOTEBOOK_HTML
    # one huge cell: cut, saying how much
    huge = "y = 1\n" * 1_000_000
    page = render(fb, notebook(new_code_cell(huge)))
    assert f"({len(huge) - MAX_CELL_CHARS} more characters of this cell are not shown)" in page
    assert len(page) - base <= 2 * MAX_NOTEBOOK_HTML


@pytest.mark.parametrize(("data", "reason"), [
    (b"[" * 200_000 + b"]" * 200_000, "is not readable JSON (RecursionError)"),
    (b'{"nbformat": 4, "cells": [' + b"0," * MAX_JSON_VALUES + b"0]}",
     f"holds more than {MAX_JSON_VALUES} JSON values"),
    (b"\xff\xfe not UTF-8", "is not readable JSON (UnicodeDecodeError)"),
    (b'{"nbformat": 9}', "is not a notebook this grader reads"),
], ids=["deep", "many_values", "not_utf8", "not_a_notebook"])
def test_a_notebook_that_cannot_be_read_is_left_out_saying_why(data, reason):
    fb = report()
    root = assert_inert(render(fb, data))
    assert f"The notebook cannot be shown: it {reason}." in root.text()
    assert_scores(root, fb)


def test_cell_numbers_and_traceback_lines_are_those_of_the_grader(tmp_path):
    # markdown, code, markdown, code, code: the third code cell is the notebook's fifth,
    # it starts with blank lines, and it raises inside NumPy's own Python code, called
    # from a function of the first code cell
    helper = "import numpy as np\n\ndef invert(a):\n    return np.linalg.inv(a)\n"
    raising = "\n\nresult = invert(np.zeros((2, 2)))\n"
    with pytest.raises(np.linalg.LinAlgError) as raised:
        np.linalg.inv(np.zeros((2, 2)))
    cells = [new_markdown_cell("# title"), new_code_cell(helper), new_markdown_cell("text"),
             new_code_cell("y = 1"), new_code_cell(raising)]
    path = tmp_path / "three.ipynb"
    path.write_bytes(notebook(*cells))
    plan = full_plan()
    result = grade_notebook(path, plan)
    fb = feedback(result, plan)
    third = [i + 1 for i, c in enumerate(cells) if c.cell_type == "code"][2]
    assert [p["cell"] for p in fb["cells"]] == [third]
    error = fb["cells"][0]["error"]
    first = helper.splitlines().index("    return np.linalg.inv(a)") + 1
    call = raising.splitlines().index("result = invert(np.zeros((2, 2)))") + 1
    assert error.splitlines() == [
        f"{type(raised.value).__name__}: {raised.value} (cell 2, line {first})",
        f"  cell {third}, line {call}, in <module>", "    result = invert(np.zeros((2, 2)))",
        f"  cell 2, line {first}, in invert", "    return np.linalg.inv(a)"]
    root = assert_inert(render(fb, path.read_bytes()))
    boxes = {int(div.attrs["id"].removeprefix("cell-")): div
             for div in root.find_all("div", "cell")}
    assert sorted(boxes) == [1, 2, 3, 4, 5]
    assert [n for n, div in boxes.items() if "problem" in div.classes()] == [third]
    assert boxes[third].find("div", "error").find("pre").text() == error
    # the lines the traceback names are marked in their cells, numbered as written
    for number, source, line in ((third, raising, call), (2, helper, first)):
        marked = boxes[number].find("span", "hll")
        number_text = marked.find("span", "linenos").text()
        assert number_text.strip() == str(line)
        assert marked.text() == number_text + source.splitlines()[line - 1] + "\n"


def test_coursekit_check_writes_the_page_for_the_public_tests(tmp_path, capsys):
    example = Path(__file__).parent / "grading_example"
    homework = example / "homework" / "example.ipynb"
    page = tmp_path / "report.html"
    assert main(["check", str(homework), "--html", str(page)]) == 1
    assert f"wrote {page}" in capsys.readouterr().out
    root = assert_inert(page.read_text(encoding="utf-8"))
    public = build_plan(load_assignment(example / "solutions" / "example_grading.py"),
                        include_hidden=False)
    assert "A self-check: public tests only" in root.text()
    assert sorted(n.text() for n in root.find_all("span", "test-name")) == \
        sorted(t.name for t in public.tests)
    assert not list(root.find_all("tr", "hidden-test"))
    assert scores(root)[""] == (0.0, public.max_points())
    problems = list(root.find_all("div", "problem"))
    assert problems and all("NotImplementedError" in div.text() for div in problems)


# Three HW1 submissions, graded in one batch ----------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hw1(tmp_path_factory):
    from test_hw1 import GRADING, HOMEWORK, MISTAKES, _edited, _solution

    root = tmp_path_factory.mktemp("hw1_pages")
    cell_id, old, new, _ = MISTAKES["adam_without_bias_correction"]
    submissions = {"failing": nbformat.read(HOMEWORK, as_version=4),
                   "partial": _edited(cell_id, old, new), "full": _solution()}
    results = grade_batch(GRADING, submissions, root, timeout=300, cell_timeout=120)
    return root, results, GRADING


def _page(root: Path, name: str) -> tuple[dict, str]:
    folder = root / "out" / "feedback"
    return (json.loads((folder / f"{name}.json").read_text(encoding="utf-8")),
            (folder / f"{name}.html").read_text(encoding="utf-8"))


def _differences(expected, got, rtol: float, atol: float) -> int:
    """How many entries of ``got`` that the page prints np.isclose finds away from
    ``expected``, part by part (of a part of more than 60 entries, the page prints three
    at each end of every axis, as NumPy does, and of more than three axes it prints the
    entries flattened)."""
    if isinstance(expected, dict):
        return sum(_differences(value, got[key], rtol, atol)
                   for key, value in expected.items() if isinstance(got, dict) and key in got)
    try:
        e, g = np.asarray(expected, dtype=float), np.asarray(got, dtype=float)
    except (TypeError, ValueError):  # not numbers
        return 0
    if e.shape != g.shape:
        return 0
    bad = ~np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    if bad.size > 60:
        bad = bad.ravel() if bad.ndim > 3 else bad
        bad = bad[np.ix_(*[range(n) if n <= 6 else [0, 1, 2, n - 3, n - 2, n - 1]
                           for n in bad.shape])]
    return int(bad.sum())


def _floats(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _floats(item)
    elif isinstance(value, np.ndarray):
        yield from _floats(value.ravel().tolist())
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _floats(item)
    elif isinstance(value, float) and math.isfinite(value):
        yield value


@pytest.mark.slow  # three HW1 submissions, one with its experiments: ~40 s on a busy machine
@pytest.mark.parametrize("name", ["failing", "partial", "full"])
def test_hw1_pages_show_the_feedbacks_scores_and_public_tests(hw1, name):
    root, results, grading = hw1
    fb, page = _page(root, name)
    dom = assert_inert(page)
    assert_scores(dom, fb)
    assert fb["score"] == pytest.approx(results[name].score())
    for question in fb["questions"]:
        section = dom.find("section", id=f"question-{question['id']}")
        public = [t for t in question["tests"] if t["visibility"] == "public"]
        hidden = [t for t in question["tests"] if t["visibility"] == "hidden"]
        blocks = list(section.find_all("div", "test"))
        assert [b.find("span", "test-name").text() for b in blocks] == [t["name"] for t in public]
        for block, test in zip(blocks, public, strict=True):
            assert block.find("pre", "message").text() == test["message"]
            assert block.find("span", "verdict").text() == ("PASSED" if test["passed"]
                                                            else "FAILED")
            assert block.find("span", "points").text() == \
                f"{test['points']:.6g} / {test['max_points']:.6g}"
            comparison = block.find("table", "comparison")
            assert "expected" in comparison.text() and "your notebook gave" in comparison.text()
        rows = [[td.text() for td in tr.find_all("td")]
                for tr in section.find_all("tr", "hidden-test")]
        assert rows == [[t["name"], f"{t['points']:.6g} / {t['max_points']:.6g}",
                         "PASSED" if t["passed"] else "FAILED"] for t in hidden]
    # no hidden input or reference value, in any of the forms the page prints numbers in
    plan = build_plan(load_assignment(grading))
    public_values = {x for t in plan.tests if not t.hidden
                     for x in (*_floats(t.inputs), *_floats(t.expected))}
    secrets = {x for t in plan.tests if t.hidden
               for x in (*_floats(t.inputs), *_floats(t.expected))} - public_values
    forms = {text for x in secrets for text in (repr(x), f"{x:.8g}", f"{x:.11g}")
             if len(text.lstrip("-")) >= 8}
    assert len(forms) > 50
    assert [text for text in forms if text in page] == []


@pytest.mark.slow
def test_hw1_pages_mark_the_mistake_and_the_cells_that_raised(hw1):
    root, _, _ = hw1
    fb, page = _page(root, "partial")
    dom = parse(page)[0]
    tests = {(q["id"], t["name"]): t for q in fb["questions"] for t in q["tests"]
             if t["visibility"] == "public"}
    counted = []
    for test in tests.values():  # each public test marks exactly what np.isclose rejects
        block = next(b for b in dom.find_all("div", "test")
                     if b.find("span", "test-name").text() == test["name"]
                     and b.find("pre", "message").text() == test["message"])
        marked = sum(1 for _ in block.find_all("mark", "differs"))
        differing = _differences(test["expected"], test["got"], test["rtol"], test["atol"])
        assert marked == 2 * differing, test["name"]
        counted.append(differing)
    assert sum(counted) > 0
    fb, page = _page(root, "failing")
    dom = parse(page)[0]
    cells = nbformat.read(root / "submissions" / "failing.ipynb", as_version=4).cells
    assert fb["cells"]
    for problem in fb["cells"]:
        box = dom.find("div", id=f"cell-{problem['cell']}")
        assert box.find("div", "error").find("pre").text() == problem["error"]
        assert cells[problem["cell"] - 1].cell_type == "code"
        for line in re.findall(r"^    (.+)$", problem["error"], re.M):
            assert any(line == s.strip() for c in cells for s in c.source.splitlines())


@pytest.mark.slow
def test_hw1_pages_are_written_again_for_records_a_resumed_run_reuses(hw1):
    root, _, grading = hw1
    out = root / "out"
    pages = {p: p.read_bytes() for p in sorted((out / "feedback").glob("*.html"))}
    assert len(pages) == 3
    for path in pages:
        path.unlink()
    again = grade(grading, root / "submissions", out, workers=1, progress=False, timeout=300,
                  cell_timeout=120)  # as the batch: the records' fingerprints match
    assert all(r.reused for r in again)
    assert {p: p.read_bytes() for p in sorted((out / "feedback").glob("*.html"))} == pages


@pytest.mark.slow
def test_hw1_pages_in_chromium(hw1, tmp_path, record_property):
    playwright_api, browser = require_browser()
    root, _, _ = hw1
    with playwright_api.sync_playwright() as playwright:
        context = launch_chromium(playwright, tmp_path / "profile", browser)
        try:
            page = context.new_page()
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            for name in ("failing", "partial", "full"):
                fb, _ = _page(root, name)
                url = (root / "out" / "feedback" / f"{name}.html").as_uri()
                page.goto(url, wait_until="load")
                total = page.locator('span.score[data-question=""]').inner_text()
                assert total == f"{fb['score']:.6g} / {fb['max_score']:.6g}"
                assert page.locator("div.test").count() == sum(
                    t["visibility"] == "public" for q in fb["questions"] for t in q["tests"])
                shot = tmp_path / f"feedback_hw1_{name}.png"
                page.screenshot(path=shot, full_page=True)
                save_artifact(shot, record_property, "feedback")
                with Image.open(shot) as image:
                    low, high = image.convert("L").getextrema()
                    assert image.height > 1000 and high - low > 100  # drawn, not blank
        finally:
            context.close()
    assert all(url.startswith("file://") for url in requests), requests
    assert not console, console  # a CSP violation would be reported here
