"""What the panel's Send row sends: exactly what the user typed, read one documented way, or nothing and a message.

A plain socket's box is read by its mode (``auto``: a JSON object or array as JSON, other text as
text; text that starts like JSON but does not parse is refused). A protocol socket has a field for
the event name, method, query or destination and another for the payload (JSON, or text when the
mode says so), and the protocol's verbs (Socket.IO ``emit``/``call``, JSON-RPC ``call``/``notify``,
GraphQL ``call``/``subscribe``, STOMP ``publish``/``subscribe``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidMessageError

__all__ = [
    "CALL_TIMEOUT",
    "PROTOCOL_FORMS",
    "PlannedSend",
    "ProtocolForm",
    "form_for",
    "plan_protocol_send",
    "read_payload",
]

CALL_TIMEOUT = 10.0
"""Seconds a call from the panel waits for its reply."""


@dataclass(frozen=True)
class ProtocolForm:
    """How the Send row looks and reads for one protocol."""

    verbs: tuple[str, ...]
    """The verbs offered, the first one the default."""
    target: str
    """What the first field holds: ``event``, ``method``, ``query``, ``destination``."""
    target_example: str
    payload: str
    """What the second field holds."""
    payload_example: str
    payload_kinds: tuple[str, ...] = ("any",)
    """The JSON the payload may be: ``any``, ``object``, ``array``."""
    text_allowed: bool = True
    """Whether the payload may be sent as text (mode ``text``)."""

    def hint(self) -> str:
        """The line under the Send row: what each field takes and what each verb does."""
        verbs = {
            "emit": "emit sends the event",
            "call": f"call waits for the reply (up to {CALL_TIMEOUT:.0f} s) and shows it in the log",
            "notify": "notify sends it without an id (no reply)",
            "subscribe": "subscribe starts a subscription (its messages arrive as rows)",
            "publish": "publish sends it to the destination",
        }
        kinds = {"any": "any JSON value", "object": "a JSON object", "array": "a JSON array or object"}[self.payload_kinds[0]]
        text = " (or, in text mode, text as typed)" if self.text_allowed else ""
        return (
            f"{self.target.capitalize()} in the first box (e.g. {self.target_example}); {self.payload} in the second: "
            f"{kinds}{text}, e.g. {self.payload_example}, or nothing. " + "; ".join(verbs[v] for v in self.verbs) + "."
        )


PROTOCOL_FORMS: dict[str, ProtocolForm] = {
    "socketio": ProtocolForm(("emit", "call"), "event", "chat", "argument", '{"text": "hi"}'),
    "jsonrpc": ProtocolForm(("call", "notify"), "method", "add", "params", "[1, 2]", ("array",), text_allowed=False),
    "graphql-ws": ProtocolForm(("call", "subscribe"), "query", "{ hello }", "variables", '{"n": 3}', ("object",), False),
    "graphql-ws-legacy": ProtocolForm(("call", "subscribe"), "query", "{ hello }", "variables", '{"n": 3}', ("object",), False),
    "stomp": ProtocolForm(("publish", "subscribe", "call"), "destination", "/topic/prices", "body", '{"p": 1}'),
}
"""The Send row of each built-in protocol (a protocol not listed here gets the plain message box)."""


def form_for(protocol: str | None) -> ProtocolForm | None:
    """The protocol's Send row, or ``None`` for a plain socket (or a protocol without one)."""
    return PROTOCOL_FORMS.get(protocol) if protocol else None


def read_payload(text: str, mode: str, form: ProtocolForm) -> list[Any]:
    """The payload field as the verb's arguments: ``[]`` when empty, ``[value]`` otherwise; refuses what it cannot read."""
    if mode == "text":
        if not form.text_allowed:
            raise InvalidMessageError(f"{form.payload} must be JSON here; nothing was sent")
        return [text] if text else []
    if not text.strip():
        return []
    try:
        value = json.loads(text)
    except ValueError as exc:
        reason = getattr(exc, "msg", str(exc))
        how = "choose text mode to send it as typed" if form.text_allowed else f"e.g. {form.payload_example}"
        raise InvalidMessageError(f"the {form.payload} is not JSON ({reason}); nothing was sent ({how})") from None
    kind = form.payload_kinds[0]
    if kind == "object" and not isinstance(value, dict):
        raise InvalidMessageError(f"the {form.payload} must be a JSON object, e.g. {form.payload_example}; nothing was sent")
    if kind == "array" and not isinstance(value, (list, dict)):
        raise InvalidMessageError(
            f"the {form.payload} must be a JSON array or object, e.g. {form.payload_example}; nothing was sent"
        )
    return [value]


@dataclass(frozen=True)
class PlannedSend:
    """A verb to run on a protocol socket, checked and ready: ``verb(target, *args)``."""

    verb: str
    target: str
    args: tuple[Any, ...]

    def describe(self) -> str:
        """``emit chat`` / ``call add``: for the feedback line."""
        return f"{self.verb} {self.target}"


def plan_protocol_send(form: ProtocolForm, verb: str, target: str, payload: str, mode: str) -> PlannedSend:
    """What the Send row of a protocol socket asks for, or :class:`InvalidMessageError` saying why nothing is sent."""
    if verb not in form.verbs:
        raise InvalidMessageError(f"{verb!r} is not one of {', '.join(form.verbs)}")
    name = target.strip()
    if not name:
        raise InvalidMessageError(f"type the {form.target} in the first box (e.g. {form.target_example}); nothing was sent")
    if form.target in ("event", "method") and name[:1] in "[{\"'":
        raise InvalidMessageError(
            f"{name[:40]!r} looks like a whole message, not an {form.target} name: put the {form.target} "
            f"(e.g. {form.target_example}) in the first box and the {form.payload} (e.g. {form.payload_example}) "
            "in the second; nothing was sent"
        )
    args = read_payload(payload, mode, form)
    if verb == "subscribe" and form.target == "destination" and args:
        raise InvalidMessageError("subscribe takes a destination only: leave the body empty; nothing was sent")
    if verb in ("call", "notify") and form.target == "method" and not args:
        return PlannedSend(verb, name, (None,)) if verb == "notify" else PlannedSend(verb, name, ())
    return PlannedSend(verb, name, tuple(args))
