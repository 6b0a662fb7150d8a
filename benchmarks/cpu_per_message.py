"""CPU per message at a paced rate: nbsocket (defaults) against a bare websockets client, picows and a raw reader.

    python benchmarks/cpu_per_message.py [--rate 20000] [--messages 100000] [--rounds 3] [--quick]

The server (``_frameserver.py``, its own process) writes pre-built frames of small JSON ticks at
a fixed pace: it costs nothing per message, so what is measured is each client's own CPU. It is
first shown not to be the limit: a raw socket reader reads its unpaced flood, and that rate must
be at least 3x the fastest client's (1 / its CPU per message); the server's own CPU per message
during the paced runs is printed as well.

Each client runs in a process of its own and reads ``--messages`` messages; its process CPU time
(all threads: loop, handler lane, tickers) between message 1,000 and the last is divided by the
messages in between. "Kept up" compares the rate at which the messages were handled with the
paced rate. Rounds alternate the clients; the table shows medians (and the spread over rounds).

* ``raw``: a socket that only counts bytes (no WebSocket parsing): the floor.
* ``picows``: the C-accelerated client (``pip install picows``) + ``json.loads``.
* ``websockets``: bare ``websockets`` asyncio client + ``json.loads`` + append to a bounded deque.
* ``nbsocket``: ``nbs.connect`` with its defaults: a plain no-op handler, live frame, transcript.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import FrameServer, have, run_client


def server_max_rate(server: FrameServer, count: int) -> float:
    """Messages per second a raw reader gets from the server's unpaced flood."""
    out = run_client(
        "receive",
        "raw",
        f"{server.url}/flood?count={count}",
        "--count",
        str(count),
        "--skip",
        str(count // 10),
        "--frame-size",
        str(server.frame_size),
    )
    return (out["count"] - out["skip"]) / (out["t1"] - out["t0"])


def measure(server: FrameServer, kind: str, rate: float, count: int) -> dict[str, float]:
    """One client's run at the paced rate: CPU us per message, handled rate, CPU share, server us per message."""
    skip = min(1000, count // 10)
    cpu0 = server.cpu()
    out = run_client(
        "receive",
        kind,
        f"{server.url}/paced?rate={rate:g}&count={count}",
        "--count",
        str(count),
        "--skip",
        str(skip),
        "--frame-size",
        str(server.frame_size),
        timeout=count / rate * 10 + 60,
    )
    server_cpu = server.cpu() - cpu0
    if "t1" not in out or out.get("t0") is None:
        return {"us": float("nan"), "rate": 0.0, "share": float("nan"), "server_us": float("nan")}
    n = count - skip
    wall, cpu = out["t1"] - out["t0"], out["cpu1"] - out["cpu0"]
    return {"us": cpu / n * 1e6, "rate": n / wall, "share": cpu / wall, "server_us": server_cpu / count * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20_000, help="paced messages per second")
    parser.add_argument("--messages", type=int, default=100_000, help="messages per client run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", default="raw,picows,websockets,nbsocket")
    parser.add_argument("--quick", action="store_true", help="a short run (~30 s): 30,000 messages, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.rounds = min(args.messages, 30_000), min(args.rounds, 2)
    kinds = [k for k in args.clients.split(",") if k != "picows" or have("picows")]
    if "picows" in args.clients and "picows" not in kinds:
        print("picows is not installed (pip install picows, or the 'bench' extra): skipped")
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    with FrameServer() as server:
        server_max = server_max_rate(server, 2_000_000 if not args.quick else 500_000)
        print(
            f"server: {server.frame_size}-byte frames (small JSON ticks); raw reader on the unpaced flood: "
            f"{server_max:,.0f} msgs/s"
        )
        for r in range(args.rounds):
            order = kinds if r % 2 == 0 else kinds[::-1]
            for kind in order:
                results[kind].append(measure(server, kind, args.rate, args.messages))
            print(f"round {r + 1}: " + ", ".join(f"{k} {results[k][-1]['us']:.1f} us" for k in kinds), flush=True)

    def med(kind: str, key: str) -> float:
        return statistics.median(x[key] for x in results[kind])

    base = med("websockets", "us") if "websockets" in results else float("nan")
    print()
    print(
        f"CPU per message at {args.rate:,.0f} msgs/s paced, {args.messages:,} messages per run, "
        f"median of {args.rounds} alternating rounds (client process CPU, all threads)"
    )
    print(
        f"{'client':<12}{'CPU us/msg':>11}{'spread':>15}{'vs bare ws':>11}{'handled/s':>11}{'kept up':>9}"
        f"{'CPU %core':>10}{'server us/msg':>14}"
    )
    fastest = 0.0
    for kind in kinds:
        us = med(kind, "us")
        lo, hi = min(x["us"] for x in results[kind]), max(x["us"] for x in results[kind])
        rate = med(kind, "rate")
        kept = "yes" if rate >= 0.98 * args.rate else "NO"
        if kind != "raw":
            fastest = max(fastest, 1e6 / us)
        print(
            f"{kind:<12}{us:>11.2f}{f'{lo:.1f}-{hi:.1f}':>15}{us / base:>11.2f}{rate:>11,.0f}{kept:>9}"
            f"{med(kind, 'share') * 100:>9.0f}%{med(kind, 'server_us'):>14.2f}"
        )
    print()
    verdict = "OK" if server_max >= 3 * fastest else "TOO SLOW: the figures may measure the server"
    print(
        f"server check: raw reader {server_max:,.0f} msgs/s vs fastest client's ceiling (1/CPU per message) "
        f"{fastest:,.0f} msgs/s = {server_max / fastest:.1f}x (needs >= 3x): {verdict}"
    )
    print(
        "vs bare ws = CPU per message over the bare websockets client's (goal <= 1.0, must <= 1.2); "
        "kept up = handled rate >= 98% of the paced rate"
    )


if __name__ == "__main__":
    main()
