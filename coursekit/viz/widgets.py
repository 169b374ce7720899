"""Interactive demos: sliders that re-run a computation and redraw its figure.

One function, :func:`explore`, turns a drawing function into a small app, in the
spirit of Distill's "Why Momentum Really Works"::

    def draw(ax, lr, momentum):
        traj = landscapes.run(lambda p: optim.SGD(p, lr=lr, momentum=momentum), fn)
        plot.trajectories(traj, fn, ax=ax)

    explore(draw, lr=("log", 1e-3, 1.0, 0.1), momentum=(0.0, 0.99, 0.01, 0.9))

Each keyword describes one control:

``(low, high, step, default)``
    a slider (integer slider if all four are integers);
``("log", low, high, default)``
    a logarithmic slider (learning rates);
``[option, ...]``
    a drop-down menu (the first option is the default);
``True`` / ``False``
    a check box;
an ``ipywidgets`` widget
    used as it is.

In JupyterLab the controls sit above the figure and every change redraws it.
Without a live notebook front end (a plain Python script, a test, CI running
notebooks headless, or ipywidgets not installed) nothing interactive is built:
the figure is drawn once with the default values and returned, so a lecture
still shows its picture and never fails for lack of a browser.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

from matplotlib.figure import Figure

from coursekit import _checks as checks
from coursekit.viz.plot import STYLE, style

__all__ = ["Explorer", "explore"]


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (where widgets can be displayed)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _default(name: str, spec: Any) -> Any:
    """The initial value a control spec stands for (validating the spec)."""
    if isinstance(spec, bool):
        return spec
    if isinstance(spec, list):
        if not spec:
            raise checks.invalid(name, "a non-empty list of options", spec)
        return spec[0]
    if isinstance(spec, tuple) and len(spec) == 4 and spec[0] == "log":
        _, low, high, value = spec
        if not 0 < low <= value <= high:
            raise checks.invalid(name, "a log slider ('log', low, high, default) with "
                                 "0 < low <= default <= high", spec)
        return value
    if isinstance(spec, tuple) and len(spec) == 4:
        low, high, step, value = spec
        if not (low <= value <= high and step > 0):
            raise checks.invalid(name, "a slider (low, high, step, default) with "
                                 "low <= default <= high and step > 0", spec)
        return value
    if hasattr(spec, "value"):  # an ipywidgets widget
        return spec.value
    raise checks.invalid(name, "a control: (low, high, step, default), ('log', low, high, "
                         "default), a list of options, a bool or a widget", spec)


def _widget(name: str, spec: Any):
    import ipywidgets as w

    layout = {"description": name, "continuous_update": False,
              "style": {"description_width": "initial"}}
    if isinstance(spec, bool):
        return w.Checkbox(value=spec, description=name, style=layout["style"])
    if isinstance(spec, list):
        return w.Dropdown(options=spec, value=spec[0], description=name, style=layout["style"])
    if isinstance(spec, tuple) and spec[0] == "log":
        _, low, high, value = spec
        return w.FloatLogSlider(value=value, base=10, min=math.log10(low), max=math.log10(high),
                                step=0.05, readout_format=".2e", **layout)
    if isinstance(spec, tuple):
        low, high, step, value = spec
        if all(isinstance(v, int) and not isinstance(v, bool) for v in spec):
            return w.IntSlider(value=value, min=low, max=high, step=step, **layout)
        return w.FloatSlider(value=value, min=low, max=high, step=step, readout_format=".3g",
                             **layout)
    return spec


class Explorer:
    """The widgets, figure and current values of one :func:`explore` demo.

    ``explorer.update(lr=0.5)`` sets controls from code (as moving a slider does)
    and redraws; ``explorer.values`` are the current values; ``explorer.figure``
    is the matplotlib figure; ``explorer.widget`` the ipywidgets box to display.
    """

    def __init__(self, draw: Callable[..., Any], controls: dict[str, Any], *,
                 ncols: int = 1, figsize: tuple[float, float] | None = None):
        self._draw = draw
        self.values = {name: _default(name, spec) for name, spec in controls.items()}
        width, height = STYLE["figure.figsize"]
        self.figure = Figure(figsize=figsize or (width * ncols, height))
        with style():
            self.axes = self.figure.subplots(1, ncols, squeeze=False)[0]
        self.controls: dict[str, Any] = {}
        self.widget = None
        self.redraws = 0
        self._quiet = False

    def _ax_argument(self):
        return self.axes[0] if len(self.axes) == 1 else list(self.axes)

    def redraw(self) -> Figure:
        """Clear the axes and call ``draw(ax, **values)`` again."""
        for ax in self.axes:
            ax.clear()
        with style():
            self._draw(self._ax_argument(), **self.values)
        self.figure.tight_layout()
        self.redraws += 1
        if self.widget is not None and _in_kernel():
            from IPython.display import Image, display

            # Show PNG bytes, not the Figure object: a kernel whose inline backend
            # has not been set up yet would print "<Figure size ...>" instead.
            png = io.BytesIO()
            self.figure.savefig(png, format="png")
            output = self.widget.children[-1]
            with output:
                output.clear_output(wait=True)
                display(Image(png.getvalue()))
        return self.figure

    def update(self, **values: Any) -> Figure:
        """Set one or more controls and redraw once."""
        for name in values:
            checks.choice("control", name, sorted(self.values))
        self.values.update(values)
        self._quiet = True  # move the sliders without one redraw per slider
        try:
            for name, value in values.items():
                if name in self.controls:
                    self.controls[name].value = value
        finally:
            self._quiet = False
        return self.redraw()

    def _on_change(self, change: dict) -> None:
        self.values[change["owner"].description] = change["new"]
        if not self._quiet:
            self.redraw()

    def build_widget(self, controls: dict[str, Any]):
        """Create the ipywidgets box: the controls above an output area with the figure."""
        import ipywidgets as w

        for name, spec in controls.items():
            control = _widget(name, spec)
            control.description = name
            control.observe(self._on_change, names="value")
            self.controls[name] = control
        self.widget = w.VBox([*self.controls.values(), w.Output()])
        return self.widget


def explore(draw: Callable[..., Any], *, ncols: int = 1,
            figsize: tuple[float, float] | None = None, interactive: bool | None = None,
            **controls: Any):
    """Show ``draw(ax, **values)`` with a control per keyword; redraw on every change.

    Parameters
    ----------
    draw : callable
        ``draw(ax, **values)`` draws on ``ax`` (a list of Axes when ``ncols > 1``).
    ncols : int
        Number of side-by-side axes.
    figsize : tuple, optional
        Figure size in inches.
    interactive : bool, optional
        Force (``True``) or suppress (``False``) the widgets; by default they are
        built when running inside a Jupyter kernel with ipywidgets installed.
    **controls
        One control per argument of ``draw`` (see the module docstring).

    Returns
    -------
    ipywidgets.VBox or matplotlib.figure.Figure
        The widget box in a notebook; otherwise the figure drawn with the defaults.
        Either way the :class:`Explorer` is reachable as ``.explorer`` on the
        result (``box.explorer`` / ``figure.explorer``).
    """
    if not controls:
        raise ValueError("controls must be at least one keyword argument, e.g. "
                         "lr=(0.01, 1.0, 0.01, 0.1), got none")
    explorer = Explorer(draw, controls, ncols=ncols, figsize=figsize)
    if interactive is None:
        interactive = _in_kernel()
        if interactive:
            try:
                import ipywidgets  # noqa: F401
            except ImportError:
                interactive = False
    if not interactive:
        figure = explorer.redraw()
        figure.explorer = explorer
        return figure
    box = explorer.build_widget(controls)
    explorer.redraw()
    box.explorer = explorer
    return box
