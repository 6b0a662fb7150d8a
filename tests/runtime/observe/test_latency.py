"""A socket's round-trip history: kept in a compact ring, oldest first, bounded, and what ``conn.latency()`` shows."""

from __future__ import annotations

import threading
import tracemalloc

import nbsocket as nbs
from nbsocket.runtime.observe.latency import SampleRing
from tests.servers import WsServer


def test_the_ring_keeps_the_last_samples_oldest_first() -> None:
    ring = SampleRing(capacity=4)
    assert ring.samples() == [] and len(ring) == 0
    ring.extend((ts, ts / 10) for ts in range(1, 4))
    assert ring.samples() == [(1, 0.1), (2, 0.2), (3, 0.3)]
    ring.extend((ts, ts / 10) for ts in range(4, 11))
    assert ring.samples() == [(7, 0.7), (8, 0.8), (9, 0.9), (10, 1.0)] and len(ring) == 4


def test_a_full_ring_costs_about_sixteen_bytes_a_sample() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        ring = SampleRing(capacity=10_000)
        ring.extend((1_796_000_000_000_000_000 + i, 0.001 * i) for i in range(30_000))
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(ring) == 10_000 and used < 10_000 * 24, used  # tuples in a deque took about 120 bytes a sample


def test_threads_adding_at_once_lose_nothing_and_keep_the_bound() -> None:
    ring = SampleRing(capacity=1000)

    def add(base: int) -> None:
        for i in range(5000):
            ring.append((base + i, 0.0))

    threads = [threading.Thread(target=add, args=(n * 10_000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    samples = ring.samples()
    assert len(samples) == 1000 and len(set(samples)) == 1000


def test_request_round_trips_show_in_the_history_and_the_stats() -> None:
    with WsServer() as server:
        conn = nbs.connect("rtt", server.url)
        try:
            for i in range(3):
                conn.request({"id": i}, match={"id": i})
            history = conn.latency()
            requests = history[history["kind"] == "request"]
            assert len(requests) == 3 and requests["timestamp"].is_monotonic_increasing and (requests["rtt_s"] > 0).all()
            assert conn.latency_stats().loc["request", "count"] == 3
        finally:
            conn.remove()
