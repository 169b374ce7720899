"""Sphinx configuration of the course website (``coursekit site``; see docs/site.md).

``coursekit site`` stages the pages into ``_build/site/source`` and runs Sphinx with
this folder as its configuration folder; ``COURSEKIT_SITE_ROOT`` names the repository,
whose ``[tool.coursekit.launch]`` table (pyproject.toml) gives the launch links.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from coursekit import __version__
from coursekit.launch import read_config

ROOT = Path(os.environ.get("COURSEKIT_SITE_ROOT", Path(__file__).resolve().parents[1]))
LAUNCH = read_config(ROOT)

project = "Optimization for deep learning"
author = "the coursekit authors"
copyright = "the coursekit authors, MIT licence"
release = __version__

extensions = [
    "myst_nb",                      # notebooks and MyST markdown
    "sphinx.ext.autodoc",           # the API reference, from the docstrings
    "sphinx.ext.napoleon",          # ... written in NumPy style
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",       # MathJax 3 served with the site: math renders offline
]
exclude_patterns = ["**.ipynb_checkpoints"]
suppress_warnings = [
    "myst.header",   # notebooks number their sections from ## on purpose
    "ref.python",    # a word of a docstring's type ("n" in "shape (n, 2)") naming two attributes
]

# --- notebooks: never executed by Sphinx. coursekit site passes lectures already executed
# (CI mode, from the test run's cache or executed by the build) and homework as released.
nb_execution_mode = "off"
nb_output_stderr = "show"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
myst_url_schemes = ["http", "https", "mailto"]  # a link with another scheme is a local path

# --- the API reference
# members where they are defined: a package page shows its docstring, not again the
# classes and functions its __all__ re-exports from the modules below it
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False


def _local_footnotes(app, what, name, obj, options, lines):
    """Make a docstring's numbered references (``.. [1]``, ``[1]_``) auto-numbered footnotes
    with labels of their own: several docstrings on one page each have a ``[1]``."""
    label = name.replace(".", "-")
    for index, line in enumerate(lines):
        line = re.sub(r"^(\s*)\.\. \[(\d+)\]", rf"\1.. [#{label}-\2]", line)
        lines[index] = re.sub(r"\[(\d+)\]_", rf"[#{label}-\1]_", line)


def setup(app):
    app.connect("autodoc-process-docstring", _local_footnotes)

# --- the theme, with launch buttons for every notebook page
html_theme = "sphinx_book_theme"
html_title = "Optimization for deep learning"
html_theme_options = {
    "repository_url": LAUNCH.repository,
    "repository_branch": LAUNCH.branch,
    "path_to_docs": "",             # pages are staged at their repository paths
    "use_repository_button": True,
    "launch_buttons": {
        "colab_url": LAUNCH.colab,
        "binderhub_url": LAUNCH.binder,
        "jupyterhub_url": LAUNCH.jupyterhub,
        "notebook_interface": "jupyterlab",
    },
    "show_toc_level": 2,
}
html_last_updated_fmt = None
