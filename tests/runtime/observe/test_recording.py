"""Recording a live frame to Parquet parts or JSON Lines, and reading it back with pandas and DuckDB."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import nbsocket as nbs
from nbsocket.core.flatten import flatten
from nbsocket.core.frame import LiveFrame
from nbsocket.errors import InvalidOptionError
from nbsocket.runtime.observe.recording import JsonlRecorder, open_recorder
from nbsocket.runtime.observe.recording.parquet import SCHEMA_FILE, ParquetRecorder

from ...servers import eventually

T0 = 1_700_000_000_000_000_000


def read_back(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The recording as pandas and as DuckDB read it, each in file order."""
    if path.suffix == ".parquet":
        by_pandas = pd.read_parquet(path)
        by_duckdb = duckdb.sql(f"select * from read_parquet('{path}/*.parquet', union_by_name=true)").df()
    else:
        by_pandas = pd.read_json(path, lines=True, precise_float=True)
        by_duckdb = duckdb.sql(f"select * from read_json_auto('{path}')").df()
    return by_pandas, by_duckdb


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["capture.parquet", "capture.jsonl"])
def test_a_capture_keeps_every_row_past_the_row_cap(demo: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    count = 30_000
    conn = nbs.connect("rec", demo.url(f"/ticker?rate=max&count={count}"), record=str(path), max_rows=500, reconnect=False)
    assert conn.frame is not None
    eventually(lambda: conn.frame.total == count, 30.0, what="every tick")  # type: ignore[union-attr]
    assert len(nbs.frame("rec")) == 500
    nbs.disconnect("rec")
    by_pandas, by_duckdb = read_back(path)
    for df in (by_pandas, by_duckdb):
        assert df["seq"].tolist() == list(range(1, count + 1)), "rows missing, repeated or out of order"
        assert (df["data.seq"] == df["seq"]).all()
        assert set(df["socket"]) == {"rec"} and df["price"].notna().all()
    assert str(by_pandas["timestamp"].dt.tz) == "UTC"
    duck_times = by_duckdb["timestamp"]  # DuckDB gives its own time zone, or naive UTC, depending on versions
    duck_times = duck_times.dt.tz_localize("UTC") if duck_times.dt.tz is None else duck_times.dt.tz_convert("UTC")
    assert (duck_times == by_pandas["timestamp"]).all()
    live = nbs.frame("rec")  # the last 500 rows, as kept in memory
    for df in (by_pandas, by_duckdb):
        kept = df.set_index("seq").loc[live["seq"]]
        assert (kept["price"].to_numpy() == live["price"].to_numpy()).all(), "a float changed on the way"
        assert (kept["data.timestamp"].to_numpy() == live["data.timestamp"].to_numpy()).all()
    kept = by_pandas.set_index("seq").loc[live["seq"]]
    assert (kept["timestamp"].to_numpy() == live["timestamp"].dt.floor("us").to_numpy()).all()


@pytest.mark.parametrize("close", ["remove", "shutdown"])
def test_remove_and_shutdown_write_out_the_last_rows(demo: Any, tmp_path: Path, close: str) -> None:
    path = tmp_path / "capture.parquet"
    conn = nbs.connect("rec", demo.url("/ticker?rate=max&count=3000"), record=str(path), reconnect=False)
    eventually(lambda: conn.frame.total == 3000, 30.0, what="every tick")  # type: ignore[union-attr]
    nbs.remove("rec") if close == "remove" else nbs.shutdown()
    assert pd.read_parquet(path)["seq"].tolist() == list(range(1, 3001))


def test_recording_goes_on_after_a_reset_and_appends(demo: Any, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    conn = nbs.connect("rec", demo.url("/ticker?rate=max&count=100"), record=str(path), reconnect=False)
    eventually(lambda: conn.frame.total == 100, 30.0, what="first stream")  # type: ignore[union-attr]
    nbs.reset("rec")
    eventually(lambda: conn.frame.total == 200, 30.0, what="second stream")  # type: ignore[union-attr]
    nbs.disconnect("rec")
    assert pd.read_json(path, lines=True)["seq"].tolist() == list(range(1, 201))


def test_a_capture_survives_the_process_ending_without_a_disconnect(demo: Any, tmp_path: Path) -> None:
    path = tmp_path / "capture.parquet"
    script = textwrap.dedent(
        f"""
        import time, nbsocket as nbs
        conn = nbs.connect("rec", {demo.url("/ticker?rate=max&count=5000")!r}, record={str(path)!r}, max_rows=100)
        deadline = time.monotonic() + 30
        while conn.frame.total < 5000 and time.monotonic() < deadline:
            time.sleep(0.01)
        print(conn.frame.total)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) == 5000
    assert pd.read_parquet(path)["seq"].tolist() == list(range(1, 5001))


def test_binary_messages_and_parse_failures_are_recorded(demo: Any, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    conn = nbs.connect("rec", demo.url("/echo"), record=str(path), reconnect=False)
    conn.send(b"\x00\xffbytes")
    conn.send("{broken")
    eventually(lambda: conn.frame.total == 2, 30.0, what="two echoes")  # type: ignore[union-attr]
    nbs.disconnect("rec")
    df = pd.read_json(path, lines=True)
    assert base64.b64decode(df["data"].iloc[0]) == b"\x00\xffbytes"
    assert df["data"].iloc[1] == "{broken" and "invalid JSON" in df["error"].iloc[1]


# --- the recorders on their own --------------------------------------------------------------


def rows(frame: LiveFrame, fields: list[dict[str, Any]], first_seq: int = 1) -> None:
    for i, f in enumerate(fields):
        frame.append(T0 + (first_seq + i) * 1000, first_seq + i, f)


def test_parquet_parts_are_written_as_rows_arrive_and_are_readable_before_close(tmp_path: Path) -> None:
    path = tmp_path / "capture.parquet"
    frame = LiveFrame("s", max_rows=10, chunk_rows=16)
    recorder = ParquetRecorder(str(path), part_rows=100)
    recorder.attach(frame)
    rows(frame, [{"a": i} for i in range(250)])
    recorder.flush()
    before_close = pd.read_parquet(path)
    assert before_close["seq"].tolist() == list(range(1, 251))
    assert sorted(p.name for p in path.iterdir()) == [
        SCHEMA_FILE,
        "part-000001.parquet",
        "part-000002.parquet",
        "part-000003.parquet",
    ]
    rows(frame, [{"a": i} for i in range(250, 300)], first_seq=251)
    recorder.close()
    assert pd.read_parquet(path)["a"].tolist() == list(range(300))
    assert not [p for p in path.iterdir() if p.name.startswith(".")]


def test_parquet_schema_growth_and_type_changes_stay_readable_together(tmp_path: Path) -> None:
    path = tmp_path / "capture.parquet"
    frame = LiveFrame("s", chunk_rows=16)
    recorder = ParquetRecorder(str(path), part_rows=20)
    recorder.attach(frame)
    batches: list[list[dict[str, Any]]] = [
        [{"n": i, "flag": True} for i in range(20)],  # n: integers
        [{"n": i, "later": "x"} for i in range(20, 40)],  # a new column; n missing nowhere
        [{"n": i + 0.5, "later": None} for i in range(40, 60)],  # n: now fractional -> double
        [{"n": "text", "list": [1, {"a": 2}], "blob": b"\x01"} for _ in range(20)],  # n: text; nested values
        [{"n": None, "big": 2**70} for _ in range(20)],
    ]
    seq = 1
    for batch in batches:
        rows(frame, batch, first_seq=seq)
        seq += len(batch)
        frame.flush()
        recorder.flush()
    recorder.close()
    parts = sorted(path.glob("part-*.parquet"))
    assert len(parts) == 6  # the schema file and five parts
    types = {str(pq.read_schema(p).field("n").type) for p in parts if "n" in pq.read_schema(p).names}
    assert types == {"string"}, "every part holds n with one type"
    for df in read_back(path):
        assert df["seq"].tolist() == list(range(1, 101))
        assert df["n"].iloc[:2].tolist() == ["0", "1"] and df["n"].iloc[40] == "40.5" and df["n"].iloc[60] == "text"
        assert df["later"].iloc[:20].isna().all() and (df["later"].iloc[20:40] == "x").all()
        assert df["list"].iloc[60] == '[1, {"a": 2}]'
        assert df["big"].iloc[80] == str(2**70)
        assert df["flag"].iloc[:20].all() and df["flag"].iloc[20:].isna().all()


def test_integers_that_pandas_made_floats_stay_integers(tmp_path: Path) -> None:
    path = tmp_path / "capture.parquet"
    frame = LiveFrame("s", chunk_rows=16)
    recorder = ParquetRecorder(str(path), part_rows=10)
    recorder.attach(frame)
    rows(frame, [{"id": i} for i in range(10)])
    frame.flush()
    recorder.flush()
    rows(frame, [{"id": i} if i % 2 else {"other": 1} for i in range(10, 20)], first_seq=11)  # id becomes float64 in pandas
    recorder.close()
    df = pd.read_parquet(path)
    assert str(df["id"].dtype) == "Int64" or df["id"].dropna().map(float.is_integer).all()
    assert {str(pq.read_schema(p).field("id").type) for p in path.glob("part-*.parquet")} == {"int64"}


def test_recording_again_to_a_capture_appends(tmp_path: Path) -> None:
    for path in (tmp_path / "capture.parquet", tmp_path / "capture.jsonl"):
        for first in (1, 11):
            frame = LiveFrame("s")
            recorder = open_recorder(str(path), frame)
            rows(frame, [{"a": i, f"col{first}": 1} for i in range(first, first + 10)], first_seq=first)
            recorder.close()
        for df in read_back(path):
            assert df["a"].tolist() == list(range(1, 21))
            assert df["col11"].iloc[10:].notna().all() and df["col11"].iloc[:10].isna().all()


def test_a_detached_recorder_gets_no_more_rows(tmp_path: Path) -> None:
    frame = LiveFrame("s")
    recorder = JsonlRecorder(str(tmp_path / "capture.jsonl"))
    recorder.attach(frame)
    rows(frame, [{"a": 1}])
    recorder.detach(frame)  # the pending row is recorded first
    rows(frame, [{"a": 2}], first_seq=2)
    frame.flush()
    recorder.close()
    assert pd.read_json(tmp_path / "capture.jsonl", lines=True)["a"].tolist() == [1]


def test_jsonl_lines_are_on_disk_after_each_batch(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    frame = LiveFrame("s", chunk_rows=16)
    recorder = JsonlRecorder(str(path))
    recorder.attach(frame)
    rows(frame, [flatten({"a": i, "nested": {"b": [i]}, "x": None if i % 2 else 1.5}) for i in range(40)])
    recorder.flush()
    lines = path.read_text().splitlines()
    assert len(lines) == 40 and lines[0].startswith('{"timestamp":"2023-11-14T22:13:20.000001Z","socket":"s","seq":1')
    df = pd.read_json(path, lines=True)
    assert df["nested.b"].tolist() == [[i] for i in range(40)]
    assert np.isnan(df["x"].iloc[1]) and df["x"].iloc[0] == 1.5
    recorder.close()


def test_bad_record_paths_are_refused_before_any_io(tmp_path: Path) -> None:
    frame = LiveFrame("s")
    with pytest.raises(InvalidOptionError, match=r".parquet or .jsonl"):
        open_recorder(str(tmp_path / "capture.csv"), frame)
    with pytest.raises(InvalidOptionError, match="does not exist"):
        open_recorder(str(tmp_path / "missing" / "capture.jsonl"), frame)
    (tmp_path / "file.parquet").write_text("not a folder")
    with pytest.raises(InvalidOptionError, match="is a folder, and this path is not"):
        open_recorder(str(tmp_path / "file.parquet"), frame)
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(InvalidOptionError, match="is a file, and this path is not"):
        open_recorder(str(tmp_path / "folder.jsonl"), frame)
    with pytest.raises(InvalidOptionError, match="frame=True"):
        open_recorder(str(tmp_path / "capture.jsonl"), None)
    assert sorted(os.listdir(tmp_path)) == ["file.parquet", "folder.jsonl"]


def test_two_sockets_cannot_record_to_one_path(demo: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "capture.parquet")
    nbs.connect("a", demo.url("/echo"), record=path, reconnect=False)
    with pytest.raises(InvalidOptionError, match="already being recorded"):
        nbs.connect("b", demo.url("/echo"), record=path, reconnect=False)
    assert nbs.connections()["name"].tolist() == ["a"]
    nbs.remove("a")
    nbs.connect("b", demo.url("/echo"), record=path, reconnect=False)  # free again once "a" is gone


def test_a_failing_disk_is_reported_on_the_connection(demo: Any, tmp_path: Path) -> None:
    path = tmp_path / "capture.parquet"
    conn = nbs.connect("rec", demo.url("/echo"), record=str(path), reconnect=False)
    path.write_text("a file where the capture folder should be")
    conn.send('{"a": 1}')
    eventually(lambda: conn.frame.total == 1, 30.0, what="the echo")  # type: ignore[union-attr]
    nbs.disconnect("rec")
    failures = [e for e in conn.errors if e.where == "record"]
    assert len(failures) == 1 and "1 row(s) not recorded" in failures[0].message
