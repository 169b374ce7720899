"""The course website: built with the README's command, checked page by page and in Chromium.

The site is built once per run, by the command the README documents (``coursekit
site``), in a subprocess with a time limit, into a temporary folder. It reuses the
executed notebooks the suite itself wrote (tests/notebook_outputs.py): these tests
are marked ``executed_notebooks``, so they run after every notebook, on the notebooks'
worker. Run alone, the build executes the lectures itself (a few minutes).

Checked on the built HTML: every lecture page holds figures (PNG files that exist)
and rendered-math markup, the homework pages hold the released student versions (no
outputs, no solution code), the API reference documents every public module with
its docstring equations as math, every notebook page's launch links (Colab, Binder,
a JupyterHub) open that notebook's path in the repository, and every local link and
image resolves. Then headless Chromium opens the landing page and every lecture,
MathJax must typeset the math, every figure must load, and screenshots are saved
(and copied to ``$COURSEKIT_ARTIFACTS`` when set). Small throw-away courses check
that the build fails on a notebook error, a broken link and a missing image.
"""

from __future__ import annotations

import html
import json
import re
import shlex
import subprocess
import sys
import threading
import time
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

import nbformat
import pytest

from coursekit import launch, site
from tests.browser_support import launch_chromium, require_browser, save_artifact
from tests.notebook_outputs import executed_dir

pytestmark = [pytest.mark.executed_notebooks, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 900        # every lecture executed here, on a busy machine, if no copy exists
LECTURES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "lectures").glob("*.ipynb"))
HOMEWORK = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "homework").glob("*.ipynb"))
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def readme_site_command() -> list[str]:
    """The README's site command (a backticked ``coursekit site ...`` line)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"^\s*(coursekit site\b[^\n`]*)$", readme, flags=re.M)
    assert found, "README.md must give the command that builds the site (coursekit site ...)"
    return shlex.split(found[0])


class Page(HTMLParser):
    """The links, images and math markup of one HTML page."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.links: list[str] = []
        self.images: list[str] = []
        self.classes: list[str] = []
        self.feed(path.read_text(encoding="utf-8"))
        self.text = path.read_text(encoding="utf-8")

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(html.unescape(attrs["href"]))
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
        self.classes.extend((attrs.get("class") or "").split())

    def local(self, target: str) -> Path | None:
        """The file a relative link or image points at (None for URLs and anchors)."""
        parts = urlsplit(target)
        if parts.scheme or parts.netloc or not parts.path:
            return None
        return (self.path.parent / unquote(parts.path)).resolve()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The site, built by the README's command into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    command = readme_site_command()
    assert command[:2] == ["coursekit", "site"], command
    args = [sys.executable, "-m", "coursekit.cli", *command[1:], "--out", str(out),
            "--executed", str(executed_dir(ROOT))]
    started = time.perf_counter()
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True,
                            timeout=BUILD_TIMEOUT_S, check=False)
    print(result.stdout)
    print(f"site build: {time.perf_counter() - started:.1f} s")
    assert result.returncode == 0, result.stderr[-6000:] or result.stdout[-6000:]
    return out / "html"


def _html(built: Path, notebook: str) -> Path:
    return built / (notebook[: -len(".ipynb")] + ".html")


@pytest.mark.parametrize("lecture", LECTURES)
def test_every_lecture_page_shows_figures_and_math(built, lecture):
    page = Page(_html(built, lecture))
    assert "cell_output" in page.classes, f"{lecture}: the page shows no outputs"
    figures = [src for src in page.images if "_images/" in src and src.endswith(".png")]
    assert figures, f"{lecture}: no figure on its page"
    for src in figures:
        assert page.local(src).is_file(), f"{lecture}: figure {src} is missing"
    assert "math" in page.classes, f"{lecture}: no math markup on its page"


@pytest.mark.parametrize("notebook", HOMEWORK)
def test_homework_pages_are_the_student_versions(built, notebook):
    page = Page(_html(built, notebook))
    assert "cell_output" not in page.classes, f"{notebook}: a homework page shows outputs"
    solution = nbformat.read(ROOT / "solutions" / Path(notebook).name, as_version=4)
    released = "\n".join(cell.source for cell in nbformat.read(ROOT / notebook, 4).cells)
    hidden = []
    for cell in solution.cells:
        inside = False
        for line in cell.source.splitlines():
            if line.strip().startswith(SOLUTION_MARKERS[0]):
                inside = True
            elif line.strip().startswith(SOLUTION_MARKERS[1]):
                inside = False
            elif inside and len(line.strip()) > 25 and line.strip() not in released:
                hidden.append(line.strip())      # solution code the student version lacks
    assert hidden, f"no solution lines found in solutions/{Path(notebook).name}"
    text = html.unescape(re.sub(r"<[^>]+>", "", page.text))
    shown = [line for line in hidden if line in text]
    assert not shown, f"{notebook}: solution code on the page: {shown[:3]}"


def test_api_reference_documents_every_module_with_math(built):
    index = Page(built / "api" / "index.html")
    documented = {}
    for page in (built / "api").glob("coursekit*.html"):
        for module in re.findall(r'id="module-(coursekit[\w.]*)"', page.read_text("utf-8")):
            documented[module] = page.name
    modules = site.api_modules()
    assert len(modules) > 40
    missing = [module for module in modules if module not in documented]
    assert not missing, f"modules without API documentation: {missing}"
    for page in set(documented.values()):
        assert any(link.endswith(page) for link in index.links), f"api/index lacks {page}"
    # a docstring with :math: and .. math:: renders as math
    schedules = Page(built / "api" / documented["coursekit.schedules.functions"])
    assert "math" in schedules.classes
    assert r"\eta_t" in schedules.text


def test_landing_page_is_the_readme_course_map(built):
    page = Page(built / "index.html")
    for notebook in LECTURES[1:] + HOMEWORK:   # the course map links each of them
        target = Path(notebook[: -len(".ipynb")] + ".html").name
        assert any(link.endswith(target) for link in page.links), f"index lacks {notebook}"
    assert "Course map" in page.text


def _launch_links(page: Page) -> dict[str, str]:
    config = launch.read_config(ROOT)
    found = {}
    for link in page.links:
        if link.startswith(config.colab):
            found["colab"] = link
        elif config.binder and link.startswith(config.binder):
            found["binder"] = link
        elif config.jupyterhub and link.startswith(config.jupyterhub):
            found["hub"] = link
    return found


def _path_in(kind: str, url: str, config) -> str:
    """The repository path a launch URL opens, read off the URL independently of launch.py."""
    owner_name = urlsplit(config.repository).path.strip("/")
    parts = urlsplit(url)
    if kind == "colab":
        prefix = f"/github/{owner_name}/blob/{config.branch}/"
        assert parts.path.startswith(prefix), url
        return unquote(parts.path[len(prefix):])
    if kind == "binder":
        assert parts.path.startswith(f"/v2/gh/{owner_name}/{config.branch}"), url
        query = parse_qs(parts.query)
        opened = (query.get("labpath") or query.get("urlpath"))[0]
        return re.sub(r"^(lab/tree/|tree/)", "", unquote(opened))
    query = parse_qs(parts.query)
    assert query["repo"] == [config.repository] and query["branch"] == [config.branch], url
    return query["urlpath"][0].split("/", 3)[-1]


@pytest.mark.parametrize("notebook", LECTURES + HOMEWORK)
def test_every_notebook_page_launches_its_own_notebook(built, notebook):
    config = launch.read_config(ROOT)
    links = _launch_links(Page(_html(built, notebook)))
    expected = {"colab", "binder"} | ({"hub"} if config.jupyterhub else set())
    assert expected <= set(links), f"{notebook}: launch links {sorted(links)}"
    for kind, url in links.items():
        opened = _path_in(kind, url, config)
        assert opened == notebook, f"{notebook}: the {kind} link opens {opened}"
        assert (ROOT / opened).is_file()


def test_every_local_link_and_image_resolves(built):
    broken = []
    for path in sorted(built.rglob("*.html")):
        if "_static" in path.parts or "_sources" in path.parts:
            continue
        page = Page(path)
        for target in page.links + page.images:
            local = page.local(target)
            if local is not None and not local.exists():
                broken.append(f"{path.relative_to(built)} -> {target}")
    assert not broken, broken[:20]


# --------------------------------------------------------------------------- in Chromium

class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output for failures
        pass


@pytest.fixture(scope="module")
def served(built):
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(built)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


_TYPESET = "() => document.querySelectorAll('mjx-container').length"
_MATH = "() => document.querySelectorAll('.math').length"
_FIGURES = """() => [...document.querySelectorAll('.cell_output img')].map(
    i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}))"""


def test_site_in_chromium_typesets_math_and_loads_figures(served, tmp_path, record_property):
    playwright_api, browser = require_browser()
    report = {}
    with playwright_api.sync_playwright() as playwright:
        context = launch_chromium(playwright, tmp_path / "profile", browser)
        page = context.new_page()
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        try:
            page.goto(urljoin(served, "index.html"), wait_until="load")
            assert "Optimization for deep learning" in page.title()
            for lecture in LECTURES:
                assert page.locator(f"a[href$='{Path(lecture).stem}.html']").count() >= 1, lecture
            page.screenshot(path=tmp_path / "site_index.png")
            save_artifact(tmp_path / "site_index.png", record_property, "site")

            for lecture in LECTURES:
                stem = Path(lecture).stem
                page.goto(urljoin(served, lecture[: -len(".ipynb")] + ".html"),
                          wait_until="load")
                if page.evaluate(_MATH):
                    page.wait_for_function(f"() => ({_TYPESET})() > 0", timeout=30_000)
                figures = page.evaluate(_FIGURES)
                report[stem] = {"typeset": page.evaluate(_TYPESET),
                                "figures": len(figures)}
                assert report[stem]["typeset"] > 0, f"{lecture}: no math typeset by MathJax"
                assert figures, f"{lecture}: no figure on the page"
                assert all(f["ok"] for f in figures), f"{lecture}: figures not loaded {figures}"
                page.locator(".cell_output img").first.scroll_into_view_if_needed()
                shot = tmp_path / f"site_{stem}.png"
                page.screenshot(path=shot)
                save_artifact(shot, record_property, "site")
        finally:
            context.close()
    print(json.dumps(report, indent=1))
    local_failures = [url for url in failed if url.startswith(served)]
    assert not local_failures, f"requests that failed: {local_failures[:10]}"
    assert not errors, f"JavaScript errors on the site: {errors[:5]}"
