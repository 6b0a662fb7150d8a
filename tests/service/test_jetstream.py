"""record="nats://...": every message as received, with its headers, at least once and stored once, never stalling."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import pytest

import nbsocket as nbs
from nbsocket.core.streams import parse_timestamp
from nbsocket.errors import InvalidOptionError
from nbsocket.runtime.observe.recording import jetstream

from ..servers import eventually
from .feeds import read_stream
from .natsserver import NatsServer


def test_every_message_goes_to_jetstream_with_its_headers_and_the_body_as_received(demo: Any, nats_server: NatsServer) -> None:
    count = 3000
    conn = nbs.connect(
        "ticks", demo.url(f"/ticker?rate=max&count={count}"), record=nats_server.url + "/js1.{name}", reconnect=False
    )
    eventually(lambda: conn.stats.messages_in == count, 30.0, what="every tick")
    assert conn.recorder is not None and conn.recorder.flush(30.0)
    seen = nbs.frame("ticks")
    messages = read_stream(nats_server.url, "js1.ticks")
    assert len(messages) == count
    run = messages[0].headers["Nbs-Run"]
    assert re.fullmatch(r"[0-9a-z]+[0-9a-f]{6}", run)
    for i, message in enumerate(messages, start=1):
        headers = message.headers
        assert headers["Nbs-Socket"] == "ticks" and headers["Nbs-Seq"] == str(i)
        assert headers["Nats-Msg-Id"] == f"ticks:{run}:{i}"
        assert headers["Nbs-Content-Type"] == "application/json" and "Nbs-Binary" not in headers
    first = messages[0]
    assert json.loads(first.data)["seq"] == seen["data.seq"].iloc[0], "the body is the message as received"
    assert parse_timestamp(first.headers["Nbs-Timestamp"]) == seen["timestamp"].iloc[0].value, "the receipt time, to the ns"
    status = nbs.connections().set_index("name").loc["ticks"]
    assert status["record"] == nats_server.url + "/js1.ticks" and status["record_pending"] == 0 and status["record_dropped"] == 0


def test_binary_messages_keep_their_bytes_and_say_so(demo: Any, nats_server: NatsServer) -> None:
    conn = nbs.connect("bin", demo.url("/echo"), record=nats_server.url + "/js2.{name}", reconnect=False)
    conn.send(b"\x00\xff raw")
    conn.send("{broken")
    eventually(lambda: conn.stats.messages_in == 2, 10.0, what="two echoes")
    assert conn.recorder is not None and conn.recorder.flush(10.0)
    binary, text = read_stream(nats_server.url, "js2.bin")
    assert binary.data == b"\x00\xff raw" and binary.headers["Nbs-Binary"] == "1"
    assert text.data == b"{broken", "a message that does not parse is recorded all the same"


def test_a_broker_that_is_down_never_stalls_the_socket_and_what_waited_is_published_once_it_is_back(demo: Any) -> None:
    broker = NatsServer()
    try:
        count = 2000
        conn = nbs.connect(
            "late", demo.url(f"/ticker?rate=2000&count={count}"), record=broker.url + "/js3.{name}", reconnect=False
        )
        eventually(lambda: conn.frame is not None and conn.frame.total == count, 30.0, what="every tick, with no broker")
        assert conn.recorder is not None
        stats = conn.recorder.sink_stats()
        assert stats["pending"] == count and stats["written"] == 0 and stats["lag_s"] > 0 and not stats["connected"]
        assert nbs.connections().set_index("name").loc["late", "record_pending"] == count
        broker.start()
        assert conn.recorder.flush(30.0), "published once the broker is back"
        messages = read_stream(broker.url, "js3.late")
        assert [int(m.headers["Nbs-Seq"]) for m in messages] == list(range(1, count + 1))
        assert conn.recorder.sink_stats()["lag_s"] == 0.0
    finally:
        nbs.shutdown()
        broker.close()


def test_past_its_bound_the_sink_drops_new_messages_counts_them_and_says_so(demo: Any, caplog: pytest.LogCaptureFixture) -> None:
    broker = NatsServer()
    try:
        conn = nbs.connect(
            "full",
            demo.url("/ticker?rate=max&count=1000"),
            record=broker.url + "/js4.{name}?max_pending=100",
            reconnect=False,
        )
        eventually(lambda: conn.stats.messages_in == 1000, 30.0, what="every tick")
        assert conn.recorder is not None
        stats = conn.recorder.sink_stats()
        assert stats["pending"] == 100 and stats["dropped"] == 900
        assert any("dropped" in r.message for r in conn.errors), conn.errors
        assert any("dropped 900" in r.getMessage() or "dropped" in r.getMessage() for r in caplog.records)
        assert nbs.connections().set_index("name").loc["full", "record_dropped"] == 900
        broker.start()
        assert conn.recorder.flush(30.0)
        assert [int(m.headers["Nbs-Seq"]) for m in read_stream(broker.url, "js4.full")] == list(range(1, 101))
    finally:
        nbs.shutdown()
        broker.close()


@pytest.mark.parametrize(
    "url, words",
    [
        ("nats://127.0.0.1:4222", "name the subject"),
        ("nats://127.0.0.1:4222/feeds.*", "not a NATS subject"),
        ("nats://127.0.0.1:4222/feeds..x", "not a NATS subject"),
        ("nats://127.0.0.1:4222/feeds?stream=a.b", "stream name"),
        ("nats://127.0.0.1:4222/feeds?color=red", "unknown option"),
        ("nats://user:hunter2secret@127.0.0.1:4222/feeds?max_pending=0", "max_pending"),
    ],
)
def test_bad_jetstream_urls_are_refused_before_any_io(demo: Any, url: str, words: str) -> None:
    with pytest.raises(InvalidOptionError, match=words) as caught:
        nbs.connect("bad", demo.url("/echo"), record=url)
    assert "hunter2secret" not in str(caught.value)
    assert "bad" not in nbs.connections()["name"].tolist()


def test_the_headers_say_when_a_message_arrived(demo: Any, nats_server: NatsServer) -> None:
    before = time.time_ns()
    conn = nbs.connect("when", demo.url("/ticker?rate=max&count=5"), record=nats_server.url + "/js5.{name}", reconnect=False)
    eventually(lambda: conn.stats.messages_in == 5, 10.0, what="five ticks")
    assert conn.recorder is not None and conn.recorder.flush(10.0)
    times = [parse_timestamp(m.headers["Nbs-Timestamp"]) for m in read_stream(nats_server.url, "js5.when")]
    assert len(times) == 5 and before <= times[0] <= times[-1] <= time.time_ns()


def _publisher_threads(broker: NatsServer) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("nbsocket-jetstream-") and broker.url in t.name]


def test_a_publisher_nobody_records_to_closes_and_a_socket_that_records_again_gets_a_new_one(
    demo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jetstream, "UNUSED_CLOSE_SECONDS", 0.5)
    broker = NatsServer()
    broker.start()
    try:
        conn = nbs.connect("again", demo.url("/echo"), record=broker.url + "/js6.{name}", reconnect=False)
        conn.send("one")
        eventually(lambda: conn.stats.messages_in == 1, 10.0, what="the echo")
        conn.reset()  # released at the close; the reopened socket records on
        conn.send("two")
        eventually(lambda: conn.stats.messages_in == 2, 10.0, what="the second echo")
        assert conn.recorder is not None and conn.recorder.flush(10.0)
        assert [m.data for m in read_stream(broker.url, "js6.again")] == [b"one", b"two"]
        assert _publisher_threads(broker)
        nbs.remove("again")
        eventually(lambda: not _publisher_threads(broker), 10.0, what="the unused publisher's thread to end")
        broker.stop()  # a broker that goes away is not retried for nobody: no thread comes back
        time.sleep(1.0)
        assert not _publisher_threads(broker)
        broker.start()
        later = nbs.connect("later", demo.url("/echo"), record=broker.url + "/js6.{name}", reconnect=False)
        later.send("three")
        eventually(lambda: later.stats.messages_in == 1, 10.0, what="the echo")
        assert later.recorder is not None and later.recorder.flush(10.0)
        assert [m.data for m in read_stream(broker.url, "js6.later")] == [b"three"]
    finally:
        nbs.shutdown()
        broker.close()
