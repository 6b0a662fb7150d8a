"""``nbs.plot(name, y=["price"])``: a live SVG line chart of a socket's numeric columns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..errors import InvalidOptionError
from ..runtime import registry
from .chart import AUTO, ChartBuffer, svg_as_img
from .feed import SocketFeed
from .live import LiveView
from .panel import MAX_RATE_HZ
from .throttle import Refresher

if TYPE_CHECKING:
    from ..runtime import Manager

__all__ = ["LiveChart"]


class LiveChart(LiveView, widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no types
    """A chart that follows new rows of one socket's live frame (the last ``window`` points per line).

    One widget message per redraw, at most ``max_rate_hz`` redraws a second.
    """

    def __init__(
        self,
        name: str,
        y: str | Sequence[str] | None = None,
        x: str = "timestamp",
        window: int = 500,
        *,
        by: str | None = AUTO,
        width: int = 560,
        height: int = 120,
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
        self._drawn = -1
        self.svg = widgets.HTML()
        self.svg.add_class("nbsocket-chart-box")
        super().__init__(children=[self.svg], _view_count=0)
        self.add_class("nbsocket-plot")
        self.feed.attach(conn.frame)
        self._draw()
        self._start_live(self.max_rate_hz, refresher)

    def __repr__(self) -> str:
        return f"<LiveChart {self.name!r} {', '.join(map(str, self.buffer.columns)) or 'numeric columns'}>"

    def _draw(self) -> None:
        if self.buffer.version != self._drawn:
            self._drawn = self.buffer.version
            self.svg.value = self.buffer.render(self.width, self.height)

    def _tick(self, now: float) -> bool:
        current = self.manager.find(self.name)
        if current is None:
            self.feed.detach()
            return False
        if current is not self._conn or not self.feed.attached:
            self._conn = current
            self.feed.attach(current.frame)
        if self._gate.ready(now) and (self.feed.drain() or self.buffer.version != self._drawn):
            self._gate.mark(now)
            self._draw()
        return True

    def _on_hidden(self) -> None:
        self.feed.detach()

    def _on_closed(self) -> None:
        self.feed.detach()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/html"] = svg_as_img(self.svg.value)
        return bundle
