"""Recording many sockets in one process: the recordings share their writer threads, and a Parquet recording takes
its rows from the live frame every half part, not every second."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pandas as pd

from nbsocket.core.frame import LiveFrame
from nbsocket.runtime.observe.recording import open_recorder
from nbsocket.runtime.observe.recording.parquet import ParquetRecorder

from ...servers import eventually

T0 = 1_700_000_000_000_000_000


def test_a_sink_may_ask_for_its_rows_less_often() -> None:
    frame = LiveFrame("s", flush_interval=1.0)
    chunks: list[pd.DataFrame] = []
    frame.add_sink(chunks.append, every=5.0)
    frame.append(T0, 1, {"a": 1})
    frame.poll(now=frame._last_flush + 1.0)
    assert chunks == []  # the frame's own second is not this sink's
    frame.poll(now=frame._last_flush + 5.0)
    assert [len(c) for c in chunks] == [1]
    others: list[pd.DataFrame] = []
    frame.add_sink(others.append)  # a sink with the frame's interval: the shortest wait wins
    frame.append(T0 + 1, 2, {"a": 2})
    frame.poll(now=frame._last_flush + 1.0)
    assert [len(c) for c in others] == [1] and len(chunks) == 2
    frame.remove_sink(others.append)
    frame.append(T0 + 2, 3, {"a": 3})
    frame.poll(now=frame._last_flush + 1.0)
    assert len(chunks) == 2


def test_many_recordings_share_one_writer_thread(tmp_path: Path) -> None:
    before = threading.active_count()
    frames, recorders = [], []
    for i in range(200):
        frame = LiveFrame(f"s{i}", lock=threading.RLock())
        recorder = ParquetRecorder(str(tmp_path / f"s{i}.parquet"), part_seconds=0.2)
        recorder.attach(frame)
        assert recorder.sink_every == 0.1
        frames.append(frame)
        recorders.append(recorder)
    for n in range(3):
        for i, frame in enumerate(frames):
            frame.append(T0 + n, n + 1, {"i": i, "n": n})
            frame.flush()
    assert threading.active_count() <= before + 1  # one thread writes them all, not one per recording
    eventually(lambda: all(r.rows_written == 3 for r in recorders), timeout=30, what="every part written when due")
    for recorder in recorders:
        recorder.close()
    assert all(r.parts_written >= 1 for r in recorders)
    table = pd.read_parquet(tmp_path / "s7.parquet")
    assert table["n"].tolist() == [0, 1, 2] and set(table["i"]) == {7}


def test_a_recording_flushed_and_closed_on_the_shared_thread_writes_in_order(tmp_path: Path) -> None:
    frame = LiveFrame("s", lock=threading.RLock())
    recorder = open_recorder(tmp_path / "s.jsonl", frame)
    for n in range(5):
        frame.append(T0 + n, n + 1, {"n": n})
        frame.flush()
        recorder.flush()
    started = time.monotonic()
    recorder.close()
    assert time.monotonic() - started < 5
    written = pd.read_json(tmp_path / "s.jsonl", lines=True)
    assert written["n"].tolist() == [0, 1, 2, 3, 4]
