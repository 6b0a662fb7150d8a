"""A feed server killed (SIGKILL) and restarted ten times during a stream."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import nbsocket as nbs

from ..servers import eventually

ROOT = Path(__file__).resolve().parents[2]


def start_feed(port: int, log: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.feed_server", str(port), str(log)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "ready" in line, line
    return proc


@pytest.mark.slow
def test_ten_server_kills_during_a_stream(tmp_path: Path, unused_port: int) -> None:
    log = tmp_path / "received.log"
    log.touch()
    ticks: list[int] = []
    opens: list[int] = []

    def on_open(conn: nbs.Connection) -> None:
        opens.append(len(opens))
        conn.send({"op": "subscribe", "open": len(opens)})

    proc = start_feed(unused_port, log)
    try:
        conn = nbs.connect(
            "feed",
            f"ws://127.0.0.1:{unused_port}/",
            handler=lambda e: ticks.append(e.data["n"]),
            on_open=on_open,
            reconnect=nbs.ReconnectPolicy(initial=0.05, maximum=0.25, stable_after=1.0),
        )
        sent_while_down: list[str] = []
        for cycle in range(10):
            before = len(ticks)
            eventually(lambda before=before: len(ticks) >= before + 3, timeout=20)  # the stream flows on this connection
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            eventually(lambda: conn.state == "reconnecting", timeout=20)
            for j in range(3):
                message = f"cycle {cycle} message {j}"
                conn.send(message)
                sent_while_down.append(message)
            proc = start_feed(unused_port, log)
        eventually(lambda: len(opens) == 11, timeout=20)
        eventually(lambda: sum(1 for line in log.read_text().splitlines() if line.startswith("cycle")) == 30, timeout=20)
        lines = log.read_text().splitlines()
        received_plain = [line for line in lines if line.startswith("cycle")]
        subscribes = [json.loads(line) for line in lines if line.startswith("{")]
        assert received_plain == sent_while_down  # in order, exactly once
        assert [s["open"] for s in subscribes] == list(range(1, 12))  # on_open re-subscribed every time
        assert conn.stats.reconnects == 10 and conn.test()
        before = len(ticks)
        eventually(lambda: len(ticks) > before)  # handlers still run after the last restart
        assert conn.stats.errors >= 10 and all(r.where in ("close", "reconnect") for r in conn.errors)
    finally:
        proc.kill()
        proc.wait(10)
