"""A progress bar for long sends and waits (replay, burst, ``%ws_wait``): an ipywidgets ``IntProgress`` in a
notebook, nothing elsewhere."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from IPython.display import DisplayHandle

__all__ = ["UPDATE_SECONDS", "ProgressBar", "frontend_present"]


UPDATE_SECONDS = 0.1
"""At most this often does the bar change (each change is a message to the frontend)."""


def frontend_present(shell: object = None) -> bool:
    """True inside a Jupyter kernel, where a frontend can show widgets (``shell``: the IPython shell, default the current one)."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    return getattr(shell, "kernel", None) is not None


class ProgressBar:
    """Shows ``done`` of ``total`` while something runs; silent when there is no frontend.

    ``enabled=None`` decides by :func:`frontend_present`. ``total=None`` (a
    generator of unknown length) shows the count only. Updates are throttled to
    one every :data:`UPDATE_SECONDS`, so sending thousands of messages does not
    flood the kernel's output channel.
    """

    def __init__(
        self, total: int | None, label: str, enabled: bool | None = None, display: Callable[[object], object] | None = None
    ) -> None:
        self.total = total
        self.label = label
        self.bar: Any = None  # an ipywidgets IntProgress (ipywidgets ships no types)
        self.handle: DisplayHandle | None = None
        self._last = float("-inf")
        if enabled is None:
            enabled = frontend_present()
        if not enabled:
            return
        try:
            import ipywidgets
        except ImportError:
            return
        self.bar = ipywidgets.IntProgress(value=0, min=0, max=max(total or 0, 1), description=self._describe(0))
        self.bar.style.description_width = "initial"
        if display is None:
            from IPython.display import display as show

            self.handle = show(self.bar, display_id=True)
        else:
            display(self.bar)

    def _describe(self, done: int) -> str:
        return f"{self.label} {done}" + (f"/{self.total}" if self.total is not None else "")

    def update(self, done: int, *, force: bool = False) -> None:
        """Show ``done`` items finished (throttled unless ``force``)."""
        bar = self.bar
        if bar is None:
            return
        now = time.monotonic()
        if not force and now - self._last < UPDATE_SECONDS:
            return
        self._last = now
        if self.total is None:
            bar.max = max(bar.max, done, 1)
        bar.value = min(done, bar.max)
        bar.description = self._describe(done)

    def finish(self, done: int, summary: str, ok: bool = True) -> None:
        """Show the final count and a one-line summary; the bar stays, green or red."""
        bar = self.bar
        if bar is None:
            return
        self.update(done, force=True)
        bar.description = f"{self.label}: {summary}"
        bar.bar_style = "success" if ok else "danger"

    def close(self) -> None:
        """Take the bar away (its place in the output is left empty), e.g. when a wait ends."""
        bar, self.bar = self.bar, None
        if bar is None:
            return
        if self.handle is not None:
            self.handle.update({"text/plain": ""}, raw=True)
        bar.close()
