"""Launch links, the setup cell and the banner (coursekit.launch, coursekit.banner).

Nothing here reaches the network: the links are parsed and checked against the
configuration (read again here with tomllib, not through coursekit) and the files
they name; the setup cell's install logic runs with a stand-in ``get_ipython()`` that
records the magics it is asked to run.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import platform
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import nbformat
import pytest
import tomllib
import torch
from IPython.core.inputtransformer2 import TransformerManager

import coursekit
from coursekit import launch
from coursekit.cli import main
from coursekit.grading.authoring import render_release

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RAW = PYPROJECT["tool"]["coursekit"]["launch"]  # the configuration, read independently
OWNER, NAME = urlsplit(RAW["repository"]).path.strip("/").split("/")
NOTEBOOKS = sorted(p for pattern in ("lectures/*.ipynb", "solutions/*.ipynb",
                                     "solutions/lectures/*.ipynb", "homework/*.ipynb")
                   for p in ROOT.glob(pattern))
LINK = re.compile(r"\]\(([^)\s]+)\)")
BADGES = {"https://colab.research.google.com/assets/colab-badge.svg",
          "https://mybinder.org/badge_logo.svg"}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.fixture(scope="module")
def cfg():
    return launch.read_config(ROOT)


def _targets(markdown: str) -> list[str]:
    """Where a markdown cell's links go (badge images left out)."""
    return [url for url in LINK.findall(markdown) if url not in BADGES]


def _check_colab(url: str, path: str) -> None:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == RAW["colab"].rstrip("/")
    assert unquote(parts.path) == f"/github/{OWNER}/{NAME}/blob/{RAW['branch']}/{path}"


def _check_binder(url: str, path: str) -> None:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == RAW["binder"].rstrip("/")
    assert unquote(parts.path) == f"/v2/gh/{OWNER}/{NAME}/{RAW['branch']}"
    assert parse_qs(parts.query) == {"labpath": [path]}


def _check_hub(url: str, path: str, hub: str) -> None:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == hub
    assert parts.path == "/hub/user-redirect/git-pull"
    assert parse_qs(parts.query) == {"repo": [RAW["repository"]], "branch": [RAW["branch"]],
                                     "urlpath": [f"lab/tree/{NAME}/{path}"]}


# ----------------------------------------------------------------------------- every notebook


def test_every_course_notebook_is_covered():
    folders = {p.parent.relative_to(ROOT).as_posix() for p in NOTEBOOKS}
    assert folders == {"lectures", "solutions", "solutions/lectures", "homework"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_rel)
def test_first_cell_links_to_this_very_notebook(path, cfg):
    cell = nbformat.read(path, as_version=4).cells[0]
    assert cell.cell_type == "markdown"
    assert cell.metadata["tags"] == ["coursekit-launch", "remove-cell"]
    targets = _targets(cell.source)
    assert targets == [url for _, url in launch.links(cfg, _rel(path))]
    assert len(targets) == 2 + bool(RAW["jupyterhub"])
    _check_colab(targets[0], _rel(path))
    _check_binder(targets[1], _rel(path))
    if RAW["jupyterhub"]:
        _check_hub(targets[2], _rel(path), RAW["jupyterhub"].rstrip("/"))
    assert (ROOT / _rel(path)).is_file()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_rel)
def test_first_code_cell_is_the_setup_cell(path, cfg):
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    expected = launch.setup_cell(cfg)
    assert (first.id, first.source, first.metadata) == (expected.id, expected.source,
                                                        expected.metadata)
    assert sum("coursekit-setup" in c.metadata.get("tags", []) for c in nb.cells) == 1
    assert sum("coursekit-launch" in c.metadata.get("tags", []) for c in nb.cells) == 1


_FIND_SPEC = importlib.util.find_spec


class _Shell:
    """A stand-in for ``get_ipython()`` that records the magics the cell runs."""

    def __init__(self):
        self.calls = []

    def run_line_magic(self, name, line, _stack_depth=1):
        self.calls.append((name, line))


def _run_setup(source: str, monkeypatch, *, installed: bool) -> list[tuple[str, str]]:
    def find_spec(name, *args, **kwargs):
        if name == "coursekit" and not installed:
            return None  # as in a fresh Colab runtime
        return _FIND_SPEC(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    shell = _Shell()
    python = TransformerManager().transform_cell(source)
    exec(compile(python, "<setup cell>", "exec"), {"get_ipython": lambda: shell})
    return shell.calls


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_rel)
def test_setup_cell_installs_coursekit_only_where_it_is_missing(path, monkeypatch, capsys):
    nb = nbformat.read(path, as_version=4)
    source = next(c for c in nb.cells if c.cell_type == "code").source
    install = f'install --quiet "coursekit @ git+{RAW["repository"]}@{RAW["branch"]}"'
    assert _run_setup(source, monkeypatch, installed=False) == [("pip", install)]
    capsys.readouterr()
    assert _run_setup(source, monkeypatch, installed=True) == []
    assert capsys.readouterr().out == coursekit.banner() + "\n"


def test_committed_notebooks_are_up_to_date_with_the_configuration():
    assert launch.stale([ROOT / "lectures", ROOT / "solutions", ROOT / "homework"]) == []


# ----------------------------------------------------------------------------- configuration


def _project(tmp_path: Path, table: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(f"[project]\nname = 'x'\n\n{table}\n")
    return tmp_path


GOOD = """[tool.coursekit.launch]
repository = "https://github.com/someone/my-course"
branch = "fall-2026"
colab = "https://colab.research.google.com"
binder = "https://mybinder.org/"
jupyterhub = "https://hub.example.edu"
"""


def test_read_config_reads_the_table(tmp_path):
    cfg = launch.read_config(_project(tmp_path, GOOD))
    assert cfg == launch.LaunchConfig("https://github.com/someone/my-course", "fall-2026",
                                      "https://colab.research.google.com",
                                      "https://mybinder.org", "https://hub.example.edu")
    assert (cfg.owner, cfg.name) == ("someone", "my-course")


def test_read_config_walks_up_from_the_working_directory(tmp_path, monkeypatch):
    deep = _project(tmp_path, GOOD) / "lectures" / "deeper"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert launch.read_config().branch == "fall-2026"
    assert launch.find_root() == tmp_path.resolve()


def test_the_course_config_is_the_committed_one(cfg):
    assert dataclasses.asdict(cfg) == {key: value.rstrip("/") for key, value in RAW.items()}


@pytest.mark.parametrize(("change", "message"), [
    (("", ""), "no [tool.coursekit.launch] table"),
    (('jupyterhub = "https://hub.example.edu"\n', ""), "lacks jupyterhub"),
    (('branch = "fall-2026"', 'branch = "fall-2026"\nbrnach = "x"'), "unknown keys brnach"),
    (("https://colab.research.google.com", "http://colab.research.google.com"),
     "tool.coursekit.launch.colab must be an https:// URL without query or fragment, "
     "got 'http://colab.research.google.com'"),
    (('"https://hub.example.edu"', '"hub.example.edu"'),
     "tool.coursekit.launch.jupyterhub must be an https:// URL"),
    (("https://github.com/someone/my-course", "https://gitlab.com/someone/my-course"),
     "tool.coursekit.launch.repository must be https://github.com/<owner>/<name>"),
    (("https://github.com/someone/my-course", "https://github.com/someone/my-course.git"),
     "got 'https://github.com/someone/my-course.git'"),
    (("https://github.com/someone/my-course", "https://github.com/someone"),
     "got 'https://github.com/someone'"),
    (('branch = "fall-2026"', "branch = 3"), "tool.coursekit.launch.branch must be a string, "
                                             "got 3"),
    (('branch = "fall-2026"', 'branch = "two words"'), "branch must be a git branch name, "
                                                       "got 'two words'"),
])
def test_read_config_names_the_bad_key_and_value(tmp_path, change, message):
    old, new = change
    table = GOOD.replace(old, new) if old else "[tool.other]\nx = 1\n"
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        launch.read_config(_project(tmp_path, table))
    assert str(tmp_path / "pyproject.toml") in str(error.value)


def test_read_config_without_a_pyproject_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no pyproject\.toml in"):
        launch.read_config(tmp_path)


# ----------------------------------------------------------------------------- URLs


@pytest.fixture
def hub_cfg(tmp_path):
    return launch.read_config(_project(tmp_path, GOOD))


@pytest.mark.parametrize("path", ["lectures/04_momentum.ipynb",
                                  "homework/my notebook (v2) & more#1.ipynb",
                                  "extra/ünïcode?.ipynb"])
def test_urls_name_the_path_quoted(hub_cfg, path):
    colab, binder, hub = (url for _, url in launch.links(hub_cfg, path))
    for url in (colab, binder, hub):
        assert not re.search(r"[\s()#&?]", urlsplit(url).path), url
        assert url.isascii()
    assert colab == launch.colab_url(hub_cfg, path)
    assert unquote(urlsplit(colab).path) == f"/github/someone/my-course/blob/fall-2026/{path}"
    assert parse_qs(urlsplit(binder).query) == {"labpath": [path]}
    assert urlsplit(binder).path == "/v2/gh/someone/my-course/fall-2026"
    assert parse_qs(urlsplit(hub).query) == {
        "repo": ["https://github.com/someone/my-course"], "branch": ["fall-2026"],
        "urlpath": [f"lab/tree/my-course/{path}"]}
    assert hub.startswith("https://hub.example.edu/hub/user-redirect/git-pull?")


def test_binder_quotes_a_branch_with_a_slash(hub_cfg):
    cfg = dataclasses.replace(hub_cfg, branch="release/2026")
    assert urlsplit(launch.binder_url(cfg, "a.ipynb")).path.endswith("/my-course/release%2F2026")


def test_without_a_hub_there_are_two_links_and_no_hub_url(hub_cfg):
    cfg = dataclasses.replace(hub_cfg, jupyterhub="")
    assert [label for label, _ in launch.links(cfg, "a.ipynb")] == ["Open in Colab",
                                                                     "Launch Binder"]
    assert launch.hub_url(cfg, "a.ipynb") is None
    assert "JupyterHub" not in launch.launch_cell(cfg, "a.ipynb").source


@pytest.mark.parametrize("bad", ["", "/abs/a.ipynb", "../a.ipynb", "a/./b.ipynb", "a//b.ipynb"])
def test_links_refuse_a_path_that_is_not_relative_to_the_root(hub_cfg, bad):
    with pytest.raises(ValueError, match="relative to the repository root"):
        launch.links(hub_cfg, bad)


def test_install_requirement_pins_repository_and_branch(hub_cfg):
    assert launch.install_requirement(hub_cfg) == \
        "coursekit @ git+https://github.com/someone/my-course@fall-2026"
    assert launch.install_requirement(hub_cfg) in launch.setup_cell(hub_cfg).source


# ----------------------------------------------------------------------------- apply


def _notebook() -> nbformat.NotebookNode:
    v4 = nbformat.v4
    return v4.new_notebook(cells=[v4.new_markdown_cell("# Title", id="title"),
                                  v4.new_markdown_cell("text", id="intro"),
                                  v4.new_code_cell("import numpy", id="imports"),
                                  v4.new_code_cell("X = 1", id="settings")])


def test_apply_inserts_both_cells_and_is_idempotent(hub_cfg):
    nb = _notebook()
    assert launch.apply(nb, hub_cfg, "lectures/x.ipynb") is True
    assert [c.id for c in nb.cells] == ["coursekit-launch", "title", "intro", "coursekit-setup",
                                        "imports", "settings"]
    nbformat.validate(nb)
    snapshot = json.dumps(nb, sort_keys=True)
    assert launch.apply(nb, hub_cfg, "lectures/x.ipynb") is False
    assert json.dumps(nb, sort_keys=True) == snapshot


def test_apply_refreshes_stale_cells_in_place_of_old_ones(hub_cfg):
    nb = _notebook()
    launch.apply(nb, hub_cfg, "lectures/old_name.ipynb")
    nb.cells.insert(0, nb.cells.pop(3))  # an edit moved the setup cell to the top
    assert launch.apply(nb, hub_cfg, "lectures/new_name.ipynb") is True
    assert [c.id for c in nb.cells] == ["coursekit-launch", "title", "intro", "coursekit-setup",
                                        "imports", "settings"]
    assert "old_name" not in nb.cells[0].source and "new_name" in nb.cells[0].source


def test_apply_puts_the_setup_cell_last_in_a_notebook_without_code(hub_cfg):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Only text")])
    launch.apply(nb, hub_cfg, "a.ipynb")
    assert [c.cell_type for c in nb.cells] == ["markdown", "markdown", "code"]


# ----------------------------------------------------------------------------- command line


def _repository(tmp_path: Path) -> Path:
    root = _project(tmp_path, GOOD)
    (root / "lectures").mkdir()
    nbformat.write(_notebook(), root / "lectures" / "01 intro.ipynb")
    return root


def test_cli_check_lists_stale_notebooks_and_launch_writes_them(tmp_path, monkeypatch, capsys):
    root = _repository(tmp_path)
    notebook = root / "lectures" / "01 intro.ipynb"
    assert main(["launch", "--check", str(root / "lectures")]) == 1
    assert str(notebook) in capsys.readouterr().out
    assert nbformat.read(notebook, as_version=4).cells[0].id == "title"  # --check wrote nothing
    monkeypatch.chdir(root / "lectures")
    assert main(["launch"]) == 0  # defaults: lectures/ and solutions/ of the repository
    written = nbformat.read(notebook, as_version=4)
    nbformat.validate(written)
    assert _targets(written.cells[0].source) == [
        url for _, url in launch.links(launch.read_config(root), "lectures/01 intro.ipynb")]
    stored = json.loads(notebook.read_text())
    assert isinstance(stored["cells"][0]["source"], list)  # as Jupyter stores cells
    text = notebook.read_text()
    assert main(["launch", "--check"]) == 0
    assert main(["launch", str(notebook)]) == 0
    assert notebook.read_text() == text  # nothing to do, nothing rewritten


def test_cli_launch_reports_a_bad_configuration(tmp_path, capsys):
    root = _repository(tmp_path)
    _project(root, GOOD.replace("https://mybinder.org/", "ftp://mybinder.org"))
    assert main(["launch", str(root / "lectures")]) == 2
    assert "tool.coursekit.launch.binder must be an https:// URL" in capsys.readouterr().err


def test_slides_leave_the_launch_cell_out():
    from coursekit import slides

    notebook = nbformat.read(ROOT / "lectures" / "04_momentum.ipynb", as_version=4)
    assert launch.LAUNCH_TAG in notebook.cells[0].metadata["tags"]
    shown = slides.slide_notebook(notebook).cells
    assert not any(launch.LAUNCH_TAG in c.metadata.get("tags", []) for c in shown)
    assert shown[0].source.startswith("# Lecture 4")


def test_launch_and_its_command_load_no_course_library():
    import subprocess
    import sys

    code = ("import sys; from coursekit.cli import main; main(['launch', '--check']); "
            "print(sorted({'torch', 'matplotlib'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=False).stdout
    assert out.strip().splitlines()[-1] == "[]"


# ----------------------------------------------------------------------------- release


def test_release_links_the_homework_path_and_keeps_the_setup_cell(tmp_path):
    root = _project(tmp_path, GOOD)
    (root / "solutions").mkdir()
    for name in ("hw1_primer_optimizers.ipynb", "hw1_primer_optimizers_grading.py"):
        shutil.copy(ROOT / "solutions" / name, root / "solutions")  # its written answers
    cfg = launch.read_config(root)
    solution = nbformat.read(root / "solutions" / "hw1_primer_optimizers.ipynb", as_version=4)
    launch.apply(solution, cfg, "solutions/hw1_primer_optimizers.ipynb")
    nbformat.write(solution, root / "solutions" / "hw1_primer_optimizers.ipynb")
    released = nbformat.reads(render_release(root / "solutions")["hw1_primer_optimizers.ipynb"],
                              as_version=4)
    assert _targets(released.cells[0].source) == [
        url for _, url in launch.links(cfg, "homework/hw1_primer_optimizers.ipynb")]
    assert next(c for c in released.cells if c.cell_type == "code").source == \
        launch.setup_cell(cfg).source


def test_release_outside_a_repository_says_what_it_needs(tmp_path):
    (tmp_path / "solutions").mkdir()
    for name in ("hw1_primer_optimizers.ipynb", "hw1_primer_optimizers_grading.py"):
        shutil.copy(ROOT / "solutions" / name, tmp_path / "solutions")
    if (tmp_path / "pyproject.toml").exists() or any(
            (p / "pyproject.toml").exists() for p in tmp_path.parents):
        pytest.skip("a pyproject.toml above the temporary folder")
    with pytest.raises(ValueError, match=r"launch links.*\[tool\.coursekit\.launch\]"):
        render_release(tmp_path / "solutions")


# ----------------------------------------------------------------------------- banner

VERSION = PYPROJECT["project"]["version"]


def test_banner_full_mode_on_a_gpu(monkeypatch):
    monkeypatch.delenv("COURSEKIT_FAST", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    assert coursekit.banner() == f"coursekit {VERSION} | full mode | device cuda (Tesla T4)"


@pytest.mark.parametrize(("value", "mode"), [("1", "CI mode (COURSEKIT_FAST=1)"),
                                             ("0", "full mode"), ("", "full mode")])
def test_banner_ci_mode_on_a_cpu(monkeypatch, value, mode):
    monkeypatch.setenv("COURSEKIT_FAST", value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(platform, "processor", lambda: "")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert coursekit.banner() == f"coursekit {VERSION} | {mode} | device cpu (x86_64, 2 threads)"


def test_banner_is_one_line_naming_the_device_actually_chosen():
    line = coursekit.banner()
    assert "\n" not in line
    assert f"| device {coursekit.device().type} (" in line


# ----------------------------------------------------------------------------- binder/


def test_binder_installs_cpu_torch_as_pyproject_asks_and_then_the_course():
    lines = [line.strip() for line in (ROOT / "binder" / "requirements.txt").read_text()
             .splitlines() if line.strip() and not line.startswith("#")]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    wanted = {re.split(r"[<>=]", d)[0]: d for d in PYPROJECT["project"]["dependencies"]}
    for name in ("torch", "torchvision"):
        assert wanted[name] in lines  # the same requirement as the package's
    post_build = ROOT / "binder" / "postBuild"
    assert post_build.stat().st_mode & 0o111, "postBuild must be executable"
    assert re.search(r"^python -m pip install .*-e \.$", post_build.read_text(), re.MULTILINE)
