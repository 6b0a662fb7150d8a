"""The loop side of one socket: open, read, write, reconnect and stop.

A :class:`Session` is the only owner of the socket's connection (a :class:`~nbsocket.runtime.transport.Wire`
its :class:`~nbsocket.runtime.transport.Transport` opened), its state, its real (unredacted) URL and its last
close code. What the connection's messages mean is its :class:`~nbsocket.runtime.receivers.Receiver`'s
business (plain or protocol); the session opens, hands each read to it, backs off and reconnects. Everything
here runs on nbsocket's loop thread, except the read-only properties.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from ..core.backoff import Backoff
from ..core.closes import NORMAL_CLOSES
from ..core.redact import redact_url
from ..core.state import CLOSED_FOR_GOOD, utc_now
from ..errors import ConnectError, InvalidURLError
from .loop import run_blocking
from .observe.observers import LifecycleInfo
from .outbound.writer import Writer
from .parts import SocketParts
from .receivers import Receiver
from .transport import Batch, Transport, Wire

__all__ = ["Session"]

log = logging.getLogger("nbsocket")


class Session:
    """Connects, reads and writes one named socket, and reconnects it as its policy says.

    ``parts`` are the socket's (counters, outbox, observers, dispatcher, error
    log, handlers, live frame, recorder), shared with its connection; the
    connection gives the session its receiver with :meth:`use` before it opens.
    """

    def __init__(self, url: str, parts: SocketParts, transport: Transport) -> None:
        self.name = parts.name
        self._url = url
        self.url = redact_url(url)
        self.options = parts.options
        self._parts = parts
        self._transport = transport
        self._receiver: Receiver | None = None
        self.state = "connecting"
        self.seq = 0
        self.last_ts_ns = 0
        self.ws: Wire | None = None
        self.closed_code: int | None = None
        self.closed_reason = ""
        self._supervisor: asyncio.Task[None] | None = None
        self._writer = Writer(parts.outbox, parts.stats, parts.observers, parts.errors)
        self._paused_wire: Wire | None = None  # the connection whose reading waits for the handlers to catch up
        self.on_pong: Callable[[], None] | None = None
        """Called when a keepalive pong arrives (the connection keeps its latency history with it)."""
        self.open_seq = 0
        """``seq`` when the current connection opened (a default ``expect`` looks back to there)."""
        self._want_open = True

    def use(self, receiver: Receiver) -> None:
        """Hand every connection's messages to ``receiver`` (set once, before the first open)."""
        self._receiver = receiver

    # --- what the connection reads (any thread) -------------------------------------

    @property
    def shown_state(self) -> str:
        """The state, with ``closing`` as soon as an open connection is going down (keepalive timeout, 1007, a close)."""
        state = self.state
        if state == "open":
            ws = self.ws
            if ws is None or not ws.is_open:
                return "closing"
        return state

    @property
    def real_url(self) -> str:
        """The URL as given, secrets included (never shown)."""
        return self._url

    def test(self) -> bool:
        """Open right now?"""
        ws = self.ws
        return self.state == "open" and ws is not None and ws.is_open

    @property
    def last_latency(self) -> float | None:
        """Round trip of the last keepalive ping in seconds, or ``None``."""
        ws = self.ws
        return (ws.latency or None) if ws is not None else None

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose, if any."""
        ws = self.ws
        return ws.subprotocol if ws is not None else None

    def wake_writer(self, in_loop_thread: bool, call_soon: Callable[[Callable[[], object]], None]) -> None:
        """Wake an idle writer after a message was queued (a busy one takes it without being woken)."""
        self._writer.wake(in_loop_thread, call_soon)

    def notify(self, kind: str, info: LifecycleInfo) -> None:
        """Tell the observers about a lifecycle change."""
        observers = self._parts.observers
        observers.call(observers.on_lifecycle, kind, info)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.notify("state", {"state": state})

    # --- lifecycle (loop thread) ------------------------------------------------------

    async def open_first(self) -> None:
        """Start the supervisor and wait for the first open (raises the first failure)."""
        loop = asyncio.get_running_loop()
        self._parts.dispatcher.start()
        self._want_open = True
        first: asyncio.Future[None] = loop.create_future()
        first.add_done_callback(_retrieve)  # nobody may be waiting any more (Ctrl-C): never an unretrieved-exception log
        self._supervisor = loop.create_task(self._supervise(first), name=f"nbsocket-{self.name}")
        try:
            await asyncio.shield(first)
        except asyncio.CancelledError:
            await self.stop(1000, "connect cancelled")
            raise

    async def _supervise(self, first: asyncio.Future[None]) -> None:
        policy = self.options.reconnect
        backoff = Backoff(policy) if policy is not None else None
        errors = self._parts.errors
        opened_once = False
        try:
            while self._want_open:
                self._set_state("reconnecting" if opened_once else "connecting")
                try:
                    wire = await self._open_socket()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    error = (
                        exc
                        if isinstance(exc, (ConnectError, InvalidURLError))
                        else ConnectError(f"cannot connect to {self.url}: {type(exc).__name__}: {exc}", kind="network")
                    )
                    if not opened_once:
                        errors.record("connect", type(error).__name__, str(error))
                        self._set_state("failed")
                        if not first.done():
                            first.set_exception(error)
                        return
                    self._connection_error("reconnect", error)
                    if backoff is None or policy is None or not policy.retries_failure(error) or backoff.exhausted:
                        self._set_state("failed")
                        return
                    await asyncio.sleep(backoff.next_delay())
                    continue
                if opened_once:
                    self._parts.stats.reconnects += 1
                started = time.monotonic()
                code, reason, refused = await self._run(wire, first)
                if refused:  # the server refused the connection: connect raises why
                    self._set_state("failed")
                    return
                opened_once = True
                if backoff is not None:
                    backoff.connection_lasted(time.monotonic() - started)
                if not self._want_open:  # stop() or the receiver cleared it during _run (mypy keeps the loop's narrowing)
                    self._set_state("closed")  # type: ignore[unreachable]
                    return
                if backoff is None or policy is None:
                    self._set_state("closed" if code in NORMAL_CLOSES else "failed")
                    return
                if not policy.retries_close(code):
                    errors.record(
                        "close",
                        "NotRetried",
                        f"server closed with {code} {reason!r}; close codes 1008 and 4000-4999 "
                        "are not retried (pass reconnect=ReconnectPolicy(retry_close_codes={...}) to retry them)",
                    )
                    self._set_state("failed")
                    return
                if backoff.exhausted:
                    errors.record("reconnect", "GaveUp", f"gave up after {backoff.attempt} attempts")
                    self._set_state("failed")
                    return
                self._set_state("reconnecting")
                await asyncio.sleep(backoff.next_delay())
        finally:
            if not first.done():
                first.set_exception(ConnectError(f"connecting {self.url} was stopped", kind="network"))

    @property
    def receiver(self) -> Receiver:
        """What this socket's messages go to (given by :meth:`use` before the first open)."""
        receiver = self._receiver
        assert receiver is not None, f"session {self.name!r} was opened before it was given a receiver"
        return receiver

    async def _open_socket(self) -> Wire:
        receiver = self.receiver
        url, subprotocols = receiver.prepare_open(self._url, self.options)  # a protocol's path and subprotocols
        return await self._transport.open(
            url, self.options, subprotocols=subprotocols, decode_text=receiver.decode_text, ping_at_open=receiver.ping_at_open
        )

    def _connection_error(self, where: str, exc: BaseException) -> None:
        self._parts.errors.connection_error(where, exc)
        self._parts.dispatcher.push_error(exc)

    async def _run(self, wire: Wire, first: asyncio.Future[None]) -> tuple[int, str, bool]:
        """Serve one open connection until it closes: its close code and reason, and whether it refused the first open.

        Messages arrive in batches through :meth:`_receive_batch`, called by the
        wire once per read; this coroutine starts the writer and waits for the
        end. The receiver settles ``first`` (what ``connect`` waits for): at the
        first message or once the open held (plain), or once the protocol's
        handshake is done.
        """
        receiver = self.receiver
        self.ws = wire
        self.open_seq = self.seq  # a default expect looks back to here
        self._parts.stats.opened_at = utc_now()
        self._set_state("open")
        self.notify("open", {"url": self.url, "subprotocol": wire.subprotocol})
        ready = asyncio.Event()
        receiver.opened(wire, ready, first)
        self._writer.attach(wire, ready)
        try:
            wire.on_pong = self.on_pong
            wire.attach(functools.partial(self._receive_batch, wire))
            await wire.wait_closed()
        finally:
            await self._writer.detach()
            if not wire.is_closed:
                await wire.abort()
            self.ws = None
        code, reason, by_us = wire.close_info()
        self.closed_code, self.closed_reason = code, reason
        settled_before = first.done()
        if receiver.closed(wire.close_info(), first):  # a refused handshake, a server that said goodbye
            self._want_open = False
        refused = not settled_before and first.done() and not first.cancelled() and first.exception() is not None
        if code not in NORMAL_CLOSES and self._want_open and not refused:
            cause = wire.failure
            detail = f" ({type(cause).__name__}: {cause})" if cause else ""
            who = "closed by nbsocket" if by_us else "connection lost"
            hint = ""
            if code == 1009 and by_us:
                hint = (
                    f"; a message was larger than max_size={self.options.max_size} bytes: connect with a larger "
                    "max_size (or max_size=None for no limit)"
                )
            elif code == 1009:
                hint = "; the server refused a message nbsocket sent as too big for it: send smaller messages"
            self._connection_error("close", ConnectionError(f"{who}: code {code} {reason!r}{detail}{hint}"))
        self.notify("close", {"code": code, "reason": reason})
        self._parts.dispatcher.push_close(code, reason)
        return code, reason, refused

    def _receive_batch(self, wire: Wire, batch: Batch) -> None:
        """The messages one read completed, in order (loop thread, called by the wire)."""
        try:
            self.receiver.receive(batch)
        except Exception as exc:  # a bug of ours must not end the session
            self._parts.errors.record("receive", type(exc).__name__, str(exc), traceback.format_exc())
        high = self.options.max_queue
        if high is not None and self._parts.dispatcher.backlog > high and self._paused_wire is not wire:
            self._pause_reading(wire, high // 2)

    def _pause_reading(self, wire: Wire, low: int) -> None:
        """More than ``max_queue`` messages wait for the handlers: stop reading (TCP pushes back on the server) until
        at most ``low`` do. Only this socket stops; the loop and every other socket go on."""
        waiting = self._paused_wire is not None  # a connection that closed while paused: its resume task serves this one
        self._paused_wire = wire
        wire.pause_reading()
        if waiting:
            return

        async def resume() -> None:
            try:
                await self._parts.dispatcher.wait_drained(low)
            finally:
                paused, self._paused_wire = self._paused_wire, None
                if paused is not None:
                    paused.resume_reading()

        asyncio.get_running_loop().create_task(resume(), name=f"nbsocket-backpressure-{self.name}")

    async def stop(self, code: int = 1000, reason: str = "", *, final: bool = True) -> None:
        """Close the current connection (if any) and end the supervisor."""
        self._want_open = False
        wire, supervisor = self.ws, self._supervisor
        if wire is not None:
            try:
                await asyncio.wait_for(wire.close(code, reason), (self.options.close_timeout or 5.0) + 1.0)
            except (asyncio.TimeoutError, Exception):
                await wire.abort()
        if supervisor is not None and not supervisor.done() and supervisor is not asyncio.current_task():
            await asyncio.wait({supervisor}, timeout=1.0)  # let it finish the session (on_close) on its own
            if not supervisor.done():
                supervisor.cancel()
                try:
                    await supervisor
                except (asyncio.CancelledError, Exception):
                    pass
        if final and self.state not in CLOSED_FOR_GOOD:
            self._set_state("closed")
            if wire is None and self.closed_code is None:
                self.closed_code, self.closed_reason = code, reason
        recorder = self._parts.recorder
        if recorder is not None:  # final flush: every row received so far goes to disk
            await run_blocking(None, recorder.close)

    async def reset(self, url: str | None) -> None:
        """Reconnect, to ``url`` if given (already validated); if that fails, the socket keeps the URL it had."""
        await self.stop(1000, "reset", final=False)
        previous = self._url, self.url
        if url is not None:
            self._url = url
            self.url = redact_url(url)
        self._parts.stats.resets += 1
        self.notify("reset", {"url": self.url})
        try:
            await self.open_first()
        except BaseException:
            if url is not None and self._url == url:
                self._url, self.url = previous
            raise

    async def shutdown(self, code: int = 1001, reason: str = "going away") -> None:
        """Stop for good and stop the dispatcher (remove, shutdown)."""
        await self.stop(code, reason)
        await self._parts.dispatcher.stop()

    def abort_transport(self) -> None:
        """Drop the connection at once, if there is one (the last resort of a shutdown)."""
        wire = self.ws
        if wire is not None:
            wire.drop()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen (its waiter may be gone), so asyncio never logs it as unretrieved."""
    if not future.cancelled():
        future.exception()
