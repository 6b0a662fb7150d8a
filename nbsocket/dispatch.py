"""Running a socket's handlers and callbacks in order, without ever stalling its reader.

The reader pushes items (``open``, each message, ``close``, ``error``) and
carries on; one dispatcher task per socket takes them in order. Synchronous
handlers run in batches on a worker thread so that a slow one cannot block the
loop (and so the keepalive); async handlers are awaited on the loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import inspect
import logging
import traceback
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .lane import SerialLane, note_running
from .loop import handler_scope, run_blocking

if TYPE_CHECKING:
    from .connection import Connection

log = logging.getLogger("nbsocket")

BACKLOG_HIGH = 100_000
"""Messages waiting for handlers beyond which the reader pauses (TCP backpressure)."""
BACKLOG_LOW = BACKLOG_HIGH // 2
BATCH = 512


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """True for ``async def`` functions, partials of them and objects with an async ``__call__``."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


def describe(fn: Callable[..., Any]) -> str:
    """A short name for a handler, for error records."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


class Handler:
    """A registered message handler with its extra positional ``args`` (Pode's ``-ArgumentList``)."""

    __slots__ = ("fn", "args", "is_async", "name", "key")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...] = (), key: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"a handler must be callable, not {type(fn).__name__}")
        self.fn = fn
        self.args = tuple(args)
        self.is_async = is_async_callable(fn)
        self.name = describe(fn)
        self.key = key

    def __repr__(self) -> str:
        return f"<Handler {self.name}{' async' if self.is_async else ''}>"


class Dispatcher:
    """The ordered queue of work for one socket's handlers and callbacks.

    While every handler and callback is synchronous, items go to a
    :class:`~nbsocket.lane.SerialLane` (worker threads, no loop round trip);
    otherwise to an asyncio queue whose task awaits async handlers on the loop.
    An item only goes to the lane when the asyncio queue is empty, and the task
    waits for the lane to be idle before it runs anything, so order is kept.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._items: collections.deque[tuple[Any, ...]] = collections.deque()
        self._lane = SerialLane(self._run_batch_sync, lambda: conn._loop_thread.handler_pool)
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._sync_key: tuple[Any, ...] = ()
        self._sync_only = True
        self._handled = 0

    @property
    def handled(self) -> int:
        """Items handled so far."""
        return self._handled + self._lane.handled

    @property
    def backlog(self) -> int:
        """Items waiting to be handled."""
        return len(self._items) + len(self._lane)

    def start(self) -> None:
        """Start the dispatcher task (on the loop thread)."""
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"nbsocket-dispatch-{self.conn.name}")

    async def stop(self) -> None:
        """Stop the dispatcher task, abandoning what is queued."""
        self._lane.clear()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    def push(self, *item: Any) -> None:
        """Queue an item (loop thread only): ``("message", event)``, ``("open", ready)``, ``("close", code, reason)``, ``("error", exc)``."""
        if not self._items and self._all_sync_now():
            self._lane.push(item)
            return
        self._items.append(item)
        if self._wake is not None:
            self._wake.set()

    def _all_sync_now(self) -> bool:
        conn = self.conn
        key = (conn._handlers, conn.on_open, conn.on_close, conn.on_error)
        if len(key) != len(self._sync_key) or any(a is not b for a, b in zip(key, self._sync_key)):
            self._sync_key = key
            self._sync_only = not any(h.is_async for h in conn._handlers) and not any(
                cb is not None and is_async_callable(cb) for cb in key[1:]
            )
        return self._sync_only

    async def wait_drained(self) -> None:
        """Wait until the backlog is back under the low-water mark (the reader's backpressure; rare, so it polls)."""
        while self.backlog > BACKLOG_LOW and self._task is not None and not self._task.done():
            await asyncio.sleep(0.01)

    async def _run(self) -> None:
        assert self._wake is not None
        pool = self.conn._loop_thread.handler_pool
        while True:
            if not self._items:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._lane.wait_idle()  # what went to the lane came first
            batch = [self._items.popleft() for _ in range(min(BATCH, len(self._items)))]
            if self._all_sync_now():
                await run_blocking(pool, self._run_batch_sync, batch)
            else:
                for item in batch:
                    await self._run_item(item, pool)
            self._handled += len(batch)

    def _callback(self, item: tuple[Any, ...]) -> tuple[str, Any, tuple[Any, ...], asyncio.Event | None]:
        """For an ``open``/``close``/``error`` item: its name, callback (or ``None``), arguments and ready event."""
        conn = self.conn
        kind = item[0]
        if kind == "open":
            return "on_open", conn.on_open, (conn,), item[1]
        if kind == "close":
            return "on_close", conn.on_close, (conn, item[1], item[2]), None
        return "on_error", conn.on_error, (conn, item[1]), None

    @contextlib.contextmanager
    def _first_in_outbox(self, where: str) -> Iterator[None]:
        """While ``on_open`` runs, its sends go ahead of what was queued while the socket was down."""
        outbox = self.conn._outbox
        outbox.priority = where == "on_open"
        try:
            yield
        finally:
            outbox.priority = False

    def _run_batch_sync(self, batch: list[tuple[Any, ...]]) -> None:
        with handler_scope(self.conn):
            for item in batch:
                self._run_item_sync(item)

    def _run_item_sync(self, item: tuple[Any, ...]) -> None:
        conn = self.conn
        if item[0] == "message":
            event = item[1]
            for handler in conn._handlers:  # replaced, never changed in place
                self._call_handler(handler, event)
            conn._handled(event)
            return
        where, callback, args, ready = self._callback(item)
        try:
            if callback is not None:
                note_running(f"{where} {describe(callback)}")
                with self._first_in_outbox(where):
                    self._call_sync(callback, *args)
        except Exception as exc:
            conn._callback_failed(where, exc, traceback.format_exc())
        finally:
            if ready is not None:
                conn._loop_thread.loop.call_soon_threadsafe(ready.set)

    async def _run_item(self, item: tuple[Any, ...], pool: Any) -> None:
        conn = self.conn
        if item[0] != "message":
            where, callback, args, ready = self._callback(item)
            if callback is None or not is_async_callable(callback):
                await run_blocking(pool, self._run_batch_sync, [item])
                return
            try:
                with self._first_in_outbox(where):
                    await callback(*args)
            except Exception as exc:
                conn._callback_failed(where, exc, traceback.format_exc())
            finally:
                if ready is not None:
                    ready.set()
            return
        event = item[1]
        for handler in conn._handlers:  # replaced, never changed in place
            if handler.is_async:
                try:
                    await handler.fn(event, *handler.args)
                except Exception as exc:
                    conn._handler_failed(handler.name, event, exc, traceback.format_exc())
            else:
                await run_blocking(pool, self._run_one_sync, handler, event)
        conn._handled(event)

    def _run_one_sync(self, handler: Handler, event: Any) -> None:
        with handler_scope(self.conn):
            self._call_handler(handler, event)

    def _call_handler(self, handler: Handler, event: Any) -> None:
        """Run one sync handler on one event (worker thread); a failure is recorded and does not propagate."""
        note_running(handler.name)
        try:
            self._call_sync(handler.fn, event, *handler.args)
        except Exception as exc:
            self.conn._handler_failed(handler.name, event, exc, traceback.format_exc())

    def _call_sync(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn`` on a worker thread; if it returns an awaitable, await it on the loop."""
        result = fn(*args)
        if inspect.isawaitable(result):
            asyncio.run_coroutine_threadsafe(_awaited(result), self.conn._loop_thread.loop).result()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
