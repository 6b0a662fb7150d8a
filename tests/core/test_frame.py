"""The live frame: flattening, schema changes, the column and row caps, snapshots, subscribers and sinks."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np
import pandas as pd
import pytest

import nbsocket as nbs
from nbsocket.core.flatten import MAX_DEPTH, flatten, message_fields
from nbsocket.core.frame import SHARING_NEEDS_COPY, LiveFrame
from nbsocket.errors import InvalidOptionError

from ..servers import eventually

T0 = 1_700_000_000_000_000_000


def fill(frame: LiveFrame, rows: list[dict[str, Any]], first_seq: int = 1) -> None:
    for i, fields in enumerate(rows):
        frame.append(T0 + i, first_seq + i, fields)


# --- flattening ---------------------------------------------------------------------------


def test_nested_objects_become_dotted_columns_and_lists_stay_values() -> None:
    message = {"quote": {"bid": 1.5, "ask": {"px": 2, "qty": 3}}, "tags": ["a", {"b": 1}], "empty": {}, "n": None}
    assert flatten(message) == {
        "quote.bid": 1.5,
        "quote.ask.px": 2,
        "quote.ask.qty": 3,
        "tags": ["a", {"b": 1}],
        "empty": {},
        "n": None,
    }


def test_reserved_top_level_names_get_a_data_prefix() -> None:
    message = {"timestamp": 1, "socket": "s", "seq": 2, "error": "e", "extra": 3, "price": 4, "meta": {"seq": 5}}
    assert flatten(message) == {
        "data.timestamp": 1,
        "data.socket": "s",
        "data.seq": 2,
        "data.error": "e",
        "data.extra": 3,
        "price": 4,
        "meta.seq": 5,
    }


def test_flatten_copies_so_later_changes_to_the_message_do_not_reach_the_row() -> None:
    message = {"a": 1, "b": 2}
    fields = flatten(message)
    message["a"] = 99
    assert fields == {"a": 1, "b": 2} and fields is not message


def test_deep_nesting_is_cut_at_the_depth_limit_without_recursion() -> None:
    message: dict[str, Any] = {"leaf": 1}
    for _ in range(5000):
        message = {"k": message}
    fields = flatten(message)
    ((key, value),) = fields.items()
    assert key.count(".") == MAX_DEPTH
    assert isinstance(value, str)  # the rest kept as text


def test_non_string_keys_become_strings() -> None:
    assert flatten({1: "a", "b": {2: "c"}}) == {"1": "a", "b.2": "c"}
    frame = LiveFrame("s")
    frame.append(T0, 1, flatten({1: "a", "seq": 2}))
    frame.append(T0, 2, flatten({1: "b", 2: "c"}))
    assert frame.columns == ["timestamp", "socket", "seq", "1", "data.seq", "2"]
    assert frame.snapshot()["1"].tolist() == ["a", "b"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([1, 2], {"data": [1, 2]}),
        (3.5, {"data": 3.5}),
        ("hello", {"data": "hello"}),
        (b"\x00\x01", {"data": b"\x00\x01"}),
        ({"a": {"b": 1}}, {"a.b": 1}),
    ],
)
def test_message_fields_put_what_is_not_an_object_in_data(data: Any, expected: dict[str, Any]) -> None:
    assert message_fields(data, None, "body") == expected


def test_parse_failures_keep_the_raw_body_and_the_error() -> None:
    assert message_fields(None, "invalid JSON", "{oops") == {"data": "{oops", "error": "invalid JSON"}


def test_xml_keeps_its_text() -> None:
    assert message_fields(Element("a"), None, "<a/>") == {"data": "<a/>"}


# --- rows and columns ------------------------------------------------------------------------


def test_rows_have_utc_timestamps_socket_and_seq_first() -> None:
    frame = LiveFrame("prices")
    fill(frame, [{"price": 1.5, "symbol": "A"}, {"price": 2.5, "symbol": "B"}])
    df = frame.snapshot()
    assert list(df.columns) == ["timestamp", "socket", "seq", "price", "symbol"]
    assert str(df["timestamp"].dt.tz) == "UTC"
    assert df["timestamp"].iloc[0] == pd.Timestamp(T0, unit="ns", tz="UTC")
    assert df["socket"].tolist() == ["prices", "prices"]
    assert df["seq"].tolist() == [1, 2] and df["seq"].dtype == np.int64
    assert df["price"].tolist() == [1.5, 2.5]


@pytest.mark.parametrize("chunk_rows", [16, 4096])
def test_a_field_that_appears_later_is_na_in_earlier_rows(chunk_rows: int) -> None:
    frame = LiveFrame("s", chunk_rows=chunk_rows)
    fill(frame, [{"a": i} for i in range(40)] + [{"a": 40, "b": "new"}])
    df = frame.snapshot()
    assert df["a"].tolist() == list(range(41))
    assert df["b"].isna().sum() == 40 and df["b"].iloc[-1] == "new"


@pytest.mark.parametrize("chunk_rows", [16, 4096])
def test_a_field_that_changes_type_keeps_earlier_values(chunk_rows: int) -> None:
    frame = LiveFrame("s", chunk_rows=chunk_rows)
    values: list[Any] = [*range(20), "text", 2.5, None, [1, 2], {"x": 1}, True]
    fill(frame, [{"v": v} for v in values])
    df = frame.snapshot()
    assert len(df) == len(values)
    assert df["v"].iloc[:20].tolist() == list(range(20))
    assert df["v"].iloc[20:22].tolist() == ["text", 2.5]
    assert df["v"].iloc[23:26].tolist() == [[1, 2], {"x": 1}, True]


def test_messages_with_no_fields_still_make_rows() -> None:
    frame = LiveFrame("s")
    fill(frame, [{}, {}, {}])
    assert frame.snapshot()["seq"].tolist() == [1, 2, 3]


def test_base_column_names_passed_as_fields_cannot_overwrite_them() -> None:
    frame = LiveFrame("s")
    frame.append(T0, 7, {"seq": 99, "socket": "other", "extra": 1})
    row = frame.snapshot().iloc[0]
    assert (row["seq"], row["socket"], row["data.seq"], row["data.socket"], row["data.extra"]) == (7, "s", 99, "other", 1)


# --- column cap -----------------------------------------------------------------------------


def test_fields_past_the_column_cap_go_into_extra_and_are_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    reports: list[str] = []
    frame = LiveFrame("s", max_columns=8, chunk_rows=16)
    frame.on_column_cap = reports.append
    with caplog.at_level(logging.WARNING, logger="nbsocket"):
        fill(frame, [{"common": i, f"k{i}": i} for i in range(50)])
    df = frame.snapshot()
    assert len(df.columns) == 8 and df.columns[-1] == "extra"
    assert frame.columns == list(df.columns)
    assert len(reports) == 1 and "max_columns" in reports[0]
    assert sum("cap of 8 columns" in r.message for r in caplog.records) == 1
    # nothing is lost: every field is either a column or in extra
    for i, row in df.iterrows():
        seen = {k for k in df.columns[3:-1] if pd.notna(row[k])} | set(row["extra"] if isinstance(row["extra"], dict) else {})
        assert f"k{i}" in seen and "common" in seen
    assert frame.capped_fields == 50 - 3  # columns: base 3, common, k0-k2, extra


def test_column_cap_default_is_1000() -> None:
    frame = LiveFrame("s")
    fill(frame, [{f"k{i}": i} for i in range(1200)])
    assert len(frame.snapshot().columns) == 1000 == frame.max_columns


# --- row cap -------------------------------------------------------------------------------


@pytest.mark.parametrize(("max_rows", "count"), [(10, 37), (100, 100), (100, 101), (1, 5), (50, 2000)])
def test_the_row_cap_drops_the_oldest_rows_first(max_rows: int, count: int) -> None:
    frame = LiveFrame("s", max_rows=max_rows, chunk_rows=16)
    for i in range(1, count + 1):
        frame.append(T0 + i, i, {"i": i})
        if i % 7 == 0:
            frame.snapshot()  # reads in between must not disturb the order
    df = frame.snapshot()
    kept = min(max_rows, count)
    assert df["seq"].tolist() == list(range(count - kept + 1, count + 1))
    assert df["i"].tolist() == df["seq"].tolist()
    assert (len(frame), frame.total, frame.dropped) == (kept, count, count - kept)
    assert df.index.tolist() == [s - 1 for s in df["seq"]]


def test_chunks_stay_few_when_rows_are_flushed_one_by_one() -> None:
    frame = LiveFrame("s", max_rows=None, chunk_rows=32)
    for i in range(300):
        frame.append(T0 + i, i + 1, {"i": i})
        frame.flush()
    assert len(frame._chunks) <= 300 // 32 + 1
    assert frame.snapshot()["i"].tolist() == list(range(300))


# --- snapshots ------------------------------------------------------------------------------


def test_a_snapshot_can_be_modified_without_touching_the_live_frame() -> None:
    frame = LiveFrame("s")
    fill(frame, [{"a": i, "b": str(i)} for i in range(100)])
    first = frame.snapshot()
    expected = first.copy(deep=True)
    first["a"] = -1
    first.loc[first.index[0], "b"] = "changed"
    first["new"] = 1
    first.pop("seq")
    first.index = range(len(first))
    again = frame.snapshot()
    pd.testing.assert_frame_equal(again, expected)
    pd.testing.assert_frame_equal(frame.tail(100), expected)


def test_a_snapshot_does_not_change_when_rows_arrive_later() -> None:
    frame = LiveFrame("s", max_rows=50, chunk_rows=16)
    fill(frame, [{"a": i} for i in range(50)])
    before = frame.snapshot()
    expected = before.copy(deep=True)
    fill(frame, [{"a": i, "b": 1} for i in range(50, 200)], first_seq=51)
    pd.testing.assert_frame_equal(before, expected)
    assert frame.snapshot()["seq"].tolist() == list(range(151, 201))


def test_repeated_snapshots_reuse_one_consolidated_frame() -> None:
    frame = LiveFrame("s", max_rows=None, chunk_rows=64)
    fill(frame, [{"a": i} for i in range(1000)])
    first, second = frame.snapshot(), frame.snapshot()
    assert len(frame._chunks) == 1
    if SHARING_NEEDS_COPY:  # pandas without copy-on-write: each snapshot is a copy of the one cached frame
        assert frame._cache is not None and not np.shares_memory(first["a"].to_numpy(), second["a"].to_numpy())
    else:
        assert np.shares_memory(first["a"].to_numpy(), second["a"].to_numpy())  # not rebuilt
    frame.append(T0, 1001, {"a": 1000})
    third = frame.snapshot()
    assert third["a"].tolist() == list(range(1001))
    assert first["a"].tolist() == list(range(1000))


def test_tail_since_and_clear() -> None:
    frame = LiveFrame("s", chunk_rows=16)
    for i in range(100):
        frame.append(T0 + i * 1_000_000_000, i + 1, {"a": i})
    assert frame.tail(3)["a"].tolist() == [97, 98, 99]
    assert frame.tail(500)["a"].tolist() == list(range(100))
    assert frame.tail(0).empty
    cut = pd.Timestamp(T0 + 90 * 1_000_000_000, unit="ns", tz="UTC")
    assert frame.since(cut)["a"].tolist() == list(range(90, 100))
    assert frame.since(cut.tz_convert(None))["a"].tolist() == list(range(90, 100))  # naive means UTC
    assert frame.since(cut.tz_convert("America/New_York"))["a"].tolist() == list(range(90, 100))
    frame.clear()
    empty = frame.snapshot()
    assert empty.empty and list(empty.columns) == ["timestamp", "socket", "seq"]
    assert str(empty["timestamp"].dtype) == "datetime64[ns, UTC]"
    frame.append(T0, 101, {"b": 1})
    assert frame.snapshot()[["seq", "b"]].values.tolist() == [[101, 1]]
    assert (len(frame), frame.total) == (1, 101)


# --- subscribers ---------------------------------------------------------------------------


def test_subscribers_get_each_new_chunk_at_most_at_their_rate() -> None:
    frame = LiveFrame("s")
    calls: list[pd.DataFrame] = []
    sub = frame.subscribe(calls.append, max_rate_hz=4)
    for tick in range(160):  # 10 s of polls every 1/16 s, a message before each
        frame.append(T0 + tick, tick + 1, {"a": tick})
        frame.poll(now=tick / 16)
    assert len(calls) == 40 == sub.calls  # one call per 0.25 s, never more
    assert [c["seq"].iloc[-1] for c in calls[:3]] == [1, 5, 9]
    delivered = pd.concat(calls)["seq"].tolist()
    assert delivered == list(range(1, 158))  # each row once, in order (the last call was at tick 156)
    sub.cancel()
    frame.append(T0, 999, {"a": 0})
    assert frame.poll(now=100.0) == 0 and not frame.has_subscribers


def test_subscribers_may_change_the_rows_they_get() -> None:
    frame = LiveFrame("s")
    fill(frame, [{"a": i} for i in range(10)])
    frame.flush()

    def vandal(rows: pd.DataFrame) -> None:
        rows["a"] = -1
        rows["added"] = 1

    frame.subscribe(vandal, max_rate_hz=1).next_index = 0
    frame.poll(now=1.0)
    df = frame.snapshot()
    assert df["a"].tolist() == list(range(10)) and "added" not in df.columns


def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    frame = LiveFrame("s")
    good: list[int] = []
    frame.subscribe(lambda rows: 1 / 0, max_rate_hz=10)
    frame.subscribe(lambda rows: good.append(len(rows)), max_rate_hz=10)
    fill(frame, [{"a": 1}])
    frame.poll(now=1.0)
    assert good == [1]


@pytest.mark.parametrize("rate", [0, -1, "4", True])
def test_subscribe_refuses_a_bad_rate(rate: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        LiveFrame("s").subscribe(print, max_rate_hz=rate)


# --- sinks ---------------------------------------------------------------------------------


def test_sinks_get_every_row_once_in_order_even_when_the_cap_drops_them() -> None:
    frame = LiveFrame("s", max_rows=5, chunk_rows=16)
    chunks: list[pd.DataFrame] = []
    frame.add_sink(chunks.append)
    rng = np.random.default_rng(1)
    for i in range(1, 1001):
        frame.append(T0 + i, i, {"i": i})
        if rng.random() < 0.1:
            frame.snapshot()
        if rng.random() < 0.05:
            frame.poll(now=1e9)
    frame.flush()
    assert pd.concat(chunks)["seq"].tolist() == list(range(1, 1001))
    assert len(frame.snapshot()) == 5


def test_poll_flushes_pending_rows_to_sinks_after_the_flush_interval() -> None:
    frame = LiveFrame("s", flush_interval=1.0)
    chunks: list[pd.DataFrame] = []
    frame.add_sink(chunks.append)
    assert not frame.needs_poll
    fill(frame, [{"a": 1}])
    assert frame.needs_poll
    frame.poll(now=frame._last_flush + 0.5)
    assert chunks == []
    frame.poll(now=frame._last_flush + 1.0)
    assert [len(c) for c in chunks] == [1]


# --- through real sockets -------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_snapshots_stay_consistent_while_a_writer_streams(demo: Any) -> None:
    max_rows = 5000
    count = 40_000
    conn = nbs.connect("hammer", demo.url(f"/ticker?rate=max&count={count}"), max_rows=max_rows, reconnect=False)
    frame = conn.frame
    assert frame is not None
    snapshots, last_seqs = 0, set()
    while frame.total < count and conn.state == "open" and len(last_seqs) < 200:
        df = nbs.frame("hammer")
        snapshots += 1
        if df.empty:
            continue
        seq = df["seq"].to_numpy()
        assert len(df) <= max_rows
        assert (np.diff(seq) == 1).all(), "seq has a gap or a repeat inside the cap"
        assert (df["data.seq"].to_numpy() == seq).all(), "a row mixes two messages"
        assert df[["timestamp", "symbol", "price"]].notna().all().all(), "a half-written row"
        assert df.index.is_monotonic_increasing
        last_seqs.add(int(seq[-1]))
        tail = frame.tail(10)["seq"].to_numpy()
        assert (np.diff(tail) == 1).all()
    assert snapshots > 10 and len(last_seqs) > 10, "the snapshots did not overlap the stream"


@pytest.mark.timeout(60)
def test_subscriber_calls_are_bounded_by_the_rate_whatever_the_message_rate(demo: Any) -> None:
    conn = nbs.connect("fast", demo.url("/ticker?rate=max&count=1000000"), reconnect=False, max_rows=10_000)
    assert conn.frame is not None
    chunks: list[pd.DataFrame] = []
    rate = 4
    started = time.monotonic()
    conn.frame.subscribe(chunks.append, max_rate_hz=rate)
    eventually(lambda: len(chunks) >= 6, 20.0, what="six calls")
    calls, elapsed = len(chunks), time.monotonic() - started
    conn.disconnect()
    assert calls <= 1 + elapsed * rate, f"{calls} calls in {elapsed:.2f}s at max {rate}/s"
    seqs = np.concatenate([c["seq"].to_numpy() for c in chunks[:calls]])
    assert (np.diff(seqs) > 0).all(), "a row was delivered twice or out of order"
    assert len(seqs) > 10 * calls, "the messages arrived slower than the calls: nothing was bounded"


def test_nbs_frame_by_name_and_for_all_sockets(demo: Any) -> None:
    nbs.connect("one", demo.url("/ticker?rate=max&count=30"), reconnect=False)
    nbs.connect("two", demo.url("/ticker?rate=max&count=20&symbols=ZZZ"), reconnect=False)
    eventually(lambda: len(nbs.frame("one")) == 30 and len(nbs.frame("two")) == 20, 20.0, what="both streams")
    one = nbs.frame("one")
    assert set(one["socket"]) == {"one"} and one["seq"].tolist() == list(range(1, 31))
    both = nbs.frame()
    assert len(both) == 50 and both["timestamp"].is_monotonic_increasing
    assert both.groupby("socket")["seq"].apply(sorted).to_dict() == {"one": list(range(1, 31)), "two": list(range(1, 21))}
    assert set(both.loc[both["socket"] == "two", "symbol"]) == {"ZZZ"}


def test_parse_failures_and_binary_messages_land_as_rows(demo: Any) -> None:
    conn = nbs.connect("echo-rows", demo.url("/echo"), reconnect=False)
    conn.send('{"a": 1}')
    conn.send("{not json")
    conn.send(b"\xff\x00binary")
    conn.send("[1, 2]")
    eventually(lambda: len(nbs.frame("echo-rows")) == 4, 20.0, what="four echoes")
    df = nbs.frame("echo-rows")
    assert df["seq"].tolist() == [1, 2, 3, 4]
    assert df["a"].iloc[0] == 1 and pd.isna(df["error"].iloc[0])
    assert df["data"].iloc[1] == "{not json" and "invalid JSON" in df["error"].iloc[1]
    assert df["data"].iloc[2] == b"\xff\x00binary" and isinstance(df["error"].iloc[2], str)
    assert df["data"].iloc[3] == [1, 2]


def test_the_column_cap_is_recorded_on_the_connection_once(demo: Any) -> None:
    conn = nbs.connect("wide", demo.url("/echo"), reconnect=False, max_columns=6)
    for i in range(10):
        conn.send(json.dumps({f"k{i}": i}))
    eventually(lambda: len(nbs.frame("wide")) == 10, 20.0, what="ten echoes")
    assert list(nbs.frame("wide").columns) == ["timestamp", "socket", "seq", "k0", "k1", "extra"]
    caps = [e for e in conn.errors if e.error == "ColumnCap"]
    assert len(caps) == 1 and "max_columns" in caps[0].message


def test_frame_false_has_no_live_frame(demo: Any) -> None:
    nbs.connect("noframe", demo.url("/echo"), frame=False, reconnect=False)
    with pytest.raises(InvalidOptionError, match="frame=False"):
        nbs.frame("noframe")
    assert nbs.frame().empty


def test_snapshots_from_many_threads_agree(demo: Any) -> None:
    conn = nbs.connect("threads", demo.url("/ticker?rate=max&count=20000"), reconnect=False, max_rows=3000)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(30):
                seq = conn.frame.snapshot()["seq"].to_numpy()  # type: ignore[union-attr]
                assert len(seq) <= 3000 and (np.diff(seq) == 1).all()
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors


def test_rows_of_one_shape_are_kept_without_an_object_per_row() -> None:
    """A read's messages kept in the live frame allocate nothing the garbage collector counts: with thousands
    of rows kept on many sockets, an object per row would set off ever more (and ever longer) collections."""
    import gc

    frame = LiveFrame("gc", chunk_rows=100_000)
    datas = [{"seq": i, "symbol": "ABC", "price": 100.5 + i} for i in range(5000)]
    bodies = [json.dumps(d) for d in datas]
    gc.disable()
    try:
        gc.collect()
        before = gc.get_count()[0]
        for i, data in enumerate(datas):
            frame.append_messages(T0 + i, i + 1, [data], [None], [bodies[i]])
        grown = gc.get_count()[0] - before
    finally:
        gc.enable()
    assert grown < 50, f"{grown} objects counted by the garbage collector for 5000 kept rows"
    assert frame.snapshot()["price"].tolist() == [d["price"] for d in datas]
