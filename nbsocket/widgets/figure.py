"""Live charts on Plotly's ``FigureWidget`` (the ``views`` extra): what a Plotly user expects of a chart.

Hover values (one tooltip for every line at that time), zoom and pan that survive updates
(``uirevision``), the width of the cell, round time ticks on a date axis, breaks where the socket
was down, one colour per series for the whole kernel (:data:`~nbsocket.widgets.chart.series_colors`)
and a legend of the lines in view. The refresher thread sends one batched update per redraw, at
most a few a second, whatever the message rate. Without Plotly (or anywidget) the views draw the
built-in SVG chart instead, which is also every chart's static snapshot.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import numpy as np

from .chart import ChartBuffer, Gapped, series_colors
from .plotly_script import live_figure

__all__ = ["ENGINES", "MAX_POINTS", "ROW_HEIGHT", "PlotlyChart", "choose_engine", "plotly_available"]

ENGINES = ("auto", "plotly", "svg")
"""``engine=`` of ``nbs.plot`` and ``nbs.panel``: ``auto`` is Plotly when it is installed, else SVG."""
MAX_POINTS = 1000
"""Points sent per line and redraw at most (spikes kept: each stride's lowest and highest)."""
ROW_HEIGHT = 230
"""Pixels per column's chart."""
AXIS = {"showgrid": True, "ticklabeloverflow": "allow"}
"""Every axis: gridlines; tick labels drawn as they come (Plotly measures each label again on every update otherwise)."""


def plotly_available() -> bool:
    """True when Plotly's ``FigureWidget`` can be made here (plotly and anywidget are installed)."""
    return importlib.util.find_spec("plotly") is not None and importlib.util.find_spec("anywidget") is not None


def choose_engine(engine: str) -> str:
    """``plotly`` or ``svg`` for ``engine`` (``auto``: Plotly when available); refuses an unknown name."""
    from ..errors import InvalidOptionError

    if engine not in ENGINES:
        raise InvalidOptionError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "plotly" and not plotly_available():
        raise InvalidOptionError('engine="plotly" needs Plotly and anywidget: pip install "nbsocket[views]"')
    if engine == "auto":
        return "plotly" if plotly_available() else "svg"
    return engine


def _arrays(line: Gapped, is_time: bool) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """A line's x and y as arrays, a gap as a NaN y (x as UTC times on a time axis)."""
    xs, ys = line
    x = np.array([math.nan if v is None else v for v in xs], dtype="float64")
    y = np.array([math.nan if v is None else v for v in ys], dtype="float64")
    gaps = np.isnan(x)
    if gaps.any():  # a gap keeps the x of the point before it, so the axis stays sorted
        x[gaps] = np.concatenate(([x[~gaps][0]], x[:-1]))[gaps] if (~gaps).any() else 0.0
    if len(x) > MAX_POINTS:
        x, y = _decimate(x, y, MAX_POINTS)
    if is_time:  # ISO times (milliseconds, UTC): a date axis reads them as such, whatever it guessed before
        return (x * 1000.0).astype("int64").astype("datetime64[ms]"), y
    return x, y


def _decimate(
    x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], max_points: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """About ``max_points`` points: each stride's lowest and highest (in order), and every gap."""
    stride = math.ceil(len(x) / (max_points // 2))
    keep: list[int] = []
    for start in range(0, len(x), stride):
        chunk = y[start : start + stride]
        gap = np.flatnonzero(np.isnan(chunk))
        if gap.size:
            keep.extend(int(start + i) for i in gap)
        if np.isnan(chunk).all():
            continue
        keep.extend(sorted({int(start + np.nanargmin(chunk)), int(start + np.nanargmax(chunk))}))
    index = np.array(sorted(set(keep)), dtype="int64")
    return x[index], y[index]


class PlotlyChart:
    """A Plotly ``FigureWidget`` drawing a :class:`ChartBuffer`: one chart per column, stacked on one shared x axis.

    :meth:`draw` (on the refresher thread) adds and removes lines as series enter and leave the
    window and sends the points of every line in one batched update. The user's zoom and pan are
    kept across updates; a double click goes back to following the newest points.
    """

    def __init__(self, buffer: ChartBuffer) -> None:
        self.buffer = buffer
        self.figure = live_figure(
            layout={
                "uirevision": "nbsocket",  # zoom, pan and legend clicks survive every update
                "autosize": True,
                "height": ROW_HEIGHT,
                "margin": {"l": 72, "r": 16, "t": 40, "b": 44, "autoexpand": False},
                "hovermode": "x unified",
                "template": "plotly_white",
                "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
                "font": {"size": 12},
                "xaxis": self._x_axis(),
            }
        )
        self.figure.add_class("nbsocket-plotly")
        self._drawn = -1
        self._columns: list[str] = []
        self._traces: list[tuple[str, str]] = []

    def _x_axis(self) -> dict[str, Any]:
        """The x axis: a date axis in UTC for the time of receipt, else a number axis named after the column."""
        if self.buffer.x_is_time:
            axis = {"type": "date", "title": {"text": "time (UTC)"}, "hoverformat": "%H:%M:%S.%L"}
        else:
            axis = {"type": "linear", "title": {"text": self.buffer.x}}
        return {**axis, **AXIS}

    def draw(self) -> bool:
        """Show the buffer's points now (if they changed); True if something was sent."""
        buffer = self.buffer
        if buffer.version == self._drawn:
            return False
        self._drawn = buffer.version
        lines = {column: buffer.gapped(column) for column in list(buffer.columns)}
        columns = [column for column, found in lines.items() if found]
        traces = [(column, name) for column in columns for name in lines[column]]
        figure = self.figure
        if columns != self._columns or traces != self._traces:
            self._rebuild(columns, traces)
        with figure.batch_update():
            for trace, (column, name) in zip(figure.data, traces, strict=True):
                trace.x, trace.y = _arrays(lines[column][name], buffer.x_is_time)
        return True

    def _rebuild(self, columns: list[str], traces: list[tuple[str, str]]) -> None:
        """Lay out one chart per column and one line per series (a series keeps its colour and legend entry)."""
        import plotly.graph_objects as go

        buffer, figure = self.buffer, self.figure
        count = max(1, len(columns))
        gap = 0.08 if count > 1 else 0.0
        size = (1.0 - gap * (count - 1)) / count
        layout: dict[str, Any] = {
            "height": 60 + ROW_HEIGHT * count,
            "xaxis": {**self._x_axis(), "anchor": f"y{count}" if count > 1 else "y"},
        }
        for index, column in enumerate(columns, start=1):
            top = 1.0 - (index - 1) * (size + gap)
            layout["yaxis" if index == 1 else f"yaxis{index}"] = {
                "domain": [max(0.0, top - size), top],
                "title": {"text": buffer.title(column)},
                **AXIS,
            }
        shown: set[str] = set()
        new_traces = []
        for column, name in traces:
            index = columns.index(column) + 1
            new_traces.append(
                go.Scatter(
                    name=name,
                    legendgroup=name,
                    showlegend=name not in shown,
                    mode="lines",
                    line={"color": series_colors(name), "width": 1.6},
                    connectgaps=False,
                    yaxis="y" if index == 1 else f"y{index}",
                    hovertemplate="%{y:.6g}",
                    meta=column,
                )
            )
            shown.add(name)
        with figure.batch_update():
            figure.data = ()
            figure.layout.update(layout)
        if new_traces:
            figure.add_traces(new_traces)
        self._columns, self._traces = columns, traces
