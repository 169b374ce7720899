"""Students in JupyterLab: the README's command and a lecture's widgets in a real browser.

* The README's ``jupyter lab`` command, run from the repository root, lands on the
  course's start notebook (which links every lecture and homework), and the
  ipywidgets extension is served.
* A lecture with a :func:`coursekit.viz.widgets.explore` demo is opened (a temporary
  copy: nothing is written back) in headless Chromium, every cell is run in CI mode,
  a slider of the demo is moved with the keyboard, and the figure below it must be
  redrawn (a new PNG) with no widget failing to render. Screenshots are saved in
  the test's temporary folder (and copied to ``$COURSEKIT_ARTIFACTS`` when set).

The browser test needs Debian's ``chromium`` (``.ci/system-deps`` installs it) and
Playwright (the ``dev`` extra); without them it is skipped, saying which is missing.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import time
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest

from tests.browser_support import (
    WIDGETS_EXTENSION,
    LabServer,
    launch_chromium,
    require_browser,
    save_artifact,
)

ROOT = Path(__file__).resolve().parents[1]
LANDING = "lectures/00_start_here.ipynb"
WIDGET_ERRORS = ("Error displaying widget", "Failed to load model class")
# An explore() demo: a VBox of controls whose last child is the Image widget holding the figure.
EXPLORE = ".widget-vbox:has(.widget-slider):has(> img.widget-image)"
FIGURE = "img.widget-image"
CELL_TIMEOUT_S = 300  # as nbval's per-cell limit; the whole lecture runs in well under that
REDRAW_TIMEOUT_S = 60
STOPPED_AFTER_S = 5  # no cell queued or running for this long: Run All has stopped
START_TIMEOUT_S = 240  # for the notebook panel and its kernel to accept "Run All Cells"
_PROMPTS = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
                   .map(e => e.textContent.trim())"""
_STARTED = f"() => ({_PROMPTS})().some(p => p !== '[ ]:')"
_STDERR = """() => [...document.querySelectorAll(
                   '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
                   .map(e => e.innerText)"""
_ERROR_VIEWS = """() => [...document.querySelectorAll('.jupyter-widgets-error-widget')]
                       .map(e => e.textContent.replace(/\\s+/g, ' ').trim())"""
_NEW_FIGURE = """([box, before]) => {
    const image = box.querySelector('img.widget-image');
    return image !== null && image.src !== '' && image.src !== before;
}"""
# The Image widget shows its PNG bytes through a blob: URL; read them back as base64.
_IMAGE_BYTES = """async (image) => {
    const bytes = new Uint8Array(await (await fetch(image.src)).arrayBuffer());
    let text = '';
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text);
}"""


def _readme_lab_args() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r'`python -m pip install -e "\.\[dev\]" && jupyter lab([^`]*)`', readme)
    assert match, 'README.md gives no `python -m pip install -e ".[dev]" && jupyter lab` command'
    return shlex.split(match.group(1))


@pytest.mark.slow
def test_readme_lab_command_opens_the_landing_notebook(tmp_path):
    args = _readme_lab_args()
    with LabServer(ROOT, tmp_path, args) as server:
        status, headers, _ = server.get("")
        target = urlsplit(headers.get("Location", "")).path
        assert status == 302 and target == f"/lab/tree/{LANDING}", (
            f"`jupyter lab {shlex.join(args)}` from the repository root opens {target!r}, not "
            f"{LANDING}. Jupyter reads no config from the working directory: the README's "
            "command must be `jupyter lab --config=jupyter_lab_config.py`.")
        assert urlsplit(server.browser_open_url()).path == target
        status, _, body = server.get(f"api/contents/{LANDING}?content=0")
        assert status == 200 and json.loads(body)["type"] == "notebook"
        served = {ext["name"] for ext in server.page_config(target)["federated_extensions"]}
        assert WIDGETS_EXTENSION in served, (
            f"JupyterLab does not serve {WIDGETS_EXTENSION} (package jupyterlab_widgets, a "
            f"dependency of ipywidgets): widgets cannot render. Served: {sorted(served)}")


def test_landing_notebook_links_every_lecture_and_homework():
    landing = ROOT / LANDING
    nb = nbformat.read(landing, as_version=4)
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    linked = {(landing.parent / target).resolve()
              for target in re.findall(r"\]\((?![a-z]+://)([^)\s]+\.ipynb)\)", text)}
    notebooks = {path.resolve() for folder in ("lectures", "homework")
                 for path in (ROOT / folder).glob("*.ipynb")} - {landing.resolve()}
    dead = sorted(os.path.relpath(path, ROOT) for path in linked - notebooks)
    unlinked = sorted(os.path.relpath(path, ROOT) for path in notebooks - linked)
    assert not dead, f"{LANDING} links to notebooks that do not exist: {dead}"
    assert not unlinked, f"{LANDING} does not link {unlinked}"


def _lectures_with_explore() -> list[Path]:
    found = []
    for path in sorted((ROOT / "lectures").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if any("explore(" in cell.source for cell in nb.cells if cell.cell_type == "code"):
            found.append(path)
    return found


def _copy_lecture(lecture: Path, folder: Path) -> tuple[Path, list[bool]]:
    """Copy ``lecture`` into ``folder``/lectures; which of its code cells have code."""
    nb = nbformat.read(lecture, as_version=4)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3",
                                          "language": "python"})
    copy = folder / "lectures" / lecture.name
    copy.parent.mkdir(parents=True)
    nbformat.write(nb, copy)
    return copy, [bool(c.source.strip()) for c in nb.cells if c.cell_type == "code"]


def _run_all_cells(page, has_code: list[bool], timeout_s: float) -> None:
    """Run > Run All Cells, then wait until every code cell has run; fail on an error."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.wait_for_selector(".jp-Notebook .jp-CodeCell .jp-InputPrompt")
    # The menu entry does nothing until the notebook panel and its kernel are ready, which
    # on a loaded machine (the test suite runs on every core) can take a minute or more.
    started_by = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click(
                timeout=10_000)
            page.click("li[data-command='runmenu:run-all']:not(.lm-mod-disabled)",
                       timeout=10_000)
            page.wait_for_function(_STARTED, timeout=15_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            if time.monotonic() > started_by:
                pytest.fail(f"Run > Run All Cells never started the notebook's cells in "
                            f"{START_TIMEOUT_S:.0f} s")
    deadline = time.monotonic() + timeout_s
    idle_since = None  # when no cell was last seen queued or running
    while True:
        prompts = page.evaluate(_PROMPTS)
        assert len(prompts) == len(has_code), (
            f"{len(prompts)} code cells shown, {len(has_code)} in the notebook")
        waiting = [i for i, (p, code) in enumerate(zip(prompts, has_code, strict=True))
                   if code and not re.fullmatch(r"\[\d+\]:", p)]
        if not waiting:
            return
        if any(prompts[i] == "[*]:" for i in waiting):
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > STOPPED_AFTER_S:  # an error ended Run All
            errors = "\n\n".join(page.evaluate(_STDERR))
            pytest.fail(f"the lecture stopped before code cell {waiting[0]}:\n{errors}")
        if time.monotonic() > deadline:
            pytest.fail(f"code cells {waiting} still running after {timeout_s:.0f} s")
        page.wait_for_timeout(500)


def _widget_errors(page) -> list[str]:
    """Widgets that failed to render: ipywidgets' error views, and the messages of
    JupyterLab's widget renderer (which may sit in hidden elements)."""
    views = page.evaluate(_ERROR_VIEWS)
    text = page.evaluate("() => document.body.textContent")
    return views + [error for error in WIDGET_ERRORS if error in text]


def _first_explore_widget(page):
    """The first explore() demo on the page, once its figure is shown."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    demo = page.locator(EXPLORE).first
    try:
        page.wait_for_function(_NEW_FIGURE, arg=[page.locator(EXPLORE).first.element_handle(
            timeout=REDRAW_TIMEOUT_S * 1000), ""], timeout=REDRAW_TIMEOUT_S * 1000)
    except PlaywrightTimeout:
        images = page.evaluate("() => [...document.querySelectorAll('img.widget-image')]"
                               ".map(e => e.src)")
        pytest.fail(f"no explore() demo showing a figure; image widgets: {images}; "
                    f"widget errors: {_widget_errors(page)}")
    return demo


def _move_first_slider(page, demo, figure_before: str) -> None:
    """Move the demo's first slider to one end with the keyboard, as a student can, and
    wait until the figure below it has been replaced."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    slider = demo.locator(".widget-slider").first
    handle, readout = slider.locator(".noUi-handle"), slider.locator(".widget-readout")
    label, old_value, old_readout = (slider.locator(".widget-label").inner_text(),
                                     handle.get_attribute("aria-valuenow"), readout.inner_text())
    at_minimum = float(old_value) == float(handle.get_attribute("aria-valuemin"))
    handle.press("End" if at_minimum else "Home")
    try:
        page.wait_for_function(_NEW_FIGURE, arg=[demo.element_handle(), figure_before],
                               timeout=REDRAW_TIMEOUT_S * 1000)
    except PlaywrightTimeout:
        pytest.fail(f"moving slider {label!r} from {old_readout} to {readout.inner_text()} did "
                    f"not redraw the figure in {REDRAW_TIMEOUT_S} s")
    assert handle.get_attribute("aria-valuenow") != old_value
    assert readout.inner_text() != old_readout


def _png(figure) -> bytes:
    """The PNG bytes the demo's Image widget shows."""
    data = base64.b64decode(figure.evaluate(_IMAGE_BYTES))
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), f"not a PNG: {data[:16]!r}"
    return data


@pytest.mark.slow
def test_explore_widget_redraws_its_figure_in_jupyterlab(tmp_path, record_property):
    playwright_api, browser = require_browser()
    lectures = _lectures_with_explore()
    assert lectures, "no lecture in lectures/ calls explore(): nothing to test in the browser"
    lecture = lectures[0]
    committed = lecture.read_bytes()
    copy, has_code = _copy_lecture(lecture, tmp_path / "course")
    print(f"lecture: {lecture.name} (a copy in {copy.parent})")

    kernel_env = {"COURSEKIT_FAST": "1",  # CI mode, and this checkout's coursekit
                  "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                              os.environ.get("PYTHONPATH")]))}
    server = LabServer(tmp_path / "course", tmp_path / "jupyter", env=kernel_env)
    with server, playwright_api.sync_playwright() as playwright:
        context = launch_chromium(playwright, tmp_path / "profile", browser)
        page = context.new_page()
        page.set_default_timeout(60_000)
        page_errors: list[str] = []
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        console_errors: list[str] = []

        def keep_errors(message) -> None:
            if message.type == "error":
                console_errors.append(message.text)

        page.on("console", keep_errors)
        try:
            page.goto(server.url(f"lab/tree/lectures/{copy.name}"))
            _run_all_cells(page, has_code, CELL_TIMEOUT_S)
            demo = _first_explore_widget(page)
            demo.scroll_into_view_if_needed()
            figure = demo.locator(FIGURE)
            before = figure.first.get_attribute("src")
            png_before = _png(figure.first)
            demo.screenshot(path=tmp_path / "explore_before.png")
            save_artifact(tmp_path / "explore_before.png", record_property)

            _move_first_slider(page, demo, before)
            assert figure.count() == 1, "the old figure was not replaced"
            assert _png(figure.first) != png_before
            demo.screenshot(path=tmp_path / "explore_after.png")
            save_artifact(tmp_path / "explore_after.png", record_property)

            failed = _widget_errors(page)
            assert not failed, f"widgets failed to render: {failed}; console: {console_errors}"
            assert not page_errors, page_errors
        finally:
            page.screenshot(path=tmp_path / "jupyterlab.png")
            save_artifact(tmp_path / "jupyterlab.png", record_property)
            context.close()
    assert lecture.read_bytes() == committed, "the committed lecture was modified"
