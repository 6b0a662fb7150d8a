"""record="s3://bucket/prefix/" (any fsspec URL): Parquet parts that roll by size and time, renamed into place whole,
and read by DuckDB as one table across sockets and shards."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import duckdb
import fsspec
import pandas as pd
import pyarrow.parquet as pq
import pytest

import nbsocket as nbs
from nbsocket.errors import InvalidOptionError

from ..servers import eventually
from .feeds import FEED_FILE, FeedServer
from .runs import Run


def test_parts_roll_by_rows_and_at_disconnect_in_memory(demo: Any) -> None:
    fs = fsspec.filesystem("memory")
    conn = nbs.connect("mem", demo.url("/ticker?rate=max&count=1200"), record="memory://captures/?part_rows=500", reconnect=False)
    eventually(lambda: conn.stats.messages_in == 1200, 30.0, what="every tick")
    nbs.disconnect("mem")
    names = sorted(fs.ls("/captures/mem", detail=False))
    assert [name.rsplit("-", 1)[1] for name in names] == ["000001.parquet", "000002.parquet", "000003.parquet"]
    sizes = [pq.read_table(fs.open(name, "rb")).num_rows for name in names]
    assert sum(sizes) == 1200 and sizes[-1] < 500 < sum(sizes[:2]) + 1
    seqs = pd.concat([pq.read_table(fs.open(name, "rb")).to_pandas() for name in names])["seq"].tolist()
    assert seqs == list(range(1, 1201))


def test_parts_roll_by_time(demo: Any, tmp_path: Path) -> None:
    url = f"file://{tmp_path}/slow/?part_seconds=0.3"
    conn = nbs.connect("slow", demo.url("/ticker?rate=30&count=75"), record=url, reconnect=False)
    eventually(lambda: conn.stats.messages_in == 75, 30.0, what="every tick")
    parts_before_close = list((tmp_path / "slow" / "slow").glob("*.parquet"))
    nbs.disconnect("slow")
    assert len(parts_before_close) >= 2, "a part written while rows arrive (rows reach it once a second)"
    table = duckdb.sql(f"select seq from read_parquet('{tmp_path}/slow/**/*.parquet') order by seq").df()
    assert table["seq"].tolist() == list(range(1, 76))


def test_a_bad_parts_url_is_refused_before_any_io(demo: Any) -> None:
    with pytest.raises(InvalidOptionError, match="part_rows"):
        nbs.connect("bad", demo.url("/echo"), record="memory://x/?part_rows=0")
    with pytest.raises(InvalidOptionError, match="unknown option"):
        nbs.connect("bad", demo.url("/echo"), record="memory://x/?colour=red")
    with pytest.raises(InvalidOptionError, match="name a folder"):
        nbs.connect("bad", demo.url("/echo"), record="memory://")


@pytest.mark.timeout(120)
def test_the_parts_of_three_shards_read_as_one_table_and_a_killed_shard_loses_only_its_unwritten_part(
    feed: FeedServer, tmp_path: Path
) -> None:
    """Three ``nbsocket run --shard`` processes share one prefix; one is killed with SIGKILL mid-part. Every part on
    disk is whole (no temporary file is read), and each socket holds a gapless run of its feed from the start."""
    feed_file = tmp_path / "feeds.py"
    feed_file.write_text(FEED_FILE)
    env = {"FEED_URL": feed.url, "FEED_RECORD": f"file://{tmp_path}/lake/?part_seconds=0.5", "FEED_SOCKETS": "6"}
    runs = [Run(feed_file, "--shard", f"{i}/3", env=env, log=tmp_path / f"shard{i}.log") for i in (1, 2, 3)]
    for run in runs:
        run.wait_for("holding")
    time.sleep(1.6)
    runs[1].kill()
    for run in (runs[0], runs[2]):
        assert run.stop(signal.SIGTERM) == 0, run.log_path.read_text()
    table = duckdb.sql(f"select socket, seq, n from read_parquet('{tmp_path}/lake/**/*.parquet', union_by_name=true)").df()
    assert set(table["socket"]) == {f"feed{i:02d}" for i in range(6)}, "every socket of every shard, killed or not"
    for socket, rows in table.groupby("socket"):
        numbers = sorted(rows["n"].tolist())
        assert numbers == list(range(1, len(numbers) + 1)), f"{socket}: a gap or a repeat"
        assert sorted(rows["seq"]) == numbers
    assert not list((tmp_path / "lake").rglob("*.tmp")) or all(
        p.name.startswith(".") for p in (tmp_path / "lake").rglob("*.tmp")
    ), "a temporary part is hidden, never a .parquet a reader globs"
