"""``nbs.panel(name)``: one socket's live view with its buttons."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..runtime import registry
from .chart import AUTO, ChartBuffer, svg_as_img
from .controls import SocketControls
from .feed import SocketFeed
from .live import LiveView
from .render import errors_html, header_html, table_html
from .throttle import RateMeter, Refresher

if TYPE_CHECKING:
    from ..runtime import Connection, ErrorRecord, Manager

__all__ = ["COUNTERS_EVERY", "MAX_RATE_HZ", "SocketPanel"]


COUNTERS_EVERY = 1.0
"""Seconds between refreshes of the counters when nothing else changed."""
MAX_RATE_HZ = 5.0
"""The most updates a second a view may ask for (each update is a few widget messages)."""


class SocketPanel(LiveView, widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no types
    """A live panel for one socket: state, counters, latest rows, a chart, buttons and errors.

    Updates at most ``max_rate_hz`` times a second whatever the message rate,
    pauses while not shown, and stops when closed or when the socket is removed.
    """

    def __init__(
        self,
        name: str,
        *,
        manager: Manager | None = None,
        rows: int = 8,
        chart: bool = True,
        y: str | Sequence[str] | None = None,
        x: str = "timestamp",
        window: int = 500,
        by: str | None = AUTO,
        max_rate_hz: float = 2.0,
        refresher: Refresher | None = None,
    ) -> None:
        self.manager = manager if manager is not None else registry()
        conn = self.manager.get(name)
        self.name = name
        self.max_rate_hz = min(float(max_rate_hz), MAX_RATE_HZ)
        self._conn: Connection = conn
        self._state_shown: str | None = None
        self._meter = RateMeter()
        self._last_full = float("-inf")
        self._errors_shown: ErrorRecord | None = None
        self._chart_version = -1
        self._table_version = -1
        self._lock = threading.Lock()
        self.feed = SocketFeed(max(1, int(rows)), ChartBuffer(y, x, window, by) if chart else None, self.max_rate_hz)
        self.header = widgets.HTML()
        self.header.add_class("nbsocket-header-box")
        self.table = widgets.HTML()
        self.table.add_class("nbsocket-table-box")
        self.chart = widgets.HTML(layout=widgets.Layout(display="block" if chart else "none"))
        self.chart.add_class("nbsocket-chart-box")
        self.controls = SocketControls(self.manager, name, refresher=refresher)
        self.errors = widgets.HTML()
        self.errors_box = widgets.Accordion(children=[self.errors], titles=("Errors (newest first)",), selected_index=None)
        self.errors_box.add_class("nbsocket-errors-box")
        super().__init__(
            children=[self.header, self.table, self.chart, self.controls.box, self.errors_box],
            _view_count=0,
            layout=widgets.Layout(border="1px solid var(--jp-border-color2, #ddd)", padding="6px"),
        )
        self.add_class("nbsocket-panel")
        self.feed.attach(conn.frame)
        self._render(time.monotonic())
        self._start_live(self.max_rate_hz, refresher)

    def __repr__(self) -> str:
        return f"<SocketPanel {self.name!r} {self._state_shown or ''}>".replace(" >", ">")

    # --- refreshing (refresher thread) -------------------------------------------------

    def _tick(self, now: float) -> bool:
        current = self.manager.find(self.name)
        if current is None:
            self._render(now, removed=True)
            self.feed.detach()
            return False
        if current is not self._conn:  # replaced by connect(..., replace=True)
            self._conn = current
            self._meter = RateMeter()
            self.feed.attach(current.frame)
        if not self.feed.attached and current.frame is not None:
            self.feed.attach(current.frame)
        if not self._gate.ready(now):
            return True
        news = self.feed.drain() or self.controls.has_news() or current.state != self._state_shown
        if news or now - self._last_full >= COUNTERS_EVERY:
            self._gate.mark(now)
            self._render(now)
        return True

    def _render(self, now: float, removed: bool = False) -> None:
        with self._lock:
            conn = self._conn
            status = conn.status()
            rate = self._meter.update(now, status["messages_in"])
            if removed:
                status["state"] = "removed"
                rate = 0.0
            state = status["state"]
            self._state_shown = state
            self._last_full = now
            self.header.value = header_html(status, rate)
            if self.feed.version != self._table_version:
                self._table_version = self.feed.version
                self.table.value = table_html(self.feed.recent if conn.frame is not None else None, self.feed.total)
            chart = self.feed.chart
            if chart is not None and chart.version != self._chart_version:
                self._chart_version = chart.version
                self.chart.value = chart.render()
            errors = conn.errors
            last = errors[-1] if errors else None
            if last is not self._errors_shown or self.errors.value == "":
                self._errors_shown = last
                self.errors.value = errors_html(errors)
            self.controls.sync(state)

    def _on_hidden(self) -> None:
        self.feed.detach()

    def _on_shown(self) -> None:
        self._last_full = float("-inf")

    def _on_closed(self) -> None:
        self.feed.detach()

    # --- static snapshot ------------------------------------------------------------------

    def snapshot_html(self) -> str:
        """The panel as it looks now, as plain HTML (for notebooks run headless and viewers without widgets)."""
        with self._lock:
            parts = [self.header.value, self.table.value]
            if self.feed.chart is not None:
                parts.append(svg_as_img(self.chart.value))
        return '<div class="nbsocket-panel-snapshot">' + "".join(parts) + "</div>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/html"] = self.snapshot_html()
        return bundle
