"""``nbs.plot(name, y=["price"])``: a live line chart of a socket's numeric columns (Plotly when installed, else SVG)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..errors import InvalidOptionError
from ..runtime import registry
from .chart import AUTO, ChartBuffer
from .chart_view import ChartView
from .feed import SocketFeed
from .live import LiveView, snapshot_widget
from .panel import MAX_RATE_HZ
from .render import OFFLINE_STYLE, offline_note, snapshot_note
from .throttle import Refresher
from .traffic import SocketTraffic

if TYPE_CHECKING:
    from ..runtime import Manager

__all__ = ["LiveChart"]


class LiveChart(LiveView, widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no types
    """A chart that follows new rows of one socket's live frame (the last ``window`` points per line).

    One widget message per redraw, at most ``max_rate_hz`` redraws a second. ``engine`` is
    ``auto`` (Plotly's FigureWidget when installed, else the SVG chart), ``plotly`` or ``svg``;
    ``width``/``height`` size the SVG chart (which scales to the cell) and the static snapshot.
    """

    def __init__(
        self,
        name: str,
        y: str | Sequence[str] | None = None,
        x: str = "timestamp",
        window: int = 500,
        *,
        by: str | None = AUTO,
        engine: str = "auto",
        width: int = 900,
        height: int = 220,
        manager: Manager | None = None,
        max_rate_hz: float = 2.0,
        refresher: Refresher | None = None,
    ) -> None:
        self.manager = manager if manager is not None else registry()
        conn = self.manager.get(name)
        if conn.frame is None:
            raise InvalidOptionError(f"socket {name!r} has no live frame to chart (it was connected with frame=False)")
        self.name = name
        self.width, self.height = int(width), int(height)
        self.max_rate_hz = min(float(max_rate_hz), MAX_RATE_HZ)
        self._conn = conn
        self.buffer = ChartBuffer(y, x, window, by)
        self.feed = SocketFeed(1, self.buffer, self.max_rate_hz)
        self.view = ChartView(self.buffer, engine, width=self.width, height=self.height)
        self.traffic = SocketTraffic(keep=0)  # only when the socket went down: the lines break there
        self.traffic.attach(conn)
        self.snapshot_holder = snapshot_widget()
        self._changed_at = _dt.datetime.now(_dt.timezone.utc)
        # shown only when a saved notebook is reopened without its kernel (and no broken-link icons then)
        self.offline = widgets.HTML(value=OFFLINE_STYLE + offline_note(f"this chart of socket {name!r} is as it was saved"))
        self.offline.add_class("nbsocket-offline-box")
        super().__init__(children=[self.offline, self.view.widget, self.snapshot_holder], _view_count=0)
        self.add_class("nbsocket-plot")
        self.feed.attach(conn.frame)
        self.view.draw()
        self.snapshot_holder.value = self.snapshot_html()
        self._start_live(self.max_rate_hz, refresher)

    def __repr__(self) -> str:
        return f"<LiveChart {self.name!r} {', '.join(map(str, self.buffer.columns)) or 'numeric columns'}>"

    @property
    def engine(self) -> str:
        """``plotly`` or ``svg``: what draws the chart."""
        return self.view.engine

    @property
    def figure(self) -> Any:
        """Plotly's ``FigureWidget`` (``None`` when the SVG chart draws it): style it as any Plotly figure."""
        return self.view.plotly.figure if self.view.plotly is not None else None

    def _tick(self, now: float) -> bool:
        current = self.manager.find(self.name)
        if current is None:
            self.feed.detach()
            self.traffic.detach()
            return False
        if current is not self._conn or not self.feed.attached:
            self._conn = current
            self.feed.attach(current.frame)
            self.traffic.attach(current)
        if self._gate.ready(now):
            self.view.note_downs(self.traffic.downs())
            self.feed.drain()
            if self.view.draw():
                self._gate.mark(now)
                self._changed_at = _dt.datetime.now(_dt.timezone.utc)
        return True

    def _on_hidden(self) -> None:
        self.feed.detach()
        self.traffic.detach()

    def _on_closed(self) -> None:
        self.feed.detach()
        self.traffic.detach()

    def snapshot_html(self) -> str:
        """The chart as it looks now: an image of the SVG chart (for viewers without widgets)."""
        note = snapshot_note(f"a chart of socket {self.name!r}", self._changed_at)
        return f'<div class="nbsocket-plot-snapshot">{note}{self.view.snapshot_html()}</div>'

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/html"] = self.snapshot_html()
        return bundle
