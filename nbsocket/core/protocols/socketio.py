"""Socket.IO v4 over Engine.IO v4 (websocket transport only), as a sans-I/O :class:`Protocol`.

The references it follows are socket.io-client 4.8 (``lib/socket.ts``), socket.io-parser 4.2 and the
Socket.IO v5 / Engine.IO v4 protocol documents; it is tested against socket.io 4.8.4 on Node and
python-socketio. What it does, message by message:

* Engine.IO ``0{sid,pingInterval,pingTimeout,maxPayload}`` (open) -> ``Send`` the Socket.IO CONNECT
  for our namespace (``40``, ``40/ns,`` and the ``auth`` JSON when given).
  ``40{"sid":..}`` for our namespace -> ``Ready``; ``44{"message":..,"data":..}`` (connect_error) ->
  ``Refused(reason, data=...)`` (the reference client's ``err.message`` and ``err.data``).
* Engine.IO ping ``2`` -> ``Send("3")`` + ``Housekeeping("ping")``. Any message from the server resets
  the keep-alive clock; when nothing was heard for ``pingInterval + pingTimeout`` ``poll`` answers
  ``Close(1001, ...)`` (see ``next_deadline``).
* Engine.IO close ``1`` and Socket.IO DISCONNECT ``41`` for our namespace -> ``Close(1000, ...)``: the
  session is over on the server side, so the socket closes and the runtime's reconnect policy decides
  (a ``disconnect`` event is *not* delivered to handlers).
* EVENT ``42[name, *args]`` (with ``/ns,`` and an ack id) -> ``Deliver(topic=name, data=..., ack=...,
  headers={"namespace": ns})``; ``data`` is the single argument, the list of them, or ``None``.
  ``ack`` is an :class:`AckToken` when the server asked for an ack, for :meth:`SocketIO.acknowledge`.
  A numeric event name (which the reference parser accepts) becomes its decimal string.
* ACK ``43<id>[values]`` -> ``Reply(id, value)`` (single value, list of values, or ``None``) for a pending call;
  ``Report("UnknownReply")`` for an id no call waits for (never made, answered, or given up).
* BINARY_EVENT ``45<n>-`` / BINARY_ACK ``46<n>-`` are held until their ``n`` binary frames arrived;
  ``{"_placeholder": true, "num": k}`` becomes the k-th frame's ``bytes``, then Deliver/Reply as above.
* Packets for other namespaces than ours are ignored (``Housekeeping``, after their attachments): this
  object joins one namespace, and a server never has a reason to address one the client did not join.
* Anything unparsable -> ``Malformed(error)`` with a precise reason; ``receive`` never raises. The
  rules (ASCII digits only, bounded ack ids and attachment counts, strict JSON, payloads that fit their
  type) are in :mod:`.socketio_packets`. A malformed binary packet whose count could be read swallows its
  attachments, so they are not each reported as unannounced.

Connection state recovery (the server option ``connectionStateRecovery``), as socket.io-client does it:
the server's CONNECT reply carries a ``pid``; every event it then emits without an ack carries its offset
as an extra last argument. The offset is taken out of the arguments (``event.data`` never holds it; it is
in ``event.headers["offset"]``) and the last one seen is kept. After a reconnect the CONNECT packet
carries ``{"pid": ..., "offset": ..., **auth}``; the server then restores the session and first sends the
events it emitted while we were away. ``Ready.info["recovered"]`` says whether it did (same ``pid``).
The ``pid`` is a session secret: it is kept out of ``Ready.info``. A *volatile* event carries no offset,
and on the wire it cannot be told from one that does: when its last argument is a string, that string
is taken for the offset (as the reference client does); it is in ``event.headers["offset"]``, not lost.

Acks the server asked for are answered with what the handlers returned; no ack at all when a handler
raised or no handler ran, as socket.io-client sends none when the listener throws or is missing.
Calls keep their ack id for the protocol's life (ids count up and are never reused) and stay pending across
reconnects: the runtime sends an unwritten call on the next connection, and cancels (``cancel_call``) one
written on a lost connection, as socket.io-client drops the ack callbacks of packets already sent when the
connection closes and keeps those still in its send buffer.

Framing (:mod:`.socketio_packets`) is written here rather than borrowed from python-socketio's
``socketio.packet.Packet``: it is short, it keeps the runtime free of a python-socketio/python-engineio
dependency, and ``Packet.decode`` is lenient where nbsocket must report (it reads non-ASCII digits,
takes a zero or unreadable attachment count for none, and passes over placeholders that do not match
the count). python-socketio is used only by the tests, as a real server and as the differential oracle.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, ClassVar, TypeGuard
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ...errors import InvalidOptionError, InvalidURLError, ProtocolError
from .base import Action, Close, Deliver, Housekeeping, Malformed, Outgoing, Protocol, Ready, Refused, Reply, Report, Send
from .socketio_packets import (
    ACK,
    BINARY_ACK,
    BINARY_EVENT,
    CONNECT,
    CONNECT_ERROR,
    EVENT,
    MAX_ACK_ID,
    RESERVED_EVENTS,
    BadPacket,
    Packet,
    decode_packet,
    dumps,
    encode_packet,
    event_name,
    loads,
    resolve_placeholders,
    shown_char,
    unpack_args,
)

__all__ = ["RESERVED_EVENTS", "AckToken", "SocketIO"]

# Engine.IO v4 packet types (first character of a text frame)
_EIO_OPEN, _EIO_CLOSE, _EIO_PING, _EIO_PONG, _EIO_MESSAGE, _EIO_UPGRADE, _EIO_NOOP = "0123456"


@dataclasses.dataclass(frozen=True)
class AckToken:
    """What ``Deliver.ack`` carries for an event the server sent with an ack id.

    ``connection`` numbers the connection it arrived on: an ack id means nothing to a later session, so
    acknowledging a token from an earlier connection sends nothing.
    """

    namespace: str
    id: int
    connection: int


class SocketIO(Protocol):
    """Socket.IO v4 client side (Engine.IO v4, websocket transport), sans-I/O.

    Options: ``namespace`` (default ``"/"``), ``auth`` (a dict sent with the CONNECT packet; secret),
    ``path`` (default ``"/socket.io/"``, the Engine.IO endpoint on the server).
    """

    name: ClassVar[str] = "socketio"
    secret_options: ClassVar[tuple[str, ...]] = ("auth",)
    handler_replies: ClassVar[bool] = True

    def __init__(
        self, *, namespace: str = "/", auth: dict[str, Any] | None = None, path: str = "/socket.io/", **options: Any
    ) -> None:
        super().__init__(**options)  # refuses unknown options
        if not isinstance(namespace, str) or not namespace or "," in namespace or "?" in namespace:
            raise InvalidOptionError(f"socketio namespace must be a non-empty string without ',' or '?', not {namespace!r}")
        self.namespace = namespace if namespace.startswith("/") else "/" + namespace
        if auth is not None:
            if not isinstance(auth, dict):
                raise InvalidOptionError(f"socketio auth must be a dict or None, not {type(auth).__name__}")
            try:
                dumps(auth)
            except (TypeError, ValueError, RecursionError) as exc:
                raise InvalidOptionError(f"socketio auth must be JSON-serialisable: {exc}") from None
        self.auth = auth
        if not isinstance(path, str) or not path.strip("/"):
            raise InvalidOptionError(f"socketio path must be a non-empty URL path such as '/socket.io/', not {path!r}")
        self.path = "/" + path.strip("/") + "/"
        self._ack_ids = itertools.count(1)  # kept across reconnects so a stale ack never matches a new call
        self._pending: set[int] = set()  # ack ids of calls waiting for their ack, across reconnects
        self._connection = 0
        self._pid: str | None = None  # connection state recovery: the session id the server gave us (a secret)
        self._last_offset: str | None = None  # ... and the offset of the last event it sent
        self._reset(now=None)

    def _reset(self, now: float | None) -> None:
        """Forget everything about the current connection (a new one starts from the Engine.IO open)."""
        self._ready = False
        self._engine: dict[str, Any] = {}
        self._heartbeat: float | None = None  # pingInterval + pingTimeout, seconds, once known
        self._last_heard = now
        self._partial: Packet | None = None
        self._discarding = 0  # attachments of a malformed binary packet still to swallow

    # --- connection lifecycle ---------------------------------------------------

    def prepare_url(self, url: str) -> str:
        """``ws://host:3000`` -> ``ws://host:3000/socket.io/?EIO=4&transport=websocket``.

        A URL whose path already ends in ``socket.io`` keeps it; otherwise the ``path`` option is used.
        Other query parameters are kept. Any other path is refused: the JS client would read it as a
        namespace, which nbsocket takes from ``namespace=`` instead.
        """
        parts = urlsplit(url)
        path = parts.path
        if path.rstrip("/").endswith("socket.io"):
            path = path.rstrip("/") + "/"
        elif path in ("", "/"):
            path = self.path
        else:
            raise InvalidURLError(
                f"socketio URL path {path!r} is not a Socket.IO endpoint: pass the namespace as namespace=... "
                f"and a non-standard endpoint as path=... (default {self.path!r})"
            )
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("EIO", "transport")]
        query += [("EIO", "4"), ("transport", "websocket")]
        return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))

    def start(self, now: float) -> list[Outgoing]:
        """A socket opened: nothing to send yet, the CONNECT goes out once the server's open packet arrives.

        Calls stay pending and keep their ack ids (an unwritten one is sent on this connection).
        """
        self._connection += 1
        self._reset(now)
        return []

    @property
    def ready(self) -> bool:
        """True once the server accepted our namespace CONNECT on the current connection."""
        return self._ready

    def closed(self) -> None:
        """The socket closed: drop keep-alive and half-received binary packets."""
        self._reset(now=None)

    def next_deadline(self) -> float | None:
        """When the server's silence becomes a lost connection (last heard + pingInterval + pingTimeout)."""
        if self._heartbeat is None or self._last_heard is None:
            return None
        return self._last_heard + self._heartbeat

    def poll(self, now: float) -> list[Action]:
        """Close the socket when the server has been silent past its own ping interval and timeout."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        silent = now - (self._last_heard or now)
        self._heartbeat = None  # one Close per connection is enough
        return [Close(1001, f"socket.io ping timeout: nothing from the server for {silent:.1f}s")]

    # --- receiving --------------------------------------------------------------

    def receive(self, body: str | bytes, now: float) -> list[Action]:
        """One WebSocket message (text: an Engine.IO packet; binary: an attachment) in, actions out."""
        self._last_heard = now
        if isinstance(body, (bytes, bytearray, memoryview)):
            try:
                return self._receive_attachment(bytes(body))
            except BadPacket as exc:
                return [Malformed(str(exc), topic=exc.topic)]
        actions: list[Action] = []
        self._discarding = 0
        if self._partial is not None:
            partial, self._partial = self._partial, None
            actions.append(
                Malformed(
                    f"{partial.name} announced {partial.attachments} binary attachment(s) "
                    f"but a text message arrived after {len(partial.received)}",
                    topic=partial.topic,
                )
            )
        try:
            actions += self._receive_engine(body)
        except BadPacket as exc:
            self._discarding = exc.attachments
            actions.append(Malformed(str(exc), topic=exc.topic))
        return actions

    def _receive_engine(self, text: str) -> list[Action]:
        kind, rest = text[:1], text[1:]
        if kind == _EIO_MESSAGE:
            return self._receive_socket(rest)
        if kind == _EIO_PING:
            return [Send(_EIO_PONG + rest), Housekeeping("ping")]
        if kind == _EIO_OPEN:
            return self._receive_open(rest)
        if kind == _EIO_CLOSE:
            self._heartbeat = None
            return [Close(1000, "engine.io close from server")]
        if kind in (_EIO_PONG, _EIO_NOOP, _EIO_UPGRADE):
            return [Housekeeping({_EIO_PONG: "pong", _EIO_NOOP: "noop", _EIO_UPGRADE: "upgrade"}[kind])]
        raise BadPacket(f"unknown Engine.IO packet type {shown_char(kind)}" if kind else "empty Engine.IO packet")

    def _receive_open(self, rest: str) -> list[Action]:
        info = loads(rest, "Engine.IO open packet")
        if not isinstance(info, dict) or not isinstance(info.get("sid"), str):
            raise BadPacket("Engine.IO open packet without a sid")
        interval, timeout = info.get("pingInterval"), info.get("pingTimeout")
        if not (_is_milliseconds(interval) and _is_milliseconds(timeout)):
            raise BadPacket("Engine.IO open packet without finite, non-negative pingInterval/pingTimeout")
        self._engine = info
        self._heartbeat = (interval + timeout) / 1000
        return [Send(self._connect_packet()), Housekeeping(f"engine.io open sid={info['sid']}")]

    def _connect_packet(self) -> str:
        """``40`` (``40/ns,``) with the auth, and after a session with recovery its ``pid`` and last ``offset``."""
        data = self.auth
        if self._pid is not None:  # socket.io-client: Object.assign({pid, offset}, auth); an unknown offset is left out
            data = {"pid": self._pid, **({} if self._last_offset is None else {"offset": self._last_offset}), **(self.auth or {})}
        text, _ = encode_packet(CONNECT, data, namespace=self.namespace)
        return _EIO_MESSAGE + text

    def _receive_socket(self, text: str) -> list[Action]:
        packet = decode_packet(text)
        if packet.attachments:
            self._partial = packet
            return [Housekeeping(f"{packet.name} header, awaiting {packet.attachments} attachment(s)")]
        return self._complete(packet)

    def _receive_attachment(self, data: bytes) -> list[Action]:
        if self._discarding:
            self._discarding -= 1
            return [Housekeeping(f"attachment of a malformed binary packet, discarded ({self._discarding} more to come)")]
        packet = self._partial
        if packet is None:
            raise BadPacket("binary message that no BINARY_EVENT/BINARY_ACK announced")
        packet.received.append(data)
        if len(packet.received) < packet.attachments:
            return [Housekeeping(f"attachment {len(packet.received)}/{packet.attachments}")]
        self._partial = None
        packet.data = resolve_placeholders(packet)
        return self._complete(packet)

    def _complete(self, packet: Packet) -> list[Action]:
        """A whole packet (attachments resolved): the action it stands for."""
        kind, data = packet.type, packet.data
        if packet.namespace != self.namespace:
            return [Housekeeping(f"{packet.name} for namespace {packet.namespace} ignored")]
        if kind in (EVENT, BINARY_EVENT):
            return [self._event(packet)]
        if kind in (ACK, BINARY_ACK):
            if packet.id not in self._pending:
                return [
                    Report(
                        "UnknownReply",
                        f"socket.io ack {packet.id} on {self.namespace}: no call is waiting for it "
                        "(never made, already answered, or given up); it was recorded, not raised",
                    )
                ]
            self._pending.discard(packet.id)
            return [Reply(packet.id, value=unpack_args(data))]
        if kind == CONNECT:
            return [self._connected(data)]
        if kind == CONNECT_ERROR:
            return [self._refused(data)]
        # DISCONNECT
        self._ready = False
        self._heartbeat = None
        return [Close(1000, f"socket.io server disconnected namespace {self.namespace}")]

    def _event(self, packet: Packet) -> Deliver:
        topic, args = event_name(packet.data[0]), packet.data[1:]
        headers: dict[str, Any] = {"namespace": self.namespace}
        # connection state recovery: the server appends its offset to every event it emits without an ack
        if self._pid is not None and packet.id is None and args and isinstance(args[-1], str):
            headers["offset"] = self._last_offset = args.pop()
        ack = None if packet.id is None else AckToken(self.namespace, packet.id, self._connection)
        return Deliver(topic=topic, data=unpack_args(args), ack=ack, headers=headers)

    def _connected(self, data: Any) -> Action:
        """The server's CONNECT reply: ``Ready``, or ``Refused`` without a sid (as socket.io-client)."""
        if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
            return Refused(
                f"socket.io CONNECT reply on {self.namespace} without a sid: the server speaks Socket.IO v2, "
                "which nbsocket (a v4 client) cannot talk to"
            )
        pid = data.get("pid") if isinstance(data.get("pid"), str) and data.get("pid") else None
        recovered = pid is not None and pid == self._pid
        self._pid = pid
        self._ready = True
        info = {"namespace": self.namespace, "engine_sid": self._engine.get("sid")}
        info.update((key, value) for key, value in data.items() if key != "pid")
        info["recovered"] = recovered
        for key, name in (("pingInterval", "ping_interval"), ("pingTimeout", "ping_timeout"), ("maxPayload", "max_payload")):
            if key in self._engine:
                info[name] = self._engine[key]
        return Ready(info)

    def _refused(self, data: Any) -> Refused:
        """connect_error: the reason is ``message`` (or the string), ``data`` what the server attached (``err.data``)."""
        extra = None
        if isinstance(data, dict):
            reason = str(data["message"]) if "message" in data else dumps(data)
            extra = data.get("data")
        else:
            reason = str(data) if data is not None else "connection refused"
        return Refused(f"socket.io connect_error on {self.namespace}: {reason}", data=extra)

    # --- verbs --------------------------------------------------------------------

    def emit(self, event: str, *args: Any, ack_id: Any = None) -> list[Outgoing]:
        """Messages that send ``event`` with ``args``; bytes anywhere in ``args`` go as binary attachments."""
        if not isinstance(event, str) or not event:
            raise ProtocolError(f"socketio event name must be a non-empty string, not {event!r}")
        if event in RESERVED_EVENTS:
            raise ProtocolError(f"socketio event name {event!r} is reserved")
        if ack_id is not None and (not isinstance(ack_id, int) or isinstance(ack_id, bool) or not 0 <= ack_id <= MAX_ACK_ID):
            raise ProtocolError(f"socketio ack id must be an int from 0 to 2**53 - 1, not {ack_id!r}")
        return self._encode(EVENT, [event, *args], ack_id)

    def call(self, event: str, *args: Any) -> tuple[int, list[Outgoing]]:
        """Emit ``event`` asking for an ack: ``(ack_id, messages)``; the ack arrives as ``Reply(ack_id, ...)``."""
        ack_id = next(self._ack_ids)
        messages = self.emit(event, *args, ack_id=ack_id)
        self._pending.add(ack_id)
        return ack_id, messages

    def pending_calls(self) -> list[int]:
        """Ack ids of the calls still waiting for their ack."""
        return sorted(self._pending)

    def cancel_call(self, call_id: Any) -> list[Outgoing]:
        """Forget call ``call_id`` (a late ack becomes a ``Report``); Socket.IO has no message that cancels one."""
        self._pending.discard(call_id)
        return []

    def acknowledge(
        self, token: Any, value: Any = None, *, positive: bool = True, error: BaseException | None = None, handled: bool = True
    ) -> list[Outgoing]:
        """Answer an event's ack token with ``value``.

        A tuple is sent as several ack arguments, ``None`` as none, anything else as one argument
        (so a list stays one argument; send ``(None,)`` for an explicit null). Nothing is sent when a
        handler raised (``error``) or none ran (``handled=False``): socket.io-client sends no ack when
        the listener throws or is missing, and the server's ack times out. A token from an earlier
        connection sends nothing (its session is gone). ``positive`` is meaningless in Socket.IO.
        """
        if not isinstance(token, AckToken):
            raise ProtocolError(f"not a socketio ack token: {token!r}")
        if token.connection != self._connection or error is not None or not handled:
            return []
        args = list(value) if isinstance(value, tuple) else [] if value is None else [value]
        return self._encode(ACK, args, token.id, namespace=token.namespace)

    def _encode(self, kind: int, data: list[Any], ack_id: int | None, namespace: str | None = None) -> list[Outgoing]:
        """A Socket.IO packet as Engine.IO messages: the text frame, then its binary attachments."""
        text, attachments = encode_packet(kind, data, namespace=self.namespace if namespace is None else namespace, ack_id=ack_id)
        return [_EIO_MESSAGE + text, *attachments]


def _is_milliseconds(value: object) -> TypeGuard[int | float]:
    """A finite, non-negative number of milliseconds (``pingInterval``, ``pingTimeout``); a bool is not one."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf
