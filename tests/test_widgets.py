"""coursekit.viz.widgets.explore: controls, redraws, the static image, the headless fallback."""

from __future__ import annotations

import base64
import io

import ipywidgets as w
import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from coursekit.viz.widgets import explore


def _line_drawer(calls: list):
    def draw(ax, slope, intercept=0.0, kind="line", grid=True):
        calls.append(dict(slope=slope, intercept=intercept, kind=kind, grid=grid))
        x = np.arange(5.0)
        ax.plot(x, slope * x + intercept, label=kind)
        ax.set_title(f"slope {slope}")
    return draw


def test_without_a_front_end_it_draws_once_with_the_defaults():
    calls = []
    fig = explore(_line_drawer(calls), slope=(0.0, 2.0, 0.1, 0.5), kind=["line", "dots"],
                  grid=False)
    assert isinstance(fig, Figure)
    assert calls == [dict(slope=0.5, intercept=0.0, kind="line", grid=False)]
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_allclose(line.get_ydata(), 0.5 * np.arange(5.0))
    assert fig.explorer.redraws == 1


def test_controls_map_to_the_right_widgets():
    box = explore(_line_drawer([]), interactive=True, slope=("log", 1e-3, 1.0, 0.1),
                  intercept=(0, 10, 1, 3), kind=["line", "dots"], grid=True)
    controls = box.explorer.controls
    assert isinstance(box, w.VBox) and box.children[-1] is box.explorer.image
    assert isinstance(box.explorer.image, w.Image) and box.explorer.image.format == "png"
    assert isinstance(controls["slope"], w.FloatLogSlider)
    assert controls["slope"].min == pytest.approx(-3) and controls["slope"].max == pytest.approx(0)
    assert isinstance(controls["intercept"], w.IntSlider) and controls["intercept"].value == 3
    assert isinstance(controls["kind"], w.Dropdown) and controls["kind"].value == "line"
    assert isinstance(controls["grid"], w.Checkbox) and controls["grid"].value is True


def test_moving_a_slider_redraws_with_the_new_value():
    calls = []
    box = explore(_line_drawer(calls), interactive=True, slope=(0.0, 2.0, 0.1, 0.5))
    explorer = box.explorer
    explorer.controls["slope"].value = 1.5           # what dragging the slider does
    assert [c["slope"] for c in calls] == [0.5, 1.5]
    (line,) = explorer.figure.axes[0].get_lines()    # the old line was cleared
    np.testing.assert_allclose(line.get_ydata(), 1.5 * np.arange(5.0))
    assert explorer.figure.axes[0].get_title() == "slope 1.5"


def test_update_sets_controls_and_redraws_once():
    calls = []
    box = explore(_line_drawer(calls), interactive=True, slope=(0.0, 2.0, 0.1, 0.5),
                  intercept=(0.0, 1.0, 0.1, 0.0))
    box.explorer.update(slope=2.0, intercept=1.0)
    assert calls[-1] == dict(slope=2.0, intercept=1.0, kind="line", grid=True)
    assert len(calls) == 2
    assert box.explorer.controls["slope"].value == 2.0
    with pytest.raises(ValueError,
                       match=r"^control must be one of 'intercept', 'slope', got 'nope'"):
        box.explorer.update(nope=1)


def test_several_axes_are_passed_as_a_list():
    seen = []
    explore(lambda axes, k: seen.append(len(axes)), ncols=3, k=(1, 5, 1, 2))
    assert seen == [3]


def test_a_grid_of_axes_is_passed_row_by_row():
    seen = []
    explore(lambda axes, k: seen.extend(
        (ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start) for ax in axes),
        nrows=2, ncols=3, k=(1, 5, 1, 2))
    assert seen == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]


@pytest.mark.parametrize("layout", [{"ncols": 0}, {"nrows": 0}, {"nrows": 1.5}])
def test_a_bad_grid_of_axes_is_named(layout):
    (name, value), = layout.items()
    with pytest.raises(ValueError, match=f"^{name} must be an integer >= 1, got {value}$"):
        explore(lambda ax, k: None, k=(1, 5, 1, 2), **layout)


@pytest.mark.parametrize(("spec", "message"), [
    ((1.0, 0.0, 0.1, 0.5), "low <= default <= high"),
    ((0.0, 1.0, 0.0, 0.5), "step > 0"),
    (("log", 0.0, 1.0, 0.1), "0 < low"),
    ([], "non-empty list"),
    ("fast", "a list of options"),
])
def test_bad_control_specs_name_the_control(spec, message):
    with pytest.raises(ValueError, match=f"^lr must be .*{message}") as excinfo:
        explore(lambda ax, lr: None, lr=spec)
    assert str(excinfo.value).endswith(f"got {spec!r}")


def test_explore_needs_a_control():
    with pytest.raises(ValueError, match=r"^controls must be at least one keyword argument"):
        explore(lambda ax: None)


def _pixels(png) -> np.ndarray:
    png = bytes(png)  # the Image widget keeps its value as a memoryview
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def _figure_pixels(figure) -> np.ndarray:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return _pixels(buffer.getvalue())


def test_the_figure_is_an_image_widget_redrawn_with_every_change():
    box = explore(_line_drawer([]), interactive=True, slope=(0.0, 2.0, 0.1, 0.5))
    explorer = box.explorer
    first = bytes(explorer.image.value)
    np.testing.assert_array_equal(_pixels(first), _figure_pixels(explorer.figure))
    explorer.controls["slope"].value = 2.0
    assert bytes(explorer.image.value) != first
    np.testing.assert_array_equal(_pixels(explorer.image.value), _figure_pixels(explorer.figure))
    # nothing is drawn into an Output widget (whose capture stalls headless nbclient runs)
    assert not any(isinstance(child, w.Output) for child in box.children)


def test_the_widget_is_displayed_with_its_figure_as_a_static_png():
    box = explore(_line_drawer([]), interactive=True, slope=(0.0, 2.0, 0.1, 0.5))
    bundle = box._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == box.model_id
    png = base64.b64decode(bundle["image/png"])
    np.testing.assert_array_equal(_pixels(png), _figure_pixels(box.explorer.figure))
    box.explorer.update(slope=1.0)                    # displayed later: the view at that time
    later = base64.b64decode(box._repr_mimebundle_()["image/png"])
    assert later != png
    np.testing.assert_array_equal(_pixels(later), _figure_pixels(box.explorer.figure))
