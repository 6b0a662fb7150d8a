"""The live frame: ingest, append, memory and snapshot cost, each as a ratio to a baseline measured in the same run.

    python benchmarks/frame.py [--messages 100000] [--rounds 3] [--rows 1000000]

1. end-to-end ingest of /ticker?rate=max into the live frame through ``nbs.connect``
   (no handler), against a bare ``websockets`` client that only parses JSON; the demo
   server runs in its own process; rounds alternate; medians (target >= 0.8);
2. ``LiveFrame.append`` (plus one snapshot at the end) against ``pd.concat`` per row;
3. memory of a 1,000,000-row live frame against ``pd.DataFrame.from_records`` of the same
   rows (target <= 1.3), as retained allocations (tracemalloc + pyarrow's pool) and as
   ``DataFrame.memory_usage(deep=True)``;
4. 100 successive ``nbs.frame(name)`` calls on 1,000,000 rows against one ``from_records``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))

import pandas as pd
import pyarrow as pa
from _common import bare_client, demo_server_process, median

import nbsocket as nbs
from nbsocket.core.flatten import message_fields
from nbsocket.core.frame import LiveFrame

T0 = time.time_ns()


def ticks(n: int) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """``n`` rows as the live frame gets them: the demo ticker's messages, parsed and flattened."""
    symbols = ("ABC", "XYZ", "QRS")
    for seq in range(1, n + 1):
        body = (
            f'{{"seq":{seq},"symbol":"{symbols[seq % 3]}","price":{100 + (seq % 997) / 100},"timestamp":{1.7e9 + seq / 1e4:.6f}}}'
        )
        yield T0 + seq * 1000, seq, message_fields(json.loads(body), None, body)


def full_rows(n: int, name: str = "bench") -> list[dict[str, Any]]:
    """The same rows as plain dicts with the frame's base columns, for ``from_records``."""
    return [{"timestamp": ts, "socket": name, "seq": seq, **fields} for ts, seq, fields in ticks(n)]


def from_records(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ns", utc=True)
    return frame


# --- 1. end-to-end ingest ------------------------------------------------------------------------


def live_frame_client(url: str, n: int, frame: bool = True) -> tuple[float, float]:
    """Seconds and process CPU seconds for ``nbs.connect`` to put ``n`` ticks into its live frame."""
    cpu, start = time.process_time(), time.perf_counter()
    conn = nbs.connect("ingest", url, reconnect=False, max_rows=n, frame=frame)
    while conn.stats.messages_in < n:
        if conn.state != "open" and conn.stats.messages_in < n:
            raise RuntimeError(f"the stream ended after {conn.stats.messages_in} of {n} messages")
        time.sleep(0.002)
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    if frame:
        assert conn.frame is not None and len(conn.frame) == n
    nbs.remove("ingest")
    return elapsed, used


def bench_ingest(n: int, rounds: int) -> None:
    runs: dict[str, list[tuple[float, float]]] = {
        "bare websockets + json.loads": [],
        "nbs.connect, live frame": [],
        "nbs.connect, frame=False": [],
    }
    with demo_server_process() as base:
        url = f"{base}/ticker?rate=max&count={n}"
        bare_client(url, min(n, 5000))  # warm up the server
        live_frame_client(url, min(n, 5000))
        for _ in range(rounds):
            runs["bare websockets + json.loads"].append(bare_client(url, n))
            runs["nbs.connect, live frame"].append(live_frame_client(url, n))
            runs["nbs.connect, frame=False"].append(live_frame_client(url, n, frame=False))
    base_time = median([t for t, _ in runs["bare websockets + json.loads"]])
    base_cpu = median([c for _, c in runs["bare websockets + json.loads"]])
    print(f"1. ingest of {n:,} ticks from /ticker?rate=max (server in its own process), median of {rounds} alternating rounds")
    print(f"   {'client':<32}{'msgs/s':>10}{'ratio':>8}{'CPU us/msg':>12}{'CPU ratio':>11}")
    for name, results in runs.items():
        elapsed = median([t for t, _ in results])
        cpu = median([c for _, c in results])
        print(f"   {name:<32}{n / elapsed:>10,.0f}{base_time / elapsed:>8.2f}{cpu / n * 1e6:>12.1f}{base_cpu / cpu:>11.2f}")
    print("   ratio = msgs/s over the bare client's (target >= 0.8); CPU ratio = bare client's CPU per message over this one's")
    bench_stages(min(n, 200_000))


def bench_stages(n: int) -> None:
    """Where the live frame's share of that CPU goes, per message, measured in this process."""
    symbols = ("ABC", "XYZ", "QRS")
    bodies = [
        f'{{"seq":{i},"symbol":"{symbols[i % 3]}","price":{100 + (i % 997) / 100},"timestamp":{1.7e9 + i / 1e4:.6f}}}'
        for i in range(1, n + 1)
    ]

    def best(fn: Callable[[], Any]) -> float:
        times = []
        for _ in range(3):
            gc.collect()
            start = time.process_time()
            fn()
            times.append(time.process_time() - start)
        return min(times) / n * 1e6

    def parse_only() -> None:
        for body in bodies:
            json.loads(body)

    def parse_and_flatten() -> None:
        for body in bodies:
            message_fields(json.loads(body), None, body)

    def parse_flatten_append() -> None:  # what Connection._receive does for the frame
        frame = LiveFrame("bench", max_rows=n)
        for seq, body in enumerate(bodies, 1):
            frame.append(T0 + seq, seq, message_fields(json.loads(body), None, body))
        frame.flush()

    loads, flattened, appended = best(parse_only), best(parse_and_flatten), best(parse_flatten_append)
    print(
        f"   in-process CPU per message: json.loads {loads:.2f} us (the bare client does this too); the live frame adds "
        f"{appended - loads:.2f} us: message_fields {flattened - loads:.2f} us, "
        f"append and chunk building {appended - flattened:.2f} us"
    )


# --- 2. append vs concat per row ---------------------------------------------------------------------


def bench_append(n_live: int, n_concat: int) -> None:
    rows = list(ticks(n_live))
    start = time.perf_counter()
    frame = LiveFrame("bench", max_rows=None)
    for ts, seq, fields in rows:
        frame.append(ts, seq, fields)
    frame.snapshot()
    live = (time.perf_counter() - start) / n_live

    start = time.perf_counter()
    df = pd.DataFrame()
    for ts, seq, fields in rows[:n_concat]:
        row = {"timestamp": pd.Timestamp(ts, unit="ns", tz="UTC"), "socket": "bench", "seq": seq, **fields}
        df = pd.concat([df, pd.DataFrame([row])], ignore_index=True)
    concat = (time.perf_counter() - start) / n_concat
    print(
        f"2. append: live frame {live * 1e6:.2f} us/row over {n_live:,} rows (one snapshot included); "
        f"pd.concat per row {concat * 1e6:.0f} us/row over {n_concat:,} rows; speed-up x{concat / live:,.0f}"
    )


# --- 3. memory -------------------------------------------------------------------------------------------


def retained(build: Callable[[], Any]) -> tuple[Any, int]:
    """What ``build()`` returns and the bytes it keeps allocated (Python heap and NumPy via tracemalloc, plus Arrow's pool)."""
    gc.collect()
    tracemalloc.start()
    arrow_before = pa.total_allocated_bytes()
    base = tracemalloc.get_traced_memory()[0]
    result = build()
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - base + pa.total_allocated_bytes() - arrow_before
    tracemalloc.stop()
    return result, kept


def bench_memory(n: int) -> None:
    rows = list(ticks(n))  # made before tracing: only what the frame and from_records allocate is counted
    records = [{"timestamp": ts, "socket": "bench", "seq": seq, **fields} for ts, seq, fields in rows]

    def build_live() -> LiveFrame:
        frame = LiveFrame("bench", max_rows=n)
        for ts, seq, fields in rows:
            frame.append(ts, seq, fields)
        frame.flush()
        return frame

    def build_live_and_snapshot() -> LiveFrame:
        frame = build_live()
        frame.snapshot()  # consolidates the chunks into one frame, kept for the next snapshot
        return frame

    def build_records() -> pd.DataFrame:
        return from_records(records)

    start = time.perf_counter()
    frame, live_bytes = retained(build_live)
    chunks_deep = sum(int(c.frame.memory_usage(deep=True).sum()) for c in frame._chunks)
    chunk_count = len(frame._chunks)
    del frame
    consolidated, consolidated_bytes = retained(build_live_and_snapshot)
    snap_deep = int(consolidated.snapshot().memory_usage(deep=True).sum())
    baseline, base_bytes = retained(build_records)
    base_deep = int(baseline.memory_usage(deep=True).sum())
    assert consolidated.snapshot()["seq"].tolist() == baseline["seq"].tolist()
    print(f"3. memory of {n:,} rows ({time.perf_counter() - start:.0f} s to measure):")
    print("   retained allocations (tracemalloc: Python heap and NumPy; plus pyarrow's pool for the string columns):")
    print(
        f"   live frame {live_bytes / 2**20:.1f} MiB in {chunk_count} chunks, ratio {live_bytes / base_bytes:.2f}; "
        f"after a snapshot (one consolidated chunk) {consolidated_bytes / 2**20:.1f} MiB, "
        f"ratio {consolidated_bytes / base_bytes:.2f}; "
        f"from_records {base_bytes / 2**20:.1f} MiB (target ratio <= 1.3)"
    )
    print(
        f"   DataFrame.memory_usage(deep=True): chunks {chunks_deep / 2**20:.1f} MiB, consolidated {snap_deep / 2**20:.1f} MiB, "
        f"from_records {base_deep / 2**20:.1f} MiB, ratio {chunks_deep / base_deep:.2f}"
    )


# --- 4. snapshots -----------------------------------------------------------------------------------------


def bench_snapshots(n: int, calls: int) -> None:
    rows = full_rows(n)
    start = time.perf_counter()
    from_records(rows)
    once = time.perf_counter() - start
    start = time.perf_counter()
    pd.DataFrame.from_records(rows)
    bare_once = time.perf_counter() - start
    del rows
    gc.collect()

    with demo_server_process() as base:
        conn = nbs.connect("snap", f"{base}/echo", reconnect=False, max_rows=n)
        frame = conn.frame
        assert frame is not None
        for ts, seq, fields in ticks(n):  # as the loop thread would, without waiting for a million messages
            frame.append(ts, seq, fields)
        start = time.perf_counter()
        first = nbs.frame("snap")
        first_call = time.perf_counter() - start
        for _ in range(calls - 1):
            nbs.frame("snap")
        static = time.perf_counter() - start
        assert len(first) == n
        extra = iter(ticks(n + calls * 10))
        for _ in range(n):
            next(extra)
        start = time.perf_counter()
        for _ in range(calls):
            for _ in range(10):
                frame.append(*next(extra))
            nbs.frame("snap")
        moving = time.perf_counter() - start
        nbs.remove("snap")
    print(
        f"4. {calls} successive nbs.frame(name) on {n:,} rows: {static:.3f} s (first call {first_call:.3f} s, the rest "
        f"{(static - first_call) / (calls - 1) * 1e3:.2f} ms each); one from_records of them {bare_once:.3f} s "
        f"({once:.3f} s with the timestamp conversion): ratio {static / bare_once:.2f}"
    )
    print(
        f"   with 10 new rows before each call (the frame is full, so the oldest rows go): {moving:.3f} s, "
        f"{moving / calls * 1e3:.1f} ms per call, ratio {moving / bare_once:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages per ingest round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the memory and snapshot measurements")
    parser.add_argument("--concat-rows", type=int, default=3000)
    args = parser.parse_args()
    print(__doc__.split("\n\n", 2)[2].rstrip())
    print(
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the start: other processes skew the ingest ratios)"
    )
    print()
    bench_ingest(args.messages, args.rounds)
    bench_append(min(args.rows, 200_000), args.concat_rows)
    bench_memory(args.rows)
    gc.collect()
    bench_snapshots(args.rows, 100)
    nbs.shutdown()


if __name__ == "__main__":
    main()
