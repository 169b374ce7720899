"""The course's figures, drawn with matplotlib in one consistent style.

Every plotting function here

* draws on ``ax`` when one is given, or on a new figure otherwise;
* returns the ``Axes`` it drew on (the figure is ``ax.figure``);
* sets a title and axis labels by default (pass your own to override);
* never calls ``plt.show()``: a notebook shows the figure at the end of the cell,
  a script calls ``plt.show()`` or ``ax.figure.savefig(...)`` itself.

The functions::

    trajectories(trajs, landscape)        optimizer paths over contour lines
    schedules({"cosine": lrs, ...})        learning rate against step
    training_curves(losses)                raw loss and its running mean
    heatmap(values, rows, cols)            a metric over a hyperparameter grid
    rate_map(rates, lrs, momenta)          convergence rate over (learning rate, momentum)
    distances(trajs)                       distance to the minimum against step, log scale
    summary_table(records)                 a list of records as a table figure

Plain-text tables and records-to-grid live in :mod:`coursekit.viz.tables`, the
smoothing of a loss curve in :func:`coursekit.stats.running_mean`.
``with style():`` applies the course style (:data:`STYLE`) to your own figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors, cycler
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from coursekit import _checks as checks
from coursekit.landscapes import Landscape, Trajectory, grid
from coursekit.stats import running_mean
from coursekit.viz.tables import _cells, _columns, _format_value

__all__ = [
    "COLORS",
    "STYLE",
    "distances",
    "heatmap",
    "rate_map",
    "schedules",
    "style",
    "summary_table",
    "training_curves",
    "trajectories",
]

COLORS: tuple[str, ...] = (
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
    "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
)
"""The line colours, in order: one per optimizer, schedule or run."""

STYLE: dict[str, Any] = {
    "figure.figsize": (6.4, 4.8),
    "figure.dpi": 100,
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "axes.grid": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(color=COLORS),
    "grid.alpha": 0.3,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
}
"""matplotlib rcParams shared by every course figure."""


@contextmanager
def style() -> Iterator[None]:
    """Context manager applying :data:`STYLE`: ``with style(): fig, ax = plt.subplots()``."""
    with mpl.rc_context(STYLE):
        yield


def _axes(ax: Axes | None, figsize: tuple[float, float] | None = None) -> Axes:
    """``ax`` itself, or the axes of a new figure (call inside ``style()``)."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
        return ax
    return checks.instance("ax", ax, Axes, what="a matplotlib Axes")


def _contour_levels(Z: np.ndarray, landscape: Landscape, n: int) -> np.ndarray:
    """``n`` contour levels: geometric above the minimum for functions bounded below
    (so both the steep walls and the flat valley floor get lines), linear otherwise."""
    if landscape.min_value is None:
        return np.linspace(np.min(Z), np.max(Z), n + 2)[1:-1]
    heights = Z - landscape.min_value
    high = float(np.max(heights))
    low = max(float(np.percentile(heights, 0.5)), high * 1e-9, np.finfo(np.float64).tiny)
    return landscape.min_value + np.geomspace(low, high, n)


def _plot_points(ax: Axes, points: Sequence[Sequence[float]], label: str, **marker: Any) -> None:
    xy = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    ax.plot(xy[:, 0], xy[:, 1], linestyle="none", label=label, zorder=4, **marker)


def trajectories(trajs: Trajectory | Sequence[Trajectory], landscape: Landscape | None = None,
                 *, ax: Axes | None = None, levels: int | Sequence[float] = 30,
                 resolution: int = 200, domain: Any = None, title: str | None = None) -> Axes:
    """Optimizer paths drawn over the contour lines of their landscape.

    Each trajectory is a line with small markers at its iterates, labelled with
    ``traj.label`` (plus the step where it diverged, if it did). The starting
    points are marked with white circles, the documented minima with stars and
    the saddles with crosses; all of them appear in the legend.

    Parameters
    ----------
    trajs : Trajectory or sequence of Trajectory
        Results of :func:`coursekit.landscapes.run`.
    landscape : Landscape, optional
        The function to contour (default: the first trajectory's).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.
    levels : int or sequence of float
        Number of contour levels, or the levels themselves.
    resolution : int
        Grid points per axis for the contours.
    domain : ((x_min, x_max), (y_min, y_max)), optional
        The rectangle shown (default ``landscape.domain``).
    title : str, optional
        Default: the landscape's name.

    Returns
    -------
    matplotlib Axes
    """
    trajs = [trajs] if isinstance(trajs, Trajectory) else list(trajs)
    for i, traj in enumerate(trajs):
        checks.instance(f"trajs[{i}]", traj, Trajectory)
    if landscape is None:
        if not trajs:
            raise checks.invalid("landscape", "given when there is no trajectory to take it "
                                 "from", landscape)
        landscape = trajs[0].landscape
    checks.instance("landscape", landscape, Landscape)
    domain = landscape.domain if domain is None else domain
    with style():
        ax = _axes(ax)
        X, Y, Z = grid(landscape, resolution, domain)
        if isinstance(levels, Integral):
            levels = _contour_levels(Z, landscape, int(levels))
        levels = np.asarray(levels, dtype=np.float64)
        ax.contour(X, Y, Z, levels=levels, colors=plt.get_cmap("viridis")(
            np.linspace(0.0, 0.9, len(levels))), linewidths=0.7, alpha=0.7, zorder=1)
        for i, traj in enumerate(trajs):
            label = traj.label
            if traj.diverged:
                label += f" (diverged at step {traj.diverged_at})"
            ax.plot(traj.points[:, 0], traj.points[:, 1], color=COLORS[i % len(COLORS)],
                    marker="o", markersize=2.5, linewidth=1.4, label=label, zorder=3)
        starts = np.unique(np.array([traj.start for traj in trajs]).reshape(-1, 2), axis=0)
        if len(starts):
            _plot_points(ax, starts, "start", marker="o", markersize=8,
                         markerfacecolor="white", markeredgecolor="black")
        if landscape.minima:
            _plot_points(ax, landscape.minima, "minimum" if len(landscape.minima) == 1
                         else "minima", marker="*", markersize=15,
                         markerfacecolor="gold", markeredgecolor="black")
        if landscape.saddles:
            _plot_points(ax, landscape.saddles, "saddle" if len(landscape.saddles) == 1
                         else "saddles", marker="X", markersize=9,
                         markerfacecolor="white", markeredgecolor="black")
        (x_min, x_max), (y_min, y_max) = domain
        ax.set_xlim(x_min, x_max)
        ax.set_ylim(y_min, y_max)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title(landscape.name if title is None else title)
        ax.legend(loc="best", frameon=True, framealpha=0.9)
    return ax


def schedules(curves: Mapping[str, Sequence[float] | Callable[[int], float]],
              steps: int | None = None, *, ax: Axes | None = None,
              title: str = "Learning-rate schedules", xlabel: str = "step",
              ylabel: str = "learning rate", log: bool = False) -> Axes:
    """Several schedules overlaid: value against step, one labelled line each.

    Parameters
    ----------
    curves : mapping of name to sequence or callable
        A sequence holds the value at steps ``0, 1, ...``; a callable ``f(t)``
        is evaluated at ``t = 0, ..., steps - 1``.
    steps : int, optional
        Number of steps for the callables (required when there are any).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.
    title, xlabel, ylabel : str
        Labels.
    log : bool
        Logarithmic y axis.

    Returns
    -------
    matplotlib Axes
    """
    if not isinstance(curves, Mapping) or not curves:
        raise checks.invalid("curves", "a non-empty dict name -> sequence or callable", curves,
                             TypeError)
    steps = checks.optional_integer("steps", steps, minimum=1)
    with style():
        ax = _axes(ax)
        for i, (name, curve) in enumerate(curves.items()):
            if callable(curve):
                if steps is None:
                    raise checks.invalid("steps", "given to evaluate the callable "
                                         f"curves[{name!r}]", steps)
                values = checks.series(f"curves[{name!r}]", [curve(t) for t in range(steps)])
            else:
                values = checks.series(f"curves[{name!r}]", curve)
            ax.plot(np.arange(len(values)), values, color=COLORS[i % len(COLORS)],
                    label=str(name))
        if log:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(loc="best")
    return ax


def training_curves(losses: Sequence[float] | Mapping[str, Sequence[float]], *,
                    window: int = 50, iters_per_epoch: int | None = None, log: bool = False,
                    ax: Axes | None = None, title: str = "Training loss",
                    ylabel: str = "loss") -> Axes:
    """Per-iteration loss, faded, under its running mean.

    Parameters
    ----------
    losses : sequence of float, or mapping of name to sequence
        One run, or several runs to compare (one colour each).
    window : int
        Running-mean window in iterations (capped at each run's length).
    iters_per_epoch : int, optional
        When given, the x axis counts epochs: iteration ``i`` (from 1) sits at
        ``i / iters_per_epoch``.
    log : bool
        Logarithmic loss axis.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.
    title, ylabel : str
        Labels.

    Returns
    -------
    matplotlib Axes
    """
    window = checks.integer("window", window, minimum=1)
    iters_per_epoch = checks.optional_integer("iters_per_epoch", iters_per_epoch, minimum=1)
    runs = dict(losses) if isinstance(losses, Mapping) else {None: losses}
    with style():
        ax = _axes(ax)
        for i, (name, run_losses) in enumerate(runs.items()):
            y = checks.series("losses" if name is None else f"losses[{name!r}]", run_losses)
            x = np.arange(1, len(y) + 1, dtype=np.float64)
            if iters_per_epoch is not None:
                x /= iters_per_epoch
            w = max(1, min(window, len(y)))
            color = COLORS[i % len(COLORS)]
            ax.plot(x, y, color=color, alpha=0.3, linewidth=0.8,
                    label="raw" if name is None else "_nolegend_")
            ax.plot(x, running_mean(y, w), color=color,
                    label=f"running mean ({w})" if name is None else str(name))
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("iteration" if iters_per_epoch is None else "epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        legend_title = None if None in runs else f"running mean of {window}; raw faded"
        ax.legend(loc="best", title=legend_title)
    return ax


def _tick_label(value: Any) -> str:
    if isinstance(value, Real) and not isinstance(value, bool):
        return f"{float(value):g}"
    return str(value)


def heatmap(values: Any, rows: Sequence[Any], cols: Sequence[Any], *, ax: Axes | None = None,
            fmt: str | Callable[[float], str] = ".4f", row_label: str = "row",
            col_label: str = "column", value_label: str = "value", title: str | None = None,
            cmap: str = "viridis", colorbar: bool = True, highlight: str | None = None) -> Axes:
    """A metric over a two-hyperparameter grid, each cell annotated with its value.

    For the beta1 x beta2 table of the ECE 60146 homework report (ECE 60146, 2024),
    ``heatmap(final_loss, rows=[0.7, 0.9, 0.99], cols=[0.7, 0.9, 0.99],
    row_label="beta1", col_label="beta2", value_label="final loss",
    highlight="min")``; :func:`pivot` builds ``rows, cols, values`` from a list of
    records.

    Parameters
    ----------
    values : array-like, shape (len(rows), len(cols))
        ``values[i][j]`` is the metric at ``rows[i]``, ``cols[j]`` (NaN for a gap).
    rows, cols : sequence
        Hyperparameter values labelling the rows (y axis) and columns (x axis).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.
    fmt : str or callable
        Format spec for the annotations (``format(v, fmt)``), or a function.
    row_label, col_label, value_label : str
        Axis and colour-bar labels.
    title : str, optional
        Default: ``"<value_label> by <row_label> and <col_label>"``.
    cmap : str
        Colour map.
    colorbar : bool
        Draw a colour bar labelled ``value_label``.
    highlight : {"min", "max"}, optional
        Outline the best cell.

    Returns
    -------
    matplotlib Axes

    References
    ----------
    .. [1] ECE 60146 (2024). Homework 2 report: SGD with momentum (SGD+) and Adam for
       Avi Kak's ComputationalGraphPrimer. Student homework report, ECE 60146 Deep
       Learning, Purdue University, Spring 2024. [ece60146hw2]
    """
    rows, cols = list(rows), list(cols)
    grid_values = checks.shape("values", np.asarray(values, dtype=np.float64),
                               (len(rows), len(cols)))
    checks.choice("highlight", highlight, (None, "min", "max"))
    with style():
        ax = _axes(ax)
        image = ax.imshow(grid_values, cmap=cmap, aspect="auto", origin="upper")
        colours = plt.get_cmap(cmap)(image.norm(grid_values))
        for i in range(len(rows)):
            for j in range(len(cols)):
                red, green, blue, _ = colours[i, j]
                light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
                ax.text(j, i, _format_value(grid_values[i, j], fmt), ha="center", va="center",
                        color="black" if light else "white", fontsize=9)
        if highlight is not None and not np.all(np.isnan(grid_values)):
            best = np.nanargmin(grid_values) if highlight == "min" else np.nanargmax(grid_values)
            i, j = np.unravel_index(best, grid_values.shape)
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red",
                                   linewidth=2.5, label=f"best ({highlight})"))
        ax.set_xticks(range(len(cols)), [_tick_label(c) for c in cols])
        ax.set_yticks(range(len(rows)), [_tick_label(r) for r in rows])
        ax.grid(False)
        ax.set_xlabel(col_label)
        ax.set_ylabel(row_label)
        ax.set_title(f"{value_label} by {row_label} and {col_label}" if title is None
                     else title)
        if colorbar:
            ax.figure.colorbar(image, ax=ax, label=value_label)
    return ax


def summary_table(records: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                  *, fmt: str | Mapping[str, str] = ".4g", ax: Axes | None = None,
                  title: str = "Summary") -> Axes:
    """A list of records drawn as a matplotlib table (cells as in :func:`format_table`).

    Parameters
    ----------
    records : sequence of dict
        One dict per row, column name -> value.
    columns : sequence of str, optional
        Which columns, in order (default: every key, in first-seen order).
    fmt : str or mapping of column to str
        Format spec for non-integer numbers, for all columns or per column.
    ax : matplotlib Axes, optional
        Where to draw; a new figure sized to the table when omitted.
    title : str
        Title above the table.

    Returns
    -------
    matplotlib Axes
        With the axis frame hidden; the table is ``ax.tables[0]``.
    """
    columns = _columns(records, columns)
    if not columns:
        raise checks.invalid("columns", "non-empty (records with keys, or columns=)", columns)
    cells = _cells(records, columns, fmt)
    with style():
        ax = _axes(ax, figsize=(max(4.0, 1.3 * len(columns)),
                                0.6 + 0.35 * (len(records) + 1)))
        table = ax.table(cellText=cells or None, colLabels=columns, loc="center",
                         cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(9)
        table.scale(1.0, 1.3)
        for (r, _), cell in table.get_celld().items():
            if r == 0:
                cell.set_text_props(weight="bold")
                cell.set_facecolor("#e8e8e8")
        ax.axis("off")
        ax.set_title(title)
    return ax


def rate_map(rates: np.ndarray, lrs: Sequence[float], momenta: Sequence[float], *,
                  ax: Axes | None = None, optimum: Any = None,
                  marker: tuple[float, float] | None = None,
                  theory: np.ndarray | None = None, colorbar: bool = True,
                  title: str = "Linear convergence rate (smaller is faster)") -> Axes:
    r"""The rate over a (learning rate, momentum) grid; cells that do not converge in grey.

    Colours are spaced evenly in :math:`-\log_{10}(1 - r)`, so that the slow region
    near :math:`r = 1`, where most of the grid lies, is resolved (0.9, 0.99, 0.999 are
    equally far apart); rates of 0.999 and above share the top colour.

    Parameters
    ----------
    rates : array, shape (len(momenta), len(lrs))
        From :func:`rate_map` or :func:`momentum_rate`.
    lrs, momenta : sequence of float
        The grid; the learning-rate axis is logarithmic when ``lrs`` are positive
        and spread over more than a factor of 10.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.
    optimum : coursekit.analysis.dynamics.Optimum, optional
        Marked with a star (anything with ``lr``, ``momentum`` and ``rate``, e.g.
        ``dynamics.heavy_ball_optimum(L, mu)``).
    marker : (lr, momentum), optional
        One more point to mark (the current setting of an explorer).
    theory : array, optional
        Theoretical rates on the same grid, drawn as labelled contour lines.
    colorbar : bool
        Add a colour bar (leave it out when redrawing the same axes, e.g. in an
        explorer, where each call would add another).
    title : str
        Title of the axes.

    Returns
    -------
    matplotlib Axes
    """
    lr_grid, momentum_grid = checks.vector("lrs", lrs), checks.vector("momenta", momenta)
    values = checks.shape("rates", np.asarray(rates, dtype=np.float64),
                          (len(momentum_grid), len(lr_grid)))
    with style():
        if ax is None:
            _, ax = plt.subplots()
        cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
        mesh = ax.pcolormesh(lr_grid, momentum_grid, np.ma.masked_where(~(values < 1), values),
                             cmap=cmap, shading="nearest", norm=_DIGITS_NORM)
        if colorbar:
            bar = ax.figure.colorbar(mesh, ax=ax, label="rate r (grey: no convergence, r >= 1)")
            bar.set_ticks(_RATE_TICKS)
        if theory is not None:
            lines = ax.contour(lr_grid, momentum_grid, np.asarray(theory, dtype=np.float64),
                               levels=[0.5, 0.8, 0.9, 0.95, 0.99], colors="white",
                               linewidths=0.8)
            ax.clabel(lines, fontsize=7, fmt="%.2f")
        if optimum is not None:
            ax.plot(optimum.lr, optimum.momentum, marker="*", markersize=15, color="gold",
                    markeredgecolor="black", linestyle="none",
                    label=f"theory optimum, r = {optimum.rate:.3f}")
        if marker is not None:
            ax.plot(*marker, marker="o", markersize=9, markerfacecolor="none",
                    markeredgecolor="red", markeredgewidth=2, linestyle="none", label="current")
        if lr_grid.min() > 0 and lr_grid.max() > 10 * lr_grid.min():
            ax.set_xscale("log")
        ax.grid(False)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("momentum")
        ax.set_title(title)
        if optimum is not None or marker is not None:
            ax.legend(loc="lower left", frameon=True, framealpha=0.9)
    return ax



def distances(trajectories: Trajectory | Sequence[Trajectory], *, ax: Axes | None = None,
                   rates: Mapping[str, float] | None = None,
                   title: str = "Distance to the minimum") -> Axes:
    r"""Distance to the minimum against step, on a log axis, one line per run.

    A linear rate is a straight line here. ``rates`` adds dashed reference lines
    :math:`d_0 r^k` (e.g. the theoretical rates) from the first run's start. The
    axis stops at 1000 times the largest starting distance, so that a run that
    blows up leaves the plot instead of flattening all the others.
    """
    runs = [trajectories] if isinstance(trajectories, Trajectory) else list(trajectories)
    if not runs:
        raise checks.invalid("trajectories", "at least one Trajectory", trajectories, TypeError)
    for i, run in enumerate(runs):
        checks.instance(f"trajectories[{i}]", run, Trajectory)
    with style():
        if ax is None:
            _, ax = plt.subplots()
        for i, run in enumerate(runs):
            label = run.label + (f" (diverged at step {run.diverged_at})" if run.diverged else "")
            ax.semilogy(run.distances_to_minimum(), color=COLORS[i % len(COLORS)], label=label)
        bottom, top = ax.get_ylim()
        ax.set_ylim(bottom, min(top, 1e3 * max(run.distances_to_minimum()[0] for run in runs)))
        if rates:
            shown = ax.get_ylim()
            d0 = float(runs[0].distances_to_minimum()[0])
            steps = np.arange(max(run.steps for run in runs) + 1)
            for (name, rate), dashes in zip(rates.items(), _DASHES * len(rates), strict=False):
                ax.semilogy(steps, d0 * float(rate) ** steps, linestyle=dashes, color="black",
                            linewidth=1.0, alpha=0.7, label=f"{name}: r = {float(rate):.3f}")
            ax.set_ylim(*shown)
        ax.set_xlabel("step")
        ax.set_ylabel("distance to the minimum")
        ax.set_title(title)
        ax.legend(loc="best")
    return ax


_DASHES = ["--", ":", "-."]



_RATE_TICKS = [0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999]



_DIGITS_NORM = colors.FuncNorm(
    (lambda r: -np.log10(1 - np.minimum(r, 0.999)), lambda d: 1 - 10.0 ** -d), vmin=0.0,
    vmax=0.999)
"""Colours spread evenly in -log10(1 - r), so 0.9, 0.99 and 0.999 are equally far apart."""
