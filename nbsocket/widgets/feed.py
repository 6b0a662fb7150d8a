"""The rows of a socket's live frame, handed from the loop thread to the widgets."""

from __future__ import annotations

import collections

import pandas as pd

from ..core.frame import FrameSubscription, LiveFrame
from .chart import ChartBuffer

__all__ = ["SocketFeed"]


class SocketFeed:
    """The rows of one socket's live frame, handed from the loop thread to the refresher.

    The frame subscription's callback (on the loop thread) only appends the new
    rows to a deque; :meth:`drain` (on the refresher thread) folds them into the
    latest-rows table and the chart buffer. So the loop never waits for a view.
    """

    def __init__(self, rows: int, chart: ChartBuffer | None, max_rate_hz: float) -> None:
        self.rows = rows
        self.chart = chart
        self.max_rate_hz = max_rate_hz
        self.recent: pd.DataFrame | None = None
        self.version = 0
        self._inbox: collections.deque[pd.DataFrame] = collections.deque(maxlen=256)
        self._subscription: FrameSubscription | None = None
        self._frame: LiveFrame | None = None

    def attach(self, frame: LiveFrame | None) -> None:
        """Follow ``frame`` (a :class:`~nbsocket.core.frame.LiveFrame`), starting from the rows it already has."""
        self.detach()
        self._frame = frame
        self._inbox.clear()
        self.recent = None
        if self.chart is not None:
            self.chart.clear()
        if frame is None:
            self.version += 1
            return
        subscription = frame.subscribe(self._inbox.append, max_rate_hz=self.max_rate_hz)
        start = subscription.next_index
        keep = max(self.rows, self.chart.window if self.chart is not None else 0)
        seed = frame.rows_since(max(0, start - keep))
        self._take(seed[seed.index < start] if len(seed) else seed)
        self._subscription = subscription
        self.version += 1

    def detach(self) -> None:
        """Stop following the frame."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.cancel()
        self._inbox.clear()

    @property
    def attached(self) -> bool:
        """True while subscribed to a frame."""
        return self._subscription is not None

    @property
    def total(self) -> int | None:
        """Rows kept in the frame now."""
        return len(self._frame) if self._frame is not None else None

    def drain(self) -> bool:
        """Fold the rows that arrived into the table and chart; True if there were any."""
        got = False
        while self._inbox:
            self._take(self._inbox.popleft())
            got = True
        if got:
            self.version += 1
        return got

    def _take(self, rows: pd.DataFrame) -> None:
        if rows is None or not len(rows):
            return
        if self.recent is None or not len(self.recent) or len(rows) >= self.rows:
            self.recent = rows.iloc[-self.rows :]
        else:
            self.recent = pd.concat([self.recent, rows]).iloc[-self.rows :]
        if self.chart is not None:
            self.chart.ingest(rows)
