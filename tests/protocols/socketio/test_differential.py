"""nbsocket's Socket.IO / Engine.IO codec against python-socketio's and python-engineio's packet classes.

Hypothesis writes packets of every type (namespaces, ack ids, nested JSON, binary attachments, connection
state recovery offsets). Encoded by one side and decoded by the other, they must come out the same, both
ways: ``socketio.packet.Packet``/``engineio.packet.Packet`` encode and nbsocket's ``SocketIO.receive`` reads;
nbsocket's ``emit``/``call``/``acknowledge``/CONNECT encode and python-socketio reads.

Generated malformed text (wrong and non-ASCII digits, bad counts, long ids, broken JSON, stray attachments)
never makes nbsocket raise. Where python-socketio is lenient and nbsocket reports, the test names the
lenience and checks that nbsocket's ``Malformed`` gives the matching reason (``LENIENCES``); where nbsocket
accepts what python-socketio refuses, the test names that too (``STRICTER_IN_PYTHON_SOCKETIO``).

``NBSOCKET_FUZZ_EXAMPLES`` sets how many examples each test runs (the suite runs a fixed, derandomized
set; ``python benchmarks/fuzz.py socketio`` runs many more, drawn afresh each time).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("socketio")

from engineio import packet as eio
from socketio import packet as sio

from nbsocket.core.protocols.base import Action, Close, Deliver, Housekeeping, Malformed, Ready, Refused, Reply, Report, Send
from nbsocket.core.protocols.socketio import AckToken, SocketIO
from nbsocket.core.protocols.socketio_packets import MAX_ACK_ID, MAX_ATTACHMENTS, RESERVED_EVENTS, BadPacket, decode_packet

EXAMPLES = int(os.environ.get("NBSOCKET_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=not os.environ.get("NBSOCKET_FUZZ_RANDOM"),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""A fixed, derandomized set in the suite; ``NBSOCKET_FUZZ_RANDOM=1`` draws new examples on every run."""

OPEN = '0{"sid":"eio","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
NUMERALS = ["٣", "２", "²", "٢", "½", "߃", "๓", "Ⅻ"]
"""Characters ``str.isdigit``/``isnumeric`` take for digits and Python's ``int`` may read; never ASCII."""

# --- strategies ---------------------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8") | st.sampled_from(["\ud800", "\udfff", "é", "\x00", '"', "\\"]), max_size=12)
keys = texts.filter(lambda key: key != "_placeholder")
scalars = (
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.floats(allow_nan=False, allow_infinity=False) | texts
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=12
)
binary_values = st.recursive(
    scalars | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
namespaces = st.sampled_from(["/", "/", "/admin", "/a-b_c.d"]) | st.text(
    st.characters(codec="utf-8", exclude_characters=",?"), min_size=1, max_size=8
).map(lambda name: "/" + name)
event_names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=10).filter(lambda name: name not in RESERVED_EVENTS)
ack_ids = st.none() | st.integers(0, MAX_ACK_ID)


def opened(namespace: str, connect_reply: dict[str, Any] | None = None) -> SocketIO:
    """A SocketIO object on ``namespace`` whose CONNECT the server (python-socketio's encoder) accepted."""
    prot = SocketIO(namespace=namespace)
    prot.start(0.0)
    prot.receive(OPEN, 0.0)
    [ready] = receive_all(prot, python_encode(sio.CONNECT, connect_reply or {"sid": "s"}, namespace))
    assert isinstance(ready, Ready)
    return prot


def receive_all(prot: SocketIO, messages: list[str | bytes]) -> list[Action]:
    """Every message into ``prot``; the actions that are not housekeeping."""
    actions: list[Action] = []
    for message in messages:
        actions += prot.receive(message, 0.0)
    return [action for action in actions if not isinstance(action, Housekeeping)]


def python_encode(kind: int, data: Any, namespace: str, ack_id: int | None = None) -> list[str | bytes]:
    """A Socket.IO packet as python-socketio writes it, in Engine.IO messages as python-engineio writes them."""
    encoded = sio.Packet(kind, data=data, namespace=namespace, id=ack_id).encode()
    parts = encoded if isinstance(encoded, list) else [encoded]
    return [eio.Packet(eio.MESSAGE, data=part).encode() for part in parts]


def python_decode(messages: list[str | bytes]) -> sio.Packet:
    """nbsocket's messages read by python-engineio and python-socketio (attachments added)."""
    head = eio.Packet(encoded_packet=messages[0])
    assert head.packet_type == eio.MESSAGE and isinstance(head.data, str)
    packet = sio.Packet(encoded_packet=head.data)
    assert packet.attachment_count == len(messages) - 1
    for attachment in messages[1:]:
        frame = eio.Packet(encoded_packet=attachment)
        assert frame.binary and frame.packet_type == eio.MESSAGE
        packet.add_attachment(frame.data)
    return packet


def has_bytes(value: Any) -> bool:
    if isinstance(value, bytes):
        return True
    if isinstance(value, list):
        return any(has_bytes(item) for item in value)
    if isinstance(value, dict):
        return any(has_bytes(item) for item in value.values())
    return False


def unpacked(args: list[Any]) -> Any:
    return None if not args else args[0] if len(args) == 1 else args


# --- python-socketio writes, nbsocket reads ----------------------------------------------------------


@FUZZ
@given(namespace=namespaces, name=event_names, args=st.lists(binary_values, max_size=4), ack_id=ack_ids)
def test_events_written_by_python_socketio_are_read_alike(namespace: str, name: str, args: list[Any], ack_id: int | None) -> None:
    prot = opened(namespace)
    [event] = receive_all(prot, python_encode(sio.EVENT, [name, *args], namespace, ack_id))
    ack = None if ack_id is None else AckToken(namespace, ack_id, 1)
    assert event == Deliver(topic=name, data=unpacked(args), ack=ack, headers={"namespace": namespace})


@FUZZ
@given(namespace=namespaces, values=st.lists(binary_values, max_size=4), ack_id=st.integers(0, MAX_ACK_ID - 10))
def test_acks_written_by_python_socketio_are_read_alike(namespace: str, values: list[Any], ack_id: int) -> None:
    prot = opened(namespace)
    call_id, _ = prot.call("question")
    [report] = receive_all(prot, python_encode(sio.ACK, values, namespace, ack_id + call_id + 1))  # no call has that id
    assert isinstance(report, Report) and f"ack {ack_id + call_id + 1} on {namespace}:" in report.message
    assert receive_all(prot, python_encode(sio.ACK, values, namespace, call_id)) == [Reply(call_id, value=unpacked(values))]


@FUZZ
@given(
    namespace=namespaces,
    sid=texts,
    extra=st.dictionaries(keys.filter(lambda k: k not in ("sid", "pid")), json_values, max_size=3),
    pid=st.none() | texts.filter(bool),
    args=st.lists(json_values, max_size=3),
    offset=texts,
)
def test_connect_replies_and_recovery_offsets_are_read_alike(
    namespace: str, sid: str, extra: dict[str, Any], pid: str | None, args: list[Any], offset: str
) -> None:
    reply = {**extra, "sid": sid} if pid is None else {**extra, "sid": sid, "pid": pid}
    prot = opened(namespace, reply)
    [event] = receive_all(prot, python_encode(sio.EVENT, ["tick", *args, offset], namespace))
    if pid is None:  # no connection state recovery: the last string is an argument like any other
        assert event.data == unpacked([*args, offset]) and "offset" not in event.headers
    else:
        assert event.data == unpacked(args) and event.headers["offset"] == offset


@FUZZ
@given(namespace=namespaces, message=texts, data=st.none() | json_values, as_string=st.booleans())
def test_connect_errors_written_by_python_socketio_are_read_alike(
    namespace: str, message: str, data: Any, as_string: bool
) -> None:
    prot = SocketIO(namespace=namespace)
    prot.start(0.0)
    prot.receive(OPEN, 0.0)
    payload: Any = message if as_string else {"message": message, "data": data}
    [refused] = receive_all(prot, python_encode(sio.CONNECT_ERROR, payload, namespace))
    assert isinstance(refused, Refused) and refused.reason.endswith(f"on {namespace}: {message}")
    assert refused.data == (None if as_string else data)


@FUZZ
@given(namespace=namespaces)
def test_disconnect_written_by_python_socketio_closes(namespace: str) -> None:
    prot = opened(namespace)
    [close] = receive_all(prot, python_encode(sio.DISCONNECT, None, namespace))
    assert isinstance(close, Close) and close.code == 1000 and not prot.ready


@FUZZ
@given(interval=st.integers(0, 10**7), timeout=st.integers(0, 10**7), sid=texts, ping_data=st.sampled_from(["", "probe"]))
def test_engineio_packets_written_by_python_engineio_are_read_alike(
    interval: int, timeout: int, sid: str, ping_data: str
) -> None:
    prot = SocketIO()
    prot.start(0.0)
    info = {"sid": sid, "upgrades": [], "pingInterval": interval, "pingTimeout": timeout, "maxPayload": 1000000}
    send, housekeeping = prot.receive(eio.Packet(eio.OPEN, data=info).encode(), 0.0)
    assert send == Send("40") and isinstance(housekeeping, Housekeeping)
    assert prot.next_deadline() == pytest.approx((interval + timeout) / 1000)
    [pong, _] = prot.receive(eio.Packet(eio.PING, data=ping_data or None).encode(), 1.0)
    answer = eio.Packet(encoded_packet=pong.payload)
    assert answer.packet_type == eio.PONG and (answer.data or "") == ping_data
    assert prot.receive(eio.Packet(eio.NOOP).encode(), 1.0) == [Housekeeping("noop")]
    [close] = prot.receive(eio.Packet(eio.CLOSE).encode(), 1.0)
    assert isinstance(close, Close)


# --- nbsocket writes, python-socketio reads -----------------------------------------------------------


@FUZZ
@given(namespace=namespaces, name=event_names, args=st.lists(binary_values, max_size=4), ack_id=ack_ids)
def test_events_nbsocket_writes_are_read_alike(namespace: str, name: str, args: list[Any], ack_id: int | None) -> None:
    packet = python_decode(SocketIO(namespace=namespace).emit(name, *args, ack_id=ack_id))
    binary = has_bytes(args)
    assert packet.packet_type == (sio.BINARY_EVENT if binary else sio.EVENT)
    assert (packet.namespace or "/") == namespace and packet.id == ack_id
    assert packet.data == [name, *args]


@FUZZ
@given(
    namespace=namespaces,
    value=st.none() | binary_values | st.tuples(binary_values, binary_values),
    ack_id=st.integers(0, MAX_ACK_ID),
)
def test_acks_nbsocket_writes_are_read_alike(namespace: str, value: Any, ack_id: int) -> None:
    prot = opened(namespace)
    [event] = receive_all(prot, python_encode(sio.EVENT, ["question"], namespace, ack_id))
    packet = python_decode(prot.acknowledge(event.ack, value))
    values = list(value) if isinstance(value, tuple) else [] if value is None else [value]
    assert packet.packet_type == (sio.BINARY_ACK if has_bytes(values) else sio.ACK)
    assert (packet.namespace or "/") == namespace and packet.id == ack_id and packet.data == values


@FUZZ
@given(
    namespace=namespaces, auth=st.none() | st.dictionaries(keys, json_values, max_size=3), pid=texts.filter(bool), offset=texts
)
def test_connect_packets_nbsocket_writes_are_read_alike(
    namespace: str, auth: dict[str, Any] | None, pid: str, offset: str
) -> None:
    prot = SocketIO(namespace=namespace, auth=auth)
    prot.start(0.0)
    [send, _] = prot.receive(OPEN, 0.0)
    packet = python_decode([send.payload])
    assert packet.packet_type == sio.CONNECT and (packet.namespace or "/") == namespace and packet.data == auth
    receive_all(prot, python_encode(sio.CONNECT, {"sid": "s", "pid": pid}, namespace))
    receive_all(prot, python_encode(sio.EVENT, ["tick", 1, offset], namespace))
    prot.closed()
    prot.start(1.0)
    [send, _] = prot.receive(OPEN, 1.0)
    packet = python_decode([send.payload])
    assert packet.packet_type == sio.CONNECT and packet.data == {"pid": pid, "offset": offset, **(auth or {})}


# --- malformed text: nbsocket never raises, and reports where python-socketio is lenient ---------------


@st.composite
def valid_packets(draw: st.DrawFn) -> str:
    """A well-formed packet text of any type, as python-socketio writes it (binary ones with their placeholders)."""
    kind = draw(st.sampled_from(range(7)))
    namespace = draw(namespaces)
    if kind in (sio.EVENT, sio.BINARY_EVENT):
        data: Any = [
            draw(event_names | st.integers(0, 99)),
            *draw(st.lists(binary_values if kind == sio.BINARY_EVENT else json_values, max_size=3)),
        ]
    elif kind in (sio.ACK, sio.BINARY_ACK):
        data = draw(st.lists(binary_values if kind == sio.BINARY_ACK else json_values, max_size=3))
    elif kind == sio.CONNECT:
        data = draw(st.none() | st.dictionaries(keys, json_values, max_size=3))
    elif kind == sio.CONNECT_ERROR:
        data = draw(texts | st.fixed_dictionaries({"message": texts, "data": json_values}))
    else:
        data = None
    ack_id = (
        draw(ack_ids)
        if kind in (sio.EVENT, sio.BINARY_EVENT)
        else draw(st.integers(0, MAX_ACK_ID))
        if kind in (sio.ACK, sio.BINARY_ACK)
        else None
    )
    kind = {sio.BINARY_EVENT: sio.EVENT, sio.BINARY_ACK: sio.ACK}.get(kind, kind)  # binary when the data holds bytes
    encoded = sio.Packet(kind, data=data, namespace=namespace, id=ack_id).encode()
    return encoded[0] if isinstance(encoded, list) else encoded


MUTATIONS: list[Callable[[str, st.DrawFn], str]] = [
    lambda text, draw: draw(st.sampled_from([*NUMERALS, *"789x -"])) + text[1:],  # the type
    lambda text, draw: text[:1] + draw(st.sampled_from([*NUMERALS, "0", "00", "9" * 30, "10001"])) + "-" + text[1:],  # a count
    lambda text, draw: text[:1] + text[1:].replace("-", "", 1),  # a count without its dash
    lambda text, draw: _at_json(text, draw(st.sampled_from([*NUMERALS, "1" * 20, "1" * 120, str(2**53), "0" * 30 + "5"]))),
    lambda text, draw: text.replace("null", "NaN", 1) if "null" in text else text + "NaN",
    lambda text, draw: text.replace('"num":0', '"num":' + draw(st.sampled_from(["1", "0.0", "true", "-1", '"0"'])), 1),
    lambda text, draw: text.replace(',{"_placeholder":true,"num":0}', "", 1) if "_placeholder" in text else text,
    lambda text, draw: text[:-1] if len(text) > 1 else text,  # cut short
    lambda text, draw: _insert(text, draw, draw(st.sampled_from([*NUMERALS, "-", ",", "/", "[", "]", "{", '"', "0", "\\"]))),
    lambda text, draw: text[:1] + '["connect"]' if draw(st.booleans()) else text[:1] + "[]",
]
"""Ways to break a well-formed packet text: the type, the count, the ack id, the JSON, the placeholders, anywhere."""


def _at_json(text: str, inserted: str) -> str:
    """``inserted`` just before the JSON payload (where the ack id stands)."""
    cut = len(_head(text))
    return text[:cut] + inserted + text[cut:]


def _insert(text: str, draw: st.DrawFn, inserted: str) -> str:
    at = draw(st.integers(0, len(text)))
    return text[:at] + inserted + text[at:]


@st.composite
def packet_texts(draw: st.DrawFn) -> str:
    """Packet text (after the Engine.IO ``4``): a well-formed packet, often broken in one to three places."""
    text = draw(valid_packets())
    for mutate in draw(st.lists(st.sampled_from(MUTATIONS), max_size=3)):
        text = mutate(text, draw)
    return text


def python_reads(text: str) -> sio.Packet | None:
    """python-socketio's reading of a packet text, or None when it raises."""
    try:
        return sio.Packet(encoded_packet=text)
    except Exception:
        return None


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, list):
        return [f for item in value for f in _floats(item)]
    if isinstance(value, dict):
        return [f for item in value.values() for f in _floats(item)]
    return []


def _fits_its_type(packet: sio.Packet) -> bool:
    """socket.io-parser's ``isPayloadValid`` (and an ACK needs an id), applied to python-socketio's reading."""
    kind, data = packet.packet_type, packet.data
    if data is None:
        return kind in (sio.CONNECT, sio.DISCONNECT, sio.CONNECT_ERROR)
    if kind == sio.CONNECT:
        return isinstance(data, dict)
    if kind == sio.CONNECT_ERROR:
        return isinstance(data, (dict, str))
    if kind in (sio.EVENT, sio.BINARY_EVENT):
        first = data[0] if isinstance(data, list) and data else None
        return (isinstance(first, str) and first not in RESERVED_EVENTS) or (
            isinstance(first, (int, float)) and not isinstance(first, bool)
        )
    if kind in (sio.ACK, sio.BINARY_ACK):
        return isinstance(data, list) and packet.id is not None
    return False


def _placeholder_nums(value: Any) -> list[Any]:
    if isinstance(value, dict):
        if value.get("_placeholder") is True:
            return [value.get("num")]
        return [num for item in value.values() for num in _placeholder_nums(item)]
    if isinstance(value, list):
        return [num for item in value for num in _placeholder_nums(item)]
    return []


def _numbered_once(packet: sio.Packet) -> bool:
    nums = _placeholder_nums(packet.data)
    return all(type(num) is int for num in nums) and sorted(nums) == list(range(packet.attachment_count))


def _head(text: str) -> str:
    """The part of a packet text before its JSON: type, count, namespace and ack id (as python-socketio cuts it)."""
    pos = 1
    dash = text.find("-", 1)
    if dash > 1 and text[1:dash].isdigit():
        pos = dash + 1
    if text.startswith("/", pos):
        comma = text.find(",", pos)
        pos = len(text) if comma < 0 else comma + 1
    while pos < len(text) and text[pos].isnumeric():
        pos += 1
    return text[:pos]


def _digit_fields(text: str) -> str:
    """The type, the attachment count and the ack id of a packet text: where only ASCII digits may stand."""
    head = _head(text)
    namespace = re.search(r"/[^,]*(,|$)", head[1:])
    return head if namespace is None else head[: namespace.start() + 1] + head[namespace.end() + 1 :]


def _python_reads_a_count(text: str) -> bool:
    """python-socketio's own test for an attachment count: any ``<str.isdigit() run>-`` right after the type."""
    dash = text.find("-", 1)
    return dash > 1 and text[1:dash].isdigit()


LENIENCES: list[tuple[str, Callable[[str, sio.Packet], bool], str]] = [
    (
        "reads a non-ASCII numeral (Arabic-Indic, full-width, ...) as a digit of the type, count or ack id",
        lambda text, packet: any(not c.isascii() and c.isnumeric() for c in _digit_fields(text)),
        r"\(U\+[0-9A-F]{4,5}\)",
    ),
    ("takes a packet type beyond 6", lambda text, packet: not 0 <= packet.packet_type <= 6, r"unknown Socket\.IO packet type"),
    (
        "takes a missing, zero or unreadable attachment count of a binary packet for none",
        lambda text, packet: packet.packet_type in (sio.BINARY_EVENT, sio.BINARY_ACK) and packet.attachment_count == 0,
        r"attachment count|announces 0 attachments|are allowed",
    ),
    (
        "reads '<digits>-' as an attachment count in a packet type that has none",
        lambda text, packet: packet.packet_type not in (sio.BINARY_EVENT, sio.BINARY_ACK) and _python_reads_a_count(text),
        r"bad JSON|payload must be|carries no payload",
    ),
    (
        "accepts an attachment count of up to 10 digits (socket.io-parser's default limit is 10 attachments)",
        lambda text, packet: packet.attachment_count > MAX_ATTACHMENTS,
        r"are allowed",
    ),
    (
        "accepts an ack id beyond 2**53 - 1 (up to 100 digits)",
        lambda text, packet: packet.id is not None and packet.id > MAX_ACK_ID,
        r"beyond 2\*\*53 - 1",
    ),
    (
        "accepts NaN and Infinity, which are not JSON",
        lambda text, packet: (
            any(math.isnan(f) or math.isinf(f) for f in _floats(packet.data)) and ("NaN" in text or "Infinity" in text)
        ),
        r"(NaN|Infinity) is not JSON",
    ),
    (
        "accepts any payload, whatever the packet type (socket.io-parser checks it fits: isPayloadValid)",
        lambda text, packet: not _fits_its_type(packet),
        r"payload must be|carries no payload|reserved event name|without an ack id",
    ),
    (
        "accepts placeholders that do not number the attachments 0..n-1 once each",
        lambda text, packet: packet.attachment_count > 0 and not _numbered_once(packet),
        r"placeholders number",
    ),
]
"""Where python-socketio's ``Packet.decode`` is lenient and nbsocket reports: (the lenience, when a reading shows it,
the reason nbsocket must give)."""

STRICTER_IN_PYTHON_SOCKETIO = [
    (
        "refuses JSON integers of more than 100 digits (python-engineio's guard); nbsocket reads them up to Python's limit",
        lambda text: re.search(r"\d{101}", text) is not None,
    ),
]
"""Where python-socketio refuses what nbsocket reads: (the difference, whether the text shows it)."""


def check_against_python_socketio(text: str) -> None:
    python = python_reads(text)
    try:
        ours = decode_packet(text)
    except BadPacket as exc:
        reason = str(exc)
        assert reason, f"BadPacket without a reason for {text!r}"
        if python is None:
            return
        explained = [(what, expected) for what, shows, expected in LENIENCES if shows(text, python)]
        assert explained, (
            f"python-socketio reads {text!r} as {python._to_dict()}; nbsocket refuses it ({reason}) for no listed reason"
        )
        assert any(re.search(expected, reason) for _, expected in explained), (
            f"{text!r}: nbsocket's reason {reason!r} matches none of {[what for what, _ in explained]}"
        )
        return
    if python is None:
        assert any(shows(text) for _, shows in STRICTER_IN_PYTHON_SOCKETIO), (
            f"python-socketio refuses {text!r}, nbsocket reads it"
        )
        return
    assert (ours.type, ours.namespace, ours.id, ours.attachments) == (
        python.packet_type,
        python.namespace or "/",
        python.id,
        python.attachment_count,
    ), text
    assert ours.data == python.data, text


@FUZZ
@given(text=packet_texts())
def test_generated_packets_are_read_as_python_socketio_reads_them_or_reported(text: str) -> None:
    check_against_python_socketio(text)


@pytest.mark.parametrize(
    "text",
    [
        '２["ev"]',
        "3٣[1]",
        "31٣[1]",
        '5٢-["e",{"_placeholder":true,"num":0}]',
        '50-["e"]',
        "7[1]",
        '21-["e"]',
        "3" + "1" * 60 + "[1]",
        '2["e",NaN]',
        '2["connect"]',
        "3[1]",
        "2{}",
        '52-["e",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]',
        "1{}",
    ],
)
def test_each_lenience_of_python_socketio_is_reported(text: str) -> None:
    assert python_reads(text) is not None, "python-socketio reads it (the lenience)"
    with pytest.raises(BadPacket):
        decode_packet(text)
    check_against_python_socketio(text)


@FUZZ
@given(
    messages=st.lists(
        st.one_of(
            packet_texts().map(lambda text: "4" + text),
            st.binary(max_size=6),
            texts,
            st.sampled_from([OPEN, "2", "3", "6", "5", "1", "0{}", "40", '40{"sid":"s"}']),
        ),
        max_size=8,
    )
)
def test_nothing_generated_makes_nbsocket_raise(messages: list[str | bytes]) -> None:
    prot = SocketIO()
    prot.start(0.0)
    for message in messages:
        for action in prot.receive(message, 0.0):
            assert isinstance(action, (Send, Deliver, Reply, Ready, Refused, Close, Malformed, Report, Housekeeping))
            if isinstance(action, Malformed):
                assert action.error
