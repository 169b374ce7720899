"""What the course shows: figures, tables and interactive explorers.

``plot``     every course figure, in one style and one palette (``plot.COLORS``)
``tables``   records as aligned text tables, and records to a grid
``widgets``  sliders that redraw a figure, with a static image when no front end is attached

The only layer that draws; nothing below it imports matplotlib.
"""

from coursekit._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, submodules=("plot", "tables", "widgets"))
