"""The loop side of one socket: open, read, write, reconnect and stop.

A :class:`Session` is the only owner of the socket's ``websockets``
connection, its state, its real (unredacted) URL and its last close code.
Everything here runs on nbsocket's loop thread, except the read-only
properties.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from ..core.backoff import Backoff
from ..core.closes import NORMAL_CLOSES
from ..core.codecs import Codec
from ..core.events import Request, SocketVerbs, WsEvent, utf8_size
from ..core.flatten import message_fields
from ..core.frame import LiveFrame
from ..core.options import ConnectOptions
from ..core.redact import redact_url
from ..core.state import CLOSED_FOR_GOOD, Stats, utc_now
from ..errors import ConnectError
from . import failures
from .closing import abort_connection, close_info
from .dispatch import BACKLOG_HIGH, Dispatcher, Kind
from .errorlog import ErrorLog
from .handlers import HandlerList
from .handshake import websockets_kwargs
from .loop import run_blocking
from .observers import Observers
from .outbox import Outbox, Outgoing
from .recording.base import Recorder

__all__ = ["Session"]

log = logging.getLogger("nbsocket")
wire_log = logging.getLogger("nbsocket.websockets")


class Session:
    """Connects, reads and writes one named socket, and reconnects it as its policy says.

    ``verbs`` is the connection events act on; the other parts are the
    connection's (counters, outbox, observers, dispatcher, error log,
    handlers, live frame, recorder), shared with it.
    """

    def __init__(
        self,
        name: str,
        url: str,
        options: ConnectOptions,
        *,
        verbs: SocketVerbs,
        lockable: Any,
        codec: Codec,
        stats: Stats,
        outbox: Outbox,
        observers: Observers,
        dispatcher: Dispatcher,
        errors: ErrorLog,
        handlers: HandlerList,
        frame: LiveFrame | None,
        recorder: Recorder | None,
    ) -> None:
        self.name = name
        self._url = url
        self.url = redact_url(url)
        self.options = options
        self._verbs = verbs
        self._lockable = lockable
        self._codec = codec
        self.content_type = options.content_type
        self._stats = stats
        self._outbox = outbox
        self._observers = observers
        self._dispatcher = dispatcher
        self._errors = errors
        self._handlers = handlers
        self._frame = frame
        self._recorder = recorder
        self.state = "connecting"
        self.seq = 0
        self.last_ts_ns = 0
        self.ws: Any = None
        self.closed_code: int | None = None
        self.closed_reason = ""
        self._supervisor: asyncio.Task[None] | None = None
        self._send_wake: asyncio.Event | None = None
        self._writer_idle = False
        self._want_open = True

    # --- what the connection reads (any thread) -------------------------------------

    @property
    def real_url(self) -> str:
        """The URL as given, secrets included (never shown)."""
        return self._url

    def test(self) -> bool:
        """Open right now?"""
        ws = self.ws
        return self.state == "open" and ws is not None and ws.protocol.state is State.OPEN

    @property
    def last_latency(self) -> float | None:
        """Round trip of the last keepalive ping in seconds, or ``None``."""
        ws = self.ws
        latency = getattr(ws, "latency", 0.0) if ws is not None else 0.0
        return latency or None

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose, if any."""
        ws = self.ws
        return getattr(ws, "subprotocol", None) if ws is not None else None

    def wake_writer(self, in_loop_thread: bool, call_soon: Callable[[Callable[[], Any]], None]) -> None:
        """Wake an idle writer after a message was queued (a busy one takes it without being woken)."""
        wake = self._send_wake
        if not self._writer_idle or wake is None:
            return
        if in_loop_thread:
            wake.set()
        else:
            call_soon(wake.set)

    def notify(self, kind: str, info: dict[str, Any]) -> None:
        """Tell the observers about a lifecycle change."""
        self._observers.call(self._observers.on_lifecycle, kind, info)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.notify("state", {"state": state})

    # --- lifecycle (loop thread) ------------------------------------------------------

    async def open_first(self) -> None:
        """Start the supervisor and wait for the first open (raises the first failure)."""
        loop = asyncio.get_running_loop()
        if self._send_wake is None:
            self._send_wake = asyncio.Event()
        self._dispatcher.start()
        self._want_open = True
        first: asyncio.Future[None] = loop.create_future()
        self._supervisor = loop.create_task(self._supervise(first), name=f"nbsocket-{self.name}")
        try:
            await asyncio.shield(first)
        except asyncio.CancelledError:
            await self.stop(1000, "connect cancelled")
            raise

    async def _supervise(self, first: asyncio.Future[None]) -> None:
        policy = self.options.reconnect
        backoff = Backoff(policy) if policy is not None else None
        opened_once = False
        try:
            while self._want_open:
                self._set_state("reconnecting" if opened_once else "connecting")
                try:
                    ws = await self._open_socket()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    error = failures.translate(exc, self.url, self.options.open_timeout)
                    if not opened_once:
                        self._errors.record("connect", type(error).__name__, str(error))
                        self._set_state("failed")
                        if not first.done():
                            first.set_exception(error)
                        return
                    self._connection_error("reconnect", error)
                    if backoff is None or policy is None or not failures.retryable(error, policy.retries_status) or backoff.exhausted:
                        self._set_state("failed")
                        return
                    await asyncio.sleep(backoff.next_delay())
                    continue
                if opened_once:
                    self._stats.reconnects += 1
                opened_once = True
                started = time.monotonic()
                if not first.done():
                    first.set_result(None)
                code, reason = await self._run(ws)
                if backoff is not None:
                    backoff.connection_lasted(time.monotonic() - started)
                if not self._want_open:
                    self._set_state("closed")
                    return
                if backoff is None or policy is None:
                    self._set_state("closed" if code in NORMAL_CLOSES else "failed")
                    return
                if not policy.retries_close(code):
                    self._errors.record("close", "NotRetried", f"server closed with {code} {reason!r}; close codes 1008 and 4000-4999 "
                                        "are not retried (pass reconnect=ReconnectPolicy(retry_close_codes={...}) to retry them)")
                    self._set_state("failed")
                    return
                if backoff.exhausted:
                    self._errors.record("reconnect", "GaveUp", f"gave up after {backoff.attempt} attempts")
                    self._set_state("failed")
                    return
                self._set_state("reconnecting")
                await asyncio.sleep(backoff.next_delay())
        finally:
            if not first.done():
                first.set_exception(ConnectError(f"connecting {self.url} was stopped", kind="network"))

    async def _open_socket(self) -> Any:
        kwargs = websockets_kwargs(self._url, self.options)
        return await ws_connect(self._url, logger=wire_log, **kwargs)

    def _connection_error(self, where: str, exc: BaseException) -> None:
        self._errors.connection_error(where, exc)
        self._dispatcher.push_error(exc)

    async def _run(self, ws: Any) -> tuple[int | None, str]:
        """Read one open connection until it closes; returns its close code and reason."""
        self.ws = ws
        self._stats.opened_at = utc_now()
        self._set_state("open")
        self.notify("open", {"url": self.url, "subprotocol": getattr(ws, "subprotocol", None)})
        ready = asyncio.Event()
        self._dispatcher.push_open(ready)
        writer = asyncio.get_running_loop().create_task(self._write(ws, ready), name=f"nbsocket-writer-{self.name}")
        dispatcher = self._dispatcher
        try:
            while True:
                try:
                    body = await ws.recv()
                except ConnectionClosed:
                    break
                try:
                    self._receive(body)
                except Exception as exc:  # a bug of ours must not end the session
                    self._errors.record("receive", type(exc).__name__, str(exc), traceback.format_exc())
                if dispatcher.backlog > BACKLOG_HIGH:
                    await dispatcher.wait_drained()
                elif not self.seq & 255:
                    await asyncio.sleep(0)  # recv() of buffered messages never yields: let other tasks (a close) run
        finally:
            writer.cancel()
            try:
                await writer
            except (asyncio.CancelledError, Exception):
                pass
            if ws.protocol.state is not State.CLOSED:
                await abort_connection(ws)
            self.ws = None
        code, reason, by_us = close_info(ws)
        self.closed_code, self.closed_reason = code, reason
        if code not in NORMAL_CLOSES and self._want_open:
            cause = getattr(ws, "connection_exc", None)
            detail = f" ({type(cause).__name__}: {cause})" if cause else ""
            who = "closed by nbsocket" if by_us else "connection lost"
            self._connection_error("close", ConnectionError(f"{who}: code {code} {reason!r}{detail}"))
        self.notify("close", {"code": code, "reason": reason})
        self._dispatcher.push_close(code, reason)
        return code, reason

    def _receive(self, body: str | bytes) -> None:
        ts = self.last_ts_ns = time.time_ns()
        self.seq += 1
        seq = self.seq
        stats = self._stats
        stats.messages_in += 1
        is_binary = not isinstance(body, str)
        stats.bytes_in += utf8_size(body)
        try:
            data = self._codec.decode(body)
            error = None
        except Exception as exc:
            data = None
            error = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            stats.parse_errors += 1
        frame = self._frame
        if frame is not None:
            frame.append(ts, seq, message_fields(data, error, body))
        handlers, observers = self._handlers, self._observers
        if observers.on_frame:
            observers.call(observers.on_frame, ts, seq, body, is_binary, error)
        if handlers or observers.on_received or observers.on_handled:
            event = WsEvent(self.name, data, Request(body, is_binary, self.content_type, self.url), seq, ts, self._lockable, error, self._verbs)
            if observers.on_received:
                observers.call(observers.on_received, event)
            if handlers:
                self._dispatcher.push(Kind.MESSAGE, event)  # the dispatcher notes it handled once the handlers ran
            else:
                self._dispatcher.note_handled(event)

    async def _write(self, ws: Any, ready: asyncio.Event) -> None:
        await ready.wait()
        wake = self._send_wake
        assert wake is not None
        outbox = self._outbox
        while True:
            item = outbox.take()
            if item is None:
                # idle before the last look, so a sender that finds it idle always wakes it
                self._writer_idle = True
                wake.clear()
                item = outbox.take()
                if item is None:
                    try:
                        await wake.wait()
                    finally:
                        self._writer_idle = False
                    continue
                self._writer_idle = False
            if ws.protocol.state is not State.OPEN:
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

    async def stop(self, code: int = 1000, reason: str = "", *, final: bool = True) -> None:
        """Close the current connection (if any) and end the supervisor."""
        self._want_open = False
        ws, supervisor = self.ws, self._supervisor
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(code, reason), (self.options.close_timeout or 5.0) + 1.0)
            except (asyncio.TimeoutError, Exception):
                await abort_connection(ws)
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
            if ws is None and self.closed_code is None:
                self.closed_code, self.closed_reason = code, reason
        if self._recorder is not None:  # final flush: every row received so far goes to disk
            await run_blocking(None, self._recorder.close)

    async def reset(self, url: str | None) -> None:
        """Reconnect, to ``url`` if given (already validated)."""
        await self.stop(1000, "reset", final=False)
        if url is not None:
            self._url = url
            self.url = redact_url(url)
        self._stats.resets += 1
        self.notify("reset", {"url": self.url})
        await self.open_first()

    async def shutdown(self, code: int = 1001, reason: str = "going away") -> None:
        """Stop for good and stop the dispatcher (remove, shutdown)."""
        await self.stop(code, reason)
        await self._dispatcher.stop()

    def abort_transport(self) -> None:
        """Drop the TCP connection at once, if there is one (the last resort of a shutdown)."""
        ws = self.ws
        if ws is not None and getattr(ws, "transport", None) is not None:
            ws.transport.abort()
