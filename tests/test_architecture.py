"""The layering rules of docs/architecture.md, checked on the code itself.

Two kinds of check: every ``import`` of a coursekit module, read from the source
with ``ast`` (top level and inside functions alike), points down or sideways within
its own package; and importing a package in a fresh interpreter loads no more than
its layer allows (no torch for ``coursekit`` itself, no torch or matplotlib for the
primer, the checks and the grading side).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "coursekit"

# Layer of each top-level part of the package (docs/architecture.md), bottom = 0.
LAYERS = {
    "runtime": 0, "data": 0, "models": 0, "landscapes": 0, "stats": 0, "_checks": 0, "_lazy": 0,
    "optim": 1, "schedules": 1, "primer": 1,
    "train": 2,
    "viz": 3,
    "analysis": 4, "experiments": 4,
    "grading": 5, "cli": 5, "slides": 5, "launch": 5, "site": 5,
}
# Pairs of parts on one layer above the core that may import one another (importer,
# imported); the core's modules use each other freely.
SIDEWAYS = {("analysis", "experiments"), ("cli", "grading"), ("cli", "slides"),
            ("cli", "launch"), ("grading", "launch"), ("cli", "site"), ("site", "launch")}


def _part(module: str) -> str | None:
    """``coursekit.optim.adam`` -> ``optim``; None for the package itself."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else None


def _source_files() -> list[tuple[str, Path]]:
    files = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files.append((".".join(parts), path))
    return files


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every coursekit module ``path`` imports, with the line (``from a import b`` gives a.b)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names
                      if alias.name.split(".")[0] == "coursekit"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "coursekit":
                continue
            if node.module == "coursekit":
                found += [(f"coursekit.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((node.module, node.lineno))
    return found


def _violations() -> list[str]:
    problems = []
    for module, path in _source_files():
        importer = _part(module)
        if importer is None:
            continue
        for imported, line in _imports(path):
            target = _part(imported)
            where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {imported}"
            if target is not None and target.startswith("__"):
                continue  # package metadata such as coursekit.__version__
            if target is None:
                problems.append(f"{where} (import the module you need, not the package)")
            elif target not in LAYERS or importer not in LAYERS:
                problems.append(f"{where} (a part missing from docs/architecture.md's layers)")
            elif target == importer:
                continue
            elif LAYERS[target] > LAYERS[importer]:
                problems.append(f"{where} (an arrow up: layer {LAYERS[importer]} -> "
                                f"{LAYERS[target]})")
            elif (LAYERS[target] == LAYERS[importer] > 0
                  and (importer, target) not in SIDEWAYS):
                problems.append(f"{where} (sideways between two parts of layer "
                                f"{LAYERS[importer]})")
    return problems


def test_every_import_points_down_the_layers():
    assert _violations() == []


def test_every_part_of_the_package_has_a_layer():
    parts = {path.stem if path.is_file() else path.name
             for path in PACKAGE.iterdir()
             if (path.suffix == ".py" and path.stem != "__init__")
             or (path.is_dir() and (path / "__init__.py").exists())}
    assert parts == set(LAYERS)


def test_the_layer_check_catches_an_arrow_up(tmp_path, monkeypatch):
    fake = tmp_path / "coursekit"
    (fake / "optim").mkdir(parents=True)
    (fake / "optim" / "__init__.py").write_text("")
    (fake / "optim" / "bad.py").write_text("from coursekit.train import fit\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert [p for p in _violations() if "arrow up" in p] == [
        "coursekit/optim/bad.py:1 imports coursekit.train (an arrow up: layer 1 -> 2)"]


def _loaded_after(statement: str) -> set[str]:
    code = (f"import sys, json; {statement}; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PACKAGE.parent)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("statement, absent", [
    ("import coursekit", {"torch", "matplotlib", "sklearn"}),
    ("import coursekit.primer", {"torch", "matplotlib"}),
    ("import coursekit.stats, coursekit._checks", {"torch", "matplotlib"}),
    ("import coursekit.schedules", {"matplotlib"}),
    ("import coursekit.train", {"matplotlib"}),
    ("import coursekit.optim", {"matplotlib"}),
])
def test_importing_a_package_loads_only_what_its_layer_needs(statement, absent):
    assert _loaded_after(statement) & absent == set()


def test_the_lazy_package_still_reaches_every_part():
    loaded = _loaded_after("import coursekit; coursekit.optim.Adam; coursekit.seed(0); "
                           "coursekit.viz.plot.heatmap")
    assert {"torch", "matplotlib"} <= loaded
