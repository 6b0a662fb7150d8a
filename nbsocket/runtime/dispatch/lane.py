"""A serial lane: one socket's handler work, run in order on a shared worker pool, without the loop waiting for it.

Handing a batch to a thread pool with ``run_in_executor`` costs a wake-up of
the loop for every batch, which dominates at low message rates. A lane only
hands work to the pool (:meth:`~nbsocket.runtime.dispatch.workers.WorkerPool.hand_over`,
no future) when it goes from idle to busy: what is pushed while it runs joins
its queue and is taken by the same drain. The loop hears back only when it
asked to (``wait_idle``).
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from .workers import WorkerPool

__all__ = ["SerialLane"]

ItemT = TypeVar("ItemT")


class SerialLane(Generic[ItemT]):
    """Items pushed from the loop thread, run by ``run_batch`` on ``pool``, strictly in order, one batch at a time."""

    def __init__(self, run_batch: Callable[[list[ItemT]], None], pool: Callable[[], WorkerPool]) -> None:
        self._run_batch = run_batch
        self._pool = pool
        self._items: collections.deque[ItemT] = collections.deque()
        self._lock = threading.Lock()
        self._busy = False
        self._idle_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.handled = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def busy(self) -> bool:
        """True while items are queued or a batch runs."""
        return self._busy

    def push(self, item: ItemT) -> None:
        """Queue ``item``; hands the lane to the pool if it was idle (a busy lane's drain takes it)."""
        with self._lock:
            self._items.append(item)
            busy, self._busy = self._busy, True
        if busy:
            return
        try:
            self._pool().hand_over(self._drain)
        except RuntimeError:  # the interpreter is exiting: executors take no more work
            self._drain()

    def clear(self) -> int:
        """Drop the queued items (a running batch finishes); returns how many were dropped."""
        with self._lock:
            n = len(self._items)
            self._items.clear()
            return n

    async def wait_idle(self) -> None:
        """Wait until everything pushed so far has run (loop thread)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._busy:
                return
            future: asyncio.Future[None] = loop.create_future()
            self._idle_waiters.append((loop, future))
        await future

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._items:
                    self._busy = False
                    waiters = self._idle_waiters
                    if waiters:  # a new list only when there were waiters: one per drain, alive until the next,
                        self._idle_waiters = []  # reached the old generation and set off full collections
                    break
                batch = list(self._items)
                self._items.clear()
            self._run_batch(batch)
            self.handled += len(batch)
        if waiters:
            for loop, future in waiters:
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
