"""Running a sans-I/O :class:`~nbsocket.core.protocols.base.Protocol` on a socket: the loop side of ``connect(protocol=...)``.

A :class:`ProtocolDriver` owns one protocol object on nbsocket's loop thread.
The session hands it the socket when it opens, every received message, and
the close; the driver carries out what the protocol answers:

``Send``          written at once, ahead of the outbox (pongs, CONNECT, re-subscriptions)
``Deliver``       a :class:`~nbsocket.core.events.WsEvent` with ``topic``: handlers, live frame, observers
``Reply``         resolves the caller of ``call`` (an error dict raises :class:`~nbsocket.errors.RemoteError`)
``Ready``         the handshake is done: ``connect`` returns, ``on_open`` runs, the outbox starts
``Refused``       ``connect`` raises ``ConnectError(kind="protocol")``; the socket is closed, not reopened
``Close``         closes the socket (1000 from the server's goodbye: no reconnect; otherwise as the policy says)
``Malformed``     a frame row (and event) with its error; never fatal
``Report``        recorded in ``conn.errors`` (a reply to an unknown id, a broker ERROR)
``Housekeeping``  transcript only

Nothing here waits for a handler: housekeeping is answered on the loop as the
message is read. Timers come from ``next_deadline()``/``poll()``, one per socket.

Calls across reconnects follow one rule for every protocol (kept with an
:class:`~nbsocket.runtime.protocols.calls.OutgoingLedger`): a call not written
yet waits in the outbox and is sent on the next connection; a call written on
a connection that is then lost fails at once with ``SocketClosedError`` naming
that connection; when the socket closes for good every call still waiting fails.
Each abandoned call is reported to the protocol with ``cancel_call``.

A message the server wants answered (a Socket.IO ack, a JSON-RPC request) is
answered once its handlers ran, with ``protocol.acknowledge(token, value,
error=<what a handler raised>, handled=<did any handler run>)``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import datetime as _dt
import time
from collections.abc import Callable, Hashable
from typing import Any

from ...core.events import Request, WsEvent, utf8_size
from ...core.flatten import PREFIX, message_fields
from ...core.frame import TOPIC
from ...core.options import ConnectOptions
from ...core.protocols.base import (
    Action,
    Close,
    Deliver,
    Housekeeping,
    Malformed,
    Protocol,
    Ready,
    Refused,
    Reply,
    Report,
    Send,
)
from ...core.redact import scrub
from ...core.state import CLOSED_FOR_GOOD
from ...errors import ConnectError, ConnectTimeoutError, RemoteError, SocketClosedError
from ..observe.observers import LifecycleInfo
from ..outbound.outbox import Outgoing
from ..parts import SessionPort, SocketParts, SocketView
from ..receivers import hand_over
from ..transport import Batch, CloseInfo, ConnectionClosed, Wire
from .calls import HandlerOutcomes, OutgoingLedger, QueuedVerb, RecentTopics, describe_connection

__all__ = ["ProtocolDriver"]


class ProtocolDriver:
    """Owns ``protocol`` for one socket and carries out its actions (loop thread, except where noted).

    It is the socket's :class:`~nbsocket.runtime.receivers.Receiver`. ``parts`` are the socket's parts,
    ``session`` its numbering and writer, and ``view`` its public face (what events act on).
    """

    def __init__(self, parts: SocketParts, session: SessionPort, view: SocketView, protocol: Protocol) -> None:
        self._parts = parts
        self._view = view
        self.protocol = protocol
        self.name = parts.name
        self._session = session
        self._loop_thread = parts.loop_thread
        self._ws: Wire | None = None
        self._writer_ready: asyncio.Event | None = None
        self._open_pending = False
        self._first: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None  # why the current handshake failed (refused, closed, timed out)
        self._server_ended = False
        self._ledger = OutgoingLedger()
        self.outcomes = HandlerOutcomes()
        self._opened_at: _dt.datetime | None = None
        self._urgent: collections.deque[str | bytes] = collections.deque()
        self._flushing = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._handshake_timer: asyncio.TimerHandle | None = None
        self.topics = RecentTopics()
        self.handshakes = 0
        """How many connections opened; the current one's number."""
        self.info: dict[str, Any] = {}  # what the server said at Ready (decoded JSON)
        parts.observers.add(self)

    # --- session hooks ---------------------------------------------------------------

    @property
    def decode_text(self) -> bool:
        """False for protocols whose text frames may carry binary bodies (STOMP): they reach :meth:`receive` as bytes."""
        return not self.protocol.read_undecoded

    ping_at_open = False
    """A protocol socket settles on the protocol's handshake, not on a ping."""

    def prepare_open(self, url: str, options: ConnectOptions) -> tuple[str, list[str] | None]:
        """The URL to open (the protocol's path and query) and its subprotocols, unless the user gave some."""
        subprotocols = list(self.protocol.subprotocols) if self.protocol.subprotocols and not options.subprotocols else None
        return self.protocol.prepare_url(url), subprotocols

    def opened(self, wire: Wire, ready: asyncio.Event, first: asyncio.Future[None]) -> None:
        """A socket opened: drop the last connection's unsent bound messages and start the handshake. ``connect``
        waits on ``first``: it resolves at ``Ready`` and fails at ``Refused`` or a close before it."""
        if not first.done():
            self._first = first
            self._failure = None
        loop = asyncio.get_running_loop()
        self._ws, self._writer_ready, self._open_pending, self._server_ended = wire, ready, True, False
        self.handshakes += 1
        self._opened_at = self._parts.stats.opened_at
        bound = self._ledger.take_bound()
        if bound:
            self._parts.outbox.discard(bound)
        self._urgent.extend(self.protocol.start(loop.time()))
        if self.protocol.ready:
            self._on_ready({})
        elif self._first is not None and not self._first.done():
            timeout = self._parts.options.open_timeout or 60.0
            self._handshake_timer = loop.call_later(timeout, self._handshake_timed_out, timeout)
        self._kick()
        self._arm()

    def receive(self, batch: Batch) -> None:
        """One read's messages: each one's protocol actions, carried out in order."""
        for body in batch:
            self._receive_one(body)

    def _receive_one(self, body: str | bytes) -> None:
        ts = time.time_ns()
        stats = self._parts.stats
        stats.messages_in += 1
        stats.bytes_in += utf8_size(body)
        try:
            actions = self.protocol.receive(body, asyncio.get_running_loop().time())
        except Exception as exc:  # receive must not raise; a bug in a user's protocol is kept as a malformed message
            actions = [Malformed(f"{type(exc).__name__} in {type(self.protocol).__name__}.receive: {exc}")]
        first_seq: int | None = None
        for action in actions:
            seq = self._carry_out(action, body, ts)
            if first_seq is None:
                first_seq = seq
        observers = self._parts.observers
        if observers.on_batch:  # the transcript: every message, housekeeping included (seq None)
            shown = _text_if_utf8(body) if self.protocol.read_undecoded else body
            observers.call(observers.on_batch, ts, first_seq, [shown], [None])
        self._kick()
        self._arm()

    def closed(self, info: CloseInfo, first: asyncio.Future[None]) -> bool:
        """The socket closed; True when it must not be reopened (refused handshake, server said goodbye)."""
        code, reason = info.code, info.reason
        self._ws = None
        self._open_pending = False
        self._urgent.clear()
        self._cancel_timers()
        was_ready = self.protocol.ready
        self.protocol.closed()
        self._fail_lost_calls(code, reason)
        if not was_ready and self._failure is None:
            refusal = getattr(self.protocol, "refusal_reason", None)
            words = refusal(code, reason) if refusal is not None else None
            if words is not None:
                self._fail_handshake(f"the server refused the {self.protocol.name} connection: {words}")
            elif self._first is not None and not self._first.done():
                self._fail_handshake(
                    f"the server closed the connection during the {self.protocol.name} handshake "
                    f"(code {code}{' ' + repr(reason) if reason else ''})"
                )
        return self._failure is not None or self._server_ended

    # --- actions ------------------------------------------------------------------------

    def _carry_out(self, action: Action, body: str | bytes, ts: int) -> int | None:
        if type(action) is Send:
            self._urgent.append(action.payload)
        elif type(action) is Deliver:
            return self._deliver(body, ts, action.topic, action.data, action.error, action.ack, action.headers)
        elif type(action) is Malformed:
            self._parts.stats.parse_errors += 1
            return self._deliver(body, ts, action.topic, None, action.error, None, None, malformed=True)
        elif type(action) is Reply:
            self._reply(action)
        elif type(action) is Ready:
            self._on_ready(action.info)
        elif type(action) is Refused:
            self._fail_handshake(f"the server refused the {self.protocol.name} connection: {action.reason}", data=action.data)
            self._close(1000, "handshake refused")
        elif type(action) is Close:
            self._protocol_close(action.code, action.reason)
        elif type(action) is Report:
            self._parts.errors.record("protocol", action.error, action.message)
        elif type(action) is not Housekeeping:
            self._parts.errors.record("protocol", "UnknownAction", f"{type(self.protocol).__name__} returned {action!r}")
        return None

    def _deliver(
        self,
        body: str | bytes,
        ts: int,
        topic: str | None,
        data: Any,  # the message's decoded content
        error: str | None,
        ack: Any,  # the protocol's token for answering the message (its own type), or None
        headers: dict[str, Any] | None,
        malformed: bool = False,
    ) -> int:
        parts, session, view = self._parts, self._session, self._view
        session.last_ts_ns = ts
        session.seq = seq = session.seq + 1
        if topic is not None:
            self.topics.add(topic)
        frame = parts.frame
        if frame is not None:
            fields: dict[str, Any] = {TOPIC: topic}
            payload = message_fields(body if malformed else data, None, body)
            for key, value in payload.items():
                fields[PREFIX + key if key == TOPIC else key] = value
            if error is not None:
                fields["error"] = error
            frame.append(ts, seq, fields)
        is_binary = not isinstance(body, str)
        event = WsEvent(
            self.name,
            data,
            Request(body, is_binary, parts.options.content_type, session.url),
            seq,
            ts,
            parts.lockable,
            error,
            view,
            topic=topic,
            ack_token=ack,
            headers=headers,
        )
        hand_over(parts, [event])
        return seq

    def _reply(self, reply: Reply) -> None:
        call, unsent = self._ledger.pop_call(reply.id)
        if call is None or call.future is None:
            self._parts.errors.record(
                "protocol",
                "UnknownReply",
                f"a reply to id {reply.id!r}, which no call is waiting for "
                "(it timed out, or the server sent it twice); it was recorded, not raised",
            )
            return
        if unsent:
            self._parts.outbox.discard(unsent)
        future = call.future
        if reply.error is not None:
            error = reply.error
            _settle(
                future,
                exception=RemoteError(scrub(str(error.get("message") or error)), code=error.get("code"), data=error.get("data")),
            )
        else:
            _settle(future, result=reply.value)

    def _on_ready(self, info: dict[str, Any]) -> None:
        self.info = dict(info)
        self._ledger.sent_by_protocol(self.handshakes)
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        first = self._first
        if first is not None and not first.done():
            first.set_result(None)
        # the writer (and on_open) start once the handshake's own sends (re-subscriptions) are written: see _flush

    def _fail_handshake(self, message: str, timeout: bool = False, data: Any = None) -> None:  # data: the server's refusal
        error_type = ConnectTimeoutError if timeout else ConnectError
        error = error_type(scrub(f"{self._session.url}: {message}"), kind="timeout" if timeout else "protocol", data=data)
        self._failure = error
        self._parts.errors.record("connect", type(error).__name__, str(error))
        first = self._first
        if first is not None and not first.done():
            first.set_exception(error)

    def _handshake_timed_out(self, timeout: float) -> None:
        self._handshake_timer = None
        if not self.protocol.ready and self._ws is not None:
            self._fail_handshake(
                f"the {self.protocol.name} handshake did not finish within open_timeout={timeout:g}s", timeout=True
            )
            self._close(1000, "handshake timeout")

    def _protocol_close(self, code: int, reason: str) -> None:
        if code == 1000:  # the server ended the session on purpose (Socket.IO DISCONNECT, Engine.IO close)
            self._server_ended = True
            self._close(1000, reason)
        else:  # liveness lost (heart-beat, keep-alive): a normal close, so the reconnect policy reopens it
            self._close(1001, f"{reason} ({code})" if code not in (1001,) else reason)

    def _close(self, code: int, reason: str) -> None:
        ws = self._ws
        if ws is not None:
            asyncio.get_running_loop().create_task(ws.close(code, reason[:120]))

    # --- writing ahead of the outbox --------------------------------------------------------

    def _kick(self) -> None:
        if not self._flushing and (self._urgent or (self._open_pending and self.protocol.ready)):
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush(), name=f"nbsocket-protocol-{self.name}")

    async def _flush(self) -> None:
        parts = self._parts
        try:
            while self._urgent:
                payload = self._urgent.popleft()
                ws = self._ws
                if ws is None:
                    self._urgent.clear()
                    return
                try:
                    await ws.send(payload)
                except ConnectionClosed:
                    self._urgent.clear()
                    return
                except Exception as exc:
                    parts.errors.record("send", type(exc).__name__, str(exc))
                    continue
                parts.stats.messages_out += 1
                parts.stats.bytes_out += utf8_size(payload)
                observers = parts.observers
                if observers.on_sent:  # handshake messages may hold secrets (passcode, auth, init_payload)
                    shown = scrub(payload) if isinstance(payload, str) else payload
                    observers.call(observers.on_sent, Outgoing(shown, time.time_ns()), time.time_ns())
            if self._open_pending and self.protocol.ready and self._ws is not None and self._writer_ready is not None:
                self._open_pending = False
                parts.dispatcher.push_open(self._writer_ready)
        finally:
            self._flushing = False
        self._kick()

    # --- timers -------------------------------------------------------------------------------

    def _arm(self) -> None:
        deadline = self.protocol.next_deadline() if self._ws is not None else None
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer) if deadline is not None else None

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, None
        if self._ws is None:
            return
        loop = asyncio.get_running_loop()
        try:
            actions = self.protocol.poll(loop.time())
        except Exception as exc:
            self._parts.errors.record("protocol", type(exc).__name__, f"{type(self.protocol).__name__}.poll: {exc}")
            actions = []
        for action in actions:
            self._carry_out(action, "", time.time_ns())
        self._kick()
        self._arm()

    def _cancel_timers(self) -> None:
        for timer in (self._timer, self._handshake_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._handshake_timer = None
        self._timer_at = None

    # --- verbs (called on the loop thread by ProtocolConnection) -------------------------------

    def queue(
        self,
        messages: list[str | bytes],
        *,
        bound: bool,
        call_id: Hashable = None,
        future: concurrent.futures.Future[Any] | None = None,  # a call's: resolves with the reply's value
    ) -> None:
        """Put a verb's messages in the outbox, in order and all or nothing (``OutboxFullError``: none was queued).

        ``bound`` ones belong to this connection only; ``future`` makes them a call's.
        """
        view = self._view
        state = view.state
        if view.removed or state in CLOSED_FOR_GOOD:
            raise SocketClosedError(view.closed_message(f"use the {self.protocol.name} protocol on"))
        items = self._parts.outbox.put_all(messages, state)
        self._ledger.add(items, bound=bound, call_id=call_id, future=future)
        if messages:
            self._session.wake_writer(True, self._loop_thread.call_soon)
        self._arm_soon()

    def _arm_soon(self) -> None:
        if self._ws is not None:
            self._arm()

    def start_call(
        self, make: Callable[[], tuple[Hashable, list[str | bytes]]]
    ) -> tuple[Hashable, concurrent.futures.Future[Any]]:
        """Start a call: its id and the future its ``Reply`` resolves (its messages are never bound to a connection)."""
        call_id, messages = make()
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            self.queue(messages, bound=False, call_id=call_id, future=future)
        except BaseException:
            self._cancel_in_protocol(call_id)
            raise
        return call_id, future

    def cancel_call(self, call_id: Hashable) -> None:
        """The caller of ``call_id`` gave up: drop what of it is unsent, forget it here and in the protocol.

        What the protocol returns (a GraphQL ``complete``) is sent only when the call reached the server.
        """
        call, unsent = self._ledger.pop_call(call_id)
        if unsent:
            self._parts.outbox.discard(unsent)
        messages = self._cancel_in_protocol(call_id)
        reached_server = call is not None and call.written_on is not None
        if messages and reached_server and self._ws is not None and self._view.state not in CLOSED_FOR_GOOD:
            self.queue(messages, bound=True)

    def _cancel_in_protocol(self, call_id: Hashable) -> list[str | bytes]:
        try:
            return list(self.protocol.cancel_call(call_id) or [])
        except Exception as exc:
            self._parts.errors.record("protocol", type(exc).__name__, f"{type(self.protocol).__name__}.cancel_call: {exc}")
            return []

    def _fail_lost_calls(self, code: int | None, reason: str) -> None:
        """The connection closed: calls written on it can never be answered; fail them and tell the protocol."""
        lost, stale = self._ledger.lost_with(self.handshakes)
        if stale:
            self._parts.outbox.discard(stale)
        if not lost:
            return
        which = describe_connection(self.handshakes, self._opened_at)
        closed = f"code {code}{' ' + repr(reason) if reason else ''}"
        for call in lost:
            self._abandon(
                call,
                f"the connection of {self.name!r} ({which}) was lost ({closed}) before {self.protocol.name} "
                f"call {call.call_id!r} was answered; it had been sent, so the server may have carried it out: "
                "call again if that is safe",
            )

    def _fail_all_calls(self, state: str) -> None:
        """The socket closed for good: every call still waiting fails (none of the unsent ones will be sent)."""
        calls, unsent = self._ledger.pop_all_calls()
        if unsent:
            self._parts.outbox.discard(unsent)
        for call in calls:
            sent = "it had been sent" if call.written_on is not None else "it was never sent"
            self._abandon(call, f"{self.name!r} is {state}: {self.protocol.name} call {call.call_id!r} got no reply ({sent})")

    def _abandon(self, call: QueuedVerb, message: str) -> None:
        self._cancel_in_protocol(call.call_id)  # its messages are dropped: that connection is gone
        if call.future is not None:
            _settle(call.future, exception=SocketClosedError(scrub(message)))

    def waiting_calls(self) -> list[str]:
        """The ids of the calls waiting for a reply, as text (any thread)."""
        return self._ledger.waiting_calls()

    def is_active(self, sub_id: Hashable) -> bool:
        """True while the protocol keeps subscription ``sub_id`` active (not cancelled, completed or errored); any thread."""
        is_active = getattr(self.protocol, "is_active", None)
        if is_active is not None:
            return bool(is_active(sub_id))
        subs = getattr(self.protocol, "subscriptions", None)
        return sub_id in subs if isinstance(subs, dict) else True

    # --- observer hooks (any thread) -------------------------------------------------------------

    def on_sent(self, item: Outgoing, ts_ns: int) -> None:
        """The writer wrote ``item`` (loop thread): note the connection it reached."""
        self._ledger.written(item, self.handshakes)

    def on_lifecycle(self, kind: str, info: LifecycleInfo) -> None:
        """The socket closed for good: fail the calls still waiting (loop thread, or scheduled there)."""
        if kind != "state" or info.get("state") not in CLOSED_FOR_GOOD:
            return
        state = info["state"]
        if self._loop_thread.in_loop_thread():
            self._fail_all_calls(state)
        else:
            self._loop_thread.call_soon(lambda: self._fail_all_calls(state))

    def on_handled(self, event: WsEvent) -> None:
        """Every handler ran: answer a Socket.IO ack / JSON-RPC request with what they returned, or raised."""
        if event.ack_token is None or not self.protocol.handler_replies or event.connection is not self._view:
            return
        handled, error = self.outcomes.take(event)
        token, value = event.ack_token, event.reply
        event.ack_token = None  # answered once

        def answer() -> None:
            try:
                self.queue(self.protocol.acknowledge(token, value, error=error, handled=handled), bound=True)
            except Exception as exc:
                self._parts.errors.record("acknowledge", type(exc).__name__, str(exc))

        self._loop_thread.call_soon(answer)


def _settle(
    future: concurrent.futures.Future[Any], *, result: Any = None, exception: BaseException | None = None
) -> None:  # a call's reply value
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass


def _text_if_utf8(body: str | bytes) -> str | bytes:
    if isinstance(body, bytes):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return body
    return body
