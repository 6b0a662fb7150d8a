"""Load: many sockets at once to the demo server, each receiving a steady stream.

    python benchmarks/load.py [--sockets 500] [--rate 10] [--seconds 60]

Checks that every message arrives, in order per socket, with no errors, and reports
CPU and memory per socket. The demo server runs in its own process; CPU and memory
are the client process's (the one holding the sockets).

This is a correctness and memory check, not a rate check: it waits (up to 2 x seconds + 30 s
after the last socket opened) until the finite streams have all been received, so a client that
falls behind while they run still passes once it drains its backlog; its clock starts only after
the (slow) loop of ``nbs.connect`` calls, when the first streams are nearly over; and its demo
``/ticker`` server encodes JSON per message in one Python process, sending overdue ticks in
bursts when it falls behind. That is why it reported "all delivered" at 500 sockets while
nbsocket handles a fraction of 1,000 x 10 msgs/s: measure rates and lag with
``benchmarks/quiet_sockets.py`` (offered load from the server's own count, handled rate over time).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time

import psutil

sys.path.insert(0, os.path.dirname(__file__))

from _common import demo_server_process

import nbsocket as nbs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=500)
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second per socket")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.sockets * 4 + 256)), hard))
    process = psutil.Process()
    lock = threading.Lock()
    last_seq: dict[str, int] = {}
    out_of_order = 0

    def handler(event: nbs.WsEvent) -> None:
        nonlocal out_of_order
        tick = event.data["seq"]
        with lock:
            if tick != last_seq.get(event.name, 0) + 1 or tick != event.seq:
                out_of_order += 1
            last_seq[event.name] = tick

    count = int(args.rate * args.seconds)
    with demo_server_process() as base:
        rss0 = process.memory_info().rss
        started = time.monotonic()
        conns = [
            nbs.connect(f"s{i}", f"{base}/ticker?rate={args.rate}&count={count}", handler=handler, reconnect=False)
            for i in range(args.sockets)
        ]
        connect_seconds = time.monotonic() - started
        rss_open = process.memory_info().rss
        cpu0, wall0 = process.cpu_times(), time.monotonic()
        deadline = wall0 + args.seconds * 2 + 30
        while time.monotonic() < deadline and sum(c.stats.messages_in for c in conns) < count * args.sockets:
            time.sleep(0.5)
        wall = time.monotonic() - wall0
        cpu1 = process.cpu_times()
        rss_end = process.memory_info().rss
        received = sum(c.stats.messages_in for c in conns)
        errors = sum(c.stats.errors for c in conns)
        frame_rows = sum(len(c.frame) for c in conns if c.frame is not None)
        nbs.shutdown()  # before the server goes away
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    print(f"{args.sockets} sockets x {args.rate:g} msgs/s for {args.seconds:g} s ({count} messages each)")
    print(f"opened all sockets in {connect_seconds:.1f} s")
    print(f"received {received:,} of {count * args.sockets:,} messages in {wall:.1f} s; rows in frames: {frame_rows:,}")
    print(f"out of order: {out_of_order}; errors: {errors}")
    print(f"client CPU: {cpu / wall * 100:.1f}% of one core in all, {cpu / wall / args.sockets * 100:.3f}% per socket")
    print(
        f"memory: {(rss_open - rss0) / args.sockets / 1024:.0f} KiB per socket once open, "
        f"{(rss_end - rss0) / args.sockets / 1024:.0f} KiB per socket at the end (with {count} rows each)"
    )
    ok = received == count * args.sockets and out_of_order == 0 and errors == 0
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
