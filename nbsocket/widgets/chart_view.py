"""A chart of a socket's rows as a widget: Plotly's ``FigureWidget`` when installed, else the built-in SVG chart.

Both draw the same :class:`~nbsocket.widgets.chart.ChartBuffer` (so the same lines, colours and
breaks), and the SVG chart is also the static snapshot of either.
"""

from __future__ import annotations

import time
from typing import Any

import ipywidgets as widgets

from .chart import ChartBuffer, svg_as_img
from .figure import PlotlyChart, choose_engine
from .throttle import RedrawBudget

__all__ = ["PLOTLY_REDRAWS_PER_SECOND", "ChartView", "plotly_redraws"]

PLOTLY_REDRAWS_PER_SECOND = 3.0
"""Redraws a second of every Plotly chart of the kernel together, each chart also at most its view's ``max_rate_hz``
(2): one chart redraws twice a second, two every 0.7 s, six every 2 s, so more charts never take more of the browser."""
plotly_redraws = RedrawBudget(PLOTLY_REDRAWS_PER_SECOND)
"""The kernel's Plotly charts take turns within :data:`PLOTLY_REDRAWS_PER_SECOND`."""


class ChartView:
    """The widget that draws ``buffer`` (``widget``), redrawn by :meth:`draw` on the refresher thread.

    ``engine`` is ``auto`` (Plotly when available), ``plotly`` or ``svg``; ``breaks`` feeds it the
    times the socket went down, so lines break there.
    """

    def __init__(self, buffer: ChartBuffer, engine: str = "auto", *, width: int = 900, height: int = 220) -> None:
        self.buffer = buffer
        self.engine = choose_engine(engine)
        self.width, self.height = width, height
        self._drawn = -1
        self._breaks_seen = 0.0
        self.plotly: PlotlyChart | None = None
        self.html: widgets.HTML | None = None
        if self.engine == "plotly":
            self.plotly = PlotlyChart(buffer)
            self.waiting = widgets.HTML(value=buffer.render(width, height))  # "waiting for ... to chart" until a line shows
            self.widget: Any = widgets.VBox([self.waiting])
        else:
            self.html = widgets.HTML(value=buffer.render(width, height))
            self.widget = self.html
        self.widget.add_class("nbsocket-chart-box")

    def note_downs(self, downs: list[float]) -> None:
        """Times the socket went down (seconds since the epoch, oldest first): lines break at the new ones."""
        for when in downs:
            if when > self._breaks_seen:
                self._breaks_seen = when
                self.buffer.add_break(when)

    def draw(self) -> bool:
        """Redraw if the buffer changed since the last draw (a Plotly chart: when its turn of the
        kernel's :data:`plotly_redraws` has come); True if something was sent."""
        if self.buffer.version == self._drawn:
            return False
        if self.plotly is not None:
            now = time.monotonic()
            if self.plotly.figure.data and not plotly_redraws.ready(self, now):
                return False  # drawn at a later refresh
            plotly_redraws.drew(self, now)
        self._drawn = self.buffer.version
        if self.plotly is not None:
            drawn = self.plotly.draw()
            shown = (self.plotly.figure,) if self.plotly.figure.data else (self.waiting,)
            if self.widget.children != shown:
                self.widget.children = shown
            return drawn
        assert self.html is not None
        self.html.value = self.buffer.render(self.width, self.height)
        return True

    def snapshot_html(self) -> str:
        """The chart as it looks now, as an image (inline SVG would be turned into loose text by sanitizers)."""
        return svg_as_img(self.buffer.render(self.width, self.height))
