"""Replay, compare and burst against the demo server and a server that misbehaves on purpose."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

import nbsocket as nbs
from nbsocket.core.transcript_entries import Entry, frame_from_entries
from nbsocket.explore.replay import replay_schedule
from nbsocket.runtime.progress import ProgressBar

from ..misbehaving import url_of

pytestmark = pytest.mark.timeout(60)
SECOND = 1_000_000_000


def sent_bodies(transcript: Any) -> list[Any]:
    return list(transcript[transcript["direction"] == "sent"]["body"])


def received_bodies(transcript: Any) -> list[Any]:
    return list(transcript[transcript["direction"] == "received"]["body"])


def record_prices(url: str, ids: list[int]) -> nbs.Connection:
    conn = nbs.connect("recorded", url)
    for i in ids:
        conn.request({"id": i, "op": "price"}, match="id")
    return conn


# --- replay ---------------------------------------------------------------------------------


def test_schedule_keeps_the_original_gaps_scaled_by_speed() -> None:
    entries = [
        Entry(5 * SECOND, "event", "open", None, None),
        Entry(10 * SECOND, "sent", "text", 1, "a"),
        Entry(int(10.1 * SECOND), "received", "text", 1, "a"),
        Entry(int(10.1 * SECOND), "sent", "text", 2, "b"),
        Entry(int(10.3 * SECOND), "sent", "binary", 3, b"c"),
    ]
    assert [(round(o, 6), b) for o, b in replay_schedule(entries, 1.0)] == [(0.0, "a"), (0.1, "b"), (0.3, b"c")]
    assert [round(o, 6) for o, _ in replay_schedule(entries, 2.0)] == [0.0, 0.05, 0.15]
    assert [o for o, _ in replay_schedule(entries, 0)] == [0.0, 0.0, 0.0]
    with pytest.raises(nbs.InvalidOptionError, match="speed"):
        replay_schedule(entries, -1)


def test_save_replay_round_trip(demo: Any, tmp_path: Any) -> None:
    conn = nbs.connect("recorded", demo.url("/echo"))
    for i in range(10):
        conn.request({"id": i, "payload": "é" * i}, match="id")
    conn.request(b"\x00binary", match=lambda e: e.request.is_binary)
    path = tmp_path / "run.jsonl"
    conn.save_transcript(path)

    again = nbs.replay(path, demo.url("/echo"), speed=0)
    assert sent_bodies(again) == sent_bodies(conn.transcript())
    assert received_bodies(again) == received_bodies(conn.transcript())
    assert demo.messages("/echo")[-11:] == sent_bodies(again)
    assert list(again[again["direction"] == "event"]["kind"]) == ["open", "close"]
    assert again.attrs["replies"] == again.attrs["expected_replies"] == 11
    assert again.attrs["socket"] not in list(nbs.connections()["name"])  # the temporary socket is gone
    assert nbs.compare(path, again).empty

    saved = tmp_path / "again.jsonl"
    twice = nbs.replay(again, "recorded", speed=4.0, save=saved)  # onto an open socket, from a DataFrame
    assert sent_bodies(twice) == sent_bodies(again) and nbs.test("recorded")
    assert nbs.compare(saved, path).empty


def test_replay_records_what_a_misbehaving_server_does_differently(bad_server: Any, tmp_path: Any) -> None:
    conn = record_prices(url_of(bad_server), [1, 2, 3, 4])
    conn.request({"id": 5, "op": "echo", "payload": "x"}, match="id")
    path = tmp_path / "a.jsonl"
    conn.save_transcript(path)

    other = nbs.replay(path, url_of(bad_server, "variant=b"), speed=0)
    diff = nbs.compare(path, other)
    assert len(diff) == 1
    row = diff.iloc[0]
    assert (row["reply"], row["field"], row["a"], row["b"], row["change"]) == (2, "price", 103, 999, "changed")
    assert diff.attrs["differing"] == 1 and diff.attrs["compared"] == 5
    assert nbs.compare(path, other, ignore="price").empty


def test_replay_waits_for_replies_then_reports_the_missing_ones(bad_server: Any) -> None:
    conn = record_prices(url_of(bad_server), [1, 2])
    edited = conn.transcript()
    edited.loc[edited["body"] == '{"id":2,"op":"price"}', "body"] = '{"id":2,"op":"drop"}'
    again = nbs.replay(edited, url_of(bad_server), speed=0, settle=0.3)
    assert again.attrs["replies"] == 1 and again.attrs["expected_replies"] == 2
    diff = nbs.compare(conn, again)
    assert list(diff["change"]) == ["reply only in a"]
    assert diff.iloc[0]["seq_a"] == 2


def test_compare_pairs_by_key_when_replies_come_out_of_order() -> None:
    def transcript(bodies: list[str]) -> Any:
        entries = [Entry(i * SECOND, "received", "text", i + 1, body) for i, body in enumerate(bodies)]
        return frame_from_entries(entries, {"content_type": "application/json"})

    a = transcript(['{"id":1,"v":{"x":1}}', '{"id":2,"v":{"x":2}}', '{"id":3,"items":[1,2]}'])
    b = transcript(['{"id":2,"v":{"x":2}}', '{"id":1,"v":{"x":1}}', '{"id":3,"items":[1,5],"new":true}'])
    by_order = nbs.compare(a, b)
    assert set(by_order["reply"]) == {0, 1, 2}
    by_id = nbs.compare(a, b, key="id")
    changes = list(zip(by_id["reply"], by_id["field"], by_id["change"], strict=True))
    assert changes == [(3, "items.1", "changed"), (3, "new", "only in b")]
    assert by_id.iloc[0]["a"] == 2 and by_id.iloc[0]["b"] == 5
    assert nbs.compare(a, transcript([]))["change"].eq("reply only in a").all()


def test_replay_async_and_refusals(demo: Any, tmp_path: Any) -> None:
    conn = nbs.connect("recorded", demo.url("/echo"))
    conn.request({"id": 1}, match="id")
    result = asyncio.run(nbs.replay_async(conn, demo.url("/echo"), speed=0))
    assert received_bodies(result) == ['{"id":1}']
    kept = nbs.replay(conn, demo.url("/echo"), speed=0, name="second", keep=True)
    assert nbs.test("second") and kept.attrs["socket"] == "second"
    assert received_bodies(nbs.get("second").transcript()) == ['{"id":1}']
    with pytest.raises(nbs.InvalidOptionError, match="no sent messages"):
        nbs.replay(frame_from_entries([]), "recorded")
    with pytest.raises(nbs.InvalidOptionError, match="only apply"):
        nbs.replay(conn, "recorded", headers={"X": "1"})
    with pytest.raises(nbs.UnknownSocketError):
        nbs.replay(conn, "nobody")


# --- burst ------------------------------------------------------------------------------------


def test_burst_sends_everything_and_counts_replies(demo: Any) -> None:
    conn = nbs.connect("echo", demo.url("/echo"))
    report = nbs.burst("echo", [{"n": i} for i in range(300)], settle=1.0)
    assert (report.messages, report.queued, report.delivered, report.failed) == (300, 300, 300, 0)
    assert report.replies == 300 and report.rate is None and report.achieved_rate > 0
    assert demo.messages("/echo")[-300:] == [conn.encode({"n": i}) for i in range(300)]
    assert "300 of 300 delivered" in repr(report)

    paced = conn.burst(({"tick": i} for i in itertools.count()), rate=500, count=40)
    assert paced.messages == paced.delivered == 40 and paced.rate == 500
    assert paced.to_dict()["delivered"] == 40


def test_burst_waits_for_a_full_outbox_instead_of_failing(demo: Any) -> None:
    nbs.connect("echo", demo.url("/echo"), outbox_size=5)
    report = nbs.burst("echo", [b"x" * 1000] * 200)
    assert report.delivered == 200 and report.failed == 0


def test_burst_on_a_closed_socket_reports_the_failure(demo: Any) -> None:
    conn = nbs.connect("echo", demo.url("/echo"))
    conn.disconnect()
    report = nbs.burst("echo", [{"n": i} for i in range(10)])
    assert (report.messages, report.delivered, report.failed) == (1, 0, 1)
    assert "reset" in report.errors[0]
    bad = nbs.burst(conn, [None], progress=False)
    assert bad.failed == 1 and "None" in bad.errors[0]
    with pytest.raises(nbs.InvalidOptionError, match="list or generator"):
        nbs.burst("echo", {"n": 1})
    with pytest.raises(nbs.InvalidOptionError, match="rate"):
        nbs.burst("echo", [1], rate=-5)


def test_burst_async(demo: Any) -> None:
    nbs.connect("echo", demo.url("/echo"))
    report = asyncio.run(nbs.burst_async("echo", [str(i) for i in range(50)], rate=1000))
    assert report.delivered == 50


# --- progress ---------------------------------------------------------------------------------------


def test_progress_bar_in_a_frontend_and_silence_elsewhere() -> None:
    shown: list[Any] = []
    bar = ProgressBar(10, "replay x", enabled=True, display=shown.append)
    assert shown == [bar.bar] and bar.bar.max == 10
    bar.update(4, force=True)
    assert bar.bar.value == 4 and bar.bar.description == "replay x 4/10"
    bar.finish(10, "10 sent", ok=True)
    assert bar.bar.value == 10 and bar.bar.bar_style == "success" and "10 sent" in bar.bar.description

    open_ended = ProgressBar(None, "burst", enabled=True, display=shown.append)
    open_ended.update(25, force=True)
    assert open_ended.bar.value == 25 and open_ended.bar.description == "burst 25"

    assert ProgressBar(10, "quiet").bar is None  # no kernel here: nothing shown
