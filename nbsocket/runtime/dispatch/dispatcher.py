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
import enum
import inspect
import logging
import traceback
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final, Literal, Protocol, overload

from ...core.events import WsEvent
from ..loop import LoopThread, handler_scope, run_blocking
from ..observe.errorlog import ErrorLog
from ..observe.observers import Observers
from ..outbound.outbox import Outbox
from .handlers import Handler, HandlerList, describe, is_async_callable
from .lane import SerialLane
from .workers import WorkerPool, note_running

log = logging.getLogger("nbsocket")

BATCH = 512

__all__ = ["Callbacks", "Dispatcher", "Item", "Kind"]


class Kind(enum.Enum):
    """What a dispatcher item is: a message for the handlers, or a lifecycle callback to call."""

    MESSAGES = "messages"
    OPEN = "on_open"
    CLOSE = "on_close"
    ERROR = "on_error"


MESSAGES: Final = Kind.MESSAGES
OPEN: Final = Kind.OPEN
CLOSE: Final = Kind.CLOSE
ERROR: Final = Kind.ERROR

Item = tuple[Any, ...]
"""``(kind, *arguments)`` as :meth:`Dispatcher.push` takes it (its overloads give each kind's arguments). Kept as a
plain tuple on the hot path; mypy cannot narrow a union of tuples by their first item, so inside it is untyped."""


class Callbacks(Protocol):
    """What the dispatcher sees of its connection: the lifecycle callbacks, read when an item runs (the connection is
    their first argument)."""

    @property
    def on_open(self) -> Callable[..., Any] | None: ...

    @property
    def on_close(self) -> Callable[..., Any] | None: ...

    @property
    def on_error(self) -> Callable[..., Any] | None: ...


class Dispatcher:
    """The ordered queue of work for one socket's handlers and callbacks.

    While every handler and callback is synchronous, items go to a
    :class:`~nbsocket.runtime.dispatch.lane.SerialLane` (worker threads, no loop round trip);
    otherwise to an asyncio queue whose task awaits async handlers on the loop.
    An item only goes to the lane when the asyncio queue is empty, and the task
    waits for the lane to be idle before it runs anything, so order is kept.

    ``callbacks`` is the connection: its ``on_open``, ``on_close`` and
    ``on_error`` attributes are read when an item runs, and it is the first
    argument they get.
    """

    def __init__(
        self,
        name: str,
        callbacks: Callbacks,
        handlers: HandlerList,
        outbox: Outbox,
        observers: Observers,
        errors: ErrorLog,
        loop_thread: LoopThread,
    ) -> None:
        self.name = name
        self._callbacks = callbacks
        self._handlers = handlers
        self._outbox = outbox
        self._observers = observers
        self._errors = errors
        self._loop_thread = loop_thread
        self._items: collections.deque[Item] = collections.deque()
        self._lane = SerialLane(self._run_batch_sync, self._handler_pool)
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._callbacks_sync = True
        self._task_busy = False  # the task is running items it took: new ones must queue behind them
        self.pushed_seq = 0
        self.handled_seq = 0
        self._drained: asyncio.Future[None] | None = None  # what wait_drained waits for, while it waits
        self._drain_low = 0

    def _handler_pool(self) -> WorkerPool:
        return self._loop_thread.handler_pool

    @property
    def backlog(self) -> int:
        """Messages pushed whose handlers have not all run yet."""
        return self.pushed_seq - self.handled_seq

    def start(self) -> None:
        """Let queued items run (on the loop thread). The task that runs them starts with the first item that is not
        for the lane: a socket whose handlers are all synchronous never needs it (one task fewer per socket)."""
        task = self._task
        if task is not None and task.done():
            self._task = self._wake = None
        self._started = True
        if self._items:
            self._start_task()

    def _start_task(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"nbsocket-dispatch-{self.name}")

    async def stop(self) -> None:
        """Stop the dispatcher task, abandoning what is queued (a reader waiting for the backlog to drain goes on)."""
        self._lane.clear()
        self._release_drained()
        self._started = False
        task, self._task, self._wake = self._task, None, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    # --- what the reader pushes (loop thread) ----------------------------------------

    @overload
    def push(self, kind: Literal[Kind.MESSAGES], events: list[WsEvent], /) -> None: ...
    @overload
    def push(self, kind: Literal[Kind.OPEN], ready: asyncio.Event, /) -> None: ...
    @overload
    def push(self, kind: Literal[Kind.CLOSE], code: int | None, reason: str, /) -> None: ...
    @overload
    def push(self, kind: Literal[Kind.ERROR], exc: BaseException, /) -> None: ...

    def push(self, *item: Any) -> None:
        """Queue an item (loop thread only): ``(MESSAGES, [event, ...])`` (the messages of one read, or one protocol
        message, handled in order), ``(OPEN, ready)``, ``(CLOSE, code, reason)``, ``(ERROR, exc)``."""
        if item[0] is MESSAGES:
            self.pushed_seq = item[1][-1].seq
        if not self._items and not self._task_busy and self._all_sync_now():
            self._lane.push(item)
            return
        self._items.append(item)
        wake = self._wake
        if wake is not None:
            wake.set()
        elif self._started:
            self._start_task()

    def push_open(self, ready: asyncio.Event) -> None:
        """The socket opened: run ``on_open`` (if any), then set ``ready`` so the writer starts."""
        if self._callbacks.on_open is not None:
            self.push(OPEN, ready)
        else:
            ready.set()

    def push_close(self, code: int | None, reason: str) -> None:
        """The socket closed: run ``on_close`` (if any)."""
        if self._callbacks.on_close is not None:
            self.push(CLOSE, code, reason)

    def push_error(self, exc: BaseException) -> None:
        """A connection error: run ``on_error`` (if any; loop thread)."""
        if self._callbacks.on_error is not None:
            self.push(ERROR, exc)

    def note_handled(self, event: WsEvent) -> None:
        """``event`` has been through every handler (any thread): tell the observers."""
        self.handled_seq = event.seq
        if self._drained is not None and self.pushed_seq - event.seq <= self._drain_low:
            self._release_drained()
        observers = self._observers
        if observers.on_handled:
            observers.call(observers.on_handled, event)

    def callbacks_changed(self) -> None:
        """``on_open``, ``on_close`` or ``on_error`` was set: note whether they are all sync."""
        callbacks = self._callbacks
        self._callbacks_sync = not any(
            cb is not None and is_async_callable(cb) for cb in (callbacks.on_open, callbacks.on_close, callbacks.on_error)
        )

    def _all_sync_now(self) -> bool:
        return self._handlers.all_sync and self._callbacks_sync

    async def wait_drained(self, low: int) -> None:
        """Wait until at most ``low`` messages wait for their handlers, or the dispatcher stops (loop thread; the
        reader's backpressure). The handler that brings the backlog down to ``low`` wakes it, from any thread."""
        if self.backlog <= low or not self._started:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._drain_low = low
        self._drained = waiter
        if self.backlog <= low:  # a worker handled the rest before it could see the waiter
            self._release_drained()
        try:
            await waiter
        finally:
            if self._drained is waiter:
                self._drained = None

    def _release_drained(self) -> None:
        """Wake :meth:`wait_drained` (any thread)."""
        waiter, self._drained = self._drained, None
        if waiter is not None:
            self._loop_thread.loop.call_soon_threadsafe(_settle, waiter)

    # --- running items ------------------------------------------------------------------

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        pool = self._loop_thread.handler_pool
        while True:
            if not self._items:
                wake.clear()
                await wake.wait()
                continue
            await self._lane.wait_idle()  # what went to the lane came first
            batch = [self._items.popleft() for _ in range(min(BATCH, len(self._items)))]
            self._task_busy = True
            try:
                if self._all_sync_now():
                    await run_blocking(pool, self._run_batch_sync, batch)
                else:
                    for item in batch:
                        await self._run_item(item, pool)
            finally:
                self._task_busy = False

    def _callback(self, item: Item) -> tuple[str, Callable[..., Any] | None, tuple[object, ...], asyncio.Event | None]:
        """For an ``OPEN``/``CLOSE``/``ERROR`` item: its name, callback (or ``None``), arguments and ready event."""
        conn = self._callbacks
        kind: Kind = item[0]
        if kind is OPEN:
            return kind.value, conn.on_open, (conn,), item[1]
        if kind is CLOSE:
            return kind.value, conn.on_close, (conn, item[1], item[2]), None
        return kind.value, conn.on_error, (conn, item[1]), None

    @contextlib.contextmanager
    def _first_in_outbox(self, where: str) -> Iterator[None]:
        """While ``on_open`` runs, its sends go ahead of what was queued while the socket was down."""
        outbox = self._outbox
        outbox.priority = where == OPEN.value
        try:
            yield
        finally:
            outbox.priority = False

    def _run_batch_sync(self, batch: list[Item]) -> None:
        with handler_scope(self._callbacks):
            for item in batch:
                if item[0] is MESSAGES:
                    self._run_events_sync(item[1])
                else:
                    self._run_callback_sync(item)

    def _run_events_sync(self, events: list[WsEvent]) -> None:
        """Each event through every (sync) handler, in order (worker thread)."""
        handlers, observers = self._handlers, self._observers
        for event in events:
            for handler in handlers.current:
                note_running(handler.name)
                try:
                    result = handler.fn(event, *handler.args)
                    if result is not None and inspect.isawaitable(result):
                        self._await_on_loop(result)
                except Exception as exc:
                    self._handler_failed(handler, event, exc)
            self.handled_seq = event.seq
            if self._drained is not None and self.pushed_seq - event.seq <= self._drain_low:
                self._release_drained()
            if observers.on_handled:
                observers.call(observers.on_handled, event)

    def _run_callback_sync(self, item: Item) -> None:
        where, callback, args, ready = self._callback(item)
        try:
            if callback is not None:
                note_running(f"{where} {describe(callback)}")
                with self._first_in_outbox(where):
                    self._call_sync(callback, *args)
        except Exception as exc:
            self._errors.callback_failed(where, exc, traceback.format_exc())
        finally:
            if ready is not None:
                self._loop_thread.loop.call_soon_threadsafe(ready.set)

    async def _run_item(self, item: Item, pool: WorkerPool) -> None:
        if item[0] is MESSAGES:
            for event in item[1]:
                await self._run_event(event, pool)
            return
        # OPEN, CLOSE or ERROR
        where, callback, args, ready = self._callback(item)
        if callback is None or not is_async_callable(callback):
            await run_blocking(pool, self._run_batch_sync, [item])
            return
        try:
            with self._first_in_outbox(where):
                await callback(*args)
        except Exception as exc:
            self._errors.callback_failed(where, exc, traceback.format_exc())
        finally:
            if ready is not None:
                ready.set()

    async def _run_event(self, event: WsEvent, pool: WorkerPool) -> None:
        """One message through every handler, async ones on the loop, sync ones on a worker."""
        for handler in self._handlers.current:
            if handler.is_async:
                try:
                    await handler.fn(event, *handler.args)
                except Exception as exc:
                    self._handler_failed(handler, event, exc)
            else:
                await run_blocking(pool, self._run_one_sync, handler, event)
        self.note_handled(event)

    def _run_one_sync(self, handler: Handler, event: WsEvent) -> None:
        """Run one sync handler on one event (worker thread); a failure is recorded and does not propagate."""
        with handler_scope(self._callbacks):
            note_running(handler.name)
            try:
                self._call_sync(handler.fn, event, *handler.args)
            except Exception as exc:
                self._handler_failed(handler, event, exc)

    def _handler_failed(self, handler: Handler, event: WsEvent, exc: Exception) -> None:
        self._errors.handler_failed(handler.name, event.seq, exc, traceback.format_exc())
        if self._callbacks.on_error is not None:
            self._loop_thread.call_soon(self.push, ERROR, exc)

    def _call_sync(self, fn: Callable[..., object], *args: object) -> None:
        """Call ``fn`` on a worker thread; if it returns an awaitable, await it on the loop."""
        result = fn(*args)
        if result is not None and inspect.isawaitable(result):
            self._await_on_loop(result)

    def _await_on_loop(self, awaitable: Awaitable[object]) -> None:
        """A sync handler returned an awaitable: await it on the loop (worker thread waits)."""
        asyncio.run_coroutine_threadsafe(_awaited(awaitable), self._loop_thread.loop).result()


async def _awaited(awaitable: Awaitable[object]) -> object:
    return await awaitable


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
