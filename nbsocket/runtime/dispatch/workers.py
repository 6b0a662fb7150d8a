"""The worker threads that run synchronous handlers: cheap to hand work to, never holding the interpreter open.

A ``ThreadPoolExecutor`` builds a future, a work item and a condition for
every submission, which dominates when a socket hands over a small batch of
messages every millisecond. :class:`WorkerPool` takes plain callables
(:meth:`WorkerPool.hand_over` and :meth:`WorkerPool.run_soon`, no future) and
is also an ``Executor`` for the occasional ``run_in_executor``. Its threads are daemons:
a handler stuck in ``time.sleep(40)`` does not keep the process alive at
exit (the exit handler logs what it abandons).
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["WorkerPool", "note_running"]

log = logging.getLogger("nbsocket")

P = ParamSpec("P")
T = TypeVar("T")


def _STOP() -> None:
    """Put in the queue: the worker that takes it ends (compared by identity, never called)."""


def _DRAIN() -> None:
    """Put in the queue: the worker that takes it drains the ready list (compared by identity, never called)."""


SPAWN_AFTER = 0.02
"""Seconds every worker must have been busy before work waiting in the queue starts another thread (a burst of
short handler batches then shares one or two threads instead of waking many that fight over the GIL)."""
_slot = threading.local()


class _Slot:
    """What a worker runs now and since when (``time.monotonic()``); one per worker, changed in place."""

    __slots__ = ("since", "what")

    def __init__(self) -> None:
        self.what = ""
        self.since = 0.0


def note_running(what: str) -> None:
    """Tell the worker running this what it runs now (named in the log if it is abandoned at exit)."""
    slot: _Slot | None = getattr(_slot, "what", None)
    if slot is not None:
        slot.what = what


class WorkerPool(concurrent.futures.Executor):
    """Up to ``max_workers`` daemon threads taking callables in order of arrival; threads start as work needs them.

    Work handed over with :meth:`hand_over` goes to a shared ready list. When no worker is on that list, one
    is woken for it, so a message that arrives alone is handled without delay. On the loop thread named by
    :meth:`wake_when_loop_waits` that wake-up waits for the end of the loop's turn (:meth:`loop_waits`): the
    worker then finds the interpreter lock free instead of fighting the loop for it, and one wake-up serves every
    socket read in that turn. While a worker drains the list (or its wake-up is on its way), more work simply
    joins the list and costs no wake-up: with many quiet sockets one wake-up runs the handlers of every socket
    that received something meanwhile. When every draining worker has been held by one callable for
    :data:`SPAWN_AFTER`, another worker is woken for the rest, so a slow handler of one socket delays another's
    by about that much at most.
    """

    def __init__(self, max_workers: int = 32, name: str = "nbsocket-handler") -> None:
        self.max_workers = max_workers
        self.name = name
        self._queue: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self._ready: collections.deque[Callable[[], object]] = collections.deque()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._busy_with: dict[int, _Slot] = {}  # thread id -> what it runs now, since when
        self._drainers: dict[int, _Slot] = {}  # the same, for the workers draining the ready list
        self._draining = 0  # drain wake-ups handed out whose worker has not yet found the ready list empty
        self._closed = False
        self._loop_thread_id: int | None = None
        self._wake_due = False  # a drain wake-up counted in _draining, sent when the loop is about to wait

    def hand_over(self, fn: Callable[[], object]) -> None:
        """Run ``fn()`` on a worker soon (no result, no future): on an idle worker as soon as this turn of the loop
        ends (at once off the loop), else after the work the draining worker has before it. Raises
        ``RuntimeError`` once the pool is shut down."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is shut down")
            self._ready.append(fn)
            wake = self._drainer_wanted()
        if wake:
            if threading.get_ident() == self._loop_thread_id:
                self._wake_due = True
            else:
                self._wake_drainer()

    def wake_when_loop_waits(self, thread_id: int | None) -> None:
        """Hand-overs made on thread ``thread_id`` wake their worker only when that thread's loop calls
        :meth:`loop_waits` (``None``: always at once)."""
        self._loop_thread_id = thread_id

    def loop_waits(self) -> None:
        """The loop is about to wait for I/O (called by its selector, on its thread): send the wake-up its turn owes."""
        if self._wake_due:
            self._wake_due = False
            try:
                self._wake_drainer()
            except Exception:
                log.exception("nbsocket: could not wake a handler worker")

    def _drainer_wanted(self) -> bool:
        """Whether the ready list needs another worker woken for it (under ``_lock``; counts the wake-up if so)."""
        if not self._ready or self._closed:
            return False
        if self._draining > len(self._drainers):
            return False  # a wake-up is on its way to a worker
        if self._drainers:
            recently = time.monotonic() - SPAWN_AFTER
            if any(slot.since > recently for slot in list(self._drainers.values())):
                return False  # a drainer is moving on: it takes the new work without a wake-up
        self._draining += 1
        return True

    def _wake_drainer(self) -> None:
        self._queue.put(_DRAIN)
        if self._idle <= 0:
            self._maybe_add_worker(force=True)

    def run_soon(self, fn: Callable[[], object]) -> None:
        """Run ``fn()`` on a worker thread (no result, no future); an exception it raises is logged."""
        if self._closed:
            raise RuntimeError("the worker pool is shut down")
        self._queue.put(fn)
        if self._idle <= 0:
            self._maybe_add_worker()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> concurrent.futures.Future[T]:
        """``Executor.submit``: run ``fn(*args, **kwargs)`` on a worker thread, with a future for its result."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        self.run_soon(work)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; the threads end after what they run now (``wait``: join them)."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(_STOP)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()

    def running(self) -> list[str]:
        """What the busy workers run now (for the exit log)."""
        return [slot.what for slot in list(self._busy_with.values())]

    def check(self) -> None:
        """Wake or start another worker if work waits while every worker has been busy for a while (call it
        periodically)."""
        if self._ready:
            with self._lock:
                wake = self._drainer_wanted()
            if wake:
                self._wake_drainer()
        if self._idle <= 0 and not self._queue.empty():
            self._maybe_add_worker()

    def _maybe_add_worker(self, force: bool = False) -> None:
        with self._lock:
            if self._idle > 0 or len(self._threads) >= self.max_workers or self._closed:
                return
            if not force:
                recently = time.monotonic() - SPAWN_AFTER
                if any(slot.since > recently for slot in list(self._busy_with.values())):
                    return  # a worker started its task just now and will be free soon (check() covers a slow one)
            thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            self._idle += 1  # counts as idle until it takes its first item
        thread.start()

    def _work(self) -> None:
        get = self._queue.get
        me = threading.get_ident()
        busy = self._busy_with
        slot = _slot.what = _Slot()
        idle_now = True
        while True:
            if not idle_now:
                with self._lock:
                    self._idle += 1
            fn = get()
            with self._lock:
                self._idle -= 1
            idle_now = False
            if fn is _STOP:
                return
            busy[me] = slot
            try:
                if fn is _DRAIN:
                    self._drain(me, slot)
                else:
                    slot.what = getattr(fn, "__qualname__", None) or repr(fn)
                    slot.since = time.monotonic()
                    fn()
            except BaseException:
                log.exception("nbsocket: a worker task failed")
            finally:
                busy.pop(me, None)

    def _drain(self, me: int, slot: _Slot) -> None:
        """Run the ready list's callables until it is empty (one drain wake-up)."""
        ready, drainers = self._ready, self._drainers
        with self._lock:
            drainers[me] = slot
        while True:
            try:
                fn = ready.popleft()
            except IndexError:
                with self._lock:
                    if ready:
                        continue
                    self._draining -= 1
                    del drainers[me]
                    return
            slot.what = "handler work"
            slot.since = time.monotonic()
            try:
                fn()
            except BaseException:
                log.exception("nbsocket: a worker task failed")
