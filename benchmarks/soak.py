"""Soak: one socket at a high rate for a long time with ``max_rows`` set; memory must stay flat once the cap fills.

    python benchmarks/soak.py [--minutes 10] [--rate 5000] [--max-rows 100000]

Samples the client's RSS every ``--every`` seconds and compares the last samples with
the first one taken after the live frame reached ``max_rows``.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

import psutil

sys.path.insert(0, os.path.dirname(__file__))

from _common import demo_server_process

import nbsocket as nbs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--max-rows", type=int, default=100_000)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between memory samples")
    args = parser.parse_args()
    process = psutil.Process()
    handled = 0

    def handler(event: nbs.WsEvent) -> None:
        nonlocal handled
        handled += 1

    samples: list[tuple[float, int, int, int]] = []
    with demo_server_process() as base:
        conn = nbs.connect("soak", f"{base}/ticker?rate={args.rate}", handler=handler, max_rows=args.max_rows)
        assert conn.frame is not None
        start = time.monotonic()
        end = start + args.minutes * 60
        while time.monotonic() < end:
            time.sleep(args.every)
            nbs.frame("soak")  # a user looking at the frame now and then
            gc.collect()
            samples.append((time.monotonic() - start, conn.stats.messages_in, len(conn.frame), process.memory_info().rss))
            t, n, rows, rss = samples[-1]
            print(f"{t:7.0f} s  {n:>10,} msgs  {rows:>8,} rows  RSS {rss / 2**20:8.1f} MiB", flush=True)
        errors = conn.stats.errors
        nbs.shutdown()  # before the server goes away
    full = [s for s in samples if s[2] >= args.max_rows]
    if len(full) < 3:
        print("the cap never filled: run longer or faster")
        sys.exit(1)
    first = full[1][3]  # one sample after filling, so the last chunk boundary settled
    last = max(s[3] for s in full[-3:])
    rate = samples[-1][1] / samples[-1][0]
    growth = (last - first) / first
    print(f"{samples[-1][1]:,} messages in {samples[-1][0]:.0f} s ({rate:,.0f}/s), handled {handled:,}, errors {errors}")
    print(f"RSS after the cap filled {first / 2**20:.1f} MiB, at the end {last / 2**20:.1f} MiB: {growth:+.1%}")
    print("FLAT" if growth < 0.10 else "GROWING")


if __name__ == "__main__":
    main()
