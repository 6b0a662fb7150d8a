"""The live frame: every received message as a row of a pandas DataFrame, bounded and consistent.

Rows are appended (on the loop thread) to a small pending list and turned
into DataFrame chunks in batches with ``from_records``; a snapshot
concatenates the chunks once and keeps the result as the single chunk, so
asking again costs nothing until new rows arrive. ``max_rows`` makes it a ring
buffer. This module does no I/O: the connection layer calls :meth:`LiveFrame.poll`
to deliver new rows to subscribers at their rate.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

log = logging.getLogger("nbsocket")

BASE_COLUMNS = ("timestamp", "socket", "seq")
EXTRA = "extra"


class Subscription:
    """A subscriber's registration: cancel it to stop receiving new rows."""

    def __init__(self, frame: LiveFrame, callback: Callable[[pd.DataFrame], Any], interval: float) -> None:
        self.frame = frame
        self.callback = callback
        self.interval = interval
        self.next_index = 0
        self.last_call = float("-inf")
        self.calls = 0
        self.active = True

    def cancel(self) -> None:
        """Stop delivering rows to this subscriber."""
        self.active = False
        self.frame._unsubscribe(self)

    def __repr__(self) -> str:
        return f"<Subscription to {self.frame.name!r} at most {1 / self.interval:g}/s, {self.calls} calls>"


class LiveFrame:
    """A socket's received messages as rows; thread-safe, capped at ``max_rows`` (oldest dropped)."""

    def __init__(self, name: str, max_rows: int | None = 100_000, max_columns: int = 1000, chunk_rows: int = 2048) -> None:
        if max_rows is not None and max_rows < 1:
            raise ValueError("max_rows must be a positive number of rows, or None for no cap")
        if max_columns < len(BASE_COLUMNS) + 2:
            raise ValueError(f"max_columns must be at least {len(BASE_COLUMNS) + 2}")
        self.name = name
        self.max_rows = max_rows
        self.max_columns = max_columns
        self.chunk_rows = max(16, min(chunk_rows, max_rows or chunk_rows))
        self._lock = threading.RLock()
        self._columns: dict[str, None] = dict.fromkeys(BASE_COLUMNS)
        self._pending: list[dict[str, Any]] = []
        self._chunks: list[pd.DataFrame] = []
        self._starts: list[int] = []  # global row index of each chunk's first row
        self._first = 0  # global index of the oldest row kept
        self._total = 0  # global index of the next row
        self._cache: pd.DataFrame | None = None
        self._capped_fields_reported = False
        self.capped_fields = 0
        self._subscribers: list[Subscription] = []
        self.on_column_cap: Callable[[str], Any] | None = None

    # --- writing (loop thread) ------------------------------------------------

    def append(self, ts_ns: int, seq: int, fields: dict[str, Any]) -> None:
        """Add one row: receipt time in ns, the socket's seq, and the message's fields."""
        row = {"timestamp": ts_ns, "socket": self.name, "seq": seq}
        columns = self._columns
        if fields.keys() <= columns.keys():
            row.update(fields)
        else:
            self._add_with_new_columns(row, fields)
        with self._lock:
            self._pending.append(row)
            self._total += 1
            self._cache = None
            if len(self._pending) >= self.chunk_rows:
                self._flush_locked()

    def _add_with_new_columns(self, row: dict[str, Any], fields: dict[str, Any]) -> None:
        columns = self._columns
        extra: dict[str, Any] | None = None
        for key, value in fields.items():
            if key in columns:
                row[key] = value
            elif len(columns) < self.max_columns - 1:  # one place is kept for `extra`
                columns[key] = None
                row[key] = value
            else:
                if extra is None:
                    extra = {}
                extra[key] = value
        if extra is not None:
            columns.setdefault(EXTRA, None)
            row[EXTRA] = extra
            self.capped_fields += len(extra)
            if not self._capped_fields_reported:
                self._capped_fields_reported = True
                message = (
                    f"socket {self.name!r}: the live frame reached its cap of {self.max_columns} columns; "
                    f"further new fields go into the {EXTRA!r} column (raise max_columns to keep them apart)"
                )
                log.warning(message)
                if self.on_column_cap is not None:
                    self.on_column_cap(message)

    def _flush_locked(self) -> None:
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        start = self._total - len(rows)
        chunk = pd.DataFrame.from_records(rows)
        chunk["timestamp"] = pd.to_datetime(chunk["timestamp"], unit="ns", utc=True)
        chunk.index = pd.RangeIndex(start, start + len(chunk))
        self._chunks.append(chunk)
        self._starts.append(start)
        self._evict_locked()

    def _evict_locked(self) -> None:
        if self.max_rows is None:
            return
        keep_from = self._total - self.max_rows
        if keep_from <= self._first:
            return
        while self._chunks and self._starts[0] + len(self._chunks[0]) <= keep_from:
            self._chunks.pop(0)
            self._starts.pop(0)
        if self._chunks and self._starts[0] < keep_from:
            cut = keep_from - self._starts[0]
            self._chunks[0] = self._chunks[0].iloc[cut:]
            self._starts[0] = keep_from
        if self._pending and not self._chunks:
            pending_start = self._total - len(self._pending)
            if pending_start < keep_from:
                del self._pending[: keep_from - pending_start]
        self._first = max(self._first, keep_from)

    # --- reading (any thread) ----------------------------------------------------

    def snapshot(self) -> pd.DataFrame:
        """A consistent copy of the rows kept now, which the caller may modify freely."""
        with self._lock:
            if self._cache is not None:
                return self._cache.copy(deep=False)
            self._flush_locked()
            chunks = list(self._chunks)
            columns = list(self._columns)
        frame = self._combine(chunks, columns)
        with self._lock:
            if len(self._chunks) >= len(chunks) and all(a is b for a, b in zip(self._chunks, chunks)):
                self._chunks[: len(chunks)] = [frame] if len(frame) else []
                self._starts[: len(chunks)] = [int(frame.index[0])] if len(frame) else []
                if not self._pending and len(self._chunks) <= 1:
                    self._cache = frame
        return frame.copy(deep=False)

    def _combine(self, chunks: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
        if not chunks:
            return self._empty(columns)
        frame = chunks[0] if len(chunks) == 1 else pd.concat(chunks)
        if list(frame.columns) != columns:
            frame = frame.reindex(columns=[c for c in columns if c in frame.columns] or columns)
        return frame

    @staticmethod
    def _empty(columns: list[str]) -> pd.DataFrame:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        frame["timestamp"] = pd.Series(dtype="datetime64[ns, UTC]")
        frame["seq"] = pd.Series(dtype="int64")
        return frame

    def tail(self, n: int = 5) -> pd.DataFrame:
        """The last ``n`` rows (a copy)."""
        with self._lock:
            self._flush_locked()
            chunks, have = [], 0
            for chunk in reversed(self._chunks):
                chunks.append(chunk)
                have += len(chunk)
                if have >= n:
                    break
            columns = list(self._columns)
        frame = self._combine(list(reversed(chunks)), columns)
        return frame.iloc[max(0, len(frame) - n):].copy(deep=False)

    def since(self, timestamp: Any) -> pd.DataFrame:
        """Rows received at or after ``timestamp`` (a datetime, string or pandas Timestamp; naive means UTC)."""
        ts = pd.Timestamp(timestamp)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        frame = self.snapshot()
        return frame[frame["timestamp"] >= ts]

    def rows_since(self, index: int) -> pd.DataFrame:
        """Rows whose global index is ``index`` or later (still kept), for subscribers."""
        with self._lock:
            self._flush_locked()
            index = max(index, self._first)
            parts = []
            for start, chunk in zip(self._starts, self._chunks):
                end = start + len(chunk)
                if end <= index:
                    continue
                parts.append(chunk if start >= index else chunk.iloc[index - start:])
            columns = list(self._columns)
        return self._combine(parts, columns)

    def clear(self) -> None:
        """Drop every row kept (sequence numbers continue)."""
        with self._lock:
            self._pending.clear()
            self._chunks.clear()
            self._starts.clear()
            self._first = self._total
            self._columns = dict.fromkeys(BASE_COLUMNS)
            self._cache = None

    def __len__(self) -> int:
        with self._lock:
            return self._total - self._first

    @property
    def total(self) -> int:
        """Rows ever appended, including those the cap dropped."""
        return self._total

    @property
    def dropped(self) -> int:
        """Rows dropped by the ``max_rows`` cap or ``clear``."""
        return self._first

    @property
    def columns(self) -> list[str]:
        """The columns seen so far."""
        return list(self._columns)

    # --- subscribers -------------------------------------------------------------

    def subscribe(self, callback: Callable[[pd.DataFrame], Any], max_rate_hz: float = 4.0) -> Subscription:
        """Call ``callback(new_rows)`` with the rows that arrived since its last call, at most ``max_rate_hz`` times a second."""
        if not callable(callback):
            raise TypeError("callback must be callable")
        if not max_rate_hz or max_rate_hz <= 0:
            raise ValueError("max_rate_hz must be a positive number of calls per second")
        sub = Subscription(self, callback, 1.0 / max_rate_hz)
        with self._lock:
            sub.next_index = self._total
            self._subscribers.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    @property
    def has_subscribers(self) -> bool:
        """True while anyone is subscribed."""
        return bool(self._subscribers)

    def poll(self, now: float | None = None) -> int:
        """Deliver new rows to each subscriber whose interval has passed; returns the calls made."""
        now = time.monotonic() if now is None else now
        calls = 0
        for sub in list(self._subscribers):
            if not sub.active or now - sub.last_call < sub.interval or sub.next_index >= self._total:
                continue
            with self._lock:
                end = self._total
            rows = self.rows_since(sub.next_index)
            sub.next_index = end
            sub.last_call = now
            sub.calls += 1
            calls += 1
            try:
                sub.callback(rows.loc[rows.index < end] if len(rows) else rows)
            except Exception:
                log.exception("live frame %r: a subscriber callback failed", self.name)
        return calls

    def __repr__(self) -> str:
        cap = f"max {self.max_rows}" if self.max_rows else "no cap"
        return f"<LiveFrame {self.name!r}: {len(self)} rows ({cap}), {len(self._columns)} columns>"


def utc_now() -> _dt.datetime:
    """The current time, timezone-aware UTC."""
    return _dt.datetime.now(_dt.timezone.utc)
