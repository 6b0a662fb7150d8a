"""JSON-RPC 2.0 over WebSocket as a sans-I/O :class:`~.base.Protocol` (``connect(..., protocol="jsonrpc")``).

One JSON-RPC message (or batch, a JSON array) per WebSocket text message.
There is no handshake: the protocol is ready as soon as the socket is open.

Out (verbs):

* ``call(method, params=None)`` -> ``(id, [text])`` with a generated integer id;
  its answer comes back as ``Reply(id, value=result)`` or
  ``Reply(id, error={"code", "message", "data"})``.
* ``call_batch([(method, params), ...])`` -> ``(ids, [text])``: one batch request.
* ``notify(method, params=None)`` -> ``[text]``: no id, no reply.
* ``acknowledge(token, value, positive=True)`` -> ``[text]``: answers a request the
  *server* sent (its id is the ``Deliver.ack`` token) with ``result=value``, or
  with an error when ``positive`` is false.
* ``cancel_call(id)`` forgets a call whose caller gave up (JSON-RPC has no
  cancel message; a late answer then becomes ``Housekeeping``).

Calls pending when the socket closes are never answered: ``closed``/``start``
forget them (``pending_calls()`` is then empty) and the runtime fails their
callers. Ids keep counting across reconnects, so a late reply cannot be taken
for a new call's.

In (actions from ``receive``):

* a reply to a pending call -> ``Reply``; to an unknown id -> ``Housekeeping``
  (recorded in the transcript, never raised);
* a server notification (``method``, no ``id``) -> ``Deliver(topic=method, data=params)``;
* a server request (``method`` and ``id``) -> ``Deliver(topic=method, data=params, ack=id)``;
* an error reply with ``id: null`` (the server could not read a request) ->
  ``Deliver(topic=None, data=<error object>, error=<its text>)``;
* a batch (JSON array) -> the actions of each member, in order;
* invalid JSON or a message that is not JSON-RPC -> ``Malformed``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, ClassVar

from ...errors import ProtocolError
from .base import Action, Deliver, Housekeeping, Malformed, Outgoing, Protocol, Reply

__all__ = ["JSONRPC", "error_text"]


def error_text(error: dict[str, Any]) -> str:
    """A JSON-RPC error object as one line: ``"message (code -32601)"``."""
    code = error.get("code")
    message = str(error.get("message") or "error")
    return f"{message} (code {code})" if code is not None else message


def _normalise_error(error: Any) -> dict[str, Any]:
    """Any ``error`` member as ``{"code", "message", "data"}`` (servers are not all strict)."""
    if isinstance(error, dict):
        return {"code": error.get("code"), "message": str(error.get("message") or error.get("code") or "error"),
                "data": error.get("data")}
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
    return json.dumps(message, separators=(",", ":"), default=str)


class JSONRPC(Protocol):
    """JSON-RPC 2.0 client that also takes notifications and requests from the server. No options."""

    name: ClassVar[str] = "jsonrpc"
    subprotocols: ClassVar[tuple[str, ...]] = ()
    handler_replies: ClassVar[bool] = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._next_id = 1
        self._pending: set[int] = set()

    # --- lifecycle ----------------------------------------------------------------

    def start(self, now: float) -> list[Outgoing]:
        """No handshake; calls sent on an earlier socket will never be answered and are forgotten."""
        self._pending.clear()
        return []

    def closed(self) -> None:
        """The socket closed: pending calls will never be answered (the runtime fails their callers)."""
        self._pending.clear()

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
        message = self._request(method, params, request_id)
        self._pending.add(request_id)
        return request_id, [_dump(message)]

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
        self._pending.update(ids)
        return ids, [_dump(messages)]

    def notify(self, method: str, params: Any = None) -> list[Outgoing]:
        """A notification: no id, no reply."""
        return [_dump(self._request(method, params, None))]

    def cancel_call(self, call_id: Any) -> list[Outgoing]:
        """Forget call ``call_id``; JSON-RPC has no cancel message, so nothing is sent."""
        self._pending.discard(call_id)
        return []

    def acknowledge(self, token: Any, value: Any = None, *, positive: bool = True) -> list[Outgoing]:
        """Answer the server's request ``token`` (its id): ``result=value``, or an error when not ``positive``.

        For an error, ``value`` may be a dict with ``code``/``message``/``data``;
        anything else becomes the message of a ``-32000`` error.
        """
        if positive:
            return [_dump({"jsonrpc": "2.0", "id": token, "result": value})]
        if isinstance(value, dict) and "message" in value:
            error = {"code": value.get("code", -32000), "message": str(value["message"])}
            if value.get("data") is not None:
                error["data"] = value["data"]
        else:
            error = {"code": -32000, "message": str(value) if value is not None else "rejected by the client"}
        return [_dump({"jsonrpc": "2.0", "id": token, "error": error})]

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
        if "method" in message:
            return self._incoming_request(message)
        if "result" in message or "error" in message:
            return self._reply(message)
        return [Malformed("jsonrpc: neither a request (method) nor a reply (result/error)")]

    def _incoming_request(self, message: dict[str, Any]) -> list[Action]:
        method = message["method"]
        if not isinstance(method, str):
            return [Malformed(f"jsonrpc: method is not a string ({method!r})")]
        params = message.get("params")
        if "id" in message:
            return [Deliver(topic=method, data=params, ack=message["id"])]
        return [Deliver(topic=method, data=params)]

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
            return [Housekeeping(f"reply for unknown id {raw_id!r} (ignored)")]
        self._pending.discard(call_id)
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
