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
Without a live notebook front end (a plain Python script, a test, or
ipywidgets not installed) nothing interactive is built: the figure is drawn
once with the default values and returned, so a lecture still shows its
picture and never fails for lack of a browser.

Inside a kernel the demo is an ``ipywidgets.VBox`` of the controls above an
``ipywidgets.Image`` holding the figure as PNG bytes; a redraw replaces the
image's value. Its output carries the figure twice: as the widget view, which a
front end with widgets shows (JupyterLab, VS Code, and a site or nbviewer page
built from a notebook with saved widget state, where the Image widget shows the
PNG it held), and as an ordinary ``image/png`` of the view when it was
displayed, which everything else shows instead (GitHub, nbconvert's HTML and
nbviewer without widget state, a site without widget support). So an executed
notebook always has a figure, and a live one never shows it twice.

Why an Image widget and not an Output widget: drawing into an Output widget
(``with output: display(...)``) makes a headless run through nbclient
(``jupyter nbconvert --execute``, Jupyter Book, myst-nb) stall. nbclient mimics
the Output widget: it routes the outputs captured during the cell into the
widget and sends the widget's new state back to the kernel as a ``comm_msg``
on the shell channel, while another of its tasks is waiting (polling that same
socket) for the cell's ``execute_reply``. Sometimes that poll is not woken when
the reply arrives, and sees it only when it times out, i.e. after the client's
cell timeout. Measured with nbclient 0.11.0, ipykernel 7.4.0 and pyzmq 27.3: the
kernel had sent the reply within 50 ms and the client returned after exactly
its timeout; with nbclient's send switched off, or with an Image widget, no run
stalled. Setting an Image widget's value sends nothing back to the kernel, so
there is nothing to race with.
"""

from __future__ import annotations

import base64
import functools
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
    is the matplotlib figure; ``explorer.widget`` the ipywidgets box to display;
    ``explorer.image`` the ``ipywidgets.Image`` showing the figure inside it.
    """

    def __init__(self, draw: Callable[..., Any], controls: dict[str, Any], *,
                 ncols: int = 1, nrows: int = 1, figsize: tuple[float, float] | None = None):
        ncols = checks.integer("ncols", ncols, minimum=1)
        nrows = checks.integer("nrows", nrows, minimum=1)
        self._draw = draw
        self.values = {name: _default(name, spec) for name, spec in controls.items()}
        width, height = STYLE["figure.figsize"]
        self.figure = Figure(figsize=figsize or (width * ncols, height * nrows))
        with style():
            self.axes = list(self.figure.subplots(nrows, ncols, squeeze=False).flat)
        self.controls: dict[str, Any] = {}
        self.widget = None
        self.image = None
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
        if self.image is not None:
            self.image.value = self.png()
        return self.figure

    def png(self) -> bytes:
        """The figure as it is now, as PNG bytes."""
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()

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
        """Create the ipywidgets box: the controls above an image of the figure."""
        import ipywidgets as w

        for name, spec in controls.items():
            control = _widget(name, spec)
            control.description = name
            control.observe(self._on_change, names="value")
            self.controls[name] = control
        self.image = w.Image(format="png")
        self.widget = _box_class()([*self.controls.values(), self.image])
        self.widget.explorer = self
        return self.widget


@functools.cache
def _box_class() -> type:
    """``ExplorerBox``: a VBox that also shows as a PNG where widgets cannot be shown.

    Built on first use, so that importing this module does not import ipywidgets.
    """
    import ipywidgets as w

    class ExplorerBox(w.VBox):
        """The controls above the figure, displayed with an ``image/png`` fallback."""

        def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
            bundle = super()._repr_mimebundle_(**kwargs)
            if bundle is not None and self.explorer.image.value:
                bundle["image/png"] = base64.b64encode(self.explorer.image.value).decode()
            return bundle

    return ExplorerBox


def explore(draw: Callable[..., Any], *, ncols: int = 1, nrows: int = 1,
            figsize: tuple[float, float] | None = None, interactive: bool | None = None,
            **controls: Any):
    """Show ``draw(ax, **values)`` with a control per keyword; redraw on every change.

    Parameters
    ----------
    draw : callable
        ``draw(ax, **values)`` draws on ``ax`` (a list of Axes, row by row, when
        there are several).
    ncols : int
        Number of side-by-side axes.
    nrows : int
        Number of rows of axes (e.g. small multiples: one panel per run).
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
        The widget box in a notebook (displayed with the figure as an ``image/png``
        fallback); otherwise the figure drawn with the defaults.
        Either way the :class:`Explorer` is reachable as ``.explorer`` on the
        result (``box.explorer`` / ``figure.explorer``).
    """
    if not controls:
        raise ValueError("controls must be at least one keyword argument, e.g. "
                         "lr=(0.01, 1.0, 0.01, 0.1), got none")
    explorer = Explorer(draw, controls, ncols=ncols, nrows=nrows, figsize=figsize)
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
    return box
