"""Round-trip times of a socket: keepalive pings, ``conn.ping()``, request and burst round trips, with statistics."""

from __future__ import annotations

import array
import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pandas as pd

from ...errors import InvalidOptionError, SocketClosedError, WaitTimeoutError
from ..loop import LoopThread
from ..transport import Wire

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["KINDS", "MAX_LATENCY_SAMPLES", "STATS_COLUMNS", "Latency", "SampleRing"]

MAX_LATENCY_SAMPLES = 10_000
"""Ping, request and burst round-trip times kept per socket (each)."""
KINDS = ("ping", "request", "burst")
"""The kinds of round trip kept: keepalive and ``conn.ping()`` pings, ``request`` replies, a burst's replies."""
STATS_COLUMNS = ["count", "mean_s", "min_s", "p50_s", "p95_s", "p99_s", "max_s"]
"""Columns of ``latency_stats``: round trips in seconds, the unit of every timeout and of ``Reply.rtt``."""


class SampleRing:
    """The last ``capacity`` round trips of one kind, 16 bytes each (two typed arrays used as a ring).

    A socket kept for days gathers a keepalive round trip every 20 s and may
    hold thousands of request round trips: as tuples in a deque that was about
    120 bytes a sample, 1.2 MB per kind per socket at the cap, too much for a
    process holding thousands of sockets. Any thread may add; readers copy.
    """

    __slots__ = ("_capacity", "_lock", "_next", "_rtts", "_timestamps")

    def __init__(self, capacity: int = MAX_LATENCY_SAMPLES) -> None:
        self._capacity = capacity
        self._timestamps = array.array("q")  # receipt time, UTC ns
        self._rtts = array.array("d")  # seconds
        self._next = 0  # where the next sample goes, once the ring is full
        self._lock = threading.Lock()

    def append(self, sample: tuple[int, float]) -> None:
        """Keep one ``(ts_ns, seconds)`` sample, forgetting the oldest when full."""
        ts_ns, rtt = sample
        with self._lock:
            if len(self._timestamps) < self._capacity:
                self._timestamps.append(ts_ns)
                self._rtts.append(rtt)
                return
            index = self._next
            self._timestamps[index] = ts_ns
            self._rtts[index] = rtt
            self._next = (index + 1) % self._capacity

    def extend(self, samples: Iterable[tuple[int, float]]) -> None:
        """Keep each of ``samples`` in order."""
        for sample in samples:
            self.append(sample)

    def samples(self) -> list[tuple[int, float]]:
        """The samples kept, oldest first."""
        with self._lock:
            start = self._next
            timestamps = self._timestamps[start:] + self._timestamps[:start]
            rtts = self._rtts[start:] + self._rtts[:start]
        return list(zip(timestamps, rtts, strict=True))

    def __len__(self) -> int:
        return len(self._timestamps)


class Latency:
    """A connection's latency part: the history of ping, request and burst round trips, in seconds."""

    def __init__(self, session: Session, loop_thread: LoopThread) -> None:
        self._session = session
        self._loop_thread = loop_thread
        self._samples: dict[str, SampleRing] = {}  # by kind, made with its first sample
        self._last_ws: Wire | None = None
        self._last = 0.0

    def _kept(self, kind: str) -> SampleRing:
        """The samples of ``kind``, made on first use (a socket holds no empty history)."""
        samples = self._samples.get(kind)
        if samples is None:
            samples = self._samples.setdefault(kind, SampleRing())
        return samples

    def _list(self, kind: str) -> list[tuple[int, float]]:
        samples = self._samples.get(kind)
        return samples.samples() if samples is not None else []

    def note_request(self, ts_ns: int, rtt: float) -> None:
        """Keep one request's round trip."""
        self._kept("request").append((ts_ns, rtt))

    def note(self, kind: str, samples: list[tuple[int, float]]) -> None:
        """Keep round trips measured elsewhere: ``(receipt ts_ns, seconds)`` pairs of ``kind`` (``request`` or ``burst``)."""
        if kind not in ("request", "burst"):
            raise InvalidOptionError(f"kind must be 'request' or 'burst', not {kind!r}")
        self._kept(kind).extend(samples)

    def ping(self, timeout: float = 5.0) -> float:
        """See :meth:`Connection.ping <nbsocket.Connection.ping>`."""
        self._loop_thread.refuse_blocking("ping")
        try:
            return self._loop_thread.run(self._ping(), timeout)
        except concurrent.futures.TimeoutError:
            raise WaitTimeoutError(self._no_pong(timeout)) from None

    async def ping_async(self, timeout: float = 5.0) -> float:
        """Like :meth:`ping`, for ``await``."""
        loop_thread = self._loop_thread
        pinging = self._ping() if loop_thread.in_loop_thread() else asyncio.wrap_future(loop_thread.submit(self._ping()))
        try:
            return await asyncio.wait_for(pinging, timeout)
        except asyncio.TimeoutError:
            raise WaitTimeoutError(self._no_pong(timeout)) from None

    def _no_pong(self, timeout: float) -> str:
        session = self._session
        return f"no pong from {session.name!r} within {timeout}s (socket {session.state})"

    async def _ping(self) -> float:
        session = self._session
        ws = session.ws
        if ws is None or not session.test():
            raise SocketClosedError(f"cannot ping {session.name!r}: the socket is {session.state}")
        pong = await ws.ping()
        rtt = float(await pong)
        if not (ws is self._last_ws and rtt == self._last):  # the ticker may have seen it first
            self._last_ws, self._last = ws, rtt
            self._kept("ping").append((time.time_ns(), rtt))
        return rtt

    def sample(self) -> None:
        """Note a new keepalive round trip, if there was one since the last call (loop thread, when a pong arrives)."""
        ws = self._session.ws
        if ws is None:
            return
        latency = ws.latency
        if latency and (ws is not self._last_ws or latency != self._last):
            self._last_ws, self._last = ws, latency
            self._kept("ping").append((time.time_ns(), latency))

    def history(self) -> pd.DataFrame:
        """See :meth:`Connection.latency <nbsocket.Connection.latency>`."""
        rows = [(ts, kind, rtt) for kind in KINDS for ts, rtt in self._list(kind)]
        rows.sort(key=lambda row: row[0])
        frame = pd.DataFrame(rows, columns=["timestamp", "kind", "rtt_s"])
        frame["timestamp"] = pd.to_datetime(frame["timestamp"].astype("int64"), unit="ns", utc=True)
        frame["rtt_s"] = frame["rtt_s"].astype("float64")
        return frame

    def stats(self) -> pd.DataFrame:
        """See :meth:`Connection.latency_stats <nbsocket.Connection.latency_stats>`."""
        rows = {}
        for kind in KINDS:
            values = pd.Series([rtt for _ts, rtt in self._list(kind)], dtype="float64")
            quantiles = values.quantile([0.5, 0.95, 0.99]) if len(values) else pd.Series([float("nan")] * 3)
            rows[kind] = [len(values), values.mean(), values.min(), *quantiles.tolist(), values.max()]
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=STATS_COLUMNS)
        frame["count"] = frame["count"].astype("int64")
        frame.index.name = "kind"
        return frame
