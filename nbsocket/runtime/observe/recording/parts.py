"""Recording a live frame as Parquet parts on any fsspec URL (``record="s3://bucket/feeds/"``, ``file://``, ``memory://``).

Each socket writes its own folder, ``<url>/<socket>/`` (or the URL with ``{name}`` filled in), so many
sockets and many processes can share one prefix. A part is written when it has ``part_rows`` rows or
about ``part_mb`` MiB, every ``part_seconds`` while rows arrive, and at disconnect; it goes first
to a hidden temporary name (``.part-....parquet.tmp``) and is then renamed, so a reader never sees
half a part, and a crash loses at most the part not yet written. Part names,
``part-<first row's time>Z-<run>-<number>.parquet``, never collide between processes (the run is new
at every process start) and sort by time. The parts of many sockets and shards read as one table::

    duckdb.sql("select * from read_parquet('s3://bucket/feeds/**/*.parquet', union_by_name=true)")

A column keeps the type of its first part in this recorder's later parts (integers that become
fractions are widened to double, anything else that changes becomes text); parts written by other
processes may differ, which ``union_by_name`` reconciles. Rows are written by the recorder's own
thread (:class:`~nbsocket.runtime.observe.recording.base.Recorder`); the loop never waits for storage.
"""

from __future__ import annotations

import importlib.util
import posixpath
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from ....core.redact import redact_url
from ....core.streams import PartsTarget, part_name
from ....errors import InvalidOptionError
from .base import Recorder
from .parquet import PartBuffer, arrow_columns, import_pyarrow
from .runs import process_run

__all__ = ["PartsRecorder"]


class PartsRecorder(Recorder):
    """Writes a socket's rows as Parquet parts under an fsspec URL (see the module doc)."""

    is_folder = True
    kind = "parts"
    remote = True

    def __init__(self, target: PartsTarget, socket: str, on_error: Callable[[str], Any] | None = None) -> None:
        if importlib.util.find_spec("pyarrow") is None or importlib.util.find_spec("fsspec") is None:
            raise InvalidOptionError("recording Parquet parts to a URL needs pyarrow and fsspec: pip install 'nbsocket[record]'")
        import fsspec

        try:
            fs, folder = fsspec.core.url_to_fs(target.folder_for(socket))
        except (ImportError, ValueError) as exc:
            raise InvalidOptionError(
                f"cannot record to {target.shown}: {exc} (for s3:// install s3fs, for gs:// gcsfs, for az:// adlfs)"
            ) from None
        import_pyarrow()

        self.target = target
        self.socket = socket
        self.run = process_run()
        self.fs = fs
        self.folder: str = folder
        self.parts_written = 0
        self.part_rows = target.part_rows
        self.part_seconds = target.part_seconds
        self.part_bytes = target.part_bytes
        self._buffer = PartBuffer(count_bytes=True)  # parts roll at part_bytes too
        self._schema: dict[str, Any] = {}  # column -> pyarrow DataType
        super().__init__(target.folder_for(socket), on_error)

    def _normalize(self, path: str) -> str:
        return redact_url(path)  # a URL, not a local path; shown in status and errors

    def _check_path(self) -> None:
        """Nothing to check before the first part: a remote folder appears when written to."""

    @property
    def sink_every(self) -> float | None:
        """Rows are written a part every ``part_seconds``: the frame hands them over twice as often, not every second
        (a chunk per socket per second is what thousands of recorded sockets could not afford)."""
        return self.part_seconds / 2

    def _deadline(self) -> float | None:
        return self._buffer.deadline(self.part_seconds)

    def _add(self, chunk: pd.DataFrame) -> None:
        buffer = self._buffer
        buffer.add(chunk)
        while buffer.rows >= self.part_rows:  # a part holds part_rows rows at most, however the chunks came
            since = buffer.since
            rest = buffer.split(self.part_rows)
            self._commit()
            if len(rest):
                buffer.add(rest)
                buffer.since = since  # the rest came with the rows just written: its part is due as theirs was
        if buffer.bytes >= self.part_bytes:
            self._commit()

    def _discard_buffer(self) -> int:
        return self._buffer.clear()

    def _commit(self) -> None:
        if not self._buffer.rows:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = self._buffer.frame()
        columns, _ = arrow_columns(frame, self._schema)
        table = pa.table(columns)
        first_ts = int(frame["timestamp"].iloc[0].value) if "timestamp" in frame and len(frame) else time.time_ns()
        name = part_name(self.run, self.parts_written + 1, first_ts)
        final = posixpath.join(self.folder, name)
        temporary = posixpath.join(self.folder, f".{name}.tmp")
        self.fs.makedirs(self.folder, exist_ok=True)
        with self.fs.open(temporary, "wb") as out:
            pq.write_table(table, out)
        self.fs.mv(temporary, final)
        self.parts_written += 1
        self.rows_written += len(frame)
        self._buffer.clear()
