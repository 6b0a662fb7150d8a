"""What panels, charts and dashboards share: refreshed at a bounded rate while shown, stopped when closed.

"Shown" comes from ipywidgets' view count: the frontend reports every view
it creates and removes. A view that has been shown and then has no view left
(output cleared, notebook closed) pauses: it drops its live-frame
subscriptions and sends nothing until it is shown again. A view never seen by
a frontend (a headless run, a frontend that does not count views) keeps
updating at its bounded rate until it is closed.

A view's static snapshot (the ``text/html`` beside the widget in its output, what viewers
without widgets and a notebook run headless show) is refreshed as the view updates, at most
every :data:`SNAPSHOT_EVERY` seconds: in the output itself where the frontend applies display
updates (nbclient, papermill, ``nbconvert --execute``), and in a hidden ``nbsocket-snapshot``
widget whose saved state ``nbsocket.demo.save_hook`` copies into the output when JupyterLab or
Notebook 7 saves the notebook.
"""

from __future__ import annotations

import time
from typing import Any

import ipywidgets as widgets

from .throttle import RateGate, Refresher
from .throttle import refresher as default_refresher

__all__ = ["SNAPSHOT_CLASS", "SNAPSHOT_EVERY", "LiveView", "descendants", "snapshot_widget"]

SNAPSHOT_EVERY = 3.0
"""Seconds between refreshes of a view's static snapshot (when it changed)."""
SNAPSHOT_CLASS = "nbsocket-snapshot"
"""The CSS class of the hidden widget that holds a view's snapshot (the save hook looks for it)."""


def snapshot_widget() -> widgets.HTML:
    """The hidden widget that holds a view's static snapshot (its saved state keeps it)."""
    holder = widgets.HTML(layout=widgets.Layout(display="none"))
    holder.add_class(SNAPSHOT_CLASS)
    return holder


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
        self._snapshot_at = time.monotonic()
        self._display_handles: list[Any] = []
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
        if now - self._snapshot_at >= SNAPSHOT_EVERY or not keep:
            self._snapshot_at = now
            self.refresh_snapshot()
        if not keep:
            self._live = False
        return keep

    # --- the static snapshot ----------------------------------------------------------------

    def snapshot_html(self) -> str:
        """The view as it looks now, as plain HTML (subclasses draw it)."""
        raise NotImplementedError

    def refresh_snapshot(self) -> bool:
        """Take the snapshot again and put it where viewers without widgets will find it; True if it changed."""
        holder = getattr(self, "snapshot_holder", None)
        if holder is None:
            return False
        html = self.snapshot_html()
        if holder.value == html:
            return False
        holder.value = html
        if self._display_handles:
            bundle = self._repr_mimebundle_()  # type: ignore[attr-defined]
            for handle in list(self._display_handles):
                try:
                    handle.update(bundle, raw=True)
                except Exception:  # no kernel to publish to any more (the view outlived its shell)
                    self._display_handles.remove(handle)
        return True

    def _ipython_display_(self) -> None:
        """Shown with a display id, so the snapshot beside the widget can be refreshed later."""
        from IPython.display import display

        bundle = self._repr_mimebundle_()  # type: ignore[attr-defined]
        if bundle is None:
            return
        handle = display(bundle, raw=True, display_id=True)
        if handle is not None:
            self._display_handles.append(handle)

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
