"""One named socket: its supervisor (connect, read, reconnect), its writer, and the sync verbs on it."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import datetime as _dt
import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from . import failures
from .backoff import Backoff
from .codecs import get_codec
from .dispatch import BACKLOG_HIGH, Dispatcher, Handler
from .errors import ConnectError, EncodeError, SocketClosedError, WaitTimeoutError
from .events import Lockable, Request, WsEvent
from .exploratory import ExploratoryMixin
from .flatten import message_fields
from .frame import LiveFrame
from .loop import LoopThread, in_handler
from .options import ConnectOptions, websockets_kwargs
from .outbox import Outbox, Outgoing
from .recording import Recorder, open_recorder
from .redact import redact_url, scrub

if TYPE_CHECKING:
    pass

log = logging.getLogger("nbsocket")
wire_log = logging.getLogger("nbsocket.websockets")

STATES = ("connecting", "open", "reconnecting", "closed", "failed")
CLOSED_FOR_GOOD = ("closed", "failed")
NORMAL_CLOSES = (1000, 1001)
MAX_ERROR_RECORDS = 200
WARN_EVERY = 10.0
"""Seconds between two connection warnings of one socket in the log (every error is still in ``conn.errors``)."""


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _ns_to_datetime(ns: int) -> _dt.datetime | None:
    return _dt.datetime.fromtimestamp(ns / 1e9, _dt.timezone.utc) if ns else None


@dataclasses.dataclass
class Stats:
    """Counters of one socket."""

    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    parse_errors: int = 0
    reconnects: int = 0
    resets: int = 0
    errors: int = 0
    opened_at: _dt.datetime | None = None


class ErrorRecord(NamedTuple):
    """One thing that went wrong on a socket: when, where (``handler f``, ``connect``, ``close`` ...), what, and the traceback."""

    time: _dt.datetime
    where: str
    error: str
    message: str
    traceback: str | None = None
    seq: int | None = None

    def __str__(self) -> str:
        return f"{self.time:%H:%M:%S} {self.where}: {self.error}: {self.message}"


class Connection(ExploratoryMixin):
    """A named connection to an external WebSocket server (Pode's ``Connect-PodeWebSocket``).

    Created by :func:`nbsocket.connect`. Its verbs (``send``, ``disconnect``,
    ``reset``, ``remove``, ``test``) are safe to call from any thread, handlers
    included: inside a handler they schedule instead of waiting.
    """

    def __init__(
        self,
        manager: Any,
        name: str,
        url: str,
        options: ConnectOptions,
        *,
        lockable: Lockable,
        loop_thread: LoopThread,
    ) -> None:
        self.name = name
        self._manager = manager
        self._url = url
        self.url = redact_url(url)
        self.options = options
        self.lockable = lockable
        self._loop_thread = loop_thread
        self._codec = get_codec(options.content_type)
        self.content_type = options.content_type
        self._handlers: list[Handler] = []
        self.on_open: Callable[..., Any] | None = None
        self.on_close: Callable[..., Any] | None = None
        self.on_error: Callable[..., Any] | None = None
        self.stats = Stats()
        self._errors: collections.deque[ErrorRecord] = collections.deque(maxlen=MAX_ERROR_RECORDS)
        self._state = "connecting"
        self._seq = 0
        self._handled_seq = 0
        self._last_ts_ns = 0
        self._outbox = Outbox(name, options.outbox_size)
        self._observers: list[Any] = []
        self._observers_lock = threading.Lock()
        self._wants_handled = False  # does any observer have on_handled? (else no event is built for observers)
        self.frame: LiveFrame | None = (
            LiveFrame(name, max_rows=options.max_rows, max_columns=options.max_columns) if options.frame else None
        )
        if self.frame is not None:
            self.frame.on_column_cap = lambda message: self._record("frame", "ColumnCap", message)
        self.recorder: Recorder | None = (
            open_recorder(options.record, self.frame, on_error=lambda message: self._record("record", "RecordingError", message))
            if options.record is not None
            else None
        )
        self._dispatcher = Dispatcher(self)
        self._ws: Any = None
        self._supervisor: asyncio.Task[None] | None = None
        self._send_wake: asyncio.Event | None = None
        self._want_open = True
        self._removed = False
        self._last_warning = float("-inf")
        self._closed_code: int | None = None
        self._closed_reason: str = ""
        self._init_exploratory()

    # --- public properties ------------------------------------------------------

    @property
    def state(self) -> str:
        """``connecting``, ``open``, ``reconnecting``, ``closed`` or ``failed``."""
        return self._state

    @property
    def is_open(self) -> bool:
        """True while the socket is open."""
        return self._state == "open"

    def test(self) -> bool:
        """Is the socket open right now? (Pode's ``Test-PodeWebSocket``)"""
        ws = self._ws
        return self._state == "open" and ws is not None and ws.protocol.state is State.OPEN

    @property
    def errors(self) -> list[ErrorRecord]:
        """The most recent errors on this socket (handlers, connects, closes), oldest first."""
        return list(self._errors)

    @property
    def last_error(self) -> ErrorRecord | None:
        """The most recent error, or ``None``."""
        return self._errors[-1] if self._errors else None

    @property
    def last_latency(self) -> float | None:
        """Round-trip time of the last keepalive ping in seconds (``None`` before the first)."""
        ws = self._ws
        latency = getattr(ws, "latency", 0.0) if ws is not None else 0.0
        return latency or None

    @property
    def handlers(self) -> list[Callable[..., Any]]:
        """The registered message handlers, in call order."""
        return [h.fn for h in self._handlers]

    @property
    def queued(self) -> int:
        """Messages waiting in the outbox."""
        return len(self._outbox)

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose, if any."""
        ws = self._ws
        return getattr(ws, "subprotocol", None) if ws is not None else None

    @property
    def close_code(self) -> int | None:
        """Close code of the last closed connection."""
        return self._closed_code

    @property
    def close_reason(self) -> str:
        """Close reason of the last closed connection."""
        return self._closed_reason

    def status(self) -> dict[str, Any]:
        """This socket's row of :func:`nbsocket.connections` (no secrets)."""
        s = self.stats
        last = self.last_error
        return {
            "name": self.name,
            "url": self.url,
            "state": self._state,
            "content_type": self.content_type,
            "messages_in": s.messages_in,
            "messages_out": s.messages_out,
            "bytes_in": s.bytes_in,
            "bytes_out": s.bytes_out,
            "queued": len(self._outbox),
            "reconnects": s.reconnects,
            "errors": s.errors,
            "parse_errors": s.parse_errors,
            "last_error": str(last) if last else None,
            "latency": self.last_latency,
            "opened_at": s.opened_at,
            "last_message_at": _ns_to_datetime(self._last_ts_ns),
            "rows": len(self.frame) if self.frame is not None else None,
            "handlers": len(self._handlers),
        }

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"<Connection {self.name!r} {self.url} {self._state}: "
            f"{s.messages_in} in, {s.messages_out} out, {s.errors} errors>"
        )

    # --- handlers ---------------------------------------------------------------

    def on_message(self, fn: Callable[..., Any] | None = None, *, args: tuple[Any, ...] = (), key: str | None = None) -> Any:
        """Add a handler called as ``fn(event, *args)`` for every message; usable as a decorator.

        A handler registered with the same ``key`` as an existing one replaces it
        (re-running a cell does not add a second copy).
        """
        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            self._add_handler(Handler(func, args, key))
            return func

        return register if fn is None else register(fn)

    def _add_handler(self, handler: Handler) -> None:
        handlers = list(self._handlers)
        if handler.key is not None:
            for i, existing in enumerate(handlers):
                if existing.key == handler.key:
                    handlers[i] = handler
                    self._handlers = handlers
                    return
        handlers.append(handler)
        self._handlers = handlers

    def remove_handler(self, fn_or_key: Any) -> bool:
        """Remove a handler by function or key; True if one was removed."""
        kept = [h for h in self._handlers if h.fn is not fn_or_key and (h.key is None or h.key != fn_or_key)]
        removed = len(kept) != len(self._handlers)
        self._handlers = kept
        return removed

    # --- sending ----------------------------------------------------------------

    def encode(self, message: Any) -> str | bytes:
        """The frame payload for ``message``: ``str`` and ``bytes`` as they are, anything else by the content type."""
        if isinstance(message, (str, bytes)):
            return message
        if isinstance(message, (bytearray, memoryview)):
            return bytes(message)
        if message is None:
            raise EncodeError(f"cannot send None on {self.name!r}; pass a str, bytes, or data for {self.content_type}")
        try:
            payload = self._codec.encode(message)
        except EncodeError:
            raise
        except Exception as exc:
            raise EncodeError(f"cannot encode {type(message).__name__} as {self.content_type}: {exc}") from None
        if not isinstance(payload, (str, bytes)):
            raise EncodeError(f"the {self.content_type} codec returned {type(payload).__name__}, not str or bytes")
        return payload

    def send(self, message: Any) -> None:
        """Queue ``message`` for sending (Pode's ``Send-PodeWebSocket``); never blocks on the network.

        dict/list and other objects are encoded by the socket's content type;
        ``str`` goes as a text frame, ``bytes`` as a binary frame. While the
        socket reconnects, messages wait in the outbox and go out in order
        once it reopens. Raises :class:`SocketClosedError` if the socket is
        closed for good and :class:`OutboxFullError` if too many are waiting.
        """
        payload = self.encode(message)
        state = self._state
        if self._removed or state in CLOSED_FOR_GOOD:
            raise SocketClosedError(self._closed_message("send on"))
        self._outbox.put(payload, state)
        self._wake_writer()

    def _closed_message(self, verb: str) -> str:
        if self._removed:
            return f"cannot {verb} {self.name!r}: it was removed; connect it again with nbs.connect()"
        why = f" (code {self._closed_code}{' ' + repr(self._closed_reason) if self._closed_reason else ''})" if self._closed_code else ""
        return f"cannot {verb} {self.name!r}: the socket is {self._state}{why}; call nbs.reset({self.name!r}) to reconnect"

    def _wake_writer(self) -> None:
        wake = self._send_wake
        if wake is None or not self._loop_thread.running:
            return
        if self._loop_thread.in_loop_thread():
            wake.set()
        else:
            self._loop_thread.call_soon(wake.set)

    def clear_outbox(self) -> int:
        """Drop the messages waiting to be sent; returns how many were dropped."""
        dropped = self._outbox.clear()
        if dropped:
            log.warning("socket %r: dropped %d queued message(s) on request", self.name, dropped)
        return dropped

    # --- verbs that drive the loop ------------------------------------------------

    def _drive(self, coro: Any, timeout: float | None) -> Any:
        """Run a coroutine on the loop: wait from a notebook thread, schedule from a handler or the loop."""
        if in_handler() or self._loop_thread.in_loop_thread():
            future = self._loop_thread.spawn(coro)
            future.add_done_callback(self._log_scheduled_failure)
            return None
        return self._loop_thread.run(coro, timeout)

    def _log_scheduled_failure(self, future: Any) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self._record("scheduled", type(exc).__name__, str(exc))

    def disconnect(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket and keep its registration (Pode's ``Disconnect-PodeWebSocket``)."""
        _check_close_code(code)
        self._drive(self._stop(code, reason), self._stop_timeout())

    def reset(self, url: str | None = None) -> None:
        """Reconnect, to ``url`` if given, keeping handlers, options, frame and counters (Pode's ``Reset-PodeWebSocket``).

        From a notebook it waits until the socket is open and raises the cause if
        the first attempt fails; from a handler it is scheduled.
        """
        if self._removed:
            raise SocketClosedError(self._closed_message("reset"))
        new_url = self._manager._validate_url_for(self, url) if url is not None else None
        self._drive(self._reset(new_url), self._open_wait_timeout() + self._stop_timeout())

    def connect(self) -> None:
        """Open a disconnected socket again (same as ``reset()`` with the same URL)."""
        self.reset()

    def remove(self) -> None:
        """Disconnect and forget this socket (Pode's ``Remove-PodeWebSocket``)."""
        self._manager.remove(self.name)

    def _stop_timeout(self) -> float:
        return (self.options.close_timeout or 5.0) + 5.0

    def _open_wait_timeout(self) -> float:
        return (self.options.open_timeout or 60.0) + 5.0

    # --- waiting for messages -------------------------------------------------------

    def wait(self, count: int = 1, timeout: float | None = 30.0, match: Callable[[WsEvent], bool] | None = None) -> list[WsEvent]:
        """Block until ``count`` more messages (matching ``match``) arrive; returns them.

        Raises :class:`WaitTimeoutError` after ``timeout`` seconds; Ctrl-C stops waiting.
        """
        waiter = self.waiter(count, match)
        try:
            return waiter.future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise WaitTimeoutError(waiter.timeout_message(timeout)) from None
        finally:
            waiter.cancel()

    async def wait_async(self, count: int = 1, timeout: float | None = 30.0, match: Callable[[WsEvent], bool] | None = None) -> list[WsEvent]:
        """Like :meth:`wait`, for ``await`` in a cell (does not block the kernel)."""
        waiter = self.waiter(count, match)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(waiter.future), timeout)
        except asyncio.TimeoutError:
            raise WaitTimeoutError(waiter.timeout_message(timeout)) from None
        finally:
            waiter.cancel()

    def wait_handled(self, timeout: float | None = 30.0) -> int:
        """Block until the handlers have run for every message received so far; returns that message's seq."""
        target = self._seq
        if self._handled_seq >= target or not self._handlers:
            return target
        waiter = MessageWaiter(self, 1, lambda event: event.seq >= target)
        waiter.after_seq = self._handled_seq
        self.add_observer(waiter)
        try:
            if self._handled_seq < target:
                waiter.future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise WaitTimeoutError(
                f"the handlers of {self.name!r} are still busy after {timeout}s "
                f"(handled up to message {self._handled_seq} of {target})"
            ) from None
        finally:
            waiter.cancel()
        return target

    def waiter(self, count: int = 1, match: Callable[[WsEvent], bool] | None = None) -> MessageWaiter:
        """Start collecting the next ``count`` messages; ``waiter.future`` resolves with them."""
        if count < 1:
            raise ValueError("count must be at least 1")
        waiter = MessageWaiter(self, count, match)
        self.add_observer(waiter)
        return waiter

    def add_observer(self, observer: Any) -> None:
        """Attach an internal observer (``on_received(event)``, ``on_sent(item, ts_ns)``, ``on_lifecycle(kind, info)``).

        An observer with ``on_frame(ts_ns, seq, body, is_binary, error)`` gets that
        instead of ``on_received``, without an event being built for it.
        """
        with self._observers_lock:  # copy-on-write: readers iterate without the lock
            if getattr(observer, "on_handled", None) is not None:
                self._wants_handled = True  # before the observer is visible, so it misses no message
            self._observers = [*self._observers, observer]

    def remove_observer(self, observer: Any) -> None:
        """Detach an observer."""
        with self._observers_lock:
            self._observers = [o for o in self._observers if o is not observer]
            self._wants_handled = any(getattr(o, "on_handled", None) is not None for o in self._observers)

    # --- errors -----------------------------------------------------------------------

    def _record(self, where: str, error: str, message: str, tb: str | None = None, seq: int | None = None, exc: BaseException | None = None) -> ErrorRecord:
        record = ErrorRecord(utc_now(), where, error, scrub(message), scrub(tb) if tb else None, seq)
        self._errors.append(record)
        self.stats.errors += 1
        self._notify("error", {"where": where, "error": error, "message": record.message})
        return record

    def _handler_failed(self, handler_name: str, event: WsEvent, exc: BaseException, tb: str) -> None:
        first = not any(r.where == f"handler {handler_name}" for r in self._errors)
        self._record(f"handler {handler_name}", type(exc).__name__, str(exc), tb, event.seq, exc)
        (log.warning if first else log.debug)(
            "socket %r: handler %s raised %s: %s on message %d (see conn.errors; the socket goes on)",
            self.name, handler_name, type(exc).__name__, scrub(exc), event.seq,
        )
        if self.on_error is not None:
            self._loop_thread.call_soon(self._dispatcher.push, "error", exc)

    def _callback_failed(self, where: str, exc: BaseException, tb: str) -> None:
        self._record(where, type(exc).__name__, str(exc), tb)
        log.warning("socket %r: %s raised %s: %s", self.name, where, type(exc).__name__, scrub(exc))

    def _connection_error(self, where: str, exc: BaseException) -> None:
        self._record(where, type(exc).__name__, str(exc))
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY:
            self._last_warning = now
            log.warning("socket %r: %s (state %s; see conn.errors)", self.name, scrub(exc), self._state)
        else:
            log.debug("socket %r: %s", self.name, scrub(exc))
        if self.on_error is not None:
            self._dispatcher.push("error", exc)

    def _notify(self, kind: str, info: dict[str, Any]) -> None:
        for observer in self._observers:
            hook = getattr(observer, "on_lifecycle", None)
            if hook is not None:
                try:
                    hook(kind, info)
                except Exception:
                    log.exception("socket %r: an observer failed", self.name)

    # --- loop side: lifecycle -------------------------------------------------------

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
                opened_once = True
                started = time.monotonic()
                if not first.done():
                    first.set_result(None)
                code, reason = await self._session(ws)
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

    async def _open_socket(self) -> Any:
        kwargs = websockets_kwargs(self._url, self.options)
        return await ws_connect(self._url, logger=wire_log, **kwargs)

    async def _session(self, ws: Any) -> tuple[int | None, str]:
        """Read one open connection until it closes; returns its close code and reason."""
        self._ws = ws
        self.stats.opened_at = utc_now()
        self._set_state("open")
        self._notify("open", {"url": self.url, "subprotocol": getattr(ws, "subprotocol", None)})
        ready = asyncio.Event()
        if self.on_open is not None:
            self._dispatcher.push("open", ready)
        else:
            ready.set()
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
                    self._record("receive", type(exc).__name__, str(exc), traceback.format_exc())
                if dispatcher.backlog > BACKLOG_HIGH:
                    await dispatcher.wait_drained()
        finally:
            writer.cancel()
            try:
                await writer
            except (asyncio.CancelledError, Exception):
                pass
            if ws.protocol.state is not State.CLOSED:
                await _abort(ws)
            self._ws = None
        code, reason, by_us = _close_info(ws)
        self._closed_code, self._closed_reason = code, reason
        if code not in NORMAL_CLOSES and self._want_open:
            cause = getattr(ws, "connection_exc", None)
            detail = f" ({type(cause).__name__}: {cause})" if cause else ""
            who = "closed by nbsocket" if by_us else "connection lost"
            self._connection_error("close", ConnectionError(f"{who}: code {code} {reason!r}{detail}"))
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
        if handlers or observers:
            event = None
            for observer in observers:
                try:
                    on_frame = getattr(observer, "on_frame", None)
                    if on_frame is not None:  # a recorder that needs no event object (cheaper)
                        on_frame(ts, seq, body, is_binary, error)
                        continue
                    hook = getattr(observer, "on_received", None)
                    if hook is not None:
                        if event is None:
                            event = WsEvent(self.name, data, Request(body, is_binary, self.content_type, self.url), seq, ts, self.lockable, error, self)
                        hook(event)
                except Exception:
                    log.exception("socket %r: an observer failed", self.name)
            if event is None and (handlers or self._wants_handled):
                event = WsEvent(self.name, data, Request(body, is_binary, self.content_type, self.url), seq, ts, self.lockable, error, self)
            if handlers:
                self._dispatcher.push("message", event)  # the dispatcher calls _handled once the handlers ran
            elif event is not None and self._wants_handled:
                self._handled(event)

    def _handled(self, event: WsEvent) -> None:
        """Tell observers that ``event`` has been through every handler (any thread)."""
        self._handled_seq = event.seq
        for observer in self._observers:
            hook = getattr(observer, "on_handled", None)
            if hook is not None:
                try:
                    hook(event)
                except Exception:
                    log.exception("socket %r: an observer failed", self.name)

    async def _write(self, ws: Any, ready: asyncio.Event) -> None:
        await ready.wait()
        wake = self._send_wake
        assert wake is not None
        outbox = self._outbox
        stats = self.stats
        while True:
            item = outbox.take()
            if item is None:
                wake.clear()
                item = outbox.take()
                if item is None:
                    await wake.wait()
                    continue
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
        if observers:
            ts = time.time_ns()
            for observer in observers:
                hook = getattr(observer, "on_sent", None)
                if hook is not None:
                    try:
                        hook(item, ts)
                    except Exception:
                        log.exception("socket %r: an observer failed", self.name)

    async def _stop(self, code: int = 1000, reason: str = "", *, final: bool = True) -> None:
        """Close the current connection (if any) and end the supervisor."""
        self._want_open = False
        ws, supervisor = self._ws, self._supervisor
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(code, reason), (self.options.close_timeout or 5.0) + 1.0)
            except (asyncio.TimeoutError, Exception):
                await _abort(ws)
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
            await asyncio.get_running_loop().run_in_executor(None, self.recorder.close)

    async def _reset(self, url: str | None) -> None:
        await self._stop(1000, "reset", final=False)
        if url is not None:
            self._url = url
            self.url = redact_url(url)
        self.stats.resets += 1
        self._notify("reset", {"url": self.url})
        await self._open_first()

    async def _shutdown(self, code: int = 1001, reason: str = "going away") -> None:
        await self._stop(code, reason)
        await self._dispatcher.stop()


class MessageWaiter:
    """Collects the next messages of a socket; ``future`` resolves with the list once ``count`` arrived and were handled."""

    def __init__(self, conn: Connection, count: int, match: Callable[[WsEvent], bool] | None) -> None:
        self.conn = conn
        self.count = count
        self.match = match
        self.after_seq = conn._seq
        self.events: list[WsEvent] = []
        self.future: concurrent.futures.Future[list[WsEvent]] = concurrent.futures.Future()

    def on_handled(self, event: WsEvent) -> None:
        """Count ``event`` once its handlers ran, so a finished wait means the handlers saw it too."""
        if self.future.done() or event.seq <= self.after_seq:
            return
        if self.match is not None:
            try:
                if not self.match(event):
                    return
            except Exception as exc:
                self.future.set_exception(exc)
                return
        self.events.append(event)
        if len(self.events) >= self.count:
            self.conn.remove_observer(self)
            self.future.set_result(list(self.events))

    def cancel(self) -> None:
        """Stop collecting."""
        self.conn.remove_observer(self)
        self.future.cancel()

    def timeout_message(self, timeout: float | None) -> str:
        conn = self.conn
        return (
            f"only {len(self.events)} of {self.count} message(s) arrived on {conn.name!r} within {timeout}s "
            f"(socket {conn.state}, {conn.stats.messages_in} received in all)"
        )


async def _abort(ws: Any) -> None:
    transport = getattr(ws, "transport", None)
    if transport is not None:
        transport.abort()
    waiter = getattr(ws, "connection_lost_waiter", None)
    if waiter is not None:
        try:
            await asyncio.wait_for(asyncio.shield(waiter), 1.0)
        except (asyncio.TimeoutError, Exception):
            pass


def _close_info(ws: Any) -> tuple[int, str, bool]:
    """Close code and reason of a finished connection: the peer's, else ours (e.g. 1009), else 1006."""
    protocol = ws.protocol
    received, sent = getattr(protocol, "close_rcvd", None), getattr(protocol, "close_sent", None)
    if received is not None:
        return received.code, received.reason, False
    if sent is not None:
        return sent.code, sent.reason, True
    return 1006, "", False


def _check_close_code(code: int) -> None:
    if not isinstance(code, int) or not (code in (1000, 1001) or 1002 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
        raise ValueError(f"{code!r} is not a close code a client may send (use 1000, 1001, or 3000-4999)")
