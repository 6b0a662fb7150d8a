"""``nbs.dashboard()``: every socket, one row each, with the same buttons as a panel."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..runtime import registry
from .controls import SocketControls
from .live import LiveView, descendants, snapshot_widget
from .panel import COUNTERS_EVERY, MAX_RATE_HZ
from .render import OFFLINE_STYLE, esc, offline_note, snapshot_note, summary_html
from .throttle import RateMeter, Refresher

if TYPE_CHECKING:
    from ..runtime import Manager

__all__ = ["Dashboard", "SocketRow"]


class SocketRow:
    """One socket's line in the dashboard: its summary and compact controls."""

    def __init__(self, manager: Manager, name: str, refresher: Refresher | None = None) -> None:
        self.manager = manager
        self.name = name
        self.meter = RateMeter()
        self.state_shown: str | None = None
        self.summary = widgets.HTML()
        self.controls = SocketControls(manager, name, compact=True, refresher=refresher)
        self.box = widgets.VBox(
            [self.summary, self.controls.box],
            layout=widgets.Layout(border_bottom="1px solid var(--jp-border-color2, #ddd)", padding="4px 0"),
        )
        self.box.add_class("nbsocket-row")

    def render(self, now: float) -> None:
        conn = self.manager.find(self.name)
        if conn is None:
            return
        status = conn.status()
        rate = self.meter.update(now, status["messages_in"])
        self.state_shown = status["state"]
        self.summary.value = summary_html(status, rate)
        self.controls.sync(status["state"])

    def needs_render(self) -> bool:
        conn = self.manager.find(self.name)
        return conn is not None and (conn.state != self.state_shown or self.controls.has_news())

    def close(self) -> None:
        for widget in [self.box, *descendants(self.box)]:
            widget.close()


class Dashboard(LiveView, widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no types
    """All sockets of a manager, one row each, updating as sockets come and go."""

    def __init__(self, *, manager: Manager | None = None, max_rate_hz: float = 1.0, refresher: Refresher | None = None) -> None:
        self.manager = manager if manager is not None else registry()
        self.max_rate_hz = min(float(max_rate_hz), MAX_RATE_HZ)
        self._row_refresher = refresher
        self.rows: dict[str, SocketRow] = {}
        self._last_full = float("-inf")
        self._lock = threading.Lock()
        self.title = widgets.HTML()
        self.title.add_class("nbsocket-dashboard-title")
        self.rows_box = widgets.VBox()
        self.snapshot_holder = snapshot_widget()
        super().__init__(
            children=[self.title, self.rows_box, self.snapshot_holder],
            _view_count=0,
            layout=widgets.Layout(border="1px solid var(--jp-border-color2, #ddd)", padding="6px"),
        )
        self.add_class("nbsocket-dashboard")
        self._render(time.monotonic())
        self._start_live(self.max_rate_hz, refresher)

    def __repr__(self) -> str:
        return f"<Dashboard {len(self.rows)} socket(s)>"

    def _tick(self, now: float) -> bool:
        if not self._gate.ready(now):
            return True
        changed = list(self.rows) != self.manager.names() or any(row.needs_render() for row in self.rows.values())
        if changed or now - self._last_full >= COUNTERS_EVERY:
            self._gate.mark(now)
            self._render(now)
        return True

    def _render(self, now: float) -> None:
        with self._lock:
            names = self.manager.names()
            for gone in [n for n in self.rows if n not in names]:
                self.rows.pop(gone).close()
            for name in names:
                if name not in self.rows:
                    self.rows[name] = SocketRow(self.manager, name, self._row_refresher)
            for row in self.rows.values():
                row.render(now)
            boxes = tuple(row.box for row in self.rows.values())
            if self.rows_box.children != boxes:
                self.rows_box.children = boxes
            count = len(names)
            self.title.value = (
                OFFLINE_STYLE
                + offline_note("these are the sockets as they were when the notebook was saved")
                + (
                    f"<b>nbsocket</b>: {count} socket{'s' if count != 1 else ''}"
                    if count
                    else "<b>nbsocket</b>: no sockets yet; connect one with <code>%ws_connect NAME URL</code> "
                    f"or <code>{esc('nbs.connect(name, url)')}</code>"
                )
            )
            self._last_full = now

    def _on_shown(self) -> None:
        self._last_full = float("-inf")

    def _on_closed(self) -> None:
        with self._lock:
            rows, self.rows = list(self.rows.values()), {}
        for row in rows:
            row.close()

    def snapshot_html(self) -> str:
        """Every socket's line as it looks now, as plain HTML (for viewers without widgets)."""
        with self._lock:
            summaries = "".join(row.summary.value for row in self.rows.values())
            title = self.title.value
        return f'<div class="nbsocket-dashboard-snapshot">{snapshot_note("the dashboard")}{title}{summaries}</div>'

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/html"] = self.snapshot_html()
        return bundle
