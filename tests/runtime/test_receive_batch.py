"""The batched receive path keeps what the one-message-at-a-time path gave: order, exactly once, data,
parse errors, the live frame and the transcript, for a stream that mixes every kind of message."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import pytest

import nbsocket as nbs
from nbsocket.core.codecs import decode_json
from nbsocket.core.flatten import message_fields
from nbsocket.core.frame import LiveFrame

from ..servers import WsServer, eventually

ROUNDS = 400
"""Each round sends every kind of message below; many rounds make reads hold many messages at once."""


def stream() -> list[str | bytes | list[str]]:
    """One round of messages: a list is sent as a fragmented text message."""
    return [
        '{"symbol":"ABC","price":1.5,"n":1}',  # the common shape
        '{"symbol":"XYZ","price":2.5,"n":2}',
        '{"price":3.5,"symbol":"QRS","n":3}',  # same keys, another order
        '{"seq":7,"timestamp":1795959659.99,"symbol":"ABC"}',  # fields named like nbsocket's columns
        '{"quote":{"bid":1,"ask":{"v":2}},"symbol":"ABC"}',  # nested
        '{"a.b":2,"a":{"b":3}}',  # a dotted key beside the nested one
        '{"big":123456789012345678901234567890,"x":NaN}',  # exact big int, NaN
        "[1,2,3]",  # not an object
        "not json {",  # a parse failure
        b"\x00\x01binary",  # binary
        "",  # empty
        ['{"frag', 'mented":', '"yes"}'],  # fragmented
        '{"symbol":"ABC","price":4.5,"n":4,"extra_field":true}',  # a new column
        '"\\ud83d\\ude00 text"',  # escaped non-BMP text
        '{"symbol":"ABC","price":null,"n":5}',  # a gap
    ]


def expected_bodies() -> list[str | bytes]:
    return [("".join(m) if isinstance(m, list) else m) for _ in range(ROUNDS) for m in stream()]


async def send_stream(ws: Any) -> None:
    await ws.recv()  # the client says it is ready
    for _ in range(ROUNDS):
        for message in stream():
            await ws.send(iter(message) if isinstance(message, list) else message)
    await ws.wait_closed()


@pytest.fixture
def server() -> Any:
    with WsServer(send_stream) as running:
        yield running


def test_a_mixed_stream_arrives_in_order_exactly_once_with_its_data_errors_frame_and_transcript(server: Any) -> None:
    bodies = expected_bodies()
    events: list[Any] = []
    conn = nbs.connect("mixed", server.url, handler=events.append, max_rows=None)
    conn.keep_transcript(max_entries=None, max_bytes=None)
    conn.send("ready")
    eventually(lambda: len(events) == len(bodies), 30.0, what="every message handled")

    # order, exactly once, the body as sent
    assert [e.seq for e in events] == list(range(1, len(bodies) + 1))
    assert [e.request.body for e in events] == bodies
    assert [e.request.is_binary for e in events] == [isinstance(b, bytes) for b in bodies]

    # data and errors: what the codec gives one message at a time
    for event, body in zip(events, bodies, strict=True):
        try:
            data, error = decode_json(body), None
        except Exception as exc:
            data, error = None, str(exc)
        assert event.error == error
        if isinstance(data, dict) and any(isinstance(v, float) and math.isnan(v) for v in data.values()):
            assert json.dumps(event.data) == json.dumps(data)
        else:
            assert event.data == data
    assert conn.stats.messages_in == len(bodies)
    assert conn.stats.parse_errors == sum(1 for e in events if e.error)

    # the live frame: the same as rows appended one by one with the fields of each message
    live = nbs.frame("mixed")
    reference = LiveFrame("mixed", max_rows=None)
    for event in events:
        reference.append(event.timestamp_ns, event.seq, message_fields(event.data, event.error, event.request.body))
    expected = reference.snapshot()
    assert list(live.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(live, expected, check_dtype=False)
    assert live["big"].dropna().iloc[0] == 123456789012345678901234567890

    # the transcript: every received body, in order, with its parse error
    received = conn.transcript(parse=False)
    received = received[received["direction"] == "received"]
    assert received["body"].tolist() == bodies
    assert received["seq"].tolist() == list(range(1, len(bodies) + 1))
    assert [None if pd.isna(e) else e for e in received["error"]] == [e.error for e in events]


def test_invalid_utf8_in_a_text_frame_closes_with_1007_and_the_socket_reconnects(server: Any) -> None:
    async def bad_text(ws: Any) -> None:
        await ws.send("fine")
        transport = ws.transport
        transport.write(b"\x81\x02\xff\xfe")  # a text frame whose payload is not UTF-8
        await ws.wait_closed()

    with WsServer(bad_text) as bad:
        conn = nbs.connect("bad-utf8", bad.url, reconnect=nbs.ReconnectPolicy(initial=0.05, maximum=0.2))
        eventually(lambda: any("1007" in r.message for r in conn.errors), 10.0, what="a 1007 close recorded")
        eventually(lambda: conn.stats.reconnects >= 1, 10.0, what="a reconnect")
        assert all(e.request.body == "fine" for e in conn.wait(1, timeout=10))
