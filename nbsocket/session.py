"""The loop side of a connection: open, read, write, reconnect and stop (mixed into Connection).

Everything here runs on nbsocket's loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from typing import Any

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from . import failures
from .backoff import Backoff, ReconnectPolicy
from .closing import NORMAL_CLOSES, abort_connection, close_info
from .dispatch import BACKLOG_HIGH
from .errors import ConnectError
from .events import Request, WsEvent
from .flatten import message_fields
from .loop import run_blocking
from .options import websockets_kwargs
from .outbox import Outgoing
from .records import Stats, utc_now
from .redact import redact_url

log = logging.getLogger("nbsocket")
wire_log = logging.getLogger("nbsocket.websockets")

STATES = ("connecting", "open", "closing", "reconnecting", "closed", "failed")
CLOSED_FOR_GOOD = ("closed", "failed")
WRITE_SLICE = 64
"""Messages a socket's writer sends before it yields to the loop (``drain()`` never pauses on loopback)."""
WRITE_SLICE_BYTES = 256 * 1024
"""Bytes a socket's writer sends before it yields to the loop, whichever comes first."""
OPEN_SETTLE = 0.1
"""Seconds after the handshake (and ``on_open``) during which a refusing close still fails ``connect``."""
READ_SLICE = 64
"""Messages a socket's reader takes from its buffer before it yields to the loop (a flooded socket must not starve the others)."""


class SessionMixin:
    """The loop-side methods of :class:`~nbsocket.connection.Connection`."""

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self._notify("state", {"state": state})

    async def _open_first(self) -> None:
        """Start the supervisor and wait for the first open (raises the first failure)."""
        loop = asyncio.get_running_loop()
        if self._send_wake is None:
            self._send_wake = asyncio.Event()
        self._dispatcher.start()
        self._want_open = True
        first: asyncio.Future[None] = loop.create_future()
        first.add_done_callback(_retrieve)  # nobody may be waiting any more (Ctrl-C): never an unretrieved-exception log
        self._supervisor = loop.create_task(self._supervise(first), name=f"nbsocket-{self.name}")
        try:
            await asyncio.shield(first)
        except asyncio.CancelledError:
            await self._stop(1000, "connect cancelled")
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
                        self._record("connect", type(error).__name__, str(error))
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
                    self.stats.reconnects += 1
                started = time.monotonic()
                code, reason = await self._session(ws, first)
                if not first.done():  # closed before it settled: the server refused the connection
                    if self._refused_at_open(code):
                        error = ConnectError(
                            f"{self.url} accepted the connection and closed it at once with code {code} {reason!r}",
                            kind="closed", code=code, reason=reason,
                        )
                        self._record("connect", type(error).__name__, str(error))
                        self._set_state("failed")
                        first.set_exception(error)
                        return
                    first.set_result(None)
                opened_once = True
                if backoff is not None:
                    backoff.connection_lasted(time.monotonic() - started)
                if not self._want_open:
                    self._set_state("closed")
                    return
                if backoff is None or policy is None:
                    self._set_state("closed" if code in NORMAL_CLOSES else "failed")
                    return
                if not policy.retries_close(code):
                    self._record("close", "NotRetried", f"server closed with {code} {reason!r}; close codes 1008 and 4000-4999 "
                                 "are not retried (pass reconnect=ReconnectPolicy(retry_close_codes={...}) to retry them)")
                    self._set_state("failed")
                    return
                if backoff.exhausted:
                    self._record("reconnect", "GaveUp", f"gave up after {backoff.attempt} attempts")
                    self._set_state("failed")
                    return
                self._set_state("reconnecting")
                await asyncio.sleep(backoff.next_delay())
        finally:
            if not first.done():
                first.set_exception(ConnectError(f"connecting {self.url} was stopped", kind="network"))

    def _refused_at_open(self, code: int | None) -> bool:
        """Is ``code``, received right after the handshake, a refusal (not retried: 1008, 4000-4999)?"""
        if code is None or code in NORMAL_CLOSES:
            return False
        return not (self.options.reconnect or ReconnectPolicy()).retries_close(code)

    async def _settle_open(self, ws: Any, ready: asyncio.Event, first: asyncio.Future[None]) -> None:
        """Resolve ``first`` once ``on_open`` ran and the server has not closed within :data:`OPEN_SETTLE`."""
        await ready.wait()
        await asyncio.sleep(OPEN_SETTLE)
        if not first.done() and ws.protocol.state is State.OPEN:
            first.set_result(None)

    async def _open_socket(self) -> Any:
        kwargs = websockets_kwargs(self._url, self.options)
        return await ws_connect(self._url, logger=wire_log, **kwargs)

    async def _session(self, ws: Any, first: asyncio.Future[None]) -> tuple[int | None, str]:
        """Read one open connection until it closes; returns its close code and reason.

        ``first`` (what ``connect`` waits for) is resolved at the first message,
        or once the connection has stayed open briefly after ``on_open``.
        """
        self._ws = ws
        self._open_seq = self._seq  # a default expect looks back to here
        self.stats.opened_at = utc_now()
        self._set_state("open")
        self._notify("open", {"url": self.url, "subprotocol": getattr(ws, "subprotocol", None)})
        ready = asyncio.Event()
        if self.on_open is not None:
            self._dispatcher.push("open", ready)
        else:
            ready.set()
        loop = asyncio.get_running_loop()
        writer = loop.create_task(self._write(ws, ready), name=f"nbsocket-writer-{self.name}")
        settler = loop.create_task(self._settle_open(ws, ready, first), name=f"nbsocket-settle-{self.name}") if not first.done() else None
        dispatcher = self._dispatcher
        unyielded = 0
        try:
            while True:
                try:
                    body = await ws.recv()
                except ConnectionClosed:
                    break
                if not first.done():
                    first.set_result(None)
                unyielded += 1
                if unyielded >= READ_SLICE:  # recv() does not suspend while frames are buffered: let the others run
                    unyielded = 0
                    await asyncio.sleep(0)
                try:
                    self._receive(body)
                except Exception as exc:  # a bug of ours must not end the session
                    self._record("receive", type(exc).__name__, str(exc), traceback.format_exc())
                if dispatcher.backlog > BACKLOG_HIGH:
                    await dispatcher.wait_drained()
        finally:
            for task in (writer, settler):
                if task is None:
                    continue
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
            if ws.protocol.state is not State.CLOSED:
                await abort_connection(ws)
            self._ws = None
        code, reason, by_us = close_info(ws)
        self._closed_code, self._closed_reason = code, reason
        refused = not first.done() and self._refused_at_open(code)  # connect raises it instead
        if code not in NORMAL_CLOSES and self._want_open and not refused:
            cause = getattr(ws, "connection_exc", None)
            detail = f" ({type(cause).__name__}: {cause})" if cause else ""
            who = "closed by nbsocket" if by_us else "connection lost"
            hint = ""
            if code == 1009:
                hint = (f"; a message was larger than max_size={self.options.max_size} bytes: connect with a larger "
                        "max_size (or max_size=None for no limit)")
            self._connection_error("close", ConnectionError(f"{who}: code {code} {reason!r}{detail}{hint}"))
        self._notify("close", {"code": code, "reason": reason})
        if self.on_close is not None:
            self._dispatcher.push("close", code, reason)
        return code, reason

    def _receive(self, body: str | bytes) -> None:
        ts = self._last_ts_ns = time.time_ns()
        self._seq += 1
        seq = self._seq
        stats = self.stats
        stats.messages_in += 1
        is_binary = not isinstance(body, str)
        stats.bytes_in += len(body) if is_binary or body.isascii() else len(body.encode("utf-8", "surrogatepass"))
        try:
            data = self._codec.decode(body)
            error = None
        except Exception as exc:
            data = None
            error = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            stats.parse_errors += 1
        frame = self.frame
        if frame is not None:
            frame.append(ts, seq, message_fields(data, error, body))
        handlers, observers = self._handlers, self._observers
        if observers.on_frame:
            observers.call(observers.on_frame, ts, seq, body, is_binary, error)
        if handlers or observers.on_received or observers.on_handled:
            event = WsEvent(self.name, data, Request(body, is_binary, self.content_type, self.url), seq, ts, self.lockable, error, self)
            if observers.on_received:
                observers.call(observers.on_received, event)
            if handlers:
                self._dispatcher.push("message", event)  # the dispatcher calls _handled once the handlers ran
            else:
                self._handled(event)

    def _handled(self, event: WsEvent) -> None:
        """Tell observers that ``event`` has been through every handler (any thread)."""
        self._handled_seq = event.seq
        observers = self._observers
        if observers.on_handled:
            observers.call(observers.on_handled, event)

    async def _write(self, ws: Any, ready: asyncio.Event) -> None:
        await ready.wait()
        wake = self._send_wake
        assert wake is not None
        outbox = self._outbox
        stats = self.stats
        written = written_bytes = 0
        while True:
            if written >= WRITE_SLICE or written_bytes >= WRITE_SLICE_BYTES:
                written = written_bytes = 0
                await asyncio.sleep(0)  # ws.send() does not suspend on a fast link: yield after each slice
            item = outbox.take()
            if item is None:
                written = written_bytes = 0
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
            written += 1
            written_bytes += len(item.payload)
            if ws.protocol.state is not State.OPEN:
                outbox.put_back(item)
                return
            try:
                await ws.send(item.payload)
            except ConnectionClosed:
                self._sent(item, stats)  # it was handed to the transport before the close
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._record("send", type(exc).__name__, str(exc), traceback.format_exc())
                continue
            self._sent(item, stats)

    def _sent(self, item: Outgoing, stats: Stats) -> None:
        stats.messages_out += 1
        stats.bytes_out += item.size
        observers = self._observers
        if observers.on_sent:
            observers.call(observers.on_sent, item, time.time_ns())

    async def _stop(self, code: int = 1000, reason: str = "", *, final: bool = True) -> None:
        """Close the current connection (if any) and end the supervisor."""
        self._want_open = False
        ws, supervisor = self._ws, self._supervisor
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
        if final and self._state not in CLOSED_FOR_GOOD:
            self._set_state("closed")
            if ws is None and self._closed_code is None:
                self._closed_code, self._closed_reason = code, reason
        if self.recorder is not None:  # final flush: every row received so far goes to disk
            await run_blocking(None, self.recorder.close)

    async def _reset(self, url: str | None) -> None:
        """Reconnect, to ``url`` if given; if that fails, the socket keeps the URL it had (so a retry goes where it worked)."""
        await self._stop(1000, "reset", final=False)
        previous = self._url, self.url
        if url is not None:
            self._url = url
            self.url = redact_url(url)
        self.stats.resets += 1
        self._notify("reset", {"url": self.url})
        try:
            await self._open_first()
        except BaseException:
            if url is not None and self._url == url:
                self._url, self.url = previous
            raise

    async def _shutdown(self, code: int = 1001, reason: str = "going away") -> None:
        await self._stop(code, reason)
        await self._dispatcher.stop()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen (its waiter may be gone), so asyncio never logs it as unretrieved."""
    if not future.cancelled():
        future.exception()
