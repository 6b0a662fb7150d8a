"""A serial lane: one socket's handler work, run in order on a shared worker pool, without the loop waiting for it.

Handing a batch to a thread pool with ``run_in_executor`` costs a wake-up of
the loop for every batch, which dominates at low message rates. A lane only
submits work when it goes from idle to busy, and the loop hears back only
when it asked to (``wait_idle``).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any


class SerialLane:
    """Items pushed from the loop thread, run by ``run_batch`` on ``pool``, strictly in order, one batch at a time."""

    def __init__(self, run_batch: Callable[[list[Any]], None], pool: Callable[[], concurrent.futures.Executor]) -> None:
        self._run_batch = run_batch
        self._pool = pool
        self._items: collections.deque[Any] = collections.deque()
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

    def push(self, item: Any) -> None:
        """Queue ``item``; starts a worker if the lane was idle."""
        with self._lock:
            self._items.append(item)
            if self._busy:
                return
            self._busy = True
        try:
            self._pool().submit(self._drain)
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
                    waiters, self._idle_waiters = self._idle_waiters, []
                    break
                batch = list(self._items)
                self._items.clear()
            self._run_batch(batch)
            self.handled += len(batch)
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_worker_slot = threading.local()


def note_running(what: str) -> None:
    """Tell the :class:`DaemonPool` worker running this what it runs now (named in the log if abandoned at exit)."""
    slot = getattr(_worker_slot, "slot", None)
    if slot is not None:
        slot[0] = what


class DaemonPool(concurrent.futures.Executor):
    """A thread pool for handlers whose threads never hold up interpreter exit.

    ``ThreadPoolExecutor`` joins its threads at exit, so one handler stuck in
    ``time.sleep(40)`` kept the process alive 40 s. These threads are daemons:
    at exit, whatever still runs is abandoned, and :meth:`shutdown` names it in
    the log. Threads are started on demand up to ``max_workers`` and end after
    ``idle_seconds`` without work.
    """

    def __init__(self, max_workers: int = 32, thread_name_prefix: str = "nbsocket-handler", idle_seconds: float = 30.0) -> None:
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._idle_seconds = idle_seconds
        self._work: collections.deque[tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._threads = 0
        self._idle = 0
        self._running: dict[int, list[str]] = {}  # thread id -> [what it runs now]
        self._shut = False
        self._count = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Run ``fn(*args, **kwargs)`` on a worker thread; raises ``RuntimeError`` after :meth:`shutdown`."""
        if kwargs:
            args, fn = (), _bind(fn, args, kwargs)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._cond:
            if self._shut:
                raise RuntimeError("cannot schedule new handler work after shutdown")
            self._work.append((future, fn, args))
            if self._idle > len(self._work) - 1:
                self._cond.notify()
                return future
            if self._threads < self._max_workers:
                self._threads += 1
                self._count += 1
                name = f"{self._prefix}_{self._count}"
                threading.Thread(target=self._worker, name=name, daemon=True).start()
            else:
                self._cond.notify()
        return future

    def _worker(self) -> None:
        me = threading.get_ident()
        slot = _worker_slot.slot = [""]
        while True:
            with self._cond:
                self._idle += 1
                got = self._cond.wait_for(lambda: self._work or self._shut, self._idle_seconds)
                self._idle -= 1
                if not got or not self._work:  # idle too long, or shut down
                    self._threads -= 1
                    return
                future, fn, args = self._work.popleft()
                slot[0] = getattr(fn, "__qualname__", None) or repr(fn)
                self._running[me] = slot
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args))
                    except BaseException as exc:  # handed to whoever waits for it
                        future.set_exception(exc)
            finally:
                with self._cond:
                    self._running.pop(me, None)

    def running(self) -> list[str]:
        """What the worker threads run right now (function names)."""
        with self._cond:
            return [slot[0] for slot in self._running.values()]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more work; cancel what has not started if ``cancel_futures``; never waits for running work."""
        with self._cond:
            self._shut = True
            if cancel_futures:
                while self._work:
                    self._work.popleft()[0].cancel()
            self._cond.notify_all()


def _bind(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[[], Any]:
    return lambda: fn(*args, **kwargs)
