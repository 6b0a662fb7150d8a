"""Round trips: a server sends a small message and waits for the reply, one at a time; how long until it comes back?

    python benchmarks/roundtrip.py [--trips 500] [--rounds 5] [--quiet 1000] [--quick]

The server (``--serve``, a process of its own; blocking sockets, a thread per connection, frames
built by hand) waits for the client's ``start`` message, then sends ``--trips`` small JSON
messages, each only once the reply to the one before has come back, after ``--warmup`` unmeasured
ones. It times each round trip itself, from the write of the message to the read of the whole
reply, answers pings, and prints one JSON line per connection: the round trips in microseconds and
its own CPU per round trip.

The clients, each in a process of its own (``--client KIND URL``), send every message straight back:

* ``raw``: a blocking socket that reads a frame and writes it back masked (no WebSocket library): the
  floor. It shows the server is not what is measured: its round trip must be several times shorter
  than the fastest client's;
* ``websockets``: the bare ``websockets`` asyncio client a user would write (``async for message in
  ws: await ws.send(message)``);
* ``nbsocket-sync``: ``nbs.connect`` with its defaults (live frame, transcript) and a plain handler
  replying with ``event.send(event.request.body)``: it runs on a worker thread;
* ``nbsocket-async``: the same with an ``async`` handler: it runs on nbsocket's loop.

With ``--quiet S`` (default 1,000; 0 turns it off) every client but ``raw`` is run a second time
with ``S`` quiet sockets open alongside in the same process (to ``_frameserver.py``'s ``/quiet``,
10 msgs/s each: 10,000 msgs/s in all; bare: ``websockets`` readers on the same loop that
``json.loads`` each message; nbsocket: ``nbs.connect`` with a plain no-op handler). Rounds alternate
the clients, each a fresh process; the table shows the median over rounds of each round's median
and 95th percentile, and the median over rounds of the client's median over bare ``websockets``'
in the same round (a small machine's load changes from one minute to the next: a ratio within a
round is steadier than a ratio of medians taken minutes apart).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import resource
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KINDS = ["raw", "websockets", "nbsocket-sync", "nbsocket-async"]


# --- frames by hand -------------------------------------------------------------------------------------------------


def frame(payload: bytes, opcode: int = 0x1, mask: bool = False) -> bytes:
    """One unfragmented frame (RFC 6455 5.2); a client's is masked."""
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        header = bytes([0x80 | opcode, bit | n])
    elif n < 1 << 16:
        header = bytes([0x80 | opcode, bit | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, bit | 127]) + n.to_bytes(8, "big")
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class FrameReader:
    """Reads whole frames from a blocking socket: ``next()`` -> (opcode, payload), unmasked."""

    def __init__(self, sock: socket.socket, data: bytes = b"") -> None:
        self.sock = sock
        self.buf = bytearray(data)

    def _need(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def next(self) -> tuple[int, bytes]:
        self._need(2)
        opcode, n, at = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
        masked = self.buf[1] & 0x80
        if n == 126:
            self._need(4)
            n, at = struct.unpack_from("!H", self.buf, 2)[0], 4
        elif n == 127:
            self._need(10)
            n, at = struct.unpack_from("!Q", self.buf, 2)[0], 10
        size = at + (4 if masked else 0) + n
        self._need(size)
        payload = bytes(self.buf[size - n : size])
        if masked:
            key = self.buf[at : at + 4]
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        del self.buf[:size]
        return opcode, payload


def tick(n: int) -> bytes:
    """The ``n``-th message the server sends (small JSON; the reply must be the same bytes)."""
    return b'{"n":%d,"op":"ping","at":"%s"}' % (1_000_000 + n, b"2026-01-01T12:00:00Z")


# --- the server (its own process) -----------------------------------------------------------------------------------


def serve(trips: int, warmup: int) -> None:
    """Accept connections; for each, the round trips after its ``start``, then a close; one JSON line per connection."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    print(f"ready ws://127.0.0.1:{listener.getsockname()[1]}", flush=True)
    lock = threading.Lock()

    def connection(sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                return
            head += chunk
        request, rest = head.split(b"\r\n\r\n", 1)
        key = next(
            line.split(b":", 1)[1].strip() for line in request.split(b"\r\n") if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept
            + b"\r\n\r\n"
        )
        reader = FrameReader(sock, rest)

        def data_frame() -> bytes:
            """The next data frame's payload, answering pings on the way."""
            while True:
                opcode, payload = reader.next()
                if opcode == 0x9:
                    sock.sendall(frame(payload, 0xA))
                elif opcode == 0x8:
                    sock.sendall(frame(b"\x03\xe8", 0x8))
                    raise EOFError
                elif opcode in (0x1, 0x2):
                    return payload

        try:
            while data_frame() != b"start":
                pass
            rtts: list[float] = []
            cpu0 = thread_cpu()
            for n in range(warmup + trips):
                message = tick(n)
                out = frame(message)
                start = time.perf_counter()
                sock.sendall(out)
                reply = data_frame()
                elapsed = time.perf_counter() - start
                if reply != message:
                    raise RuntimeError(f"wrong reply {reply[:80]!r} to {message!r}")
                if n >= warmup:
                    rtts.append(elapsed * 1e6)
            cpu = thread_cpu() - cpu0
            sock.sendall(frame(b"\x03\xe8done", 0x8))
            with lock:
                print(json.dumps({"rtts_us": rtts, "server_cpu_us": cpu / (warmup + trips) * 1e6}), flush=True)
            with contextlib.suppress(EOFError, OSError):
                while True:
                    data_frame()
        except (EOFError, OSError):
            pass
        finally:
            sock.close()

    def accept() -> None:
        while True:
            sock, _ = listener.accept()
            threading.Thread(target=connection, args=(sock,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()  # until the parent goes


def thread_cpu() -> float:
    """This thread's CPU seconds."""
    return time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)


@contextlib.contextmanager
def server_process(trips: int, warmup: int) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The round-trip server in a child process; yields its ``ws://`` URL and the process (read its stdout)."""
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", "--trips", str(trips), "--warmup", str(warmup)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        ready, url = proc.stdout.readline().split()
        assert ready == "ready"
        yield url, proc
    finally:
        with contextlib.suppress(Exception):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --- the clients (each in its own process) --------------------------------------------------------------------------


def client_raw(url: str) -> None:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET / HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    reader = FrameReader(sock, head.split(b"\r\n\r\n", 1)[1])
    sock.sendall(frame(b"start", mask=True))
    while True:
        opcode, payload = reader.next()
        if opcode == 0x8:
            sock.sendall(frame(payload[:2], 0x8, mask=True))
            break
        sock.sendall(frame(payload, opcode, mask=True))
    sock.close()


async def open_quiet_websockets(url: str, sockets: int) -> list[Any]:
    """``sockets`` bare websockets readers on this loop (``json.loads`` each message); returns their reader tasks."""
    import asyncio

    from websockets.asyncio.client import connect

    async def reader(ws: Any) -> None:
        async for message in ws:
            json.loads(message)

    tasks = []
    for _ in range(sockets):
        ws = await connect(url, max_size=2**20)
        tasks.append(asyncio.ensure_future(reader(ws)))
    return tasks


def client_websockets(url: str, quiet_url: str, sockets: int) -> None:
    import asyncio

    from websockets.asyncio.client import connect

    async def run() -> None:
        readers = await open_quiet_websockets(quiet_url, sockets) if sockets else []
        if readers:
            await asyncio.sleep(2.0)  # settle
        async with connect(url, max_size=2**20) as ws:
            await ws.send("start")
            async for message in ws:
                await ws.send(message)
        for task in readers:
            task.cancel()

    asyncio.run(run())


def client_nbsocket(url: str, quiet_url: str, sockets: int, is_async: bool) -> None:
    import nbsocket as nbs

    if sockets:
        for i in range(sockets):
            nbs.connect(f"quiet{i}", quiet_url, handler=lambda event: None)
        time.sleep(2.0)  # settle
    closed = threading.Event()

    def reply(event: nbs.WsEvent) -> None:
        event.send(event.request.body)

    async def reply_async(event: nbs.WsEvent) -> None:
        event.send(event.request.body)

    conn = nbs.connect(
        "roundtrip",
        url,
        handler=reply_async if is_async else reply,
        reconnect=False,
        on_close=lambda conn, code, reason: closed.set(),
    )
    conn.send("start")
    closed.wait(600)
    nbs.shutdown()


def run_client(kind: str, url: str, quiet_url: str, sockets: int, timeout: float) -> None:
    """Run one client in a process of its own and wait for it."""
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--client", kind, url, "--quiet-url", quiet_url, "--quiet", str(sockets)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"client {kind} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


# --- the measurement -----------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trips", type=int, default=500, help="measured round trips per client run")
    parser.add_argument("--warmup", type=int, default=50, help="round trips before the measured ones")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of every client")
    parser.add_argument("--quiet", type=int, default=1000, help="quiet sockets open alongside in a second pass (0: none)")
    parser.add_argument("--clients", default=",".join(KINDS))
    parser.add_argument("--quick", action="store_true", help="a short run: 3 rounds, 200 quiet sockets")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("url", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--quiet-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.trips, args.warmup)
        return
    if args.client:
        if args.quiet:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            want = args.quiet * 2 + 256
            if soft < want:
                resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
        if args.client == "raw":
            client_raw(args.url)
        elif args.client == "websockets":
            client_websockets(args.url, args.quiet_url, args.quiet)
        else:
            client_nbsocket(args.url, args.quiet_url, args.quiet, args.client == "nbsocket-async")
        sys.stdout.flush()
        os._exit(0)
    if args.quick:
        args.rounds, args.quiet = min(args.rounds, 3), min(args.quiet, 200)

    from _common import FrameServer, raise_nofile

    raise_nofile(args.quiet * 2 + 256)
    kinds = args.clients.split(",")
    configs = [(kind, 0) for kind in kinds] + [(kind, args.quiet) for kind in kinds if args.quiet and kind != "raw"]
    medians: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
    p95s: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
    server_cpu: list[float] = []
    with server_process(args.trips, args.warmup) as (url, proc), FrameServer("--quiet-period", "0.1") as quiet_server:
        assert proc.stdout is not None
        quiet_url = f"{quiet_server.url}/quiet"
        for r in range(args.rounds):
            for kind, sockets in configs if r % 2 == 0 else configs[::-1]:
                run_client(kind, url, quiet_url, sockets, timeout=120 + sockets * 0.1)
                out = json.loads(proc.stdout.readline())
                rtts = out["rtts_us"]
                medians[(kind, sockets)].append(statistics.median(rtts))
                p95s[(kind, sockets)].append(percentile(rtts, 0.95))
                server_cpu.append(out["server_cpu_us"])
                time.sleep(0.5 if not sockets else 1.5)  # the quiet server sees the previous client's sockets close
            print(
                f"round {r + 1}: " + ", ".join(f"{k}{f'+{s}q' if s else ''} {medians[(k, s)][-1]:.0f} us" for k, s in configs),
                flush=True,
            )

    def med(values: list[float]) -> float:
        return statistics.median(values)

    def ratios(kind: str, sockets: int) -> list[float]:
        """Per round: this client's median over bare websockets' (same quiet sockets, same round)."""
        base = medians.get(("websockets", sockets))
        if not base:
            return [float("nan")]
        return [m / b for m, b in zip(medians[(kind, sockets)], base, strict=True)]

    print()
    print(
        f"round trips: {args.trips} per run (after {args.warmup} unmeasured), one at a time, a {len(tick(0))}-byte JSON "
        f"text message each way; median over {args.rounds} alternating rounds of each round's figures"
    )
    print(f"{'client':<16}{'quiet sockets':>14}{'median us':>11}{'p95 us':>9}{'spread of medians':>19}{'vs bare ws':>11}")
    for kind, sockets in configs:
        values = medians[(kind, sockets)]
        spread = f"{min(values):.0f}-{max(values):.0f}"
        print(
            f"{kind:<16}{sockets:>14,}{med(values):>11.0f}{med(p95s[(kind, sockets)]):>9.0f}{spread:>19}"
            f"{med(ratios(kind, sockets)):>10.2f}x"
        )
    print()
    if ("raw", 0) in medians:
        fastest = [min(medians[(k, s)][r] for k, s in configs if k != "raw" and not s) for r in range(args.rounds)]
        margin = med([f / raw for f, raw in zip(fastest, medians[("raw", 0)], strict=True)])
        verdict = "OK" if margin >= 2 else "TOO CLOSE: the figures may measure the server"
        print(
            f"server check: the raw client's round trip ({med(medians[('raw', 0)]):.0f} us) is {margin:.1f}x shorter than the "
            f"fastest client's ({med(fastest):.0f} us) (median over rounds; needs >= 2x): {verdict}; the server's own CPU "
            f"per round trip {med(server_cpu):.0f} us"
        )
    print(
        "vs bare ws = median over rounds of the client's median round trip over bare websockets' in the same round, "
        "with the same quiet sockets"
    )


if __name__ == "__main__":
    main()
