"""The grading page at class scale: the overview of 300 submissions x 8 written answers,
one answer's page, and a save, timed over HTTP against a live server.

A temporary out folder is filled as ``coursekit grade`` would leave it: ``--students``
submitted notebooks (each with ``--answers`` written answer cells, some Markdown with
math, and a code cell with a text output and a small PNG in each part), their rows in
the grading store, and a third of the answers already graded. The page is served with
:func:`coursekit.grading.review.serve` on 127.0.0.1, and a client on one keep-alive
connection (as a browser keeps one) times, after one warm-up request each:

- ``GET /`` (the overview: every submission x answer with its state and score),
- ``GET /answer?...`` (one answer rendered, its Markdown and math, outputs, rubric),
- ``POST /api/grade`` (a save: the checks, one SQLite transaction with its log row),

each the median (and min, max) of ``--repeats`` requests, printed beside the issue's
targets: the overview under 1 s, a save under 50 ms. The numbers are measured here,
on this machine; nothing is asserted.

Usage: ``python benchmarks/review_page.py [--students 300] [--answers 8] [--repeats 15]``
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import re
import statistics
import struct
import tempfile
import time
import zlib
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import nbformat

from coursekit.grading import answers, review
from coursekit.grading.spec import Plan, PlannedWritten, RubricItem
from coursekit.grading.store import Store, SubmissionRow

OVERVIEW_TARGET_S = 1.0
SAVE_TARGET_S = 0.050


def _png(width: int = 64, height: int = 48) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + b"".join(bytes((x * 4 % 256, y * 5 % 256, 128))
                                       for x in range(width)) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _plan(count: int) -> Plan:
    written = tuple(
        PlannedWritten(f"part{i // 2 + 1}", "ab"[i % 2], f"Written question {i + 1}", 3.0, (
            RubricItem("idea", 2.0, "states the main idea"),
            RubricItem("evidence", 1.0, "points to the figure or the numbers"),
            RubricItem("detail", 1.0, "a correct detail beyond the question"),
            RubricItem("wrong", -1.0, "a wrong claim")))
        for i in range(count))
    questions = tuple(dict.fromkeys((w.question, f"Part {w.question[4:]}") for w in written))
    return Plan("bench", questions, (), {}, written)


def _notebook(student: int, plan: Plan, png: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for i, written in enumerate(plan.written):
        code = nbformat.v4.new_code_cell("run()", execution_count=i + 1)
        code.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text=f"loss {0.1 * i:.2f}\n"),
            nbformat.v4.new_output("display_data", data={"image/png": png,
                                                         "text/plain": "<Figure>"})]
        answer = (f"Student {student} on {written.key}: the update $\\theta_{{t+1}} = "
                  f"\\theta_t - \\eta \\nabla f(\\theta_t)$ with $\\eta = {i + 1} \\times "
                  "10^{-2}$ converges because\n\n$$\n\\sum_t \\eta_t = \\infty, \\quad "
                  "\\sum_t \\eta_t^2 < \\infty.\n$$\n\n" + "More words. " * 40)
        nb.cells += [nbformat.v4.new_markdown_cell(f"## {written.title}"), code,
                     nbformat.v4.new_markdown_cell(
                         answer, metadata={"coursekit": {"answer": written.key}})]
    return nb


def build(folder: Path, students: int, count: int) -> tuple[Plan, Path, float]:
    """The out folder of a graded class, a third of its answers graded by hand."""
    plan = _plan(count)
    submitted, out = folder / "submitted", folder / "out"
    submitted.mkdir()
    png = base64.b64encode(_png()).decode()
    start = time.perf_counter()
    with Store.open(out, create=True) as store:
        store.set_meta("submissions_folder", str(submitted))
        for s in range(students):
            name = f"student{s:03d}"
            path = submitted / f"{name}.ipynb"
            nbformat.write(_notebook(s, plan, png), path)
            found = answers.read(path.read_bytes(), plan.written)
            store.sync_submission(
                SubmissionRow(name, path.name, "0" * 64, "2026-10-02T21:00:00+00:00", "mtime",
                              "ok", "", {}, "2026-10-03T08:00:00+00:00"),
                {k: (a.sha256, len(a.text), a.present) for k, a in found.items()})
        for index, row in enumerate(store.answers()):
            if index % 3 == 0:
                store.save_grade(row.submission, row.answer, items=["idea"], extra=0.5,
                                 comment="", grader="bench", expected_version=None,
                                 answer_sha256=row.sha256)
    return plan, out, time.perf_counter() - start


class Client:
    """One keep-alive connection with the page's cookies, as a browser tab."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.cookies: dict[str, str] = {}
        self.request("GET", f"/?{parts.query}")
        body = self.request("GET", "/")[1]
        self.xsrf = re.search(rb'<meta name="xsrf" content="([^"]+)"', body).group(1).decode()

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        sent = {**(headers or {}),
                "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        self.connection.request(method, path, body=body, headers=sent)
        response = self.connection.getresponse()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        return response.status, response.read()


def timed(call, repeats: int) -> list[float]:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def line(what: str, times: list[float], target: float | None = None) -> str:
    median = statistics.median(times)
    text = (f"{what}: median {median * 1000:.1f} ms (min {min(times) * 1000:.1f}, "
            f"max {max(times) * 1000:.1f}, {len(times)} requests)")
    if target is not None:
        verdict = "met" if median < target else "NOT met"
        text += f"; target under {target * 1000:.0f} ms: {verdict} ({median / target:.2f} of it)"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--answers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coursekit-review-bench-") as folder:
        plan, out, seconds = build(Path(folder), args.students, args.answers)
        print(f"class: {args.students} submissions x {args.answers} written answers "
              f"({args.students * args.answers} answers), filled in {seconds:.1f} s")
        server = review.serve(plan, out, grader="bench")
        try:
            client = Client(server.url)
            status, page = client.request("GET", "/")
            assert status == 200, status
            cells = page.count(b'<td class="')
            print(f"overview: {len(page) / 1024:.0f} KiB of HTML, {cells} cells")
            print(line("GET / (the overview)",
                       timed(lambda: client.request("GET", "/"), args.repeats),
                       OVERVIEW_TARGET_S))
            one = "/answer?" + urlencode({"submission": "student150",
                                          "answer": plan.written[3].key})
            status, body = client.request("GET", one)
            assert status == 200 and b"<math" in body, status
            print(line("GET /answer (one answer, rendered)",
                       timed(lambda: client.request("GET", one), args.repeats)))
            with Store.open(out) as store:
                todo = [(r.submission, r.answer) for r in store.answers() if r.grade is None]
            queue = iter(todo)

            def save() -> None:
                submission, answer = next(queue)
                body = json.dumps({
                    "submission": submission, "answer": answer, "items": ["idea", "evidence"],
                    "extra": 0, "comment": "Clear.", "flagged": False, "grader": "bench",
                    "version": None, "answer_sha256": ""}).encode()
                status, reply = client.request(
                    "POST", "/api/grade", body,
                    {"Content-Type": "application/json", "X-XSRFToken": client.xsrf})
                assert status == 200, reply

            print(line("POST /api/grade (a save)", timed(save, max(args.repeats, 30)),
                       SAVE_TARGET_S))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
