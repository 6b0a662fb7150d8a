"""Reading a message as the log shows it: its topic, its payload, and which call it starts or answers.

For display only, and forgiving: a body that does not read as its protocol's packet is shown as it
is. Plain sockets show the message's JSON; protocol sockets show the Socket.IO event and its
arguments, the JSON-RPC method and params, the GraphQL operation and its result, the STOMP command,
destination and body, with housekeeping (pings, pongs, handshakes, heart-beats) marked as such, and
the ids that pair a call with its reply (a Socket.IO ack, a JSON-RPC result, a GraphQL result, a
STOMP receipt).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["NO_PAYLOAD", "WireView", "pretty", "read_message"]

NO_PAYLOAD: Any = object()
"""The payload of a message that carries none (a Socket.IO event without arguments, a STOMP frame without a body)."""


@dataclass
class WireView:
    """What the log shows of one message."""

    topic: str | None = None
    """Event name, method, destination or operation."""
    payload: Any = NO_PAYLOAD
    """The message's content, parsed where it is JSON."""
    call_id: str | None = None
    """The id of the call this message starts (an ack id, a request id, a receipt)."""
    awaited: bool = True
    """A caller waits for the reply to ``call_id`` (False: the protocol's own, a SUBSCRIBE's receipt)."""
    reply_to: str | None = None
    """The id of the call this message answers."""
    housekeeping: bool = False
    """The protocol's own traffic (pings, pongs, handshakes, keep-alives)."""
    label: str = ""
    """A short word for the kind of packet: ``emit``, ``ack``, ``call``, ``result``, ``SEND`` ..."""
    error: bool = False
    """The message is an error reply."""


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return NO_PAYLOAD


def pretty(value: Any, body: str | bytes) -> str:
    """``value`` as indented JSON when it is JSON, else the body as text (bytes as a short hex dump)."""
    if value is not NO_PAYLOAD:
        try:
            return json.dumps(value, indent=2, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            return str(value)
    if isinstance(body, bytes):
        shown = body[:256].hex(" ")
        return f"<{len(body)} bytes> {shown}{' …' if len(body) > 256 else ''}"
    return body


_SOCKETIO = re.compile(r"^4([0-6])(?:\d+-)?(/[^,]*,)?(\d+)?(.*)$", re.DOTALL)


def _socketio(body: str) -> WireView:
    if body[:1] in ("0", "1", "2", "3", "5", "6"):
        return WireView(housekeeping=True, label={"0": "open", "2": "ping", "3": "pong"}.get(body[:1], "engine.io"))
    match = _SOCKETIO.match(body)
    if match is None:
        return WireView(payload=_json(body))
    kind, namespace, ack_id, data = match.groups()
    value = _json(data) if data else NO_PAYLOAD
    where = f"{namespace[:-1]} " if namespace else ""
    if kind in ("0", "1"):
        return WireView(topic=f"{where}connect" if kind == "0" else f"{where}disconnect", payload=value, housekeeping=True)
    if kind in ("2", "5") and isinstance(value, list) and value:
        args = value[1:]
        payload = NO_PAYLOAD if not args else args[0] if len(args) == 1 else args
        return WireView(topic=f"{where}{value[0]}", payload=payload, call_id=ack_id, label="call" if ack_id else "emit")
    if kind in ("3", "6"):
        payload = value[0] if isinstance(value, list) and len(value) == 1 else value
        return WireView(payload=payload, reply_to=ack_id, label="ack")
    if kind == "4":
        return WireView(topic=f"{where}connect_error", payload=value, error=True, label="connect_error")
    return WireView(payload=value)


def _jsonrpc(body: str) -> WireView:
    value = _json(body)
    if not isinstance(value, dict):
        return WireView(payload=value)
    request_id = None if value.get("id") is None else str(value["id"])
    if "method" in value:
        payload = value.get("params", NO_PAYLOAD)
        return WireView(topic=str(value["method"]), payload=payload, call_id=request_id, label="call" if request_id else "notify")
    if "error" in value:
        return WireView(payload=value["error"], reply_to=request_id, error=True, label="error")
    if "result" in value:
        return WireView(payload=value["result"], reply_to=request_id, label="result")
    return WireView(payload=value)


_GRAPHQL_HOUSEKEEPING = {
    "connection_init",
    "connection_ack",
    "ping",
    "pong",
    "ka",
    "connection_keep_alive",
    "connection_terminate",
}


def _graphql(body: str) -> WireView:
    value = _json(body)
    if not isinstance(value, dict) or "type" not in value:
        return WireView(payload=value)
    kind, op_id = str(value["type"]), None if value.get("id") is None else str(value["id"])
    payload = value.get("payload", NO_PAYLOAD)
    if kind in _GRAPHQL_HOUSEKEEPING:
        return WireView(housekeeping=True, label=kind, payload=payload)
    if kind in ("subscribe", "start"):
        query = str(payload.get("query", "")) if isinstance(payload, dict) else ""
        operation = query.strip().split("{", 1)[0].strip() or "query"
        is_stream = query.lstrip().startswith("subscription")
        return WireView(
            topic=op_id, payload=payload, call_id=None if is_stream else op_id, label="subscribe" if is_stream else operation
        )
    if kind in ("next", "data"):
        return WireView(topic=op_id, payload=payload, reply_to=op_id, label=kind)
    if kind == "error":
        return WireView(topic=op_id, payload=payload, reply_to=op_id, error=True, label="error")
    return WireView(topic=op_id, payload=payload, label=kind, housekeeping=kind in ("complete", "stop"))


def _stomp(body: str | bytes) -> WireView:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if not text.strip("\r\n\x00"):
        return WireView(housekeeping=True, label="heart-beat")
    head, _, content = text.lstrip("\r\n").partition("\n\n")
    lines = head.replace("\r\n", "\n").split("\n")
    command = lines[0].strip()
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep and key not in headers:
            headers[key] = value
    content = content.rstrip("\x00")
    payload = _json(content) if content else NO_PAYLOAD
    if payload is NO_PAYLOAD and content:
        payload = content
    if command in ("CONNECT", "STOMP", "CONNECTED", "DISCONNECT"):
        return WireView(housekeeping=True, label=command)
    if command == "RECEIPT":
        return WireView(reply_to=headers.get("receipt-id"), label="RECEIPT")
    if command == "ERROR":
        message = headers.get("message", "")
        return WireView(payload=payload if content else message, reply_to=headers.get("receipt-id"), error=True, label="ERROR")
    return WireView(
        topic=headers.get("destination"),
        payload=payload,
        call_id=headers.get("receipt"),
        awaited=command != "SUBSCRIBE",
        label=command,
    )


def read_message(protocol: str | None, body: str | bytes) -> WireView:
    """How the log shows ``body`` of a socket speaking ``protocol`` (``None`` for plain WebSocket)."""
    try:
        if protocol == "stomp":
            return _stomp(body)
        if isinstance(body, bytes):
            return WireView()
        if protocol == "socketio":
            return _socketio(body)
        if protocol == "jsonrpc":
            return _jsonrpc(body)
        if protocol in ("graphql-ws", "graphql-ws-legacy"):
            return _graphql(body)
        return WireView(payload=_json(body))
    except Exception:  # a display must never fail on a strange message
        return WireView()
