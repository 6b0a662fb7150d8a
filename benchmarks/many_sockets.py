"""Many sockets in one process: N sockets x R msgs/s (default 10,000 x 1), bare websockets clients on one loop vs nbsocket.

    python benchmarks/many_sockets.py [--sockets 10000] [--rate 1] [--seconds 20] [--open-budget 300] [--rounds 2] [--quick]

How many sockets one process holds before sharding is needed. The server (``_frameserver.py``, its own
process) sends every socket one pre-built frame every ``1 / rate`` seconds from one ticker, the sockets
spread over ``--phases`` slots of that period (default 100), so arrivals are sparse. It prints how many
frames it has written every 0.25 s: the offered load.

First the server check: a raw client (handshakes by hand, then only counts bytes) opens the same number
of sockets; it must receive the whole offered rate while the server uses a small share of a core, so the
server is not what is measured. Then rounds alternate the clients, each in a fresh process: bare
``websockets`` clients on one asyncio loop (``await connect(url)`` in a loop, a reader task per socket
that ``json.loads`` each message into a bounded deque) and nbsocket (a loop of ``nbs.connect`` calls, its
defaults: a plain handler, the live frame, the transcript). Reported per client: the time to open every
socket with that loop, the fraction of the offered messages handled over the window (nbsocket: by the
handler), the CPU per handled message and its ratio to the bare clients' measured in the same run, and
the process's CPU share (100% = one core). The goals: 10,000 sockets open in under 20 s, every message
handled, at most 1.2x bare CPU per message.

Open files: each socket is a file descriptor at both ends (the server and the client are processes of
their own), so each process needs about ``sockets + 256``. The benchmark raises the soft limit
(``resource.setrlimit``; the processes it starts inherit it) up to the hard limit; when the hard limit is
lower, raise it first (``ulimit -Hn``, as root, or ``/etc/security/limits.conf``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import FrameServer, raise_nofile
from quiet_sockets import measure

GOAL_OPEN_S = 20.0
GOAL_CPU_RATIO = 1.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1.0, help="messages per second to each socket")
    parser.add_argument("--phases", type=int, default=100, help="slots of the period the sockets are spread over")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window after opening and settling")
    parser.add_argument("--open-budget", type=float, default=300.0, help="stop opening sockets after this many seconds")
    parser.add_argument("--clients", default="websockets,nbsocket")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of every client")
    parser.add_argument("--quick", action="store_true", help="a short run: 2,000 sockets, 8 s window, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.sockets, args.seconds, args.rounds = min(args.sockets, 2_000), min(args.seconds, 8.0), 1
    want = args.sockets + 256
    soft, hard = raise_nofile(want)
    print(f"open files limit (ulimit -n): {soft}, hard {hard} (each process needs about {want} for {args.sockets:,} sockets)")
    if soft < want:
        raise SystemExit(f"the hard limit of open files ({hard}) is below {want}: raise it first (ulimit -Hn)")
    period = 1.0 / args.rate
    runs: dict[str, list[dict[str, float]]] = {}
    kinds = args.clients.split(",")
    with FrameServer("--quiet-period", str(period), "--quiet-batch", "1", "--quiet-phases", str(args.phases)) as server:

        def run(kind: str) -> dict[str, float]:
            res = measure(server, kind, args, "--frame-size", str(server.frame_size), margin=300.0)
            time.sleep(2.0)  # the server sees the client's sockets close
            return res

        raw = run("raw")
        print(
            f"server check: a raw reader opened {raw['opened']:,} sockets in {raw['open_s']:.1f} s and got "
            f"{raw['handled']:,.0f} of {raw['offered']:,.0f} msgs/s offered ({raw['handled'] / raw['offered']:.0%}); "
            f"the server used {raw['server_share']:.0%} of a core",
            flush=True,
        )
        for r in range(args.rounds):
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                res = run(kind)
                runs.setdefault(kind, []).append(res)
                print(
                    f"round {r + 1} {kind}: opened {res['opened']:,} sockets in {res['open_s']:.1f} s; handled "
                    f"{res['handled']:,.0f} of {res['offered']:,.0f} msgs/s offered ({res['handled'] / res['offered']:.0%}), "
                    f"{res['us']:.1f} us CPU per message, {res['cpu_share']:.0%} of a core; server {res['server_share']:.0%}",
                    flush=True,
                )
    results = {kind: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for kind, rs in runs.items()}
    print()
    print(
        f"{args.sockets:,} sockets x {args.rate:g} msgs/s ({args.phases} slots per period), {args.seconds:g} s window, "
        f"median of {args.rounds} alternating round(s)"
    )
    print(
        f"{'client':<12}{'opened':>8}{'open s':>8}{'offered/s':>11}{'handled/s':>11}{'%':>6}{'lag s':>7}"
        f"{'CPU us/msg':>11}{'CPU %core':>10}   spread"
    )
    for kind, r in results.items():
        rs = runs[kind]
        print(
            f"{kind:<12}{r['opened']:>8,.0f}{r['open_s']:>8.1f}{r['offered']:>11,.0f}{r['handled']:>11,.0f}"
            f"{r['handled'] / r['offered'] * 100:>5.0f}%{r['lag']:>7.1f}{r['us']:>11.1f}{r['cpu_share'] * 100:>9.0f}%"
            f"   {min(x['us'] for x in rs):.1f}-{max(x['us'] for x in rs):.1f}"
        )
    if "websockets" in runs and "nbsocket" in runs:
        ratios = [b["us"] / w["us"] for w, b in zip(runs["websockets"], runs["nbsocket"], strict=False)]
        b, w = results["nbsocket"], results["websockets"]
        print(
            f"\nnbsocket / bare: CPU per message {min(ratios):.2f}-{max(ratios):.2f}x (goal <= {GOAL_CPU_RATIO}x); handled "
            f"{b['handled'] / b['offered']:.0%} vs {w['handled'] / w['offered']:.0%} (goal 100%); opening "
            f"{b['open_s']:.1f} s vs {w['open_s']:.1f} s (goal < {GOAL_OPEN_S:g} s)"
        )
    print("lag = messages the server had written but the client had not handled at the end, over the offered rate")


if __name__ == "__main__":
    main()
