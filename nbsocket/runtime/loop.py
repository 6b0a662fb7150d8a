"""The one background thread that runs nbsocket's asyncio loop and owns every socket.

The notebook's own loop is never touched: work is handed to this loop with
``asyncio.run_coroutine_threadsafe`` in a fresh ``contextvars.Context`` so
long-lived tasks do not inherit the calling cell's output routing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import selectors
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..errors import LoopThreadError
from .dispatch.workers import WorkerPool

__all__ = ["LoopThread", "WaitHookSelector", "handler_scope", "in_handler", "run_blocking"]


log = logging.getLogger("nbsocket")
T = TypeVar("T")

_handler_context = threading.local()


def in_handler() -> bool:
    """True while running a socket's handler or callback (where blocking calls must not wait)."""
    return bool(getattr(_handler_context, "owners", None))


def in_handler_of(owner: object) -> bool:
    """True while this thread runs a handler or callback of ``owner`` (a connection)."""
    return any(o is owner for o in getattr(_handler_context, "owners", ()))


class handler_scope:
    """Marks the current thread as running a handler (of ``owner``, if given), for :func:`in_handler`."""

    def __init__(self, owner: object = None) -> None:
        self.owner = owner

    def __enter__(self) -> None:
        try:
            _handler_context.owners.append(self.owner)
        except AttributeError:
            _handler_context.owners = [self.owner]

    def __exit__(self, *exc: object) -> None:
        _handler_context.owners.pop()


class WaitHookSelector(selectors.DefaultSelector):
    """The loop's selector, which calls ``before_wait`` each time the loop is about to wait for I/O (once per
    turn of the loop): the handler pool wakes its worker then, when the loop lets go of the interpreter lock."""

    before_wait: Callable[[], None] | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        before_wait = self.before_wait
        if before_wait is not None:
            before_wait()
        return super().select(timeout)


def _new_loop() -> tuple[asyncio.AbstractEventLoop, WaitHookSelector | None]:
    """A new event loop for the loop thread, with its :class:`WaitHookSelector` (none on Windows, whose default
    proactor loop has no selector and whose selector loop is limited to 512 sockets)."""
    if sys.platform == "win32":
        return asyncio.new_event_loop(), None
    selector = WaitHookSelector()
    return asyncio.SelectorEventLoop(selector), selector


class LoopThread:
    """A daemon thread running one asyncio event loop, started on first use."""

    def __init__(self, name: str = "nbsocket-loop") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._selector: WaitHookSelector | None = None
        self._thread: threading.Thread | None = None
        self._handler_pool: WorkerPool | None = None

    # --- lifecycle ------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the thread and its loop are alive."""
        return self._thread is not None and self._thread.is_alive() and self._loop is not None

    def ensure_started(self) -> asyncio.AbstractEventLoop:
        """Start the thread if needed and return its loop."""
        with self._lock:
            if self._loop is not None and self._thread is not None and self._thread.is_alive():
                return self._loop
            ready = threading.Event()
            loop, selector = _new_loop()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                try:
                    loop.run_forever()
                finally:
                    try:
                        _cancel_leftovers(loop)
                        loop.run_until_complete(loop.shutdown_asyncgens())
                    finally:
                        loop.close()

            thread = threading.Thread(target=contextvars.Context().run, args=(run,), name=self.name, daemon=True)
            thread.start()
            ready.wait()
            self._loop, self._selector, self._thread = loop, selector, thread
            if self._handler_pool is not None:
                self._join_pool(self._handler_pool)
            return loop

    def _join_pool(self, pool: WorkerPool) -> None:
        """Let ``pool`` wake its workers when this loop is about to wait (under ``_lock``, with the loop started)."""
        selector, thread = self._selector, self._thread
        if selector is None or thread is None:
            pool.wake_when_loop_waits(None)
            return
        pool.wake_when_loop_waits(thread.ident)
        selector.before_wait = pool.loop_waits

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop (starting the thread if needed)."""
        return self.ensure_started()

    def in_loop_thread(self) -> bool:
        """True when called from the loop thread itself."""
        return self._thread is not None and threading.current_thread() is self._thread

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop the loop (after cancelling its tasks) and join the thread; True if it ended in time."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            self._selector = None
            pool, self._handler_pool = self._handler_pool, None
        if loop is None or thread is None:
            return True
        if thread is threading.current_thread():
            raise LoopThreadError("nbsocket's loop cannot be stopped from its own thread")

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=max(0.1, timeout / 2))

        if loop.is_running():
            try:
                fut = asyncio.run_coroutine_threadsafe(cancel_all(), loop)
                fut.result(timeout)
            except Exception:
                pass
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
            stuck = pool.running()
            if stuck:  # daemon threads: they do not hold up interpreter exit, so say what is left behind
                log.warning("nbsocket stopped with %d handler(s) still running, abandoned: %s", len(stuck), ", ".join(stuck))
        return not thread.is_alive()

    # --- handing work to the loop -----------------------------------------------

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop from any thread; returns a concurrent future."""
        loop = self.ensure_started()
        return contextvars.Context().run(asyncio.run_coroutine_threadsafe, coro, loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result (not allowed from the loop thread)."""
        if self.in_loop_thread():
            coro.close()
        self.refuse_here("this call", "the async variant with await, or a method that schedules (event.send, conn.send)")
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise
        except KeyboardInterrupt:
            future.cancel()
            raise

    async def run_async(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        """Await ``coro`` on this loop from whatever loop runs the caller, bounded by ``timeout``; never blocks."""
        if self.in_loop_thread():
            return await asyncio.wait_for(coro, timeout)
        return await asyncio.wait_for(asyncio.wrap_future(self.submit(coro)), timeout)

    def run_or_schedule(
        self,
        coro: Coroutine[Any, Any, object],
        timeout: float | None,
        on_failure: Callable[[BaseException], object],
    ) -> None:
        """Run ``coro`` on the loop and wait for it, or, from a handler or the loop itself (where waiting would
        deadlock), start it and hand a failure to ``on_failure`` instead of raising it."""
        if in_handler() or self.in_loop_thread():

            def report(done: concurrent.futures.Future[object] | asyncio.Future[object]) -> None:
                failure = None if done.cancelled() else done.exception()
                if failure is not None:
                    on_failure(failure)

            self.spawn(coro).add_done_callback(report)
            return
        self.run(coro, timeout)

    def call_here_or_soon(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` now if on the loop thread (or no loop runs), else soon on the loop thread."""
        if self.running and not self.in_loop_thread():
            self.call_soon(fn)
        else:
            fn()

    def refuse_blocking(self, verb: str, owner: str = "conn", async_owner: str | None = None) -> None:
        """Refuse the blocking ``owner.verb()`` on the loop's own thread, pointing to ``await async_owner.verb_async()``.

        The one check every blocking verb makes first (``conn.wait``, ``conn.request``, ``nbs.replay`` ...).
        """
        self.refuse_here(f"{owner}.{verb}()", f"`await {async_owner or owner}.{verb}_async(...)`")

    def refuse_here(self, call: str, instead: str) -> None:
        """Raise :class:`LoopThreadError` if ``call``, which waits for this loop, is made on the loop's own thread."""
        if self.in_loop_thread():
            raise LoopThreadError(
                f"{call} waits for nbsocket's loop, but it was made on that loop's thread (inside an async "
                f"handler or callback), where it would deadlock; use {instead} there"
            )

    def call_soon(self, fn: Callable[..., object], *args: object) -> None:
        """Run ``fn(*args)`` on the loop thread soon, from any thread (inline-scheduled if already there)."""
        loop = self.ensure_started()
        if self.in_loop_thread():
            loop.call_soon(fn, *args)
        else:
            loop.call_soon_threadsafe(fn, *args, context=contextvars.Context())

    def spawn(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T] | asyncio.Task[T]:
        """Start ``coro`` without waiting: a task if on the loop thread, else a submitted future."""
        if self.in_loop_thread():
            return asyncio.ensure_future(coro)
        return self.submit(coro)

    @property
    def handler_pool(self) -> WorkerPool:
        """Worker threads that run synchronous handlers, so a slow one cannot stall the loop."""
        pool = self._handler_pool
        if pool is not None:
            return pool
        with self._lock:
            if self._handler_pool is None:
                self._handler_pool = WorkerPool(max_workers=32, name="nbsocket-handler")
                if self._loop is not None:
                    self._join_pool(self._handler_pool)
            return self._handler_pool


async def run_blocking(executor: concurrent.futures.Executor | None, fn: Callable[..., T], *args: object) -> T:
    """Run ``fn(*args)`` on a worker thread without blocking the loop.

    When the interpreter is exiting, executors refuse new work; then ``fn`` runs
    inline, so the last handlers and flushes still happen.
    """
    try:
        future = asyncio.get_running_loop().run_in_executor(executor, fn, *args)
    except RuntimeError:
        return fn(*args)
    return await future


def _cancel_leftovers(loop: asyncio.AbstractEventLoop, timeout: float = 1.0) -> None:
    """Cancel the tasks still pending on a stopped loop and let them finish (bounded), so none is destroyed pending."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.wait(tasks, timeout=timeout))
