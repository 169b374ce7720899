"""Repository-level checks: lint, README commands, CI script, package metadata."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (install the dev extra)")
    result = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True,
                            cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_gives_exactly_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert ('`python -m pip install -e ".[dev]" && jupyter lab --config=jupyter_lab_config.py`'
            in readme)
    assert '`python -m pip install -e ".[dev]" && pytest -n auto`' in readme


def test_ci_script_reads_its_commands_from_the_readme():
    script = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in script and "python3 -m venv" in script
    result = subprocess.run(["bash", "-n", str(ROOT / ".ci" / "run")], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_dependencies_are_declared():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=\[ ]", d)[0].lower() for d in meta["dependencies"]}
    for needed in ("numpy", "torch", "torchvision", "matplotlib", "ipywidgets", "tqdm",
                   "scikit-learn"):
        assert needed in names
    # the setup cell pip-installs coursekit into Colab and hubs, which bring their own
    # Jupyter: JupyterLab is the `lab` extra, which `dev` (the README's install) includes
    assert "jupyterlab" not in names
    extras = meta["optional-dependencies"]
    assert any(d.startswith("jupyterlab") for d in extras["lab"])
    dev = {re.split(r"[<>=\[ ]", d)[0].lower() for d in extras["dev"]}
    assert {"pytest", "nbval", "hypothesis", "ruff"} <= dev
    assert any(re.fullmatch(r"coursekit\[(.*,)?lab(,.*)?\]", d) for d in extras["dev"])
    assert not any("==" in d.split(";")[0] for d in meta["dependencies"]), \
        "no exact pins: let pip resolve"  # (an environment marker may say == after the ;)


def test_readme_course_map_lists_only_what_exists():
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(((?:lectures|homework|solutions|coursekit|docs|benchmarks)"
                             r"/[^)#]+)\)", readme):
        assert (ROOT / target).exists(), f"README links to missing {target}"
