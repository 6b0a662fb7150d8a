"""The bounded, thread-safe queue of messages waiting to be written to a socket."""

from __future__ import annotations

import collections
import enum
import threading
import time
from typing import Final, Literal, NamedTuple

from ...core.events import utf8_size
from ...errors import OutboxFullError

__all__ = ["DEFAULT_TIMEOUT", "Default", "Outbox", "Outgoing", "SendTimeout"]


class Default(enum.Enum):
    """The default of a per-call timeout: the socket's option applies (``send_timeout``)."""

    OPTION = "the socket's option"


DEFAULT_TIMEOUT: Final = Default.OPTION
"""Marks "use the socket's option" for a per-call timeout."""
SendTimeout = float | None | Literal[Default.OPTION]
"""A per-call send timeout: seconds, ``None`` (wait as long as it takes), or :data:`DEFAULT_TIMEOUT`."""


class Outgoing(NamedTuple):
    """One message to send: its payload (``str`` is sent as text, ``bytes`` as binary) and when it was queued."""

    payload: str | bytes
    queued_ns: int

    @property
    def size(self) -> int:
        """Payload size in bytes."""
        return utf8_size(self.payload)


class Outbox:
    """FIFO of :class:`Outgoing`, bounded at ``limit``; a priority lane keeps ``on_open`` sends first.

    Any thread may ``put``; only the loop's writer takes. When the outbox is
    full, ``put`` may wait (``wait`` seconds) for the writer to make room, then
    raises :class:`OutboxFullError`: nothing is ever dropped. ``put_all`` queues
    the messages of one verb (a Socket.IO binary event and its attachments)
    all or nothing: when they do not all fit, none of them is queued. While
    ``priority`` is set (``on_open`` runs), puts go to the priority lane and
    are not bounded: room could only come after ``on_open`` returns.
    """

    def __init__(self, name: str, limit: int = 1000) -> None:
        self.name = name
        self.limit = limit
        self._queue: collections.deque[Outgoing] = collections.deque()
        self._front: collections.deque[Outgoing] = collections.deque()
        self._lock = threading.Lock()
        self._room: threading.Condition | None = None  # on the lock, made when a put first has to wait for room
        self._waiting = 0
        self.priority = False
        self.last_put_ns = 0
        """When a message was last queued (UTC nanoseconds; 0 before the first): the "last send" ``expect(within=...)``
        counts from."""

    def _fits(self, count: int) -> bool:
        return len(self._queue) + len(self._front) + count <= self.limit

    def put(self, payload: str | bytes, state: str, wait: float | None = 0.0) -> Outgoing:
        """Queue ``payload``; if ``limit`` messages are waiting, wait up to ``wait`` seconds for room, then raise."""
        return self.put_all([payload], state, wait)[0]

    def put_all(self, payloads: list[str | bytes], state: str, wait: float | None = 0.0) -> list[Outgoing]:
        """Queue ``payloads`` in order, all or nothing: wait up to ``wait`` seconds for room for all of them, then raise
        :class:`OutboxFullError` with none of them queued. Returns the queued items (the writer hands the same
        objects to ``on_sent``)."""
        now = time.time_ns()
        items = [Outgoing(payload, now) for payload in payloads]
        count = len(items)
        if not count:
            return items
        with self._lock:
            if self.priority:  # on_open: written first, and never waits for room it alone could make
                self._front.extend(items)
                self.last_put_ns = now
                return items
            if count > self.limit:
                raise OutboxFullError(
                    f"cannot send on {self.name!r}: these {count} messages go together and the outbox holds at most "
                    f"{self.limit}; none of them was queued. Raise outbox_size."
                )
            if not self._fits(count) and wait != 0:
                self._waiting += 1
                if self._room is None:
                    self._room = threading.Condition(self._lock)
                try:
                    self._room.wait_for(lambda: self._fits(count), wait)
                finally:
                    self._waiting -= 1
            if not self._fits(count):
                waited = f" after waiting {wait:g} s" if wait else ""
                together = f" (these {count} messages go together: none of them was queued)" if count > 1 else ""
                raise OutboxFullError(
                    f"cannot send on {self.name!r}: {len(self._queue) + len(self._front)} messages are still waiting{waited}"
                    f"{together} (socket {state}; the server is not reading, or the socket is down). "
                    "Wait and retry, raise outbox_size or send_timeout, or call conn.clear_outbox()."
                )
            self._queue.extend(items)
        self.last_put_ns = now
        return items

    def take(self) -> Outgoing | None:
        """The next message to write, or ``None``."""
        with self._lock:
            if self._waiting:
                self._notify_room()
            if self._front:
                return self._front.popleft()
            if self._queue:
                return self._queue.popleft()
            return None

    def put_back(self, item: Outgoing) -> None:
        """Return a message that could not be written to the head of the queue (after the priority lane)."""
        with self._lock:
            self._queue.appendleft(item)

    def discard(self, item_ids: set[int]) -> int:
        """Drop the waiting items whose ``id`` is in ``item_ids``; returns how many were dropped."""
        with self._lock:
            n = len(self._queue) + len(self._front)
            for queue in (self._queue, self._front):
                kept = [item for item in queue if id(item) not in item_ids]
                queue.clear()
                queue.extend(kept)
            dropped = n - len(self._queue) - len(self._front)
            if dropped:
                self._notify_room()
            return dropped

    def clear(self) -> int:
        """Drop every waiting message; returns how many were dropped."""
        with self._lock:
            n = len(self._queue) + len(self._front)
            self._queue.clear()
            self._front.clear()
            self._notify_room()
            return n

    def _notify_room(self) -> None:
        """Wake the puts waiting for room (under the lock)."""
        room = self._room
        if room is not None:
            room.notify_all()

    def __len__(self) -> int:
        return len(self._queue) + len(self._front)
