"""A flooded socket hands the loop at most about one short read per turn, over TLS as over plain TCP.

asyncio's TLS transport reads through its own ``SSLProtocol``, which decrypts everything one read brings and hands
it over in one call, and does not use the TCP transport's read size: unless the wire asks it for short reads, a
flooded ``wss://`` socket holds the loop four times as long per turn as a ``ws://`` one. From Python 3.11 it also
reads on while the application has paused reading (the runtime's backpressure), and hands over all it read on
resuming. A real server (a thread with a blocking socket, TLS from a trustme certificate) floods the client; the
client holds its loop, or pauses reading, until the kernel holds several reads' worth, then reads on, and the wire
itself notes how many bytes each turn of the loop brought.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import hashlib
import socket
import ssl
import struct
import termios
import threading
import time

import pytest
import trustme
from websockets.asyncio.client import connect

from nbsocket.runtime.transport import READ_SIZE, BatchingConnection

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MESSAGES = 40_000
BODY = b'{"seq":%d,"symbol":"ABC","price":101.25,"pad":"0123456789abcdef0123456789"}'
TLS_RECORD = 16 * 1024 + 512
"""The most plaintext one TLS record carries (16 KiB), with room for its overhead: a read can end inside a record,
which then completes with the next read."""


def flood() -> bytes:
    """``MESSAGES`` small unmasked text frames, end to end."""
    frames = []
    for n in range(MESSAGES):
        body = BODY % n
        frames.append(bytes([0x81, len(body)]) + body)
    return b"".join(frames)


class TurnTally(BatchingConnection):
    """The wire, noting the bytes that reach it in each turn of the loop (a turn ends when the loop's next turn
    begins: a callback scheduled at its first read runs before the next turn's reads)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.turns: list[int] = []
        self._in_turn = False

    def data_received(self, data: bytes) -> None:
        if not self._in_turn:
            self._in_turn = True
            self.turns.append(0)
            asyncio.get_running_loop().call_soon(self._end_turn)
        self.turns[-1] += len(data)
        super().data_received(data)

    def _end_turn(self) -> None:
        self._in_turn = False


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


class FloodServer:
    """One connection: the upgrade, then the flood as fast as the client takes it, then a close."""

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            raw, _ = self.listener.accept()
            sock = self.context.wrap_socket(raw, server_side=True) if self.context is not None else raw
            with sock:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += sock.recv(4096)
                key = next(
                    line.split(b":", 1)[1].strip()
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"sec-websocket-key:")
                )
                accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
                sock.sendall(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
                )
                sock.sendall(flood())
                sock.sendall(b"\x88\x02\x03\xe8")  # close, 1000
                answer = b""
                while len(answer) < 8:  # the client's close (masked, with its code), then the server closes first
                    chunk = sock.recv(64)
                    if not chunk:
                        break
                    answer += chunk
        except BaseException as exc:
            self.error = exc
        finally:
            self.listener.close()


def queued(sock: socket.socket) -> int:
    """Bytes the kernel holds for ``sock``, not yet read."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


BACKLOG = 4 * READ_SIZE
"""What the kernel must hold before the client reads on: several reads' worth."""


@pytest.mark.parametrize("scheme", ["ws", "wss"])
@pytest.mark.parametrize("backed_up", ["loop held", "reading paused"])
def test_each_turn_of_the_loop_brings_about_one_short_read(scheme: str, backed_up: str, ca: trustme.CA) -> None:
    server_context = None
    client_context = None
    if scheme == "wss":
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_context)
        client_context = ssl.create_default_context()
        ca.configure_trust(client_context)
    server = FloodServer(server_context)
    received: list[str | bytes] = []

    async def client() -> TurnTally:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # room for several reads while the client waits
        sock.connect(("127.0.0.1", server.port))
        sock.setblocking(False)
        options = {"ssl": client_context, "server_hostname": "localhost"} if client_context is not None else {}
        wire: TurnTally = await connect(  # type: ignore[assignment]
            f"{scheme}://localhost:{server.port}/", sock=sock, create_connection=TurnTally, max_size=2**20, **options
        )
        wire.attach(received.extend)
        if backed_up == "loop held":
            for _ in range(3000):
                if queued(sock) >= BACKLOG:
                    break
                time.sleep(0.01)  # noqa: ASYNC251 (holds the loop on purpose: nothing is read meanwhile)
            assert queued(sock) >= BACKLOG, f"the kernel never held {BACKLOG} bytes for the client"
        else:
            # over TLS from Python 3.11, asyncio reads on into its own buffer up to its high-water mark: wait until
            # it stopped (the kernel holds the backlog and nothing takes from it over several turns of the loop)
            wire.pause_reading()
            seen = [-1]
            for _ in range(3000):
                seen.append(queued(sock))
                if seen[-1] >= BACKLOG and len(set(seen[-5:])) == 1:
                    break
                await asyncio.sleep(0.01)
            assert seen[-1] >= BACKLOG and len(set(seen[-5:])) == 1, f"the kernel's backlog never settled: {seen[-5:]}"
            wire.resume_reading()
        await asyncio.wait_for(wire.wait_closed(), 60)
        return wire

    wire = asyncio.run(client())
    server.thread.join(10)
    assert server.error is None, server.error
    assert len(received) == MESSAGES and received[-1] == (BODY % (MESSAGES - 1)).decode()
    largest = max(wire.turns)
    assert largest > READ_SIZE // 2, f"no turn brought more than {largest} bytes: the flood never backed up"
    limit = READ_SIZE
    if scheme == "wss":  # a read may end inside a record; one more read may wait decrypted when a pause ends
        limit = (READ_SIZE if backed_up == "loop held" else 2 * READ_SIZE) + TLS_RECORD
    assert largest <= limit, f"a turn of the loop brought {largest} bytes (at most {limit} expected)"
