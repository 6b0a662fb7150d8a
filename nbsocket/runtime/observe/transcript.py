"""The always-on transcript of a socket: every message both ways and every connection event, bounded.

A :class:`TranscriptRecorder` is a connection observer. On the hot path it
appends each message's time, number and body to bounded columns (no parsing, no
pandas, no object per frame: :class:`EntryColumns`); they become
:class:`~nbsocket.core.transcript_entries.Entry` objects, and the DataFrame is built,
only when asked for. :class:`Transcript` is the connection's part that owns the recorder and
answers ``conn.transcript()``, ``save_transcript``, ``keep_transcript`` and
``clear_transcript``.
"""

from __future__ import annotations

import collections
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from ...core.state import Stats
from ...core.transcript_entries import (
    BINARY,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ENTRIES,
    EVENT,
    RECEIVED,
    SENT,
    TEXT,
    Entry,
    frame_from_entries,
    jsonl_lines,
    new_entry,
)
from ...errors import InvalidOptionError
from ..outbound.outbox import Outgoing
from .observers import LifecycleInfo

__all__ = ["Meta", "Shape", "Transcript", "TranscriptRecorder", "write_transcript_file"]

Shape = tuple[str, "str | None", "str | None", "int | None", "str | None", Any]
"""An entry's values but its time, number and body: ``direction``, ``kind``, ``error``, ``code``, ``reason``, ``info``
(``info`` is whatever the entry carries: :attr:`Entry.info <nbsocket.core.transcript_entries.Entry.info>`)."""
Meta = dict[str, Any]
"""What a saved transcript says about its socket (JSON values: ``socket``, ``url``, ``content_type``, ``dropped``...)."""

_RECEIVED_TEXT: Shape = (RECEIVED, TEXT, None, None, None, None)
_RECEIVED_BINARY: Shape = (RECEIVED, BINARY, None, None, None, None)
_SENT: dict[str, Shape] = {TEXT: (SENT, TEXT, None, None, None, None), BINARY: (SENT, BINARY, None, None, None, None)}


class EntryColumns:
    """Transcript entries kept column by column: receipt times, sequence numbers, bodies, and a *shape* per entry.

    An entry's shape is the tuple of its other values (``direction``, ``kind``,
    ``error``, ``code``, ``reason``, ``info``): nearly always one of a few
    shared tuples, so keeping a message allocates no object of its own, and
    thousands of kept entries per socket give the garbage collector nothing to
    count or scan. ``Entry`` objects are made when the entries are read.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()  # appends come from the loop and (errors) from handler threads; reads from anywhere
        self.ts: collections.deque[int] = collections.deque()
        self.seq: collections.deque[int | None] = collections.deque()
        self.body: collections.deque[str | bytes | None] = collections.deque()
        self.shape: collections.deque[Shape] = collections.deque()

    def __len__(self) -> int:
        return len(self.shape)

    def add_received(self, ts_ns: int, first_seq: int | None, bodies: list[str | bytes], errors: list[str | None]) -> None:
        n = len(bodies)
        if n == 1 and errors[0] is None and first_seq is not None:  # a quiet socket's read
            body = bodies[0]
            with self.lock:
                self.ts.append(ts_ns)
                self.seq.append(first_seq)
                self.body.append(body)
                self.shape.append(_RECEIVED_TEXT if body.__class__ is str else _RECEIVED_BINARY)
            return
        shapes: list[Shape] = [
            (_RECEIVED_TEXT if body.__class__ is str else _RECEIVED_BINARY)
            if errors[i] is None
            else (RECEIVED, TEXT if body.__class__ is str else BINARY, errors[i], None, None, None)
            for i, body in enumerate(bodies)
        ]
        with self.lock:
            self.ts.extend([ts_ns] * n)
            self.seq.extend(range(first_seq, first_seq + n) if first_seq is not None else [None] * n)
            self.body.extend(bodies)
            self.shape.extend(shapes)

    def add_sent(self, ts_ns: int, kind: str, seq: int, body: str | bytes) -> None:
        with self.lock:
            self.ts.append(ts_ns)
            self.seq.append(seq)
            self.body.append(body)
            self.shape.append(_SENT[kind])

    def add(self, entry: Entry) -> None:
        """A connection event (or any entry whose shape is its own)."""
        with self.lock:
            self.ts.append(entry.ts_ns)
            self.seq.append(entry.seq)
            self.body.append(entry.body)
            self.shape.append((entry.direction, entry.kind, entry.error, entry.code, entry.reason, entry.info))

    def entries(self) -> list[Entry]:
        with self.lock:
            ts, seq, body, shape = list(self.ts), list(self.seq), list(self.body), list(self.shape)
        return [
            new_entry(Entry, (t, s[0], s[1], q, b, s[2], s[3], s[4], s[5]))
            for t, q, b, s in zip(ts, seq, body, shape, strict=True)
        ]

    def drop_oldest(self, keep: int, excess_bytes: int) -> tuple[int, int]:
        """Drop the oldest entries until at most ``keep`` are left and the bodies dropped add up to at least
        ``excess_bytes``; returns how many entries and body bytes were dropped."""
        with self.lock:
            bodies = self.body
            drop = max(0, len(bodies) - keep)
            freed = sum(map(len, filter(None, itertools.islice(bodies, drop))))  # (events have no body)
            for body in itertools.islice(bodies, drop, None):
                if freed >= excess_bytes:
                    break
                if body is not None:
                    freed += len(body)
                drop += 1
            for column in (self.ts, self.seq, self.body, self.shape):
                popleft = column.popleft
                for _ in range(drop):
                    popleft()
            return drop, freed

    def clear(self) -> None:
        with self.lock:
            for column in (self.ts, self.seq, self.body, self.shape):
                column.clear()


def write_transcript_file(path: str | os.PathLike[str], entries: Iterable[Entry], meta: Meta | None = None) -> int:
    """Write ``entries`` to ``path`` as a saved transcript (JSON Lines); returns how many were written."""
    entries = list(entries)
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(jsonl_lines(entries, meta))
    return len(entries)


class TranscriptRecorder:
    """Records a connection's messages and events into a bounded deque, oldest dropped first.

    ``max_entries`` bounds the number of entries and ``max_bytes`` the bodies
    they hold (``None``: no bound); past a bound the oldest tenth is dropped
    at once. Messages are recorded on the loop thread. ``describe`` returns the
    socket's ``socket``, ``url`` and ``content_type`` for the saved meta data.
    """

    def __init__(
        self,
        stats: Stats,
        describe: Callable[[], Meta],
        max_entries: int | None = DEFAULT_MAX_ENTRIES,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> None:
        self._stats = stats
        self._describe = describe
        self._entries = EntryColumns()
        self._bytes = 0
        self.dropped = 0
        self.received = 0
        self.sent = 0
        self._reconnects_seen = stats.reconnects
        self.set_bounds(max_entries, max_bytes)

    def set_bounds(self, max_entries: int | None, max_bytes: int | None) -> None:
        """Change the bounds (takes effect with the next entry)."""
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._limit = max_entries if max_entries is not None else sys.maxsize
        self._byte_limit = max_bytes if max_bytes is not None else sys.maxsize

    # --- observer hooks (loop thread, except errors raised by handlers) ------------

    def on_batch(self, ts_ns: int, first_seq: int | None, bodies: list[str | bytes], errors: list[str | None]) -> None:
        """The messages of one read (``first_seq`` is ``None`` for protocol housekeeping, which has no number)."""
        entries = self._entries
        entries.add_received(ts_ns, first_seq, bodies, errors)
        self.received += len(bodies)
        self._bytes += sum(map(len, bodies))
        if len(entries) > self._limit or self._bytes > self._byte_limit:
            self._evict()

    def on_sent(self, item: Outgoing, ts_ns: int) -> None:
        body = item.payload
        entries = self._entries
        kind = TEXT if body.__class__ is str else BINARY
        entries.add_sent(ts_ns, kind, self._stats.messages_out, body)
        self.sent += 1
        self._bytes += len(body)
        if len(entries) > self._limit or self._bytes > self._byte_limit:
            self._evict()

    def on_lifecycle(self, kind: str, info: LifecycleInfo) -> None:
        ts = time.time_ns()
        if kind == "open":
            reconnects = self._stats.reconnects
            kind = "reconnect" if reconnects > self._reconnects_seen else "open"
            self._reconnects_seen = reconnects
            detail = info.get("url")
            if info.get("subprotocol"):
                detail = f"{detail} (subprotocol {info['subprotocol']})"
            entry = Entry(ts, EVENT, kind, None, None, info=detail)
        elif kind == "close":
            entry = Entry(ts, EVENT, "close", None, None, code=info.get("code"), reason=info.get("reason") or "")
        elif kind == "error":
            entry = Entry(
                ts, EVENT, "error", None, None, error=f"{info.get('error')}: {info.get('message')}", info=info.get("where")
            )
        elif kind == "reset":
            entry = Entry(ts, EVENT, "reset", None, None, info=info.get("url"))
        elif kind == "state" and info.get("state") == "failed":
            entry = Entry(ts, EVENT, "failed", None, None)
        else:
            return
        self._entries.add(entry)
        if len(self._entries) > self._limit:
            self._evict()

    def _evict(self) -> None:
        """Drop the oldest entries down to 90% of the bounds, so that eviction is not paid on every message."""
        drop, freed = self._entries.drop_oldest(
            self._limit - self._limit // 10, self._bytes - (self._byte_limit - self._byte_limit // 10)
        )
        self._bytes -= freed
        self.dropped += drop

    def trim(self) -> None:
        """Apply the bounds now (after they were lowered)."""
        if len(self._entries) > self._limit or self._bytes > self._byte_limit:
            self._evict()

    # --- reading (any thread) ------------------------------------------------------

    def entries(self) -> list[Entry]:
        """A copy of the entries kept now, oldest first."""
        return self._entries.entries()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry kept (counters go on)."""
        self._entries.clear()
        self._bytes = 0

    def meta(self) -> Meta:
        """What a saved transcript says about its socket."""
        return {**self._describe(), "dropped": self.dropped}


class Transcript:
    """A connection's transcript part: owns the recorder (``None`` while turned off).

    ``attach``/``detach`` add and remove the recorder as an observer of the
    connection; ``call_soon`` runs a function on the loop thread when it runs.
    """

    def __init__(
        self,
        stats: Stats,
        describe: Callable[[], Meta],
        attach: Callable[[TranscriptRecorder], None],
        detach: Callable[[TranscriptRecorder], None],
        on_loop: Callable[[Callable[[], None]], None],
    ) -> None:
        self._stats = stats
        self._describe = describe
        self._attach = attach
        self._detach = detach
        self._on_loop = on_loop
        self.recorder: TranscriptRecorder | None = TranscriptRecorder(stats, describe)
        attach(self.recorder)

    def entries(self) -> tuple[list[Entry], Meta]:
        """The entries kept and the meta data a saved transcript carries."""
        recorder = self.recorder
        if recorder is None:
            return [], {**self._describe(), "dropped": 0}
        return recorder.entries(), recorder.meta()

    def frame(self, parse: bool = True) -> pd.DataFrame:
        """The transcript as a DataFrame (see ``Connection.transcript``)."""
        entries, meta = self.entries()
        return frame_from_entries(entries, meta, parse=parse)

    def save(self, path: str | os.PathLike[str]) -> int:
        """Write the transcript to ``path`` as JSON Lines; returns the entries written."""
        entries, meta = self.entries()
        return write_transcript_file(path, entries, meta)

    def keep(self, max_entries: int | None = DEFAULT_MAX_ENTRIES, max_bytes: int | None = DEFAULT_MAX_BYTES) -> None:
        """Set the bounds; ``max_entries=0`` turns recording off (and forgets it)."""
        for name, value in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise InvalidOptionError(f"{name} must be a non-negative integer or None, not {value!r}")
        recorder = self.recorder
        if max_entries == 0:
            if recorder is not None:
                self._detach(recorder)
                self.recorder = None
            return
        if recorder is None:
            self.recorder = TranscriptRecorder(self._stats, self._describe, max_entries, max_bytes)
            self._attach(self.recorder)
            return
        recorder.set_bounds(max_entries, max_bytes)
        self._on_loop(recorder.trim)

    def clear(self) -> None:
        """Forget the transcript so far (recording goes on)."""
        if self.recorder is not None:
            self.recorder.clear()
