"""The live frame: every received message as a row of a pandas DataFrame, bounded and consistent.

Rows are appended (on the loop thread) to pending rows (``PendingRows``) and turned
into DataFrame chunks in batches; small trailing chunks are
merged, so the chunk count stays low. A snapshot concatenates the chunks once
and keeps the result as the single chunk, so asking again costs nothing until
new rows arrive. ``max_rows`` makes it a ring buffer.

Every chunk is handed to the frame's sinks (a recorder) before the cap can drop
any of its rows, so a sink sees every row exactly once, in order. This module
does no I/O: the manager's ticker calls :meth:`LiveFrame.poll` to deliver new
rows to subscribers at their rate and to flush pending rows to sinks.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidOptionError
from .flatten import field_name
from .rows import PendingRows

__all__ = [
    "BASE_COLUMNS",
    "EXTRA",
    "FLUSH_SECONDS",
    "OWN_COLUMNS",
    "SHARING_NEEDS_COPY",
    "TOPIC",
    "FrameSubscription",
    "LiveFrame",
    "Sink",
]


log = logging.getLogger("nbsocket")


def _copy_on_write() -> bool:
    """True when pandas copies on write (always from pandas 3), so a shallow copy is a safe snapshot."""
    if int(pd.__version__.split(".")[0]) >= 3:
        return True
    return getattr(pd.options.mode, "copy_on_write", False) is True


SHARING_NEEDS_COPY = not _copy_on_write()
"""Without copy-on-write (pandas 2 by default) a snapshot must be a deep copy, or the user's edits would reach the live frame."""

BASE_COLUMNS = ("timestamp", "socket", "seq")
EXTRA = "extra"
TOPIC = "topic"
"""The column naming a protocol message (a payload field of that name becomes ``data.topic``)."""
OWN_COLUMNS = frozenset({"data", "error", TOPIC})
"""Columns nbsocket itself fills (beside BASE_COLUMNS): always columns of their own, outside the ``max_columns`` cap."""
FLUSH_SECONDS = 1.0
"""Pending rows reach the sinks at least this often (while the ticker polls the frame)."""

Sink = Callable[[pd.DataFrame], Any]


class FrameSubscription:
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
        return f"<FrameSubscription to {self.frame.name!r} at most {1 / self.interval:g}/s, {self.calls} calls>"


class _Chunk:
    """Rows ``start .. start+len(frame)`` as one DataFrame; ``allocated`` is the row count its buffers were built for."""

    __slots__ = ("allocated", "frame", "start")

    def __init__(self, frame: pd.DataFrame, start: int, allocated: int | None = None) -> None:
        self.frame = frame
        self.start = start
        self.allocated = len(frame) if allocated is None else allocated

    @property
    def end(self) -> int:
        return self.start + len(self.frame)


class LiveFrame:
    """A socket's received messages as rows; thread-safe, capped at ``max_rows`` (oldest dropped first).

    Columns are ``timestamp`` (UTC time of receipt), ``socket``, ``seq``, then
    the message fields in order of first appearance. A field first seen late is
    NA in earlier rows; a field that changes type keeps its earlier values (the
    column becomes ``object``). Past ``max_columns`` columns, new fields go into
    one ``extra`` column as a dict per row, reported once.

    Pure data, no threads of its own: a frame written on one thread and read
    on others needs a re-entrant ``lock`` (the runtime passes a
    ``threading.RLock``); without one it is for one thread only.
    """

    def __init__(
        self,
        name: str,
        max_rows: int | None = 100_000,
        max_columns: int = 1000,
        chunk_rows: int = 4096,
        flush_interval: float = FLUSH_SECONDS,
        lock: contextlib.AbstractContextManager[Any] | None = None,
        columns: tuple[str, ...] = (),
    ) -> None:
        if max_rows is not None and max_rows < 1:
            raise InvalidOptionError("max_rows must be a positive number of rows, or None for no cap")
        if max_columns < len(BASE_COLUMNS) + 2:
            raise InvalidOptionError(f"max_columns must be at least {len(BASE_COLUMNS) + 2}")
        self.name = name
        self.max_rows = max_rows
        self.max_columns = max_columns
        self.chunk_rows = max(16, min(chunk_rows, max_rows or chunk_rows))
        self.flush_interval = flush_interval
        self._lock = lock if lock is not None else contextlib.nullcontext()
        unknown = [column for column in columns if column not in OWN_COLUMNS]
        if unknown:
            raise InvalidOptionError(
                f"a live frame starts with nbsocket's own columns only ({sorted(OWN_COLUMNS)}), not {unknown}"
            )
        self._fields_seen: dict[str, None] = dict.fromkeys(columns)  # message columns, in order of first appearance
        self._message_columns = 0  # of them, those that count against max_columns (not OWN_COLUMNS)
        self._extra_used = False
        self._pending = PendingRows(self._admit_row, self._register_names)
        self._chunks: list[_Chunk] = []
        self._first = 0  # global index of the oldest row kept
        self._total = 0  # global index of the next row
        self._cache: pd.DataFrame | None = None
        self._socket_names: Any = None
        self._last_flush = time.monotonic()
        self._capped_fields_reported = False
        self.capped_fields = 0
        self._subscribers: tuple[FrameSubscription, ...] = ()  # tuples, replaced when they change: an empty one costs
        self._sinks: tuple[Sink, ...] = ()  # a socket nothing (no container for the collector to visit)
        self._sink_every: tuple[float | None, ...] = ()  # each sink's longest wait for pending rows (None: flush_interval)
        self._sinks_wait = flush_interval  # the shortest of them: how often poll() flushes for the sinks
        self.on_column_cap: Callable[[str], Any] | None = None
        self.on_watch_change: Callable[[], Any] = lambda: None  # called when subscribers or sinks come or go

    # --- writing (loop thread) ------------------------------------------------

    def append(self, ts_ns: int, seq: int, fields: dict[str, Any]) -> None:
        """Add one row: receipt time in ns since the epoch, the socket's seq, and the message's fields.

        ``fields`` is kept as it is until the next flush: pass a dict nobody changes afterwards.
        """
        with self._lock:
            self._pending.add_fields(ts_ns, seq, fields)
            self._added(1)

    def append_messages(
        self,
        ts_ns: int,
        first_seq: int,
        datas: list[Any],
        errors: list[str | None],
        bodies: list[str | bytes],
    ) -> None:
        """Add the messages of one read (received at ``ts_ns``, numbered from ``first_seq``): their fields
        are taken from the decoded ``datas`` (``message_fields``), parse ``errors`` and raw ``bodies``."""
        with self._lock:
            self._pending.add_messages(ts_ns, first_seq, datas, errors, bodies)
            self._added(len(datas))

    def _added(self, count: int) -> None:
        self._total += count
        self._cache = None
        if len(self._pending) >= self.chunk_rows:
            self._flush_locked()

    def _admit_row(self, fields: dict[str, Any]) -> dict[str, Any]:
        return fields if fields.keys() <= self._fields_seen.keys() else self._admit(fields)

    def _register_names(self, names: tuple[str, ...]) -> bool:
        """Register a key plan's column names; False (nothing registered) if they would pass the column cap."""
        seen = self._fields_seen
        new = [name for name in names if name not in seen]
        if not new:
            return True
        counted = [name for name in new if name not in OWN_COLUMNS]
        if EXTRA in new or self._message_columns + len(counted) > self.max_columns - len(BASE_COLUMNS) - 1:
            return False
        for name in new:
            seen[name] = None
        self._message_columns += len(counted)
        return True

    def _admit(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Register new columns (up to the cap); fields past the cap go into ``extra``."""
        seen = self._fields_seen
        room = self.max_columns - len(BASE_COLUMNS) - 1  # one place is kept for `extra`
        row: dict[str, Any] = {}
        extra: dict[str, Any] | None = None
        for key, value in fields.items():
            if key not in seen:
                if key in BASE_COLUMNS or key == EXTRA or not isinstance(key, str):
                    key = field_name(key)
                    if key in seen:
                        row[key] = value
                        continue
                if key in OWN_COLUMNS:  # reserved: never pushed into `extra` by the cap
                    seen[key] = None
                    row[key] = value
                    continue
                if self._message_columns >= room:
                    if extra is None:
                        extra = {}
                    extra[key] = value
                    continue
                seen[key] = None
                self._message_columns += 1
            row[key] = value
        if extra is not None:
            row[EXTRA] = extra
            self._extra_used = True
            self.capped_fields += len(extra)
            if not self._capped_fields_reported:
                self._capped_fields_reported = True
                message = (
                    f"socket {self.name!r}: the live frame reached its cap of {self.max_columns} columns; "
                    f"further new fields go into the {EXTRA!r} column (connect with a larger max_columns to keep them apart)"
                )
                log.warning(message)
                if self.on_column_cap is not None:
                    try:
                        self.on_column_cap(message)
                    except Exception:
                        log.exception("live frame %r: the column-cap callback failed", self.name)
        return row

    def flush(self) -> None:
        """Turn the pending rows into a chunk now and hand it to the sinks."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        count = len(self._pending)
        if not count:
            return
        start = self._total - count
        ts, seqs, fields = self._pending.take()
        chunk = self._build(ts, seqs, fields, start)
        self._last_flush = time.monotonic()
        for sink in self._sinks:
            try:
                sink(chunk)
            except Exception:
                log.exception("live frame %r: a sink failed", self.name)
        self._store(chunk, start)
        self._evict_locked()

    def _build(self, ts: list[int], seqs: list[int], fields: dict[str, Any], start: int) -> pd.DataFrame:
        count = len(ts)
        columns: dict[str, Any] = {
            "timestamp": pd.DatetimeIndex(np.array(ts, dtype="int64").view("datetime64[ns]")).tz_localize("UTC").array,
            "socket": self._socket_column(count),
            "seq": np.array(seqs, dtype="int64"),
            **fields,
        }
        return pd.DataFrame(columns, index=pd.RangeIndex(start, start + count))

    def _socket_column(self, count: int) -> Any:
        """The socket name ``count`` times: slices of one array, shared by the chunks."""
        names = self._socket_names
        if names is None or len(names) < count:
            names = self._socket_names = pd.array(  # type: ignore[call-overload]  # pandas-stubs 2.x lack dtype="str"
                [self.name] * max(count, self.chunk_rows), dtype="str"
            )
        return names[:count]

    def _store(self, frame: pd.DataFrame, start: int) -> None:
        chunks = self._chunks
        chunks.append(_Chunk(frame, start))
        if len(chunks) >= 2 and len(chunks[-2].frame) < self.chunk_rows:
            last = chunks.pop()
            before = chunks.pop()
            chunks.append(_Chunk(pd.concat([before.frame, last.frame]), before.start))

    def _evict_locked(self) -> None:
        if self.max_rows is None:
            return
        keep_from = self._total - self.max_rows  # called right after a flush: nothing is pending
        if keep_from <= self._first:
            return
        chunks = self._chunks
        while chunks and chunks[0].end <= keep_from:
            chunks.pop(0)
        if chunks and chunks[0].start < keep_from:
            head = chunks[0]
            kept = head.frame.iloc[keep_from - head.start :]
            if len(kept) * 2 < head.allocated and head.allocated > self.chunk_rows:
                # a trimmed big chunk would keep its whole buffers alive: copy what is left
                chunks[0] = _Chunk(kept.take(np.arange(len(kept))), keep_from)
            else:
                chunks[0] = _Chunk(kept, keep_from, head.allocated)
        self._first = keep_from
        self._cache = None

    # --- reading (any thread) ----------------------------------------------------

    def snapshot(self) -> pd.DataFrame:
        """A consistent copy of the rows kept now, which the caller may modify freely.

        The index is the row's position since the frame started (it keeps
        counting when the cap drops old rows).
        """
        with self._lock:
            cached = self._cache
            if cached is not None:
                return cached.copy(deep=SHARING_NEEDS_COPY)
            self._flush_locked()
            chunks = list(self._chunks)
            columns = self._column_order()
        frame = self._combine([c.frame for c in chunks], columns)
        with self._lock:
            current = self._chunks
            if len(current) >= len(chunks) and all(a is b for a, b in zip(current, chunks, strict=False)):
                # nothing of these rows changed meanwhile: keep the combined frame as their one chunk
                consolidated = [_Chunk(frame, chunks[0].start)] if len(chunks) > 1 else []
                current[: len(chunks)] = consolidated or current[: len(chunks)]
                if len(current) == len(chunks) and not self._pending:
                    self._cache = frame
        return frame.copy(deep=SHARING_NEEDS_COPY)

    def _column_order(self) -> list[str]:
        return [*BASE_COLUMNS, *self._fields_seen, *([EXTRA] if self._extra_used else [])]

    def _combine(self, frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
        if not frames:
            return self._empty(columns)
        frame = frames[0] if len(frames) == 1 else pd.concat(frames)
        if list(frame.columns) != columns:
            present = set(frame.columns)
            order = [c for c in columns if c in present]
            if list(frame.columns) != order:
                frame = frame[order]
        return frame

    def _empty(self, columns: list[str]) -> pd.DataFrame:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        frame["timestamp"] = pd.Series(dtype="datetime64[ns, UTC]")
        frame["socket"] = pd.Series(dtype="str")
        frame["seq"] = pd.Series(dtype="int64")
        return frame

    def tail(self, n: int = 5) -> pd.DataFrame:
        """The last ``n`` rows (a copy)."""
        if n <= 0:
            return self.snapshot().iloc[:0]
        with self._lock:
            cached = self._cache
            if cached is None:
                self._flush_locked()
                frames, have = [], 0
                for chunk in reversed(self._chunks):
                    frames.append(chunk.frame)
                    have += len(chunk.frame)
                    if have >= n:
                        break
                columns = self._column_order()
        frame = cached if cached is not None else self._combine(frames[::-1], columns)
        return frame.iloc[max(0, len(frame) - n) :].copy(deep=SHARING_NEEDS_COPY)

    def since(self, timestamp: Any) -> pd.DataFrame:
        """Rows received at or after ``timestamp`` (a datetime, string or pandas Timestamp; naive means UTC)."""
        ts = pd.Timestamp(timestamp)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        frame = self.snapshot()
        return frame[frame["timestamp"] >= ts]

    def rows_since(self, index: int) -> pd.DataFrame:
        """Rows whose position (index) is ``index`` or later, of those still kept."""
        return self._rows_from(index)[0]

    def _rows_from(self, index: int) -> tuple[pd.DataFrame, int]:
        with self._lock:
            self._flush_locked()
            index = max(index, self._first)
            parts = []
            for chunk in self._chunks:
                if chunk.end <= index:
                    continue
                parts.append(chunk.frame if chunk.start >= index else chunk.frame.iloc[index - chunk.start :])
            columns = self._column_order()
            end = self._total
        rows = self._combine(parts, columns)
        return (
            rows.copy(deep=SHARING_NEEDS_COPY) if any(rows is p for p in parts) else rows
        ), end  # never hand out a stored chunk

    def clear(self) -> None:
        """Drop every row kept (sequence numbers and positions go on; sinks still get the pending rows)."""
        with self._lock:
            self._flush_locked()
            self._chunks.clear()
            self._first = self._total
            self._fields_seen = {}
            self._message_columns = 0
            self._extra_used = False
            self._cache = None

    def __len__(self) -> int:
        with self._lock:
            kept = self._total - self._first
            return kept if self.max_rows is None else min(kept, self.max_rows)

    @property
    def total(self) -> int:
        """Rows ever appended, including those the cap dropped."""
        return self._total

    @property
    def dropped(self) -> int:
        """Rows dropped by the ``max_rows`` cap or ``clear``."""
        return self._total - len(self)

    @property
    def columns(self) -> list[str]:
        """The columns seen so far (since the last ``clear``)."""
        with self._lock:
            return self._column_order()

    # --- sinks --------------------------------------------------------------------

    def add_sink(self, sink: Sink, every: float | None = None) -> None:
        """Hand every new chunk of rows to ``sink(chunk)``, in order, before the cap can drop any of them.

        Called with the frame's lock held, on whichever thread flushes: a sink
        must be quick (queue the chunk) and must not modify it. Pending rows reach
        it at least every ``every`` seconds (default: ``flush_interval``) while the
        frame is polled: a sink that writes a part every ten seconds asks for less
        than every second, since each flush builds a chunk, and a process recording
        thousands of sockets would build thousands a second.
        """
        with self._lock:
            self._sinks = (*self._sinks, sink)
            self._sink_every = (*self._sink_every, every)
            self._sinks_changed()
        self.on_watch_change()

    def remove_sink(self, sink: Sink) -> None:
        """Stop handing chunks to ``sink`` (pending rows are flushed to it first)."""
        with self._lock:
            if sink in self._sinks:
                self._flush_locked()
                kept = [(s, e) for s, e in zip(self._sinks, self._sink_every, strict=True) if s != sink]  # equality:
                self._sinks = tuple(s for s, _ in kept)  # bound methods are new objects each time
                self._sink_every = tuple(e for _, e in kept)
                self._sinks_changed()
        self.on_watch_change()

    def _sinks_changed(self) -> None:
        self._sinks_wait = min((self.flush_interval if e is None else e for e in self._sink_every), default=self.flush_interval)

    # --- subscribers -------------------------------------------------------------

    def subscribe(self, callback: Callable[[pd.DataFrame], Any], max_rate_hz: float = 4.0) -> FrameSubscription:
        """Call ``callback(new_rows)`` with the rows that arrived since its last call, at most ``max_rate_hz`` times a second.

        Calls happen on the thread that runs :meth:`poll` (nbsocket's loop thread).
        Rows the cap dropped before a call are not delivered.
        """
        if not callable(callback):
            raise InvalidOptionError("callback must be callable")
        if isinstance(max_rate_hz, bool) or not isinstance(max_rate_hz, (int, float)) or not max_rate_hz > 0:
            raise InvalidOptionError("max_rate_hz must be a positive number of calls per second")
        sub = FrameSubscription(self, callback, 1.0 / max_rate_hz)
        with self._lock:
            sub.next_index = self._total
            self._subscribers = (*self._subscribers, sub)
        self.on_watch_change()
        return sub

    def _unsubscribe(self, sub: FrameSubscription) -> None:
        with self._lock:
            self._subscribers = tuple(s for s in self._subscribers if s is not sub)
        self.on_watch_change()

    @property
    def watched(self) -> bool:
        """True while the frame has subscribers or sinks (only then has :meth:`poll` anything to do)."""
        return bool(self._subscribers or self._sinks)

    @property
    def has_subscribers(self) -> bool:
        """True while anyone is subscribed."""
        return bool(self._subscribers)

    @property
    def needs_poll(self) -> bool:
        """True while :meth:`poll` has work to do: subscribers to serve or pending rows for the sinks."""
        return bool(self._subscribers) or bool(self._sinks and self._pending)

    def poll(self, now: float | None = None) -> int:
        """Deliver new rows to each subscriber whose interval has passed and flush old pending rows to the sinks.

        Returns the number of subscriber calls made.
        """
        now = time.monotonic() if now is None else now
        if self._sinks and self._pending and now - self._last_flush >= self._sinks_wait:
            self.flush()
        calls = 0
        for sub in self._subscribers:
            if not sub.active or now - sub.last_call < sub.interval or sub.next_index >= self._total:
                continue
            rows, end = self._rows_from(sub.next_index)
            sub.next_index = end
            sub.last_call = now
            sub.calls += 1
            calls += 1
            try:
                sub.callback(rows)
            except Exception:
                log.exception("live frame %r: a subscriber callback failed", self.name)
        return calls

    def __repr__(self) -> str:
        cap = f"max {self.max_rows}" if self.max_rows else "no cap"
        return f"<LiveFrame {self.name!r}: {len(self)} rows ({cap}), {len(self.columns)} columns>"
