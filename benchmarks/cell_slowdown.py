"""How much a streaming socket slows a pure-Python cell: nbsocket vs a bare websockets client in a thread vs no feed.

    python benchmarks/cell_slowdown.py [--rates 2000,10000,20000] [--loops 2000000] [--rounds 4] [--quick]

While the pre-framed, paced server (``_frameserver.py``, its own process; costs nothing per
message) streams small JSON ticks at each rate, a client process times a CPU-bound "cell" (a
fixed pure-Python loop that holds the GIL) in its main thread, ``--repeats`` times, with:

* ``none``: no feed (the baseline);
* ``websockets``: a bare ``websockets`` asyncio client in a background thread (``json.loads`` +
  append to a bounded deque): what a user would write by hand;
* ``nbsocket``: ``nbs.connect`` with its defaults (plain no-op handler, live frame, transcript).

Each process first times the cell before its feed starts, then with the feed streaming. Slowdown =
cell time with the feed over the median of all the no-feed cells (those before every feed, and
the ``none`` rows, whose ratio shows what noise alone does: ~1.0 on a quiet machine). "Handled" is the rate at which messages went
through the client (nbsocket: through the handler) while the cells ran: below the offered rate
the client is falling behind. Each configuration is a fresh process; rounds alternate them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import FrameServer, run_client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="2000,10000,20000", help="offered msgs/s, comma-separated")
    parser.add_argument("--loops", type=int, default=3_000_000, help="iterations of the cell's loop")
    parser.add_argument("--repeats", type=int, default=3, help="cells per process")
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="processes per configuration (the GIL makes one "
        "process's cells agree with each other more than with another's: the median needs several)",
    )
    parser.add_argument("--quick", action="store_true", help="a short run (~30 s): 1 round of 2 shorter cells")
    args = parser.parse_args()
    if args.quick:
        args.loops, args.repeats, args.rounds = min(args.loops, 1_500_000), 2, 1
    rates = [float(r) for r in args.rates.split(",")]
    configs = [("none", 0.0)] + [(kind, rate) for rate in rates for kind in ("websockets", "nbsocket")]
    times: dict[tuple[str, float], list[float]] = {c: [] for c in configs}
    ratios: dict[tuple[str, float], list[float]] = {c: [] for c in configs}
    before: list[float] = []
    handled: dict[tuple[str, float], list[float]] = {c: [] for c in configs}
    with FrameServer() as server:
        out = run_client(
            "receive",
            "raw",
            f"{server.url}/flood?count=1000000",
            "--count",
            "1000000",
            "--skip",
            "100000",
            "--frame-size",
            str(server.frame_size),
        )
        server_max = (out["count"] - out["skip"]) / (out["t1"] - out["t0"])
        print(
            f"server check: a raw reader gets {server_max:,.0f} msgs/s from the unpaced flood, "
            f"{server_max / max(rates):,.0f}x the highest offered rate ({max(rates):,.0f}/s)"
        )
        for r in range(args.rounds):
            for kind, rate in configs if r % 2 == 0 else configs[::-1]:
                url = f"{server.url}/paced?rate={rate:g}&count=0" if kind != "none" else server.url + "/none"
                res = run_client("cell", kind, url, "--loops", str(args.loops), "--repeats", str(args.repeats), "--settle", "1.0")
                times[(kind, rate)].extend(res["times"])
                before.extend(res["before"])
                handled[(kind, rate)].append(res["handled"] / res["wall"])
            print(f"round {r + 1} done", flush=True)
    before.extend(times[("none", 0.0)])
    base = statistics.median(before)
    for key, values in times.items():
        ratios[key] = [t / base for t in values]
    print()
    print(
        f"cell: {args.loops:,} iterations of a pure-Python loop, {base:.3f} s with no feed "
        f"(median of {len(before)}, all processes)"
    )
    print(f"{'offered/s':>10}  {'client':<12}{'cell s':>8}{'slowdown':>10}{'spread':>13}{'handled/s':>11}{'kept up':>9}")
    for kind, rate in configs:
        t = statistics.median(times[(kind, rate)])
        q = ratios[(kind, rate)]
        h = statistics.median(handled[(kind, rate)])
        kept = "yes" if h >= 0.95 * rate else "NO"
        print(
            f"{rate:>10,.0f}  {kind:<12}{t:>8.3f}{statistics.median(q):>9.2f}x{f'{min(q):.2f}-{max(q):.2f}':>13}"
            f"{h:>11,.0f}{kept if kind != 'none' else '':>9}"
        )
    print("\nslowdown = cell time over the no-feed cell's; goal: nbsocket's no more than the bare client's")


if __name__ == "__main__":
    main()
