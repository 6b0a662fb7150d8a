"""One named socket (Pode's external WebSocket): a facade that owns its parts and exposes the verbs.

Like an httpx client, a :class:`Connection` holds its parts and delegates to
them: the :class:`~nbsocket.runtime.session.Session` (the loop side: the
``websockets`` connection, state, URL, reconnects), the outbox, the
handlers and their dispatcher, the error log, waits, requests, latency, the
transcript, the live frame and the recorder. Every public method is a thin
delegate that carries the user-facing docstring.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime
from typing import Any, Protocol, TypeVar, overload

import pandas as pd

from ..core.closes import check_close_code
from ..core.codecs import encode_message, get_codec
from ..core.events import WsEvent
from ..core.frame import TOPIC, LiveFrame
from ..core.match import Match
from ..core.options import ConnectOptions
from ..core.saved_tests import Exploration, ProtocolStep, SavedTest, plan, render
from ..core.state import STATES, ErrorRecord, Stats, ns_to_datetime
from ..core.transcript_entries import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, Entry
from ..errors import InvalidOptionError, SocketClosedError
from .dispatch.dispatcher import Dispatcher
from .dispatch.handlers import CallbackSlot, Handler, HandlerList
from .dispatch.lockable import Lockable
from .loop import LoopThread
from .observe.errorlog import ErrorLog
from .observe.latency import Latency
from .observe.observers import LifecycleInfo, Observers
from .observe.recording import Recording, open_recorder
from .observe.requests import Reply, Requests, SchemaSource, Since
from .observe.transcript import Meta, Transcript
from .observe.waits import MessageWaiter, Waits
from .outbound.outbox import Outbox
from .outbound.pacing import Burst, BurstReport, run_sync
from .outbound.sender import DEFAULT_TIMEOUT, Sender, SendTimeout
from .parts import SocketParts
from .receivers import PlainReceiver, Receiver
from .session import Session
from .transport import Transport

HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])

log = logging.getLogger("nbsocket")


__all__ = ["STATES", "Connection", "ErrorRecord", "HandlerT", "MessageWaiter", "Registry", "Stats"]


class Registry(Protocol):
    """What a connection asks of the manager that holds it (the manager imports this module, not the reverse)."""

    def remove(self, name: str) -> None: ...

    def validate_url_for(self, conn: Connection, url: str) -> str: ...


class Connection:
    """A named connection to an external WebSocket server (Pode's ``Connect-PodeWebSocket``).

    Created by :func:`nbsocket.connect`. Its verbs (``send``, ``disconnect``,
    ``reset``, ``remove``, ``test``) are safe to call from any thread, handlers
    included: inside a handler they schedule instead of waiting. The
    ``*_async`` verbs do the same without blocking, from any event loop.
    """

    def __init__(
        self,
        manager: Registry,
        name: str,
        url: str,
        options: ConnectOptions,
        *,
        lockable: Lockable,
        loop_thread: LoopThread,
        transport: Transport,
    ) -> None:
        self.name = name
        self.options = options
        self.lockable = lockable
        self.content_type = options.content_type
        self.stats = Stats()
        self._manager = manager
        self._loop_thread = loop_thread
        self._codec = get_codec(options.content_type)
        self._removed = False
        self._handlers = HandlerList()
        self._outbox = Outbox(name, options.outbox_size)
        self._observers = Observers(name)
        self._errors = ErrorLog(name, self.stats, self._notify, self._current_state)
        self.frame: LiveFrame | None = (
            LiveFrame(
                name,
                max_rows=options.max_rows,
                max_columns=options.max_columns,
                lock=threading.RLock(),
                columns=(TOPIC,) if options.protocol is not None else (),  # so df[df.topic == x] works before any message
            )
            if options.frame
            else None
        )
        if self.frame is not None:
            self.frame.on_column_cap = self._column_cap
        self.recorder: Recording | None = (
            open_recorder(
                options.record,
                self.frame,
                on_error=lambda message: self._errors.record("record", "RecordingError", message),
                socket=name,
                content_type=options.content_type,
                observe=self._observers.add,
            )
            if options.record is not None
            else None
        )
        self._dispatcher = Dispatcher(name, self, self._handlers, self._outbox, self._observers, self._errors, loop_thread)
        self._parts = SocketParts(
            name=name,
            options=options,
            loop_thread=loop_thread,
            stats=self.stats,
            codec=self._codec,
            lockable=lockable,
            handlers=self._handlers,
            outbox=self._outbox,
            observers=self._observers,
            errors=self._errors,
            dispatcher=self._dispatcher,
            frame=self.frame,
            recorder=self.recorder,
        )
        self._session = Session(url, self._parts, transport)
        self._session.use(self._receiver())
        self._sender = Sender(name, self._outbox, self._session, loop_thread, options.send_timeout, self._is_removed)
        self._transcript = Transcript(
            self.stats, self._describe, self.add_observer, self.remove_observer, self._loop_thread.call_here_or_soon
        )
        self._latency = Latency(self._session, loop_thread)
        self._session.on_pong = self._latency.sample
        self._waits = Waits(self._session, self._dispatcher, self._handlers, self._observers, loop_thread, self)
        self._requests = Requests(
            self,
            self._codec,
            lockable,
            self._transcript,
            self._latency,
            loop_thread,
            self._open_seq,
            self._last_put_ns,
        )

    # (bound methods the parts call back: one object each, where a lambda is two; a socket keeps few objects, since the
    # collector's full passes cost every one of them, see docs/architecture.md)
    def _current_state(self) -> str:
        return self.state

    def _column_cap(self, message: str) -> None:
        self._errors.record("frame", "ColumnCap", message)

    def _is_removed(self) -> bool:
        return self._removed

    def _open_seq(self) -> int:
        return self._session.open_seq

    def _last_put_ns(self) -> int:
        return self._outbox.last_put_ns

    def _receiver(self) -> Receiver:
        """What this socket's messages go to: the plain receiver (a protocol socket gives its protocol's driver)."""
        return PlainReceiver(self._parts, self._session, self)

    on_open = CallbackSlot("on_open(conn), after every open; what it sends goes out first")
    on_close = CallbackSlot("on_close(conn, code, reason), after every close")
    on_error = CallbackSlot("on_error(conn, exc), for connection errors and handler failures")

    # --- state ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The socket's URL with secrets redacted."""
        return self._session.url

    @property
    def state(self) -> str:
        """``connecting``, ``open``, ``closing``, ``reconnecting``, ``closed`` or ``failed``.

        ``closing`` shows as soon as the connection is going down (a keepalive
        timeout, an invalid message such as text that is not UTF-8 (1007), a close from either
        side) while the close handshake may still take ``close_timeout``.
        """
        return self._session.shown_state

    @property
    def is_open(self) -> bool:
        """True while the socket is open."""
        return self.state == "open"

    def test(self) -> bool:
        """Is the socket open right now? (Pode's ``Test-PodeWebSocket``)"""
        return self._session.test()

    @property
    def removed(self) -> bool:
        """True once the socket was removed (``nbs.remove``, ``shutdown``): it can no longer be used."""
        return self._removed

    @property
    def errors(self) -> list[ErrorRecord]:
        """The most recent errors on this socket (handlers, connects, closes), oldest first."""
        return self._errors.records()

    @property
    def last_error(self) -> ErrorRecord | None:
        """The most recent error, or ``None``."""
        return self._errors.last

    @property
    def last_latency(self) -> float | None:
        """Round-trip time of the last keepalive ping in seconds (``None`` before the first)."""
        return self._session.last_latency

    @property
    def handlers(self) -> list[Callable[..., Any]]:
        """The registered message handlers, in call order."""
        return self._handlers.functions()

    @property
    def queued(self) -> int:
        """Messages waiting in the outbox."""
        return len(self._outbox)

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose, if any."""
        return self._session.subprotocol

    @property
    def close_code(self) -> int | None:
        """Close code of the last closed connection."""
        return self._session.closed_code

    @property
    def close_reason(self) -> str:
        """Close reason of the last closed connection."""
        return self._session.closed_reason

    @property
    def received(self) -> int:
        """Messages received so far (the ``seq`` of the latest)."""
        return self._session.seq

    @property
    def handled(self) -> int:
        """The ``seq`` of the latest message every handler has run for."""
        return self._dispatcher.handled_seq

    @property
    def last_message_at(self) -> datetime | None:
        """When the latest message was received (UTC), or ``None`` before the first."""
        return ns_to_datetime(self._session.last_ts_ns)

    def status(self) -> dict[str, Any]:
        """This socket's row of :func:`nbsocket.connections`: name, redacted URL, state, counters, last error,
        latency, times (no secrets)."""
        stats = self.stats
        last = self.last_error
        return {
            "name": self.name,
            "url": self.url,
            "state": self.state,
            "content_type": self.content_type,
            "messages_in": stats.messages_in,
            "messages_out": stats.messages_out,
            "bytes_in": stats.bytes_in,
            "bytes_out": stats.bytes_out,
            "queued": self.queued,
            "reconnects": stats.reconnects,
            "errors": stats.errors,
            "parse_errors": stats.parse_errors,
            "last_error": str(last) if last else None,
            "latency_s": self.last_latency,  # the keepalive round trip in seconds, named like every other round trip
            "latency": self.last_latency,  # the same value, under the name the API contract fixes
            "opened_at": stats.opened_at,
            "last_message_at": self.last_message_at,
            "rows": len(self.frame) if self.frame is not None else None,
            "handlers": len(self.handlers),
            **self._recording_status(),
        }

    def _recording_status(self) -> dict[str, Any]:
        """The recording's columns of the status row: where it goes, what waits for it, what it dropped, its lag."""
        recording = self.recorder
        if recording is None:
            return {"record": None, "record_pending": None, "record_dropped": None, "record_lag_s": None}
        sink = recording.sink_stats()
        return {
            "record": sink["target"],
            "record_pending": sink["pending"],
            "record_dropped": sink["dropped"],
            "record_lag_s": sink["lag_s"],
        }

    def __repr__(self) -> str:
        s = self.stats
        return f"<Connection {self.name!r} {self.url} {self.state}: {s.messages_in} in, {s.messages_out} out, {s.errors} errors>"

    # --- handlers ---------------------------------------------------------------------

    @overload
    def on_message(
        self, fn: None = None, *, args: tuple[Any, ...] = (), key: str | None = None
    ) -> Callable[[HandlerT], HandlerT]: ...
    @overload
    def on_message(self, fn: HandlerT, *, args: tuple[Any, ...] = (), key: str | None = None) -> HandlerT: ...

    def on_message(
        self, fn: HandlerT | None = None, *, args: tuple[Any, ...] = (), key: str | None = None
    ) -> HandlerT | Callable[[HandlerT], HandlerT]:
        """Add a handler called as ``fn(event, *args)`` for every message; usable as a decorator.

        A handler registered with the same ``key`` as an existing one replaces it
        (re-running a cell does not add a second copy).
        """

        def register(func: HandlerT) -> HandlerT:
            self._handlers.add(Handler(func, args, key))
            return func

        return register if fn is None else register(fn)

    def remove_handler(self, fn_or_key: Callable[..., Any] | str) -> bool:
        """Remove a handler by function or key; True if one was removed."""
        return self._handlers.remove(fn_or_key)

    def add_observer(self, observer: object) -> None:
        """Attach an internal observer (see :mod:`nbsocket.runtime.observe.observers` for the hooks it may have)."""
        self._observers.add(observer)

    def remove_observer(self, observer: object) -> None:
        """Detach an observer."""
        self._observers.remove(observer)

    # --- sending ------------------------------------------------------------------------

    def encode(self, message: Any) -> str | bytes:
        """The payload ``message`` is sent as: ``str`` and ``bytes`` as they are, anything else by the content type.

        Text that cannot be UTF-8 (a lone surrogate) raises :class:`EncodeError` here,
        before it could reach the socket and kill the connection.
        """
        return encode_message(self._codec, message, self.content_type, self.name)

    def send(self, message: Any, *, timeout: SendTimeout = DEFAULT_TIMEOUT) -> None:
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
        self._sender.send(self.encode(message), timeout)

    def closed_message(self, verb: str) -> str:
        """Why ``verb`` cannot be done on this socket now that it is closed for good (for errors)."""
        return self._sender.closed_message(verb)

    def clear_outbox(self) -> int:
        """Drop the messages waiting to be sent; returns how many were dropped."""
        return self._sender.clear()

    # --- verbs that drive the loop --------------------------------------------------------

    def disconnect(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket and keep its registration (Pode's ``Disconnect-PodeWebSocket``)."""
        check_close_code(code)
        self._run_or_schedule(self._session.stop(code, reason), self.stop_timeout)

    def reset(self, url: str | None = None) -> None:
        """Reconnect, to ``url`` if given, keeping handlers, options, frame and counters (Pode's ``Reset-PodeWebSocket``).

        From a notebook it waits until the socket is open and raises the cause if
        the first attempt fails; from a handler it is scheduled.
        """
        new_url = self._check_reset(url)
        self._run_or_schedule(self._session.reset(new_url), self._open_and_stop_timeout())

    def connect(self) -> None:
        """Open a disconnected socket again (same as ``reset()`` with the same URL)."""
        self.reset()

    def remove(self) -> None:
        """Disconnect and forget this socket (Pode's ``Remove-PodeWebSocket``)."""
        self._manager.remove(self.name)

    async def _open_first(self) -> None:
        """The first open, for the manager's ``connect``, which bounds the wait itself (on its own thread): no second
        timer and task on the loop for each of a loop of connects. Everyone else has :meth:`open_async`."""
        await self._session.open_first()

    async def open_async(self) -> None:
        """Open the socket for the first time, for ``await`` from any event loop (``nbs.connect`` does this)."""
        await self._loop_thread.run_async(self._session.open_first(), self.open_timeout_total)

    async def disconnect_async(self, code: int = 1000, reason: str = "") -> None:
        """Like :meth:`disconnect`, for ``await`` from any event loop (widgets, cells); never blocks."""
        check_close_code(code)
        await self._loop_thread.run_async(self._session.stop(code, reason), self.stop_timeout)

    async def reset_async(self, url: str | None = None) -> None:
        """Like :meth:`reset`, for ``await`` from any event loop; raises the cause if the socket cannot open."""
        new_url = self._check_reset(url)
        await self._loop_thread.run_async(self._session.reset(new_url), self._open_and_stop_timeout())

    async def connect_async(self) -> None:
        """Like :meth:`connect`, for ``await`` from any event loop."""
        await self.reset_async()

    def _check_reset(self, url: str | None) -> str | None:
        if self._removed:
            raise SocketClosedError(self.closed_message("reset"))
        return self._manager.validate_url_for(self, url) if url is not None else None

    @property
    def stop_timeout(self) -> float:
        """The longest a close can take (``close_timeout`` plus a margin), in seconds."""
        return (self.options.close_timeout or 5.0) + 5.0

    @property
    def open_timeout_total(self) -> float | None:
        """How long ``connect``/``reset`` wait for the open: ``open_timeout`` plus a margin, or ``None`` (no limit)
        when ``open_timeout`` is ``None`` (websockets raises the timeout itself; this is only a safety net)."""
        if self.options.open_timeout is None:
            return None
        return self.options.open_timeout + 5.0

    def _run_or_schedule(self, coro: Coroutine[Any, Any, object], timeout: float | None) -> None:
        """Run ``coro`` on the loop: wait from a notebook thread; from a handler or the loop, schedule and log a failure."""
        self._loop_thread.run_or_schedule(coro, timeout, self._record_scheduled_failure)

    def _open_and_stop_timeout(self) -> float | None:
        limit = self.open_timeout_total
        return None if limit is None else limit + self.stop_timeout

    def _record_scheduled_failure(self, exc: BaseException) -> None:
        self._errors.record("scheduled", type(exc).__name__, str(exc))

    # --- what the manager does to a connection (runtime only) ------------------------------

    def _same_target(self, url: str, options: ConnectOptions) -> bool:
        return self._session.real_url == url and self.options == options

    def _mark_removed(self) -> None:
        self._removed = True

    async def _shutdown(self, code: int = 1001, reason: str = "going away") -> None:
        await self._session.shutdown(code, reason)

    def _abort(self) -> None:
        self._session.abort_transport()

    def _notify(self, kind: str, info: LifecycleInfo) -> None:
        self._observers.call(self._observers.on_lifecycle, kind, info)

    def _connect_arguments(self) -> tuple[str, dict[str, Any]]:
        """The real URL and the ``connect`` keywords that open another socket like this one (no handlers)."""
        fields = [f.name for f in dataclasses.fields(self.options) if f.name != "protocol_options"]
        options = {name: getattr(self.options, name) for name in fields}
        options.update(self.options.protocol_options)
        return self._session.real_url, options

    def _describe(self) -> Meta:
        return {"socket": self.name, "url": self.url, "content_type": self.content_type}

    # --- waiting for messages ---------------------------------------------------------------

    def wait(self, count: int = 1, timeout: float | None = 30.0, match: Callable[[WsEvent], bool] | None = None) -> list[WsEvent]:
        """Block until ``count`` more messages (matching ``match``) arrive; returns them.

        Raises :class:`WaitTimeoutError` after ``timeout`` seconds; Ctrl-C stops waiting.
        """
        return self._waits.wait(count, timeout, match)

    async def wait_async(
        self, count: int = 1, timeout: float | None = 30.0, match: Callable[[WsEvent], bool] | None = None
    ) -> list[WsEvent]:
        """Like :meth:`wait`, for ``await`` in a cell (does not block the kernel)."""
        return await self._waits.wait_async(count, timeout, match)

    def wait_handled(self, timeout: float | None = 30.0) -> int:
        """Block until the handlers have run for every message received so far; returns that message's seq."""
        return self._waits.wait_handled(timeout)

    def waiter(self, count: int = 1, match: Callable[[WsEvent], bool] | None = None) -> MessageWaiter:
        """Start collecting the next ``count`` messages; ``waiter.future`` resolves with them."""
        return self._waits.waiter(count, match)

    # --- request / expect -------------------------------------------------------------------

    def request(self, message: Any, match: Match = None, timeout: float | None = 5.0) -> Reply:
        """Send ``message`` and wait for the first reply that matches; returns a :class:`Reply`.

        ``match`` is a predicate on the event, a dict of field values that must
        be equal (dotted names for nested fields: ``{"result.id": 7}``; a
        callable value tests the field), a field name whose value must equal
        the request's (``match="id"``), or ``None`` (the next message). The
        matcher is registered before the message is queued, so a fast reply is
        never missed. It returns as soon as the reply is received (the
        socket's handlers may still be running on it), so a sync handler may
        itself call ``request``. Blocks at most ``timeout`` seconds, then raises
        :class:`ExpectationTimeoutError` (a :class:`WaitTimeoutError`) showing the closest messages received, or
        :class:`SocketClosedError` at once if the socket closes for good;
        Ctrl-C stops waiting. In a cell, ``await conn.request_async(...)``
        does not block the kernel.
        """
        __tracebackhide__ = True
        return self._requests.request(message, match, timeout)

    async def request_async(self, message: Any, match: Match = None, timeout: float | None = 5.0) -> Reply:
        """Like :meth:`request`, for ``await`` (in a cell, or in an async handler)."""
        return await self._requests.request_async(message, match, timeout)

    def expect(
        self,
        match: Match = None,
        timeout: float | None = 5.0,
        since: Since = None,
        *,
        within: float | None = None,
        schema: SchemaSource | None = None,
    ) -> WsEvent:
        """Wait for a message that matches (see :meth:`request` for ``match``) without sending; returns its event.

        By default, the messages that count are those received since the
        current connection opened that no earlier ``expect`` or ``request``
        returned (nor any message before the one it returned), then whatever
        arrives next. So ``connect(..., on_open=send_init)`` followed by
        ``conn.expect({"type": "connection_ack"})`` finds the ack even if it
        arrived before ``expect`` was called. ``since`` (a sequence number, an
        event or a :class:`Reply`) sets the starting point instead: messages
        received after it count (looked up in the transcript), e.g.
        ``conn.expect({"type": "done"}, since=reply)`` after a request. A
        ``datetime`` is a moment: the messages received after it count, e.g.
        what a REST call made the server push (``since=before_the_call``).

        ``within=S`` bounds the time: the message must arrive within ``S``
        seconds of the last send on this socket (or of the ``since`` message or
        moment; of the connection's opening when nothing was sent); it waits until
        then, and a message that arrived later fails too (``timeout`` is not
        used). ``schema`` is a JSON Schema (a dict, checked with
        ``jsonschema``) or a pydantic model class the message must be valid
        under. A failure raises :class:`ExpectationError` (an
        ``AssertionError``; when nothing arrived in time,
        :class:`ExpectationTimeoutError`, also a :class:`WaitTimeoutError`)
        whose text shows the expectation, the closest messages that did
        arrive with the fields that differ, and how long it waited.
        """
        __tracebackhide__ = True  # pytest shows the test's line, not nbsocket's frames
        return self._requests.expect(match, timeout, since, within=within, schema=schema)

    async def expect_async(
        self,
        match: Match = None,
        timeout: float | None = 5.0,
        since: Since = None,
        *,
        within: float | None = None,
        schema: SchemaSource | None = None,
    ) -> WsEvent:
        """Like :meth:`expect`, for ``await``."""
        __tracebackhide__ = True
        return await self._requests.expect_async(match, timeout, since, within=within, schema=schema)

    def expect_none(self, match: Match = None, during: float = 1.0, since: Since = None) -> None:
        """Fail if a message that matches arrives: now, or during the next ``during`` seconds.

        The messages that count are those :meth:`expect` would look at (received
        since the current connection opened and after the last one an
        ``expect`` or ``request`` returned, or after ``since``), then whatever
        arrives during ``during`` seconds. ``match=None`` forbids any message.
        Raises :class:`ExpectationError` showing the message and when it came;
        returns ``None`` after ``during`` seconds otherwise.
        """
        __tracebackhide__ = True
        self._requests.expect_none(match, during, since)

    async def expect_none_async(self, match: Match = None, during: float = 1.0, since: Since = None) -> None:
        """Like :meth:`expect_none`, for ``await``."""
        __tracebackhide__ = True
        await self._requests.expect_none_async(match, during, since)

    # --- transcript ------------------------------------------------------------------------

    def transcript(self, parse: bool = True) -> pd.DataFrame:
        """Every frame sent and received and every connection event, in order, as a DataFrame.

        Columns: ``timestamp`` (UTC), ``direction`` (``sent``, ``received``,
        ``event``), ``seq`` (the socket's received-message number, or the
        sent-message number), ``kind`` (``text``/``binary``, or ``open``,
        ``reconnect``, ``close``, ``reset``, ``error``, ``failed``), ``size``
        (bytes), ``body`` (as sent or received), ``error``, ``code`` and
        ``reason`` (of a close), ``info``; then the parsed message fields
        (``parse=False`` leaves them out). ``attrs["dropped"]`` counts entries
        the bound pushed out.
        """
        return self._transcript.frame(parse)

    def transcript_entries(self) -> tuple[list[Entry], Meta]:
        """The transcript's raw entries and meta data (what :func:`nbsocket.replay` and ``compare`` read)."""
        return self._transcript.entries()

    def save_transcript(self, path: str | os.PathLike[str]) -> int:
        """Write the transcript to ``path`` as JSON Lines (replay it with :func:`nbsocket.replay`); returns the entries
        written."""
        return self._transcript.save(path)

    def keep_transcript(self, max_entries: int | None = DEFAULT_MAX_ENTRIES, max_bytes: int | None = DEFAULT_MAX_BYTES) -> None:
        """Set how much of the transcript is kept: ``max_entries`` entries holding at most ``max_bytes`` of bodies.

        The transcript is on by default (10,000 entries, 32 MiB). ``None``
        lifts a bound; ``max_entries=0`` turns recording off (and forgets it).
        """
        self._transcript.keep(max_entries, max_bytes)

    def clear_transcript(self) -> None:
        """Forget the transcript so far (recording goes on)."""
        self._transcript.clear()

    # --- saved tests ---------------------------------------------------------------------------

    def save_test(self, path: str | os.PathLike[str], ignore: str | Iterable[str] = ()) -> SavedTest:
        """Write this socket's exploration as a pytest file at ``path``; returns what it wrote (``.environment``).

        The file uses the ``ws`` fixture of nbsocket's pytest plugin. It connects
        (the URL from an environment variable, by default the recorded one;
        every secret from an environment variable it names, never written), then
        repeats the exploration: each message sent, and for each message
        received an ``expect`` of its fields, bounded ``within`` five times the
        round trip observed (at least a second). A protocol socket's test uses
        its verbs: ``emit``, ``call`` with an ``assert`` on the result,
        ``subscribe`` and the events that came. ``ignore`` leaves fields out of
        the expectations (names or glob patterns, as in :func:`nbsocket.compare`):
        timestamps, ids, whatever changes on every run
        (:func:`nbsocket.propose_ignore` finds them).
        """
        target = os.fspath(path)
        if not target.endswith(".py"):
            raise InvalidOptionError(f"a saved test is a Python file: the path must end with .py, not {target!r}")
        exploration = self.exploration()
        text, saved = render(exploration, plan(exploration), ignore, path=target)
        folder = os.path.dirname(target)
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(target, "w", encoding="utf-8") as out:
            out.write(text)
        return saved

    def exploration(self) -> Exploration:
        """What :meth:`save_test` writes from: the URL, options and transcript (and a protocol socket's verbs)."""
        entries, _ = self._transcript.entries()
        return Exploration(self.name, self._session.real_url, self.options, entries, self._protocol_steps())

    def _protocol_steps(self) -> list[ProtocolStep] | None:
        """A protocol socket's log of verbs and messages (``None`` for a plain socket, whose transcript says it all)."""
        return None

    # --- latency ---------------------------------------------------------------------------

    def ping(self, timeout: float = 5.0) -> float:
        """Send a WebSocket ping now and return the round-trip time in seconds (also kept in :meth:`latency`)."""
        return self._latency.ping(timeout)

    async def ping_async(self, timeout: float = 5.0) -> float:
        """Like :meth:`ping`, for ``await``."""
        return await self._latency.ping_async(timeout)

    def latency(self) -> pd.DataFrame:
        """Round-trip times over time: ``timestamp``, ``kind`` (``ping``, ``request`` or ``burst``), ``rtt_s`` (seconds).

        ``ping`` rows are the keepalive pings (every ``ping_interval``) and
        :meth:`ping` calls; ``request`` rows are :meth:`request` round trips;
        ``burst`` rows are the replies of :meth:`burst` and :func:`nbsocket.burst`.
        """
        return self._latency.history()

    def latency_stats(self) -> pd.DataFrame:
        """Round-trip statistics in seconds (``*_s`` columns), one row each for ``ping``, ``request`` and ``burst``:
        count, mean, min, p50, p95, p99, max."""
        return self._latency.stats()

    def note_round_trips(self, kind: str, samples: list[tuple[int, float]]) -> None:
        """Keep round trips measured outside this connection's own verbs (a burst's replies) in :meth:`latency`:
        ``(receipt time in ns, seconds)`` pairs of ``kind`` ``burst`` or ``request``."""
        self._latency.note(kind, samples)

    def request_stats(self) -> pd.Series:
        """Round-trip statistics of :meth:`request` calls in seconds (``count``, ``p50_s``, ``p95_s``, ``p99_s`` ...)."""
        return self._latency.stats().loc["request"]  # type: ignore[return-value]  # one row: the index is unique

    def burst(
        self,
        messages: Iterable[Any],
        rate: float | str | None = None,
        *,
        count: int | None = None,
        timeout: float = 60.0,
        settle: float = 0.2,
        progress: bool | None = None,
        match: str | None = None,
    ) -> BurstReport:
        """Send ``messages`` at ``rate`` per second and report what was delivered and the round trips; see
        :func:`nbsocket.burst`."""
        self._loop_thread.refuse_blocking("burst", "conn", "nbs")
        run = Burst(self, messages, rate, count, timeout, settle, progress, match)
        run_sync(run.steps())
        return run.report()
