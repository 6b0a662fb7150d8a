"""One named socket (Pode's external WebSocket): its state, handlers, outbox, counters and the verbs on it.

The loop side (connect, read, write, reconnect) is in :mod:`nbsocket.session`;
waiting for messages is in :mod:`nbsocket.waiting`; request/expect and
transcripts are in :mod:`nbsocket.exploratory`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import Any

from websockets.protocol import State

from .closing import check_close_code
from .codecs import get_codec
from .dispatch import Dispatcher, Handler
from .errors import EncodeError, OutboxFullError, SocketClosedError
from .events import Lockable, WsEvent
from .exploratory import ExploratoryMixin
from .frame import LiveFrame
from .loop import LoopThread, in_handler
from .observers import Observers
from .options import ConnectOptions
from .outbox import Outbox
from .recording import Recorder, open_recorder
from .records import ErrorRecord, Stats, ns_to_datetime, utc_now
from .redact import redact_url, scrub
from .session import CLOSED_FOR_GOOD, STATES, SessionMixin
from .waiting import MessageWaiter, WaitingMixin

log = logging.getLogger("nbsocket")

MAX_ERROR_RECORDS = 200
DEFAULT_TIMEOUT: Any = object()
"""Marks "use the socket's option" for a per-call timeout."""
WARN_EVERY = 10.0
"""Seconds between two connection warnings of one socket in the log (every error is still in ``conn.errors``)."""

__all__ = ["Connection", "ErrorRecord", "MessageWaiter", "Stats", "STATES"]


class Connection(SessionMixin, WaitingMixin, ExploratoryMixin):
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
        self._writer_idle = False
        self._observers = Observers(name)
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
        self._warned_handlers: set[str] = set()  # handlers whose first failure was logged as a warning
        self._closed_code: int | None = None
        self._closed_reason: str = ""
        self._init_exploratory()

    # --- public properties ------------------------------------------------------

    @property
    def state(self) -> str:
        """``connecting``, ``open``, ``closing``, ``reconnecting``, ``closed`` or ``failed``.

        ``closing`` shows as soon as the connection is going down (a keepalive
        timeout, an invalid frame such as bad UTF-8 (1007), a close from either
        side) while the close handshake may still take ``close_timeout``.
        """
        state = self._state
        if state == "open":
            ws = self._ws
            if ws is None or ws.protocol.state is not State.OPEN:
                return "closing"
        return state

    @property
    def is_open(self) -> bool:
        """True while the socket is open."""
        return self.state == "open"

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
            "state": self.state,
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
            "last_message_at": ns_to_datetime(self._last_ts_ns),
            "rows": len(self.frame) if self.frame is not None else None,
            "handlers": len(self._handlers),
        }

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"<Connection {self.name!r} {self.url} {self.state}: "
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
        """The frame payload for ``message``: ``str`` and ``bytes`` as they are, anything else by the content type.

        Text that cannot be UTF-8 (a lone surrogate) raises :class:`EncodeError` here,
        before it could reach the socket and kill the connection.
        """
        if isinstance(message, str):
            return _utf8_checked(message)
        if isinstance(message, bytes):
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
        if isinstance(payload, str):
            return _utf8_checked(payload)
        if not isinstance(payload, bytes):
            raise EncodeError(f"the {self.content_type} codec returned {type(payload).__name__}, not str or bytes")
        return payload

    def send(self, message: Any, *, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        """Queue ``message`` for sending (Pode's ``Send-PodeWebSocket``).

        dict/list and other objects are encoded by the socket's content type;
        ``str`` goes as a text frame, ``bytes`` as a binary frame. While the
        socket reconnects, messages wait in the outbox (``outbox_size``) and go
        out in order once it reopens. If the outbox is full while the socket is
        open, ``send`` waits for room up to ``timeout`` seconds (default: the
        ``send_timeout`` option; never on nbsocket's loop thread) so a loop of
        sends simply follows the network. Raises :class:`SocketClosedError` if
        the socket is closed for good and :class:`OutboxFullError` if the outbox
        stays full.
        """
        payload = self.encode(message)
        state = self._state
        if self._removed or state in CLOSED_FOR_GOOD:
            raise SocketClosedError(self._closed_message("send on"))
        try:
            self._outbox.put(payload, state)
        except OutboxFullError:
            wait = self.options.send_timeout if timeout is DEFAULT_TIMEOUT else timeout
            if state != "open" or self._loop_thread.in_loop_thread() or wait == 0:
                raise  # down: nothing drains until it reopens; on the loop: waiting would block the writer
            self._wake_writer()
            self._outbox.put(payload, state, wait)
        self._wake_writer()

    def _closed_message(self, verb: str) -> str:
        if self._removed:
            return f"cannot {verb} {self.name!r}: it was removed; connect it again with nbs.connect()"
        why = f" (code {self._closed_code}{' ' + repr(self._closed_reason) if self._closed_reason else ''})" if self._closed_code else ""
        return f"cannot {verb} {self.name!r}: the socket is {self._state}{why}; call nbs.reset({self.name!r}) to reconnect"

    def _wake_writer(self) -> None:
        wake = self._send_wake
        if not self._writer_idle or wake is None or not self._loop_thread.running:
            return  # a busy writer takes the next message without being woken
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
        check_close_code(code)
        self._drive(self._stop(code, reason), self._stop_timeout())

    def reset(self, url: str | None = None) -> None:
        """Reconnect, to ``url`` if given, keeping handlers, options, frame and counters (Pode's ``Reset-PodeWebSocket``).

        From a notebook it waits until the socket is open and raises the cause if
        the first attempt fails; from a handler it is scheduled.
        """
        if self._removed:
            raise SocketClosedError(self._closed_message("reset"))
        new_url = self._manager._validate_url_for(self, url) if url is not None else None
        limit = self._open_limit()
        self._drive(self._reset(new_url), None if limit is None else limit + self._stop_timeout())

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

    def _open_limit(self) -> float | None:
        """How long ``connect``/``reset`` wait for the open: ``None`` (no limit) when ``open_timeout`` is ``None``.

        With a limit, websockets raises the timeout itself; this is only a safety net.
        """
        if self.options.open_timeout is None:
            return None
        return self.options.open_timeout + 5.0

    # --- waiting for messages -------------------------------------------------------


    def add_observer(self, observer: Any) -> None:
        """Attach an internal observer (see :mod:`nbsocket.observers` for the hooks it may have)."""
        self._observers.add(observer)

    def remove_observer(self, observer: Any) -> None:
        """Detach an observer."""
        self._observers.remove(observer)

    # --- errors -----------------------------------------------------------------------

    def _record(self, where: str, error: str, message: str, tb: str | None = None, seq: int | None = None) -> ErrorRecord:
        record = ErrorRecord(utc_now(), where, error, scrub(message), scrub(tb) if tb else None, seq)
        self._errors.append(record)
        self.stats.errors += 1
        self._notify("error", {"where": where, "error": error, "message": record.message})
        return record

    def _handler_failed(self, handler_name: str, event: WsEvent, exc: BaseException, tb: str) -> None:
        first = handler_name not in self._warned_handlers
        self._warned_handlers.add(handler_name)
        self._record(f"handler {handler_name}", type(exc).__name__, str(exc), tb, event.seq)
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
        self._observers.call(self._observers.on_lifecycle, kind, info)

    # --- loop side: lifecycle -------------------------------------------------------


def _utf8_checked(text: str) -> str:
    """``text`` if it can go in a text frame (valid UTF-8); else :class:`EncodeError` naming the bad character."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = text[exc.start:exc.end]
            raise EncodeError(
                f"cannot send text containing {bad!r} at position {exc.start}: a lone surrogate is not valid UTF-8 "
                "(a text frame must be UTF-8; fix the string, or send bytes for a binary frame)"
            ) from None
    return text
