"""Pictures of graphs with matplotlib alone (no graphviz).

:func:`draw_graph` draws either kind of graph the primer has:

* an engine graph (a :class:`~coursekit.primer.engine.Tensor` or
  :class:`~coursekit.primer.engine.Graph`): leaves and operations, the graph
  that ``backward()`` walks;
* a network (a :class:`~coursekit.primer.expressions.Program` or a model):
  variables as nodes, each edge labelled with the parameter that multiplies
  it, the picture of the primer's layered example.

Nodes are placed in columns by depth (leaves or inputs on the left, each node
one column right of its deepest parent), top to bottom in the graph's own
deterministic order.
"""

from __future__ import annotations

from typing import Any

from coursekit import _checks as checks
from coursekit.primer import engine
from coursekit.primer.engine import Graph, Tensor
from coursekit.primer.expressions import Program, linear_terms, names_in

__all__ = ["draw_graph"]

_OP_LABELS = {
    engine.Add: "+", engine.Sub: "-", engine.Mul: "*", engine.Div: "/", engine.Neg: "neg",
    engine.MatMul: "@", engine.Sum: "sum", engine.Mean: "mean", engine.Sigmoid: "sigmoid",
    engine.ReLU: "relu", engine.Tanh: "tanh", engine.Exp: "exp", engine.Log: "log",
    engine.MSE: "MSE", engine.BCE: "BCE", engine.SigmoidLayer: "sigmoid(hW+b)",
}
_COLORS = {"parameter": "#f6bd60", "input": "#a8dadc", "operation": "#e9ecef",
           "variable": "#cdb4db"}


def draw_graph(obj: Any, ax=None):
    """Draw an engine graph or a network of expressions; return the matplotlib Axes.

    Parameters
    ----------
    obj : Tensor, Graph, Program or model
        What to draw (a model is drawn as its ``program``).
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.
    """
    if isinstance(obj, Tensor):
        obj = Graph(obj)
    if isinstance(obj, Graph):
        nodes, edges, labels, kinds, edge_labels, title = _engine_picture(obj)
    else:
        program = getattr(obj, "program", obj)
        if not isinstance(program, Program):
            raise checks.invalid("obj", "a Tensor, Graph, Program or primer model", obj,
                                 TypeError)
        nodes, edges, labels, kinds, edge_labels, title = _network_picture(program)
    position = _layered_positions(nodes, edges)
    if ax is None:
        import matplotlib.pyplot as plt

        columns = 1 + max(x for x, _ in position.values())
        rows = 1 + max(y for _, y in position.values()) - min(y for _, y in position.values())
        _, ax = plt.subplots(figsize=(max(6.0, 1.4 * columns), max(4.0, 0.6 * rows)))
    for (a, b), label in zip(edges, edge_labels, strict=True):
        ax.annotate("", xy=position[b], xytext=position[a],
                    arrowprops=dict(arrowstyle="->", color="0.4", shrinkA=14, shrinkB=14))
        if label:
            (xa, ya), (xb, yb) = position[a], position[b]
            ax.text(xa + 0.35 * (xb - xa), ya + 0.35 * (yb - ya), label, fontsize=8,
                    ha="center", va="center", color="0.2",
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none"))
    for node in nodes:
        ax.text(*position[node], labels[node], ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round,pad=0.4", fc=_COLORS[kinds[node]], ec="0.3"))
    ax.set_title(title)
    ax.set_xlim(-0.6, max(x for x, _ in position.values()) + 0.6)
    ax.set_ylim(min(y for _, y in position.values()) - 0.6,
                max(y for _, y in position.values()) + 0.6)
    ax.set_axis_off()
    return ax


def _layered_positions(nodes: list, edges: list[tuple]) -> dict:
    """Column = longest path from a source, with each source moved right to sit just
    before its first use; rows spread evenly, centred on 0."""
    parents: dict = {node: [] for node in nodes}
    children: dict = {node: [] for node in nodes}
    for a, b in edges:
        parents[b].append(a)
        children[a].append(b)
    depth: dict = {}
    for node in nodes:  # nodes come parents first
        depth[node] = 1 + max((depth[p] for p in parents[node]), default=-1)
    for node in nodes:
        if not parents[node] and children[node]:
            depth[node] = min(depth[c] for c in children[node]) - 1
    columns: dict[int, list] = {}
    for node in nodes:
        columns.setdefault(depth[node], []).append(node)
    position = {}
    for x, column in columns.items():
        for row, node in enumerate(column):
            position[node] = (float(x), (len(column) - 1) / 2 - row)
    return position


def _engine_picture(graph: Graph):
    nodes = list(range(len(graph.order)))
    index = {id(node): i for i, node in enumerate(graph.order)}
    edges = [(index[id(p)], index[id(node)]) for node in graph.order for p in node.parents]
    labels, kinds = {}, {}
    for i, node in enumerate(graph.order):
        if node.op is None:
            kinds[i] = "parameter" if node.requires_grad else "input"
            labels[i] = node.name or (f"{node.value.item():g}" if node.value.size == 1
                                      else f"const {node.shape}")
        else:
            kinds[i] = "operation"
            op = node.op
            labels[i] = (f"^{op.k:g}" if isinstance(op, engine.Pow)
                         else _OP_LABELS.get(type(op), type(op).__name__))
    return nodes, edges, labels, kinds, [""] * len(edges), "computational graph"


def _network_picture(program: Program):
    nodes = list(program.inputs) + [a.target for a in program.assignments]
    edges, edge_labels = [], []
    labels = {node: node for node in nodes}
    kinds = {node: "input" for node in program.inputs}
    for assignment in program.assignments:
        kinds[assignment.target] = "variable"
        terms = linear_terms(assignment.expr)
        if terms is None:
            labels[assignment.target] += "\n" + assignment.source.split("=", 1)[1].strip()
            sources = []
            for name in names_in(assignment.expr):
                if name.id in kinds and name.id not in sources:
                    sources.append(name.id)
            edges += [(v, assignment.target) for v in sources]
            edge_labels += [""] * len(sources)
        else:
            edges += [(v, assignment.target) for _, v in terms]
            edge_labels += [p for p, _ in terms]
    return nodes, edges, labels, kinds, edge_labels, "network of expressions"
