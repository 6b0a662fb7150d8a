"""The always-on transcript of a socket: every frame both ways and every connection event, bounded.

A :class:`TranscriptRecorder` is a connection observer. On the hot path it
appends one small :class:`~nbsocket.core.transcript.Entry` per frame to a
bounded deque (no parsing, no pandas); the DataFrame is built only when asked
for. :class:`Transcript` is the connection's part that owns the recorder and
answers ``conn.transcript()``, ``save_transcript``, ``keep_transcript`` and
``clear_transcript``.
"""

from __future__ import annotations

import collections
import itertools
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from ..core.state import Stats
from ..core.transcript import (
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
from ..errors import InvalidOptionError
from .outbox import Outgoing

__all__ = ["TranscriptRecorder", "Transcript", "write_transcript_file"]


def write_transcript_file(path: str | os.PathLike[str], entries: Iterable[Entry], meta: dict[str, Any] | None = None) -> int:
    """Write ``entries`` to ``path`` as a saved transcript (JSON Lines); returns how many were written."""
    entries = list(entries)
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(jsonl_lines(entries, meta))
    return len(entries)


class TranscriptRecorder:
    """Records a connection's frames and events into a bounded deque, oldest dropped first.

    ``max_entries`` bounds the number of entries and ``max_bytes`` the bodies
    they hold (``None``: no bound); past a bound the oldest tenth is dropped
    at once. Frames are recorded on the loop thread. ``describe`` returns the
    socket's ``socket``, ``url`` and ``content_type`` for the saved meta data.
    """

    def __init__(
        self,
        stats: Stats,
        describe: Callable[[], dict[str, Any]],
        max_entries: int | None = DEFAULT_MAX_ENTRIES,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> None:
        self._stats = stats
        self._describe = describe
        self._entries: collections.deque[Entry] = collections.deque()
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

    def on_frames(self, ts_ns: int, first_seq: int | None, bodies: list[str | bytes], errors: list[str | None]) -> None:
        """The messages of one read (``first_seq`` is ``None`` for protocol housekeeping, which has no number)."""
        entries = self._entries
        entries.extend([
            new_entry(Entry, (ts_ns, RECEIVED, TEXT if body.__class__ is str else BINARY,
                              None if first_seq is None else first_seq + i, body, errors[i], None, None, None))
            for i, body in enumerate(bodies)
        ])
        self.received += len(bodies)
        self._bytes += sum(map(len, bodies))
        if len(entries) > self._limit or self._bytes > self._byte_limit:
            self._evict()

    def on_sent(self, item: Outgoing, ts_ns: int) -> None:
        body = item.payload
        entries = self._entries
        kind = TEXT if body.__class__ is str else BINARY
        entries.append(new_entry(Entry, (ts_ns, SENT, kind, self._stats.messages_out, body, None, None, None, None)))
        self.sent += 1
        self._bytes += len(body)
        if len(entries) > self._limit or self._bytes > self._byte_limit:
            self._evict()

    def on_lifecycle(self, kind: str, info: dict[str, Any]) -> None:
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
            entry = Entry(ts, EVENT, "error", None, None, error=f"{info.get('error')}: {info.get('message')}", info=info.get("where"))
        elif kind == "reset":
            entry = Entry(ts, EVENT, "reset", None, None, info=info.get("url"))
        elif kind == "state" and info.get("state") == "failed":
            entry = Entry(ts, EVENT, "failed", None, None)
        else:
            return
        self._entries.append(entry)
        if len(self._entries) > self._limit:
            self._evict()

    def _evict(self) -> None:
        """Drop the oldest entries down to 90% of the bounds, so that eviction is not paid on every message."""
        entries = self._entries
        limit = self._limit - self._limit // 10
        byte_limit = self._byte_limit - self._byte_limit // 10
        drop = max(0, len(entries) - limit)
        freed = sum(len(e.body) for e in itertools.islice(entries, drop) if e.body is not None)
        for entry in itertools.islice(entries, drop, None):
            if self._bytes - freed <= byte_limit:
                break
            if entry.body is not None:
                freed += len(entry.body)
            drop += 1
        if drop:
            self._entries = collections.deque(itertools.islice(entries, drop, None))
            self._bytes -= freed
            self.dropped += drop

    def trim(self) -> None:
        """Apply the bounds now (after they were lowered)."""
        if len(self._entries) > self._limit or self._bytes > self._byte_limit:
            self._evict()

    # --- reading (any thread) ------------------------------------------------------

    def entries(self) -> list[Entry]:
        """A copy of the entries kept now, oldest first."""
        for _ in range(100):
            try:
                return list(self._entries)
            except RuntimeError:  # appended to while copying; try again
                continue
        return list(self._entries.copy())

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry kept (counters go on)."""
        self._entries.clear()
        self._bytes = 0

    def meta(self) -> dict[str, Any]:
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
        describe: Callable[[], dict[str, Any]],
        attach: Callable[[Any], None],
        detach: Callable[[Any], None],
        on_loop: Callable[[Callable[[], None]], None],
    ) -> None:
        self._stats = stats
        self._describe = describe
        self._attach = attach
        self._detach = detach
        self._on_loop = on_loop
        self.recorder: TranscriptRecorder | None = TranscriptRecorder(stats, describe)
        attach(self.recorder)

    def entries(self) -> tuple[list[Entry], dict[str, Any]]:
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
