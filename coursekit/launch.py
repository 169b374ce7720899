"""Launch links and the setup cell: open any course notebook in Colab, Binder or a JupyterHub.

Publishing tooling, on the top layer beside :mod:`coursekit.slides`: it reads and
writes notebooks as files and never imports what they teach. Where the course lives
is said once, in ``pyproject.toml``::

    [tool.coursekit.launch]
    repository = "https://github.com/coursekit/coursekit"
    branch = "main"
    colab = "https://colab.research.google.com"
    binder = "https://mybinder.org"
    jupyterhub = ""          # a university's hub, e.g. "https://hub.example.edu"

and ``coursekit launch`` writes two cells into every notebook from it:

- **the launch cell** (:func:`launch_cell`), the notebook's first cell: "Open in
  Colab" and "Launch Binder" badges and, when ``jupyterhub`` is set, an nbgitpuller
  link that clones the repository into the student's hub account and opens the
  notebook there. Each link names the notebook's own path in the repository
  (:func:`links`). The cell is tagged ``remove-cell``, so the website, which has
  launch buttons of its own, leaves it out;
- **the setup cell** (:func:`setup_cell`), the first code cell: it installs coursekit
  from the repository where it is missing (Colab, a fresh hub account) and does
  nothing where it is installed, then prints :func:`coursekit.banner`'s one line (the
  version, CI or full mode, the device).

:func:`apply` inserts or refreshes both cells and :func:`stale` lists the notebooks
whose cells differ from what the configuration gives; :func:`write` updates them in
place. Standard library and nbformat only.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import nbformat

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["BINDER_BADGE", "COLAB_BADGE", "LAUNCH_TAG", "SETUP_TAG", "LaunchConfig", "apply",
           "binder_url", "colab_url", "find_root", "hub_url", "install_requirement",
           "launch_cell", "links", "notebooks", "read_config", "setup_cell", "stale", "write"]

LAUNCH_TAG = "coursekit-launch"
SETUP_TAG = "coursekit-setup"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"

_TABLE = "tool.coursekit.launch"
_KEYS = ("repository", "branch", "colab", "binder", "jupyterhub")
_GITHUB = re.compile(r"https://github\.com/([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)"
                     r"/([A-Za-z0-9_.-]+)")
_BRANCH = re.compile(r"[A-Za-z0-9._/-]+")


@dataclass(frozen=True)
class LaunchConfig:
    """Where the course lives: the ``[tool.coursekit.launch]`` table, validated.

    Attributes
    ----------
    repository : str
        ``https://github.com/<owner>/<name>`` (Colab's loader reads GitHub only).
    branch : str
        The branch the links and the install point at.
    colab, binder : str
        The services' base URLs.
    jupyterhub : str
        A JupyterHub's base URL, or ``""`` for no hub link.
    """

    repository: str
    branch: str
    colab: str
    binder: str
    jupyterhub: str = ""

    @property
    def owner(self) -> str:
        """The GitHub account that owns the repository."""
        return self.repository.split("/")[3]

    @property
    def name(self) -> str:
        """The repository's name (also the folder nbgitpuller clones it into)."""
        return self.repository.split("/")[4]


# ----------------------------------------------------------------------------- configuration


def find_root(start: str | Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) that
    holds a ``pyproject.toml``: the repository's root.

    Raises
    ------
    FileNotFoundError
        If no folder up to the file system's root has one.
    """
    here = Path.cwd() if start is None else Path(start)
    here = here.resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    raise FileNotFoundError(f"no pyproject.toml in {here} or any folder above it")


def _invalid(where: str, key: str, rule: str, value: Any) -> ValueError:
    return ValueError(f"{where}: {_TABLE}.{key} must be {rule}, got {value!r}")


def _https(where: str, key: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise _invalid(where, key, "an https:// URL without query or fragment", value)
    return value.rstrip("/")


def read_config(root: str | Path | None = None) -> LaunchConfig:
    """The launch configuration in ``<root>/pyproject.toml``.

    Parameters
    ----------
    root : str or Path, optional
        The folder whose ``pyproject.toml`` to read; by default the nearest one at or
        above the working directory (:func:`find_root`).

    Raises
    ------
    FileNotFoundError
        If there is no ``pyproject.toml``.
    ValueError
        If the ``[tool.coursekit.launch]`` table is missing, lacks a key, has an
        unknown one, or a value breaks its rule (URLs must be ``https://``; the
        repository must be ``https://github.com/<owner>/<name>``). The message names
        the file, the key and the value.
    """
    path = (find_root() if root is None else Path(root)) / "pyproject.toml"
    if not path.is_file():
        raise FileNotFoundError(f"no pyproject.toml in {path.parent}")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    table = document.get("tool", {}).get("coursekit", {}).get("launch")
    if not isinstance(table, dict):
        raise ValueError(f"{path} has no [{_TABLE}] table; add one with the keys "
                         f"{', '.join(_KEYS)} (see coursekit/launch.py)")
    missing = [key for key in _KEYS if key not in table]
    if missing:
        raise ValueError(f"{path}: [{_TABLE}] lacks {', '.join(missing)}")
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ValueError(f"{path}: [{_TABLE}] has unknown keys {', '.join(unknown)}; "
                         f"it takes {', '.join(_KEYS)}")
    where = str(path)
    for key in _KEYS:
        if not isinstance(table[key], str):
            raise _invalid(where, key, "a string", table[key])
    if _GITHUB.fullmatch(table["repository"]) is None or table["repository"].endswith(".git"):
        raise _invalid(where, "repository", "https://github.com/<owner>/<name> (no .git, no "
                       "trailing slash: Colab opens notebooks from GitHub only)",
                       table["repository"])
    branch = table["branch"]
    if _BRANCH.fullmatch(branch) is None or branch.startswith(("/", "-")) \
            or branch.endswith("/") or ".." in branch:
        raise _invalid(where, "branch", "a git branch name", branch)
    hub = table["jupyterhub"]
    return LaunchConfig(repository=table["repository"], branch=branch,
                        colab=_https(where, "colab", table["colab"]),
                        binder=_https(where, "binder", table["binder"]),
                        jupyterhub=_https(where, "jupyterhub", hub) if hub else "")


# ----------------------------------------------------------------------------- links


def _relative(path: str | Path) -> str:
    text = Path(path).as_posix() if isinstance(path, Path) else str(path)
    if not text or text.startswith("/") or any(p in ("", ".", "..") for p in text.split("/")):
        raise ValueError(f"path must be a notebook's path relative to the repository root, "
                         f"like lectures/04_momentum.ipynb, got {text!r}")
    return text


def colab_url(cfg: LaunchConfig, path: str | Path) -> str:
    """Colab's page for the notebook at ``path`` (relative to the repository root)."""
    return (f"{cfg.colab}/github/{cfg.owner}/{cfg.name}/blob/{quote(cfg.branch)}/"
            f"{quote(_relative(path))}")


def binder_url(cfg: LaunchConfig, path: str | Path) -> str:
    """Binder's build-and-open link for the notebook at ``path``, in JupyterLab."""
    query = urlencode({"labpath": _relative(path)}, quote_via=quote)
    return f"{cfg.binder}/v2/gh/{cfg.owner}/{cfg.name}/{quote(cfg.branch, safe='')}?{query}"


def hub_url(cfg: LaunchConfig, path: str | Path) -> str | None:
    """An nbgitpuller link: the hub clones (or updates) the repository into the user's
    home as ``<name>/`` and opens the notebook in JupyterLab. None without a hub."""
    if not cfg.jupyterhub:
        return None
    query = urlencode({"repo": cfg.repository, "branch": cfg.branch,
                       "urlpath": f"lab/tree/{cfg.name}/{_relative(path)}"}, quote_via=quote)
    return f"{cfg.jupyterhub}/hub/user-redirect/git-pull?{query}"


def links(cfg: LaunchConfig, path: str | Path) -> list[tuple[str, str]]:
    """``(label, url)`` for each place the notebook at ``path`` opens, in the order shown:
    Colab, Binder, then the JupyterHub when one is configured."""
    found = [("Open in Colab", colab_url(cfg, path)), ("Launch Binder", binder_url(cfg, path))]
    hub = hub_url(cfg, path)
    if hub is not None:
        found.append(("Open in JupyterHub", hub))
    return found


def install_requirement(cfg: LaunchConfig) -> str:
    """What ``pip install`` is given where coursekit is missing."""
    return f"coursekit @ git+{cfg.repository}@{cfg.branch}"


# ----------------------------------------------------------------------------- the cells


def _cell(kind: str, cell_id: str, source: str, tags: list[str]) -> nbformat.NotebookNode:
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    return make(source, id=cell_id, metadata={"tags": tags})


def launch_cell(cfg: LaunchConfig, path: str | Path) -> nbformat.NotebookNode:
    """The markdown cell of launch links for the notebook at ``path`` (see :func:`links`).

    Tagged ``coursekit-launch`` (how :func:`apply` finds it) and ``remove-cell`` (the
    website leaves it out).
    """
    badges = {"Open in Colab": COLAB_BADGE, "Launch Binder": BINDER_BADGE}
    parts = [f"[![{label}]({badges[label]})]({url})" if label in badges else f"[{label}]({url})"
             for label, url in links(cfg, path)]
    return _cell("markdown", LAUNCH_TAG, " ".join(parts), [LAUNCH_TAG, "remove-cell"])


def setup_cell(cfg: LaunchConfig) -> nbformat.NotebookNode:
    """The first code cell: install coursekit where it is missing, then say where we run."""
    source = "\n".join([
        "# Setup: in Colab or on a fresh JupyterHub this installs the course's library;",
        "# where coursekit is already installed it does nothing.",
        "import importlib.util",
        "",
        'if importlib.util.find_spec("coursekit") is None:',
        f'    %pip install --quiet "{install_requirement(cfg)}"',
        "import coursekit",
        "",
        "print(coursekit.banner())",
    ])
    return _cell("code", SETUP_TAG, source, [SETUP_TAG])


def _tagged(cell: Any, tag: str) -> bool:
    return tag in cell.get("metadata", {}).get("tags", [])


def apply(notebook: Any, cfg: LaunchConfig, path: str | Path) -> bool:
    """Insert or refresh the launch cell (cell 0) and the setup cell (the first code cell).

    ``notebook`` is changed in place: earlier launch and setup cells (found by their
    tags) are removed, the launch cell for ``path`` goes first and the setup cell just
    before the first other code cell (at the end if there is none). Running it twice
    changes nothing the second time.

    Returns
    -------
    bool
        Whether the notebook changed.
    """
    before = _normal(notebook["cells"])
    cells = [c for c in notebook["cells"] if not (_tagged(c, LAUNCH_TAG) or _tagged(c, SETUP_TAG))]
    first_code = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), len(cells))
    cells.insert(first_code, setup_cell(cfg))
    cells.insert(0, launch_cell(cfg, path))
    notebook["cells"] = cells
    return _normal(cells) != before


def _normal(cells: list[Any]) -> str:
    """The cells as comparable text: a source stored as a list of lines is one string."""
    return json.dumps([{**cell, "source": "".join(cell["source"])} for cell in cells],
                      sort_keys=True)


def _as_stored(cell: Any) -> Any:
    """A cell as Jupyter stores it: keys sorted, the source as a list of lines."""
    if isinstance(cell["source"], list):
        return cell
    return nbformat.from_dict({key: cell["source"].splitlines(keepends=True) if key == "source"
                               else value for key, value in sorted(cell.items())})


# ----------------------------------------------------------------------------- files


def notebooks(paths: Iterable[str | Path]) -> list[Path]:
    """The notebooks named in ``paths``, a folder standing for every ``.ipynb`` under it
    (checkpoint and hidden folders skipped), sorted and without repeats."""
    found: set[Path] = set()
    for path in map(Path, paths):
        if path.is_dir():
            found.update(p for p in path.rglob("*.ipynb")
                         if not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.suffix == ".ipynb" and path.is_file():
            found.add(path)
        else:
            raise FileNotFoundError(f"{path} is neither a notebook nor a folder")
    return sorted(found)


def _updated(path: Path, root: Path, cfg: LaunchConfig) -> tuple[nbformat.NotebookNode, bool]:
    notebook = nbformat.from_dict(json.loads(path.read_text(encoding="utf-8")))
    relative = path.resolve().relative_to(root).as_posix()
    return notebook, apply(notebook, cfg, relative)


def _config(path: Path, configs: dict[Path, LaunchConfig]) -> tuple[Path, LaunchConfig]:
    root = find_root(path.parent)
    if root not in configs:
        configs[root] = read_config(root)
    return root, configs[root]


def stale(paths: Iterable[str | Path]) -> list[Path]:
    """The notebooks among ``paths`` whose launch or setup cell is missing or differs from
    what their repository's configuration gives. Nothing is written."""
    configs: dict[Path, LaunchConfig] = {}
    out = []
    for path in notebooks(paths):
        root, cfg = _config(path, configs)
        if _updated(path, root, cfg)[1]:
            out.append(path)
    return out


def write(paths: Iterable[str | Path]) -> list[Path]:
    """Give every notebook among ``paths`` its launch and setup cells, each with the link
    for its own path relative to the repository root (the folder of the nearest
    ``pyproject.toml``). Returns the notebooks changed; the others are not rewritten.

    Notebooks are written as the course stores them: JSON indented by one space, keys
    in their order, non-ASCII characters as they are, and a final newline.
    """
    configs: dict[Path, LaunchConfig] = {}
    changed = []
    for path in notebooks(paths):
        root, cfg = _config(path, configs)
        notebook, differs = _updated(path, root, cfg)
        if differs:
            notebook["cells"] = [_as_stored(cell) for cell in notebook["cells"]]
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n",
                            encoding="utf-8")
            changed.append(path)
    return changed
