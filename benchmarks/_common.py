"""Shared pieces of the benchmarks: a demo server in its own process, and timing helpers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

from websockets.asyncio.client import connect as ws_connect


@contextlib.contextmanager
def demo_server_process() -> Iterator[str]:
    """Run ``nbsocket demo-server`` on a free port in a child process; yields its ``ws://host:port``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbsocket", "demo-server", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = re.search(r"(ws://[\d.]+:\d+)", line)
            if match:
                yield match.group(1)
                break
        else:
            raise RuntimeError("the demo server did not start")
    finally:
        proc.terminate()
        proc.wait(10)


def median(values: list[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)


def bare_client(url: str, n: int) -> tuple[float, float]:
    """Seconds and process CPU seconds for a bare ``websockets`` client to receive and JSON-parse ``n`` messages."""

    async def run() -> None:
        async with ws_connect(url, max_queue=64) as ws:
            for _ in range(n):
                json.loads(await ws.recv())

    cpu, start = time.process_time(), time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - start, time.process_time() - cpu
