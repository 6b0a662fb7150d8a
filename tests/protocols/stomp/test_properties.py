"""Properties of the STOMP codec on generated frames, and a differential test against stomp.py's frame parser.

* what the verbs produce parses back to what was asked (headers escaped and unescaped, bodies byte for byte);
* generated server frames (MESSAGE with JSON, text and binary bodies, RECEIPT, several frames and heart-beat
  EOLs in one WebSocket message) become the right actions;
* any bytes become actions without an exception, and every broken frame is ``Malformed`` with a reason;
* every well-formed frame nbsocket encodes is read the same by nbsocket and by stomp.py (``stomp.utils.parse_frame``
  after its transport's NUL/content-length framing, transcribed in :func:`stomp_py_frames`). Where stomp.py is
  lenient, ``test_where_stomp_py_is_lenient_nbsocket_reports`` pins what each parser does.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import stomp.utils as stomp_utils  # stomp.py, a test dependency: the reference STOMP frame parser
from hypothesis import given
from hypothesis import strategies as st

from nbsocket.core.protocols.base import Deliver, Housekeeping, Malformed, Ready, Reply
from nbsocket.core.protocols.stomp import STOMP
from nbsocket.core.protocols.stomp_frames import StompFrame, decode_body, encode_body, encode_frame, parse_frames
from nbsocket.errors import ProtocolError

from ..strategies import PROPERTY, json_values, never_raises

CONNECTED = "CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\x00"

header_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
header_names = header_text.filter(bool)
headers = st.dictionaries(header_names.filter(lambda name: name != "content-length"), header_text, max_size=5)
bodies = st.binary(max_size=64)
server_commands = st.sampled_from(["MESSAGE", "RECEIPT", "ERROR"])


def stomp_py_frames(wire: bytes) -> list[Any]:
    """stomp.py's reading of one buffer: its transport's framing (``BaseTransport.__read``: up to a NUL, or past it by
    ``content-length``; EOLs after a frame skipped), then ``stomp.utils.parse_frame`` on each frame."""
    content_length = re.compile(rb"^content-length[:]\s*(?P<value>[0-9]+)", re.MULTILINE)
    frames, buf = [], wire
    while True:
        pos = buf.find(b"\x00")
        if pos < 0:
            break
        frame = buf[:pos]
        preamble = stomp_utils.PREAMBLE_END_RE.search(frame)
        if preamble:
            length = content_length.search(frame[: preamble.start()])
            if length:
                size = preamble.end() + int(length.group("value"))
                if size > len(frame):
                    if size >= len(buf):
                        break
                    pos, frame = size, buf[:size]
        frames.append(frame)
        pos += 1
        while buf[pos : pos + 1] == b"\n" or buf[pos : pos + 2] == b"\r\n":
            pos += 1 if buf[pos : pos + 1] == b"\n" else 2
        buf = buf[pos:]
    return [stomp_utils.parse_frame(frame) for frame in frames]


def connected() -> STOMP:
    stomp = STOMP(login="guest", passcode="guest")
    stomp.start(0.0)
    assert isinstance(stomp.receive(CONNECTED, 0.0)[-1], Ready)
    return stomp


@PROPERTY
@given(command=server_commands, frame_headers=headers, body=bodies, eols=st.sampled_from(["", "\n", "\r\n\n"]))
def test_nbsocket_and_stomp_py_read_every_well_formed_frame_the_same(
    command: str, frame_headers: dict[str, str], body: bytes, eols: str
) -> None:
    wire = encode_frame(command, frame_headers, body) + eols.encode()
    [ours] = [item for item in parse_frames(wire) if item is not None]
    [theirs] = stomp_py_frames(wire)
    assert isinstance(ours, StompFrame), ours
    assert (ours.command, ours.headers, ours.body) == (theirs.cmd, theirs.headers, theirs.body)
    expected = {**frame_headers, **({"content-length": str(len(body))} if body else {})}
    assert ours.headers == expected and ours.body == body


@PROPERTY
@given(
    frames=st.lists(st.tuples(server_commands, headers, bodies), min_size=1, max_size=4),
    eols=st.lists(st.sampled_from(["", "\n", "\r\n"]), min_size=4, max_size=4),
)
def test_several_frames_in_one_message_are_read_in_order_by_both(
    frames: list[tuple[str, dict[str, str], bytes]], eols: list[str]
) -> None:
    wire = b"".join(encode_frame(c, h, b) + eol.encode() for (c, h, b), eol in zip(frames, eols, strict=False))
    ours = [item for item in parse_frames(wire) if item is not None]
    assert [(f.command, f.headers, f.body) for f in ours] == [(f.cmd, f.headers, f.body) for f in stomp_py_frames(wire)]
    assert [f.command for f in ours] == [command for command, _, _ in frames]


def test_where_stomp_py_is_lenient_nbsocket_reports() -> None:
    """Frames stomp.py reads without complaint (or drops silently), which nbsocket keeps as Malformed with a reason."""
    lenient = {
        b"MESSAGE\ndestination:/q/a\\t\n\nx\x00": ("undefined escape", {"destination": "/q/a\\t"}),  # kept as is
        b"MESSAGE\nno colon here\ndestination:/q/a\n\nx\x00": ("without ':'", {"destination": "/q/a"}),  # line skipped
        b"MESSAGE\ndestination:\xff\n\nx\x00": ("not UTF-8", {"destination": "\ufffd"}),  # replaced
        b"message\ndestination:/q/a\n\nx\x00": ("bad command line", {"destination": "/q/a"}),  # any command
        b"MESSAGE\ncontent-length:9\n\nx\x00": ("not 9 octets", {"content-length": "9"}),  # waits for more octets
    }
    for wire, (reason, their_headers) in lenient.items():
        [ours] = parse_frames(wire)
        assert isinstance(ours, Malformed) and reason in ours.error, (wire, ours)
        theirs = stomp_py_frames(wire)
        if reason == "not 9 octets":
            assert theirs == []  # stomp.py keeps the bytes and waits: over WebSocket the frame never completes
        else:
            assert theirs[0].headers == their_headers
    [ours] = parse_frames(b"MESSAGE\n:empty name\n\nx\x00")  # an empty header name: nbsocket keeps it,
    assert isinstance(ours, StompFrame) and ours.headers == {"": "empty name"}
    assert stomp_py_frames(b"MESSAGE\n:empty name\n\nx\x00")[0].headers == {}  # stomp.py's header pattern skips it


@PROPERTY
@given(
    destination=header_names,
    body=json_values | st.text(max_size=30) | st.binary(max_size=30),
    extra=headers.map(lambda h: {k: v for k, v in h.items() if k not in ("destination", "content-type", "receipt")}),
)
def test_publish_parses_back_to_what_was_asked(destination: str, body: Any, extra: dict[str, str]) -> None:
    stomp = connected()
    [wire] = stomp.publish(destination, body, extra)
    [frame] = parse_frames(wire)
    octets, content_type, binary = encode_body(body, None)
    assert isinstance(frame, StompFrame) and frame.command == "SEND" and frame.body == octets
    assert isinstance(wire, bytes) == binary  # a binary body goes as a binary WebSocket message
    expected = {**extra, "destination": destination, **({"content-type": content_type} if content_type else {})}
    if octets:
        expected["content-length"] = str(len(octets))
    assert frame.headers == expected
    sent = b"" if body is None else body if isinstance(body, (bytes, str)) else json.loads(json.dumps(body))
    assert decode_body(frame.body, content_type) == (sent, None)


@PROPERTY
@given(destination=header_names, extra=headers, ack=st.sampled_from(["auto", "client", "client-individual"]))
def test_subscribe_and_acknowledge_parse_back(destination: str, extra: dict[str, str], ack: str) -> None:
    stomp = connected()
    extra = {k: v for k, v in extra.items() if k not in ("id", "destination", "ack", "receipt")}
    sub_id, topic, [wire] = stomp.subscribe(destination, ack=ack, headers=extra)
    [frame] = parse_frames(wire)
    assert topic == destination and frame.command == "SUBSCRIBE"
    assert frame.headers == {**extra, "id": sub_id, "destination": destination, "ack": ack, "receipt": f"{sub_id}@1"}
    message = encode_frame(
        "MESSAGE", {"destination": destination, "subscription": sub_id, "message-id": "m-1", "ack": "a:1"}, b"x"
    )
    [deliver] = stomp.receive(message, 1.0)
    if ack == "auto":
        assert deliver.ack is None
    else:
        [ack_wire] = stomp.acknowledge(deliver.ack, positive=False)
        assert parse_frames(ack_wire) == [StompFrame("NACK", {"id": "a:1"})]


content_types = st.sampled_from(
    [None, "application/json", "text/plain;charset=utf-8", "application/octet-stream", "application/vnd.x+json", "text/csv"]
)


@PROPERTY
@given(
    messages=st.lists(st.tuples(header_names, content_types, json_values | st.binary(max_size=20)), min_size=1, max_size=4),
    beats=st.integers(0, 2),
)
def test_generated_messages_become_deliveries_in_order(messages: list[tuple[str, str | None, Any]], beats: int) -> None:
    stomp = connected()
    wire, expected = b"\n" * beats, []
    for n, (destination, content_type, value) in enumerate(messages):
        if isinstance(value, bytes):
            octets = value
        else:
            octets = json.dumps(value).encode() if content_type and "json" in content_type else str(value).encode()
        frame_headers = {
            "destination": destination,
            "message-id": f"m-{n}",
            "subscription": "sub-9",
            **({"content-type": content_type} if content_type else {}),
        }
        wire += encode_frame("MESSAGE", frame_headers, octets) + b"\n" * beats
        data, error = decode_body(octets, content_type)
        parsed_headers = {**frame_headers, **({"content-length": str(len(octets))} if octets else {})}
        expected.append(Deliver(destination, data, error=error, headers=parsed_headers))
    assert never_raises(stomp.receive(wire, 1.0)) == expected
    assert stomp.receive(b"\n" * (beats + 1), 2.0) == [Housekeeping("heart-beat")]


@PROPERTY
@given(receipt_id=header_names)
def test_receipts_reply_to_their_id(receipt_id: str) -> None:
    stomp = connected()
    assert stomp.receive(encode_frame("RECEIPT", {"receipt-id": receipt_id}), 1.0) == [
        Reply(receipt_id, value={"receipt-id": receipt_id})
    ]


@PROPERTY
@given(body=st.binary(max_size=80) | st.text(max_size=80).map(str.encode), cut=st.integers(0, 80))
def test_any_bytes_become_actions_without_an_exception(body: bytes, cut: int) -> None:
    stomp = connected()
    never_raises(stomp.receive(body, 1.0))
    wire = encode_frame("MESSAGE", {"destination": "/q/a"}, body)
    never_raises(stomp.receive(wire[:cut], 1.0))  # a frame cut anywhere


@pytest.mark.parametrize("bad", [{"x": "a\x00b"}, {"a\x00": "b"}])
def test_headers_no_parser_could_read_back_are_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ProtocolError, match="NUL"):
        connected().publish("/q/a", "x", bad)
    with pytest.raises(ProtocolError, match="line break"):
        encode_frame("CONNECT", {"login": "a\nb"})
