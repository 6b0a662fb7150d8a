"""Keeping widget traffic bounded: a rate gate, a message-rate meter, and the one thread that refreshes views.

Every widget message goes through the kernel's iopub channel, which
jupyter_server cuts off past 1000 messages a second. So views never update
per received message: rows reach them through the live frame's rate-limited
subscriptions (on the loop thread, where they only buffer them), and a single
``nbsocket-widgets`` thread renders each view at most ``max_rate_hz`` times a
second. The loop thread never touches a widget, so a slow frontend or a busy
iopub channel cannot stall a socket.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..errors import InvalidOptionError

__all__ = ["TICK_SECONDS", "RateGate", "RateMeter", "RedrawBudget", "Refresher", "View", "refresher"]


log = logging.getLogger("nbsocket")

TICK_SECONDS = 0.1
"""How often the refresher thread looks at its views."""


class RateGate:
    """Lets an action through at most ``max_rate_hz`` times a second."""

    def __init__(self, max_rate_hz: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not max_rate_hz or max_rate_hz <= 0:
            raise InvalidOptionError("max_rate_hz must be a positive number of updates per second")
        self.interval = 1.0 / max_rate_hz
        self._clock = clock
        self._last = float("-inf")

    def ready(self, now: float | None = None) -> bool:
        """True if the action may run now."""
        now = self._clock() if now is None else now
        return now - self._last >= self.interval

    def mark(self, now: float | None = None) -> None:
        """Record that the action ran."""
        self._last = self._clock() if now is None else now

    def try_pass(self, now: float | None = None) -> bool:
        """``ready`` and ``mark`` in one step: True if the action may run (and it is counted)."""
        now = self._clock() if now is None else now
        if not self.ready(now):
            return False
        self._last = now
        return True


class RateMeter:
    """Messages per second from a growing counter, averaged over the last ``span`` seconds."""

    def __init__(self, span: float = 2.0) -> None:
        self.span = span
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def update(self, now: float, count: int) -> float:
        """Add a sample of the counter and return the current rate."""
        samples = self._samples
        if samples and count < samples[-1][1]:  # the counter went back (a new connection object)
            samples.clear()
        samples.append((now, count))
        while len(samples) > 2 and now - samples[1][0] >= self.span:
            samples.popleft()
        first_t, first_n = samples[0]
        elapsed = now - first_t
        return (count - first_n) / elapsed if elapsed > 0 else 0.0


class RedrawBudget:
    """Redraws shared by every view of a kind in the kernel: together at most ``per_second`` a second.

    A browser spends its main thread on each redraw of an interactive chart (tens of milliseconds
    for a Plotly chart), so the more charts a notebook shows, the less often each redraws: a view
    may redraw once ``active / per_second`` seconds have passed since its last redraw, ``active``
    being the views that redrew in the last :attr:`active_for` seconds (itself included). The
    views take turns; a view's own rate limit still applies.
    """

    def __init__(self, per_second: float, active_for: float = 5.0) -> None:
        if per_second <= 0:
            raise InvalidOptionError("per_second must be a positive number of redraws a second")
        self.per_second = per_second
        self.active_for = active_for
        self._last: dict[int, float] = {}
        self._lock = threading.Lock()

    def ready(self, view: object, now: float) -> bool:
        """True if ``view`` may redraw at ``now`` (monotonic seconds)."""
        key = id(view)
        with self._lock:
            active = 1 + sum(1 for other, at in self._last.items() if other != key and now - at < self.active_for)
            return now - self._last.get(key, float("-inf")) >= active / self.per_second

    def drew(self, view: object, now: float) -> None:
        """``view`` redrew at ``now``."""
        with self._lock:
            self._last[id(view)] = now
            for other in [other for other, at in self._last.items() if now - at >= 2 * self.active_for]:
                del self._last[other]


class View(Protocol):
    """What the refresher drives: ``refresh(now)`` returns False once the view is finished."""

    def refresh(self, now: float) -> bool: ...


class Refresher:
    """A daemon thread that calls ``refresh(now)`` on its views every :data:`TICK_SECONDS`.

    It runs only while it has views, and leaves the loop thread alone, so it
    keeps working across ``nbs.shutdown()`` and a later ``nbs.connect()``.
    """

    def __init__(self, interval: float = TICK_SECONDS, name: str = "nbsocket-widgets") -> None:
        self.interval = interval
        self.name = name
        self._views: list[View] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def add(self, view: View) -> None:
        """Start refreshing ``view`` (starting the thread if needed)."""
        with self._lock:
            if view not in self._views:
                self._views.append(view)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def discard(self, view: View) -> None:
        """Stop refreshing ``view``."""
        with self._lock:
            if view in self._views:
                self._views.remove(view)

    def __contains__(self, view: object) -> bool:
        with self._lock:
            return view in self._views

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def poke(self) -> None:
        """Refresh now instead of at the next tick (after a button's action finished, say)."""
        self._wake.set()

    def _run(self) -> None:
        while True:
            with self._lock:
                views = list(self._views)
                if not views:
                    self._thread = None
                    return
            now = time.monotonic()
            for view in views:
                try:
                    keep = view.refresh(now)
                except Exception:
                    log.exception("nbsocket widgets: refreshing %r failed", view)
                    keep = True
                if not keep:
                    self.discard(view)
            self._wake.wait(self.interval)
            self._wake.clear()


refresher = Refresher()
"""The refresher shared by every panel, chart and dashboard of the kernel."""
