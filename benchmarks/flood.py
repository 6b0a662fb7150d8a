"""Throughput on an unpaced flood of pre-built frames: nbsocket (defaults) vs bare websockets vs picows.

    python benchmarks/flood.py [--messages 200000] [--rounds 3] [--quick]

The server (``_frameserver.py``, its own process) writes pre-built frames of small JSON ticks as
fast as the socket takes them; a raw reader (counts bytes, no parsing) shows first how fast that
is, which must be at least 3x the fastest client. Each client, in a process of its own, reads
``--messages`` messages; the table gives the handled rate between message 1,000 (or 10%) and the
last (nbsocket: as seen by its handler), its ratio to the bare websockets client's, and the
client's process CPU per message. Rounds alternate the clients; medians are shown.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import FrameServer, have, run_client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", default="picows,websockets,nbsocket")
    parser.add_argument("--quick", action="store_true", help="a short run (~30 s): 50,000 messages, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.rounds = min(args.messages, 50_000), min(args.rounds, 2)
    kinds = [k for k in args.clients.split(",") if k != "picows" or have("picows")]
    if "picows" in args.clients and "picows" not in kinds:
        print("picows is not installed (pip install picows, or the 'bench' extra): skipped")
    n, skip = args.messages, min(1000, args.messages // 10)
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    with FrameServer() as server:

        def run(kind: str, count: int, skip: int) -> tuple[float, float]:
            out = run_client(
                "receive",
                kind,
                f"{server.url}/flood?count={count}",
                "--count",
                str(count),
                "--skip",
                str(skip),
                "--frame-size",
                str(server.frame_size),
                timeout=300,
            )
            if "t1" not in out:
                return 0.0, float("nan")
            return (count - skip) / (out["t1"] - out["t0"]), (out["cpu1"] - out["cpu0"]) / (count - skip) * 1e6

        raw_rate, _ = run("raw", 2_000_000, 200_000)
        print(f"server check: a raw reader gets {raw_rate:,.0f} msgs/s from the flood ({server.frame_size}-byte frames)")
        for r in range(args.rounds):
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                results[kind].append(run(kind, n, skip))
            print(f"round {r + 1}: " + ", ".join(f"{k} {results[k][-1][0]:,.0f}/s" for k in kinds), flush=True)
    base = statistics.median(r for r, _ in results["websockets"]) if "websockets" in results else float("nan")
    print()
    print(f"unpaced flood, {n:,} messages per run, median of {args.rounds} alternating rounds")
    print(f"{'client':<12}{'msgs/s':>11}{'spread':>19}{'vs bare ws':>11}{'CPU us/msg':>12}")
    fastest = 0.0
    for kind in kinds:
        rates = [r for r, _ in results[kind]]
        rate = statistics.median(rates)
        fastest = max(fastest, rate)
        cpu = statistics.median(c for _, c in results[kind])
        print(f"{kind:<12}{rate:>11,.0f}{f'{min(rates):,.0f}-{max(rates):,.0f}':>19}{rate / base:>11.2f}{cpu:>12.2f}")
    print(
        f"\nserver check: raw reader {raw_rate:,.0f} msgs/s = {raw_rate / fastest:.0f}x the fastest client "
        f"({'OK' if raw_rate >= 3 * fastest else 'TOO SLOW: the figures may measure the server'})"
    )
    print("vs bare ws = handled rate over the bare websockets client's (goal >= 1.0)")


if __name__ == "__main__":
    main()
