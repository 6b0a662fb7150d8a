"""Socket.IO v5 packets: parsing and encoding (pure functions), as socket.io-parser 4.2 reads and writes them.

Used by :class:`~.socketio.SocketIO`; nothing here keeps state. A packet is the text of an Engine.IO
message after its ``4``::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON>]

followed, for BINARY_EVENT/BINARY_ACK, by its attachments as binary messages, which replace the
``{"_placeholder": true, "num": k}`` objects in the JSON.

Rules (a packet that breaks one is a :class:`BadPacket` with a precise reason, never another exception):

* the type, the attachment count and the ack id are ASCII digits only: a full-width ``２`` or an
  Arabic-Indic ``٣`` is refused, never read as a digit (Python's ``int`` and ``str.isdigit`` would);
* a binary packet announces 1 to :data:`MAX_ATTACHMENTS` attachments (socket.io-parser refuses 0 too),
  and its placeholders number them ``0..n-1`` once each, with integer ``num``;
* an ack id has at most 16 digits (leading zeros aside) and is at most :data:`MAX_ACK_ID`
  (``Number.MAX_SAFE_INTEGER``: what a JavaScript peer counts to exactly);
* the JSON is strict, as ``JSON.parse``: no ``NaN``/``Infinity``; a document nested too deeply for
  Python is refused;
* the payload fits its type (socket.io-parser's ``isPayloadValid``): CONNECT an object, DISCONNECT none,
  EVENT a list starting with an event name (a string that is not reserved, or a number), ACK a list
  (and an ack id), CONNECT_ERROR an object or a string.

python-socketio's ``socketio.packet.Packet.decode`` is lenient where these rules report: it reads
non-ASCII digits (and raises ``ValueError`` on some, such as ``²``), takes an unreadable or zero
attachment count for none, accepts placeholders that do not match the count, and any JSON payload.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ...errors import EncodeError

__all__ = [
    "ACK",
    "BINARY_ACK",
    "BINARY_EVENT",
    "CONNECT",
    "CONNECT_ERROR",
    "DISCONNECT",
    "EVENT",
    "MAX_ACK_ID",
    "MAX_ATTACHMENTS",
    "PACKET_NAMES",
    "RESERVED_EVENTS",
    "BadPacket",
    "Packet",
    "decode_packet",
    "dumps",
    "encode_packet",
    "event_name",
    "loads",
    "resolve_placeholders",
    "shown_char",
    "unpack_args",
]

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = range(7)
PACKET_NAMES = ("CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK")

MAX_ATTACHMENTS = 10_000
"""More attachments than this in one packet is malformed (a bound on what is held while they arrive)."""

MAX_ACK_ID = 2**53 - 1
"""The largest ack id read or written (``Number.MAX_SAFE_INTEGER``)."""

RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"})
"""Event names the Socket.IO client API reserves: the JS client refuses to emit them and socket.io-parser refuses
to decode an EVENT that uses one."""

_DIGITS = frozenset("0123456789")
_MAX_ACK_ID_DIGITS = len(str(MAX_ACK_ID))
_MAX_COUNT_DIGITS = len(str(MAX_ATTACHMENTS))


@dataclasses.dataclass
class Packet:
    """One decoded Socket.IO packet (``data`` still holds placeholders while attachments are missing)."""

    type: int
    namespace: str
    id: int | None
    data: Any
    attachments: int = 0
    received: list[bytes] = dataclasses.field(default_factory=list)

    @property
    def name(self) -> str:
        """The packet type's name (``EVENT``, ``BINARY_ACK``, ...)."""
        return PACKET_NAMES[self.type]

    @property
    def topic(self) -> str | None:
        """The event name of an EVENT/BINARY_EVENT, as a topic; ``None`` for other packets."""
        if self.type in (EVENT, BINARY_EVENT) and isinstance(self.data, list) and self.data:
            first = self.data[0]
            return event_name(first) if isinstance(first, str) or _is_number(first) else None
        return None


class BadPacket(Exception):
    """A packet that cannot be parsed; its text is the precise reason.

    ``topic`` is the event name when it was readable; ``attachments`` how many binary messages the
    packet announced (the receiver swallows them rather than report each as unannounced).
    """

    def __init__(self, message: str, topic: str | None = None, attachments: int = 0) -> None:
        super().__init__(message)
        self.topic = topic
        self.attachments = attachments


# --- decoding --------------------------------------------------------------------------


def decode_packet(text: str) -> Packet:
    """Parse one Socket.IO packet (the text after the Engine.IO ``4``); :class:`BadPacket` when it breaks a rule."""
    if not text:
        raise BadPacket("empty Socket.IO packet")
    if text[0] not in _DIGITS or int(text[0]) >= len(PACKET_NAMES):
        raise BadPacket(f"unknown Socket.IO packet type {shown_char(text[0])}")
    kind, pos = int(text[0]), 1
    name = PACKET_NAMES[kind]
    attachments = 0
    if kind in (BINARY_EVENT, BINARY_ACK):
        end = _ascii_digits(text, pos)
        if end == pos or end >= len(text) or text[end] != "-":
            found = f" (found {shown_char(text[end])})" if end < len(text) else ""
            raise BadPacket(f"{name} without an attachment count (ASCII digits, then '-'){found}")
        count = text[pos:end].lstrip("0") or "0"
        if len(count) > _MAX_COUNT_DIGITS or not 1 <= int(count) <= MAX_ATTACHMENTS:
            raise BadPacket(f"{name} announces {_clipped(count)} attachments; 1 to {MAX_ATTACHMENTS} are allowed")
        attachments, pos = int(count), end + 1
    namespace = "/"
    if text.startswith("/", pos):
        comma = text.find(",", pos)
        end = len(text) if comma < 0 else comma
        namespace = text[pos:end].split("?", 1)[0]
        pos = end + 1
    end = _ascii_digits(text, pos)
    ack_id = None
    if end > pos:
        digits = text[pos:end].lstrip("0") or "0"
        if len(digits) > _MAX_ACK_ID_DIGITS or int(digits) > MAX_ACK_ID:
            raise BadPacket(f"{name} ack id {_clipped(digits)} is beyond 2**53 - 1", attachments=attachments)
        ack_id = int(digits)
    if end < len(text) and text[end].isnumeric():
        raise BadPacket(
            f"{name} has the non-ASCII numeral {shown_char(text[end])} where an ack id (ASCII digits) or JSON may stand",
            attachments=attachments,
        )
    data = None
    if end < len(text):
        try:
            data = loads(text[end:], f"{name} packet")
        except BadPacket as exc:
            raise BadPacket(str(exc), attachments=attachments) from None
    packet = Packet(kind, namespace, ack_id, data, attachments)
    _check(packet)
    return packet


def _check(packet: Packet) -> None:
    """Refuse a packet whose payload does not fit its type (socket.io-parser's ``isPayloadValid``)."""
    kind, data, name, attachments = packet.type, packet.data, packet.name, packet.attachments
    if kind in (EVENT, BINARY_EVENT):
        if not isinstance(data, list) or not data or not (isinstance(data[0], str) or _is_number(data[0])):
            raise BadPacket(f"{name} payload must be a list starting with the event name", attachments=attachments)
        if data[0] in RESERVED_EVENTS:
            raise BadPacket(f"{name} uses the reserved event name {data[0]!r}", topic=data[0], attachments=attachments)
    elif kind in (ACK, BINARY_ACK):
        if packet.id is None:
            raise BadPacket(f"{name} without an ack id", attachments=attachments)
        if not isinstance(data, list):
            raise BadPacket(f"{name} payload must be a list of values", attachments=attachments)
    elif kind == DISCONNECT and data is not None:
        raise BadPacket("DISCONNECT carries no payload")
    elif kind == CONNECT and data is not None and not isinstance(data, dict):
        raise BadPacket("CONNECT payload must be a JSON object")
    elif kind == CONNECT_ERROR and data is not None and not isinstance(data, (dict, str)):
        raise BadPacket("CONNECT_ERROR payload must be a JSON object or a string")
    if attachments:
        nums = [placeholder.get("num") for _, _, placeholder in _placeholders(data)]
        numbers = [num for num in nums if isinstance(num, int) and not isinstance(num, bool)]
        if len(numbers) != len(nums) or sorted(numbers) != list(range(attachments)):
            raise BadPacket(
                f"{name} announces {attachments} attachment(s) but its placeholders number "
                f"{_shown_nums(nums)}, not 0..{attachments - 1} once each",
                packet.topic,
                attachments,
            )


def resolve_placeholders(packet: Packet) -> Any:
    """The packet's data with every placeholder replaced by its attachment (all of them received; checked at decoding)."""
    for container, key, placeholder in _placeholders(packet.data):
        container[key] = packet.received[placeholder["num"]]
    return packet.data


def _placeholders(data: Any) -> list[tuple[Any, Any, dict[str, Any]]]:
    """Every ``{"_placeholder": true, ...}`` inside ``data`` as ``(container, key, placeholder)``, without recursion."""
    found: list[tuple[Any, Any, dict[str, Any]]] = []
    stack = [data] if isinstance(data, (list, dict)) else []
    while stack:
        node = stack.pop()
        for key, value in enumerate(node) if isinstance(node, list) else node.items():
            if isinstance(value, dict) and value.get("_placeholder") is True:
                found.append((node, key, value))
            elif isinstance(value, (list, dict)) and value:
                stack.append(value)
    return found


def event_name(value: Any) -> str:
    """An event name as a topic: a number becomes its decimal string (the key a JavaScript listener has)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def unpack_args(args: list[Any]) -> Any:
    """Socket.IO argument lists as nbsocket data: none -> ``None``, one -> itself, more -> the list."""
    if not args:
        return None
    return args[0] if len(args) == 1 else list(args)


# --- encoding ------------------------------------------------------------------------------


def encode_packet(kind: int, data: Any, *, namespace: str = "/", ack_id: int | None = None) -> tuple[str, list[bytes]]:
    """A packet's text and its attachments: bytes anywhere in an EVENT's or ACK's ``data`` make it binary.

    Raises :class:`~nbsocket.errors.EncodeError` when ``data`` is not JSON (a lone surrogate is escaped,
    as ``JSON.stringify`` does, so the text is always valid UTF-8).
    """
    attachments: list[bytes] = []
    try:
        if kind in (EVENT, ACK):
            data = _extract_binary(data, attachments)
        payload = "" if data is None else dumps(data)
    except (TypeError, ValueError, RecursionError) as exc:
        raise EncodeError(f"socketio arguments are not JSON-serialisable: {exc}") from None
    head = str(kind if not attachments else BINARY_EVENT if kind == EVENT else BINARY_ACK)
    head += f"{len(attachments)}-" if attachments else ""
    head += "" if namespace == "/" else namespace + ","
    head += "" if ack_id is None else str(ack_id)
    return head + payload, attachments


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


# --- JSON and small helpers ------------------------------------------------------------------


def dumps(value: Any) -> str:
    """Compact JSON as ``JSON.stringify`` writes it; a lone surrogate is escaped, never sent as invalid UTF-8."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text


def loads(text: str, what: str) -> Any:
    """Strict JSON (as ``JSON.parse``: no ``NaN``/``Infinity``); :class:`BadPacket` naming ``what`` otherwise."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, BadPacket) as exc:
        raise BadPacket(f"bad JSON in {what}: {exc}") from None
    except RecursionError:
        raise BadPacket(f"bad JSON in {what}: nested too deeply") from None


def _refuse_constant(name: str) -> Any:
    raise BadPacket(f"{name} is not JSON")


def shown_char(char: str) -> str:
    """A character for an error message, with its code point when it is not printable ASCII."""
    return repr(char) if char.isascii() and char.isprintable() else f"{char!r} (U+{ord(char):04X})"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _ascii_digits(text: str, pos: int) -> int:
    """The end of the run of ASCII digits that starts at ``pos``."""
    end = pos
    while end < len(text) and text[end] in _DIGITS:
        end += 1
    return end


def _clipped(digits: str) -> str:
    return digits if len(digits) <= 20 else digits[:20] + "..."


def _shown_nums(nums: list[Any]) -> str:
    shown = ", ".join(repr(num) for num in nums[:8])
    return f"[{shown}{', ...' if len(nums) > 8 else ''}]" if nums else "none"
