"""The site builder on throw-away courses: it fails loudly, and reuses only fresh outputs.

Each test writes a small course (a README with a course map, one lecture, one
homework notebook, the documentation pages, this repository's docs/conf.py and
launch table) and builds it with :func:`coursekit.site.build` (no API reference, to
stay quick). The real course's site is tested in tests/test_site.py.
"""

from __future__ import annotations

import re
import shutil
import sys
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import nbformat
import pytest

from coursekit import site
from coursekit.launch import read_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


HUB = "https://hub.example.edu"


def _launch_table() -> str:
    """This repository's launch table, with a JupyterHub configured (the real one has none)."""
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["coursekit"]["launch"]
    table = {**table, "jupyterhub": HUB}
    lines = [f'{key} = "{value}"' for key, value in table.items()]
    return "[tool.coursekit.launch]\n" + "\n".join(lines) + "\n"


def _notebook(*cells: tuple[str, str]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    for kind, source in cells:
        make = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        notebook.cells.append(make(source))
    return notebook


def make_course(root: Path, readme_extra: str = "", lecture_markdown: str = "",
                code: str = "print('two is', 1 + 1)") -> Path:
    (root / "lectures").mkdir(parents=True)
    (root / "homework").mkdir()
    (root / "docs").mkdir()
    (root / "pyproject.toml").write_text(_launch_table())
    (root / "notes.txt").write_text("a file the site does not show\n")
    (root / "README.md").write_text(
        "# A tiny course\n\nOne lecture.\n\n## Get started\n\nInstall it.\n\n"
        "## Course map\n\n- [Lecture 1](lectures/01_one.ipynb)\n"
        "- [Homework 1](homework/hw1_one.ipynb)\n- [notes](notes.txt)\n"
        f"{readme_extra}\n## Sources\n\nNone.\n")
    nbformat.write(_notebook(("md", "# Lecture 1\n\nThe square $x^2$." + lecture_markdown),
                             ("code", code)), root / "lectures" / "01_one.ipynb")
    nbformat.write(_notebook(("md", "# Homework 1"), ("code", "answer = None")),
                   root / "homework" / "hw1_one.ipynb")
    for page in site.DOC_PAGES:
        (root / page).write_text(f"# {Path(page).stem.title()}\n\nText.\n")
    shutil.copy(ROOT / "docs" / "conf.py", root / "docs" / "conf.py")
    return root


def build(root: Path, **kwargs) -> Path:
    kwargs.setdefault("cache", root / "_build" / "executed")
    return site.build(root, out=root / "_build" / "site", api=False, log=None, **kwargs)


def lecture_html(root: Path) -> str:
    return (root / "_build" / "site" / "html" / "lectures" / "01_one.html").read_text()


def test_a_small_course_builds_with_outputs_links_and_math(tmp_path):
    root = make_course(tmp_path / "course")
    index = build(root)
    assert index.is_file()
    page = lecture_html(root)
    assert "two is 2" in page                      # executed: the output is on the page
    assert 'class="math' in page
    landing = index.read_text()
    assert "01_one.html" in landing and "hw1_one.html" in landing
    # the README's link to a file the site does not hold points at the repository
    config = read_config(root)
    assert f"{config.repository}/blob/{config.branch}/notes.txt" in landing
    # the JupyterHub button: nbgitpuller pulls the repository and opens this notebook
    hub = [unescape(link) for link in re.findall(r'href="([^"]+)"', page)
           if link.startswith(HUB)]
    assert hub, "no JupyterHub launch link on the lecture page"
    parts = urlsplit(hub[0])
    query = parse_qs(parts.query)
    assert parts.path == "/hub/user-redirect/git-pull"
    assert query["repo"] == [config.repository] and query["branch"] == [config.branch]
    name = urlsplit(config.repository).path.rstrip("/").rsplit("/", 1)[-1]  # nbgitpuller's folder
    assert query["urlpath"] == [f"lab/tree/{name}/lectures/01_one.ipynb"], query["urlpath"]


def _output(notebook) -> str:
    return "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code"
                   for o in c.outputs)


def test_cached_outputs_are_reused_only_while_cells_library_and_mode_are_unchanged(tmp_path):
    root = make_course(tmp_path / "course")
    lecture, cache = root / "lectures" / "01_one.ipynb", root / "_build" / "executed"
    notebook, cached = site.executed_copy(lecture, root, cache, mode="ci")
    assert not cached and _output(notebook) == "two is 2\n"
    copy = cache / "lectures" / "01_one.ipynb"
    kept = nbformat.read(copy, as_version=4)
    kept.cells[1].outputs[0].text = "output kept in the cache\n"
    nbformat.write(kept, copy)

    notebook, cached = site.executed_copy(lecture, root, cache, mode="ci")
    assert cached and _output(notebook) == "output kept in the cache\n"   # not executed again
    notebook, cached = site.executed_copy(lecture, root, cache, mode="full")
    assert not cached and _output(notebook) == "two is 2\n"               # another mode
    notebook, cached = site.executed_copy(lecture, root, cache, mode="full", library="other")
    assert not cached                                                      # another library

    source = nbformat.read(lecture, as_version=4)
    source.cells[1].source = "print('three is', 1 + 2)"
    nbformat.write(source, lecture)
    notebook, cached = site.executed_copy(lecture, root, cache, mode="full")
    assert not cached and _output(notebook) == "three is 3\n"             # changed cells


def test_a_failing_notebook_fails_the_build_and_names_the_cell(tmp_path):
    root = make_course(tmp_path / "course", code="raise ValueError('broken on purpose')")
    with pytest.raises(site.SiteBuildError, match="broken on purpose") as error:
        site.executed_copy(root / "lectures" / "01_one.ipynb", root, mode="ci")
    assert "01_one.ipynb" in str(error.value)


def test_a_broken_internal_link_or_a_missing_image_fails_the_build(tmp_path):
    root = make_course(tmp_path / "course", readme_extra="- [gone](lectures/02_gone.ipynb)\n",
                       lecture_markdown="\n\n![a figure](figure.png)")
    with pytest.raises(site.SiteBuildError) as error:
        build(root)
    assert "02_gone" in str(error.value) and "figure.png" in str(error.value)


def test_a_course_without_a_course_map_is_refused(tmp_path):
    root = make_course(tmp_path / "course")
    readme = (root / "README.md").read_text().replace("## Course map", "## Contents")
    (root / "README.md").write_text(readme)
    with pytest.raises(site.SiteBuildError, match="Course map"):
        site.stage(root, tmp_path / "staged", api=False)


def test_landing_page_takes_the_introduction_and_the_course_map_only():
    readme = ("# Title\n\nIntro.\n\n## Get started\n\nInstall.\n\n## Course map\n\n"
              "### Lectures\n\n- one\n\n## Sources\n\nPapers.\n")
    page = site.landing_page(readme)
    assert page.startswith("# Title\n\nIntro.")
    assert "### Lectures" in page and "- one" in page
    assert "Install." not in page and "Papers." not in page
