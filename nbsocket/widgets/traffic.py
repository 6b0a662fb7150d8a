"""What the widgets see of a socket besides its rows: the latest messages both ways, and when it went down.

:class:`SocketTraffic` is an observer of one connection (``conn.add_observer``). Its hooks run on
the loop thread and only append to bounded deques, so a fast socket pays a few hundred
nanoseconds per read for it; the refresher thread reads the deques when it renders.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..runtime import Connection, ProtocolConnection

if TYPE_CHECKING:
    from ..core.transcript_entries import Entry

__all__ = ["KEEP_MESSAGES", "MERGE_WAIT", "LogItem", "SocketTraffic"]

KEEP_MESSAGES = 500
"""Messages (both ways) a panel's log keeps."""
MERGE_WAIT = 2.0
"""Seconds ``attach`` waits for the loop thread to merge what the transcript kept (it is merged later otherwise)."""


class Loop(Protocol):
    """What the traffic needs of the loop thread (the manager's ``loop_thread``)."""

    def call_here_or_soon(self, fn: Callable[[], None]) -> None: ...


class LogItem(NamedTuple):
    """One line of the message log: a message sent or received, or a connection event."""

    number: int
    """Grows by one per item: tells items apart and orders them."""
    ts_ns: int
    direction: str
    """``sent``, ``received`` or ``event``."""
    seq: int | None
    """The received message's number on its socket (``None`` for protocol housekeeping and sent messages)."""
    body: str | bytes
    """The message as on the wire, or the event's description."""
    error: str | None = None
    """Why a received message did not parse."""


def _as_item(entry: Entry) -> LogItem | None:
    """A transcript entry as a log item (numbered by the caller)."""
    if entry.direction in ("sent", "received"):
        body = entry.body if entry.body is not None else ""
        return LogItem(0, entry.ts_ns, entry.direction, entry.seq if entry.direction == "received" else None, body, entry.error)
    if entry.kind in ("open", "reconnect", "close", "reset", "failed"):
        text = f"closed (code {entry.code})" if entry.kind == "close" else str(entry.kind)
        return LogItem(0, entry.ts_ns, "event", None, text)
    return None


def _time_order(item: LogItem) -> tuple[int, int]:
    return (item.ts_ns, item.number)


def _key(item: LogItem) -> tuple[int, str, int | None, str | bytes]:
    """What tells a message apart from another one: the same message observed and read from the transcript match."""
    return (item.ts_ns, item.direction, item.seq, item.body)


class SocketTraffic:
    """The latest :data:`KEEP_MESSAGES` messages of one socket, both ways, and the times it went down.

    ``attach(conn)`` starts observing (``detach()`` stops); ``items()`` and ``downs()`` are read
    from any thread. ``version`` grows with every change, so views know when to render.
    """

    def __init__(self, keep: int = KEEP_MESSAGES, loop: Loop | None = None) -> None:
        self.keep = keep
        self.loop = loop
        """The loop thread the hooks run on: what the transcript adds at attach is merged there, between two hooks."""
        self._items: collections.deque[LogItem] = collections.deque(maxlen=max(1, keep))
        self._downs: collections.deque[float] = collections.deque(maxlen=256)
        self._numbers = itertools.count(1)
        self._conn: Connection | None = None
        self.version = 0

    # --- attaching (any thread) --------------------------------------------------------------

    def attach(self, conn: Connection) -> None:
        """Observe ``conn`` (and stop observing the one before), starting with what its transcript kept so far.

        So a panel shown after the socket opened still shows what was sent and received before it (an
        ``on_open`` subscription and its replies, say), and one shown again after a pause shows what
        came meanwhile. Nothing it already has is added twice: what the transcript adds is merged on
        the loop thread, so a message whose hooks were under way while the transcript was read is
        found there by the time of the merge.
        """
        if conn is self._conn:
            return
        self.detach()
        self._conn = conn
        if not self.keep:
            conn.add_observer(self)
            return
        newest = max((item.ts_ns for item in list(self._items)), default=None)  # up to here all was seen (or read)
        attached_at = time.time_ns()
        conn.add_observer(self)
        entries, _ = conn.transcript_entries()
        found = [
            item
            for item in map(_as_item, entries[-self.keep :])
            if item is not None and item.ts_ns < attached_at and (newest is None or item.ts_ns > newest)
        ]
        merged = threading.Event()

        def merge() -> None:
            try:
                seen = {_key(item) for item in self._items}
                for item in found:
                    if _key(item) not in seen:
                        self._items.append(LogItem(next(self._numbers), *item[1:]))  # items() puts them in time order
                self.version += 1
            finally:
                merged.set()

        if self.loop is None:
            merge()
        else:
            self.loop.call_here_or_soon(merge)
            merged.wait(MERGE_WAIT)  # a view shown shows what came before at once, unless the loop is very busy

    def detach(self) -> None:
        """Stop observing."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.remove_observer(self)

    # --- observer hooks (loop thread) ---------------------------------------------------------

    def on_batch(self, ts_ns: int, first_seq: int | None, bodies: list[str | bytes], errors: list[str | None]) -> None:
        """The messages of one read (``first_seq`` is ``None`` for protocol housekeeping)."""
        if not self.keep:
            return
        count = len(bodies)
        start = max(0, count - self.keep)
        numbers, items = self._numbers, self._items
        for index in range(start, count):
            seq = None if first_seq is None else first_seq + index
            items.append(LogItem(next(numbers), ts_ns, "received", seq, bodies[index], errors[index]))
        self.version += 1

    def on_sent(self, item: Any, ts_ns: int) -> None:
        """A message went out (``item.payload`` is what was written)."""
        if self.keep:
            self._items.append(LogItem(next(self._numbers), ts_ns, "sent", None, item.payload))
            self.version += 1

    def on_lifecycle(self, kind: str, info: dict[str, Any]) -> None:
        """The socket opened, closed, failed or was reset: remembered, and a close breaks the charts' lines."""
        if kind == "close":
            self._downs.append(time.time())
            text = f"closed (code {info.get('code')}{', ' + str(info['reason']) if info.get('reason') else ''})"
        elif kind == "open":
            text = "open"
        elif kind == "reset":
            text = "reset"
        elif kind == "state" and info.get("state") == "failed":
            text = "failed"
        else:
            return
        if self.keep:
            self._items.append(LogItem(next(self._numbers), time.time_ns(), "event", None, text))
        self.version += 1

    # --- reading (any thread) -----------------------------------------------------------------

    def items(self) -> list[LogItem]:
        """The items kept, oldest first (by time: what was read from the transcript may have been added after newer items)."""
        return sorted(self._items, key=_time_order)

    def waiting_calls(self) -> list[str]:
        """The ids of the observed socket's calls still waiting for a reply (none for a plain socket)."""
        conn = self._conn
        return conn.waiting_calls if isinstance(conn, ProtocolConnection) else []

    def downs(self) -> list[float]:
        """When the socket went down (seconds since the epoch), oldest first."""
        return list(self._downs)
