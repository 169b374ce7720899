"""What the course shows: figures and interactive explorers (tables are pandas DataFrames).

``plot``     every course figure, in one style: a fixed colour per optimizer and schedule
             (``plot.color``), legends outside the data, divergence marked, mean-and-band
             curves over seeds (``plot.band``) and small multiples
``widgets``  sliders that redraw a figure, which also leave an ordinary image in the
             executed notebook (and only that image when no front end is attached)

The only layer that draws; nothing below it imports matplotlib.
"""

from coursekit._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, submodules=("plot", "widgets"))
