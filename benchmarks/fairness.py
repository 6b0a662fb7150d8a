"""Fairness: does one busy socket stall the others on nbsocket's shared loop?

    python benchmarks/fairness.py [--count 100000] [--rate 100]

A ticker server sends one socket ``--rate`` messages a second; an echo server
gets ``--count`` messages from a second socket with ``nbs.burst`` (as fast as
possible) and sends each back. The figure is the ticker socket's largest gap
between two receipts while the burst runs, next to the same figure over an equal
time with no burst. With a fair loop both stay near the ticker's own period.

Each server runs in its own process (``--serve ticker|echo PORT_FILE``), with its
own interpreter lock and loop, so a busy echo server cannot slow the ticker: the
figure is the client's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import nbsocket as nbs

# --- the servers (each in its own process) ------------------------------------------------


async def _serve(kind: str, rate: float) -> None:
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    async def ticker(ws) -> None:  # type: ignore[no-untyped-def]
        period = 1.0 / rate
        start = time.monotonic()
        with contextlib.suppress(ConnectionClosed):
            for n in itertools.count(1):
                await ws.send(json.dumps({"n": n}))
                await asyncio.sleep(max(0.0, start + n * period - time.monotonic()))

    async def echo(ws) -> None:  # type: ignore[no-untyped-def]
        async for message in ws:
            await ws.send(message)

    async with serve(ticker if kind == "ticker" else echo, "127.0.0.1", 0, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"ready {port}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent goes


@contextlib.contextmanager
def server_process(kind: str, rate: float) -> Iterator[str]:
    """Run one server in a child process; yields its ``ws://`` URL."""
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", kind, "--rate", str(rate)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, port = proc.stdout.readline().split()
        assert ready == "ready"
        yield f"ws://127.0.0.1:{port}/"
    finally:
        proc.kill()
        proc.wait(10)


# --- the measurement ---------------------------------------------------------------------


class Receipts:
    """Receipt times of the ticker socket (taken on nbsocket's loop when the frame is read)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, event: nbs.WsEvent) -> None:
        with self._lock:
            self.times.append(event.timestamp.timestamp())

    def largest_gap(self, start: float, end: float) -> float:
        with self._lock:
            points = [start, *(t for t in self.times if start <= t <= end), end]
        return max(b - a for a, b in itertools.pairwise(points))


def measure(count: int, rate: float) -> dict[str, float]:
    """Largest ticker gap during a burst of ``count`` messages, and over an equal quiet time."""
    with server_process("ticker", rate) as ticker_url, server_process("echo", rate) as echo_url:
        receipts = Receipts()
        try:
            nbs.connect("ticker", ticker_url, handler=receipts, frame=False)
            nbs.connect("busy", echo_url, frame=False, outbox_size=10_000)
            time.sleep(1.0)  # settle
            start = time.time()
            report = nbs.burst("busy", itertools.repeat('{"x": 1}'), count=count, settle=0.5, timeout=600, progress=False)
            end = time.time()
            burst_gap = receipts.largest_gap(start, end)
            quiet_start = time.time()
            time.sleep(end - start)
            quiet_gap = receipts.largest_gap(quiet_start, time.time())
        finally:
            nbs.shutdown()
    return {
        "burst_seconds": end - start,
        "delivered": report.delivered,
        "replies": report.replies,
        "gap_during_burst": burst_gap,
        "gap_without_burst": quiet_gap,
        "ticker_period": 1.0 / rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="messages in the burst")
    parser.add_argument("--rate", type=float, default=100.0, help="ticker messages per second")
    parser.add_argument("--serve", choices=["ticker", "echo"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve, args.rate))
        return
    result = measure(args.count, args.rate)
    print(
        f"burst: {result['delivered']:,} of {args.count:,} delivered, {result['replies']:,} replies, "
        f"in {result['burst_seconds']:.1f} s"
    )
    print(f"ticker at {args.rate:g} msgs/s (period {result['ticker_period'] * 1000:.0f} ms):")
    print(f"  largest receive gap during the burst: {result['gap_during_burst'] * 1000:8.1f} ms")
    print(f"  largest receive gap without a burst:  {result['gap_without_burst'] * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
