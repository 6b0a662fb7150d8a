"""A socket's writer: takes messages from the outbox and writes them, fairly, while the connection is open.

One :class:`Writer` per socket, on the loop thread. It sleeps while the
outbox is empty (a sender wakes it only when it is idle, so a busy writer
costs senders nothing) and yields to the loop after every slice of writes:
on loopback ``ws.send()`` never suspends, and a writer that did not yield
would starve every other socket on the loop.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable

from ...core.state import Stats
from ..observe.errorlog import ErrorLog
from ..observe.observers import Observers
from ..transport import ConnectionClosed, Wire
from .outbox import Outbox, Outgoing

__all__ = ["WRITE_SLICE", "WRITE_SLICE_BYTES", "Writer"]

WRITE_SLICE = 64
"""Messages a socket's writer sends before it yields to the loop (``drain()`` never pauses on loopback)."""
WRITE_SLICE_BYTES = 256 * 1024
"""Bytes a socket's writer sends before it yields to the loop, whichever comes first."""


class Writer:
    """Writes one socket's outbox to its current connection (loop thread)."""

    def __init__(self, outbox: Outbox, stats: Stats, observers: Observers, errors: ErrorLog) -> None:
        self._outbox = outbox
        self._stats = stats
        self._observers = observers
        self._errors = errors
        self._wake: asyncio.Event | None = None
        self._idle = False
        self._ws: Wire | None = None  # the open connection, while there is one
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def attach(self, ws: Wire, ready: asyncio.Event) -> None:
        """Write to ``ws`` (just opened) once ``ready`` is set (loop thread). The writing task starts with the first
        message: a socket that never sends has none (one task fewer per socket)."""
        self._ws, self._ready = ws, ready
        if len(self._outbox):
            self._start()

    async def detach(self) -> None:
        """The connection closed: stop writing to it (what is left stays in the outbox for the next one)."""
        self._ws = self._ready = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    def _start(self) -> None:
        ws, ready = self._ws, self._ready
        if self._task is None and ws is not None and ready is not None:
            name = f"nbsocket-writer-{self._outbox.name}"
            self._task = asyncio.get_running_loop().create_task(self.run(ws, ready), name=name)

    def wake(self, in_loop_thread: bool, call_soon: Callable[[Callable[[], object]], None]) -> None:
        """A message was queued: start the writer if it has not started on this connection, wake it if it sleeps (a busy
        one takes it without being woken)."""
        if self._task is None:
            if self._ws is not None:  # otherwise attach() starts it when a connection opens
                if in_loop_thread:
                    self._start()
                else:
                    call_soon(self._start)
            return
        wake = self._wake
        if not self._idle or wake is None:
            return
        if in_loop_thread:
            wake.set()
        else:
            call_soon(wake.set)

    async def run(self, ws: Wire, ready: asyncio.Event) -> None:
        """Write queued messages to ``ws`` once ``ready`` is set, until the connection closes (or the task is cancelled)."""
        if self._wake is None:
            self._wake = asyncio.Event()
        await ready.wait()
        wake = self._wake
        outbox = self._outbox
        written = written_bytes = 0
        while True:
            if written >= WRITE_SLICE or written_bytes >= WRITE_SLICE_BYTES:
                written = written_bytes = 0
                await asyncio.sleep(0)  # ws.send() does not suspend on a fast link: yield after each slice
            item = outbox.take()
            if item is None:
                written = written_bytes = 0
                # idle before the last look, so a sender that finds it idle always wakes it
                self._idle = True
                wake.clear()
                item = outbox.take()
                if item is None:
                    try:
                        await wake.wait()
                    finally:
                        self._idle = False
                    continue
                self._idle = False
            written += 1
            written_bytes += len(item.payload)
            if not ws.is_open:
                outbox.put_back(item)
                return
            try:
                await ws.send(item.payload)
            except ConnectionClosed:
                self._sent(item)  # it was handed to the transport before the close
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._errors.record("send", type(exc).__name__, str(exc), traceback.format_exc())
                continue
            self._sent(item)

    def _sent(self, item: Outgoing) -> None:
        stats = self._stats
        stats.messages_out += 1
        stats.bytes_out += item.size
        observers = self._observers
        if observers.on_sent:
            observers.call(observers.on_sent, item, time.time_ns())
