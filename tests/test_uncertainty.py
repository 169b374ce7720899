"""Every figure that compares runs over several seeds draws their spread (issue 21).

How it decides, from the code cells of every lecture and solution notebook, read
in order with ``ast`` (no execution):

1. **Seeded values.** A name is *seeded* when it names several seeds (an
   identifier ending in ``seeds``: ``SEEDS``, ``COMPARE_SEEDS``, ``n_seeds``; a
   keyword argument ``seeds=``), or when it is assigned (``=``, ``+=``) from an
   expression that reads a seeded name, or when it collects results inside a
   ``for`` loop over one (``runs[seed] = ...``, ``runs.append(...)``, ``+=``).
   ``.histories`` (a comparison's runs per seed) is seeded too. The loop variable
   itself (one seed) and plain temporaries inside the loop are not: they hold one
   run. This follows results from the cell that ran the seeds to the cell that
   draws them.
2. **Drawing cells.** A cell draws when it calls a matplotlib drawing method
   (``plot``, ``semilogy``, ``loglog``, ``bar``, ``scatter``...) or a figure helper
   of ``coursekit.viz.plot``.
3. **The rule.** A drawing cell that reads a seeded name compares over seeds, and
   must draw their spread: a call of ``plot.band`` or ``plot.small_multiples`` (both
   draw a standard-error band around the mean of seeds x steps arrays),
   ``fill_between``, ``errorbar``, ``boxplot`` or ``violinplot``, a ``yerr=``/``xerr=``
   argument, or every seed drawn (a drawing call inside a loop over the seeds
   themselves: ``for seed in SEEDS``).
4. **Exceptions, stated.** A drawing cell that reads seeded values but compares
   nothing over seeds (one seed's run shown for its shape, say) carries a comment
   ``# spread: <why no band is needed>``; the reason is required, and it is what a
   reviewer reads.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted([*ROOT.glob("lectures/*.ipynb"), *ROOT.glob("solutions/*.ipynb")])

SEED_NAME = re.compile(r"(?i)seeds$")
SEED_KEYWORDS = {"seeds"}
SEED_ATTRIBUTES = {"histories"}
DRAWING = {"plot", "semilogy", "semilogx", "loglog", "bar", "barh", "scatter", "step",
           "errorbar", "fill_between", "hist", "boxplot", "violinplot", "stairs"}
COURSE_FIGURES = {"trajectories", "schedules", "training_curves", "band", "small_multiples",
                  "distances", "heatmap", "rate_map"}
SPREAD_CALLS = {"band", "small_multiples", "fill_between", "errorbar", "boxplot", "violinplot"}
SPREAD_KEYWORDS = {"yerr", "xerr"}
EXCEPTION = re.compile(r"#\s*spread:\s*\S")


def _code_cells(path: Path) -> list[tuple[int, str]]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(index, "".join(cell["source"])) for index, cell in enumerate(cells)
            if cell["cell_type"] == "code"]


def _parse(source: str) -> ast.Module | None:
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def _call_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _on_axes(call: ast.Call) -> bool:
    """``plt.step(...)``, ``ax.step(...)``, ``axes[0].step(...)``: not ``optimizer.step()``."""
    receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
    while isinstance(receiver, ast.Subscript):
        receiver = receiver.value
    return isinstance(receiver, ast.Name) and (receiver.id == "plt"
                                               or receiver.id.startswith("ax"))


def _is_drawing(call: ast.Call) -> bool:
    name = _call_name(call)
    if name == "step":  # Matplotlib's step plot, or an optimizer's step
        return _on_axes(call)
    return name in DRAWING or (name in COURSE_FIGURES and isinstance(call.func, ast.Attribute))


def _target_names(target: ast.AST) -> set[str]:
    """The variables an assignment target binds or mutates (``a``, ``a[k]``, ``a.b``)."""
    while isinstance(target, (ast.Subscript, ast.Attribute, ast.Starred)):
        target = target.value
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return set().union(*(_target_names(t) for t in target.elts)) if target.elts else set()
    return set()


class _Seeds(ast.NodeVisitor):
    """Which names of a cell are seeded (given those seeded before it), and what it draws."""

    def __init__(self, seeded: set[str]):
        self.seeded = set(seeded)
        self.reads_seeded = False
        self.draws = False
        self.spread = False
        self.loop_depth = 0     # inside loops over the seeds (``for seed in SEEDS``)

    def _mentions(self, node: ast.AST | None) -> bool:
        if node is None:
            return False
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and (sub.id in self.seeded or SEED_NAME.search(sub.id)):
                return True
            if isinstance(sub, ast.Attribute) and sub.attr in SEED_ATTRIBUTES:
                return True
            if isinstance(sub, ast.keyword) and sub.arg in SEED_KEYWORDS:
                return True
        return False

    def _bind(self, targets: list[ast.AST], value: ast.AST | None,
              collects: bool = False) -> None:
        """Seed ``targets`` when ``value`` reads seeded names, or when they collect results
        inside a loop over seeds (``collects``, or a subscript/attribute target)."""
        for target in targets:
            accumulates = collects or isinstance(target, (ast.Subscript, ast.Attribute))
            if self._mentions(value) or (self.loop_depth and accumulates):
                self.seeded |= _target_names(target)

    def visit_Assign(self, node: ast.Assign) -> None:
        self._bind(node.targets, node.value)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._bind([node.target], node.value, collects=True)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._bind([node.target], node.value)
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        over_seeds = any(
            (isinstance(sub, ast.Name) and SEED_NAME.search(sub.id))
            or (isinstance(sub, ast.Attribute) and sub.attr in SEED_ATTRIBUTES)
            for sub in ast.walk(node.iter))
        self.visit(node.iter)
        self.loop_depth += over_seeds
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)
        self.loop_depth -= over_seeds

    def visit_Call(self, node: ast.Call) -> None:
        name = _call_name(node)
        if isinstance(node.func, ast.Attribute) and name in {"append", "extend", "update",
                                                             "setdefault", "add"}:
            self._bind([node.func.value], node, collects=True)
        if _is_drawing(node):
            self.draws = True
            if name in SPREAD_CALLS or any(k.arg in SPREAD_KEYWORDS for k in node.keywords) \
                    or self.loop_depth:
                self.spread = True
        if self._mentions(node):
            self.reads_seeded = True
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load) and (node.id in self.seeded
                                               or SEED_NAME.search(node.id)):
            self.reads_seeded = True


def comparisons_without_spread(path: Path) -> list[int]:
    """The indices of the drawing cells of ``path`` that compare over seeds without spread."""
    seeded: set[str] = set()
    problems = []
    for index, source in _code_cells(path):
        tree = _parse(source)
        if tree is None:
            continue
        cell = _Seeds(seeded)
        cell.visit(tree)
        seeded = cell.seeded
        if cell.draws and cell.reads_seeded and not cell.spread \
                and not EXCEPTION.search(source):
            problems.append(index)
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_comparisons_over_seeds_draw_their_spread(path):
    problems = comparisons_without_spread(path)
    assert not problems, (
        "these cells draw results over several seeds without their spread: use plot.band "
        "(mean and standard-error band), errorbar/yerr=, fill_between, or draw every seed; "
        "if the figure compares nothing over seeds, say why in a '# spread: ...' comment: "
        f"{path.relative_to(ROOT)} cells {problems}")


def _notebook(tmp_path: Path, *cells: str) -> Path:
    path = tmp_path / "example.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": source}
                                          for source in cells]}), encoding="utf-8")
    return path


def _flagged(tmp_path: Path, *cells: str) -> list[int]:
    return comparisons_without_spread(_notebook(tmp_path, *cells))


RUNS = "SEEDS = [0, 1, 2]\ncurves = {name: [run(name, s) for s in SEEDS] for name in NAMES}"


def test_a_mean_over_seeds_drawn_alone_is_flagged_two_cells_later(tmp_path):
    assert _flagged(tmp_path, RUNS, "x = 1",
                    "for name in curves:\n    ax.plot(np.mean(curves[name], axis=0))") == [2]


def test_a_band_error_bars_or_every_seed_drawn_pass(tmp_path):
    assert _flagged(tmp_path, RUNS, "plot.band(curves)",
                    "ax.bar(names, means, yerr=sems)",
                    "for s in SEEDS:\n    ax.plot(curves['Adam'][s])") == []


def test_a_stated_exception_passes_and_unseeded_figures_are_not_checked(tmp_path):
    assert _flagged(tmp_path, RUNS,
                    "# spread: one seed's run, shown for its shape\nax.plot(curves['Adam'][0])",
                    "loss = train(model)\nax.plot(loss)") == []
