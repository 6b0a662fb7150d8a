"""Ingest rate: messages per second from the demo server's /ticker through ``nbs.connect`` with a no-op handler,
against a bare ``websockets`` client reading (and JSON-parsing) the same stream, measured in the same run.

    python benchmarks/ingest.py [--messages 100000] [--rounds 5]

The server runs in its own process. Rounds alternate between the two clients and the
medians are compared; the client-side CPU time per message is reported too, since on a
busy machine the server can be the bottleneck for both clients.

Caution: the demo ``/ticker`` encodes JSON per message and is about as slow as the clients, so the
rate ratio here mostly measures the server (it reported ~1.0 while nbsocket cost 2x the CPU).
For client cost use ``benchmarks/cpu_per_message.py`` and ``benchmarks/flood.py``, whose server
writes pre-built frames and is shown to be far faster than any client.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))

from _common import bare_client, demo_server_process, median

import nbsocket as nbs


def nbsocket_client(url: str, n: int, frame: bool) -> tuple[float, float]:
    """Seconds and CPU seconds for ``nbs.connect`` (no-op handler) to receive ``n`` ticks."""
    done = threading.Event()

    def handler(event: nbs.WsEvent) -> None:
        if event.seq >= n:
            done.set()

    cpu0, t0 = time.process_time(), time.perf_counter()
    nbs.connect("bench", url, handler=handler, reconnect=False, frame=frame, max_rows=n)
    if not done.wait(600):
        raise RuntimeError("nbsocket did not receive every message")
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    nbs.remove("bench")
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n = args.messages
    results: dict[str, list[tuple[float, float]]] = {"bare": [], "nbsocket": [], "nbsocket, no frame": []}
    with demo_server_process() as base:
        url = f"{base}/ticker?rate=max&count={n}"
        bare_client(url, min(n, 5000))  # warm up both sides
        for _ in range(args.rounds):
            results["bare"].append(bare_client(url, n))
            results["nbsocket"].append(nbsocket_client(url, n, frame=True))
            results["nbsocket, no frame"].append(nbsocket_client(url, n, frame=False))
    nbs.shutdown()
    base_rate = n / median([t for t, _ in results["bare"]])
    base_cpu = median([c for _, c in results["bare"]]) / n
    print(f"ingest of {n:,} ticks from /ticker?rate=max, median of {args.rounds} alternating rounds")
    print(f"{'client':<22}{'msgs/s':>12}{'ratio':>8}{'CPU us/msg':>12}{'CPU ratio':>11}")
    for name, runs in results.items():
        rate = n / median([t for t, _ in runs])
        cpu = median([c for _, c in runs]) / n
        print(f"{name:<22}{rate:>12,.0f}{rate / base_rate:>8.2f}{cpu * 1e6:>12.1f}{cpu / base_cpu:>11.2f}")
    print("ratio = msgs/s over the bare websockets client's (target >= 0.8); CPU ratio = client CPU per message over bare's")


if __name__ == "__main__":
    main()
