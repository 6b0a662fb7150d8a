"""Transcripts: every frame both ways, in order, with connection events; saving and loading them."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

import nbsocket as nbs
from nbsocket.core.transcript_entries import COLUMNS
from nbsocket.runtime.observe.transcript import TranscriptRecorder

from ...misbehaving import url_of
from ...servers import eventually

pytestmark = pytest.mark.timeout(60)


def mixed_messages() -> list[Any]:
    messages: list[Any] = []
    for i in range(40):
        if i % 8 == 3:
            messages.append(f"text {i} é")
        elif i % 8 == 5:
            messages.append(bytes([i, 0, 255]))
        else:
            messages.append({"i": i, "nested": {"v": i * 2}})
    return messages


def test_every_frame_both_ways_in_order_with_open_and_close(demo: Any) -> None:
    conn = nbs.connect("echo", demo.url("/echo"))
    messages = mixed_messages()
    for message in messages:
        conn.send(message)
    eventually(lambda: conn.stats.messages_in == len(messages))
    conn.disconnect(1000, "done here")
    t = conn.transcript()

    assert list(t.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert t["timestamp"].is_monotonic_increasing
    events = t[t["direction"] == "event"]
    assert list(events["kind"]) == ["open", "close"]
    assert t.iloc[0]["kind"] == "open" and t.iloc[-1]["kind"] == "close"
    close = t.iloc[-1]
    assert close["code"] == 1000 and close["reason"] == "done here"

    payloads = [conn.encode(m) for m in messages]
    sent = t[t["direction"] == "sent"]
    received = t[t["direction"] == "received"]
    assert list(sent["body"]) == payloads
    assert list(received["body"]) == payloads  # the echo, in order
    assert list(sent["seq"]) == list(range(1, 41)) and list(received["seq"]) == list(range(1, 41))
    assert list(sent["kind"]) == ["binary" if isinstance(p, bytes) else "text" for p in payloads]
    for (i_sent, _), (i_received, _) in zip(sent.iterrows(), received.iterrows(), strict=True):
        assert i_sent < i_received  # each message went out before its echo came back
    assert sent["size"].sum() == conn.stats.bytes_out and received["size"].sum() == conn.stats.bytes_in
    assert t.attrs["socket"] == "echo" and t.attrs["dropped"] == 0


def test_reconnect_reset_and_errors_are_recorded(bad_server: Any) -> None:
    policy = nbs.ReconnectPolicy(initial=0.05, maximum=0.1)
    conn = nbs.connect("bad", url_of(bad_server), reconnect=policy)
    conn.send({"id": 1, "op": "close"})
    eventually(lambda: conn.stats.reconnects == 1 and conn.state == "open")
    conn.reset()
    t = conn.transcript()
    events = t[t["direction"] == "event"]
    kinds = list(events["kind"])
    assert kinds[:4] == ["open", "error", "close", "reconnect"]
    assert kinds[-3:] == ["close", "reset", "open"]
    lost = events[events["kind"] == "close"].iloc[0]
    assert lost["code"] == 1011 and lost["reason"] == "closed on request"
    error = events[events["kind"] == "error"].iloc[0]
    assert "1011" in error["error"] and error["info"] == "close"
    assert events[events["kind"] == "close"].iloc[-1]["code"] == 1000  # the reset's own close
    assert t[t["direction"] == "sent"].iloc[0]["body"] == '{"id":1,"op":"close"}'


def test_parsed_fields_and_parse_errors(demo: Any) -> None:
    conn = nbs.connect("echo", demo.url("/echo"))
    conn.request({"quote": {"bid": 1.5}, "kind": "x", "id": 1}, match="id")
    conn.request("not json", match=lambda e: e.error is not None)
    t = conn.transcript()
    messages = t[t["direction"] != "event"]
    first_sent, first_received, text_sent, text_received = (messages.iloc[i] for i in range(4))
    assert first_sent["quote.bid"] == 1.5 and first_received["quote.bid"] == 1.5
    assert first_received["data.kind"] == "x" and first_received["kind"] == "text"  # a field named like a column
    assert pd.isna(text_sent["error"])  # sending raw text on purpose is no error
    assert "invalid JSON" in text_received["error"] and text_received["body"] == "not json"
    assert list(conn.transcript(parse=False).columns) == list(COLUMNS)


def test_save_and_load_round_trip(demo: Any, tmp_path: Any) -> None:
    conn = nbs.connect("echo", demo.url("/echo?token=s3cr3t-value"))
    for message in mixed_messages()[:16]:
        conn.request(message)
    conn.disconnect(1000, "bye")
    path = tmp_path / "run.jsonl"
    assert conn.save_transcript(path) == len(conn.transcript())
    text = path.read_text(encoding="utf-8")
    assert "s3cr3t-value" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["direction"] == "meta" and lines[0]["content_type"] == "application/json"
    assert any(line.get("encoding") == "base64" for line in lines)

    loaded = nbs.load_transcript(path)
    original = conn.transcript()
    fixed = ["timestamp", "direction", "seq", "kind", "size", "body", "code", "reason"]
    pd.testing.assert_frame_equal(loaded[fixed], original[fixed])
    assert loaded.attrs["socket"] == "echo" and loaded.attrs["path"] == str(path)
    assert set(original.columns) == set(loaded.columns)


def test_transcript_is_bounded_and_can_be_turned_off(demo: Any) -> None:
    conn = nbs.connect("echo", demo.url("/echo"))
    conn.keep_transcript(20)
    for i in range(50):
        conn.request({"id": i}, match="id")
    t = conn.transcript()
    assert len(t) <= 20 and t.attrs["dropped"] >= 101 - 20
    assert t.iloc[-1]["body"] == '{"id":49}'  # the newest are kept
    conn.keep_transcript(0)
    assert conn._transcript.recorder is None and conn.transcript().empty
    assert all(not isinstance(o, TranscriptRecorder) for o in conn._observers)
    conn.request({"id": 50}, match="id")
    conn.keep_transcript()
    conn.request({"id": 51}, match="id")
    assert list(conn.transcript()["body"]) == ['{"id":51}', '{"id":51}']
    conn.clear_transcript()
    assert conn.transcript().empty


def test_byte_bound_drops_big_bodies_first_in_first_out(demo: Any) -> None:
    conn = nbs.connect("echo", demo.url("/echo"))
    conn.keep_transcript(max_entries=None, max_bytes=50_000)
    for i in range(10):
        conn.request("x" * 10_000 + str(i), match=lambda e: True)
    t = conn.transcript()
    assert t["size"].sum() <= 50_000 and t.attrs["dropped"] > 0
    assert t.iloc[-1]["body"].endswith("9")


def test_chat_broadcasts_land_in_every_transcript(demo: Any) -> None:
    alice = nbs.connect("alice", demo.url("/chat"))
    bob = nbs.connect("bob", demo.url("/chat"))
    heard = bob.waiter(1, lambda e: e.data == {"from": "alice"})
    alice.send({"from": "alice"})
    heard.future.result(10)
    eventually(lambda: alice.stats.messages_in == 1)  # the room sends it back to alice too
    alice_t, bob_t = alice.transcript(), bob.transcript()
    assert list(alice_t["direction"]) == ["event", "sent", "received"]
    assert list(bob_t["direction"]) == ["event", "received"]
    assert bob_t.iloc[1]["from"] == "alice" and bob_t.iloc[1]["body"] == alice_t.iloc[1]["body"]


def test_received_messages_are_recorded_without_an_object_per_entry() -> None:
    """Recording a read's messages allocates nothing the garbage collector counts (see the live frame's test)."""
    import gc

    from nbsocket.core.state import Stats

    recorder = TranscriptRecorder(Stats(), lambda: {"socket": "gc"})
    bodies = [json.dumps({"n": i}) for i in range(5000)]
    gc.disable()
    try:
        gc.collect()
        before = gc.get_count()[0]
        for i, body in enumerate(bodies):
            recorder.on_batch(1_700_000_000_000_000_000 + i, i + 1, [body], [None])
        grown = gc.get_count()[0] - before
    finally:
        gc.enable()
    assert grown < 50, f"{grown} objects counted by the garbage collector for 5000 recorded messages"
    entries = recorder.entries()
    assert [e.body for e in entries] == bodies and [e.seq for e in entries] == list(range(1, 5001))
    assert {e.direction for e in entries} == {"received"} and all(e.error is None for e in entries)
