"""Shared pieces of the benchmarks: a demo server in its own process, and timing helpers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
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
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
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


# --- a server that costs nothing per message, and client processes --------------------------------------------

HERE = os.path.dirname(os.path.abspath(__file__))


class FrameServer:
    """``_frameserver.py`` (pre-built frames, fixed pace) in a process of its own.

    Use as a context manager: ``url`` is its ``ws://127.0.0.1:port``; ``sent_at(t)`` is how many
    messages it had written by unix time ``t`` (from the counts it prints every 0.25 s);
    ``cpu()`` is its process CPU seconds so far. It exits when its stdin closes, so it cannot
    outlive the benchmark even if the benchmark is killed.
    """

    def __init__(self, *args: str) -> None:
        self.args = list(args)
        self.samples: list[tuple[float, int]] = []
        self.url = ""
        self.frame_size = 0
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> FrameServer:
        import threading

        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "_frameserver.py"), *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"(ws://[\d.]+:\d+) frame_size=(\d+)", line)
        if not match:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the frame server did not start: {line!r}")
        self.url, self.frame_size = match.group(1), int(match.group(2))

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for out in self.proc.stdout:
                parts = out.split()
                if len(parts) == 3 and parts[0] == "sent":
                    self.samples.append((float(parts[1]), int(parts[2])))

        threading.Thread(target=read, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def cpu(self) -> float:
        """The server process's CPU seconds (user + system) so far."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def sent_at(self, t: float) -> float:
        """Messages the server had written by unix time ``t`` (linear between its reports)."""
        samples = list(self.samples)
        if not samples or t <= samples[0][0]:
            return float(samples[0][1]) if samples else 0.0
        for (t0, n0), (t1, n1) in itertools.pairwise(samples):
            if t0 <= t <= t1:
                return n0 + (n1 - n0) * (t - t0) / max(t1 - t0, 1e-9)
        return float(samples[-1][1])


def run_client(*args: str, timeout: float = 120.0) -> dict:
    """Run ``_clients.py ARGS`` in a process of its own and return the JSON it prints last."""
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "_clients.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"client {args[:2]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1])


def have(module: str) -> bool:
    """Whether ``module`` can be imported (picows is an optional extra)."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


def raise_nofile(n: int) -> tuple[int, int]:
    """Raise the soft open-files limit to at least ``n`` (up to the hard limit); returns (soft, hard) after."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        target = n if hard == resource.RLIM_INFINITY else min(n, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)
