"""Socket.IO v4 over Engine.IO v4 (websocket transport only), as a sans-I/O :class:`Protocol`.

What it does, message by message:

* Engine.IO ``0{sid,pingInterval,pingTimeout,maxPayload}`` (open) -> ``Send`` the Socket.IO CONNECT
  for our namespace (``40``, ``40/ns,`` and the ``auth`` JSON when given).
  ``40{"sid":..}`` for our namespace -> ``Ready``; ``44{"message":..}`` (connect_error) -> ``Refused``.
* Engine.IO ping ``2`` -> ``Send("3")`` + ``Housekeeping("ping")``. Any message from the server resets
  the keep-alive clock; when nothing was heard for ``pingInterval + pingTimeout`` ``poll`` answers
  ``Close(1001, ...)`` (see ``next_deadline``).
* Engine.IO close ``1`` and Socket.IO DISCONNECT ``41`` for our namespace -> ``Close(1000, ...)``: the
  session is over on the server side, so the socket closes and the runtime's reconnect policy decides
  (a ``disconnect`` event is *not* delivered to handlers).
* EVENT ``42[name, *args]`` (with ``/ns,`` and an ack id) -> ``Deliver(topic=name, data=..., ack=...,
  headers={"namespace": ns})``; ``data`` is the single argument, the list of them, or ``None``.
  ``ack`` is an :class:`AckToken` when the server asked for an ack, for :meth:`SocketIO.acknowledge`.
* ACK ``43<id>[values]`` -> ``Reply(id, value)`` (single value, list of values, or ``None``).
* BINARY_EVENT ``45<n>-`` / BINARY_ACK ``46<n>-`` are held until their ``n`` binary frames arrived;
  ``{"_placeholder": true, "num": k}`` becomes the k-th frame's ``bytes``, then Deliver/Reply as above.
* Packets for other namespaces than ours are ignored (``Housekeeping``): this object joins one namespace,
  and a server never has a reason to address one the client did not join.
* Anything unparsable (bad JSON, unknown packet type, attachment count mismatch, a binary frame nobody
  announced) -> ``Malformed(error)``; ``receive`` never raises.

Framing is written here rather than borrowed from python-socketio's ``socketio.packet.Packet``: the
codec is ~100 lines, it keeps the runtime free of a python-socketio/python-engineio dependency, and
``Packet.decode`` is lenient where nbsocket must report (a trailing garbage id, placeholders out of
range, mismatched attachment counts raise ``ValueError``/``IndexError`` or pass silently), whereas
here every such case becomes a ``Malformed`` with a precise reason. python-socketio is used only by
the tests, as the real server this module is checked against.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ...errors import EncodeError, InvalidOptionError, InvalidURLError, ProtocolError
from .base import Action, Close, Deliver, Housekeeping, Malformed, Outgoing, Protocol, Ready, Refused, Reply, Send

__all__ = ["RESERVED_EVENTS", "AckToken", "SocketIO"]

# Engine.IO v4 packet types (first character of a text frame)
_EIO_OPEN, _EIO_CLOSE, _EIO_PING, _EIO_PONG, _EIO_MESSAGE, _EIO_UPGRADE, _EIO_NOOP = "0123456"
# Socket.IO v5 packet types (first character after the Engine.IO "4")
_CONNECT, _DISCONNECT, _EVENT, _ACK, _CONNECT_ERROR, _BINARY_EVENT, _BINARY_ACK = range(7)
_PACKET_NAMES = ("CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK")

_MAX_ATTACHMENTS = 10_000
"""More attachments than this in one packet is treated as malformed (a bound on what is buffered)."""

RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"})
"""Event names the Socket.IO client API reserves; ``emit``/``call`` refuse them as the JS client does."""


@dataclasses.dataclass(frozen=True)
class AckToken:
    """What ``Deliver.ack`` carries for an event the server sent with an ack id.

    ``connection`` numbers the connection it arrived on: an ack id means nothing to a later session, so
    acknowledging a token from an earlier connection sends nothing.
    """

    namespace: str
    id: int
    connection: int


@dataclasses.dataclass
class _Packet:
    """One decoded Socket.IO packet (``data`` still holds placeholders while attachments are missing)."""

    type: int
    namespace: str
    id: int | None
    data: Any
    attachments: int = 0
    received: list[bytes] = dataclasses.field(default_factory=list)


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
                json.dumps(auth, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise InvalidOptionError(f"socketio auth must be JSON-serialisable: {exc}") from None
        self.auth = auth
        if not isinstance(path, str) or not path.strip("/"):
            raise InvalidOptionError(f"socketio path must be a non-empty URL path such as '/socket.io/', not {path!r}")
        self.path = "/" + path.strip("/") + "/"
        self._ack_ids = itertools.count(1)  # kept across reconnects so a stale ack never matches a new call
        self._connection = 0
        self._reset(now=None)

    def _reset(self, now: float | None) -> None:
        """Forget everything about the current connection (a new one starts from the Engine.IO open)."""
        self._ready = False
        self._engine: dict[str, Any] = {}
        self._heartbeat: float | None = None  # pingInterval + pingTimeout, seconds, once known
        self._last_heard = now
        self._partial: _Packet | None = None

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
        """A socket opened: nothing to send yet, the CONNECT goes out once the server's open packet arrives."""
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
        try:
            if isinstance(body, (bytes, bytearray, memoryview)):
                return self._receive_attachment(bytes(body))
            actions: list[Action] = []
            if self._partial is not None:
                partial, self._partial = self._partial, None
                actions.append(Malformed(
                    f"{_PACKET_NAMES[partial.type]} announced {partial.attachments} binary attachment(s) "
                    f"but a text message arrived after {len(partial.received)}"
                ))
            return actions + self._receive_engine(body)
        except _Bad as exc:
            return [Malformed(str(exc), topic=exc.topic)]

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
        raise _Bad(f"unknown Engine.IO packet type {kind!r}" if kind else "empty Engine.IO packet")

    def _receive_open(self, rest: str) -> list[Action]:
        info = _loads(rest, "Engine.IO open packet")
        if not isinstance(info, dict) or not isinstance(info.get("sid"), str):
            raise _Bad("Engine.IO open packet without a sid")
        interval, timeout = info.get("pingInterval"), info.get("pingTimeout")
        if not all(isinstance(v, (int, float)) and v >= 0 for v in (interval, timeout)):
            raise _Bad("Engine.IO open packet without numeric pingInterval/pingTimeout")
        self._engine = info
        self._heartbeat = (interval + timeout) / 1000
        return [Send(self._connect_packet()), Housekeeping(f"engine.io open sid={info['sid']}")]

    def _connect_packet(self) -> str:
        packet = _EIO_MESSAGE + str(_CONNECT) + ("" if self.namespace == "/" else self.namespace + ",")
        return packet + (_dumps(self.auth) if self.auth is not None else "")

    def _receive_socket(self, text: str) -> list[Action]:
        packet = _decode(text)
        if packet.namespace != self.namespace:
            return [Housekeeping(f"{_PACKET_NAMES[packet.type]} for namespace {packet.namespace} ignored")]
        if packet.attachments:
            self._partial = packet
            return [Housekeeping(f"{_PACKET_NAMES[packet.type]} header, awaiting {packet.attachments} attachment(s)")]
        return self._complete(packet)

    def _receive_attachment(self, data: bytes) -> list[Action]:
        packet = self._partial
        if packet is None:
            raise _Bad("binary message that no BINARY_EVENT/BINARY_ACK announced")
        packet.received.append(data)
        if len(packet.received) < packet.attachments:
            return [Housekeeping(f"attachment {len(packet.received)}/{packet.attachments}")]
        self._partial = None
        packet.data = _resolve_placeholders(packet.data, packet.received, _topic_of(packet))
        return self._complete(packet)

    def _complete(self, packet: _Packet) -> list[Action]:
        """A whole packet for our namespace (attachments resolved): the action it stands for."""
        kind, data = packet.type, packet.data
        if kind in (_EVENT, _BINARY_EVENT):
            topic = data[0]
            ack = None if packet.id is None else AckToken(self.namespace, packet.id, self._connection)
            return [Deliver(topic=topic, data=_unpack_args(data[1:]), ack=ack, headers={"namespace": self.namespace})]
        if kind in (_ACK, _BINARY_ACK):
            return [Reply(packet.id, value=_unpack_args(data))]
        if kind == _CONNECT:
            self._ready = True
            info = {"namespace": self.namespace, "engine_sid": self._engine.get("sid")}
            info.update(data if isinstance(data, dict) else {})
            for key, name in (("pingInterval", "ping_interval"), ("pingTimeout", "ping_timeout"), ("maxPayload", "max_payload")):
                if key in self._engine:
                    info[name] = self._engine[key]
            return [Ready(info)]
        if kind == _CONNECT_ERROR:
            if isinstance(data, dict):
                reason = str(data.get("message", data))
            else:
                reason = str(data) if data is not None else "connection refused"
            return [Refused(f"socket.io connect_error on {self.namespace}: {reason}")]
        # DISCONNECT
        self._ready = False
        self._heartbeat = None
        return [Close(1000, f"socket.io server disconnected namespace {self.namespace}")]

    # --- verbs --------------------------------------------------------------------

    def emit(self, event: str, *args: Any, ack_id: Any = None) -> list[Outgoing]:
        """Messages that send ``event`` with ``args``; bytes anywhere in ``args`` go as binary attachments."""
        if not isinstance(event, str) or not event:
            raise ProtocolError(f"socketio event name must be a non-empty string, not {event!r}")
        if event in RESERVED_EVENTS:
            raise ProtocolError(f"socketio event name {event!r} is reserved")
        if ack_id is not None and (not isinstance(ack_id, int) or isinstance(ack_id, bool) or ack_id < 0):
            raise ProtocolError(f"socketio ack id must be a non-negative int, not {ack_id!r}")
        return self._encode(_EVENT, [event, *args], ack_id)

    def call(self, event: str, *args: Any) -> tuple[int, list[Outgoing]]:
        """Emit ``event`` asking for an ack: ``(ack_id, messages)``; the ack arrives as ``Reply(ack_id, ...)``."""
        ack_id = next(self._ack_ids)
        return ack_id, self.emit(event, *args, ack_id=ack_id)

    def acknowledge(
        self, token: Any, value: Any = None, *, positive: bool = True, error: BaseException | None = None, handled: bool = True
    ) -> list[Outgoing]:
        """Answer an event's ack token with ``value``.

        A tuple is sent as several ack arguments, ``None`` as none, anything else as one argument
        (so a list stays one argument; send ``(None,)`` for an explicit null). A token from an earlier
        connection sends nothing (its session is gone). ``positive`` is meaningless in Socket.IO.
        ``error`` is what a handler of the event raised and ``handled`` is False when no handler ran
        (the runtime passes both).
        """
        if not isinstance(token, AckToken):
            raise ProtocolError(f"not a socketio ack token: {token!r}")
        if token.connection != self._connection:
            return []
        args = list(value) if isinstance(value, tuple) else [] if value is None else [value]
        return self._encode(_ACK, args, token.id, namespace=token.namespace)

    def _encode(self, kind: int, data: list[Any], ack_id: int | None, namespace: str | None = None) -> list[Outgoing]:
        """A Socket.IO packet as Engine.IO messages: the text frame, then its binary attachments."""
        attachments: list[bytes] = []
        data = _extract_binary(data, attachments)
        namespace = self.namespace if namespace is None else namespace
        head = _EIO_MESSAGE
        if attachments:
            head += str(_BINARY_EVENT if kind == _EVENT else _BINARY_ACK) + f"{len(attachments)}-"
        else:
            head += str(kind)
        head += "" if namespace == "/" else namespace + ","
        head += "" if ack_id is None else str(ack_id)
        try:
            text = head + _dumps(data)
        except (TypeError, ValueError) as exc:
            raise EncodeError(f"socketio arguments are not JSON-serialisable: {exc}") from None
        return [text, *attachments]


# --- framing helpers ---------------------------------------------------------------


class _Bad(Exception):
    """A packet that cannot be parsed (becomes ``Malformed``); ``topic`` when the event name was readable."""

    def __init__(self, message: str, topic: str | None = None) -> None:
        super().__init__(message)
        self.topic = topic


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _Bad(f"bad JSON in {what}: {exc}") from None


def _decode(text: str) -> _Packet:
    """Parse a Socket.IO packet: ``<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]``."""
    if not text or not text[0].isdigit() or int(text[0]) >= len(_PACKET_NAMES):
        raise _Bad(f"unknown Socket.IO packet type {text[:1]!r}" if text else "empty Socket.IO packet")
    kind, pos = int(text[0]), 1
    attachments = 0
    if kind in (_BINARY_EVENT, _BINARY_ACK):
        dash = text.find("-", pos)
        count = text[pos:dash] if dash > 0 else ""
        if not count.isdigit() or int(count) > _MAX_ATTACHMENTS:
            raise _Bad(f"{_PACKET_NAMES[kind]} without a valid attachment count")
        attachments, pos = int(count), dash + 1
    namespace = "/"
    if text.startswith("/", pos):
        comma = text.find(",", pos)
        end = len(text) if comma < 0 else comma
        namespace = text[pos:end].split("?", 1)[0]
        pos = end + 1
    digits = pos
    while digits < len(text) and text[digits].isdigit():
        digits += 1
    ack_id = int(text[pos:digits]) if digits > pos else None
    data = _loads(text[digits:], f"{_PACKET_NAMES[kind]} packet") if digits < len(text) else None
    packet = _Packet(kind, namespace, ack_id, data, attachments)
    _check(packet)
    return packet


def _check(packet: _Packet) -> None:
    """Refuse packets whose shape does not match their type."""
    kind, data, name = packet.type, packet.data, _PACKET_NAMES[packet.type]
    if kind in (_EVENT, _BINARY_EVENT):
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise _Bad(f"{name} payload must be a list starting with the event name")
    elif kind in (_ACK, _BINARY_ACK):
        if packet.id is None:
            raise _Bad(f"{name} without an ack id")
        if not isinstance(data, list):
            raise _Bad(f"{name} payload must be a list of values")
    if packet.attachments:
        found = _count_placeholders(data)
        if found != packet.attachments:
            raise _Bad(f"{name} announces {packet.attachments} attachment(s) but holds {found} placeholder(s)", _topic_of(packet))


def _topic_of(packet: _Packet) -> str | None:
    if packet.type in (_EVENT, _BINARY_EVENT) and isinstance(packet.data, list) and packet.data:
        return packet.data[0] if isinstance(packet.data[0], str) else None
    return None


def _is_placeholder(value: Any) -> bool:
    return isinstance(value, dict) and value.get("_placeholder") is True and "num" in value


def _count_placeholders(value: Any) -> int:
    if _is_placeholder(value):
        return 1
    if isinstance(value, list):
        return sum(_count_placeholders(item) for item in value)
    if isinstance(value, dict):
        return sum(_count_placeholders(item) for item in value.values())
    return 0


def _resolve_placeholders(value: Any, attachments: list[bytes], topic: str | None) -> Any:
    """``{"_placeholder": true, "num": k}`` -> ``attachments[k]``, everywhere in ``value``."""
    if _is_placeholder(value):
        num = value["num"]
        if not isinstance(num, int) or isinstance(num, bool) or not 0 <= num < len(attachments):
            raise _Bad(f"attachment placeholder num={num!r} out of range (have {len(attachments)})", topic)
        return attachments[num]
    if isinstance(value, list):
        return [_resolve_placeholders(item, attachments, topic) for item in value]
    if isinstance(value, dict):
        return {key: _resolve_placeholders(item, attachments, topic) for key, item in value.items()}
    return value


def _extract_binary(value: Any, attachments: list[bytes]) -> Any:
    """Replace bytes-like values with placeholders, collecting them in ``attachments`` (tuples become lists)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        attachments.append(bytes(value))
        return {"_placeholder": True, "num": len(attachments) - 1}
    if isinstance(value, (list, tuple)):
        return [_extract_binary(item, attachments) for item in value]
    if isinstance(value, dict):
        return {key: _extract_binary(item, attachments) for key, item in value.items()}
    return value


def _unpack_args(args: list[Any]) -> Any:
    """Socket.IO argument lists as nbsocket data: none -> ``None``, one -> itself, more -> the list."""
    if not args:
        return None
    return args[0] if len(args) == 1 else list(args)
