"""Many quiet sockets: 1,000 sockets x 10 msgs/s, bare websockets clients on one loop vs nbsocket.

    python benchmarks/quiet_sockets.py [--sockets 1000] [--seconds 15] [--open-budget 45] [--rounds 3] [--quick]

The server (``_frameserver.py``, its own process) sends every socket one pre-built frame every
100 ms (10 msgs/s each) from one ticker, the sockets spread over 10 slots of the period so that
arrivals are sparse (that defeats batching: per-wake-up costs dominate). It writes the frames
prepared once; it prints how many it has written every 0.25 s, which is the offered load.

Each client, in a process of its own, first opens the sockets one after the other (bare: ``await
connect(url)`` in a loop; nbsocket: a loop of ``nbs.connect`` calls, its defaults: a plain no-op
handler, live frame, transcript) and that time is reported; opening stops at ``--open-budget``
seconds (the table then says how many were opened, and the rest is measured on those). After 3 s
of settling, it samples every 0.5 s for ``--seconds``. Rounds alternate the clients (each round a
fresh process per client) and the table shows each figure's median over the rounds, with the
spread of the CPU per message (it varies from process to process by 10-20% on a small machine).
Sampled: messages handled (nbsocket: by the handler),
process CPU. Reported: offered vs handled rate over the window (and in its first and second
half: a client that falls behind falls further behind), the backlog at the end (offered so far
minus handled) and the lag it means, CPU per handled message. The server check compares its own
CPU with the client's: it must be the cheaper side by far.

Why ``benchmarks/load.py`` reported "all delivered" at 500 sockets while 1,000 x 10 msgs/s
showed nbsocket handling only a third of the offered rate:

* it checked totals only, never the rate or the lag: each demo ticker stream was finite
  (``count = rate x seconds`` = 600 messages), and it waited for the total up to ``2 x seconds
  + 30`` s (150 s) after the last socket had opened. A client that falls ever further behind
  while the streams run still receives every message once they end, as it drains the backlog.
  "All delivered" meant "eventually", not "kept up";
* its clock started only once all sockets were open, and opening them with ``nbs.connect`` in
  a loop takes about a minute for 500 sockets: by then the first sockets' streams were
  (nearly) over, so most of the load fell outside the measured window, and the sockets were
  never all streaming at the same time at the nominal rate;
* it offered half the load (500 x 10 = 5,000 msgs/s, not 10,000);
* its server was the demo ``/ticker``: a Python task per socket encoding JSON per message, at
  5,000 msgs/s itself near a core on a 2-core machine. When it falls behind its ``start + seq /
  rate`` pacing sends the overdue ticks back to back: bursts, which nbsocket batches well,
  instead of sparse arrivals; and its nominal rate was not what it really offered;
* it counted ``stats.messages_in`` (read from the socket), not messages through the handler.

This benchmark measures the offered load from the server's own count, and the handled rate and
lag over time while every socket streams.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import FrameServer, raise_nofile, run_client

SETTLE = 3.0


def analyse(server: FrameServer, launched: float, out: dict) -> dict[str, float]:
    samples = [s for s in out["samples"] if s[0] >= out["samples"][0][0] + SETTLE] or out["samples"]
    (t0, h0, c0), (t1, h1, c1) = samples[0], samples[-1]
    mid = samples[len(samples) // 2]
    offered = (server.sent_at(t1) - server.sent_at(t0)) / (t1 - t0)
    backlog = server.sent_at(t1) - server.sent_at(launched) - h1
    return {
        "opened": out["opened"],
        "open_s": out["open_seconds"],
        "offered": offered,
        "handled": (h1 - h0) / (t1 - t0),
        "first": (mid[1] - h0) / max(mid[0] - t0, 1e-9),
        "second": (h1 - mid[1]) / max(t1 - mid[0], 1e-9),
        "backlog": backlog,
        "lag": backlog / offered if offered else float("nan"),
        "us": (c1 - c0) / max(h1 - h0, 1) * 1e6,
        "cpu_share": (c1 - c0) / (t1 - t0),
    }


def measure(server: FrameServer, kind: str, args: argparse.Namespace, *extra: str, margin: float = 120.0) -> dict[str, float]:
    """One client process on ``server``'s quiet feed (``args.sockets``, ``args.seconds``, ``args.open_budget``):
    its figures (:func:`analyse`) and the server's share of a core meanwhile."""
    launched, scpu0 = time.time(), server.cpu()
    out = run_client(
        "quiet",
        kind,
        f"{server.url}/quiet",
        "--sockets",
        str(args.sockets),
        "--seconds",
        str(args.seconds),
        "--open-budget",
        str(args.open_budget),
        *extra,
        timeout=args.open_budget + args.seconds + margin,
    )
    res = analyse(server, launched, out)
    res["server_share"] = (server.cpu() - scpu0) / (time.time() - launched)
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15.0, help="measured window after opening and settling")
    parser.add_argument("--open-budget", type=float, default=45.0, help="stop opening sockets after this many seconds")
    parser.add_argument("--clients", default="websockets,nbsocket")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of every client")
    parser.add_argument(
        "--quick", action="store_true", help="a short run (~30 s): 300 sockets, 6 s window, 8 s opening budget, 1 round"
    )
    args = parser.parse_args()
    if args.quick:
        args.sockets, args.seconds, args.open_budget = min(args.sockets, 300), min(args.seconds, 6.0), min(args.open_budget, 8.0)
        args.rounds = 1
    soft, _hard = raise_nofile(args.sockets * 2 + 256)
    print(
        f"open files limit (ulimit -n): {soft} (needs about {args.sockets * 2 + 256} for {args.sockets} sockets, "
        f"both ends in this process tree)"
    )
    runs: dict[str, list[dict[str, float]]] = {}
    kinds = args.clients.split(",")
    with FrameServer("--quiet-period", "0.1", "--quiet-batch", "1", "--quiet-phases", "10") as server:
        for r in range(args.rounds):
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                res = measure(server, kind, args)
                runs.setdefault(kind, []).append(res)
                print(
                    f"round {r + 1} {kind}: opened {res['opened']} sockets in {res['open_s']:.1f} s; "
                    f"handled {res['handled']:,.0f} of "
                    f"{res['offered']:,.0f} msgs/s offered, {res['us']:.1f} us CPU per message",
                    flush=True,
                )
                time.sleep(1.0)  # the server sees the previous client's sockets close
    results = {kind: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for kind, rs in runs.items()}
    spread = {kind: (min(r["us"] for r in rs), max(r["us"] for r in rs)) for kind, rs in runs.items()}
    print()
    print(
        f"{args.sockets:,} sockets x 10 msgs/s (one frame per socket every 100 ms, sparse), {args.seconds:g} s window, "
        f"median of {args.rounds} alternating round(s)"
    )
    print(
        f"{'client':<12}{'opened':>7}{'open s':>8}{'offered/s':>10}{'handled/s':>10}{'%':>6}{'1st half':>9}{'2nd half':>9}"
        f"{'backlog':>9}{'lag s':>7}{'CPU us/msg':>11}{'CPU %core':>10}   spread"
    )
    for kind, r in results.items():
        print(
            f"{kind:<12}{r['opened']:>7}{r['open_s']:>8.1f}{r['offered']:>10,.0f}{r['handled']:>10,.0f}"
            f"{r['handled'] / r['offered'] * 100:>5.0f}%{r['first']:>9,.0f}{r['second']:>9,.0f}{r['backlog']:>9,.0f}"
            f"{r['lag']:>7.1f}{r['us']:>11.1f}{r['cpu_share'] * 100:>9.0f}%   {spread[kind][0]:.1f}-{spread[kind][1]:.1f}"
        )
    if "websockets" in results and "nbsocket" in results:
        w, b = results["websockets"], results["nbsocket"]
        print(
            f"\nnbsocket / bare: CPU per message {b['us'] / w['us']:.2f}x, handled share "
            f"{b['handled'] / b['offered']:.0%} vs {w['handled'] / w['offered']:.0%}; "
            f"opening {b['open_s'] / w['open_s']:.0f}x as long"
        )
    print(
        "server check: the server's CPU was "
        + ", ".join(f"{r['server_share'] * 100:.0f}% of a core during {k}" for k, r in results.items())
        + " (it must not be near 100%: then it is the bottleneck)"
    )
    print("backlog = messages the server had written but the client had not handled at the end; lag = backlog / offered rate")


if __name__ == "__main__":
    main()
