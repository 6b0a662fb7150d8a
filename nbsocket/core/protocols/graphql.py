"""GraphQL over WebSocket, both subprotocols, as sans-I/O :class:`~.base.Protocol` objects.

* :class:`GraphQLWS` (``protocol="graphql-ws"``) speaks ``graphql-transport-ws``, the
  protocol of the ``graphql-ws`` library (enisdenjo/graphql-ws ``PROTOCOL.md``):
  ``connection_init``/``connection_ack``, ``ping``/``pong``, ``subscribe``,
  ``next``, ``error``, ``complete``.
* :class:`~.graphql_legacy.GraphQLWSLegacy` (``protocol="graphql-ws-legacy"``, in
  :mod:`.graphql_legacy`) speaks Apollo's older ``subscriptions-transport-ws``,
  whose subprotocol is confusingly named ``graphql-ws``:
  ``connection_init``/``connection_ack``/``connection_error``, ``ka`` keep-alives,
  ``start``/``stop``, ``data``, ``error``, ``complete``.

Both share one shape:

``subscribe(query, variables=None, operation_name=None)`` -> ``(id, topic, messages)``
    Starts a subscription; ``topic`` is its id. Every result arrives as
    ``Deliver(topic=id, data=payload["data"], error=<payload["errors"] as text>)``.
    The subscription stays *active* (and is re-sent after every later
    ``connection_ack``, in the order subscribed) until one of:
    ``unsubscribe(id)`` (client), a ``complete`` from the server
    (``Housekeeping``), or an ``error`` message from the server (a final
    ``Deliver`` with ``error`` set). :meth:`GraphQLWS.is_active` and
    :meth:`GraphQLWS.active_subscriptions` tell the runtime which are still
    active after each ``receive``.
``call(query, variables=None, operation_name=None)`` -> ``(id, messages)``
    A single-result operation (query, mutation). Its first result is kept; the
    server's ``complete`` resolves it with ``Reply(id, value=data)``, or
    ``Reply(id, error={"message", "code", "data": {"errors", "data"}})`` when the
    result had GraphQL errors or the server sent ``error``.
    :meth:`GraphQLWS.cancel_call` forgets a call the runtime gave up on.

Subscriptions started before the handshake is done return no messages: they are
sent (as ``Send`` actions, right after ``Ready``) once ``connection_ack`` arrives,
because a server closes with 4401 on an operation sent before its ack, and they
are sent again after every later ack. Their messages belong to the connection
they were made on: a reconnect drops the unsent ones from the outbox, since the
protocol re-sends subscriptions itself (a second ``subscribe`` with the same id
would make the server close with 4409). A call's message is always returned and
waits in the outbox like any other (the runtime writes the outbox only once the
handshake is done); calls stay pending across reconnects until they are answered
or the runtime cancels them (it does for calls written on a lost connection).

A ``next``, ``error`` or ``complete`` for an id no operation has (never used,
already ended by the server, or a call whose caller gave up) is a
``Report("UnknownReply")``; for a subscription the client itself ended it is
``Housekeeping``, as the protocol allows messages in flight after a client's
``complete``. Messages are checked as graphql-ws's ``validateMessage`` checks
them (ids are non-empty strings; ``next`` payloads objects; ``error`` payloads
non-empty lists of errors with a ``message``; ``ping``/``pong``/``connection_ack``
payloads objects or null): anything else is ``Malformed``, where graphql-ws
would close the socket with 4400.

The server refuses a ``graphql-transport-ws`` connection by *closing the socket*
with a 44xx code, which a sans-I/O object never sees: the runtime asks
:func:`refusal_reason` about the close code of a socket that closed before
``Ready`` and raises ``ConnectError(kind="protocol")`` with its answer.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from collections.abc import Callable
from typing import Any, ClassVar

from ...errors import EncodeError, InvalidOptionError, ProtocolError
from .base import Action, Close, Deliver, Housekeeping, Malformed, Outgoing, Protocol, Ready, Reply, Report, Send

__all__ = ["CLOSE_CODES", "ENDED_KEPT", "REFUSAL_CODES", "GraphQLWS", "MessageHandler", "errors_text", "refusal_reason"]

MessageHandler = Callable[[dict[str, Any], float], list[Action]]
"""What handles one message type: the decoded message and the time it arrived -> the actions."""

ENDED_KEPT = 1000
"""How many ids of subscriptions the client ended are remembered, so their in-flight messages are not reported."""

CLOSE_CODES: dict[int, str] = {
    4400: "bad request: the server could not understand a message (invalid message or payload)",
    4401: "unauthorized: an operation was sent before the server acknowledged the connection",
    4403: "forbidden: the server refused connection_init (check init_payload, e.g. the token)",
    4406: "subprotocol not acceptable: the server does not speak graphql-transport-ws",
    4408: "connection initialisation timeout: connection_init did not reach the server in time",
    4409: "subscriber already exists: an operation id was reused while still running",
    4429: "too many initialisation requests: connection_init was sent more than once",
    4499: "terminated by the client",
    4500: "internal server error",
    4504: "connection acknowledgement timeout",
}
"""What each ``graphql-transport-ws`` close code means (enisdenjo/graphql-ws ``CloseCode``)."""

REFUSAL_CODES: frozenset[int] = frozenset({4400, 4401, 4403, 4406, 4408, 4429})
"""Close codes by which a server refuses the connection (before ``Ready``: ``ConnectError(kind="protocol")``)."""


def refusal_reason(code: int | None, reason: str = "") -> str | None:
    """What a close with ``code``/``reason`` means when the server is refusing the connection, else ``None``.

    The text carries the server's own ``reason`` first, then the meaning of the
    code, e.g. ``"Forbidden (4403: forbidden: the server refused connection_init ...)"``.
    The runtime uses it for a socket closed before ``Ready``; after ``Ready``
    such a close is an ordinary close (reconnect as the policy says).
    """
    if code not in REFUSAL_CODES:
        return None
    meaning = CLOSE_CODES[code]
    return f"{reason} ({code}: {meaning})" if reason else f"{code}: {meaning}"


def errors_text(errors: Any) -> str:
    """GraphQL ``errors`` (a list of error objects, or one) as one readable line: messages joined by ``"; "``."""
    items = errors if isinstance(errors, list) else [errors]
    parts = []
    for item in items:
        if isinstance(item, dict):
            text = str(item.get("message", item))
            path = item.get("path")
            if isinstance(path, list) and path:
                text += f" (at {'.'.join(str(p) for p in path)})"
            parts.append(text)
        else:
            parts.append(str(item))
    return "; ".join(parts) or "unknown GraphQL error"


def _error_code(errors: Any) -> Any:
    """The first error's ``extensions.code`` (Apollo/strawberry convention), or ``None``."""
    first = errors[0] if isinstance(errors, list) and errors else errors
    if isinstance(first, dict) and isinstance(first.get("extensions"), dict):
        return first["extensions"].get("code")
    return None


def _remote_error(errors: Any, data: Any = None) -> dict[str, Any]:
    """The ``Reply.error`` dict for GraphQL ``errors`` (with the partial ``data``, if any)."""
    return {"message": errors_text(errors), "code": _error_code(errors), "data": {"errors": errors, "data": data}}


@dataclasses.dataclass
class _Operation:
    """One operation the protocol keeps: its request payload and, for calls, the result so far."""

    payload: dict[str, Any]
    is_call: bool
    sent: bool = False
    result: dict[str, Any] | None = None


class GraphQLWS(Protocol):
    """``graphql-transport-ws`` client (``connect(..., protocol="graphql-ws")``).

    Options: ``init_payload`` (dict sent with ``connection_init``, e.g. a token;
    secret) and ``keepalive`` (seconds between client ``ping`` messages once
    ready; ``None`` for none; a ``ping`` unanswered by the next one closes the
    socket with 4499 so the runtime reconnects). Server ``ping`` is answered
    with ``pong`` here, never by a handler.
    """

    name: ClassVar[str] = "graphql-ws"
    subprotocols: ClassVar[tuple[str, ...]] = ("graphql-transport-ws",)
    secret_options: ClassVar[tuple[str, ...]] = ("init_payload",)

    # message types, overridden by the legacy protocol
    _START: ClassVar[str] = "subscribe"
    _STOP: ClassVar[str] = "complete"

    def __init__(self, *, init_payload: dict[str, Any] | None = None, keepalive: float | None = None, **options: Any) -> None:
        super().__init__(**options)
        if init_payload is not None and not isinstance(init_payload, dict):
            raise InvalidOptionError(f"{self.name}: init_payload must be a dict or None, not {type(init_payload).__name__}")
        if keepalive is not None and (isinstance(keepalive, bool) or not isinstance(keepalive, (int, float)) or keepalive <= 0):
            raise InvalidOptionError(f"{self.name}: keepalive must be a positive number of seconds or None, not {keepalive!r}")
        self.init_payload = init_payload
        self.keepalive = float(keepalive) if keepalive is not None else None
        self._operations: dict[str, _Operation] = {}  # insertion order = subscription order
        self._ended: collections.OrderedDict[str, None] = collections.OrderedDict()  # subscriptions the client ended
        self._next_id = 1
        self._ready = False
        self._deadline: float | None = None
        self._awaiting_pong = False

    refusal_reason = staticmethod(refusal_reason)

    # --- lifecycle ----------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once ``connection_ack`` arrived on the current connection."""
        return self._ready

    def start(self, now: float) -> list[Outgoing]:
        """A socket opened: subscriptions are to be sent again after the ack; send ``connection_init``."""
        self._reset_connection()
        message: dict[str, Any] = {"type": "connection_init"}
        if self.init_payload is not None:
            message["payload"] = self.init_payload
        return [_dump(message)]

    def closed(self) -> None:
        """The socket closed: subscriptions and calls are kept (the runtime cancels the calls that were lost)."""
        self._reset_connection()

    def _reset_connection(self) -> None:
        self._ready = False
        self._deadline = None
        self._awaiting_pong = False
        for op in self._operations.values():
            op.sent = False
            op.result = None

    def next_deadline(self) -> float | None:
        """When the next client ``ping`` is due (only with ``keepalive`` and once ready)."""
        return self._deadline

    def poll(self, now: float) -> list[Action]:
        """Send the keep-alive ``ping``; close (4499) when the previous one got no ``pong``."""
        if self._deadline is None or self.keepalive is None or now < self._deadline:
            return []
        if self._awaiting_pong:
            self._deadline = None
            return [Close(4499, f"no pong within {self.keepalive:g}s")]
        self._awaiting_pong = True
        self._deadline = now + self.keepalive
        return [Send(_dump({"type": "ping"}))]

    # --- subscriptions and calls -----------------------------------------------------

    def is_active(self, sub_id: Any) -> bool:
        """True while subscription ``sub_id`` is active (not unsubscribed, completed or errored)."""
        op = self._operations.get(str(sub_id))
        return op is not None and not op.is_call

    def active_subscriptions(self) -> list[str]:
        """Ids of the active subscriptions, in the order subscribed (the order they are re-sent in)."""
        return [op_id for op_id, op in self._operations.items() if not op.is_call]

    def pending_calls(self) -> list[str]:
        """Ids of the calls still waiting for their result."""
        return [op_id for op_id, op in self._operations.items() if op.is_call]

    def subscribe(
        self, query: str, variables: dict[str, Any] | None = None, operation_name: str | None = None
    ) -> tuple[str, str, list[Outgoing]]:
        """Start a subscription: ``(id, topic, messages)``; ``topic`` is the id. No messages before ``Ready``."""
        op_id, messages = self._add(query, variables, operation_name, is_call=False)
        return op_id, op_id, messages

    def call(
        self, query: str, variables: dict[str, Any] | None = None, operation_name: str | None = None
    ) -> tuple[str, list[Outgoing]]:
        """A single-result operation: ``(id, messages)``; resolved by ``Reply(id, ...)`` at its ``complete``."""
        return self._add(query, variables, operation_name, is_call=True)

    def unsubscribe(self, sub_id: Any) -> list[Outgoing]:
        """Stop subscription ``sub_id`` (``complete``/``stop`` when it was sent); unknown ids are a no-op."""
        op_id = str(sub_id)
        if op_id in self._operations and not self._operations[op_id].is_call:
            self._ended[op_id] = None
            while len(self._ended) > ENDED_KEPT:
                self._ended.popitem(last=False)
        return self._forget(op_id)

    def cancel_call(self, call_id: Any) -> list[Outgoing]:
        """Forget call ``call_id`` (the runtime gave up on it); ``complete``/``stop`` tells the server while connected."""
        return self._forget(str(call_id))

    def _add(self, query: Any, variables: Any, operation_name: Any, *, is_call: bool) -> tuple[str, list[Outgoing]]:
        if not isinstance(query, str) or not query.strip():
            raise ProtocolError(f"{self.name}: the query must be a non-empty string")
        if variables is not None and not isinstance(variables, dict):
            raise ProtocolError(f"{self.name}: variables must be a dict or None, not {type(variables).__name__}")
        if operation_name is not None and not isinstance(operation_name, str):
            raise ProtocolError(f"{self.name}: operation_name must be a string or None")
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        if operation_name is not None:
            payload["operationName"] = operation_name
        _dump(payload)  # refuse what cannot be sent now, not when a later ack sends it
        op_id = str(self._next_id)
        self._next_id += 1
        op = _Operation(payload, is_call)
        self._operations[op_id] = op
        if not self._ready and not is_call:
            return op_id, []
        op.sent = True
        return op_id, [self._start_message(op_id, op)]

    def _forget(self, op_id: str) -> list[Outgoing]:
        op = self._operations.pop(op_id, None)
        if op is None or not self._ready or not (op.sent or op.is_call):
            return []
        return [_dump({"id": op_id, "type": self._STOP})]

    def _start_message(self, op_id: str, op: _Operation) -> str:
        return _dump({"id": op_id, "type": self._START, "payload": op.payload})

    # --- receiving -----------------------------------------------------------------

    _OPTIONAL_OBJECT_PAYLOAD: ClassVar[frozenset[str]] = frozenset({"connection_ack", "ping", "pong"})

    def receive(self, body: str | bytes, now: float) -> list[Action]:
        """One message from the server in, actions out; anything unreadable becomes ``Malformed``."""
        message, problem = _parse(body)
        if problem is not None:
            return [Malformed(f"{self.name}: {problem}")]
        kind = message.get("type")
        handler = self._handlers().get(kind) if isinstance(kind, str) else None
        if handler is None:
            return [Malformed(f"{self.name}: unknown message type {kind!r}", topic=_topic_of(message))]
        payload = message.get("payload")
        if kind in self._OPTIONAL_OBJECT_PAYLOAD and payload is not None and not isinstance(payload, dict):
            return [Malformed(f"{self.name}: {kind!r} payload must be an object or null, not {type(payload).__name__}")]
        return handler(message, now)

    def _handlers(self) -> dict[str, MessageHandler]:
        return {
            "connection_ack": self._on_ack,
            "ping": self._on_ping,
            "pong": self._on_pong,
            "next": self._on_result,
            "error": self._on_error,
            "complete": self._on_complete,
        }

    def _on_ack(self, message: dict[str, Any], now: float) -> list[Action]:
        if self._ready:
            return [Housekeeping("connection_ack (again, ignored)")]
        self._ready = True
        self._awaiting_pong = False
        if self._has_client_keepalive() and self.keepalive is not None:
            self._deadline = now + self.keepalive
        payload = message.get("payload")
        actions: list[Action] = [Ready(info=payload if isinstance(payload, dict) else {})]
        for op_id, op in self._operations.items():  # subscriptions, in order (calls wait in the outbox)
            if not op.sent and not op.is_call:
                op.sent = True
                actions.append(Send(self._start_message(op_id, op)))
        return actions

    def _has_client_keepalive(self) -> bool:
        return True

    def _on_ping(self, message: dict[str, Any], now: float) -> list[Action]:
        return [Send(_dump({"type": "pong"}))]

    def _on_pong(self, message: dict[str, Any], now: float) -> list[Action]:
        self._awaiting_pong = False
        return [Housekeeping("pong")]

    def _operation_for(self, message: dict[str, Any]) -> tuple[str | None, _Operation | None]:
        op_id = message.get("id")
        if not isinstance(op_id, str) or not op_id:
            return None, None
        return op_id, self._operations.get(op_id)

    def _no_id(self, message: dict[str, Any]) -> Malformed:
        op_id = message.get("id")
        why = "without an id" if op_id is None else f"whose id is not a non-empty string ({op_id!r})"
        return Malformed(f"{self.name}: {message.get('type')!r} message {why}", topic=_topic_of(message))

    def _unknown(self, kind: str, op_id: str) -> Action:
        if op_id in self._ended:
            return Housekeeping(f"{kind} {op_id} after the client ended that subscription (ignored)")
        return Report(
            "UnknownReply",
            f"{self.name}: {kind!r} for operation id {op_id!r}, which is not running (never "
            "started, already ended by the server, or a call whose caller gave up); recorded, not raised",
        )

    def _on_result(self, message: dict[str, Any], now: float) -> list[Action]:
        op_id, op = self._operation_for(message)
        kind = message.get("type")
        if op_id is None:
            return [self._no_id(message)]
        payload = message.get("payload")
        if not isinstance(payload, dict):
            return [Malformed(f"{self.name}: {kind!r} payload is not an object", topic=op_id)]
        if op is None:
            return [self._unknown(str(kind), op_id)]
        if op.is_call:
            if op.result is None:
                op.result = payload
                return [Housekeeping(f"{kind} {op_id} (call result kept until complete)")]
            return [Housekeeping(f"{kind} {op_id} (further call result ignored)")]
        errors = payload.get("errors")
        error = errors_text(errors) if errors else None
        return [Deliver(topic=op_id, data=payload.get("data"), error=error, headers=_extensions(payload))]

    def _on_error(self, message: dict[str, Any], now: float) -> list[Action]:
        op_id, op = self._operation_for(message)
        if op_id is None:
            return [self._no_id(message)]
        payload = message.get("payload")
        problem = self._error_payload_problem(payload)
        if problem is not None:
            return [Malformed(f"{self.name}: 'error' payload {problem}", topic=op_id)]
        if op is None:
            return [self._unknown("error", op_id)]
        del self._operations[op_id]  # an error ends the operation: no complete follows
        if op.is_call:
            return [Reply(op_id, error=_remote_error(payload))]
        return [Deliver(topic=op_id, data=None, error=errors_text(payload))]

    def _error_payload_problem(self, payload: Any) -> str | None:
        """Why an ``error`` payload is not a non-empty list of GraphQL errors (each with a ``message``), else ``None``."""
        if not isinstance(payload, list) or not payload:
            return "is not a non-empty list of GraphQL errors"
        if not all(isinstance(item, dict) and "message" in item for item in payload):
            return "holds an error without a 'message'"
        return None

    def _on_complete(self, message: dict[str, Any], now: float) -> list[Action]:
        op_id, op = self._operation_for(message)
        if op_id is None:
            return [self._no_id(message)]
        if op is None:
            return [self._unknown("complete", op_id)]
        del self._operations[op_id]
        if not op.is_call:
            return [Housekeeping(f"complete {op_id} (subscription ended by the server)")]
        result = op.result or {}
        if result.get("errors"):
            return [Reply(op_id, error=_remote_error(result["errors"], result.get("data")))]
        return [Reply(op_id, value=result.get("data"))]


def _dump(message: dict[str, Any]) -> str:
    try:
        return json.dumps(message, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError as exc:  # NaN or infinity in variables (JSON has neither), or a cycle
        raise EncodeError(f"graphql: cannot encode the message as JSON: {exc}") from None


def _parse(body: str | bytes) -> tuple[dict[str, Any], str | None]:
    """``(message, None)`` for a JSON object with a ``type``; ``({}, problem)`` otherwise."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            return {}, f"binary message is not UTF-8 text ({exc.reason})"
    try:
        message = json.loads(body)
    except ValueError as exc:
        return {}, f"invalid JSON ({exc})"
    if not isinstance(message, dict):
        return {}, f"expected a JSON object, got {type(message).__name__}"
    if "type" not in message:
        return {}, "message has no 'type'"
    return message, None


def _topic_of(message: dict[str, Any]) -> str | None:
    op_id = message.get("id")
    return op_id if isinstance(op_id, str) and op_id else None


def _extensions(payload: dict[str, Any]) -> dict[str, Any] | None:
    extensions = payload.get("extensions")
    return {"extensions": extensions} if extensions else None
