"""Fairness over TLS: does a flooded ``wss://`` socket hold nbsocket's loop longer than a flooded ``ws://`` one?

    python benchmarks/fairness_tls.py [--messages 500000] [--rate 200] [--rounds 3]

One server process (``_frameserver.py``'s connections, on two listeners: plain, and behind TLS
with a ``trustme`` certificate) sends a ticker socket ``--rate`` messages a second (``ws://``)
and a second socket an unpaced flood of ``--messages`` small JSON ticks, as fast as the socket
takes them, over ``ws://`` or over ``wss://``. The client (``nbs.connect``, a process of its
own; the flooded socket with its defaults and no handler, so it reads as fast as the loop can)
notes when each ticker message is read (``event.timestamp``, taken on nbsocket's loop). The
figures are the ticker's largest gap between two receipts while the flood runs and the 99th
percentile of its gaps, beside the same over an equal time with no flood. A loop that is fair
to the ticker gives both floods the same figures; a flooded socket that holds the loop for a
long read at a time shows as longer gaps.

The server check: a raw reader (a socket that only counts bytes, TLS-wrapped for ``wss://``)
gets the flood several times faster than nbsocket reads it. Rounds alternate the three cases,
each in a fresh client process; the table shows medians over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


# --- the server (its own process) -----------------------------------------------------------------------------------


async def serve(cert: str, key: str) -> None:
    """``_frameserver.py``'s connections on a plain and a TLS listener; prints ``ready PLAIN TLS FRAME_SIZE``."""
    import _frameserver

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    loop = asyncio.get_running_loop()
    quiet: set[Any] = set()
    plain = await loop.create_server(lambda: _frameserver.Handler(quiet), "127.0.0.1", 0)
    tls = await loop.create_server(lambda: _frameserver.Handler(quiet), "127.0.0.1", 0, ssl=context)
    ports = [server.sockets[0].getsockname()[1] for server in (plain, tls)]
    print(f"ready {ports[0]} {ports[1]} {_frameserver.FRAME_SIZE}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent goes


@contextlib.contextmanager
def server_process(cert: str, key: str) -> Iterator[tuple[str, str, int]]:
    """The server in a child process; yields its ``ws://`` and ``wss://`` base URLs and the frame size."""
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", cert, key],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, plain, tls, frame_size = proc.stdout.readline().split()
        assert ready == "ready"
        yield f"ws://127.0.0.1:{plain}", f"wss://localhost:{tls}", int(frame_size)
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


def raw_reader(url: str, ca: str, count: int, frame_size: int) -> dict[str, Any]:
    """Handshake by hand, then count the bytes of a flood of ``count`` messages from the server at ``url`` (TLS-wrapped
    for ``wss://``): how fast the server writes."""
    parts = urlsplit(url)
    sock: socket.socket = socket.create_connection((parts.hostname, parts.port))
    if parts.scheme == "wss":
        sock = ssl.create_default_context(cafile=ca).wrap_socket(sock, server_hostname=parts.hostname)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /flood?count={count} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    got = len(head.split(b"\r\n\r\n", 1)[1])
    buf = bytearray(1 << 20)
    start = time.perf_counter()
    while got < count * frame_size:
        n = sock.recv_into(buf)
        if not n:
            break
        got += n
    seconds = time.perf_counter() - start
    sock.close()
    return {"rate": got / frame_size / seconds}


def nbsocket_client(flood_url: str, ticker_url: str, ca: str, quiet_seconds: float) -> dict[str, Any]:
    """The ticker beside a flood (or beside nothing, for ``quiet_seconds``): its receipt gaps while the flood runs."""
    import nbsocket as nbs

    receipts: list[float] = []
    lock = threading.Lock()

    def tick(event: nbs.WsEvent) -> None:
        with lock:
            receipts.append(event.timestamp.timestamp())

    nbs.connect("ticker", ticker_url, handler=tick, frame=False)
    time.sleep(1.0)  # settle
    received = 0
    if flood_url == "none":
        start = time.time()
        time.sleep(quiet_seconds)
        end = time.time()
    else:
        closed = threading.Event()
        start = time.time()
        flood = nbs.connect(
            "flood",
            flood_url,
            reconnect=False,
            ssl=ssl.create_default_context(cafile=ca) if flood_url.startswith("wss:") else None,
            on_close=lambda conn, code, reason: closed.set(),
        )
        closed.wait(600)
        end = time.time()
        received = flood.stats.messages_in
    with lock:
        points = [start, *(t for t in receipts if start <= t <= end), end]
    gaps = sorted(b - a for a, b in itertools.pairwise(points))
    nbs.shutdown()
    return {
        "seconds": end - start,
        "received": received,
        "largest_gap": gaps[-1],
        "p99_gap": gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))],
    }


def run_client(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--client", *args], capture_output=True, text=True, timeout=900, check=False
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"client {args[:1]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1])


# --- the measurement -----------------------------------------------------------------------------------------------


def certificate(folder: str) -> tuple[str, str, str]:
    """A trustme CA and a server certificate for localhost and 127.0.0.1: (server cert, its key, the CA) as PEM files."""
    try:
        import trustme
    except ImportError:
        raise SystemExit("this benchmark needs trustme for its certificate: pip install trustme") from None
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    paths = [os.path.join(folder, name) for name in ("server.pem", "server.key", "ca.pem")]
    cert.cert_chain_pems[0].write_to_path(paths[0])
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(paths[0], append=True)
    cert.private_key_pem.write_to_path(paths[1])
    ca.cert_pem.write_to_path(paths[2])
    return paths[0], paths[1], paths[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=500_000, help="messages in each flood")
    parser.add_argument("--rate", type=float, default=200.0, help="ticker messages per second")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=["raw", "nbsocket"], help=argparse.SUPPRESS)
    parser.add_argument("--flood", help=argparse.SUPPRESS)
    parser.add_argument("--ticker", help=argparse.SUPPRESS)
    parser.add_argument("--ca", help=argparse.SUPPRESS)
    parser.add_argument("--frame-size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(*args.serve))
        return
    if args.client == "raw":
        print(json.dumps(raw_reader(args.flood, args.ca, args.messages, args.frame_size)), flush=True)
        os._exit(0)
    if args.client == "nbsocket":
        print(json.dumps(nbsocket_client(args.flood, args.ticker, args.ca, quiet_seconds=3.0)), flush=True)
        os._exit(0)

    cases = ["ws", "wss", "none"]
    results: dict[str, list[dict[str, Any]]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory() as folder:
        cert, key, ca = certificate(folder)
        with server_process(cert, key) as (plain, tls, frame_size):
            ticker = f"{plain}/paced?rate={args.rate:g}&count=0"
            floods = {"ws": f"{plain}/flood?count={args.messages}", "wss": f"{tls}/flood?count={args.messages}", "none": "none"}
            common = ["--ca", ca, "--messages", str(args.messages)]
            raw = {
                case: run_client("raw", "--flood", base, "--frame-size", str(frame_size), *common)
                for case, base in (("ws", plain), ("wss", tls))
            }
            for r in range(args.rounds):
                for case in cases if r % 2 == 0 else cases[::-1]:
                    results[case].append(run_client("nbsocket", "--flood", floods[case], "--ticker", ticker, *common))
                print(
                    f"round {r + 1}: "
                    + ", ".join(f"{case} largest gap {results[case][-1]['largest_gap'] * 1000:.1f} ms" for case in cases),
                    flush=True,
                )

    def med(case: str, key: str) -> float:
        return statistics.median(x[key] for x in results[case])

    print()
    print(
        f"ticker at {args.rate:g} msgs/s (period {1000 / args.rate:.0f} ms) beside a flood of {args.messages:,} messages, "
        f"median of {args.rounds} alternating rounds"
    )
    print(
        f"{'flooded socket':<16}{'largest gap ms':>15}{'spread':>14}{'p99 gap ms':>12}{'flood msgs/s':>14}"
        f"{'raw reader msgs/s':>19}"
    )
    for case in cases:
        gaps = [x["largest_gap"] * 1000 for x in results[case]]
        rate = statistics.median(x["received"] / x["seconds"] for x in results[case]) if case != "none" else float("nan")
        raw_rate = raw[case]["rate"] if case in raw else float("nan")
        print(
            f"{case if case != 'none' else '(no flood)':<16}{med(case, 'largest_gap') * 1000:>15.1f}"
            f"{f'{min(gaps):.1f}-{max(gaps):.1f}':>14}{med(case, 'p99_gap') * 1000:>12.1f}{rate:>14,.0f}{raw_rate:>19,.0f}"
        )
    for case in ("ws", "wss"):
        delivered = [x["received"] for x in results[case]]
        if min(delivered) < args.messages:
            print(f"NOTE: the {case} flood socket received {min(delivered):,} of {args.messages:,} messages in some round")
    checks = [
        raw[case]["rate"] / statistics.median(x["received"] / x["seconds"] for x in results[case]) for case in ("ws", "wss")
    ]
    verdict = "OK" if min(checks) >= 3 else "TOO SLOW: the figures may measure the server"
    print(
        f"\nserver check: a raw reader gets the flood {checks[0]:.1f}x (ws) and {checks[1]:.1f}x (wss) as fast as nbsocket "
        f"reads it (needs >= 3x): {verdict}"
    )


if __name__ == "__main__":
    main()
