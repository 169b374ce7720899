"""The course's figures, drawn with matplotlib in one consistent style.

Every plotting function here

* draws on ``ax`` when one is given, or on a new figure otherwise;
* returns the ``Axes`` it drew on (the figure is ``ax.figure``), or, for
  :func:`small_multiples`, a dict of them;
* sets a title and axis labels by default (pass your own to override);
* never calls ``plt.show()``: a notebook shows the figure at the end of the cell,
  a script calls ``plt.show()`` or ``ax.figure.savefig(...)`` itself.

The functions::

    trajectories(trajs, landscape)        optimizer paths over contour lines
    schedules({"cosine": lrs, ...})        learning rate against step
    training_curves(losses)                raw loss and its running mean
    band({"Adam": seeds_x_steps, ...})     mean over seeds with a standard-error band
    small_multiples(runs)                  one small panel per run, the others faint behind
    distances(trajs)                       distance to the minimum against step, log scale
    heatmap(table)                         a metric over a hyperparameter grid (pivot_table)
    rate_map(rates, lrs, momenta)          convergence rate over (learning rate, momentum)

One figure style (issue 27):

* **One colour per name, in every figure.** :func:`color` gives the colour of an
  optimizer or schedule from :data:`OPTIMIZER_COLORS` and :data:`SCHEDULE_COLORS`
  (see :func:`color` for how a label is matched to a name); every helper that
  draws named curves colours them with :func:`styles`, so "Adam" is the same red
  in a trajectory plot, a loss curve and a band plot. Several labels of one name
  in one figure ("Adam, lr 0.1", "Adam, lr 0.01") share its colour and differ in
  line style.
* **Legends outside the data**: below the axes by default (``legend="right"``,
  ``"best"`` inside, or ``None`` for none); :func:`legend` does it for your own axes.
* **At most about four curves per axes**: for more, :func:`small_multiples`.
* **Divergence is marked where it happened** (a cross and a note, "diverged at
  step 12"), never a line that leaves the plot.
* **Log scales** with ``log=True``, or ``log="auto"``: logarithmic when the
  values are positive and span more than two decades.

Tables are pandas DataFrames (``sweep`` and ``compare`` return them); the
smoothing of a loss curve is :func:`coursekit.stats.running_mean`.
``with style():`` applies the course style (:data:`STYLE`) to your own figures.
"""

from __future__ import annotations

import math
import re
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors, cycler
from matplotlib.axes import Axes
from matplotlib.font_manager import FontProperties
from matplotlib.legend import Legend
from matplotlib.patches import Rectangle

from coursekit import _checks as checks
from coursekit.landscapes import Landscape, Trajectory, grid
from coursekit.stats import running_mean

__all__ = [
    "COLORS",
    "MAX_CURVES",
    "OPTIMIZER_COLORS",
    "SCHEDULE_COLORS",
    "STYLE",
    "band",
    "color",
    "course_name",
    "distances",
    "heatmap",
    "legend",
    "rate_map",
    "schedules",
    "small_multiples",
    "style",
    "styles",
    "training_curves",
    "trajectories",
]

COLORS: tuple[str, ...] = (
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
    "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
)
"""The line colours of the style's cycle, and the palette for names without a fixed colour."""

OPTIMIZER_COLORS: dict[str, str] = {
    "SGD": "#1f77b4",             # blue
    "SGD + momentum": "#17becf",  # cyan
    "Nesterov": "#393b79",        # navy
    "Adagrad": "#bcbd22",         # olive
    "Adadelta": "#8c6d31",        # ochre
    "RMSprop": "#9467bd",         # purple
    "Adam": "#d62728",            # red
    "AdamW": "#ff7f0e",           # orange
    "AMSGrad": "#e377c2",         # pink
    "NAdam": "#7b4173",           # plum
    "RAdam": "#843c39",           # maroon
    "Adamax": "#e7ba52",          # mustard
    "AdaBelief": "#2ca02c",       # green
    "Lookahead": "#8c564b",       # brown
    "local gains": "#a55194",     # magenta
    "L-BFGS": "#637939",          # moss
    "Newton": "#525252",          # dark grey
    "SGD/SGD": "#6baed6",         # light blue: a hyper-optimizer stack on SGD
    "Adam/SGD": "#ff9896",        # light red: a hyper-optimizer stack on Adam
}
"""The colour of each optimizer of the course, in every figure.

Hyper-optimizer stacks are named bottom/top ("Adam/SGD": Adam whose step size
is learned by SGD), in a light shade of the bottom optimizer's colour.
"""

SCHEDULE_COLORS: dict[str, str] = {
    "constant": "#7f7f7f",
    "step decay": "#1f77b4",
    "multi-step": "#393b79",
    "exponential": "#2ca02c",
    "inverse time": "#637939",
    "inverse sqrt": "#843c39",
    "1/t": "#7b4173",
    "linear decay": "#8c564b",
    "polynomial": "#8c6d31",
    "cosine": "#d62728",
    "cosine restarts": "#e377c2",
    "warm-up": "#bcbd22",
    "warm-up + cosine": "#ff7f0e",
    "one-cycle": "#9467bd",
    "triangular": "#17becf",
    "plateau": "#e7ba52",
}
"""The colour of each learning-rate schedule of the course, in every figure."""

_ALIASES: dict[str, str] = {
    "GD": "SGD",
    "gradient descent": "SGD",
    "heavy ball": "SGD + momentum",
    "SGD+": "SGD + momentum",           # the ECE 60146 homework's name (HW1)
    "SGD with momentum": "SGD + momentum",
    "gradient descent + momentum": "SGD + momentum",
    "GD + momentum": "SGD + momentum",
    "NAG": "Nesterov",
    "LBFGS": "L-BFGS",
    "Newton's method": "Newton",
    "Adam + Lookahead": "Lookahead",
    "step": "step decay",
    "multistep": "multi-step",
    "SGDR": "cosine restarts",
    "cosine warm restarts": "cosine restarts",
    "linear warm-up": "warm-up",
    "warmup": "warm-up",
    "cyclical": "triangular",
    "one cycle": "one-cycle",
    "ReduceLROnPlateau": "plateau",
    "reduce on plateau": "plateau",
}
"""Other spellings of the names above (matched like them, see :func:`color`)."""

MAX_CURVES = 4
"""The most curves one axes should overlay; draw more with :func:`small_multiples`."""

_LINESTYLES = ("-", "--", ":", "-.")
_SPARE = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#e7ba52", "#a55194",
          "#6baed6", "#ff9896", "#525252")  # after COLORS, for unknown names in a crowded figure
# The other runs, faint, behind each panel of small_multiples: grey 0.55 at alpha 0.4
# shows as grey 0.82 on white, and is marked as context (not a curve to follow) by its alpha.
_CONTEXT, _CONTEXT_ALPHA = "0.55", 0.4


def _normalise(name: Any) -> str:
    """Case-folded, ``_`` as space, single spaces, no spaces around ``+`` and ``/``."""
    text = " ".join(str(name).replace("_", " ").split()).casefold()
    return re.sub(r"\s*([+/])\s*", r"\1", text)


_NAMES: dict[str, str] = {_normalise(name): name
                          for name in (*OPTIMIZER_COLORS, *SCHEDULE_COLORS)}
_NAMES.update({_normalise(alias): name for alias, name in _ALIASES.items()})
_LONGEST_FIRST = sorted(_NAMES, key=len, reverse=True)


def course_name(label: Any) -> str | None:
    """The optimizer or schedule a label names (a key of the colour tables), or None.

    See :func:`color` for the rule; ``course_name("Adam, lr 0.1") == "Adam"``.
    """
    text = _normalise(label)
    for key in _LONGEST_FIRST:
        if text == key or (text.startswith(key) and not text[len(key)].isalnum()):
            return _NAMES[key]
    return None


def _fixed(name: str) -> str:
    return OPTIMIZER_COLORS.get(name) or SCHEDULE_COLORS[name]


def color(name: Any) -> str:
    """The colour of an optimizer or schedule name, the same in every course figure.

    A label is matched to a name of :data:`OPTIMIZER_COLORS` or
    :data:`SCHEDULE_COLORS` (or of their aliases: "gradient descent" is SGD,
    "heavy ball" is SGD + momentum, "SGDR" is cosine restarts, ...) after
    normalising it: case does not matter, ``_`` counts as a space, runs of spaces
    as one, and spaces around ``+`` and ``/`` are ignored. A label *starting*
    with a name, followed by anything that is not a letter or digit, is that
    name: "Adam", "adam", "Adam (ours)", "adam_torch", "Adam, lr 0.01" and
    "Adam -> SGD + momentum" are all Adam (red); "Lookahead(Adam)" is Lookahead;
    the longest name wins, so "AdamW" is AdamW and "SGD + momentum, lr 0.1" is
    SGD + momentum. So put the optimizer first in a label.

    Any other label gets a colour of :data:`COLORS` chosen from the label itself
    (a CRC-32 of its normalised text), so it too is the same in every figure;
    :func:`styles` moves it to a free colour when it would collide with another
    curve of the same figure.
    """
    name_of = course_name(name)
    if name_of is not None:
        return _fixed(name_of)
    return COLORS[zlib.crc32(_normalise(name).encode()) % len(COLORS)]


def styles(names: Sequence[Any]) -> dict[Any, dict[str, str]]:
    """Colour and line style for the named curves of one figure: ``{name: {color, linestyle}}``.

    Course names keep their colour (:func:`color`); labels of the same course
    name share it and take the line styles ``-``, ``--``, ``:``, ``-.`` in turn.
    (Should an optimizer and a schedule of the same colour meet in one figure,
    the optimizer keeps it and the schedule moves to a free colour.) The result
    does not depend on the order of the names, except among labels without a
    course name that want the same colour: the first keeps it.
    Other labels get their own colour of :data:`COLORS`, moved to the next
    colour not yet used in the figure when it is taken. Pass every name the
    figure shows (all panels), so that a name has one style across them.
    """
    names = list(dict.fromkeys(names))
    result: dict[Any, dict[str, str]] = {}
    owner: dict[str, str] = {}      # colour -> the name (or label) it stands for
    variants: dict[str, int] = {}   # that name -> labels drawn with it so far

    def take(key: str, wanted: str) -> str:
        if owner.get(wanted, key) != key:
            pool = [c for c in (*COLORS, *_SPARE) if c not in owner]
            if pool:
                start = zlib.crc32(key.encode()) % len(pool)
                wanted = pool[start]
        owner.setdefault(wanted, key)
        return wanted

    known = [(name, course_name(name)) for name in names]
    order = ([item for item in known if item[1] in OPTIMIZER_COLORS]
             + [item for item in known if item[1] in SCHEDULE_COLORS]
             + [item for item in known if item[1] is None])
    for name, name_of in order:
        key = name_of if name_of is not None else _normalise(name)
        hue = take(key, color(name))
        result[name] = {"color": hue,
                        "linestyle": _LINESTYLES[variants.get(key, 0) % len(_LINESTYLES)]}
        variants[key] = variants.get(key, 0) + 1
    return {name: result[name] for name in names}


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


def legend(ax: Axes, where: str | None = "below", **kwargs: Any) -> Legend | None:
    """Place the legend of ``ax`` outside the data: ``"below"`` the axes, to the ``"right"``,
    ``"best"`` inside (matplotlib's choice), or ``None`` for no legend.

    Below, the entries are laid out in as many columns as fit the axes' width.
    The legend stays out of the axes; ``fig.tight_layout()`` and a notebook's
    inline figures (saved with ``bbox_inches="tight"``) make room for it.
    Returns the Legend, or None when there is nothing to show.
    """
    checks.choice("legend", where, ("below", "right", "best", None))
    handles, labels = ax.get_legend_handles_labels()
    if where is None or not handles:
        return None
    if where == "best":
        return ax.legend(loc="best", **kwargs)
    if where == "right":
        return ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), borderaxespad=1.0,
                         **kwargs)
    width_pt = ax.get_position().width * ax.figure.get_figwidth() * 72
    font_pt = FontProperties(size=mpl.rcParams["legend.fontsize"]).get_size_in_points()
    entry_pt = (max(len(label) for label in labels) + 5) * 0.55 * font_pt
    ncols = int(min(len(labels), max(1, width_pt // entry_pt)))
    below_labels = 3.6 if ax.get_xlabel() else 2.2  # clear the tick labels and the x label
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), borderaxespad=below_labels,
                     ncols=ncols, **kwargs)


_legend = legend  # the helpers' parameter ``legend`` shadows the function


def _set_log(ax: Axes, log: bool | str, values: Sequence[np.ndarray]) -> None:
    """Logarithmic y axis when ``log`` is True, or "auto" and the values span decades."""
    checks.choice("log", log, (True, False, "auto"))
    if log == "auto":
        finite = np.concatenate([np.ravel(v)[np.isfinite(np.ravel(v))] for v in values] or [[]])
        log = bool(finite.size and finite.min() > 0 and finite.max() > 100 * finite.min())
    if log:
        ax.set_yscale("log")


def _divergence(y: np.ndarray, top: float | None = None) -> int | None:
    """Where a curve diverges for good: the first index after which every value is
    non-finite (or above ``top``), if its last value is; else None."""
    bad = ~np.isfinite(y)
    if top is not None:
        bad |= np.nan_to_num(y, nan=np.inf) > top
    if not len(y) or not bad[-1]:
        return None
    good = np.flatnonzero(~bad)
    return int(good[-1]) + 1 if len(good) else 0


_NOTE = "coursekit-divergence-note"


def _mark_divergence(ax: Axes, x: float, y: float, color: str, note: str) -> None:
    """A cross at the last point drawn and a note beside it, in the curve's colour
    (placed by :func:`_place_notes` once the axes' limits are final)."""
    ax.plot([x], [y], marker="X", markersize=9, color=color, markeredgecolor="black",
            linestyle="none", zorder=5, label="_nolegend_")
    ax.annotate(note, (x, y), xytext=(6, 6), textcoords="offset points", fontsize=8,
                color=color, zorder=5, gid=_NOTE)


def _place_notes(ax: Axes) -> None:
    """Turn each divergence note towards the middle of the axes, so it stays inside."""
    for text in ax.texts:
        if text.get_gid() != _NOTE:
            continue
        u, v = ax.transAxes.inverted().transform(ax.transData.transform(text.xy))
        right, top = u > 0.6, v > 0.5
        text.set_position((-6 if right else 6, -6 if top else 6))
        text.set_horizontalalignment("right" if right else "left")
        text.set_verticalalignment("top" if top else "bottom")


def trajectories(trajs: Trajectory | Sequence[Trajectory], landscape: Landscape | None = None,
                 *, ax: Axes | None = None, levels: int | Sequence[float] = 30,
                 resolution: int = 200, domain: Any = None, title: str | None = None,
                 legend: str | None = "below") -> Axes:
    """Optimizer paths drawn over the contour lines of their landscape.

    Each trajectory is a line with small markers at its iterates, in the colour
    of its label (:func:`styles`), labelled with ``traj.label`` (plus the step
    where it diverged, if it did). A path that ends outside the plotted domain
    (or diverged) is drawn up to its last point inside, marked there with a cross
    and a note ("leaves the plot at step 7"). The starting points are marked
    with white circles, the documented minima with stars and the saddles with
    crosses; all of them appear in the legend.

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
    legend : {"below", "right", "best", None}
        Where the legend goes (:func:`legend`).

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
        (x_min, x_max), (y_min, y_max) = domain
        line_styles = styles([traj.label for traj in trajs])
        for traj in trajs:
            label = traj.label
            if traj.diverged:
                label += f" (diverged at step {traj.diverged_at})"
            points, look = traj.points, line_styles[traj.label]
            outside = ((points[:, 0] < x_min) | (points[:, 0] > x_max)
                       | (points[:, 1] < y_min) | (points[:, 1] > y_max))
            end = _divergence(np.where(outside, np.nan, 0.0))
            shown = points if end is None else points[:max(end, 1)]
            ax.plot(shown[:, 0], shown[:, 1], marker="o", markersize=2.5, linewidth=1.4,
                    label=label, zorder=3, **look)
            if end is not None:
                _mark_divergence(ax, *shown[-1], look["color"],
                                 f"leaves the plot at step {max(end, 1)}")
            elif traj.diverged:
                _mark_divergence(ax, *shown[-1], look["color"],
                                 f"diverged at step {traj.diverged_at}")
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
        ax.set_xlim(x_min, x_max)
        ax.set_ylim(y_min, y_max)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title(landscape.name if title is None else title)
        _place_notes(ax)
        _legend(ax, legend)
    return ax


def schedules(curves: Mapping[str, Sequence[float] | Callable[[int], float]],
              steps: int | None = None, *, ax: Axes | None = None,
              title: str = "Learning-rate schedules", xlabel: str = "step",
              ylabel: str = "learning rate", log: bool | str = False,
              legend: str | None = "below") -> Axes:
    """Several schedules overlaid: value against step, one labelled line each.

    Parameters
    ----------
    curves : mapping of name to sequence or callable
        A sequence holds the value at steps ``0, 1, ...``; a callable ``f(t)``
        is evaluated at ``t = 0, ..., steps - 1``. Each name has its colour
        (:func:`color`).
    steps : int, optional
        Number of steps for the callables (required when there are any).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.
    title, xlabel, ylabel : str
        Labels.
    log : bool or "auto"
        Logarithmic y axis (``"auto"``: when the values span more than two decades).
    legend : {"below", "right", "best", None}
        Where the legend goes (:func:`legend`).

    Returns
    -------
    matplotlib Axes
    """
    if not isinstance(curves, Mapping) or not curves:
        raise checks.invalid("curves", "a non-empty dict name -> sequence or callable", curves,
                             TypeError)
    steps = checks.optional_integer("steps", steps, minimum=1)
    series = {}
    for name, curve in curves.items():
        if callable(curve):
            if steps is None:
                raise checks.invalid("steps", "given to evaluate the callable "
                                     f"curves[{name!r}]", steps)
            series[name] = checks.series(f"curves[{name!r}]", [curve(t) for t in range(steps)])
        else:
            series[name] = checks.series(f"curves[{name!r}]", curve)
    with style():
        ax = _axes(ax)
        line_styles = styles(list(series))
        for name, values in series.items():
            ax.plot(np.arange(len(values)), values, label=str(name), **line_styles[name])
        _set_log(ax, log, list(series.values()))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        _legend(ax, legend)
    return ax


def training_curves(losses: Sequence[float] | Mapping[str, Sequence[float]], *,
                    window: int = 50, iters_per_epoch: int | None = None,
                    log: bool | str = False, ax: Axes | None = None,
                    title: str = "Training loss", ylabel: str = "loss",
                    legend: str | None = "below") -> Axes:
    """Per-iteration loss, faded, under its running mean.

    A run whose loss becomes non-finite (and stays so: a diverged run) is drawn
    up to its last finite loss and marked there with a cross and a note
    ("diverged at iteration 37").

    Parameters
    ----------
    losses : sequence of float, or mapping of name to sequence
        One run, or several runs to compare (each in its colour, :func:`color`).
    window : int
        Running-mean window in iterations (capped at each run's length).
    iters_per_epoch : int, optional
        When given, the x axis counts epochs: iteration ``i`` (from 1) sits at
        ``i / iters_per_epoch``.
    log : bool or "auto"
        Logarithmic loss axis (``"auto"``: when the losses span more than two decades).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.
    title, ylabel : str
        Labels.
    legend : {"below", "right", "best", None}
        Where the legend goes (:func:`legend`).

    Returns
    -------
    matplotlib Axes
    """
    window = checks.integer("window", window, minimum=1)
    iters_per_epoch = checks.optional_integer("iters_per_epoch", iters_per_epoch, minimum=1)
    runs = dict(losses) if isinstance(losses, Mapping) else {None: losses}
    runs = {name: checks.series("losses" if name is None else f"losses[{name!r}]", values)
            for name, values in runs.items()}
    with style():
        ax = _axes(ax)
        line_styles = ({None: {"color": COLORS[0], "linestyle": "-"}} if None in runs
                       else styles(list(runs)))
        for name, y in runs.items():
            end = _divergence(y)
            y_shown = y if end is None else y[:end]
            x = np.arange(1, len(y_shown) + 1, dtype=np.float64)
            if iters_per_epoch is not None:
                x /= iters_per_epoch
            w = max(1, min(window, len(y_shown)))
            look = line_styles[name]
            ax.plot(x, y_shown, color=look["color"], alpha=0.3, linewidth=0.8,
                    label="raw" if name is None else "_nolegend_")
            mean = running_mean(y_shown, w)
            ax.plot(x, mean, label=f"running mean ({w})" if name is None else str(name), **look)
            if end is not None and len(y_shown):
                where = "iteration" if iters_per_epoch is None else "epoch"
                at = end + 1 if iters_per_epoch is None else f"{(end + 1) / iters_per_epoch:.3g}"
                _mark_divergence(ax, x[-1], mean[-1], look["color"], f"diverged at {where} {at}")
        _set_log(ax, log, list(runs.values()))
        ax.set_xlabel("iteration" if iters_per_epoch is None else "epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        legend_title = None if None in runs else f"running mean of {window}; raw faded"
        _place_notes(ax)
        _legend(ax, legend, title=legend_title)
    return ax


_INTERVALS = {"se": "±1 standard error of the mean", "ci95": "95% confidence interval"}


def _is_dataframe(data: Any) -> bool:
    """True for a pandas DataFrame (without importing pandas when it is not loaded)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(data, pandas.DataFrame)


def _seed_arrays(curves: Any, by: str | None, y: str | None, step: str | None,
                 seed: str | None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | None]]:
    """``{name: seeds x steps}`` and ``{name: x or None}`` from a mapping or a DataFrame."""
    if _is_dataframe(curves):
        for argument, column in (("by", by), ("y", y)):
            if column is None or column not in curves.columns:
                raise checks.invalid(argument, "a column of the DataFrame "
                                     f"({', '.join(map(str, curves.columns))})", column)
        arrays, xs = {}, {}
        for name, group in curves.groupby(by, sort=False):
            if step is None:  # one row per run, y holds its curve
                arrays[name] = _stack(f"curves[{name!r}]", list(group[y]))
                xs[name] = None
            else:             # one row per (run, step): tidy data
                if seed is None:
                    raise checks.invalid("seed", "the column that numbers the seeds, given "
                                         "with step", seed)
                table = group.pivot(index=seed, columns=step, values=y)
                arrays[name] = table.to_numpy(dtype=np.float64)
                xs[name] = table.columns.to_numpy(dtype=np.float64)
        return arrays, xs
    if not isinstance(curves, Mapping) or not curves:
        raise checks.invalid("curves", "a non-empty dict name -> array (seeds x steps), or a "
                             "pandas DataFrame", curves, TypeError)
    arrays = {name: _stack(f"curves[{name!r}]", values) for name, values in curves.items()}
    return arrays, {name: None for name in arrays}


def _stack(name: str, values: Any) -> np.ndarray:
    """A 2-D float array, one row per seed (rows of equal length)."""
    try:
        rows = [np.asarray(row, dtype=np.float64) for row in values]
    except (TypeError, ValueError):
        raise checks.invalid(name, "a 2-D array of numbers, one row per seed", values) from None
    if not rows or any(row.ndim != 1 for row in rows) or len({len(r) for r in rows}) != 1:
        raise checks.invalid(name, "a 2-D array of numbers, one row per seed (rows of one "
                             "length)", values)
    return np.stack(rows)


def _rows(name: str, run: Any) -> np.ndarray:
    """One curve (1-D) or several seeds (2-D) as a 2-D array, one row per seed."""
    try:
        values = np.asarray(run, dtype=np.float64)
    except (TypeError, ValueError):
        return _stack(name, run)
    return _stack(name, values[None] if values.ndim == 1 else values)


def _mean_and_halfwidth(values: np.ndarray, interval: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) and the half-width of the band: one standard error of the
    mean, ``std(ddof=1) / sqrt(n)``, or for "ci95" Student's t quantile times it.
    With one seed the band has zero width."""
    n = values.shape[0]
    mean = values.mean(axis=0)
    if n < 2:
        return mean, np.zeros_like(mean)
    se = values.std(axis=0, ddof=1) / math.sqrt(n)
    if interval == "se":
        return mean, se
    from scipy.stats import t

    return mean, float(t.ppf(0.975, n - 1)) * se


def _draw_band(ax: Axes, values: np.ndarray, x: np.ndarray | None, interval: str,
               look: Mapping[str, str], label: str | None, unit: str) -> int:
    """Mean line and band of one set of seeds, divergence marked; the number of seeds."""
    n, steps = values.shape
    x = np.arange(1, steps + 1, dtype=np.float64) if x is None else x
    finite_columns = np.all(np.isfinite(values), axis=0).astype(np.float64)
    end = _divergence(np.where(finite_columns > 0, 0.0, np.nan))
    kept = steps if end is None else end
    mean, half = _mean_and_halfwidth(values[:, :kept], interval)
    ax.plot(x[:kept], mean, label=label, **look)
    ax.fill_between(x[:kept], mean - half, mean + half, color=look["color"], alpha=0.2,
                    linewidth=0, label="_nolegend_")
    if end is not None and kept:
        failed = int(np.sum(~np.isfinite(values[:, end])))
        _mark_divergence(ax, x[kept - 1], mean[-1], look["color"],
                         f"{failed} of {n} seeds diverged at {unit} {x[end]:g}")
    return n


def band(curves: Any, *, x: Sequence[float] | None = None, interval: str = "se",
         ax: Axes | None = None, log: bool | str = False, xlabel: str = "step",
         ylabel: str = "value", title: str | None = None, legend: str | None = "below",
         by: str | None = None, y: str | None = None, step: str | None = None,
         seed: str | None = None) -> Axes:
    r"""Curves over seeds: the mean of each, with a band of one standard error (or a 95% CI).

    For ``n`` seeds with values :math:`v_1, \dots, v_n` at a step, the line is
    their mean :math:`\bar v` and the band :math:`\bar v \pm s / \sqrt{n}`, where
    :math:`s` is the sample standard deviation (``ddof=1``); with
    ``interval="ci95"`` the band is :math:`\bar v \pm t_{0.975,\,n-1}\, s/\sqrt{n}`,
    a 95% confidence interval for the mean (Student's t). Each legend entry says
    how many seeds it averages. Where a seed's value becomes non-finite (a run
    that diverged), the mean is undefined: the curve stops at the step before and
    is marked there ("1 of 5 seeds diverged at 12").

    Parameters
    ----------
    curves : mapping or pandas DataFrame
        A dict name -> 2-D array (seeds x steps), or a DataFrame, either with one
        row per run whose column ``y`` holds the run's curve (give ``by`` and
        ``y``; the rows of a group are its seeds), or tidy, one row per run and
        step (give ``by``, ``y``, ``step`` and ``seed``). Each name has its colour
        (:func:`color`).
    x : sequence of float, optional
        Positions of the steps (default ``1, 2, ...``, or the ``step`` column).
    interval : {"se", "ci95"}
        One standard error of the mean, or a 95% confidence interval.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.
    log : bool or "auto"
        Logarithmic y axis (``"auto"``: when the values span more than two decades).
    xlabel, ylabel, title : str
        Labels (default title: what the band shows).
    legend : {"below", "right", "best", None}
        Where the legend goes (:func:`legend`).
    by, y, step, seed : str, optional
        Column names, for a DataFrame: the curve's name, its value, the step
        (tidy data only) and the seed (tidy data only).

    Returns
    -------
    matplotlib Axes
    """
    checks.choice("interval", interval, tuple(_INTERVALS))
    arrays, xs = _seed_arrays(curves, by, y, step, seed)
    if x is not None:
        x = checks.vector("x", x)
        for name, values in arrays.items():
            checks.length("x", x, values.shape[1], f"positions, one per step of curves[{name!r}]")
    with style():
        ax = _axes(ax)
        line_styles = styles(list(arrays))
        for name, values in arrays.items():
            n = values.shape[0]
            _draw_band(ax, values, x if x is not None else xs[name], interval,
                       line_styles[name], f"{name} ({n} seed{'s' if n != 1 else ''})", xlabel)
        _set_log(ax, log, list(arrays.values()))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ylabel}: mean over seeds" if title is None else title)
        _place_notes(ax)
        _legend(ax, legend, title=f"band: {_INTERVALS[interval]}")
    return ax


def small_multiples(runs: Mapping[str, Any],
                    draw: Callable[[Axes, str, Any], Any] | None = None, *, ncols: int = 3,
                    panel_size: tuple[float, float] = (3.6, 2.7), sharex: bool = True,
                    sharey: bool = True, context: bool = True,
                    x: Sequence[float] | None = None, interval: str = "se",
                    log: bool | str = False, xlabel: str = "step", ylabel: str = "value",
                    title: str | None = None) -> dict[str, Axes]:
    """One small panel per run, instead of more than :data:`MAX_CURVES` curves on one axes.

    Each panel shows one run in its colour (:func:`color`), titled with its name,
    and, with ``context=True``, every other run faintly in grey behind it, so that
    the panels compare at a glance. The panels share their axes (``sharex``,
    ``sharey``); the x label sits under the bottom row, the y label beside the
    first column.

    Parameters
    ----------
    runs : mapping of name to run
        What each panel shows. Without ``draw``: a 1-D sequence (one curve), or a
        2-D array (seeds x steps), drawn as in :func:`band` (its panel title says
        how many seeds). With ``draw``: anything ``draw`` takes.
    draw : callable, optional
        ``draw(ax, name, run)`` draws one panel (e.g. ``lambda ax, name, traj:
        trajectories(traj, ax=ax, legend=None)``); ``context`` is then up to it.
    ncols : int
        Panels per row.
    panel_size : (width, height)
        Size of one panel in inches.
    sharex, sharey : bool
        Shared axes.
    context : bool
        Draw the other runs in grey behind each panel (default drawing only).
    x : sequence of float, optional
        Positions of the steps (default ``1, 2, ...``).
    interval : {"se", "ci95"}
        The band for 2-D runs (:func:`band`).
    log : bool or "auto"
        Logarithmic y axes (default drawing only).
    xlabel, ylabel : str
        Axis labels.
    title : str, optional
        Title above all the panels.

    Returns
    -------
    dict of name to matplotlib Axes
        The panel of each run (the figure is ``axes[name].figure``).
    """
    if not isinstance(runs, Mapping) or not runs:
        raise checks.invalid("runs", "a non-empty dict name -> run", runs, TypeError)
    ncols = checks.integer("ncols", ncols, minimum=1)
    checks.choice("interval", interval, tuple(_INTERVALS))
    if draw is not None:
        checks.function("draw", draw)
        arrays = {}
    else:
        arrays = {name: _rows(f"runs[{name!r}]", run) for name, run in runs.items()}
    ncols = min(ncols, len(runs))
    nrows = math.ceil(len(runs) / ncols)
    with style():
        fig, grid_axes = plt.subplots(nrows, ncols, squeeze=False, sharex=sharex, sharey=sharey,
                                      figsize=(panel_size[0] * ncols, panel_size[1] * nrows))
        panels = dict(zip(runs, grid_axes.flat, strict=False))
        for ax in grid_axes.flat[len(runs):]:
            ax.remove()
        line_styles = styles(list(runs))
        for name, ax in panels.items():
            look = {**line_styles[name], "linestyle": "-"}
            if draw is not None:
                draw(ax, name, runs[name])
                ax.set_title(str(name), color=look["color"])
                continue
            if context:
                for other, values in arrays.items():
                    if other != name:
                        steps = values.shape[1]
                        positions = np.arange(1, steps + 1) if x is None else np.asarray(x)
                        ax.plot(positions, values.mean(axis=0), color=_CONTEXT,
                                alpha=_CONTEXT_ALPHA, linewidth=1.0, zorder=1,
                                label="_nolegend_")
            values = arrays[name]
            positions = None if x is None else checks.length(
                "x", checks.vector("x", x), values.shape[1], f"positions, one per step of "
                f"runs[{name!r}]")
            n = _draw_band(ax, values, positions, interval, look, str(name), xlabel)
            ax.set_title(str(name) if n == 1 else f"{name} ({n} seeds)", color=look["color"])
            _set_log(ax, log, list(arrays.values()))
        for i, ax in enumerate(panels.values()):
            if i + ncols >= len(panels):  # nothing below it: x label and tick labels
                ax.set_xlabel(xlabel)
                ax.xaxis.set_tick_params(labelbottom=True)
            if i % ncols == 0:
                ax.set_ylabel(ylabel)
        for ax in panels.values():
            _place_notes(ax)
        if title is not None:
            fig.suptitle(title)
        fig.tight_layout()
    return panels


def _tick_label(value: Any) -> str:
    if isinstance(value, Real) and not isinstance(value, bool):
        return f"{float(value):g}"
    return str(value)


def heatmap(values: Any, rows: Sequence[Any] | None = None, cols: Sequence[Any] | None = None,
            *, ax: Axes | None = None, fmt: str | Callable[[float], str] = ".4f",
            row_label: str | None = None, col_label: str | None = None,
            value_label: str = "value", title: str | None = None, cmap: str = "viridis",
            colorbar: bool = True, highlight: str | None = None) -> Axes:
    """A metric over a two-hyperparameter grid, each cell annotated with its value.

    For the beta1 x beta2 table of the ECE 60146 homework report (ECE 60146, 2024),
    from a sweep's DataFrame::

        heatmap(table.pivot_table(index="beta1", columns="beta2", values="final_loss"),
                value_label="final loss", highlight="min")

    (``pivot_table`` averages the repeats), or from an array,
    ``heatmap(final_loss, rows=[0.7, 0.9, 0.99], cols=[0.7, 0.9, 0.99], row_label="beta1",
    col_label="beta2")``.

    Parameters
    ----------
    values : pandas.DataFrame or array-like, shape (len(rows), len(cols))
        ``values[i][j]`` is the metric at ``rows[i]``, ``cols[j]`` (NaN for a gap).
        A DataFrame gives the rows (its index), the columns and their labels (the
        index's and the columns' names) itself.
    rows, cols : sequence, optional
        Hyperparameter values labelling the rows (y axis) and columns (x axis);
        required with an array, not allowed with a DataFrame.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.
    fmt : str or callable
        Format spec for the annotations (``format(v, fmt)``), or a function.
    row_label, col_label, value_label : str, optional
        Axis and colour-bar labels (default: the DataFrame's index and columns
        names, else "row" and "column").
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
    if _is_dataframe(values):
        if rows is not None or cols is not None:
            raise checks.invalid("rows and cols", "omitted with a DataFrame (its index and "
                                 "columns are the rows and columns)", (rows, cols))
        rows, cols = list(values.index), list(values.columns)
        row_label = row_label or values.index.name
        col_label = col_label or values.columns.name
        values = values.to_numpy(dtype=np.float64)
    elif rows is None or cols is None:
        raise checks.invalid("rows and cols", "given with an array of values (or pass a "
                             "DataFrame)", (rows, cols))
    row_label, col_label = str(row_label or "row"), str(col_label or "column")
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
                text = fmt(grid_values[i, j]) if callable(fmt) else format(grid_values[i, j], fmt)
                ax.text(j, i, text, ha="center", va="center",
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
              title: str = "Distance to the minimum", legend: str | None = "below") -> Axes:
    r"""Distance to the minimum against step, on a log axis, one line per run.

    A linear rate is a straight line here. ``rates`` adds dashed reference lines
    :math:`d_0 r^k` (e.g. the theoretical rates) from the first run's start. The
    axis stops at 1000 times the largest starting distance, so that a run that
    blows up does not flatten all the others: such a run, and one that diverged,
    is drawn up to its last point on the plot and marked there with a cross and a
    note ("diverged at step 12").

    Parameters
    ----------
    trajectories : Trajectory or sequence of Trajectory
        Results of :func:`coursekit.landscapes.run`, each in the colour of its label.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.
    rates : mapping of name to float, optional
        Reference rates, drawn as dashed black lines.
    title : str
        Title of the axes.
    legend : {"below", "right", "best", None}
        Where the legend goes (:func:`legend`).

    Returns
    -------
    matplotlib Axes
    """
    runs = [trajectories] if isinstance(trajectories, Trajectory) else list(trajectories)
    if not runs:
        raise checks.invalid("trajectories", "at least one Trajectory", trajectories, TypeError)
    for i, run in enumerate(runs):
        checks.instance(f"trajectories[{i}]", run, Trajectory)
    top = 1e3 * max(float(run.distances_to_minimum()[0]) for run in runs)
    with style():
        ax = _axes(ax)
        line_styles = styles([run.label for run in runs])
        for run in runs:
            d = run.distances_to_minimum()
            label = run.label + (f" (diverged at step {run.diverged_at})" if run.diverged else "")
            end = _divergence(d, top)
            shown = d if end is None else d[:max(end, 1)]
            look = line_styles[run.label]
            ax.semilogy(np.arange(len(shown)), shown, label=label, **look)
            if end is not None:
                _mark_divergence(ax, len(shown) - 1, shown[-1], look["color"],
                                 f"leaves the plot at step {max(end, 1)}")
            elif run.diverged:
                _mark_divergence(ax, len(shown) - 1, shown[-1], look["color"],
                                 f"diverged at step {run.diverged_at}")
        bottom, high = ax.get_ylim()
        ax.set_ylim(bottom, min(high, top))
        if rates:
            shown_limits = ax.get_ylim()
            d0 = float(runs[0].distances_to_minimum()[0])
            steps = np.arange(max(run.steps for run in runs) + 1)
            for (name, rate), dashes in zip(rates.items(), _DASHES * len(rates), strict=False):
                ax.semilogy(steps, d0 * float(rate) ** steps, linestyle=dashes, color="black",
                            linewidth=1.0, alpha=0.7, label=f"{name}: r = {float(rate):.3f}")
            ax.set_ylim(*shown_limits)
        ax.set_xlabel("step")
        ax.set_ylabel("distance to the minimum")
        ax.set_title(title)
        _place_notes(ax)
        _legend(ax, legend)
    return ax


_DASHES = ["--", ":", "-."]



_RATE_TICKS = [0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999]



_DIGITS_NORM = colors.FuncNorm(
    (lambda r: -np.log10(1 - np.minimum(r, 0.999)), lambda d: 1 - 10.0 ** -d), vmin=0.0,
    vmax=0.999)
"""Colours spread evenly in -log10(1 - r), so 0.9, 0.99 and 0.999 are equally far apart."""
