"""The bounded, thread-safe queue of messages waiting to be written to a socket."""

from __future__ import annotations

import collections
import threading
import time
from typing import NamedTuple

from .errors import OutboxFullError


class Outgoing(NamedTuple):
    """One message to send: its payload (``str``: text frame, ``bytes``: binary frame) and when it was queued."""

    payload: str | bytes
    queued_ns: int

    @property
    def size(self) -> int:
        """Payload size in bytes."""
        p = self.payload
        return len(p) if isinstance(p, bytes) or p.isascii() else len(p.encode("utf-8"))


class Outbox:
    """FIFO of :class:`Outgoing`, bounded at ``limit``; a priority lane keeps ``on_open`` sends first.

    Any thread may ``put``; only the loop's writer takes. ``put`` raises
    :class:`OutboxFullError` instead of dropping anything.
    """

    def __init__(self, name: str, limit: int = 1000) -> None:
        self.name = name
        self.limit = limit
        self._queue: collections.deque[Outgoing] = collections.deque()
        self._front: collections.deque[Outgoing] = collections.deque()
        self._lock = threading.Lock()
        self.priority = False

    def put(self, payload: str | bytes, state: str) -> Outgoing:
        """Queue ``payload``; raises if ``limit`` messages are already waiting."""
        item = Outgoing(payload, time.time_ns())
        with self._lock:
            if len(self._queue) + len(self._front) >= self.limit:
                raise OutboxFullError(
                    f"cannot send on {self.name!r}: {self.limit} messages are already waiting "
                    f"(socket {state}; the server is not reading, or the socket is down). "
                    "Wait and retry, raise outbox_size, or call conn.clear_outbox()."
                )
            (self._front if self.priority else self._queue).append(item)
        return item

    def take(self) -> Outgoing | None:
        """The next message to write, or ``None``."""
        with self._lock:
            if self._front:
                return self._front.popleft()
            if self._queue:
                return self._queue.popleft()
            return None

    def put_back(self, item: Outgoing) -> None:
        """Return a message that could not be written to the head of the queue (after the priority lane)."""
        with self._lock:
            self._queue.appendleft(item)

    def clear(self) -> int:
        """Drop every waiting message; returns how many were dropped."""
        with self._lock:
            n = len(self._queue) + len(self._front)
            self._queue.clear()
            self._front.clear()
            return n

    def __len__(self) -> int:
        return len(self._queue) + len(self._front)
