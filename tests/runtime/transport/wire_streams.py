"""Byte streams played to WebSocket clients, and what ``websockets`` itself makes of them.

The differential tests of nbsocket's wire use three parts from here:

* :func:`frame` and :func:`deflated` build server frames byte by byte, valid or
  not (RSV bits, reserved opcodes, masks, any length encoding), so a test can
  say exactly what is on the wire.
* :class:`StreamServer` is a raw TCP server on 127.0.0.1 that answers the
  WebSocket handshake by hand (with permessage-deflate when asked) and writes a
  script's stream in the given pieces, pausing between them, so the client sees
  them in separate reads. It then ends the connection the same way every time
  (below), so what the client does is decided by the bytes alone.
* :func:`reference_outcome` is the oracle: ``websockets``' own sans-I/O
  ``ClientProtocol`` parses the same handshake response and stream, and the
  messages are assembled and decoded as ``websockets``' ``recv()`` does
  (fragments joined, text decoded as strict UTF-8, the connection failed with
  1007 at the first text message that is not UTF-8), by an application that takes
  each message as soon as it is parsed. It is fed one byte at a time, so its
  answer does not depend on where reads end.

How the server ends a connection: for a *complete* stream (it ends at a frame
boundary) it sends a ping after it; when the pong comes back (the client took
everything without failing or closing) it sends close 1000 "done". When the
client sends a close first, the server answers with the same close unless the
stream already held one. A *truncated* stream (it ends inside a frame) is
followed by the end of the TCP stream. Either way the server then half-closes
and reads until the client closes, so nothing the client sent is cut off.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import struct
import zlib
from typing import Any

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from ...servers import LoopServer

__all__ = [
    "END_PING",
    "Outcome",
    "Script",
    "StreamServer",
    "close_payload",
    "deflated",
    "frame",
    "handshake_response",
    "outcome_of",
    "reference_outcome",
]

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
END_PING = b"nbsocket-end-of-stream"
"""The payload of the ping a server sends after a complete stream."""


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length: int | None = None,
    encoding: str | None = None,
) -> bytes:
    """One frame as a server would write it; any field may be wrong on purpose.

    ``rsv`` is the three RSV bits (0-7, RSV1 first); ``mask`` masks the payload (a server must not);
    ``length`` claims another payload length than the payload's; ``encoding`` forces the length's
    form ("7", "16" or "64" bits) where the value allows it.
    """
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0x0F)])
    form = encoding or ("7" if size < 126 else "16" if size < 65536 else "64")
    mask_bit = 0x80 if mask is not None else 0
    if form == "7":
        head += bytes([mask_bit | size])
    elif form == "16":
        head += bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", size)
    if mask is not None:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


def deflated(message: bytes) -> bytes:
    """``message`` compressed as permessage-deflate sends it with no context takeover (the 00 00 ff ff tail dropped)."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
    data = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4] if data.endswith(b"\x00\x00\xff\xff") else data


def close_payload(code: int, reason: bytes = b"") -> bytes:
    """A close frame's payload: the code, then the reason's bytes (which need not be UTF-8)."""
    return struct.pack("!H", code) + reason


@dataclasses.dataclass(frozen=True)
class Script:
    """A stream for one connection: its pieces (one write each), whether it ends inside a frame,
    and whether the server agrees to permessage-deflate."""

    pieces: tuple[bytes, ...]
    truncated: bool = False
    deflate: bool = False

    @property
    def stream(self) -> bytes:
        return b"".join(self.pieces)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a client made of a stream: its messages, and the close frames it received and sent (code, reason)."""

    messages: tuple[str | bytes, ...]
    close_received: tuple[int, str] | None
    close_sent: tuple[int, str] | None


def _close_pair(close: Any) -> tuple[int, str] | None:
    return None if close is None else (int(close.code), close.reason)


def outcome_of(protocol: Any, messages: list[str | bytes]) -> Outcome:
    """The outcome a client's sans-I/O protocol recorded, with the messages it delivered."""
    return Outcome(tuple(messages), _close_pair(protocol.close_rcvd), _close_pair(protocol.close_sent))


def _accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()


def handshake_response(request: bytes, deflate: bool) -> bytes:
    """The server's 101 response to a client's handshake request (permessage-deflate, no context takeover, if offered)."""
    headers: dict[str, str] = {}
    for line in request.decode("latin-1").split("\r\n")[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {_accept(headers['sec-websocket-key'])}",
    ]
    if deflate and "permessage-deflate" in headers.get("sec-websocket-extensions", ""):
        lines.append("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def reference_outcome(script: Script, *, max_size: int | None = 2**20) -> Outcome:
    """What ``websockets`` makes of ``script``, fed one byte at a time to its own ``ClientProtocol`` (see the module)."""
    extensions = enable_client_permessage_deflate(None) if script.deflate else None
    protocol = ClientProtocol(parse_uri("ws://127.0.0.1/"), extensions=extensions, max_size=max_size)
    request = protocol.connect()
    protocol.send_request(request)
    sent = b"".join(protocol.data_to_send())
    protocol.receive_data(handshake_response(sent, script.deflate))
    [_response] = protocol.events_received()
    assert protocol.state is State.OPEN, protocol.handshake_exc
    messages: list[str | bytes] = []
    fragments: list[bytes] = []
    failed = False

    def take_events() -> None:
        nonlocal failed
        for event in protocol.events_received():
            if failed or event.opcode not in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                continue
            if event.opcode is not Opcode.CONT:
                fragments.clear()
                fragments.append(event)
            elif fragments:
                fragments.append(event)
            if not event.fin:
                continue
            first, data = fragments[0], b"".join(f.data for f in fragments)
            fragments.clear()
            if first.opcode is Opcode.TEXT:
                try:
                    messages.append(data.decode())
                except UnicodeDecodeError as exc:  # as recv() fails the connection
                    protocol.fail(1007, f"{exc.reason} at position {exc.start}")
                    failed = True
            else:
                messages.append(data)

    for i in range(len(script.stream)):
        protocol.receive_data(script.stream[i : i + 1])
        take_events()
    if not script.truncated and protocol.state is State.OPEN:
        protocol.receive_data(frame(Opcode.PING, END_PING))
        take_events()
        protocol.receive_data(frame(Opcode.CLOSE, close_payload(1000, b"done")))
        take_events()
    protocol.receive_eof()
    return outcome_of(protocol, messages)


class StreamServer(LoopServer):
    """Plays :class:`Script` streams to the clients that connect to ``url_for(script)`` (see the module)."""

    PAUSE = 0.002
    """Seconds between two pieces of a stream, so the client reads them apart."""

    def __init__(self) -> None:
        super().__init__()
        self._scripts: dict[str, Script] = {}
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    def url_for(self, script: Script) -> str:
        key = str(len(self._scripts))
        self._scripts[key] = script
        return f"ws://127.0.0.1:{self.port}/{key}"

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            script = self._scripts[request.split(b" ", 2)[1].decode().lstrip("/")]
            writer.write(handshake_response(request, script.deflate))
            await writer.drain()
            for piece in script.pieces:
                await asyncio.sleep(self.PAUSE)
                writer.write(piece)
                await writer.drain()
            if script.truncated:
                writer.write_eof()
            else:
                await self._end(reader, writer, sent_close=_holds_close(script.stream))
            while await asyncio.wait_for(reader.read(65536), 10):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    async def _end(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sent_close: bool) -> None:
        """After a complete stream: a ping; close 1000 once it is answered, or the client's own close echoed."""
        writer.write(frame(Opcode.PING, END_PING))
        buffer = b""
        while True:
            data = await asyncio.wait_for(reader.read(65536), 10)
            if not data:
                writer.write_eof()
                return
            buffer += data
            while (parsed := _client_frame(buffer)) is not None:
                opcode, payload, buffer = parsed
                if opcode == Opcode.PONG and payload == END_PING and not sent_close:
                    writer.write(frame(Opcode.CLOSE, close_payload(1000, b"done")))
                    sent_close = True
                elif opcode == Opcode.CLOSE:
                    if not sent_close:
                        writer.write(frame(Opcode.CLOSE, payload))
                    writer.write_eof()
                    return


def _holds_close(stream: bytes) -> bool:
    """Whether a well-formed close frame starts at one of the stream's frame boundaries (before anything broken)."""
    pos = 0
    while pos + 2 <= len(stream):
        size = _server_frame_size(stream, pos)
        if size is None:
            return False
        if stream[pos] & 0x0F == Opcode.CLOSE:
            return True
        pos += size
    return False


def _server_frame_size(stream: bytes, pos: int) -> int | None:
    length = stream[pos + 1] & 0x7F
    size = 2 + (4 if stream[pos + 1] & 0x80 else 0)
    if length == 126:
        if pos + 4 > len(stream):
            return None
        return size + 2 + struct.unpack_from("!H", stream, pos + 2)[0]
    if length == 127:
        if pos + 10 > len(stream):
            return None
        return size + 8 + struct.unpack_from("!Q", stream, pos + 2)[0]
    return size + length


def _client_frame(buffer: bytes) -> tuple[int, bytes, bytes] | None:
    """The first (masked, unfragmented control or data) frame a client sent: opcode, unmasked payload, the rest."""
    if len(buffer) < 2:
        return None
    length = buffer[1] & 0x7F
    pos = 2
    if length == 126:
        if len(buffer) < 4:
            return None
        length, pos = struct.unpack_from("!H", buffer, 2)[0], 4
    elif length == 127:
        if len(buffer) < 10:
            return None
        length, pos = struct.unpack_from("!Q", buffer, 2)[0], 10
    if len(buffer) < pos + 4 + length:
        return None
    mask = buffer[pos : pos + 4]
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buffer[pos + 4 : pos + 4 + length]))
    return buffer[0] & 0x0F, payload, buffer[pos + 4 + length :]
