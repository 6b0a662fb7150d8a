"""STOMP 1.2 (and 1.1/1.0) over WebSocket as a sans-I/O :class:`~.base.Protocol`.

What it is for: ``connect(..., protocol="stomp")`` against a message broker's
STOMP-over-WebSocket endpoint (RabbitMQ Web-STOMP, ActiveMQ, Artemis, Spring's
broker relay). The runtime feeds received WebSocket messages to
:meth:`STOMP.receive` and carries out the actions it returns; notebooks deal in
destinations, subscriptions and bodies, never in frames, heart-beats or ids.

The frames themselves (parsing, encoding, escaping, bodies) are in
:mod:`.stomp_frames`. Heart-beats: we offer ``heart-beat:cx,cy``, the server
answers ``sx,sy``; we send an EOL every ``max(cx, sy)`` ms and give up on the
server after ``HEARTBEAT_GRACE * max(sx, cy)`` ms of silence (each 0 means "none").

Brokers may send frames with binary bodies in *text* WebSocket messages
(RabbitMQ Web-STOMP does unless ``web_stomp.ws_frame = binary``), which are
then not valid UTF-8: the runtime should read STOMP sockets undecoded
(websockets' ``recv(decode=False)``) and pass the bytes to :meth:`STOMP.receive`.

ERROR frames after CONNECTED are never handler events (they are about the
connection or a frame we sent, not messages on a destination): each is a
``Report("StompError")`` for ``conn.errors``, and the frame it refuses is found
as follows. Every SUBSCRIBE asks for a receipt, so frames awaiting a receipt
(SUBSCRIBEs and ``publish(..., receipt=True)``) are known in the order written.
An ERROR with ``receipt-id`` is about that frame. RabbitMQ sends its refusals
(an invalid destination) without ``receipt-id`` and keeps the connection open;
since a broker handles a connection's frames in order, such an ERROR is about
the oldest frame still awaiting its receipt, unless that frame had no receipt
(then the oldest one is a later frame): so it is taken to be about the oldest
one only when the ERROR names no destination in quotes or names that frame's
(RabbitMQ quotes the one it refuses). A refused SEND's wait fails at once with
``RemoteError`` (message: the broker's; ``data``: the ERROR's headers); a refused
SUBSCRIBE ends its subscription (inactive, never re-sent).
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import re
from typing import Any, ClassVar

from ...errors import InvalidOptionError, ProtocolError
from .base import Action, Close, Deliver, Housekeeping, Malformed, Outgoing, Protocol, Ready, Refused, Reply, Report, Send
from .stomp_frames import StompFrame, decode_body, encode_body, encode_frame, parse_frames

__all__ = ["ACK_MODES", "HEARTBEAT_GRACE", "HEARTBEAT_LOST_CLOSE_CODE", "STOMP", "StompAck"]

ACK_MODES = ("auto", "client", "client-individual")
"""Subscription ack modes; under ``client``/``client-individual`` each message carries an ack token."""

HEARTBEAT_GRACE = 2.0
"""How many of the server's heart-beat intervals may pass without data before the connection is given up."""

HEARTBEAT_LOST_CLOSE_CODE = 1001
"""WebSocket close code used when the server's heart-beats stop (the runtime reconnects as its policy says)."""


@dataclasses.dataclass(frozen=True)
class StompAck:
    """The ack token of a MESSAGE received under ``ack="client"``/``"client-individual"``.

    Opaque to the runtime: it hands it back to :meth:`STOMP.acknowledge`.
    ``connection`` numbers the connection it arrived on: a token from an
    earlier connection cannot be acknowledged (the broker redelivers the message).
    """

    ack_id: str | None
    message_id: str | None
    subscription: str | None
    connection: int


# --- the protocol -------------------------------------------------------------------


@dataclasses.dataclass
class _Subscription:
    destination: str
    ack: str
    headers: dict[str, str]


@dataclasses.dataclass(frozen=True)
class _AwaitingReceipt:
    """A frame sent with a ``receipt`` header and not confirmed yet: what an ERROR may be about."""

    destination: str
    sub_id: str | None  # the subscription of a SUBSCRIBE; None for a SEND


_QUOTED = re.compile(r"'([^'\n]+)'")
"""A quoted name in an ERROR's text (RabbitMQ quotes the destination it refuses)."""


def _heartbeat_option(value: Any) -> tuple[int, int]:
    try:
        send_ms, want_ms = (int(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidOptionError(f"heartbeat must be two integers (ms we can send, ms we want), not {value!r}") from None
    if send_ms < 0 or want_ms < 0:
        raise InvalidOptionError(f"heartbeat intervals must be >= 0 ms, not {value!r}")
    return send_ms, want_ms


class STOMP(Protocol):
    """STOMP 1.2 client over WebSocket (sans-I/O).

    Options (``connect(..., protocol="stomp", ...)``): ``login``, ``passcode``
    (secret), ``host`` (virtual host, ``"/"``), ``heartbeat=(10000, 10000)``
    (ms we can send, ms we want from the server; ``(0, 0)`` turns heart-beats
    off), ``ack="auto"`` (default ack mode of subscriptions).

    Verbs: :meth:`subscribe`, :meth:`unsubscribe`, :meth:`publish`,
    :meth:`publish_with_receipt` (also reachable as :meth:`call`),
    :meth:`acknowledge`.
    """

    name: ClassVar[str] = "stomp"
    subprotocols: ClassVar[tuple[str, ...]] = ("v12.stomp", "v11.stomp", "v10.stomp")
    secret_options: ClassVar[tuple[str, ...]] = ("passcode",)
    read_undecoded: ClassVar[bool] = True

    def __init__(
        self,
        *,
        login: str | None = None,
        passcode: str | None = None,
        host: str = "/",
        heartbeat: tuple[int, int] = (10000, 10000),
        ack: str = "auto",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        for option, value in (("login", login), ("passcode", passcode)):
            if value is not None and not isinstance(value, str):
                raise InvalidOptionError(f"STOMP {option} must be a str or None, not {type(value).__name__}")
        if not isinstance(host, str) or not host:
            raise InvalidOptionError(f"STOMP host must be a non-empty str (the virtual host), not {host!r}")
        for option, value in (("login", login), ("passcode", passcode), ("host", host)):
            if value is not None and any(c in value for c in "\r\n\x00"):  # CONNECT headers are never escaped
                raise InvalidOptionError(f"STOMP {option} cannot hold a line break or NUL (the CONNECT frame has no escapes)")
        if ack not in ACK_MODES:
            raise InvalidOptionError(f"STOMP ack must be one of {', '.join(ACK_MODES)}, not {ack!r}")
        self.login, self.passcode, self.host, self.ack = login, passcode, host, ack
        self.heartbeat = _heartbeat_option(heartbeat)
        self._subscriptions: dict[str, _Subscription] = {}  # insertion order = subscription order
        self._awaiting: collections.OrderedDict[str, _AwaitingReceipt] = collections.OrderedDict()  # in the order written
        self._sub_ids = itertools.count(1)
        self._receipt_ids = itertools.count(1)
        self._connection = 0
        self._reset_connection(0.0)

    def _reset_connection(self, now: float) -> None:
        self._ready = False
        self.version = "1.2"
        self._send_every: float | None = None  # seconds between our heart-beats
        self._expect_every: float | None = None  # seconds between the server's heart-beats
        self._last_sent = self._last_received = now

    # --- lifecycle --------------------------------------------------------------

    def start(self, now: float) -> list[Outgoing]:
        """The CONNECT frame (credentials, virtual host, heart-beats offered)."""
        self._connection += 1
        self._reset_connection(now)
        for receipt_id in [rid for rid, what in self._awaiting.items() if what.sub_id is not None]:
            del self._awaiting[receipt_id]  # subscriptions are sent again, with new receipts, after CONNECTED
        headers = {
            "accept-version": "1.2,1.1,1.0",
            "host": self.host,
            "login": self.login,
            "passcode": self.passcode,
            "heart-beat": f"{self.heartbeat[0]},{self.heartbeat[1]}",
        }
        return [encode_frame("CONNECT", headers).decode("utf-8")]

    @property
    def ready(self) -> bool:
        """True once CONNECTED arrived on the current connection."""
        return self._ready

    def closed(self) -> None:
        """The socket closed: heart-beat timers stop; subscriptions are kept for the next connection."""
        self._ready = False
        self._send_every = self._expect_every = None

    def receive(self, body: str | bytes, now: float) -> list[Action]:
        """Every frame and heart-beat in one WebSocket message, as actions in order."""
        self._last_received = now
        items = parse_frames(body, version=self.version)
        if all(item is None for item in items):  # EOLs only (or empty): a heart-beat
            return [Housekeeping("heart-beat")]
        actions: list[Action] = []
        for item in items:
            if item is None:  # EOLs after a frame (RabbitMQ ends every frame so) are not heart-beats of their own
                continue
            if isinstance(item, Malformed):
                actions.append(item)
            else:
                actions.extend(self._on_frame(item, now))
        return actions

    def _on_frame(self, frame: StompFrame, now: float) -> list[Action]:
        headers = frame.headers
        if frame.command == "CONNECTED":
            return self._on_connected(headers, now)
        if frame.command == "MESSAGE":
            return [self._on_message(frame)]
        if frame.command == "RECEIPT":
            receipt_id = headers.get("receipt-id")
            awaited = self._awaiting.pop(receipt_id, None) if receipt_id is not None else None
            if awaited is not None and awaited.sub_id is not None:
                return [Housekeeping(f"receipt for SUBSCRIBE {awaited.sub_id} ({awaited.destination})")]
            return [Reply(receipt_id, value=headers)]
        if frame.command == "ERROR":
            return self._on_error(frame)
        return [Malformed(f"unexpected STOMP command {frame.command!r} from the server")]

    def _on_error(self, frame: StompFrame) -> list[Action]:
        headers = frame.headers
        message = headers.get("message", "")
        detail = frame.body.decode("utf-8", "replace").strip()
        reason = "; ".join(part for part in (message, detail) if part) or "ERROR frame without a message"
        if not self._ready:
            return [Refused(reason)]
        receipt_id = headers.get("receipt-id")
        if receipt_id is None:
            receipt_id = self._refused_frame(f"{message}\n{detail}")
        awaited = self._awaiting.pop(receipt_id, None) if receipt_id is not None else None
        if awaited is not None and awaited.sub_id is not None:
            refused = self._subscriptions.pop(awaited.sub_id, None) is not None
            what = f"subscription {awaited.sub_id} to {awaited.destination}" + ("" if refused else " (already cancelled)")
            return [Report("StompError", f"the broker refused {what}: {reason}")]
        if receipt_id is None:
            return [Report("StompError", f"ERROR from the broker: {reason}")]
        where = f"SEND to {awaited.destination}" if awaited is not None else "the frame"
        return [
            Reply(receipt_id, error={"message": reason, "code": None, "data": dict(headers)}),
            Report("StompError", f"the broker refused {where} (receipt {receipt_id}): {reason}"),
        ]

    def _refused_frame(self, text: str) -> str | None:
        """The receipt id of the frame an ERROR without ``receipt-id`` refuses, when that can be told (module docstring)."""
        if not self._awaiting:
            return None
        receipt_id, oldest = next(iter(self._awaiting.items()))
        named = _QUOTED.findall(text)
        if named and not any(name in oldest.destination for name in named):
            return None
        return receipt_id

    def _on_connected(self, headers: dict[str, str], now: float) -> list[Action]:
        self.version = headers.get("version", "1.0")
        if self.version not in ("1.0", "1.1", "1.2"):
            return [Refused(f"broker speaks STOMP {self.version!r}; nbsocket speaks 1.0-1.2")]
        server_send, server_want = 0, 0
        try:
            server_send, server_want = (int(v) for v in headers.get("heart-beat", "0,0").split(","))
        except ValueError:
            pass
        ours_send, ours_want = self.heartbeat
        send_ms = max(ours_send, server_want) if ours_send and server_want else 0
        expect_ms = max(server_send, ours_want) if server_send and ours_want else 0
        self._send_every = send_ms / 1000 or None
        self._expect_every = expect_ms / 1000 or None
        self._last_sent = self._last_received = now
        self._ready = True
        # Resubscriptions go out before Ready, so they precede anything the runtime releases on Ready
        # (and their receipts are awaited before those of SENDs that waited in the outbox).
        actions: list[Action] = [Send(self._subscribe_frame(sub_id, sub)) for sub_id, sub in self._subscriptions.items()]
        for receipt_id in reversed([rid for rid, what in self._awaiting.items() if what.sub_id is not None]):
            self._awaiting.move_to_end(receipt_id, last=False)
        info = {
            "version": self.version,
            "server": headers.get("server"),
            "session": headers.get("session"),
            "heart-beat": (send_ms, expect_ms),
        }
        return [*actions, Ready(info)]

    def _on_message(self, frame: StompFrame) -> Deliver:
        headers = frame.headers
        data, error = decode_body(frame.body, headers.get("content-type"))
        sub_id = headers.get("subscription")
        sub = self._subscriptions.get(sub_id) if sub_id is not None else None
        token = None
        if sub is not None and sub.ack != "auto":
            token = StompAck(headers.get("ack"), headers.get("message-id"), sub_id, self._connection)
        return Deliver(headers.get("destination"), data, error=error, ack=token, headers=headers)

    def next_deadline(self) -> float | None:
        """When we owe the server a heart-beat, or when its silence means the connection is lost."""
        deadlines = []
        if self._send_every:
            deadlines.append(self._last_sent + self._send_every)
        if self._expect_every:
            deadlines.append(self._last_received + self._expect_every * HEARTBEAT_GRACE)
        return min(deadlines) if deadlines else None

    def poll(self, now: float) -> list[Action]:
        """Send a heart-beat EOL when due; ``Close`` when the server has been silent too long."""
        if self._expect_every and now - self._last_received > self._expect_every * HEARTBEAT_GRACE:
            silent = now - self._last_received
            self._send_every = self._expect_every = None
            return [Close(HEARTBEAT_LOST_CLOSE_CODE, f"STOMP heart-beat lost: nothing from the broker for {silent:.1f} s")]
        if self._send_every and now - self._last_sent >= self._send_every:
            self._last_sent = now
            return [Send("\n")]
        return []

    # --- verbs --------------------------------------------------------------------

    def _frame(self, command: str, headers: dict[str, Any], body: bytes = b"", binary: bool = False) -> Outgoing:
        wire = encode_frame(command, headers, body, version=self.version)
        if binary:
            return wire
        try:
            return wire.decode("utf-8")
        except UnicodeDecodeError:
            return wire

    def _subscribe_frame(self, sub_id: str, sub: _Subscription) -> Outgoing:
        """A SUBSCRIBE that asks for a receipt (so a refusal can be told from an acceptance)."""
        receipt_id = f"{sub_id}@{self._connection}"
        self._awaiting[receipt_id] = _AwaitingReceipt(sub.destination, sub_id)
        headers = {**sub.headers, "id": sub_id, "destination": sub.destination, "ack": sub.ack, "receipt": receipt_id}
        return self._frame("SUBSCRIBE", headers)

    def subscribe(
        self, destination: str, ack: str | None = None, headers: dict[str, Any] | None = None
    ) -> tuple[str, str, list[Outgoing]]:
        """Subscribe to ``destination``: ``(sub_id, destination, messages)``; ``ack`` defaults to the ``ack`` option.

        Before CONNECTED no message is returned: the subscription goes out with
        the others once the handshake is done (so it is never sent twice).
        """
        if not isinstance(destination, str) or not destination:
            raise ProtocolError(f"STOMP destination must be a non-empty str, not {destination!r}")
        ack = self.ack if ack is None else ack
        if ack not in ACK_MODES:
            raise ProtocolError(f"STOMP ack must be one of {', '.join(ACK_MODES)}, not {ack!r}")
        sub_id = f"sub-{next(self._sub_ids)}"
        sub = _Subscription(destination, ack, {str(k): str(v) for k, v in (headers or {}).items()})
        self._subscriptions[sub_id] = sub
        return sub_id, destination, [self._subscribe_frame(sub_id, sub)] if self._ready else []

    def unsubscribe(self, sub_id: Any) -> list[Outgoing]:
        """UNSUBSCRIBE ``sub_id`` and forget it (nothing to send before CONNECTED or for an unknown id)."""
        if self._subscriptions.pop(sub_id, None) is None or not self._ready:
            return []
        return [self._frame("UNSUBSCRIBE", {"id": sub_id})]

    @property
    def subscriptions(self) -> dict[str, str]:
        """Active subscriptions, ``{sub_id: destination}`` in the order made."""
        return {sub_id: sub.destination for sub_id, sub in self._subscriptions.items()}

    def publish(
        self,
        destination: str,
        body: Any = None,
        headers: dict[str, Any] | None = None,
        content_type: str | None = None,
        receipt: str | None = None,
    ) -> list[Outgoing]:
        """A SEND frame to ``destination``: dict/list bodies as JSON, str as text, bytes as a binary WebSocket message.

        ``receipt`` asks the broker to confirm with a RECEIPT for that id (see :meth:`publish_with_receipt`).
        """
        if not isinstance(destination, str) or not destination:
            raise ProtocolError(f"STOMP destination must be a non-empty str, not {destination!r}")
        octets, ctype, binary = encode_body(body, content_type)
        frame_headers = {str(k): v for k, v in (headers or {}).items()}
        frame_headers.update({"destination": destination, "content-type": ctype, "receipt": receipt})
        return [self._frame("SEND", frame_headers, octets, binary)]

    def publish_with_receipt(
        self, destination: str, body: Any = None, headers: dict[str, Any] | None = None, content_type: str | None = None
    ) -> tuple[str, list[Outgoing]]:
        """A SEND that asks for a receipt: ``(receipt_id, messages)``.

        The broker's RECEIPT comes back from :meth:`receive` as
        ``Reply(receipt_id)``; an ERROR about it as ``Reply(receipt_id, error=...)``.
        The runtime waits for that reply to confirm the publish.
        """
        receipt_id = f"rcpt-{next(self._receipt_ids)}"
        messages = self.publish(destination, body, headers, content_type, receipt=receipt_id)
        self._awaiting[receipt_id] = _AwaitingReceipt(destination, None)
        return receipt_id, messages

    def cancel_call(self, call_id: Any) -> list[Outgoing]:
        """Forget the receipt ``call_id`` (the runtime gave up on it); STOMP has nothing to send for that."""
        self._awaiting.pop(call_id, None)
        return []

    def call(
        self, destination: str, body: Any = None, headers: dict[str, Any] | None = None, content_type: str | None = None
    ) -> tuple[str, list[Outgoing]]:
        """The protocol slot's request/reply verb: for STOMP, :meth:`publish_with_receipt`."""
        return self.publish_with_receipt(destination, body, headers, content_type)

    def acknowledge(
        self, token: Any, value: Any = None, *, positive: bool = True, error: BaseException | None = None, handled: bool = True
    ) -> list[Outgoing]:
        """ACK (or NACK with ``positive=False``) the message whose ``Deliver.ack`` was ``token`` (the user's call;
        ``error`` and ``handled`` do not apply: STOMP acks are never sent on the handlers' behalf)."""
        if not isinstance(token, StompAck):
            raise ProtocolError(f"not a STOMP ack token: {token!r}")
        if token.connection != self._connection or not self._ready:
            raise ProtocolError("the message arrived on an earlier connection; the broker redelivers it, ack that one")
        if not positive and self.version == "1.0":
            raise ProtocolError("STOMP 1.0 has no NACK")
        if self.version == "1.2":
            headers = {"id": token.ack_id}
        else:
            headers = {"message-id": token.message_id, "subscription": token.subscription}
        return [self._frame("ACK" if positive else "NACK", headers)]
