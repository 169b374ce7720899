"""Tests for coursekit.viz.plot, run headless: what each figure labels and draws."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from coursekit.landscapes import Himmelblau, Quadratic, Rosenbrock, Saddle, run
from coursekit.stats import running_mean
from coursekit.viz import plot

matplotlib.use("Agg")

# The Adam grid of the ECE 60146 homework report (batch size 8): final loss per (beta1, beta2).
REPORT_FINAL_LOSS = {
    (0.70, 0.70): 0.0862, (0.70, 0.90): 0.0935, (0.70, 0.99): 0.1007,
    (0.90, 0.70): 0.0936, (0.90, 0.90): 0.2030, (0.90, 0.99): 0.2027,
    (0.99, 0.70): 0.2020, (0.99, 0.90): 0.1902, (0.99, 0.99): 0.2147,
}


@pytest.fixture(autouse=True)
def _headless(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("plotting helpers must not call show()")

    monkeypatch.setattr(plt, "show", refuse)
    monkeypatch.setattr(Figure, "show", refuse)
    yield
    plt.close("all")


def _legend_texts(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def _line(ax, label: str):
    (line,) = [line for line in ax.get_lines() if line.get_label() == label]
    return line


def _naive_running_mean(x, window):
    return np.array([np.mean(x[max(0, i - window + 1): i + 1]) for i in range(len(x))])


@pytest.mark.parametrize("n", [0, 1, 6, 257])
@pytest.mark.parametrize("window", [1, 2, 7, 50, 1000])
def test_running_mean_matches_a_naive_loop(n, window):
    x = np.random.default_rng(n + window).normal(3.0, 2.0, n)
    result = running_mean(x, window)
    assert result.shape == (n,)
    np.testing.assert_allclose(result, _naive_running_mean(x, window), rtol=1e-13, atol=1e-13)


def test_running_mean_nan_spoils_only_the_windows_that_contain_it():
    x = np.arange(30, dtype=np.float64)
    x[10] = np.nan
    result = running_mean(x, 5)
    assert np.all(np.isnan(result[10:15]))
    keep = np.r_[0:10, 15:30]
    np.testing.assert_allclose(result[keep], _naive_running_mean(x, 5)[keep], rtol=1e-15)


@pytest.mark.parametrize("window", [0, -3, 2.5, True])
def test_running_mean_rejects_bad_window(window):
    with pytest.raises(ValueError, match="window"):
        running_mean([1.0, 2.0], window)


def _himmelblau_runs():
    fn = Himmelblau()
    return fn, [
        run(lambda p: torch.optim.SGD(p, lr=0.01), fn, start=(0.0, 0.0), steps=40, label="GD"),
        run(lambda p: torch.optim.Adam(p, lr=0.1), fn, start=(0.0, 0.0), steps=40, label="Adam"),
        run(lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9), fn, start=(-1.0, 0.5),
            steps=40, label="momentum"),
    ]


def test_trajectories_draw_each_path_with_start_minima_saddles_and_legend():
    fn, trajs = _himmelblau_runs()
    ax = plot.trajectories(trajs, fn)
    assert ax.get_title() == fn.name
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x", "y")
    assert _legend_texts(ax) == ["GD", "Adam", "momentum", "start", "minima", "saddles"]
    for traj in trajs:
        line = _line(ax, traj.label)
        np.testing.assert_array_equal(line.get_xdata(), traj.points[:, 0])
        np.testing.assert_array_equal(line.get_ydata(), traj.points[:, 1])
    starts = _line(ax, "start")
    assert sorted(zip(starts.get_xdata(), starts.get_ydata(), strict=True)) == [(-1.0, 0.5),
                                                                              (0.0, 0.0)]
    minima = _line(ax, "minima")
    assert list(zip(minima.get_xdata(), minima.get_ydata(), strict=True)) == list(fn.minima)
    saddles = _line(ax, "saddles")
    assert list(zip(saddles.get_xdata(), saddles.get_ydata(), strict=True)) == list(fn.saddles)
    assert ax.get_xlim() == fn.domain[0] and ax.get_ylim() == fn.domain[1]
    assert any(isinstance(child, ContourSet) for child in ax.get_children())


def test_trajectories_contour_levels_are_geometric_above_the_minimum_when_bounded_below():
    fn = Rosenbrock()
    ax = plot.trajectories([run(lambda p: torch.optim.SGD(p, lr=1e-3), fn, steps=5)], levels=12)
    (contours,) = [c for c in ax.get_children() if isinstance(c, ContourSet)]
    gaps = np.diff(np.log(np.asarray(contours.levels) - fn.min_value))
    assert len(contours.levels) == 12
    np.testing.assert_allclose(gaps, gaps[0], rtol=1e-9)


def test_trajectories_on_a_saddle_use_linear_levels_and_mark_no_minimum():
    fn = Saddle()
    ax = plot.trajectories(run(lambda p: torch.optim.SGD(p, lr=0.1), fn, steps=20), levels=9,
                           title="escape")
    (contours,) = [c for c in ax.get_children() if isinstance(c, ContourSet)]
    gaps = np.diff(contours.levels)
    np.testing.assert_allclose(gaps, gaps[0], rtol=1e-9)
    assert ax.get_title() == "escape"
    assert _legend_texts(ax) == ["SGD", "start", "saddle"]


def test_trajectories_label_a_diverged_run_with_its_step():
    fn = Quadratic(condition_number=10.0)
    traj = run(lambda p: torch.optim.SGD(p, lr=0.5), fn, steps=1000, label="too fast")
    assert traj.diverged
    ax = plot.trajectories([traj])
    assert _legend_texts(ax)[0] == f"too fast (diverged at step {traj.diverged_at})"


def test_helpers_draw_on_the_given_axes_without_a_new_figure():
    _, trajs = _himmelblau_runs()
    fig, axes = plt.subplots(1, 4)
    before = plt.get_fignums()
    assert plot.trajectories(trajs, ax=axes[0]) is axes[0]
    assert plot.schedules({"const": [0.1] * 5}, ax=axes[1]) is axes[1]
    assert plot.training_curves([1.0, 0.5, 0.2], ax=axes[2]) is axes[2]
    assert plot.heatmap([[1.0]], [0.9], [0.999], ax=axes[3]) is axes[3]
    assert plt.get_fignums() == before
    with pytest.raises(TypeError, match="ax"):
        plot.schedules({"const": [0.1]}, ax=fig)


def test_schedules_overlay_sequences_and_callables():
    def cosine(t):
        return 0.05 * (1 + math.cos(math.pi * t / 80))

    step = [0.1 * 0.5 ** (t // 30) for t in range(100)]
    ax = plot.schedules({"step": step, "cosine": cosine}, steps=80)
    assert len(ax.get_lines()) == 2
    assert _legend_texts(ax) == ["step", "cosine"]
    np.testing.assert_array_equal(_line(ax, "step").get_ydata(), step)
    np.testing.assert_array_equal(_line(ax, "cosine").get_ydata(), [cosine(t) for t in range(80)])
    np.testing.assert_array_equal(_line(ax, "cosine").get_xdata(), np.arange(80))
    assert ax.get_title() == "Learning-rate schedules"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("step", "learning rate")
    assert ax.get_yscale() == "linear"
    assert plot.schedules({"step": step}, log=True).get_yscale() == "log"


def test_schedules_reject_callables_without_steps_and_non_dicts():
    with pytest.raises(ValueError, match="steps"):
        plot.schedules({"f": lambda t: 0.1})
    with pytest.raises(TypeError, match="curves"):
        plot.schedules([0.1, 0.2])


def test_training_curves_plot_raw_loss_and_its_running_mean():
    losses = np.random.default_rng(0).exponential(1.0, 120)
    ax = plot.training_curves(losses, window=10)
    raw, mean = _line(ax, "raw"), _line(ax, "running mean (10)")
    np.testing.assert_array_equal(raw.get_ydata(), losses)
    np.testing.assert_allclose(mean.get_ydata(), _naive_running_mean(losses, 10), rtol=1e-13)
    np.testing.assert_array_equal(raw.get_xdata(), np.arange(1, 121))
    assert raw.get_alpha() < 1 and raw.get_color() == mean.get_color()
    assert ax.get_title() == "Training loss"
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_yscale()) == ("iteration", "loss", "linear")


def test_training_curves_epoch_axis_log_scale_and_several_runs():
    rng = np.random.default_rng(1)
    runs = {"adam": rng.exponential(1.0, 60), "sgd": rng.exponential(2.0, 45)}
    ax = plot.training_curves(runs, window=100, iters_per_epoch=15, log=True)
    assert len(ax.get_lines()) == 4
    assert _legend_texts(ax) == ["adam", "sgd"]
    assert ax.get_xlabel() == "epoch" and ax.get_yscale() == "log"
    sgd = _line(ax, "sgd")
    np.testing.assert_allclose(sgd.get_xdata(), np.arange(1, 46) / 15)
    np.testing.assert_allclose(sgd.get_ydata(), _naive_running_mean(runs["sgd"], 45), rtol=1e-13)
    with pytest.raises(ValueError, match="iters_per_epoch"):
        plot.training_curves([1.0], iters_per_epoch=0)


def test_lines_are_coloured_by_name_not_by_position():
    names = ["cosine", "Adam", "something else"]
    first = plot.schedules({name: [1.0, 0.5] for name in names})
    second = plot.schedules({name: [1.0, 0.5] for name in reversed(names)})
    for name in names:
        assert _line(first, name).get_color() == _line(second, name).get_color()
    assert _line(first, "Adam").get_color() == plot.OPTIMIZER_COLORS["Adam"]
    # cosine has Adam's red among the schedules: next to Adam it moves, Adam keeps it
    assert plot.SCHEDULE_COLORS["cosine"] == plot.OPTIMIZER_COLORS["Adam"]
    assert _line(first, "cosine").get_color() != plot.OPTIMIZER_COLORS["Adam"]
    alone = plot.schedules({"cosine": [1.0, 0.5], "something else": [1.0, 0.5]})
    assert _line(alone, "cosine").get_color() == plot.SCHEDULE_COLORS["cosine"]


def _report_grid():
    betas = [0.70, 0.90, 0.99]
    return betas, betas, np.array([[REPORT_FINAL_LOSS[b1, b2] for b2 in betas] for b1 in betas])


def test_heatmap_annotates_every_cell_with_its_formatted_value():
    rows, cols, values = _report_grid()
    ax = plot.heatmap(values, rows, cols, row_label="beta1", col_label="beta2",
                      value_label="final loss", fmt=".3f")
    assert [t.get_text() for t in ax.texts] == [f"{v:.3f}" for v in values.ravel()]
    positions = [t.get_position() for t in ax.texts]
    assert positions == [(j, i) for i in range(3) for j in range(3)]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.7", "0.9", "0.99"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.7", "0.9", "0.99"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("beta2", "beta1")
    assert ax.get_title() == "final loss by beta1 and beta2"
    colorbar = ax.images[0].colorbar
    assert colorbar is not None and colorbar.ax.get_ylabel() == "final loss"


def test_heatmap_highlights_the_best_cell():
    rows, cols, values = _report_grid()
    best = min(REPORT_FINAL_LOSS, key=REPORT_FINAL_LOSS.get)
    worst = max(REPORT_FINAL_LOSS, key=REPORT_FINAL_LOSS.get)
    for mode, (b1, b2) in (("min", best), ("max", worst)):
        ax = plot.heatmap(values, rows, cols, highlight=mode, colorbar=False)
        (box,) = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert box.get_xy() == (cols.index(b2) - 0.5, rows.index(b1) - 0.5)
        assert ax.images[0].colorbar is None
    assert not plot.heatmap(values, rows, cols).patches


def test_heatmap_callable_format_and_bad_shapes():
    ax = plot.heatmap([[1.0, np.nan]], ["a"], ["x", "y"], fmt=lambda v: f"<{v:g}>")
    assert [t.get_text() for t in ax.texts] == ["<1>", "<nan>"]
    with pytest.raises(ValueError, match="values"):
        plot.heatmap(np.zeros((2, 3)), [1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="highlight"):
        plot.heatmap([[1.0]], [1], [1], highlight="best")


def test_heatmap_of_a_pivot_table_takes_its_rows_columns_and_names():
    records = [{"beta1": b1, "beta2": b2, "final": v}
               for (b1, b2), v in reversed(REPORT_FINAL_LOSS.items())]
    table = pd.DataFrame(records).pivot_table(index="beta1", columns="beta2", values="final")
    rows, cols, values = _report_grid()
    from_frame = plot.heatmap(table, fmt=".3f", value_label="final loss")
    from_array = plot.heatmap(values, rows, cols, fmt=".3f", row_label="beta1",
                              col_label="beta2", value_label="final loss")
    for read in (lambda ax: [t.get_text() for t in ax.texts],
                 lambda ax: [t.get_text() for t in ax.get_xticklabels()],
                 lambda ax: [t.get_text() for t in ax.get_yticklabels()],
                 lambda ax: (ax.get_xlabel(), ax.get_ylabel(), ax.get_title())):
        assert read(from_frame) == read(from_array)
    with pytest.raises(ValueError, match="rows and cols"):
        plot.heatmap(table, rows, cols)
    with pytest.raises(ValueError, match="rows and cols"):
        plot.heatmap(values)



def _lines_of(ax, label):
    return [line for line in ax.get_lines() if line.get_label().startswith(label)]


def _colliding_label(colour: str) -> str:
    """A label without a course name whose own colour (before collisions) is ``colour``,
    if the palette of such labels has it; else any such label."""
    labels = [f"run {i}" for i in range(1000)]
    assert all(plot.course_name(label) is None for label in labels)
    return next((label for label in labels if plot.color(label) == colour), labels[0])


@pytest.mark.parametrize("name", ["Adam", "SGD + momentum", "L-BFGS", "cosine"])
def test_a_name_has_the_same_colour_in_every_figure_the_helpers_draw(name):
    expected = {**plot.OPTIMIZER_COLORS, **plot.SCHEDULE_COLORS}[name]
    rival = _colliding_label(expected)          # wants the same colour, must give way
    fn = Quadratic(condition_number=4.0)
    runs = [run(lambda p: torch.optim.SGD(p, lr=0.1), fn, steps=10, label=label)
            for label in (rival, name, "AdaBelief")]
    seeds = np.random.default_rng(0).normal(size=(3, 12))
    curves = {rival: seeds, name: seeds + 1.0, "AdaBelief": seeds - 1.0}
    drawn = {
        "trajectories": _lines_of(plot.trajectories(runs), name),
        "distances": _lines_of(plot.distances(runs), name),
        "training_curves": _lines_of(plot.training_curves(
            {label: seeds[0] ** 2 for label in curves}, window=3), name),
        "schedules": _lines_of(plot.schedules({label: seeds[0] for label in curves}), name),
        "band": _lines_of(plot.band(curves), name),
        "small_multiples": [line for line in plot.small_multiples(curves)[name].get_lines()
                            if line.get_color() != plot._CONTEXT],
    }
    for helper, lines in drawn.items():
        assert lines, f"{helper} drew no line labelled {name!r}"
        assert {line.get_color() for line in lines} == {expected}, helper
    assert plot.color(name) == expected
    assert {line.get_color() for line in _lines_of(plot.band(curves), rival)} != {expected}
    assert plot.color(rival) == expected or expected not in plot.COLORS


@pytest.mark.parametrize(("label", "name"), [
    ("Adam", "Adam"), ("adam", "Adam"), ("Adam (ours)", "Adam"), ("adam_torch", "Adam"),
    ("Adam, lr 0.01", "Adam"), ("  ADAM  ", "Adam"), ("AdamW", "AdamW"), ("NAdam", "NAdam"),
    ("Lookahead(Adam)", "Lookahead"), ("SGD+momentum", "SGD + momentum"),
    ("SGD+", "SGD + momentum"), ("SGD+ (mu 0.9)", "SGD + momentum"), ("SGD", "SGD"),
    ("sgd + momentum, lr 0.1", "SGD + momentum"), ("heavy ball", "SGD + momentum"),
    ("gradient descent, best lr", "SGD"), ("L-BFGS, batch 128", "L-BFGS"),
    ("Adam / SGD(0.01)", "Adam/SGD"), ("SGDR (T_0 = 20)", "cosine restarts"),
    ("Adamant", None), ("sgdx", None), ("lr = 0.1", None),
])
def test_labels_are_matched_to_course_names(label, name):
    assert plot.course_name(label) == name
    if name is not None:
        assert plot.color(label) == {**plot.OPTIMIZER_COLORS, **plot.SCHEDULE_COLORS}[name]


def test_course_colours_are_distinct_within_each_table():
    for table in (plot.OPTIMIZER_COLORS, plot.SCHEDULE_COLORS):
        rgb = [matplotlib.colors.to_hex(c) for c in table.values()]
        assert len(set(rgb)) == len(rgb)


def test_unknown_labels_get_distinct_stable_colours_and_variants_get_line_styles():
    labels = [f"lr = {lr}" for lr in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)]
    looks = plot.styles(labels)
    assert len({look["color"] for look in looks.values()}) == len(labels)
    assert plot.styles(list(reversed(labels))) == looks or all(
        plot.styles([label])[label]["color"] == plot.color(label) for label in labels)
    variants = plot.styles(["Adam, lr 0.1", "Adam, lr 0.01", "SGD", "Adam (ours)"])
    assert {variants[k]["color"] for k in ("Adam, lr 0.1", "Adam, lr 0.01", "Adam (ours)")} == {
        plot.OPTIMIZER_COLORS["Adam"]}
    assert [variants[k]["linestyle"] for k in ("Adam, lr 0.1", "Adam, lr 0.01",
                                               "Adam (ours)")] == ["-", "--", ":"]


@pytest.mark.parametrize("where", ["below", "right"])
def test_legends_sit_outside_the_data(where):
    ax = plot.training_curves({"Adam": np.linspace(2, 1, 30), "SGD": np.linspace(3, 1, 30)},
                              window=5, legend=where)
    ax.figure.canvas.draw()
    box, frame = ax.get_legend().get_window_extent(), ax.get_window_extent()
    if where == "below":
        assert box.y1 <= frame.y0
    else:
        assert box.x0 >= frame.x1
    assert plot.schedules({"cosine": [1.0, 0.5]}, legend=None).get_legend() is None


def test_log_auto_follows_the_span_of_the_values():
    assert plot.schedules({"a": [1.0, 1e-3]}, log="auto").get_yscale() == "log"
    assert plot.schedules({"a": [1.0, 0.5]}, log="auto").get_yscale() == "linear"
    assert plot.schedules({"a": [1.0, -1e-3]}, log="auto").get_yscale() == "linear"
    with pytest.raises(ValueError, match="log"):
        plot.schedules({"a": [1.0]}, log="yes")


def _notes(ax):
    return [text.get_text() for text in ax.texts]


def _crosses(ax):
    return [line for line in ax.get_lines() if line.get_marker() == "X"]


def test_training_curves_mark_a_diverged_run_where_it_diverged():
    loss = np.exp(np.linspace(0.0, 4.0, 40))
    loss[25:] = np.nan                                   # diverged at iteration 26
    ax = plot.training_curves({"SGD, lr 10": loss, "Adam": np.linspace(1, 0.1, 40)}, window=4)
    line = _line(ax, "SGD, lr 10")
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, 26))
    np.testing.assert_allclose(line.get_ydata(), _naive_running_mean(loss[:25], 4), rtol=1e-13)
    (cross,) = _crosses(ax)
    assert (cross.get_xdata()[0], cross.get_ydata()[0]) == (25, line.get_ydata()[-1])
    assert _notes(ax) == ["diverged at iteration 26"]
    assert cross.get_color() == line.get_color()


def test_distances_cut_a_run_that_leaves_the_plot_and_mark_it():
    fn = Quadratic(condition_number=10.0)
    blown = run(lambda p: torch.optim.SGD(p, lr=0.5), fn, steps=1000, label="too fast")
    calm = run(lambda p: torch.optim.SGD(p, lr=0.05), fn, steps=50, label="calm")
    ax = plot.distances([blown, calm])
    top = 1e3 * max(blown.distances_to_minimum()[0], calm.distances_to_minimum()[0])
    d = blown.distances_to_minimum()
    first_out = int(np.argmax(d > top))
    assert np.all(d[first_out:] > top) and np.all(d[:first_out] <= top)
    line = _line(ax, f"too fast (diverged at step {blown.diverged_at})")
    np.testing.assert_array_equal(line.get_ydata(), d[:first_out])
    assert _notes(ax) == [f"leaves the plot at step {first_out}"]
    assert len(_crosses(ax)) == 1


def test_trajectories_stop_a_path_where_it_leaves_the_plot():
    fn = Quadratic(condition_number=10.0)
    traj = run(lambda p: torch.optim.SGD(p, lr=0.21), fn, steps=60, label="lr 0.21")
    (x_min, x_max), (y_min, y_max) = fn.domain
    inside = ((traj.points[:, 0] >= x_min) & (traj.points[:, 0] <= x_max)
              & (traj.points[:, 1] >= y_min) & (traj.points[:, 1] <= y_max))
    last_inside = int(np.flatnonzero(inside)[-1])
    assert last_inside < traj.steps                     # the run does end outside
    ax = plot.trajectories(traj)
    np.testing.assert_array_equal(_line(ax, "lr 0.21").get_xdata(),
                                  traj.points[: last_inside + 1, 0])
    assert _notes(ax) == [f"leaves the plot at step {last_inside + 1}"]


def _band_edges(ax):
    """The lower and upper edge of the (single) band, at each x."""
    (poly,) = ax.collections
    vertices = poly.get_paths()[0].vertices
    xs = np.unique(vertices[:, 0])
    low = np.array([vertices[vertices[:, 0] == x, 1].min() for x in xs])
    high = np.array([vertices[vertices[:, 0] == x, 1].max() for x in xs])
    return xs, low, high


@pytest.mark.parametrize("n_seeds", [2, 5, 9])
def test_band_is_the_mean_with_one_standard_error(n_seeds):
    values = np.random.default_rng(n_seeds).normal(2.0, 1.5, size=(n_seeds, 15)).cumsum(axis=1)
    ax = plot.band({"Adam": values}, ylabel="loss")
    line = _line(ax, f"Adam ({n_seeds} seeds)")
    mean = values.sum(axis=0) / n_seeds
    se = np.sqrt(((values - mean) ** 2).sum(axis=0) / (n_seeds - 1) / n_seeds)
    np.testing.assert_allclose(line.get_ydata(), mean, rtol=1e-12)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, 16))
    xs, low, high = _band_edges(ax)
    np.testing.assert_array_equal(xs, np.arange(1, 16))
    np.testing.assert_allclose(low, mean - se, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(high, mean + se, rtol=1e-10, atol=1e-12)
    assert line.get_color() == plot.OPTIMIZER_COLORS["Adam"]
    assert "standard error" in ax.get_legend().get_title().get_text()


def test_band_95_percent_interval_uses_students_t():
    stats = pytest.importorskip("scipy.stats")
    values = np.random.default_rng(3).normal(size=(4, 6))
    ax = plot.band({"SGD": values}, interval="ci95", x=[10, 20, 30, 40, 50, 60])
    half = stats.t.ppf(0.975, 3) * values.std(axis=0, ddof=1) / 2.0
    xs, low, high = _band_edges(ax)
    np.testing.assert_array_equal(xs, [10, 20, 30, 40, 50, 60])
    np.testing.assert_allclose(high - low, 2 * half, rtol=1e-10)
    # the interval contains the mean of the same number of fresh draws about 95% of the time
    assert "95%" in ax.get_legend().get_title().get_text()


def test_band_stops_where_a_seed_diverged_and_says_how_many():
    values = np.random.default_rng(4).normal(size=(4, 20))
    values[1, 12:] = np.inf
    ax = plot.band({"RMSprop": values})
    line = _line(ax, "RMSprop (4 seeds)")
    np.testing.assert_allclose(line.get_ydata(), values[:, :12].mean(axis=0), rtol=1e-12)
    assert _notes(ax) == ["1 of 4 seeds diverged at step 13"]


def test_band_rejects_what_is_not_seeds_by_steps():
    with pytest.raises(ValueError, match=r"curves\['a'\]"):
        plot.band({"a": [[1.0, 2.0], [1.0]]})
    with pytest.raises(TypeError, match="curves"):
        plot.band([[1.0, 2.0]])
    with pytest.raises(ValueError, match="interval"):
        plot.band({"a": [[1.0]]}, interval="sd")
    with pytest.raises(ValueError, match="x"):
        plot.band({"a": [[1.0, 2.0]]}, x=[1.0])


def test_band_takes_a_dataframe_tidy_or_one_row_per_run():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(5)
    curves = {"Adam": rng.normal(size=(3, 8)), "SGD": rng.normal(size=(5, 8))}
    tidy = pd.DataFrame([{"optimizer": name, "seed": s, "epoch": e + 1, "acc": values[s, e]}
                         for name, values in curves.items() for s in range(len(values))
                         for e in range(8)])
    per_run = pd.DataFrame([{"optimizer": name, "seed": s, "acc": list(values[s])}
                            for name, values in curves.items() for s in range(len(values))])
    expected = plot.band(curves)
    for ax in (plot.band(tidy, by="optimizer", y="acc", step="epoch", seed="seed"),
               plot.band(per_run, by="optimizer", y="acc")):
        for name, values in curves.items():
            label = f"{name} ({len(values)} seeds)"
            np.testing.assert_allclose(_line(ax, label).get_ydata(),
                                       _line(expected, label).get_ydata(), rtol=1e-12)
    with pytest.raises(ValueError, match="by"):
        plot.band(tidy, y="acc")
    with pytest.raises(ValueError, match="seed"):
        plot.band(tidy, by="optimizer", y="acc", step="epoch")


def test_small_multiples_give_each_run_a_panel_with_the_others_faint_behind():
    rng = np.random.default_rng(6)
    runs = {name: rng.normal(size=(3, 10)).cumsum(axis=1)
            for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad")}
    panels = plot.small_multiples(runs, ncols=2, title="five optimizers")
    assert list(panels) == list(runs)
    fig = panels["SGD"].figure
    assert len(fig.axes) == len(runs) and fig.get_suptitle() == "five optimizers"
    for name, ax in panels.items():
        own = [line for line in ax.get_lines() if line.get_color() != plot._CONTEXT]
        context = [line for line in ax.get_lines() if line.get_color() == plot._CONTEXT]
        assert [line.get_color() for line in own] == [plot.OPTIMIZER_COLORS[name]]
        np.testing.assert_allclose(own[0].get_ydata(), runs[name].mean(axis=0), rtol=1e-12)
        assert len(context) == len(runs) - 1
        assert ax.get_title() == f"{name} (3 seeds)"
    assert panels["RMSprop"].get_xlabel() == "step"     # nothing below it
    assert panels["SGD"].get_xlabel() == "" and panels["AdamW"].get_ylabel() == "value"


def test_small_multiples_with_a_drawing_function():
    fn = Quadratic(condition_number=4.0)
    runs = {f"lr {lr}": run(lambda p, lr=lr: torch.optim.SGD(p, lr=lr), fn, steps=5)
            for lr in (0.1, 0.2)}
    seen = []
    panels = plot.small_multiples(runs, lambda ax, name, traj: seen.append((ax, name, traj)))
    assert [(ax, name, traj) for ax, name, traj in seen] == [
        (panels[name], name, traj) for name, traj in runs.items()]
    with pytest.raises(TypeError, match="draw"):
        plot.small_multiples(runs, draw="trajectories")
