"""JSON-RPC 2.0 over WebSocket as a sans-I/O :class:`~.base.Protocol` (``connect(..., protocol="jsonrpc")``).

One JSON-RPC message (or batch, a JSON array) per WebSocket text message.
There is no handshake: the protocol is ready as soon as the socket is open.
The reference it is checked against is the Node library json-rpc-2.0
(``JSONRPCServerAndClient``) and the JSON-RPC 2.0 specification.

Out (verbs):

* ``call(method, params=None)`` -> ``(id, [text])`` with a generated integer id;
  its answer comes back as ``Reply(id, value=result)`` or
  ``Reply(id, error={"code", "message", "data"})``.
* ``call_batch([(method, params), ...])`` -> ``(ids, [text])``: one batch request.
* ``notify(method, params=None)`` -> ``[text]``: no id, no reply.
* ``acknowledge(token, value, ...)`` -> ``[text]``: answers a request the *server*
  sent (the ``Deliver.ack`` token, a :class:`ServerRequest`), as json-rpc-2.0's
  server does: ``result=value``; a handler that raised ->
  ``{"code": 0, "message": <the exception's message>}`` (json-rpc-2.0's default
  error code; an :class:`~nbsocket.errors.RemoteError` raised by a handler gives
  its own ``code``, ``message`` and ``data``, as a ``JSONRPCErrorException`` does
  there); no handler -> ``-32601 "Method not found"``; ``positive=False`` -> an
  error the user describes (``-32000`` unless a dict gives the code).
* ``cancel_call(id)`` forgets a call the runtime gave up on (JSON-RPC has no
  cancel message; a late answer then becomes a ``Report``).

Pending calls are kept across reconnects: the runtime sends a call that was not
written yet on the next connection and cancels (``cancel_call``) those written
on a connection that was lost. Ids keep counting for the protocol's life, so a
late reply cannot be taken for a new call's.

In (actions from ``receive``):

* a reply to a pending call -> ``Reply``; to an unknown, answered or abandoned id
  -> ``Report("UnknownReply")`` (recorded in ``conn.errors``, never raised); a reply
  with both ``result`` and ``error`` -> ``Reply`` with an error (json-rpc-2.0's
  client rejects it too);
* a server notification (``method`` and no ``id`` member) -> ``Deliver(topic=method, data=params)``;
* a server request (``method`` and an ``id`` member, ``"id": null`` included) ->
  ``Deliver(topic=method, data=params, ack=ServerRequest(id, ...))``;
* an error reply with ``id: null`` (the server could not read a request) ->
  ``Deliver(topic=None, data=<error object>, error=<its text>)``;
* a batch (JSON array) -> the actions of each member, in order;
* invalid JSON or a message that is not JSON-RPC -> ``Malformed``.

Where nbsocket is more lenient than json-rpc-2.0: a message without the
``"jsonrpc"`` member is read as 2.0 (another version is refused), and a reply id
echoed as ``"1"`` or ``1.0`` matches call ``1``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any, ClassVar

from ...errors import EncodeError, ProtocolError, RemoteError
from ..redact import scrub
from .base import Action, Deliver, Malformed, Outgoing, Protocol, Reply, Report

__all__ = ["HANDLER_ERROR_CODE", "JSONRPC", "METHOD_NOT_FOUND", "ServerRequest", "error_text"]

HANDLER_ERROR_CODE = 0
"""The error code answering a server request whose handler raised (json-rpc-2.0's ``DefaultErrorCode``)."""

METHOD_NOT_FOUND = {"code": -32601, "message": "Method not found"}
"""The error answering a server request no handler took (JSON-RPC 2.0; json-rpc-2.0's exact text)."""


@dataclasses.dataclass(frozen=True)
class ServerRequest:
    """The ack token of a request the server sent: its ``id`` (any JSON-RPC id, ``None`` included).

    ``connection`` numbers the connection it arrived on: an answer on a later
    connection would reach a server session that never asked, so none is sent.
    """

    id: Any
    connection: int


def error_text(error: dict[str, Any]) -> str:
    """A JSON-RPC error object as one line: ``"message (code -32601)"``."""
    code = error.get("code")
    message = str(error.get("message") or "error")
    return f"{message} (code {code})" if code is not None else message


def _normalise_error(error: Any) -> dict[str, Any]:
    """Any ``error`` member as ``{"code", "message", "data"}`` (servers are not all strict)."""
    if isinstance(error, dict):
        return {
            "code": error.get("code"),
            "message": str(error.get("message") or error.get("code") or "error"),
            "data": error.get("data"),
        }
    return {"code": None, "message": str(error), "data": None}


def _check_params(params: Any) -> Any:
    """JSON-RPC params are by-position (list) or by-name (dict); a tuple becomes a list."""
    if params is None or isinstance(params, (list, dict)):
        return params
    if isinstance(params, tuple):
        return list(params)
    raise ProtocolError(f"jsonrpc: params must be a list, tuple, dict or None, not {type(params).__name__}")


def _check_method(method: Any) -> str:
    if not isinstance(method, str) or not method:
        raise ProtocolError("jsonrpc: the method must be a non-empty string")
    return method


def _dump(message: Any) -> str:
    try:
        return json.dumps(message, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError as exc:  # NaN or infinity (JSON has neither: a server would answer a parse error), or a cycle
        raise EncodeError(f"jsonrpc: cannot encode the message as JSON: {exc}") from None


def _topic(message: dict[str, Any]) -> str | None:
    method = message.get("method")
    return method if isinstance(method, str) else None


def _is_id(value: Any) -> bool:
    """A valid JSON-RPC request id: a string, a number or null."""
    return value is None or isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _handler_error(error: BaseException) -> dict[str, Any]:
    """The error object answering a request whose handler raised ``error`` (json-rpc-2.0's mapping)."""
    if isinstance(error, RemoteError):
        code = error.code if isinstance(error.code, int) and not isinstance(error.code, bool) else HANDLER_ERROR_CODE
        answer: dict[str, Any] = {"code": code, "message": scrub(str(error))}
        if error.data is not None:
            answer["data"] = error.data
        return answer
    return {"code": HANDLER_ERROR_CODE, "message": scrub(str(error)) or type(error).__name__}


class JSONRPC(Protocol):
    """JSON-RPC 2.0 client that also takes notifications and requests from the server. No options."""

    name: ClassVar[str] = "jsonrpc"
    subprotocols: ClassVar[tuple[str, ...]] = ()
    handler_replies: ClassVar[bool] = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._next_id = 1
        self._pending: set[int] = set()
        self._connection = 0

    # --- lifecycle ----------------------------------------------------------------

    def start(self, now: float) -> list[Outgoing]:
        """No handshake. Pending calls are kept: the runtime cancels those that were lost with the last connection."""
        self._connection += 1
        return []

    def pending_calls(self) -> list[int]:
        """Ids of the calls still waiting for their reply."""
        return sorted(self._pending)

    # --- verbs ---------------------------------------------------------------------

    def _request(self, method: Any, params: Any, request_id: int | None) -> dict[str, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": _check_method(method)}
        params = _check_params(params)
        if params is not None:
            message["params"] = params
        if request_id is not None:
            message["id"] = request_id
        return message

    def _new_id(self) -> int:
        request_id = self._next_id
        self._next_id += 1
        return request_id

    def call(self, method: str, params: Any = None) -> tuple[int, list[Outgoing]]:
        """Call ``method``: ``(id, [text])``; the answer is ``Reply(id, ...)``."""
        request_id = self._new_id()
        text = _dump(self._request(method, params, request_id))
        self._pending.add(request_id)
        return request_id, [text]

    def call_batch(self, calls: Iterable[tuple[str, Any] | list[Any]]) -> tuple[list[int], list[Outgoing]]:
        """Several calls in one batch request: ``(ids, [text])``; each answer is its own ``Reply``."""
        items = [tuple(item) for item in calls]
        if not items:
            raise ProtocolError("jsonrpc: a batch needs at least one call")
        messages, ids = [], []
        for item in items:
            if len(item) not in (1, 2):
                raise ProtocolError(f"jsonrpc: batch items are (method, params), not {item!r}")
            method, params = item[0], item[1] if len(item) == 2 else None
            request_id = self._new_id()
            messages.append(self._request(method, params, request_id))
            ids.append(request_id)
        text = _dump(messages)
        self._pending.update(ids)
        return ids, [text]

    def notify(self, method: str, params: Any = None) -> list[Outgoing]:
        """A notification: no id, no reply."""
        return [_dump(self._request(method, params, None))]

    def cancel_call(self, call_id: Any) -> list[Outgoing]:
        """Forget call ``call_id``; JSON-RPC has no cancel message, so nothing is sent."""
        self._pending.discard(call_id)
        return []

    def acknowledge(
        self, token: Any, value: Any = None, *, positive: bool = True, error: BaseException | None = None, handled: bool = True
    ) -> list[Outgoing]:
        """Answer the server's request ``token`` (a :class:`ServerRequest`, or a bare id).

        In order: no handler ran (``handled=False``) -> ``-32601 Method not found``;
        a handler raised ``error`` -> ``{"code": 0, "message": str(error)}``, or a
        :class:`RemoteError`'s own code, message and data (no traceback, secrets
        masked); ``positive=False`` -> an error from ``value`` (a dict with
        ``code``/``message``/``data``, else a ``-32000`` error whose message is
        ``value``); otherwise ``result=value``. A token from an earlier connection
        sends nothing.
        """
        if isinstance(token, ServerRequest):
            if token.connection != self._connection:
                return []
            request_id = token.id
        else:
            request_id = token
        if not handled:
            return [_dump({"jsonrpc": "2.0", "id": request_id, "error": dict(METHOD_NOT_FOUND)})]
        if error is not None:
            return [_dump({"jsonrpc": "2.0", "id": request_id, "error": _handler_error(error)})]
        if positive:
            return [_dump({"jsonrpc": "2.0", "id": request_id, "result": value})]
        if isinstance(value, dict) and "message" in value:
            answer = {"code": value.get("code", -32000), "message": str(value["message"])}
            if value.get("data") is not None:
                answer["data"] = value["data"]
        else:
            answer = {"code": -32000, "message": str(value) if value is not None else "rejected by the client"}
        return [_dump({"jsonrpc": "2.0", "id": request_id, "error": answer})]

    # --- receiving -------------------------------------------------------------------

    def receive(self, body: str | bytes, now: float) -> list[Action]:
        """One message (or batch) in, actions out; never raises on bad input."""
        if isinstance(body, (bytes, bytearray, memoryview)):
            try:
                body = bytes(body).decode("utf-8")
            except UnicodeDecodeError as exc:
                return [Malformed(f"jsonrpc: binary message is not UTF-8 text ({exc.reason})")]
        try:
            message = json.loads(body)
        except ValueError as exc:
            return [Malformed(f"jsonrpc: invalid JSON ({exc})")]
        if isinstance(message, list):
            if not message:
                return [Malformed("jsonrpc: empty batch")]
            actions: list[Action] = []
            for member in message:
                actions.extend(self._one(member))
            return actions
        return self._one(message)

    def _one(self, message: Any) -> list[Action]:
        if not isinstance(message, dict):
            return [Malformed(f"jsonrpc: expected a JSON object, got {type(message).__name__}")]
        version = message.get("jsonrpc", "2.0")  # lenient about a missing member, strict about another version
        if version != "2.0":
            return [Malformed(f"jsonrpc: not a JSON-RPC 2.0 message (jsonrpc={version!r})")]
        is_reply = "result" in message or "error" in message
        if is_reply and "id" in message:  # a reply even with a method member, as json-rpc-2.0 reads it
            return self._reply(message)
        if "method" in message:
            if is_reply:  # json-rpc-2.0 reads it as neither a request nor a reply
                return [
                    Malformed("jsonrpc: both a request (method) and a reply (result/error), without an id", topic=_topic(message))
                ]
            return self._incoming_request(message)
        if is_reply:
            return self._reply(message)
        return [Malformed("jsonrpc: neither a request (method) nor a reply (result/error)")]

    def _incoming_request(self, message: dict[str, Any]) -> list[Action]:
        method = message["method"]
        if not isinstance(method, str):
            return [Malformed(f"jsonrpc: method is not a string ({method!r})")]
        params = message.get("params")
        if "id" not in message:  # only a request without an id member is a notification
            return [Deliver(topic=method, data=params)]
        request_id = message["id"]
        if not _is_id(request_id):
            return [
                Malformed(f"jsonrpc: request id must be a string, number or null, not {type(request_id).__name__}", topic=method)
            ]
        return [Deliver(topic=method, data=params, ack=ServerRequest(request_id, self._connection))]

    def _reply(self, message: dict[str, Any]) -> list[Action]:
        if "id" not in message:
            return [Malformed("jsonrpc: reply without an id")]
        raw_id = message["id"]
        error = message.get("error")
        if raw_id is None:
            if error is None:
                return [Malformed("jsonrpc: reply with id null and no error")]
            normalised = _normalise_error(error)
            return [Deliver(topic=None, data=normalised, error=f"server error: {error_text(normalised)}")]
        call_id = self._match(raw_id)
        if call_id is None:
            what = "an error reply" if error is not None else "a reply"
            return [
                Report(
                    "UnknownReply",
                    f"jsonrpc: {what} to id {raw_id!r}, which no call is waiting for (never sent, "
                    "already answered, or its caller gave up); recorded, not raised",
                )
            ]
        self._pending.discard(call_id)
        if "result" in message and "error" in message:
            return [
                Reply(
                    call_id,
                    error={
                        "code": None,
                        "message": "invalid JSON-RPC reply: it has both result and error",
                        "data": {"result": message["result"], "error": error},
                    },
                )
            ]
        if error is not None:
            return [Reply(call_id, error=_normalise_error(error))]
        return [Reply(call_id, value=message.get("result"))]

    def _match(self, raw_id: Any) -> int | None:
        """The pending call ``raw_id`` answers (servers that echo ``1`` as ``"1"`` included), else ``None``."""
        if isinstance(raw_id, bool):
            return None
        if isinstance(raw_id, int) and raw_id in self._pending:
            return raw_id
        if isinstance(raw_id, str) and raw_id.strip().lstrip("-").isdigit() and int(raw_id) in self._pending:
            return int(raw_id)
        if isinstance(raw_id, float) and raw_id.is_integer() and int(raw_id) in self._pending:
            return int(raw_id)
        return None
