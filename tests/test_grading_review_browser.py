"""The grading page in a real browser: three answers graded with the keyboard alone.

The page (:func:`coursekit.grading.review.serve`) is served over a small class built
directly (the hand-made notebooks and store of ``tests/test_grading_review.py``) and
opened in Debian's system Chromium, driven by Playwright as ``tests/test_browser.py``
drives JupyterLab. The grader never clicks: ``n`` opens the next answer to grade,
``1``-``9`` toggle rubric items, ``e``/``c`` type the extra points and the comment
(whose letters must not act as keys), ``f`` flags, ``s`` and Ctrl+Enter save, ``m``
switches to the by-question walk. After a reload the grades are on the page and in the
store. Without the token the page is refused. A second test has two graders save the
same answer: the second sees the first's grade and overwrites it with ``w``.
Screenshots are saved with :func:`tests.browser_support.save_artifact`.

Skipped, saying which is missing, without Playwright or /usr/bin/chromium.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_support import launch_chromium, require_browser, save_artifact

pytest.importorskip("tornado", reason="the review extra is not installed")

from coursekit.grading import review
from coursekit.grading.store import Store
from tests.test_grading_review import PLAN, answer_path, make_class, small_class

TIMEOUT_MS = 30_000
_ITEMS = "() => [...document.querySelectorAll('#rubric input')].map(i => i.checked)"


def _shoot(page, folder: Path, name: str, record_property) -> None:
    path = folder / f"review_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    save_artifact(path, record_property, "review")


def _wait_saved(page) -> None:
    page.wait_for_function("() => document.getElementById('status').className === 'saved'",
                           timeout=TIMEOUT_MS)


def _url_of(server: review.Server, path: str) -> str:
    return server.url.split("/?token=")[0] + path


def _problems(page) -> list[str]:
    """Script errors and console errors (a Content Security Policy violation is one)."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(f"console: {message.text}")
            if message.type == "error" else None)
    return problems


@pytest.mark.slow
def test_three_answers_graded_with_the_keyboard_survive_a_reload(tmp_path, record_property):
    api, chromium = require_browser()
    out = make_class(tmp_path / "class", small_class())
    shots = tmp_path / "screenshots"
    shots.mkdir()
    server = review.serve(PLAN, out, grader="tina")
    try:
        with api.sync_playwright() as playwright:
            context = launch_chromium(playwright, tmp_path / "profile", chromium)
            try:
                page = context.pages[0] if context.pages else context.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                problems = _problems(page)
                page.goto(server.url)
                assert page.url == _url_of(server, "/"), "the token stays in the URL"
                assert page.locator("td.ungraded").count() == 5
                _shoot(page, shots, "1_overview", record_property)

                # 1. alice's part1/a: two items, a deduction as extra points, a comment
                page.keyboard.press("n")
                page.wait_for_url(_url_of(server, answer_path("alice", "part1/a")))
                assert page.locator("math").count() >= 3  # MathML made by the server
                assert page.locator("img[src^='data:image/png']").count() == 1
                page.keyboard.press("1")
                page.keyboard.press("2")
                page.keyboard.press("e")
                page.keyboard.type("-0.5")
                page.keyboard.press("Escape")
                page.keyboard.press("c")
                page.keyboard.type("Clear; name the figure's axes next time. 1 2 s n j k f")
                page.keyboard.press("Escape")
                assert page.evaluate(_ITEMS) == [True, True, False]  # the comment's keys: text
                assert page.locator("#score").text_content() == "2.5"
                page.keyboard.press("?")
                assert page.locator("#help").is_visible()
                _shoot(page, shots, "2_alice_part1a_keys", record_property)
                page.keyboard.press("Escape")
                assert not page.locator("#help").is_visible()
                page.keyboard.press("n")  # saves, then the next answer to grade

                # 2. alice's part2/b: one item, flagged, saved with s
                page.wait_for_url(_url_of(server, answer_path("alice", "part2/b")))
                page.keyboard.press("2")
                page.keyboard.press("f")
                page.keyboard.press("s")
                _wait_saved(page)
                assert page.locator("#who").text_content().startswith("graded by tina at ")
                page.keyboard.press("j")  # nothing changed since the save: straight on

                # 3. bob's part1/a, by question: saved with Ctrl+Enter
                page.wait_for_url(_url_of(server, answer_path("bob", "part1/a")))
                page.keyboard.press("m")
                page.wait_for_url(_url_of(server, answer_path("bob", "part1/a", "question")))
                page.keyboard.press("1")
                page.keyboard.press("Control+Enter")
                _wait_saved(page)
                _shoot(page, shots, "3_bob_part1a_by_question", record_property)
                page.keyboard.press("n")  # by question: the next student's part1/a
                page.wait_for_url(_url_of(server, answer_path("carol", "part1/a", "question")))

                page.goto(_url_of(server, answer_path("alice", "part1/a")))
                page.reload()
                assert page.evaluate(_ITEMS) == [True, True, False]
                assert page.locator("#extra").input_value() == "-0.5"
                assert page.locator("#comment").input_value().startswith("Clear; name")
                assert page.locator("#score").text_content() == "2.5"
                page.goto(_url_of(server, answer_path("alice", "part2/b")))
                assert page.evaluate(_ITEMS) == [False, True]
                assert page.locator("#flagged").is_checked()
                page.goto(_url_of(server, "/"))
                assert page.locator("td.graded").count() == 2
                assert page.locator("td.flagged").count() == 1
                _shoot(page, shots, "4_overview_after", record_property)
                assert problems == []

                context.clear_cookies()
                response = page.goto(_url_of(server, "/"))
                assert response.status == 403
                assert "forbidden" in page.locator("body").text_content()
                response = page.goto(_url_of(server, answer_path("alice", "part1/a")))
                assert response.status == 403
                _shoot(page, shots, "5_without_token", record_property)
            finally:
                context.close()
    finally:
        server.stop()
    with Store.open(out) as store:
        grades = {(row.submission, row.answer): row.grade for row in store.answers()
                  if row.grade is not None}
    assert sorted(grades) == [("alice", "part1/a"), ("alice", "part2/b"), ("bob", "part1/a")]
    first = grades["alice", "part1/a"]
    assert first.items == ("figure", "valley") and first.extra == -0.5
    assert first.comment == "Clear; name the figure's axes next time. 1 2 s n j k f"
    assert first.grader == "tina" and not first.flagged and not first.answer_sha256 == ""
    assert grades["alice", "part2/b"].items == ("reason",) and grades["alice", "part2/b"].flagged
    assert grades["bob", "part1/a"].items == ("valley",)


@pytest.mark.slow
def test_a_second_grader_on_the_same_answer_sees_the_first_and_may_overwrite(
        tmp_path, record_property):
    api, chromium = require_browser()
    out = make_class(tmp_path / "class", small_class())
    shots = tmp_path / "screenshots"
    shots.mkdir()
    server = review.serve(PLAN, out, grader="tina")
    target = answer_path("bob", "part2/b")
    try:
        with api.sync_playwright() as playwright:
            first = launch_chromium(playwright, tmp_path / "profile1", chromium)
            second = launch_chromium(playwright, tmp_path / "profile2", chromium)
            try:
                pages = []
                for context in (first, second):
                    page = context.pages[0] if context.pages else context.new_page()
                    page.set_default_timeout(TIMEOUT_MS)
                    page.goto(server.url)
                    page.goto(_url_of(server, target))
                    pages.append(page)
                tina, tom = pages
                tom.keyboard.press("g")  # tom says who he is; the browser remembers it
                tom.keyboard.press("Control+a")
                tom.keyboard.type("tom")
                tom.keyboard.press("Escape")
                tina.keyboard.press("1")
                tina.keyboard.press("s")
                _wait_saved(tina)
                tom.keyboard.press("2")
                tom.keyboard.press("s")
                tom.wait_for_selector("#conflict:not([hidden])")
                text = tom.locator("#conflict-text").text_content()
                assert "saved by tina" in text and "items: value" in text
                _shoot(tom, shots, "6_conflict", record_property)
                tom.keyboard.press("w")
                _wait_saved(tom)
                tom.reload()
                assert tom.locator("#grader").input_value() == "tom"
            finally:
                first.close()
                second.close()
    finally:
        server.stop()
    with Store.open(out) as store:
        stored = store.answer("bob", "part2/b").grade
        actions = [(entry.action, entry.who) for entry in store.log("bob", "part2/b")]
    assert stored.items == ("reason",) and stored.grader == "tom" and stored.version == 2
    assert actions == [("save", "tina"), ("conflict", "tom"), ("save", "tom")]
