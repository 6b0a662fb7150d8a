"""The sans-I/O protocol slot: what a protocol on top of WebSocket is to nbsocket.

A :class:`Protocol` does no I/O and knows no threads or loops. The runtime
feeds it what happens on the socket (it opened, a message arrived, time
passed) and carries out what it answers:

* ``start(now)`` when a connection opens (first time and after every
  reconnect): the handshake messages to send. Per-connection state resets here;
  subscriptions are kept, and re-sent once the handshake is done.
* ``receive(body, now)`` for every message received: a list of *actions*
  (below), in order.
* ``poll(now)`` when ``next_deadline()`` has passed (client heart-beats,
  keep-alive checks): more actions.
* verbs (``emit``, ``call``, ``notify``, ``subscribe``, ``unsubscribe``,
  ``publish``, ``acknowledge``): the messages that carry them out. A protocol
  implements the verbs that make sense for it; the others raise
  :class:`~nbsocket.errors.ProtocolError`.
* ``cancel_call(call_id)`` when the runtime gives up on a call (below).

Calls across reconnects follow one rule, kept by the runtime: a call whose
messages were not written yet waits in the outbox and is sent on the next
connection, once its handshake is done; a call written on a connection that is
then lost fails at once (``SocketClosedError`` naming that connection). The
runtime reports every call it abandons with ``cancel_call``: lost with its
connection, given up by its caller (timeout), or still waiting when the socket
closes for good. So a protocol keeps its pending calls across ``start()``
(forgetting one is ``cancel_call``'s job) and keeps call ids unique for its
whole life, so that a late reply is never taken for a newer call's.

Outgoing messages are ``str`` (a text frame) or ``bytes`` (a binary frame).

Actions returned by ``receive``/``poll``:

=================  ===============================================================
``Send``           write this now, ahead of queued messages (pong, ack, resubscribe)
``Deliver``        an application message: becomes a ``WsEvent`` (topic, data, error)
``Reply``          the answer to a ``call`` (or a receipt): resolves the caller
``Ready``          the handshake is done: ``connect`` may return
``Refused``        the server refused the handshake: ``connect`` raises its reason
``Close``          the protocol wants the socket closed (heart-beat lost, fatal error)
``Malformed``      a message that could not be parsed: kept in the frame with its error
``Report``         the server said something wrong that concerns no handler (a reply to an unknown
                   id, a broker ERROR): recorded in ``conn.errors``
``Housekeeping``   a protocol message consumed here (ping, ack, receipt...): transcript only
=================  ===============================================================
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from ...errors import ProtocolError

__all__ = [
    "Action",
    "Close",
    "Deliver",
    "Housekeeping",
    "Malformed",
    "Outgoing",
    "Protocol",
    "Ready",
    "Refused",
    "Reply",
    "Report",
    "Send",
]

Outgoing = str | bytes
"""One WebSocket message a protocol wants sent: ``str`` is a text frame, ``bytes`` a binary frame."""


@dataclasses.dataclass(frozen=True)
class Send:
    """Write ``payload`` now, ahead of the messages waiting in the outbox."""

    payload: Outgoing


@dataclasses.dataclass(frozen=True)
class Deliver:
    """An application message for the handlers and the live frame.

    ``topic`` names it (Socket.IO event, JSON-RPC method, GraphQL subscription id,
    STOMP destination); ``data`` is its payload; ``error`` a parse or remote
    error (then ``data`` may be ``None``). ``ack`` is an opaque token the
    runtime passes back to :meth:`Protocol.acknowledge` (Socket.IO events that
    want an ack, STOMP messages under ``ack="client"``); ``None`` when the
    message needs no ack. ``headers`` carries protocol metadata worth keeping
    (STOMP headers, Socket.IO namespace).
    """

    topic: str | None
    data: Any
    error: str | None = None
    ack: Any = None
    headers: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class Reply:
    """The answer to a request with ``id`` (a ``call``, or a receipt).

    ``error`` is ``None`` on success; otherwise a dict with at least
    ``message`` (and ``code``/``data`` where the protocol has them): the
    runtime raises :class:`~nbsocket.errors.RemoteError` from it.
    """

    id: Any
    value: Any = None
    error: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class Ready:
    """The protocol handshake is done (``info``: what the server said, e.g. a session id)."""

    info: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Refused:
    """The server refused the handshake; ``reason`` is its own words.

    ``data`` is what the server sent along with the refusal, beyond its words
    (Socket.IO ``connect_error`` data, a legacy GraphQL ``connection_error``
    payload): ``connect`` raises ``ConnectError`` with it as ``data``.
    """

    reason: str
    code: int | None = None
    data: Any = None


@dataclasses.dataclass(frozen=True)
class Close:
    """Close the socket with ``code`` and ``reason`` (the runtime reconnects as its policy says)."""

    code: int = 1000
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class Malformed:
    """A message the protocol could not parse: kept (frame row with ``error``), never fatal."""

    error: str
    topic: str | None = None


@dataclasses.dataclass(frozen=True)
class Report:
    """Something the server sent that went wrong but concerns no handler and no waiting caller.

    A reply to an id no call is waiting for (never issued, already answered, or
    its caller gave up), a broker ERROR about a frame: recorded in
    ``conn.errors`` as ``error`` (a short name, e.g. ``"UnknownReply"``) and
    ``message``; the message itself is in the transcript. Never raised.
    """

    error: str
    message: str


@dataclasses.dataclass(frozen=True)
class Housekeeping:
    """A protocol message consumed by the protocol itself; ``what`` names it for the transcript."""

    what: str


Action = Send | Deliver | Reply | Ready | Refused | Close | Malformed | Report | Housekeeping


class Protocol:
    """Base class of application protocols (sans-I/O). Subclass it and register with ``nbs.register_protocol``.

    ``name`` is what ``connect(protocol=...)`` takes; ``subprotocols`` are
    offered in the WebSocket handshake. ``__init__`` takes the protocol's own
    ``connect`` options as keywords and must refuse unknown or bad ones with
    :class:`~nbsocket.errors.InvalidOptionError` before any I/O.
    ``secret_options`` names options whose values are secrets (redacted).
    """

    name: ClassVar[str] = ""
    subprotocols: ClassVar[tuple[str, ...]] = ()
    secret_options: ClassVar[tuple[str, ...]] = ()
    handler_replies: ClassVar[bool] = False
    """True when a ``Deliver``'s ``ack`` token is answered with the handlers' return value (Socket.IO acks, JSON-RPC requests)."""
    read_undecoded: ClassVar[bool] = False
    """True when text frames must reach :meth:`receive` as undecoded bytes (STOMP bodies need not be UTF-8)."""

    def __init__(self, **options: Any) -> None:
        if options:
            from ...errors import InvalidOptionError

            raise InvalidOptionError(f"protocol {self.name or type(self).__name__!r} takes no option {min(options)!r}")

    # --- connection lifecycle ---------------------------------------------------

    def prepare_url(self, url: str) -> str:
        """The URL to open for ``url`` (Socket.IO adds its path and query); plain protocols return it as is."""
        return url

    def start(self, now: float) -> list[Outgoing]:
        """A connection just opened: reset per-connection state, return the handshake messages."""
        return []

    @property
    def ready(self) -> bool:
        """True once the handshake of the current connection is done."""
        return True

    def receive(self, body: str | bytes, now: float) -> list[Action]:
        """One received message in, actions out."""
        raise NotImplementedError

    def next_deadline(self) -> float | None:
        """When ``poll`` must next run (same clock as ``now``), or ``None``."""
        return None

    def poll(self, now: float) -> list[Action]:
        """Time passed: heart-beats to send, or a ``Close`` when the peer went quiet."""
        return []

    def closed(self) -> None:
        """The connection closed; pending per-connection state may be dropped."""

    # --- verbs (a protocol implements those that make sense for it) -------------

    def _unsupported(self, verb: str) -> ProtocolError:
        return ProtocolError(f"protocol {self.name!r} has no {verb}()")

    def emit(self, event: str, *args: Any, ack_id: Any = None) -> list[Outgoing]:
        """Messages that send event ``event`` with ``args`` (and ask for an ack when ``ack_id`` is given)."""
        raise self._unsupported("emit")

    def call(self, *args: Any, **kwargs: Any) -> tuple[Any, list[Outgoing]]:
        """A request expecting one reply: ``(id, messages)``; the reply comes back as ``Reply(id, ...)``.

        The id must be new for the protocol's whole life (not only for this
        connection): the messages may be written on a later connection, and a
        late reply to an abandoned call must not match a newer one.
        """
        raise self._unsupported("call")

    def cancel_call(self, call_id: Any) -> list[Outgoing]:
        """The runtime gave up on call ``call_id``: forget it; return messages that tell the server, if any.

        Called when its caller stopped waiting (timeout, interrupt), when it was
        written on a connection that was lost (its reply can never come), and
        when the socket closed for good before it was sent. Messages returned
        are sent only while a connection is open and the call had reached the
        server; otherwise they are dropped. A late reply to a forgotten call is a
        ``Report``, never a ``Reply`` to a newer call.
        """
        return []

    def notify(self, *args: Any, **kwargs: Any) -> list[Outgoing]:
        """A message that expects no reply."""
        raise self._unsupported("notify")

    def subscribe(self, *args: Any, **kwargs: Any) -> tuple[Any, str, list[Outgoing]]:
        """Start a subscription: ``(id, topic, messages)``; its messages arrive as ``Deliver(topic=topic)``.

        The protocol remembers it and re-sends it (as ``Send`` actions) once a
        later connection's handshake is done, in the order subscribed.
        """
        raise self._unsupported("subscribe")

    def unsubscribe(self, sub_id: Any) -> list[Outgoing]:
        """Stop subscription ``sub_id`` and forget it."""
        raise self._unsupported("unsubscribe")

    def publish(self, *args: Any, **kwargs: Any) -> list[Outgoing]:
        """Publish to a destination (STOMP SEND)."""
        raise self._unsupported("publish")

    def acknowledge(
        self, token: Any, value: Any = None, *, positive: bool = True, error: BaseException | None = None, handled: bool = True
    ) -> list[Outgoing]:
        """Answer a delivered message's ``ack`` token: the messages that carry the answer.

        Two callers: the runtime, for protocols with ``handler_replies`` (a
        Socket.IO event asking for an ack, a JSON-RPC request), once every
        handler ran for the message; and the user (``event.ack()``/``nack()``,
        ``conn.acknowledge``: STOMP ACK/NACK).

        * ``value``: what the handlers returned (the last non-``None`` value), or the user's value;
        * ``positive``: False for a negative answer the user asked for (STOMP NACK, a JSON-RPC error);
        * ``error``: the exception a handler raised for this message (the first one), else ``None``;
          answer with an error the protocol can express, never with a traceback;
        * ``handled``: False when no handler ran for the message (none is registered), so
          nobody had a chance to answer (JSON-RPC: "Method not found").
        """
        raise self._unsupported("acknowledge")
