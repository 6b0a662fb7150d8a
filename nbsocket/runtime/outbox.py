"""The bounded, thread-safe queue of messages waiting to be written to a socket."""

from __future__ import annotations

import collections
import threading
import time
from typing import NamedTuple

from ..core.events import utf8_size
from ..errors import OutboxFullError

__all__ = ["Outgoing", "Outbox"]


class Outgoing(NamedTuple):
    """One message to send: its payload (``str``: text frame, ``bytes``: binary frame) and when it was queued."""

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
    raises :class:`OutboxFullError`: nothing is ever dropped.
    """

    def __init__(self, name: str, limit: int = 1000) -> None:
        self.name = name
        self.limit = limit
        self._queue: collections.deque[Outgoing] = collections.deque()
        self._front: collections.deque[Outgoing] = collections.deque()
        self._room = threading.Condition(threading.Lock())
        self._waiting = 0
        self.priority = False

    def _full(self) -> bool:
        return len(self._queue) + len(self._front) >= self.limit

    def put(self, payload: str | bytes, state: str, wait: float | None = 0.0) -> Outgoing:
        """Queue ``payload``; if ``limit`` messages are waiting, wait up to ``wait`` seconds for room, then raise."""
        item = Outgoing(payload, time.time_ns())
        with self._room:
            if self._full() and wait != 0:
                self._waiting += 1
                try:
                    self._room.wait_for(lambda: not self._full(), wait)
                finally:
                    self._waiting -= 1
            if self._full():
                waited = f" after waiting {wait:g} s" if wait else ""
                raise OutboxFullError(
                    f"cannot send on {self.name!r}: {self.limit} messages are still waiting{waited} "
                    f"(socket {state}; the server is not reading, or the socket is down). "
                    "Wait and retry, raise outbox_size or send_timeout, or call conn.clear_outbox()."
                )
            (self._front if self.priority else self._queue).append(item)
        return item

    def take(self) -> Outgoing | None:
        """The next message to write, or ``None``."""
        with self._room:
            if self._waiting:
                self._room.notify_all()
            if self._front:
                return self._front.popleft()
            if self._queue:
                return self._queue.popleft()
            return None

    def put_back(self, item: Outgoing) -> None:
        """Return a message that could not be written to the head of the queue (after the priority lane)."""
        with self._room:
            self._queue.appendleft(item)

    def clear(self) -> int:
        """Drop every waiting message; returns how many were dropped."""
        with self._room:
            n = len(self._queue) + len(self._front)
            self._queue.clear()
            self._front.clear()
            self._room.notify_all()
            return n

    def __len__(self) -> int:
        return len(self._queue) + len(self._front)
