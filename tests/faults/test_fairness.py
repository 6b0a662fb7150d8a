"""One busy socket must never stall the others on nbsocket's shared loop (issue 11, item 1).

A ticker server written by someone else (aiohttp) feeds one socket 100 messages a
second and answers requests; another socket floods an echo server. The ticker's
largest gap between receipts must stay under 0.5 s, its requests must be answered,
and the busy socket must receive every echo.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbsocket as nbs

from ..servers import eventually

FLOOD = 100_000
GAP_BOUND = 0.5
ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def server_process(which: str) -> Iterator[int]:
    """``which`` ("ticker" or "echo") of fairness_servers.py in its own process; yields its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.fairness_servers", which],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, port = proc.stdout.readline().split()
        assert ready == "ready"
        yield int(port)
    finally:
        nbs.shutdown()  # before the servers go
        proc.kill()
        proc.wait(10)


class SchedulingNoise:
    """The largest oversleep of a plain thread in this process: how late the machine (load, GIL) runs anything.

    On a loaded machine no thread runs on time; the fairness bound allows for that
    noise, and nothing more.
    """

    def __init__(self) -> None:
        self.largest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            before = time.monotonic()
            time.sleep(0.01)
            self.largest = max(self.largest, time.monotonic() - before - 0.01)

    def __enter__(self) -> SchedulingNoise:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


class Gaps:
    """Receipt times of the ticker socket's ``{"n": ...}`` messages (taken on nbsocket's loop, at read)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, event: nbs.WsEvent) -> None:
        if isinstance(event.data, dict) and "n" in event.data:
            self.times.append(event.timestamp.timestamp())

    def largest_between(self, start: float, end: float) -> float:
        inside = [t for t in self.times if start <= t <= end]
        points = [start, *inside, end]
        return max(b - a for a, b in itertools.pairwise(points))


def _ask_repeatedly(ticker: nbs.Connection, stop: threading.Event, answered: list[float]) -> None:
    for k in itertools.count(1):
        if stop.is_set():
            return
        reply = ticker.request({"id": k}, match="id", timeout=10)
        answered.append(reply.rtt)
        time.sleep(0.05)


def _run_flood(flood: Any) -> tuple[float, float, float, list[float], Gaps]:
    """Connect a ticker and a busy socket, run ``flood(busy)``; returns (start, end, allowance, request rtts, gaps).

    The allowance is the largest gap before the flood plus the scheduling noise during it; the
    bound is 0.5 s plus twice that (an unfair loop shows a gap as long as the whole flood).
    """
    with server_process("ticker") as ticker_port, server_process("echo") as echo_port:
        return _measure(ticker_port, echo_port, flood)


def _measure(ticker_port: int, echo_port: int, flood: Any) -> tuple[float, float, float, list[float], Gaps]:
    gaps = Gaps()
    ticker = nbs.connect("ticker", f"ws://127.0.0.1:{ticker_port}/ws", handler=gaps)
    busy = nbs.connect("busy", f"ws://127.0.0.1:{echo_port}/ws", outbox_size=10_000)
    time.sleep(1.0)
    quiet = gaps.largest_between(time.time() - 0.8, gaps.times[-1])
    stop, answered = threading.Event(), []
    asker = threading.Thread(target=_ask_repeatedly, args=(ticker, stop, answered), daemon=True)
    asker.start()
    with SchedulingNoise() as noise:
        start = time.time()
        flood(busy)
        end = time.time()
    stop.set()
    asker.join(15)
    eventually(lambda: busy.stats.messages_in >= FLOOD, timeout=60, what="every echo received")
    assert busy.stats.messages_in == FLOOD
    assert ticker.state == "open" and busy.state == "open"
    return start, end, quiet + noise.largest, answered, gaps


def _assert_fair(start: float, end: float, allowance: float, answered: list[float], gaps: Gaps) -> None:
    assert end - start > 2 * GAP_BOUND, "the flood ended too soon to tell anything"
    gap = gaps.largest_between(start, end)
    assert gap < GAP_BOUND + 2 * allowance, (
        f"ticker starved: largest gap {gap:.3f} s during a {end - start:.1f} s flood "
        f"(allowance for machine noise: {allowance:.3f} s)"
    )
    assert answered, "no request on the ticker socket was answered during the flood"


def test_a_thread_sending_in_a_loop_does_not_starve_other_sockets() -> None:
    def flood(busy: nbs.Connection) -> None:
        for i in range(FLOOD):
            busy.send(f'{{"i": {i}}}')
        eventually(lambda: busy.stats.messages_out >= FLOOD, timeout=60, what="every message written")

    _assert_fair(*_run_flood(flood))


def test_a_burst_does_not_starve_other_sockets_and_counts_every_reply() -> None:
    reports = []

    def flood(busy: nbs.Connection) -> None:
        reports.append(nbs.burst("busy", itertools.repeat('{"x": 1}'), count=FLOOD, timeout=120, progress=False))

    _assert_fair(*_run_flood(flood))
    report = reports[0]
    assert report.delivered == FLOOD and report.failed == 0
    assert report.replies == FLOOD, report
