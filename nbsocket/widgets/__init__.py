"""ipywidgets front end: a live panel per socket, a dashboard of all sockets, live charts.

Widgets only call the manager. They update a few times a second at most,
whatever the message rate (see :mod:`nbsocket.widgets.throttle`), and stop
when closed or when their socket is removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .chart import AUTO
from .controls import InvalidMessageError, SocketControls, parse_message
from .dashboard import Dashboard
from .panel import SocketPanel
from .plot import LiveChart


def panel(name: str, **kwargs: Any) -> SocketPanel:
    """A live panel for socket ``name``: state, counters, the message log, latest rows, a chart, Send, Reset,
    Disconnect, Connect, errors.

    Keywords: ``rows`` (latest rows shown, 8), ``log_rows`` (messages the log shows, 40), ``chart`` (False
    hides the chart), ``y``/``x``/``window``/``by``/``engine`` (as for :func:`plot`), ``max_rate_hz``
    (updates a second, 2; at most 5), ``manager``.
    """
    return SocketPanel(name, **kwargs)


def dashboard(**kwargs: Any) -> Dashboard:
    """Every socket, one row each, with Send, Reset, Disconnect and Connect; rows come and go with the sockets."""
    return Dashboard(**kwargs)


def plot(name: str, y: str | Sequence[str] | None = None, x: str = "timestamp", window: int = 500, **kwargs: Any) -> LiveChart:
    """A live line chart of columns ``y`` of socket ``name``'s frame against ``x``, the last ``window`` points.

    Without ``y`` it follows the numeric columns as they appear. ``by="symbol"``
    draws one line per value of that column; the default ``by="auto"`` picks
    such a column by itself (a text column with a few repeating values, like
    ``symbol``), ``by=None`` draws one line per column. ``engine`` is ``auto`` (Plotly's
    FigureWidget when the ``views`` extra is installed, else SVG), ``plotly`` or ``svg``;
    ``width``/``height`` size the SVG chart and the static snapshot.
    """
    return LiveChart(name, y=y, x=x, window=window, **kwargs)


__all__ = [
    "AUTO",
    "Dashboard",
    "InvalidMessageError",
    "LiveChart",
    "SocketControls",
    "SocketPanel",
    "dashboard",
    "panel",
    "parse_message",
    "plot",
]
