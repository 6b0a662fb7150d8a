"""A WebSocket server that costs (almost) nothing per message: pre-built frames, written at a fixed pace.

    python benchmarks/_frameserver.py [--port 0]

Run by the benchmarks in a process of its own (see ``_common.FrameServer``). Every frame is
prepared once, at start-up: small JSON ticks of one fixed length, as unmasked server text frames,
laid end to end in one buffer, so sending ``k`` messages is one slice and one ``transport.write``.
No JSON is encoded and no frame is built per message. What a connection receives depends on
the path of its handshake request:

* ``/paced?rate=20000&count=100000``: ``count`` messages (0: until the client goes) at ``rate``
  messages per second, written every ``tick`` seconds (default 0.001) in the batch that is due,
  so the average rate is exact whatever the timer's jitter. When the client falls behind and
  the kernel buffers fill, writing pauses and the due messages follow as soon as it resumes:
  the offered rate is kept, as a real feed keeps it.
* ``/flood?count=1000000``: ``count`` messages as fast as the socket takes them.
* ``/quiet``: forever, ``--quiet-batch`` messages (default 1) every ``--quiet-period`` seconds
  (default 0.1: 10 msgs/s) to this socket, sent by one shared ticker; the sockets are spread
  over ``--quiet-phases`` slots of the period (default 10) so that arrivals are sparse, not one
  burst for all.

After ``count`` messages the server sends a close frame (1000) and closes the connection. It
answers a client's pings with pongs and its close with a close, and ignores its other frames.
Every 0.25 s it prints ``sent <unix time> <messages written so far>`` on stdout, so a benchmark
can compare what was offered with what a client handled at the same moment. The first line
is ``listening ws://127.0.0.1:<port>``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import sys
import time
from urllib.parse import parse_qs, urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
RING = 4096  # distinct messages, repeated


def tick_message(i: int) -> bytes:
    """The ``i``-th tick: a small JSON object whose encoding has the same length for every ``i``."""
    return b'{"seq":%d,"symbol":"%s","price":%.4f,"timestamp":%.6f}' % (
        1_000_000 + i,
        (b"ABC", b"XYZ", b"QRS")[i % 3],
        100.0 + (i * 7919 % 90_000) / 100.0,
        1_700_000_000.0 + i / 1000,
    )


def server_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """An unmasked, unfragmented server frame (RFC 6455 section 5.2)."""
    n = len(payload)
    if n < 126:
        header = bytes([0x80 | opcode, n])
    elif n < 1 << 16:
        header = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return header + payload


FRAMES = [server_frame(tick_message(i)) for i in range(RING)]
FRAME_SIZE = len(FRAMES[0])
assert all(len(f) == FRAME_SIZE for f in FRAMES)
BLOB = b"".join(FRAMES) * 2  # two copies: any run of up to RING frames is one slice
CLOSE_FRAME = server_frame((1000).to_bytes(2, "big") + b"done", opcode=0x8)

sent_total = 0


class QuietSockets:
    """The ``/quiet`` sockets, grouped by the slot of the period they are written in (given in turn as they come),
    so that a slot costs the ticker the sockets it writes to, not every socket."""

    def __init__(self, phases: int) -> None:
        self.groups: list[set[Handler]] = [set() for _ in range(phases)]
        self._next = itertools.count()

    def add(self, handler: Handler) -> None:
        handler.phase = next(self._next) % len(self.groups)
        self.groups[handler.phase].add(handler)

    def discard(self, handler: Handler) -> None:
        self.groups[handler.phase].discard(handler)


def frames(start: int, k: int) -> memoryview | bytes:
    """``k`` consecutive frames starting at message ``start`` (bytes, ready to write)."""
    if k <= RING:
        offset = (start % RING) * FRAME_SIZE
        return memoryview(BLOB)[offset : offset + k * FRAME_SIZE]
    return b"".join(frames(start + j, min(RING, k - j)) for j in range(0, k, RING))


class Handler(asyncio.Protocol):
    """One connection: the HTTP upgrade, then the stream its path asks for."""

    def __init__(self, quiet: QuietSockets) -> None:
        self.quiet = quiet
        self.buffer = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.task: asyncio.Task[None] | None = None
        self.sent = 0
        self.closed = False
        self.phase = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.upgraded:
            self.client_frames()
            return
        if b"\r\n\r\n" not in self.buffer:
            return
        head = self.buffer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        path = head[0].split(" ")[1]
        key = next(line.split(":", 1)[1].strip() for line in head[1:] if line.lower().startswith("sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n"
        )
        self.upgraded = True
        self.buffer = self.buffer.split(b"\r\n\r\n", 1)[1]
        self.client_frames()
        url = urlsplit(path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/paced":
            self.task = asyncio.ensure_future(
                self.paced(float(query.get("rate", "20000")), int(query.get("count", "0")), float(query.get("tick", "0.001")))
            )
        elif url.path == "/flood":
            self.task = asyncio.ensure_future(self.flood(int(query.get("count", "0"))))
        elif url.path == "/quiet":
            self.quiet.add(self)
        else:
            self.finish()

    def client_frames(self) -> None:
        """Answer the client's pings with pongs (as every real server does) and its close with a close; drop the rest."""
        buf = self.buffer
        while len(buf) >= 6:
            opcode, n, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                n, at = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                n, at = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < at + 4 + n:
                break
            mask, payload = buf[at : at + 4], buf[at + 4 : at + 4 + n]
            buf = buf[at + 4 + n :]
            assert self.transport is not None
            if opcode == 0x9:
                unmasked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                self.transport.write(server_frame(unmasked, opcode=0xA))
            elif opcode == 0x8 and not self.closed:
                self.transport.write(server_frame(b"\x03\xe8", opcode=0x8))
                self.transport.close()
        self.buffer = buf

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.quiet.discard(self)
        self.can_write.set()
        if self.task is not None:
            self.task.cancel()

    def write(self, k: int) -> None:
        global sent_total
        assert self.transport is not None
        self.transport.write(frames(self.sent, k))
        self.sent += k
        sent_total += k

    def finish(self) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(CLOSE_FRAME)
            asyncio.get_running_loop().call_later(2.0, self.transport.close)

    async def paced(self, rate: float, count: int, tick: float) -> None:
        start = time.monotonic()
        while not self.closed and (not count or self.sent < count):
            await self.can_write.wait()
            due = int((time.monotonic() - start) * rate)
            if count:
                due = min(due, count)
            if due > self.sent:
                self.write(min(due - self.sent, 64 * RING))
            await asyncio.sleep(tick)
        self.finish()

    async def flood(self, count: int) -> None:
        while not self.closed and (not count or self.sent < count):
            await self.can_write.wait()
            self.write(min(RING, count - self.sent) if count else RING)
            await asyncio.sleep(0)
        self.finish()


async def quiet_ticker(quiet: QuietSockets, period: float, phases: int, batch: int) -> None:
    """Every ``period / phases`` seconds, ``batch`` messages to each quiet socket of the current phase."""
    step = period / phases
    start = time.monotonic()
    for slot in range(1 << 62):
        for h in list(quiet.groups[slot % phases]):
            if not h.closed:
                h.write(batch)
        delay = start + (slot + 1) * step - time.monotonic()
        await asyncio.sleep(max(0.0, delay))


async def report() -> None:
    while True:
        print(f"sent {time.time():.3f} {sent_total}", flush=True)
        await asyncio.sleep(0.25)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--quiet-period", type=float, default=0.1, help="seconds between batches to a /quiet socket")
    parser.add_argument("--quiet-batch", type=int, default=1, help="messages per batch to a /quiet socket")
    parser.add_argument("--quiet-phases", type=int, default=10, help="slots of the period the /quiet sockets are spread over")
    args = parser.parse_args()
    quiet = QuietSockets(args.quiet_phases)
    server = await asyncio.get_running_loop().create_server(lambda: Handler(quiet), "127.0.0.1", args.port, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"listening ws://127.0.0.1:{port} frame_size={FRAME_SIZE}", flush=True)
    background = [  # held, so the loop does not lose them
        asyncio.ensure_future(quiet_ticker(quiet, args.quiet_period, args.quiet_phases, args.quiet_batch)),
        asyncio.ensure_future(report()),
    ]
    # stop when the parent goes away (its end of our stdin closes)
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()
    for task in background:
        task.cancel()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
