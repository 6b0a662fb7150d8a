"""``nbs.panel(name)``: one socket's live view: its state, a two-way message log, its latest rows, a chart, the buttons."""

from __future__ import annotations

import datetime as _dt
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..runtime import ProtocolConnection, registry
from .chart import AUTO, ChartBuffer
from .chart_view import ChartView
from .controls import SocketControls
from .feed import SocketFeed
from .live import LiveView, snapshot_widget
from .message_log import LOG_ROWS, MessageLog
from .render import errors_html, header_html, snapshot_note, table_html
from .throttle import RateMeter, Refresher
from .traffic import SocketTraffic

if TYPE_CHECKING:
    from ..runtime import Connection, ErrorRecord, Manager

__all__ = ["COUNTERS_EVERY", "MAX_RATE_HZ", "SNAPSHOT_LOG_CHARS", "SocketPanel"]


COUNTERS_EVERY = 1.0
"""Seconds between refreshes of the counters when nothing else changed."""
MAX_RATE_HZ = 5.0
"""The most updates a second a view may ask for (each update is a few widget messages)."""
SNAPSHOT_LOG_CHARS = 60_000
"""The message log is left out of a static snapshot past this size (its latest rows and chart stay)."""


class SocketPanel(LiveView, widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no types
    """A live panel for one socket: state, counters, the message log, latest rows, a chart, buttons and errors.

    Updates at most ``max_rate_hz`` times a second whatever the message rate,
    pauses while not shown, and stops when closed or when the socket is removed.
    """

    def __init__(
        self,
        name: str,
        *,
        manager: Manager | None = None,
        rows: int = 8,
        log_rows: int = LOG_ROWS,
        chart: bool = True,
        y: str | Sequence[str] | None = None,
        x: str = "timestamp",
        window: int = 500,
        by: str | None = AUTO,
        engine: str = "auto",
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
        self._table_version = -1
        self._changed_at = _dt.datetime.now(_dt.timezone.utc)
        self._lock = threading.Lock()
        buffer = ChartBuffer(y, x, window, by) if chart else None
        self.feed = SocketFeed(max(1, int(rows)), buffer, self.max_rate_hz)
        self.chart_view = ChartView(buffer, engine) if buffer is not None else None
        self.traffic = SocketTraffic(loop=self.manager.loop_thread)
        self.traffic.attach(conn)
        self.header = widgets.HTML()
        self.header.add_class("nbsocket-header-box")
        self.messages = MessageLog(
            self.traffic, conn.protocol if isinstance(conn, ProtocolConnection) else None, rows=int(log_rows)
        )
        self.table = widgets.HTML()
        self.table.add_class("nbsocket-table-box")
        self.tabs = widgets.Tab(children=[self.messages.box, self.table], titles=("Messages", "Latest rows"))
        self.tabs.add_class("nbsocket-tabs")
        self.chart: Any = self.chart_view.widget if self.chart_view is not None else widgets.HTML()
        self.controls = SocketControls(self.manager, name, refresher=refresher)
        self.errors = widgets.HTML()
        self.errors_box = widgets.Accordion(children=[self.errors], titles=("Errors (newest first)",), selected_index=None)
        self.errors_box.add_class("nbsocket-errors-box")
        self.snapshot_holder = snapshot_widget()
        parts = [self.header, self.tabs, *([self.chart] if self.chart_view is not None else [])]
        super().__init__(
            children=[*parts, self.controls.box, self.errors_box, self.snapshot_holder],
            _view_count=0,
            layout=widgets.Layout(border="1px solid var(--jp-border-color2, #ddd)", padding="6px"),
        )
        self.add_class("nbsocket-panel")
        self.feed.attach(conn.frame)
        self._render(time.monotonic())
        self.snapshot_holder.value = self.snapshot_html()
        self._start_live(self.max_rate_hz, refresher)

    def __repr__(self) -> str:
        return f"<SocketPanel {self.name!r} {self._state_shown or ''}>".replace(" >", ">")

    # --- refreshing (refresher thread) -------------------------------------------------

    def _tick(self, now: float) -> bool:
        current = self.manager.find(self.name)
        if current is None:
            self._render(now, removed=True)
            self.feed.detach()
            self.traffic.detach()
            return False
        if current is not self._conn:  # replaced by connect(..., replace=True)
            self._conn = current
            self._meter = RateMeter()
            self.feed.attach(current.frame)
            self.traffic.attach(current)
        if not self.feed.attached and current.frame is not None:
            self.feed.attach(current.frame)
            self.traffic.attach(current)
        if not self._gate.ready(now):
            return True
        news = self.feed.drain()
        if self.tabs.selected_index == 0:  # a tab not shown is not sent (its snapshot still is, every few seconds)
            news = self.messages.render() or news
        news = news or self.controls.has_news() or current.state != self._state_shown
        if news:
            self._changed_at = _dt.datetime.now(_dt.timezone.utc)
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
            if self.feed.version != self._table_version and self.tabs.selected_index == 1:
                self._table_version = self.feed.version
                self.table.value = self._table()
            if self.chart_view is not None:
                self.chart_view.note_downs(self.traffic.downs())
                self.chart_view.draw()
            errors = conn.errors
            last = errors[-1] if errors else None
            if last is not self._errors_shown or self.errors.value == "":
                self._errors_shown = last
                self.errors.value = errors_html(errors)
            self.controls.sync(state)

    def _table(self) -> str:
        return table_html(self.feed.recent, self.feed.total, framed=self._conn.frame is not None)

    def _on_hidden(self) -> None:
        self.feed.detach()
        self.traffic.detach()

    def _on_shown(self) -> None:
        self._last_full = float("-inf")

    def _on_closed(self) -> None:
        self.feed.detach()
        self.traffic.detach()

    # --- static snapshot ------------------------------------------------------------------

    def snapshot_html(self) -> str:
        """The panel as it looks now, as plain HTML (for notebooks run headless and viewers without widgets)."""
        self.messages.render()
        with self._lock:
            log = self.messages.view.value
            parts = [snapshot_note(f"socket {self.name!r}", self._changed_at), self.header.value]
            if len(log) <= SNAPSHOT_LOG_CHARS:
                parts.append(log)
            parts.append(self._table())
            if self.chart_view is not None:
                parts.append(self.chart_view.snapshot_html())
        return '<div class="nbsocket-panel-snapshot">' + "".join(parts) + "</div>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/html"] = self.snapshot_html()
        return bundle
