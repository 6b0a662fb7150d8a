"""``nbsocket run FILE``: the same calls a notebook makes, as a process: logs, exit codes, a graceful stop, shards, metrics."""

from __future__ import annotations

import signal
import textwrap
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nbsocket.core.sharding import shard_of

from .feeds import FEED_FILE, FeedServer, read_stream
from .natsserver import NatsServer
from .runs import Run

SECRET = "tok-9f8e7d6c5b"


@pytest.fixture
def feed_file(tmp_path: Path) -> Path:
    path = tmp_path / "feeds.py"
    path.write_text(FEED_FILE)
    return path


@pytest.mark.timeout(120)
def test_sigterm_closes_every_socket_with_1001_flushes_every_sink_and_exits_0(
    feed: FeedServer, feed_file: Path, tmp_path: Path
) -> None:
    env = {"FEED_URL": feed.url, "FEED_RECORD": str(tmp_path / "{name}.parquet"), "FEED_SOCKETS": "3"}
    feed_file.write_text(FEED_FILE.replace("record=RECORD", "record=RECORD.format(name=f'feed{i:02d}')"))
    run = Run(feed_file, env=env)
    opened = run.wait_for("state", count=3)
    assert {line["socket"] for line in opened if line["state"] == "open"} == {"feed00", "feed01", "feed02"}
    run.wait_for("holding")
    import time

    time.sleep(1.0)
    assert run.stop(signal.SIGTERM) == 0, run.log_path.read_text()
    assert sorted(code for code in feed.close_codes) == [1001, 1001, 1001], "every socket closes with 1001 (going away)"
    sent = feed.sent_by_socket()
    for socket in ("feed00", "feed01", "feed02"):
        recorded = pd.read_parquet(tmp_path / f"{socket}.parquet")["n"].tolist()
        numbers = [item.n for item in sent[socket]]
        assert len(recorded) > 50
        assert recorded == numbers[: len(recorded)], "in order, nothing missing, nothing twice"
        assert len(numbers) - len(recorded) <= 3, "only what was in flight during the close handshake may be missing"
    events = [line["event"] for line in run.lines()]
    assert events[0] == "start" and events[-1] == "exit" and "stopping" in events and "flushed" in events
    assert run.lines()[-1]["exit_code"] == 0


def test_a_file_that_raises_exits_1_and_its_traceback_hides_the_secrets(feed: FeedServer, tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text(
        textwrap.dedent(f"""
        import nbsocket as nbs
        url = "{feed.url}/feed00?token={SECRET}"
        nbs.connect("feed00", url, headers={{"Authorization": "Bearer {SECRET}x"}})
        raise RuntimeError("cannot go on with " + url)
        """)
    )
    run = Run(path)
    assert run.wait(60) == 1
    text = run.log_path.read_text()
    assert SECRET not in text, "a secret reached the log"
    failure = [line for line in run.lines() if line.get("where") == "file"]
    assert failure and "RuntimeError" in failure[0]["message"] and "***" in failure[0]["message"]
    assert "Traceback" in failure[0]["traceback"]
    assert feed.close_codes == [1001], "the socket it opened was still closed"


def test_bad_usage_exits_2(tmp_path: Path, feed_file: Path) -> None:
    assert Run(tmp_path / "missing.py").wait(60) == 2
    bad = Run(feed_file, "--shard", "4/3")
    assert bad.wait(60) == 2
    assert "--shard 4/3" in bad.log_path.read_text()


@pytest.mark.timeout(120)
def test_three_shards_hold_every_socket_exactly_once(
    feed: FeedServer, feed_file: Path, nats_server: NatsServer, tmp_path: Path
) -> None:
    env = {"FEED_URL": feed.url, "FEED_RECORD": nats_server.url + "/shards.{name}", "FEED_SOCKETS": "9"}
    runs = [Run(feed_file, "--shard", f"{i}/3", env=env, log=tmp_path / f"shard{i}.log") for i in (1, 2, 3)]
    held: dict[int, set[str]] = {}
    for i, run in enumerate(runs, start=1):
        run.wait_for("holding")
        held[i] = {line["socket"] for line in run.lines() if line.get("event") == "state" and line["state"] == "open"}
    for run in runs:
        assert run.stop() == 0, run.log_path.read_text()
    names = {f"feed{i:02d}" for i in range(9)}
    assert set().union(*held.values()) == names
    assert sum(len(sockets) for sockets in held.values()) == 9, f"a socket held twice: {held}"
    assert all(shard_of(name, 3) == i for i, sockets in held.items() for name in sockets)
    recorded = {message.headers["Nbs-Socket"] for message in read_stream(nats_server.url, "shards.>")}
    assert recorded == names


@pytest.mark.timeout(120)
def test_metrics_show_sockets_and_sinks(feed: FeedServer, feed_file: Path, nats_server: NatsServer) -> None:
    env = {"FEED_URL": feed.url, "FEED_RECORD": nats_server.url + "/metrics.{name}", "FEED_SOCKETS": "2"}
    run = Run(feed_file, "--metrics", "127.0.0.1:0", env=env)
    url = run.wait_for("metrics")[0]["url"]
    run.wait_for("holding")
    import time

    time.sleep(0.5)
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    assert run.stop() == 0
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    for socket in ("feed00", "feed01"):
        assert samples[("nbsocket_messages_received_total", (("socket", socket),))] > 0
        assert samples[("nbsocket_bytes_received_total", (("socket", socket),))] > 0
        assert samples[("nbsocket_socket_state", (("socket", socket), ("state", "open")))] == 1
        assert samples[("nbsocket_socket_state", (("socket", socket), ("state", "failed")))] == 0
        assert ("nbsocket_reconnects_total", (("socket", socket),)) in samples
        assert ("nbsocket_errors_total", (("socket", socket),)) in samples
        sink = (("sink", "nats"), ("socket", socket))
        assert samples[("nbsocket_sink_written_total", sink)] > 0
        assert samples[("nbsocket_sink_dropped_total", sink)] == 0
        assert ("nbsocket_sink_pending", sink) in samples and ("nbsocket_sink_lag_seconds", sink) in samples
