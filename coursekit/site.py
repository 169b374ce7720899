"""The course website: ``coursekit site`` builds it into ``_build/site/html``.

Publishing tooling, on the top layer beside :mod:`coursekit.slides`: it reads the
repository's files and writes a static website, and never changes what it reads.
The site is built by Sphinx with myst-nb (notebooks and MyST markdown) and the
sphinx-book-theme; ``docs/conf.py`` is its configuration and ``docs/site.md`` says
why these tools were chosen. The build has three steps:

1. **Executed notebooks.** Each lecture is needed with its outputs. An executed copy
   is looked for in the cache folder (``_build/executed/<path>``), where the test
   suite writes every notebook it executes (``tests/notebook_outputs.py``), so that a
   CI run executes each notebook once. A copy is used only when it was executed from
   the same cells, with the same library source and in the same mode (CI or full):
   :func:`fingerprint` says what it was executed from. Otherwise the notebook is
   executed here (nbclient, in the notebook's own folder) and the copy cached; a
   cell that fails stops the build with :class:`SiteBuildError`, naming the cell.
2. **Staging.** The pages are written into ``<out>/source``, laid out as in the
   repository so that every page's launch links (Colab, Binder, a JupyterHub) name
   the notebook's real path: ``index.md`` (the README's course map), ``lectures/``
   (executed), ``homework/`` (the released student versions, not executed: they hold
   the blanks students fill in), ``docs/`` (:data:`DOC_PAGES`) and ``api/`` (a page
   per subpackage and per top-level module, from the docstrings). Links in the
   markdown that point at files the site does not hold (a ``.py`` file, a solution)
   are rewritten to the repository's web page of that file; links to a module go to
   its API page.
3. **Sphinx**, with warnings as errors: a broken internal link, a missing image or
   a docstring that does not parse fails the build, and every such problem is listed
   (``--keep-going``).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = [
    "DOC_PAGES",
    "EXECUTED_KEY",
    "Page",
    "SiteBuildError",
    "api_modules",
    "api_pages",
    "build",
    "executed_copy",
    "fingerprint",
    "landing_page",
    "library_digest",
    "save_executed",
    "stage",
]

EXECUTED_KEY = "coursekit_executed"
"""Notebook metadata key of an executed copy: what it was executed from (:func:`fingerprint`)."""

DOC_PAGES = ("docs/syllabus.md", "docs/grading.md", "docs/launch.md", "docs/site.md",
             "docs/architecture.md")
"""The documentation pages the site shows beside the lectures and homework."""

EXECUTED_DIR = Path("_build/executed")
SITE_DIR = Path("_build/site")
CELL_TIMEOUT_S = 300
_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)\)")


class SiteBuildError(RuntimeError):
    """The site cannot be built: a notebook fails, a file is missing or Sphinx complains."""


@dataclass(frozen=True)
class Page:
    """One page of the site: its path in the repository and the staged file."""

    source: str
    staged: str
    executed: bool = False      # a lecture, shown with its outputs
    from_cache: bool = False    # ... taken from the executed copies, not executed now


# ---------------------------------------------------------------------------------------
# 1. executed notebooks


def library_digest(package: Path | None = None) -> str:
    """SHA-256 of the ``coursekit`` package's Python sources (paths and bytes, sorted).

    Part of every executed copy's fingerprint: outputs computed by another version of
    the library are never shown.
    """
    package = Path(package) if package else Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _mode() -> str:
    from coursekit.runtime import fast_mode

    return "ci" if fast_mode() else "full"


def fingerprint(notebook: nbformat.NotebookNode, mode: str | None = None,
                library: str | None = None) -> dict[str, str]:
    """What an executed copy of ``notebook`` must have been executed from.

    ``cells``: SHA-256 of the cells' types and sources (outputs and metadata aside);
    ``library``: :func:`library_digest`; ``mode``: ``"ci"`` (``COURSEKIT_FAST=1``) or
    ``"full"``, by default the current one.
    """
    cells = json.dumps([[cell.cell_type, cell.source] for cell in notebook.cells],
                       ensure_ascii=False)
    return {"cells": hashlib.sha256(cells.encode()).hexdigest(),
            "library": library or library_digest(),
            "mode": mode or _mode()}


def save_executed(source: str | Path, executed: nbformat.NotebookNode, cache: str | Path,
                  root: str | Path, mode: str | None = None,
                  library: str | None = None) -> Path:
    """Write ``executed`` (the notebook at ``source``, with outputs) into the cache.

    The copy goes to ``cache/<source relative to root>`` with its :func:`fingerprint`
    in ``metadata["coursekit_executed"]``, computed from the cells it was executed
    from, so that it is not reused once the notebook at ``source`` has changed.
    """
    source, root = Path(source).resolve(), Path(root).resolve()
    copy_ = copy.deepcopy(executed)
    copy_.metadata[EXECUTED_KEY] = fingerprint(executed, mode, library)
    target = Path(cache) / source.relative_to(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".ipynb.partial")
    nbformat.write(copy_, partial)
    partial.replace(target)
    return target


def _cached(source: Path, cache: Path, root: Path, expected: dict[str, str]
            ) -> nbformat.NotebookNode | None:
    path = cache / source.relative_to(root)
    if not path.is_file():
        return None
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception:              # a damaged copy: the notebook is executed again
        return None
    return notebook if notebook.metadata.get(EXECUTED_KEY) == expected else None


@contextlib.contextmanager
def _environment(mode: str) -> Iterator[None]:
    before = os.environ.get("COURSEKIT_FAST")
    if mode == "ci":
        os.environ["COURSEKIT_FAST"] = "1"
    else:
        os.environ.pop("COURSEKIT_FAST", None)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("COURSEKIT_FAST", None)
        else:
            os.environ["COURSEKIT_FAST"] = before


def _execute(source: Path, mode: str, timeout: float) -> nbformat.NotebookNode:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    notebook = nbformat.read(source, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            store_widget_state=True,
                            resources={"metadata": {"path": str(source.parent)}})
    with _environment(mode):
        try:
            client.execute()
        except (CellExecutionError, CellTimeoutError) as error:
            raise SiteBuildError(f"{source}: a cell failed while executing it for the site "
                                 f"({mode} mode):\n{error}") from None
    return notebook


def executed_copy(source: str | Path, root: str | Path, cache: str | Path | None = None,
                  mode: str | None = None, timeout: float = CELL_TIMEOUT_S,
                  library: str | None = None, log=None) -> tuple[nbformat.NotebookNode, bool]:
    """The notebook at ``source`` with its outputs, and whether it came from the cache.

    A cached copy is used when its fingerprint matches (same cells, library and mode);
    otherwise the notebook is executed in its own folder (each cell within ``timeout``
    seconds) and, when ``cache`` is given, the new copy is saved there.
    """
    source, root = Path(source).resolve(), Path(root).resolve()
    mode = mode or _mode()
    library = library or library_digest()
    original = nbformat.read(source, as_version=4)
    expected = fingerprint(original, mode, library)
    if cache is not None:
        cached = _cached(source, Path(cache), root, expected)
        if cached is not None:
            return cached, True
    if log:
        log(f"executing {source.relative_to(root)} ({mode} mode)")
    started = time.perf_counter()
    notebook = _execute(source, mode, timeout)
    if log:
        log(f"  done in {time.perf_counter() - started:.1f} s")
    notebook.metadata[EXECUTED_KEY] = expected
    if cache is not None:
        save_executed(source, notebook, cache, root, mode, library)
    return notebook, False


# ---------------------------------------------------------------------------------------
# 2. staging


def api_modules(package: str = "coursekit") -> list[str]:
    """Every public module of the package, sorted: those whose dotted name has no part
    starting with ``_``."""
    module = __import__(package)
    names = [package]
    for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def api_pages(modules: Sequence[str]) -> dict[str, list[str]]:
    """The API reference's pages: one per subpackage (with all its modules) and one
    per top-level module, each named by that package or module."""
    pages: dict[str, list[str]] = {}
    for module in modules:
        parts = module.split(".")
        pages.setdefault(".".join(parts[:2]), []).append(module)
    return pages


def _section(text: str, heading: str) -> str:
    """The markdown of ``heading`` (a ``## `` line) up to the next heading of its level."""
    lines = text.splitlines()
    try:
        start = lines.index(heading)
    except ValueError:
        raise SiteBuildError(f"README.md has no {heading!r} section for the landing page") \
            from None
    level = len(heading) - len(heading.lstrip("#"))
    end = len(lines)
    for index in range(start + 1, len(lines)):
        stripped = lines[index].lstrip("#")
        depth = len(lines[index]) - len(stripped)
        if 0 < depth <= level and stripped.startswith(" "):
            end = index
            break
    return "\n".join(lines[start:end]).strip() + "\n"


def landing_page(readme: str) -> str:
    """The landing page: the README's title and introduction, then its course map."""
    lines = readme.splitlines()
    intro: list[str] = []
    for line in lines:
        if line.startswith("## "):
            break
        intro.append(line)
    course_map = _section(readme, "## Course map")
    return ("\n".join(intro).strip() + "\n\n" + course_map).replace("\n\n\n", "\n\n")


class _Links:
    """Rewrites a markdown link whose target the site does not hold."""

    def __init__(self, root: Path, staged: set[str], modules: set[str], repository: str,
                 branch: str):
        self.root, self.staged, self.modules = root, staged, modules
        self.blob = f"{repository.rstrip('/')}/blob/{branch}/"
        self.tree = f"{repository.rstrip('/')}/tree/{branch}/"

    def api_page_of(self, path: str) -> str | None:
        """The API page documenting the module at repository path ``path``, if any."""
        if not (path.startswith("coursekit/") and path.endswith(".py")):
            return None
        parts = path[:-3].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        return ".".join(parts[:2]) if ".".join(parts) in self.modules else None

    def rewrite(self, text: str, page: str) -> str:
        """``text`` (markdown of the page at repository path ``page``) with its links
        to files outside the site pointed at the repository or the API reference."""
        page_dir = Path(page).parent

        def replace(match: re.Match) -> str:
            target = match.group("target")
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                return match.group(0)                      # a URL, mailto: or an anchor
            path, _, anchor = target.partition("#")
            resolved = os.path.normpath(page_dir / path).replace(os.sep, "/")
            if resolved.startswith("../"):
                return match.group(0)                      # outside the repository: Sphinx says
            if resolved in self.staged:
                return match.group(0)
            api_page = self.api_page_of(resolved)
            if api_page is not None:
                api = os.path.relpath(f"api/{api_page}.md", page_dir).replace(os.sep, "/")
                return f"[{match.group('text')}]({api})"
            if (self.root / resolved).is_dir():
                return f"[{match.group('text')}]({self.tree}{resolved})"
            if (self.root / resolved).is_file():
                suffix = f"#{anchor}" if anchor else ""
                return f"[{match.group('text')}]({self.blob}{resolved}{suffix})"
            return match.group(0)                          # missing: Sphinx fails the build on it

        return _LINK.sub(replace, text)


def _api_page(name: str, modules: Sequence[str]) -> str:
    parts = [f"# `{name}`\n"]
    for module in modules:
        if module != name:
            parts.append(f"## `{module}`\n")
        parts.append(f"```{{eval-rst}}\n.. automodule:: {module}\n```\n")
    return "\n".join(parts)


def _api_index(pages: Sequence[str]) -> str:
    toc = "\n".join(pages)
    return ("# API reference\n\nEvery public module of `coursekit`, generated from its "
            "docstrings: a page for each subpackage (all its modules) and for each "
            "top-level module. The layers and what each may import: "
            "[architecture](../docs/architecture.md).\n\n"
            f"```{{toctree}}\n:maxdepth: 2\n\n{toc}\n```\n")


def _index_toctrees(lectures: Sequence[str], homework: Sequence[str], api: bool) -> str:
    def toc(caption: str, entries: Sequence[str]) -> str:
        body = "\n".join(entries)
        return f"```{{toctree}}\n:caption: {caption}\n:maxdepth: 1\n:hidden:\n\n{body}\n```\n"

    docs = [page[:-3] for page in DOC_PAGES]
    tocs = [toc("Lectures", lectures), toc("Homework", homework), toc("For instructors", docs)]
    if api:
        tocs.append(toc("Reference", ["api/index"]))
    return "\n" + "\n".join(tocs)


def _rewrite_notebook(notebook: nbformat.NotebookNode, links: _Links, page: str
                      ) -> nbformat.NotebookNode:
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = links.rewrite(cell.source, page)
    return notebook


def stage(root: str | Path, out: str | Path, cache: str | Path | None = None,
          mode: str = "ci", timeout: float = CELL_TIMEOUT_S, api: bool = True,
          log=None) -> list[Page]:
    """Write the site's sources into ``out`` (emptied first); return the pages.

    Lectures come from :func:`executed_copy` (the cache, or executed now), homework
    notebooks as released (no outputs), the documentation pages and (``api=True``)
    the API pages, as described in the module docstring.
    """
    from coursekit.launch import read_config

    root, out = Path(root).resolve(), Path(out)
    config = read_config(root)
    lectures = sorted(p.relative_to(root).as_posix() for p in (root / "lectures").glob("*.ipynb"))
    homework = sorted(p.relative_to(root).as_posix() for p in (root / "homework").glob("*.ipynb"))
    if not lectures:
        raise SiteBuildError(f"no lecture notebooks in {root / 'lectures'}")
    for doc in DOC_PAGES:
        if not (root / doc).is_file():
            raise SiteBuildError(f"{doc} is missing: the site shows it")
    modules = api_modules() if api else []
    staged = {*lectures, *homework, *DOC_PAGES, "README.md"}
    links = _Links(root, staged, set(modules), config.repository, config.branch)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    pages: list[Page] = []
    library = library_digest()

    for lecture in lectures:
        notebook, cached = executed_copy(root / lecture, root, cache, mode, timeout, library, log)
        _write_notebook(out / lecture, _rewrite_notebook(notebook, links, lecture))
        pages.append(Page(lecture, lecture, executed=True, from_cache=cached))
    for notebook_path in homework:
        notebook = nbformat.read(root / notebook_path, as_version=4)
        _write_notebook(out / notebook_path, _rewrite_notebook(notebook, links, notebook_path))
        pages.append(Page(notebook_path, notebook_path))
    for doc in DOC_PAGES:
        text = links.rewrite((root / doc).read_text(encoding="utf-8"), doc)
        (out / doc).parent.mkdir(parents=True, exist_ok=True)
        (out / doc).write_text(text, encoding="utf-8")
        pages.append(Page(doc, doc))
    if api:
        (out / "api").mkdir()
        grouped = api_pages(modules)
        for name, members in grouped.items():
            (out / "api" / f"{name}.md").write_text(_api_page(name, members), encoding="utf-8")
        (out / "api" / "index.md").write_text(_api_index(list(grouped)), encoding="utf-8")
        pages.append(Page("coursekit/", "api/index.md"))
    readme = (root / "README.md").read_text(encoding="utf-8")
    index = links.rewrite(landing_page(readme), "README.md")
    index += _index_toctrees([p[:-6] for p in lectures], [p[:-6] for p in homework], api)
    (out / "index.md").write_text(index, encoding="utf-8")
    pages.append(Page("README.md", "index.md"))
    return pages


def _write_notebook(path: Path, notebook: nbformat.NotebookNode) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)


# ---------------------------------------------------------------------------------------
# 3. Sphinx


def build(root: str | Path = ".", out: str | Path = SITE_DIR,
          cache: str | Path | None = EXECUTED_DIR, mode: str = "ci",
          timeout: float = CELL_TIMEOUT_S, jobs: int = 1, api: bool = True,
          log=print) -> Path:
    """Build the website of the course at ``root``; return the path of its ``index.html``.

    Parameters
    ----------
    root : path
        The repository (holds README.md, lectures/, homework/, docs/conf.py).
    out : path
        Output folder: ``source/`` (staged pages), ``html/`` (the site), ``doctrees/``.
    cache : path or None
        Executed notebooks (relative to ``root`` unless absolute); None executes every
        lecture now and caches nothing.
    mode : {"ci", "full"}
        Execute lectures in CI mode (``COURSEKIT_FAST=1``) or at full size.
    timeout : float
        Seconds each cell may take when a lecture is executed.
    jobs : int
        Sphinx's parallel workers.
    api : bool
        Include the API reference (the docstrings of every module of ``coursekit``).

    Raises
    ------
    SiteBuildError
        A lecture fails, a page is missing, or Sphinx reports a warning (a broken
        link, a missing image, a docstring it cannot read): its messages are quoted.
    """
    if mode not in ("ci", "full"):
        raise ValueError(f"mode must be 'ci' or 'full', got {mode!r}")
    root = Path(root).resolve()
    out = Path(out) if Path(out).is_absolute() else root / out
    if cache is not None and not Path(cache).is_absolute():
        cache = root / cache
    conf = root / "docs" / "conf.py"
    if not conf.is_file():
        raise SiteBuildError(f"{conf} is missing: it configures the site")
    log = log or (lambda message: None)
    started = time.perf_counter()
    pages = stage(root, out / "source", cache, mode, timeout, api, log)
    from_cache = sum(page.from_cache for page in pages)
    executed = sum(page.executed and not page.from_cache for page in pages)
    log(f"staged {len(pages)} pages ({from_cache} lectures from the cache, {executed} executed) "
        f"in {time.perf_counter() - started:.1f} s")
    html = out / "html"
    for stale in (html, out / "doctrees"):   # a fresh build: no page left from an earlier one
        if stale.exists():
            shutil.rmtree(stale)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
               "-j", str(jobs), "-c", str(conf.parent), "-d", str(out / "doctrees"),
               str(out / "source"), str(html)]
    env = {**os.environ, "COURSEKIT_SITE_ROOT": str(root)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SiteBuildError("Sphinx could not build the site:\n"
                             + (result.stderr or result.stdout).strip())
    log(f"built {html / 'index.html'} in {time.perf_counter() - started:.1f} s")
    return html / "index.html"
