"""The clients the benchmarks compare, each run in a process of its own; each prints one JSON line.

    python benchmarks/_clients.py receive KIND URL --count N [--skip K]
    python benchmarks/_clients.py cell KIND URL --loops L --repeats R
    python benchmarks/_clients.py quiet KIND URL --sockets S --seconds T

KIND is ``raw`` (a socket that only counts bytes: how fast the server can write), ``picows``
(+ ``json.loads``), ``websockets`` (the bare asyncio client a user would write: ``json.loads``
and an append to a bounded deque) or ``nbsocket`` (``nbs.connect`` with its defaults: a plain
no-op handler, the live frame and the transcript on). ``cell`` also takes ``none`` (no feed).

``receive`` reads ``N`` messages and reports the process CPU time and wall time between message
``K`` (warm-up skipped) and message ``N``. ``cell`` runs a CPU-bound pure-Python loop in the main
thread while the feed streams. ``quiet`` opens ``S`` sockets in a loop, then samples how many
messages have been handled, and the CPU used, every 0.5 s for ``T`` seconds (``raw`` too, as the
server check: handshakes by hand, then counts bytes; it needs ``--frame-size``).
Only nbsocket's public API is used.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import socket
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

KEEP = 100_000  # messages a bare client keeps, like nbsocket's default max_rows


def now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


# --- receive N messages --------------------------------------------------------------------------------------------


def receive_raw(url: str, n: int, skip: int, frame_size: int) -> dict[str, Any]:
    """Handshake by hand, then count bytes: the server's rate, with (almost) no client cost."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    key = base64.b64encode(os.urandom(16)).decode()
    path = parts.path + ("?" + parts.query if parts.query else "")
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    got = len(head.split(b"\r\n\r\n", 1)[1])
    buf = bytearray(1 << 20)
    mark0, mark1 = skip * frame_size, n * frame_size
    t0 = c0 = None
    while got < mark1:
        k = sock.recv_into(buf)
        if not k:
            break
        got += k
        if t0 is None and got >= mark0:
            t0, c0 = now()
    t1, c1 = now()
    sock.close()
    return {"t0": t0, "t1": t1, "cpu0": c0, "cpu1": c1, "received": min(got, mark1) // frame_size}


def receive_websockets(url: str, n: int, skip: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    marks: dict[str, Any] = {"received": 0}

    async def run() -> None:
        rows: collections.deque[Any] = collections.deque(maxlen=KEEP)
        count = 0
        async with connect(url, max_size=2**20) as ws:
            async for message in ws:
                rows.append(json.loads(message))
                count += 1
                if count == skip:
                    marks["t0"], marks["cpu0"] = now()
                if count == n:
                    marks["t1"], marks["cpu1"] = now()
                    break
        marks["received"] = count

    asyncio.run(run())
    return marks


def receive_picows(url: str, n: int, skip: int) -> dict[str, Any]:
    from picows import WSListener, WSMsgType, ws_connect

    marks: dict[str, Any] = {"received": 0}

    class Listener(WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            self.rows: collections.deque[Any] = collections.deque(maxlen=KEEP)
            self.count = 0

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                self.rows.append(json.loads(frame.get_payload_as_utf8_text()))
                self.count += 1
                if self.count == skip:
                    marks["t0"], marks["cpu0"] = now()
                if self.count == n:
                    marks["t1"], marks["cpu1"] = now()
                    transport.disconnect()
            elif frame.msg_type == WSMsgType.CLOSE:
                transport.disconnect()

    async def run() -> None:
        transport, listener = await ws_connect(Listener, url, max_frame_size=2**20)
        await transport.wait_disconnected()
        marks["received"] = listener.count

    asyncio.run(run())
    return marks


def receive_nbsocket(url: str, n: int, skip: int) -> dict[str, Any]:
    import nbsocket as nbs

    marks: dict[str, Any] = {"received": 0}
    done = threading.Event()

    def handler(event: Any) -> None:
        seq = event.seq
        if seq == skip:
            marks["t0"], marks["cpu0"] = now()
        elif seq == n:
            marks["t1"], marks["cpu1"] = now()
            done.set()

    conn = nbs.connect("bench", url, handler=handler, reconnect=False)
    done.wait(300)
    marks["received"] = conn.stats.messages_in
    nbs.shutdown()
    return marks


# --- a CPU-bound cell while a feed streams ----------------------------------------------------------------------------


def cell(loops: int) -> int:
    """The "cell": pure-Python arithmetic that holds the GIL."""
    total = 0
    for i in range(loops):
        total += i * i % 7
    return total


def start_feed(kind: str, url: str) -> tuple[Any, Any]:
    """Start a feed in the background; returns (handled() -> int, stop())."""
    if kind == "none":
        return (lambda: 0), (lambda: None)
    if kind == "nbsocket":
        import nbsocket as nbs

        last = [0]

        def handler(event: Any) -> None:
            last[0] = event.seq

        nbs.connect("bench", url, handler=handler, reconnect=False)
        return (lambda: last[0]), nbs.shutdown
    if kind == "websockets":
        from websockets.asyncio.client import connect

        count = [0]
        stop = threading.Event()
        opened = threading.Event()

        async def run() -> None:
            rows: collections.deque[Any] = collections.deque(maxlen=KEEP)
            async with connect(url, max_size=2**20) as ws:
                opened.set()
                async for message in ws:
                    rows.append(json.loads(message))
                    count[0] += 1
                    if stop.is_set():
                        break

        thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
        thread.start()
        opened.wait(10)

        def halt() -> None:
            stop.set()
            thread.join(5)

        return (lambda: count[0]), halt
    raise SystemExit(f"unknown feed {kind}")


def run_cell(kind: str, url: str, loops: int, repeats: int, settle: float) -> dict[str, Any]:
    before = []  # the same cell in this process before the feed starts: a baseline that shares its noise
    for _ in range(repeats):
        start = time.perf_counter()
        cell(loops)
        before.append(time.perf_counter() - start)
    handled, stop = start_feed(kind, url)
    time.sleep(settle)  # steady state first
    times = []
    h0, t0, c0 = handled(), time.perf_counter(), time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        cell(loops)
        times.append(time.perf_counter() - start)
    h1, t1, c1 = handled(), time.perf_counter(), time.process_time()
    stop()
    return {"before": before, "times": times, "handled": h1 - h0, "wall": t1 - t0, "cpu": c1 - c0}


# --- many quiet sockets ----------------------------------------------------------------------------------------------


def run_quiet(kind: str, url: str, sockets: int, seconds: float, open_budget: float, frame_size: int = 0) -> dict[str, Any]:
    samples: list[tuple[float, int, float]] = []
    opened = 0
    started = time.perf_counter()
    if kind == "nbsocket":
        import nbsocket as nbs

        last: dict[str, int] = {}

        def handler(event: Any) -> None:
            last[event.name] = event.seq

        for i in range(sockets):
            nbs.connect(f"q{i}", url, handler=handler)
            opened += 1
            if time.perf_counter() - started > open_budget:
                break
        open_seconds = time.perf_counter() - started
        end = time.perf_counter() + seconds
        while True:
            samples.append((time.time(), sum(list(last.values())), time.process_time()))
            if time.perf_counter() >= end:
                break
            time.sleep(0.5)
        nbs.shutdown()
    elif kind == "websockets":
        from websockets.asyncio.client import connect

        count = [0]
        result: dict[str, Any] = {}

        async def reader(ws: Any) -> None:
            rows: collections.deque[Any] = collections.deque(maxlen=100)
            async for message in ws:
                rows.append(json.loads(message))
                count[0] += 1

        async def run() -> None:
            nonlocal opened
            conns, tasks = [], []
            for _ in range(sockets):
                ws = await connect(url, max_size=2**20)
                conns.append(ws)
                tasks.append(asyncio.ensure_future(reader(ws)))
                opened += 1
                if time.perf_counter() - started > open_budget:
                    break
            result["open_seconds"] = time.perf_counter() - started
            end = time.perf_counter() + seconds
            while True:
                samples.append((time.time(), count[0], time.process_time()))
                if time.perf_counter() >= end:
                    break
                await asyncio.sleep(0.5)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)

        asyncio.run(run())
        open_seconds = result["open_seconds"]
    elif kind == "raw":
        open_seconds, opened = _quiet_raw(url, sockets, seconds, open_budget, frame_size, samples)
    else:
        raise SystemExit(f"unknown client {kind}")
    return {"opened": opened, "open_seconds": open_seconds, "samples": samples}


def _quiet_raw(
    url: str, sockets: int, seconds: float, open_budget: float, frame_size: int, samples: list[tuple[float, int, float]]
) -> tuple[float, int]:
    """The server check of many sockets: handshakes by hand, then only bytes counted (messages = bytes / frame size)."""
    parts = urlsplit(url)
    path = parts.path + ("?" + parts.query if parts.query else "")
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    got = [0]

    class Counter(asyncio.Protocol):
        def __init__(self) -> None:
            self.head = b""
            self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def connection_made(self, transport: Any) -> None:
            transport.write(request)

        def data_received(self, data: bytes) -> None:
            if self.upgraded.done():
                got[0] += len(data)
                return
            self.head += data
            if b"\r\n\r\n" in self.head:
                got[0] += len(self.head.split(b"\r\n\r\n", 1)[1])
                self.upgraded.set_result(None)

    result: dict[str, Any] = {"opened": 0}

    async def run() -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        transports = []
        for _ in range(sockets):
            transport, protocol = await loop.create_connection(Counter, parts.hostname, parts.port)
            await protocol.upgraded
            transports.append(transport)
            result["opened"] += 1
            if time.perf_counter() - started > open_budget:
                break
        result["open_seconds"] = time.perf_counter() - started
        end = time.perf_counter() + seconds
        while True:
            samples.append((time.time(), got[0] // frame_size, time.process_time()))
            if time.perf_counter() >= end:
                break
            await asyncio.sleep(0.5)
        for transport in transports:
            transport.abort()

    asyncio.run(run())
    return result["open_seconds"], result["opened"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["receive", "cell", "quiet"])
    parser.add_argument("kind")
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--skip", type=int, default=1000)
    parser.add_argument("--frame-size", type=int, default=0)
    parser.add_argument("--loops", type=int, default=3_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--open-budget", type=float, default=60.0)
    args = parser.parse_args()
    if args.mode == "receive":
        if args.kind == "raw":
            out = receive_raw(args.url, args.count, args.skip, args.frame_size)
        else:
            out = {"websockets": receive_websockets, "picows": receive_picows, "nbsocket": receive_nbsocket}[args.kind](
                args.url, args.count, args.skip
            )
        out["skip"], out["count"] = args.skip, args.count
    elif args.mode == "cell":
        out = run_cell(args.kind, args.url, args.loops, args.repeats, args.settle)
    else:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = args.sockets * 2 + 256
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
        out = run_quiet(args.kind, args.url, args.sockets, args.seconds, args.open_budget, args.frame_size)
    print(json.dumps(out), flush=True)
    sys.stdout.flush()
    os._exit(0)  # no lingering threads at exit


if __name__ == "__main__":
    main()
