"""The loop side of one socket: open, read, write, reconnect and stop.

A :class:`Session` is the only owner of the socket's ``websockets``
connection, its state, its real (unredacted) URL and its last close code.
Everything here runs on nbsocket's loop thread, except the read-only
properties.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ..core.backoff import Backoff, ReconnectPolicy
from ..core.closes import NORMAL_CLOSES
from ..core.codecs import Codec
from ..core.events import Request, SocketVerbs, WsEvent
from ..core.frame import LiveFrame
from ..core.inbound import decode_batch
from ..core.options import ConnectOptions
from ..core.redact import redact_url
from ..core.state import CLOSED_FOR_GOOD, Stats, utc_now
from ..errors import ConnectError
from .dispatch.dispatcher import BACKLOG_HIGH, Dispatcher, Kind
from .dispatch.handlers import HandlerList
from .loop import run_blocking
from .observe.errorlog import ErrorLog
from .observe.observers import Observers
from .observe.recording.base import Recorder
from .outbound.outbox import Outbox
from .outbound.writer import Writer
from .transport import BatchingConnection, abort_connection, close_info, open_connection, retryable, translate, websockets_kwargs

__all__ = ["Session"]

log = logging.getLogger("nbsocket")

OPEN_SETTLE = 0.1
"""The longest ``connect`` waits after the handshake (and ``on_open``) for the ping that shows the server keeps the connection."""
SILENT_PEER_SETTLE = 0.005
"""What ``connect`` waits instead, for a close sent right after the handshake, at a server that did not answer that ping."""
_silent_peers: set[str] = set()  # host:port of servers that did not answer the settling ping (they may never answer one)

def _answered(peer: str, pong: asyncio.Future[float]) -> None:
    """A silent peer answered a ping after all: wait for its pong again next time."""
    if not pong.cancelled() and pong.exception() is None:
        _silent_peers.discard(peer)


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
        self._writer = Writer(outbox, stats, observers, errors)
        self._reading_paused = False
        self._first: asyncio.Future[None] | None = None
        self.on_pong: Callable[[], None] | None = None
        """Called when a keepalive pong arrives (the connection keeps its latency history with it)."""
        self.open_seq = 0
        """``seq`` when the current connection opened (a default ``expect`` looks back to there)."""
        self._want_open = True
        self.recv_decode: bool | None = None  # protocol hook: False hands text messages over undecoded, as bytes (STOMP)
        self.driver: Any = None  # protocol hook: a ProtocolDriver on protocol sockets (runtime/protocol_driver.py)

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
        latency = getattr(ws, "latency", 0.0) if ws is not None else 0.0
        return latency or None

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose, if any."""
        ws = self.ws
        return getattr(ws, "subprotocol", None) if ws is not None else None

    def wake_writer(self, in_loop_thread: bool, call_soon: Callable[[Callable[[], Any]], None]) -> None:
        """Wake an idle writer after a message was queued (a busy one takes it without being woken)."""
        self._writer.wake(in_loop_thread, call_soon)

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
        self._dispatcher.start()
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
        opened_once = False
        try:
            while self._want_open:
                self._set_state("reconnecting" if opened_once else "connecting")
                try:
                    ws = await self._open_socket()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    error = translate(exc, self.url, self.options.open_timeout)
                    if not opened_once:
                        self._errors.record("connect", type(error).__name__, str(error))
                        self._set_state("failed")
                        if not first.done():
                            first.set_exception(error)
                        return
                    self._connection_error("reconnect", error)
                    if backoff is None or policy is None or not retryable(error, policy.retries_status) or backoff.exhausted:
                        self._set_state("failed")
                        return
                    await asyncio.sleep(backoff.next_delay())
                    continue
                if opened_once:
                    self._stats.reconnects += 1
                started = time.monotonic()
                code, reason = await self._run(ws, first)
                if not first.done():  # closed before it settled: the server refused the connection
                    if self.driver is None and self._refused_at_open(code):
                        error = ConnectError(
                            f"{self.url} accepted the connection and closed it at once with code {code} {reason!r}",
                            kind="closed", code=code, reason=reason,
                        )
                        self._errors.record("connect", type(error).__name__, str(error))
                        self._set_state("failed")
                        first.set_exception(error)
                        return
                    if self.driver is None:
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

    async def _open_socket(self) -> BatchingConnection:
        kwargs = websockets_kwargs(self._url, self.options)
        url = self._url
        if self.driver is not None:  # protocol hook: the protocol's URL (Socket.IO path) and subprotocols
            url = self.driver.prepare_open(url, kwargs)
        return await open_connection(url, kwargs, decode_text=self.recv_decode is not False)

    def _connection_error(self, where: str, exc: BaseException) -> None:
        self._errors.connection_error(where, exc)
        self._dispatcher.push_error(exc)

    def _refused_at_open(self, code: int | None) -> bool:
        """Is ``code``, received right after the handshake, a refusal (not retried: 1008, 4000-4999)?"""
        if code is None or code in NORMAL_CLOSES:
            return False
        return not (self.options.reconnect or ReconnectPolicy()).retries_close(code)

    async def _settle_open(self, ws: Any, ready: asyncio.Event, first: asyncio.Future[None]) -> None:
        """Resolve ``first`` once ``on_open`` ran, what it sent was written, and the server answered a ping.

        The server handles our frames in order: if it meant to refuse the
        connection at once (or on the auth ``on_open`` sent), its close comes
        before the pong, and ``connect`` raises it. The wait is one round trip,
        at most :data:`OPEN_SETTLE`. A server that let that time pass without a
        pong is remembered (by host and port) and waited for only
        :data:`SILENT_PEER_SETTLE` next time, until it answers a ping.
        """
        await ready.wait()
        deadline = asyncio.get_running_loop().time() + OPEN_SETTLE
        while len(self._outbox) and asyncio.get_running_loop().time() < deadline:  # on_open's sends go out first
            await asyncio.sleep(0.001)
        peer = urlsplit(self._url).netloc
        if not first.done() and ws.is_open:
            try:
                pong = await ws.ping()
                if peer in _silent_peers:  # no wait: a loop of connects would wait OPEN_SETTLE for each
                    pong.add_done_callback(functools.partial(_answered, peer))
                    await asyncio.sleep(SILENT_PEER_SETTLE)
                else:
                    await asyncio.wait_for(asyncio.shield(pong), max(0.0, deadline - asyncio.get_running_loop().time()))
            except asyncio.TimeoutError:
                _silent_peers.add(peer)
            except Exception:  # the connection is closing: judged below
                pass
        if not first.done() and ws.is_open:
            first.set_result(None)

    async def _run(self, ws: Any, first: asyncio.Future[None]) -> tuple[int | None, str]:
        """Serve one open connection until it closes; returns its close code and reason.

        Messages arrive in batches through :meth:`_receive_batch`, called by
        the wire (:class:`~nbsocket.runtime.transport.BatchingConnection`) once per
        read; this coroutine starts the writer and waits for the end. ``first``
        (what ``connect`` waits for) is resolved at the first message, or once
        the connection has stayed open briefly after ``on_open`` (for protocol
        sockets: once the protocol's handshake is done).
        """
        self.ws = ws
        self.open_seq = self.seq  # a default expect looks back to here
        self._first = first
        self._stats.opened_at = utc_now()
        self._set_state("open")
        self.notify("open", {"url": self.url, "subprotocol": getattr(ws, "subprotocol", None)})
        ready = asyncio.Event()
        loop = asyncio.get_running_loop()
        settler = None
        if self.driver is None:
            self._dispatcher.push_open(ready)
            if not first.done():
                settler = loop.create_task(self._settle_open(ws, ready, first), name=f"nbsocket-settle-{self.name}")
        else:  # protocol hook: start the handshake; connect returns, and on_open and the writer start, once it is done
            if not first.done():
                self.driver.resolve_when_ready(first)
            self.driver.opened(ws, ready)
        writer = loop.create_task(self._writer.run(ws, ready), name=f"nbsocket-writer-{self.name}")
        try:
            ws.on_pong = self.on_pong
            ws.attach(lambda batch: self._receive_batch(ws, batch))
            await ws.wait_closed()
        finally:
            for task in (writer, settler):
                if task is None:
                    continue
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
            if not ws.is_closed:
                await abort_connection(ws)
            self.ws = None
        code, reason, by_us = close_info(ws)
        self.closed_code, self.closed_reason = code, reason
        if self.driver is not None and self.driver.closed(code, reason):  # protocol hook: a refused handshake ends it
            self._want_open = False
        refused = self.driver is None and not first.done() and self._refused_at_open(code)  # connect raises it instead
        if code not in NORMAL_CLOSES and self._want_open and not refused:
            cause = getattr(ws, "connection_exc", None)
            detail = f" ({type(cause).__name__}: {cause})" if cause else ""
            who = "closed by nbsocket" if by_us else "connection lost"
            hint = ""
            if code == 1009 and by_us:
                hint = (f"; a message was larger than max_size={self.options.max_size} bytes: connect with a larger "
                        "max_size (or max_size=None for no limit)")
            elif code == 1009:
                hint = "; the server refused a message nbsocket sent as too big for it: send smaller messages"
            self._connection_error("close", ConnectionError(f"{who}: code {code} {reason!r}{detail}{hint}"))
        self.notify("close", {"code": code, "reason": reason})
        self._dispatcher.push_close(code, reason)
        return code, reason

    def _receive_batch(self, ws: Any, bodies: list[str | bytes]) -> None:
        """The messages one read completed, in order (loop thread, called by the wire)."""
        first = self._first
        if first is not None and self.driver is None and not first.done():
            first.set_result(None)  # a message arrived: the server did not refuse the connection
        try:
            self._receive(bodies)
        except Exception as exc:  # a bug of ours must not end the session
            self._errors.record("receive", type(exc).__name__, str(exc), traceback.format_exc())
        if self._dispatcher.backlog > BACKLOG_HIGH and not self._reading_paused:
            self._pause_reading(ws)

    def _receive(self, bodies: list[str | bytes]) -> None:
        driver = self.driver
        if driver is not None:  # protocol hook: the protocol decides what each message is
            for body in bodies:
                driver.receive(body)
            return
        ts = self.last_ts_ns = time.time_ns()
        first = self.seq + 1
        self.seq += len(bodies)
        datas, errors = decode_batch(bodies, self._codec.decode, self._stats)
        frame = self._frame
        if frame is not None:
            frame.append_messages(ts, first, datas, errors, bodies)
        handlers, observers = self._handlers, self._observers
        if observers.on_frames:
            observers.call(observers.on_frames, ts, first, bodies, errors)
        if not (handlers or observers.on_received or observers.on_handled):
            return
        name, content_type, url, lockable, verbs = self.name, self.content_type, self.url, self._lockable, self._verbs
        events = [
            WsEvent(name, datas[i], Request(body, body.__class__ is not str, content_type, url), first + i, ts, lockable, errors[i], verbs)
            for i, body in enumerate(bodies)
        ]
        self.hand_over(events)

    def hand_over(self, events: list[WsEvent]) -> None:
        """Received events, in order, to the observers and then the handlers (loop thread; protocol messages too)."""
        observers = self._observers
        if observers.on_received:
            for event in events:
                observers.call(observers.on_received, event)
        if self._handlers:
            self._dispatcher.push(Kind.MESSAGES, events)  # the dispatcher notes each handled once the handlers ran
        else:
            for event in events:
                self._dispatcher.note_handled(event)

    def _pause_reading(self, ws: Any) -> None:
        """Too many messages wait for the handlers: stop reading (TCP backpressure) until they catch up."""
        transport = getattr(ws, "transport", None)
        if transport is None:
            return
        self._reading_paused = True
        transport.pause_reading()

        async def resume() -> None:
            try:
                await self._dispatcher.wait_drained()
            finally:
                self._reading_paused = False
                if not transport.is_closing():
                    transport.resume_reading()

        asyncio.get_running_loop().create_task(resume(), name=f"nbsocket-backpressure-{self.name}")

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
        """Reconnect, to ``url`` if given (already validated); if that fails, the socket keeps the URL it had."""
        await self.stop(1000, "reset", final=False)
        previous = self._url, self.url
        if url is not None:
            self._url = url
            self.url = redact_url(url)
        self._stats.resets += 1
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
        await self._dispatcher.stop()

    def abort_transport(self) -> None:
        """Drop the TCP connection at once, if there is one (the last resort of a shutdown)."""
        ws = self.ws
        if ws is not None and getattr(ws, "transport", None) is not None:
            ws.transport.abort()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen (its waiter may be gone), so asyncio never logs it as unretrieved."""
    if not future.cancelled():
        future.exception()
