"""The wire cuts whole data frames itself between frames and leaves everything else to websockets: a real
server writes crafted frames split at every byte, control frames and fragments among them, compressed
messages beside uncompressed ones, and the messages must come out whole, in order, exactly once."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode

from nbsocket.runtime.transport import BatchingConnection

from ...servers import WsServer


def raw(opcode: Opcode, payload: bytes, fin: bool = True) -> bytes:
    """A server frame (unmasked, uncompressed), as websockets writes it."""
    return Frame(opcode, payload, fin=fin).serialize(mask=False)


STREAM = b"".join(
    [
        raw(Opcode.TEXT, b"first"),
        raw(Opcode.TEXT, b""),
        raw(Opcode.TEXT, "h\u00e9llo \u20ac \U0001f600".encode()),
        raw(Opcode.TEXT, b"m" * 200),  # a 16-bit length
        raw(Opcode.BINARY, b"\x00\x01\x02"),
        raw(Opcode.PING, b"are you there"),
        raw(Opcode.TEXT, b"after the ping"),
        raw(Opcode.TEXT, b"frag", fin=False),
        raw(Opcode.CONT, b"men", fin=False),
        raw(Opcode.PING, b""),  # a control frame between fragments
        raw(Opcode.CONT, b"ted", fin=True),
        raw(Opcode.BINARY, b"b" * 70_000),  # a 64-bit length
        raw(Opcode.TEXT, b"last"),
    ]
)
MESSAGES: list[str | bytes] = [
    "first",
    "",
    "h\u00e9llo \u20ac \U0001f600",
    "m" * 200,
    b"\x00\x01\x02",
    "after the ping",
    "fragmented",
    b"b" * 70_000,
    "last",
]
SPLITS = list(range(1, 260)) + list(range(len(STREAM) - 40, len(STREAM)))
"""Where the stream is cut in two writes: every byte of its first frames, and its last frame's bytes."""


class CountingConnection(BatchingConnection):
    """Counts the data frames that went through websockets' parser instead of being cut by the wire."""

    parsed_data_frames = 0

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            self.parsed_data_frames += 1
        super().process_event(event)


async def receive(url: str, count: int, **options: Any) -> tuple[list[str | bytes], CountingConnection]:
    """The messages until ``count`` arrived or the server closed (then the close handshake finishes)."""
    got: list[str | bytes] = []
    async with connect(url, create_connection=CountingConnection, **options) as ws:
        ws.attach(got.extend)
        await ws.send("go")
        deadline = asyncio.get_running_loop().time() + 30
        while len(got) < count and ws.protocol.state.name == "OPEN" and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        return got, ws


def test_a_stream_split_at_every_byte_arrives_whole_in_order_with_pings_answered() -> None:
    pong_latencies: list[float] = []

    async def write_split(ws: Any) -> None:
        await ws.recv()
        for cut in SPLITS:
            ws.transport.write(STREAM[:cut])
            await asyncio.sleep(0.002)
            ws.transport.write(STREAM[cut:])
            await asyncio.sleep(0.002)
        pong_latencies.append(await asyncio.wait_for(await ws.ping(), 10))
        await ws.close()

    with WsServer(write_split, compression=None) as server:
        got, ws = asyncio.run(receive(server.url, len(MESSAGES) * len(SPLITS) + 1, max_size=None))  # until closed
    assert got == MESSAGES * len(SPLITS)
    assert len(pong_latencies) == 1, "the client answered a ping after the stream"
    assert [type(m) for m in got[: len(MESSAGES)]] == [type(m) for m in MESSAGES]
    # websockets parsed what followed each ping and each split; the rest was cut by the wire
    assert 0 < ws.parsed_data_frames < len(got) - len(SPLITS)


def test_whole_frames_after_the_handshake_never_reach_websockets_parser_even_when_reads_cut_them() -> None:
    stream = b"".join(raw(Opcode.TEXT, f'{{"n":{i}}}'.encode()) for i in range(300))
    stream += b"".join(raw(Opcode.BINARY, bytes([i % 256]) * 300) for i in range(30))  # 16-bit lengths

    async def write_cut(ws: Any) -> None:
        await ws.recv()
        for at in range(0, len(stream), 37):  # every write ends inside a frame, often inside its header
            ws.transport.write(stream[at : at + 37])
            await asyncio.sleep(0.0005)
        await ws.wait_closed()

    with WsServer(write_cut, compression=None) as server:
        got, ws = asyncio.run(receive(server.url, 330))
    assert got == [f'{{"n":{i}}}' for i in range(300)] + [bytes([i % 256]) * 300 for i in range(30)]
    assert ws.parsed_data_frames == 0


def test_a_large_frame_trickling_in_small_writes_arrives_whole() -> None:
    big = bytes(range(256)) * 240  # 61,440 bytes: kept by the wire across reads until it is whole
    stream = raw(Opcode.BINARY, big) + raw(Opcode.TEXT, b"after")

    async def trickle(ws: Any) -> None:
        await ws.recv()
        for at in range(0, len(stream), 997):
            ws.transport.write(stream[at : at + 997])
            await asyncio.sleep(0.0005)
        await ws.wait_closed()

    with WsServer(trickle, compression=None) as server:
        got, ws = asyncio.run(receive(server.url, 2))
    assert got == [big, "after"]
    assert ws.parsed_data_frames == 0


def test_a_stream_that_ends_inside_a_frame_is_an_abnormal_closure() -> None:
    async def cut_off(ws: Any) -> None:
        await ws.recv()
        ws.transport.write(raw(Opcode.TEXT, b"whole") + raw(Opcode.TEXT, b"cut off here")[:6])
        await asyncio.sleep(0.05)
        ws.transport.close()

    with WsServer(cut_off, compression=None) as server:
        got, ws = asyncio.run(receive(server.url, 2))
    assert got == ["whole"]
    assert ws.protocol.state.name == "CLOSED" and ws.protocol.close_code == 1006
    assert str(ws.protocol.parser_exc) == "stream ends after 4 bytes, expected 12 bytes"  # as websockets says it


def test_with_debug_logging_the_cut_frames_are_logged_as_websockets_logs_them(caplog: Any) -> None:
    async def write_two(ws: Any) -> None:
        await ws.recv()
        ws.transport.write(raw(Opcode.TEXT, b"first") + raw(Opcode.BINARY, b"\x00\x01"))
        await ws.wait_closed()

    logger = logging.getLogger("nbsocket.tests.wire")
    caplog.set_level(logging.DEBUG, logger=logger.name)
    with WsServer(write_two, compression=None) as server:
        got, ws = asyncio.run(receive(server.url, 2, logger=logger))
    assert got == ["first", b"\x00\x01"] and ws.parsed_data_frames == 0
    lines = [r.getMessage() for r in caplog.records if r.name == logger.name]
    assert "< TEXT 'first' [5 bytes]" in lines and "< BINARY 00 01 [2 bytes]" in lines


def test_compressed_and_uncompressed_messages_interleave_in_order() -> None:
    async def write_mixed(ws: Any) -> None:
        await ws.recv()
        for i in range(100):
            await ws.send(f"compressed {i} " + "z" * 50)  # permessage-deflate: RSV1 set, websockets inflates
            ws.transport.write(raw(Opcode.TEXT, f"plain {i}".encode()))  # uncompressed: allowed beside it
        await ws.wait_closed()

    with WsServer(write_mixed) as server:
        got, ws = asyncio.run(receive(server.url, 200, compression="deflate"))
    assert ws.protocol.extensions, "permessage-deflate was negotiated"
    assert got == [m for i in range(100) for m in (f"compressed {i} " + "z" * 50, f"plain {i}")]


def test_an_uncompressed_frame_over_max_size_closes_with_1009() -> None:
    async def write_big(ws: Any) -> None:
        await ws.recv()
        ws.transport.write(raw(Opcode.TEXT, b"small") + raw(Opcode.TEXT, b"x" * 5000) + raw(Opcode.TEXT, b"never"))
        await ws.wait_closed()

    with WsServer(write_big, compression=None) as server:
        got, ws = asyncio.run(receive(server.url, 3, max_size=1000))
    assert got == ["small"]
    assert ws.protocol.close_sent is not None and ws.protocol.close_sent.code == 1009
