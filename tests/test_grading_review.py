"""The grading page for written answers, over HTTP (coursekit.grading.review).

A small class is built directly: three hand-made submitted notebooks (a written answer
cell marked ``metadata["coursekit"]["answer"]``, code cells with a text and a PNG
output), their rows in a fresh grading store, and a plan with two written answers and
their rubrics. The page is served on 127.0.0.1 (:func:`review.serve`) and driven with
``http.client``: the token and its cookie, the overview, one answer rendered (math as
MathML, the student's HTML and scripts escaped), saves, refusals (400, 403, 404) and a
conflict between two graders (409, logged).
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import struct
import zlib
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import nbformat
import pytest

pytest.importorskip("tornado", reason="the review extra is not installed")
pytest.importorskip("markdown_it", reason="the review extra is not installed")
pytest.importorskip("latex2mathml", reason="the review extra is not installed")

from coursekit.grading import answers, review
from coursekit.grading.spec import Plan, PlannedWritten, RubricItem
from coursekit.grading.store import Store, StoreError, SubmissionRow

ASSIGNMENT = "hw9"
WRITTEN = (
    PlannedWritten("part1", "a", "Why does momentum help?", 3.0, (
        RubricItem("valley", 2.0, "explains the ravine / valley picture"),
        RubricItem("figure", 1.0, "refers to the figure"),
        RubricItem("wrong_sign", -1.0, "gets the update's sign wrong"))),
    PlannedWritten("part2", "b", "Which step size would you pick?", 2.0, (
        RubricItem("value", 1.0, "names a value"),
        RubricItem("reason", 1.0, "gives the reason from the sweep"))),
)
PLAN = Plan(ASSIGNMENT, (("part1", "Momentum"), ("part2", "Step sizes")), (), {}, WRITTEN)
HOSTILE = ("Momentum averages $v_t = \\mu v_{t-1} + g_t$, so\n\n$$\n\\frac{1}{1-\\mu}\n$$\n\n"
           "<script>alert('answer')</script> <img src=x onerror=alert(1)>\n\n"
           "Sneaky math: $\\text{<b onclick=alert(2)>bold</b>}$ and "
           "$\\href{javascript:alert(3)}{link}$; broken: $\\frac{1}{$ done.")


def tiny_png(width: int = 160, height: int = 90, rgb: tuple[int, ...] = (200, 30, 30)) -> bytes:
    """A valid PNG of one colour (a stand-in figure), written by hand: no matplotlib."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                               0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def submitted_notebook(answer_a: str | None, answer_b: str | None, *,
                       output_text: str = "loss 0.25\n") -> nbformat.NotebookNode:
    """A submitted notebook: two parts, each a heading, a code cell with outputs and
    (unless None) the marked answer cell."""
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("plot_losses()", execution_count=1)
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=output_text),
        nbformat.v4.new_output("display_data", data={
            "image/png": base64.b64encode(tiny_png()).decode(), "text/plain": "<Figure>"}),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("## Part 1: momentum"), code]
    if answer_a is not None:
        nb.cells.append(nbformat.v4.new_markdown_cell(
            answer_a, metadata={"coursekit": {"answer": "part1/a"}}))
    nb.cells += [nbformat.v4.new_markdown_cell("## Part 2: step sizes"),
                 nbformat.v4.new_code_cell("sweep()", execution_count=2)]
    if answer_b is not None:
        nb.cells.append(nbformat.v4.new_markdown_cell(
            answer_b, metadata={"coursekit": {"answer": "part2/b"}}))
    return nb


def sync(store: Store, name: str, path: Path) -> None:
    """Record a submission in the store as the autograder would."""
    found = answers.read(path.read_bytes(), WRITTEN)
    store.sync_submission(
        SubmissionRow(name, path.name, "0" * 64, "2026-10-02T21:00:00+00:00", "mtime", "ok",
                      "", {"part1": 1.0}, "2026-10-03T08:00:00+00:00"),
        {key: (a.sha256, len(a.text), a.present) for key, a in found.items()})


def make_class(folder: Path, notebooks: dict[str, nbformat.NotebookNode]) -> Path:
    """Write the submissions and a store over them; the out folder."""
    submissions, out = folder / "submitted", folder / "out"
    submissions.mkdir(parents=True)
    with Store.open(out, create=True) as store:
        store.set_meta("assignment", ASSIGNMENT)
        store.set_meta("submissions_folder", str(submissions))
        for name, nb in notebooks.items():
            path = submissions / f"{name}.ipynb"
            nbformat.write(nb, path)
            sync(store, name, path)
    return out


def small_class() -> dict[str, nbformat.NotebookNode]:
    return {
        "alice": submitted_notebook(HOSTILE, "I would pick $\\eta = 0.1$."),
        "bob": submitted_notebook("Momentum damps the zig-zag.", "0.3, the fastest stable one.",
                                  output_text="<b>not bold</b> & loss 0.5\n"),
        "carol": submitted_notebook("It goes faster.", None),
    }


class Client:
    """HTTP to the page without following redirects, keeping its cookies."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.token = dict(p.split("=", 1) for p in parts.query.split("&"))["token"]
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        sent = dict(headers or {})
        if self.cookies:
            sent.setdefault("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    self.cookies[key] = rest.split(";", 1)[0]
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, headers=headers)

    def login(self) -> Client:
        status, _, _ = self.get(f"/?token={self.token}")
        assert status == 302
        return self

    def xsrf(self) -> str:
        status, _, body = self.get("/")
        assert status == 200
        return re.search(rb'<meta name="xsrf" content="([^"]+)"', body).group(1).decode()

    def save(self, grade: dict, **headers: str) -> tuple[int, dict]:
        sent = {"Content-Type": "application/json", "X-XSRFToken": self.xsrf(),
                "Origin": f"http://{self.host}:{self.port}", **headers}
        status, _, body = self.request("POST", "/api/grade", json.dumps(grade).encode(), sent)
        return status, json.loads(body)


def answer_path(submission: str, answer: str, mode: str = "student") -> str:
    return "/answer?" + urlencode({"submission": submission, "answer": answer, "mode": mode})


def grade(submission: str = "alice", answer: str = "part1/a", **fields) -> dict:
    base = {"submission": submission, "answer": answer, "items": ["valley"], "extra": 0.5,
            "comment": "Good, but <say> why", "flagged": False, "grader": "tina",
            "version": None, "answer_sha256": ""}
    return {**base, **fields}


@pytest.fixture
def served(tmp_path):
    out = make_class(tmp_path, small_class())
    server = review.serve(PLAN, out, grader="tina")
    try:
        yield server, out
    finally:
        server.stop()


@pytest.fixture
def client(served):
    return Client(served[0].url).login()


def test_every_route_refuses_requests_without_the_right_token(served):
    server, _ = served
    anonymous = Client(server.url)
    paths = ["/", answer_path("alice", "part1/a"), "/next?mode=student", "/static/review.js",
             "/static/review.css", "/api/grade?submission=alice&answer=part1/a", "/nope"]
    for path in paths:
        status, _, body = anonymous.get(path)
        assert status == 403, (path, status)
        assert b"alert" not in body and b"math" not in body
        separator = "&" if "?" in path else "?"
        assert anonymous.get(f"{path}{separator}token=wrong{anonymous.token[5:]}")[0] == 403
        assert anonymous.get(path, Authorization="token nope")[0] == 403
    status, _, _ = anonymous.request("POST", "/api/grade", json.dumps(grade()).encode(),
                                     {"Content-Type": "application/json"})
    assert status == 403
    assert anonymous.cookies == {}  # nothing handed out to a stranger
    with Store.open(served[1]) as store:
        assert store.answer("alice", "part1/a").grade is None


def test_the_token_becomes_an_httponly_strict_cookie_and_leaves_the_url(served):
    server, _ = served
    client = Client(server.url)
    status, headers, _ = client.get(f"/answer?submission=bob&answer=part1%2Fa&token={client.token}")
    assert status == 302
    assert headers["Location"] == "/answer?submission=bob&answer=part1%2Fa"
    cookie = next(v for k, v in headers.items() if k.lower() == "set-cookie")
    assert f"={client.token}" in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    status, headers, body = client.get(headers["Location"])
    assert status == 200 and b"Momentum damps the zig-zag." in body
    assert headers["Content-Security-Policy"] == review.CONTENT_SECURITY_POLICY
    assert headers["X-Frame-Options"] == "DENY"
    client.xsrf()
    assert sorted(client.cookies) == [f"coursekit-review-{client.port}",
                                      f"coursekit-review-{client.port}-xsrf"]
    # a script or tool may send the token as a header instead
    assert Client(server.url).get("/", Authorization=f"token {client.token}")[0] == 200


def test_a_foreign_host_header_is_refused_even_with_the_token(client):
    status, _, _ = client.get("/", Host=f"evil.example:{client.port}")
    assert status == 403


def test_overview_shows_every_cell_state_and_the_counts_per_answer(served, client):
    _, out = served
    with Store.open(out) as store:
        store.save_grade("alice", "part1/a", items=["valley", "figure"], extra=0,
                         comment="", grader="tina", expected_version=None,
                         answer_sha256=store.answer("alice", "part1/a").sha256)
        store.save_grade("bob", "part1/a", items=["valley"], extra=0, comment="", grader="tina",
                         expected_version=None, flagged=True,
                         answer_sha256=store.answer("bob", "part1/a").sha256)
        store.save_grade("bob", "part2/b", items=["value"], extra=0, comment="", grader="tom",
                         expected_version=None,
                         answer_sha256=store.answer("bob", "part2/b").sha256)
        resubmitted = Path(store.meta()["submissions_folder"]) / "bob.ipynb"
        nbformat.write(submitted_notebook("Momentum damps the zig-zag.", "0.1 after all."),
                       resubmitted)
        sync(store, "bob", resubmitted)
    status, _, body = client.get("/")
    assert status == 200
    page = body.decode()
    states = re.findall(r'<td class="(\w+)"><a href="/answer\?submission=(\w+)&amp;'
                        r'answer=(part\d%2F\w)', page)
    assert [(s, n, a.replace("%2F", "/")) for s, n, a in states] == [
        ("graded", "alice", "part1/a"), ("ungraded", "alice", "part2/b"),
        ("flagged", "bob", "part1/a"), ("changed", "bob", "part2/b"),
        ("ungraded", "carol", "part1/a"), ("missing", "carol", "part2/b")]
    assert ">3</a>" in page  # alice's part1/a: valley 2 + figure 1
    assert "2 \u2691" in page  # bob's flagged part1/a
    assert "1 (answer changed since graded)" in page
    assert ">no answer</a>" in page
    foot = re.search(r"<tfoot>(.*)</tfoot>", page).group(1)
    assert re.findall(r'<span class="(\w+)">(\d) \1</span>', foot) == [
        ("graded", "1"), ("ungraded", "1"), ("flagged", "1"),  # part1/a
        ("ungraded", "1"), ("changed", "1"), ("missing", "1")]  # part2/b
    assert "3 to grade" in page  # alice's part2/b, carol's part1/a and bob's changed part2/b


def test_answer_page_renders_math_as_mathml_and_escapes_the_students_html(client):
    status, headers, body = client.get(answer_path("alice", "part1/a"))
    assert status == 200
    page = body.decode()
    assert headers["Content-Security-Policy"] == review.CONTENT_SECURITY_POLICY
    # math, inline and displayed, as MathML made on the server
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline"><mrow><msub>' \
           "<mi>v</mi><mi>t</mi></msub>" in page
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in page
    assert "<mfrac>" in page
    # the student's HTML is text; \text{...} and \href inside math are data, never markup
    assert "&lt;script&gt;alert('answer')&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<b onclick" not in page and "<b>" not in page
    assert "&lt;b\u00a0onclick=alert(2)&gt;bold&lt;/b&gt;" in page  # \text keeps its spaces
    assert "javascript:" not in page
    # LaTeX that does not convert stays visible as escaped code
    assert '<code class="tex-error" title="LaTeX not converted">\\frac{1}{</code>' in page
    # the part's outputs: text escaped, the PNG as a data: URI of the same bytes
    assert "loss 0.25" in page
    png = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(png) == tiny_png()
    # no inline script at all: the one script is the server's own file
    assert re.findall(r"<script[^>]*>", page) == [
        '<script src="/static/review.js" defer>']
    # the rubric, as checkboxes with their points, and the grader's default name
    assert re.findall(r'<input type="checkbox" value="(\w+)" data-points="([-\d.]+)">', page) \
        == [("valley", "2.0"), ("figure", "1.0"), ("wrong_sign", "-1.0")]
    assert 'data-default="tina"' in page and "not graded yet" in page


def test_text_outputs_are_escaped(client):
    _, _, body = client.get(answer_path("bob", "part1/a"))
    assert b"&lt;b&gt;not bold&lt;/b&gt; &amp; loss 0.5" in body
    assert b"<b>not bold" not in body


def test_a_missing_answer_says_so(client):
    status, _, body = client.get(answer_path("carol", "part2/b", "question"))
    assert status == 200
    assert b"No answer: " in body and b"by question" in body


def test_static_files_are_served_with_their_types(client):
    status, headers, body = client.get("/static/review.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert b"X-XSRFToken" in body
    status, headers, _ = client.get("/static/review.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css")
    assert client.get("/static/other.js")[0] == 404


def test_a_save_is_stored_and_shown_after_a_reload(served, client):
    status, reply = client.save(grade(items=["figure", "valley"], extra=-0.5, flagged=True))
    assert status == 200, reply
    saved = reply["grade"]
    assert saved["items"] == ["figure", "valley"] and saved["version"] == 1
    assert saved["score"] == 2.5 and saved["grader"] == "tina" and saved["flagged"]
    with Store.open(served[1]) as store:
        stored = store.answer("alice", "part1/a").grade
        assert stored.items == ("figure", "valley") and stored.extra == -0.5
        assert stored.answer_sha256 == store.answer("alice", "part1/a").sha256 != ""
        assert stored.comment == "Good, but <say> why" and stored.version == 1
        assert [e.action for e in store.log("alice", "part1/a")] == ["save"]
    status, _, body = client.get("/api/grade?submission=alice&answer=part1%2Fa")
    assert status == 200 and json.loads(body)["grade"]["items"] == ["figure", "valley"]
    _, _, body = client.get(answer_path("alice", "part1/a"))
    page = body.decode()
    assert re.findall(r'<input type="checkbox" value="(\w+)" data-points="[-\d.]+"( checked)?>',
                      page) == [("valley", " checked"), ("figure", " checked"),
                                ("wrong_sign", "")]
    assert 'id="extra" type="text" inputmode="decimal" autocomplete="off" value="-0.5"' in page
    assert ">Good, but &lt;say&gt; why</textarea>" in page
    assert '<input id="flagged" type="checkbox" checked>' in page
    assert 'data-version="1"' in page and "graded by tina at " in page
    # the next save goes on from the version just saved
    status, reply = client.save(grade(items=["valley"], extra=0, version=1))
    assert status == 200 and reply["grade"]["version"] == 2


@pytest.mark.parametrize(("fields", "message"), [
    ({"items": ["valley", "style"]}, "unknown rubric item 'style' for part1/a"),
    ({"items": ["valley", "figure"], "extra": 1}, "points outside the rubric's range: 4 is not "
                                                  "in [0, 3] for part1/a"),
    ({"items": ["wrong_sign"], "extra": 0}, "points outside the rubric's range: -1"),
    ({"extra": "1e999"}, "extra must be a finite number, got '1e999'"),
    ({"extra": True}, "extra must be a finite number"),
    ({"items": "valley"}, "items must be a list of rubric item ids"),
    ({"grader": "  "}, "grader must be a name"),
    ({"version": "1"}, "version must be an integer or null"),
    ({"answer_sha256": "x" * 64}, "answer_sha256 must be a SHA-256"),
])
def test_bad_grades_are_refused_with_400_naming_the_problem(served, client, fields, message):
    status, reply = client.save(grade(**fields))
    assert status == 400 and message in reply["error"], reply
    with Store.open(served[1]) as store:
        assert store.answer("alice", "part1/a").grade is None
        assert store.log("alice", "part1/a") == []


def test_non_finite_extra_in_the_json_is_refused(client):
    for constant in ("Infinity", "NaN", "-Infinity"):
        body = json.dumps(grade()).replace('"extra": 0.5', f'"extra": {constant}')
        status, _, reply = client.request(
            "POST", "/api/grade", body.encode(),
            {"Content-Type": "application/json", "X-XSRFToken": client.xsrf()})
        assert status == 400
        assert "extra must be a finite number" in json.loads(reply)["error"]


def test_unknown_submissions_and_answers_are_404_with_a_message(client):
    status, _, body = client.get(answer_path("mallory", "part1/a"))
    assert status == 404 and b"unknown submission &#x27;mallory&#x27;" in body
    status, _, body = client.get(answer_path("alice", "part9/z"))
    assert status == 404 and b"part1/a, part2/b" in body
    status, reply = client.save(grade(submission="mallory"))
    assert status == 404 and reply["error"] == "no submission 'mallory'"
    status, reply = client.save(grade(answer="part1/zz"))
    assert status == 404 and "unknown answer 'part1/zz'" in reply["error"]
    status, _, body = client.get("/api/grade?submission=alice&answer=nope")
    assert status == 404 and "unknown answer" in json.loads(body)["error"]
    status, _, body = client.get("/api/grade?submission=zed&answer=part1%2Fa")
    assert status == 404 and json.loads(body)["error"] == "no submission 'zed'"


def test_a_save_over_another_graders_save_is_a_409_and_logged(served, client):
    assert client.save(grade(grader="tina"))[0] == 200  # both loaded the page at no grade
    status, reply = client.save(grade(grader="tom", items=["figure"], comment="mine"))
    assert status == 409
    assert reply["error"] == "another grader saved this answer since you opened it"
    assert reply["current"]["grader"] == "tina" and reply["current"]["version"] == 1
    assert reply["current"]["items"] == ["valley"] and reply["current"]["score"] == 2.5
    with Store.open(served[1]) as store:
        assert store.answer("alice", "part1/a").grade.grader == "tina"
        log = store.log("alice", "part1/a")
        assert [e.action for e in log] == ["save", "conflict"]
        assert log[1].who == "tom" and log[1].after["comment"] == "mine"
    # tom overwrites explicitly, against the version he was shown
    status, reply = client.save(grade(grader="tom", items=["figure"], comment="mine", version=1))
    assert status == 200 and reply["grade"]["version"] == 2
    with Store.open(served[1]) as store:
        assert [e.action for e in store.log("alice", "part1/a")] == ["save", "conflict", "save"]


def test_a_post_needs_the_xsrf_token_same_origin_and_json(served, client):
    body = json.dumps(grade()).encode()
    status, _, _ = client.request("POST", "/api/grade", body,
                                  {"Content-Type": "application/json"})
    assert status == 403  # no X-XSRFToken
    status, _ = client.save(grade(), Origin="http://evil.example")
    assert status == 403
    status, reply = client.save(grade(), **{"Content-Type": "text/plain"})
    assert status == 400 and "JSON" in reply["error"]
    with Store.open(served[1]) as store:
        assert store.answer("alice", "part1/a").grade is None


def _next(client: Client, **query: str) -> str:
    status, headers, _ = client.get("/next?" + urlencode(query))
    assert status == 302
    return headers["Location"]


def test_next_walks_the_answers_that_need_a_grade_in_the_modes_order(client):
    assert _next(client, mode="student") == answer_path("alice", "part1/a")
    assert _next(client, mode="question") == answer_path("alice", "part1/a", "question")
    assert _next(client, mode="student", submission="alice", answer="part1/a") == \
        answer_path("alice", "part2/b")
    assert _next(client, mode="question", submission="alice", answer="part1/a") == \
        answer_path("bob", "part1/a", "question")
    # a column's title starts that question
    assert _next(client, mode="question", answer="part2/b") == \
        answer_path("alice", "part2/b", "question")
    # carol has no part2/b: skipped; after the last one it wraps around
    assert _next(client, mode="question", submission="carol", answer="part1/a") == \
        answer_path("alice", "part2/b", "question")
    for submission, answer in [("alice", "part1/a"), ("alice", "part2/b"), ("bob", "part1/a"),
                               ("bob", "part2/b"), ("carol", "part1/a")]:
        status, _ = client.save(grade(submission, answer, items=[], extra=0))
        assert status == 200
    assert _next(client, mode="student") == "/?done=1"
    _, _, body = client.get("/?done=1")
    assert b"Every answer is graded." in body and b"0 to grade" in body


def test_j_and_k_neighbours_follow_the_mode(client):
    _, _, body = client.get(answer_path("bob", "part1/a", "question"))
    page = body.decode()
    forward = re.search(r'data-forward="([^"]+)"', page).group(1).replace("&amp;", "&")
    back = re.search(r'data-back="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert forward == answer_path("carol", "part1/a", "question")
    assert back == answer_path("alice", "part1/a", "question")
    assert "student 2 of 3" in page


def test_mathml_is_rebuilt_from_allowed_elements_only():
    html = review.render_markdown("$\\text{<script>x</script>}$ $\\href{javascript:y}{z}$ "
                                  "$\\mbox{</math><img src=q>}$ $\\text{<style>}x^2$")
    assert "<script" not in html and "<img" not in html and "<style" not in html
    assert "href" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert html.count("<math") == html.count("</math>") == 4
    # </math> typed in a text does not end the formula: the text after it stays inside
    assert "<mtext>&lt;img\u00a0src=q&gt;</mtext>" in html
    # <style> does not swallow the rest of the formula
    assert "<msup><mi>x</mi><mn>2</mn></msup>" in html


def test_long_math_is_shown_as_code():
    long = "x+" * review.MAX_MATH_CHARS
    assert '<code class="tex-error"' in review.render_markdown(f"${long}x$")
    assert "<math" in review.render_markdown(f"${long[:review.MAX_MATH_CHARS - 2]}x$")


def test_a_long_answer_says_it_is_cut(served, client):
    _, out = served
    path = out.parent / "submitted" / "carol.ipynb"
    nbformat.write(submitted_notebook("word " * answers.MAX_ANSWER_CHARS, None), path)
    status, _, body = client.get(answer_path("carol", "part1/a"))
    assert status == 200
    assert f"its first {answers.MAX_ANSWER_CHARS:,} characters are shown".encode() in body


def test_serve_refuses_a_plan_without_rubrics_or_a_missing_store(tmp_path):
    public = Plan(ASSIGNMENT, PLAN.questions, (), {},
                  tuple(PlannedWritten(w.question, w.name, w.title, w.points) for w in WRITTEN))
    with pytest.raises(ValueError, match="part1/a, part2/b have no rubric"):
        review.serve(public, tmp_path)
    with pytest.raises(ValueError, match="has no written answers"):
        review.serve(Plan(ASSIGNMENT, (), (), {}), tmp_path)
    with pytest.raises(StoreError, match=r"grades\.sqlite: no grading store here"):
        review.serve(PLAN, tmp_path / "empty")


def test_a_changed_answer_says_so_until_a_grader_saves_it_again(served, client):
    _, out = served
    assert client.save(grade("carol", "part1/a", items=["valley"], extra=0))[0] == 200
    with Store.open(out) as store:
        path = Path(store.meta()["submissions_folder"]) / "carol.ipynb"
        nbformat.write(submitted_notebook("It goes faster, because of the average.", None), path)
        sync(store, "carol", path)
        assert store.answer("carol", "part1/a").changed
    _, _, body = client.get(answer_path("carol", "part1/a"))
    assert b"The answer changed since it was graded; the grade is kept." in body
    assert b"because of the average" in body
    sha = re.search(rb'data-sha="([0-9a-f]{64})"', body).group(1).decode()
    status, reply = client.save(grade("carol", "part1/a", items=["valley"], extra=0, version=1,
                                      answer_sha256=sha))
    assert status == 200 and reply["grade"]["version"] == 2
    with Store.open(out) as store:
        assert not store.answer("carol", "part1/a").changed
    _, _, body = client.get(answer_path("carol", "part1/a"))
    assert b"The answer changed since it was graded" not in body


GRADING_FILE = """
from coursekit.grading.spec import Assignment, Item, Question, Written

ASSIGNMENT = Assignment(questions=[
    Question("part1", "Momentum", written=[Written("a", "Why does momentum help?", 3, [
        Item("valley", 2, "explains the valley"), Item("figure", 1, "uses the figure")])]),
    Question("part2", "Step sizes", written=[Written("b", "Which step size?", 2, [
        Item("value", 1, "names a value"), Item("reason", 1, "gives the reason")])]),
], seed=1)
"""


def test_serve_takes_the_grading_file_or_its_assignment(tmp_path):
    from coursekit.grading.spec import load_assignment

    grading = tmp_path / f"{ASSIGNMENT}_grading.py"
    grading.write_text(GRADING_FILE)
    out = make_class(tmp_path, small_class())
    for source in (grading, load_assignment(grading)):
        with review.serve(source, out) as server:
            client = Client(server.url).login()
            status, _, body = client.get(answer_path("bob", "part2/b"))
            assert status == 200 and b"gives the reason" in body
            assert b"<title>part2/b bob</title>" in body
