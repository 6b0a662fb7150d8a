"""The worker threads that run synchronous handlers: cheap to hand work to, never holding the interpreter open.

A ``ThreadPoolExecutor`` builds a future, a work item and a condition for
every submission, which dominates when a socket hands over a small batch of
messages every millisecond. :class:`WorkerPool` takes plain callables on a
``queue.SimpleQueue`` (:meth:`WorkerPool.run_soon`, no future) and is also an
``Executor`` for the occasional ``run_in_executor``. Its threads are daemons:
a handler stuck in ``time.sleep(40)`` does not keep the process alive at
exit (the exit handler logs what it abandons).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["WorkerPool", "note_running"]

log = logging.getLogger("nbsocket")

_STOP = object()
_DRAIN = object()
HAND_OVER_DELAY = 0.002
"""Seconds handler work is gathered on the loop before the workers are woken for it (the most a handler call waits)."""
SPAWN_AFTER = 0.02
"""Seconds every worker must have been busy before work waiting in the queue starts another thread (a burst of
short handler batches then shares one or two threads instead of waking many that fight over the GIL)."""
_slot = threading.local()


def note_running(what: str) -> None:
    """Tell the worker running this what it runs now (named in the log if it is abandoned at exit)."""
    slot = getattr(_slot, "what", None)
    if slot is not None:
        slot[0] = what


class WorkerPool(concurrent.futures.Executor):
    """Up to ``max_workers`` daemon threads taking callables in order of arrival; threads start as work needs them.

    Work gathered on the loop (:meth:`run_after_this_turn`) goes to a shared
    ready list in one hand-over, and one worker is woken to drain it: with many
    quiet sockets a wake-up runs the handlers of every socket that received
    something meanwhile. When every draining worker has been held by one
    callable for :data:`SPAWN_AFTER`, another worker is woken for the rest, so a
    slow handler of one socket delays another's by about that much at most.
    """

    def __init__(self, max_workers: int = 32, name: str = "nbsocket-handler") -> None:
        self.max_workers = max_workers
        self.name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._ready: collections.deque[Callable[[], Any]] = collections.deque()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._busy_with: dict[int, list[Any]] = {}  # thread id -> [what it runs now, since when]
        self._drainers: dict[int, list[Any]] = {}  # the same, for the workers draining the ready list
        self._draining = 0  # drain wake-ups handed out whose worker has not yet found the ready list empty
        self._closed = False
        self._gathered: list[Callable[[], Any]] = []
        self._hand_over_at = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def run_after_this_turn(self, fn: Callable[[], Any]) -> None:
        """Like :meth:`run_soon`, called on an asyncio loop: work is gathered for :data:`HAND_OVER_DELAY` and
        handed over together, so with many quiet sockets the workers wake once per gathering rather than once
        per message (each wake is a thread switch that costs more than a small handler). The gathering goes
        on its timer, or with the first work that arrives after it is due (:meth:`nudge`)."""
        if self._closed:
            raise RuntimeError("the worker pool is shut down")
        gathered = self._gathered
        gathered.append(fn)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on a loop: now
            self._hand_over()
            return
        if len(gathered) == 1:
            self._hand_over_at = loop.time() + HAND_OVER_DELAY
            self._timer = loop.call_later(HAND_OVER_DELAY, self._hand_over)
        else:
            self.nudge(loop)

    def nudge(self, loop: asyncio.AbstractEventLoop) -> None:
        """More work arrived on ``loop`` (for a lane already handed over or gathered): if the gathering is due,
        hand it over now rather than on its timer (a busy loop then wakes once for both)."""
        if self._gathered and loop.time() >= self._hand_over_at:
            timer = self._timer
            if timer is not None:
                timer.cancel()
            self._hand_over()

    def _hand_over(self) -> None:
        gathered, self._gathered = self._gathered, []
        self._timer = None
        if self._closed:
            for fn in gathered:
                fn()  # the interpreter is exiting: run the last handlers here
            return
        with self._lock:
            self._ready.extend(gathered)
        self._wake_drainer()

    def _wake_drainer(self) -> None:
        """Wake a worker to drain the ready list unless one is on it (or about to be) and not held up."""
        with self._lock:
            if not self._ready or self._closed:
                return
            if self._draining > len(self._drainers):
                return  # a wake-up is on its way to a worker
            if self._drainers:
                recently = time.monotonic() - SPAWN_AFTER
                if any(slot[1] > recently for slot in list(self._drainers.values())):
                    return  # a drainer is moving on
            self._draining += 1
        self._queue.put(_DRAIN)
        if self._idle <= 0:
            self._maybe_add_worker(force=True)

    def run_soon(self, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` on a worker thread (no result, no future); an exception it raises is logged."""
        if self._closed:
            raise RuntimeError("the worker pool is shut down")
        self._queue.put(fn)
        if self._idle <= 0:
            self._maybe_add_worker()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """``Executor.submit``: run ``fn(*args, **kwargs)`` on a worker thread, with a future for its result."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

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
        return [slot[0] for slot in list(self._busy_with.values())]

    def check(self) -> None:
        """Wake or start another worker if work waits while every worker has been busy for a while (call it
        periodically)."""
        if self._ready:
            self._wake_drainer()
        if self._idle <= 0 and not self._queue.empty():
            self._maybe_add_worker()

    def _maybe_add_worker(self, force: bool = False) -> None:
        with self._lock:
            if self._idle > 0 or len(self._threads) >= self.max_workers or self._closed:
                return
            if not force:
                recently = time.monotonic() - SPAWN_AFTER
                if any(slot[1] > recently for slot in list(self._busy_with.values())):
                    return  # a worker started its task just now and will be free soon (check() covers a slow one)
            thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            self._idle += 1  # counts as idle until it takes its first item
        thread.start()

    def _work(self) -> None:
        get = self._queue.get
        me = threading.get_ident()
        busy = self._busy_with
        slot = _slot.what = ["", 0.0]
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
                    slot[0] = getattr(fn, "__qualname__", None) or repr(fn)
                    slot[1] = time.monotonic()
                    fn()
            except BaseException:
                log.exception("nbsocket: a worker task failed")
            finally:
                busy.pop(me, None)

    def _drain(self, me: int, slot: list[Any]) -> None:
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
            slot[0] = "handler work"
            slot[1] = time.monotonic()
            try:
                fn()
            except BaseException:
                log.exception("nbsocket: a worker task failed")
