"""What panels, charts and dashboards share: refreshed at a bounded rate while shown, stopped when closed.

"Shown" comes from ipywidgets' view count: the frontend reports every view
it creates and removes. A view that has been shown and then has no view left
(output cleared, notebook closed) pauses: it drops its live-frame
subscriptions and sends nothing until it is shown again. A view never seen by
a frontend (a headless run, a frontend that does not count views) keeps
updating at its bounded rate until it is closed.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from .throttle import RateGate, Refresher
from .throttle import refresher as default_refresher

__all__ = ["LiveView", "descendants"]


def descendants(widget: widgets.Widget) -> list[widgets.Widget]:
    """Every widget inside ``widget`` (its children, theirs, ...), not ``widget`` itself."""
    found: list[widgets.Widget] = []
    stack = list(getattr(widget, "children", ()))
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(getattr(child, "children", ()))
    return found


class LiveView:
    """Mixin for an ipywidgets box kept up to date by the refresher thread.

    Subclasses implement ``_tick(now)`` (render if something changed; False
    when the view is finished), and may implement ``_on_hidden``,
    ``_on_shown`` and ``_on_closed``.
    """

    _live = False

    def _start_live(self, max_rate_hz: float, refresher: Refresher | None = None) -> None:
        self._gate = RateGate(max_rate_hz)
        self._refresher = refresher or default_refresher
        self._live = True
        self._views_seen = False
        self._paused = False
        self.observe(self._on_view_count, names="_view_count")  # type: ignore[attr-defined]
        self._refresher.add(self)

    @property
    def live(self) -> bool:
        """True until the view is closed or its socket is removed."""
        return self._live

    @property
    def displayed(self) -> bool:
        """False once every view the frontend showed is gone."""
        return not self._views_seen or bool(self._view_count)  # type: ignore[attr-defined]

    def _on_view_count(self, change: dict[str, Any]) -> None:
        if change.get("new"):
            self._views_seen = True
            self._refresher.poke()

    def refresh(self, now: float) -> bool:
        """Called by the refresher thread; False when the view is finished."""
        if not self._live:
            return False
        if not self.displayed:
            if not self._paused:
                self._paused = True
                self._on_hidden()
            return True
        if self._paused:
            self._paused = False
            self._on_shown()
        keep = self._tick(now)
        if not keep:
            self._live = False
        return keep

    def _tick(self, now: float) -> bool:
        raise NotImplementedError

    def _on_hidden(self) -> None:
        """No view is shown any more."""

    def _on_shown(self) -> None:
        """A view is shown again after a pause."""

    def _on_closed(self) -> None:
        """The view is being closed."""

    def stop(self) -> None:
        """Stop updating (the widgets stay as they are)."""
        self._live = False
        refresher = getattr(self, "_refresher", None)
        if refresher is None:  # closed before it started (its __init__ failed)
            return
        refresher.discard(self)
        self._on_closed()

    def close(self) -> None:
        """Stop updating and close every widget of the view."""
        self.stop()
        for child in descendants(self):
            child.close()
        super().close()  # type: ignore[misc]
