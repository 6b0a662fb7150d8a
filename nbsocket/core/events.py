"""What a handler receives: :class:`WsEvent` and its raw :class:`Request`.

An event acts on its socket through :class:`SocketVerbs`, the few verbs a
handler may call; the runtime's ``Connection`` provides them. The shared
``lockable`` mapping is the runtime's :class:`~nbsocket.runtime.dispatch.lockable.Lockable`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import MutableMapping
from typing import Any, Protocol

from ..errors import ProtocolError, SocketClosedError

_UTC = _dt.timezone.utc

__all__ = ["Request", "SocketVerbs", "WsEvent", "utf8_size"]


def utf8_size(text: str | bytes) -> int:
    """Size in bytes of a message body: ``bytes`` as they are, text as UTF-8 (lone surrogates counted as sent)."""
    if isinstance(text, str):
        return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return len(text)


class SocketVerbs(Protocol):
    """What an event may do to its own socket (Pode's verbs without ``-Name`` inside a handler)."""

    def send(self, message: Any) -> None: ...

    def disconnect(self, code: int = 1000, reason: str = "") -> None: ...

    def reset(self, url: str | None = None) -> None: ...


class Request:
    """The raw message as received: ``body``, ``is_binary``, ``size``, ``content_type`` and ``url``."""

    __slots__ = ("body", "content_type", "is_binary", "url")

    def __init__(self, body: str | bytes, is_binary: bool, content_type: str, url: str) -> None:
        self.body = body
        self.is_binary = is_binary
        self.content_type = content_type
        self.url = url

    @property
    def size(self) -> int:
        """Size of the body in bytes (UTF-8 for text frames)."""
        return utf8_size(self.body)

    def __repr__(self) -> str:
        kind = "binary" if self.is_binary else "text"
        return f"<Request {kind} {self.size} bytes {self.content_type} from {self.url}>"


class WsEvent:
    """One received message, as handlers see it (Pode's ``$WsEvent``).

    ``data`` is the parsed message (``None`` if parsing failed, then ``error``
    says why and ``request.body`` is intact); ``timestamp`` is the UTC time
    of receipt; ``seq`` counts the socket's messages from 1, across reconnects.
    ``send``, ``disconnect`` and ``reset`` act on the event's own socket.

    On a protocol socket (``connect(..., protocol=...)``) ``topic`` names the
    message (Socket.IO event, JSON-RPC method, GraphQL subscription id, STOMP
    destination; ``None`` on plain sockets), ``headers`` holds the protocol's
    metadata (STOMP headers, Socket.IO namespace), and ``ack()``/``nack()``
    answer a STOMP ``ack="client"`` message.
    """

    __slots__ = (
        "_timestamp",
        "_ts_ns",
        "ack_token",
        "connection",
        "data",
        "error",
        "headers",
        "lockable",
        "name",
        "reply",
        "request",
        "seq",
        "topic",
    )

    def __init__(
        self,
        name: str,
        data: Any,
        request: Request,
        seq: int,
        ts_ns: int,
        lockable: MutableMapping[Any, Any],
        error: str | None = None,
        connection: SocketVerbs | None = None,
        topic: str | None = None,
        ack_token: Any = None,
        headers: dict[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.ack_token = ack_token
        self.headers = headers
        self.reply: Any = None
        self.name = name
        self.data = data
        self.request = request
        self.seq = seq
        self._ts_ns = ts_ns
        self._timestamp: _dt.datetime | None = None
        self.lockable = lockable
        self.error = error
        self.connection = connection

    @property
    def timestamp(self) -> _dt.datetime:
        """Time of receipt, timezone-aware UTC."""
        if self._timestamp is None:
            seconds, ns = divmod(self._ts_ns, 1_000_000_000)
            self._timestamp = _dt.datetime.fromtimestamp(seconds, _UTC).replace(microsecond=ns // 1000)
        return self._timestamp

    @property
    def timestamp_ns(self) -> int:
        """Time of receipt in nanoseconds since the epoch."""
        return self._ts_ns

    @property
    def ok(self) -> bool:
        """True when the message parsed."""
        return self.error is None

    def _conn(self) -> SocketVerbs:
        if self.connection is None:
            raise SocketClosedError("this event is not attached to a socket")
        return self.connection

    def send(self, message: Any) -> None:
        """Send ``message`` on this event's socket (queued; never blocks the handler)."""
        self._conn().send(message)

    def disconnect(self, code: int = 1000, reason: str = "") -> None:
        """Close this event's socket and keep its registration (scheduled)."""
        self._conn().disconnect(code, reason)

    def reset(self, url: str | None = None) -> None:
        """Reconnect this event's socket, to ``url`` if given (scheduled)."""
        self._conn().reset(url)

    def ack(self) -> None:
        """Acknowledge this message (STOMP ``ack="client"``/``"client-individual"``; scheduled, never blocks)."""
        self._acknowledge(True)

    def nack(self) -> None:
        """Reject this message (STOMP NACK: the broker may redeliver it)."""
        self._acknowledge(False)

    def _acknowledge(self, positive: bool) -> None:
        acknowledge = getattr(self._conn(), "acknowledge", None)
        if acknowledge is None or self.ack_token is None:
            raise ProtocolError("this message has nothing to acknowledge (only protocol messages that asked for an ack do)")
        acknowledge(self, positive=positive)

    def __repr__(self) -> str:
        state = f"error={self.error!r}" if self.error else f"data={_short(self.data)}"
        topic = f" topic={self.topic!r}" if self.topic is not None else ""
        return f"<WsEvent {self.name!r} seq={self.seq}{topic} {self.timestamp.isoformat()} {state}>"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
