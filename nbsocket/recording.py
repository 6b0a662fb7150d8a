"""Recording a live frame to disk as rows arrive: a folder of Parquet parts, or JSON Lines.

``connect(..., record="capture.parquet")`` (or ``.jsonl``) attaches a recorder to
the socket's live frame as a sink: it gets every chunk of rows before the
``max_rows`` cap can drop any, and its own thread writes them, so the loop never
waits for the disk. Rows are written once, in order; recording to an existing
capture appends to it.

JSON Lines: one object per row, appended and flushed for every batch (at least
once a second). ISO 8601 UTC timestamps, exact floats, base64 bytes, missing
values left out. ``pd.read_json(path, lines=True, precise_float=True)``, DuckDB
``read_json_auto('capture.jsonl')``, Spark ``spark.read.json(path)``.

Parquet needs one schema per file and a footer at close, so the path is a folder
of complete parts, ``part-000001.parquet``, ... each written to a hidden
temporary file and renamed into place (a reader or a killed kernel never sees
half a file): every ``part_seconds`` (10 s) or ``part_rows`` (100,000), and at
disconnect. The schema policy keeps the parts readable together:

* ``part-000000-schema.parquet`` has no rows and the whole capture's schema; it
  sorts first, so ``pd.read_parquet("capture.parquet")`` sees every column.
* A column first seen later is null in earlier parts: DuckDB reads them with
  ``read_parquet('capture.parquet/*.parquet', union_by_name=true)``, Spark with
  ``spark.read.option("mergeSchema", "true").parquet(path)``.
* A column has one type in every part: boolean, int64, double, string or binary;
  lists, dicts and mixed values are JSON text. When a column's type changes
  (integers, then fractions; numbers, then text) it is widened to double or text
  and the parts already written are rewritten, each atomically (at most twice
  per column).
* Timestamps are UTC microseconds, which every reader supports.
"""

from __future__ import annotations

import atexit
import base64
import importlib.util
import json
import logging
import os
import queue
import re
import threading
import time
import weakref
from collections.abc import Callable
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from math import isfinite
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import InvalidOptionError

if TYPE_CHECKING:
    import pyarrow as pa

    from .frame import LiveFrame

log = logging.getLogger("nbsocket")

PART_ROWS = 100_000
PART_SECONDS = 10.0
SCHEMA_FILE = "part-000000-schema.parquet"
_PART = re.compile(r"^part-(\d{6,})\.parquet$")

_claims: dict[str, Recorder] = {}
_claims_lock = threading.Lock()
_live: weakref.WeakSet[Recorder] = weakref.WeakSet()


def open_recorder(path: str | os.PathLike[str], frame: LiveFrame | None, on_error: Callable[[str], Any] | None = None) -> Recorder:
    """A recorder for ``path`` (``.parquet`` directory or ``.jsonl`` file), attached to ``frame``.

    Raises :class:`InvalidOptionError` before any I/O if the path cannot work.
    """
    if frame is None:
        raise InvalidOptionError("record= writes the live frame's rows to disk; it needs frame=True (use a small max_rows to save memory)")
    text = os.fspath(path)
    suffix = os.path.splitext(text)[1].lower()
    if suffix == ".parquet":
        recorder: Recorder = ParquetRecorder(text, on_error)
    elif suffix in (".jsonl", ".ndjson"):
        recorder = JsonlRecorder(text, on_error)
    else:
        raise InvalidOptionError(f"record= must name a .parquet or .jsonl path, not {text!r} (e.g. record='capture.parquet')")
    recorder.attach(frame)
    return recorder


class Recorder:
    """Writes the chunks of rows it is given to ``path`` on its own thread; see the module doc for the formats."""

    is_folder = False

    def __init__(self, path: str, on_error: Callable[[str], Any] | None = None) -> None:
        self.path = os.path.abspath(path)
        self.on_error = on_error
        self.rows_written = 0
        self.rows_lost = 0
        self._frames: list[LiveFrame] = []
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._reported: set[str] = set()
        self._check_path()
        self._claim()
        _live.add(self)

    # --- public ------------------------------------------------------------------

    def attach(self, frame: LiveFrame) -> None:
        """Record every row ``frame`` gets from now on."""
        self._frames.append(frame)
        frame.add_sink(self.write)

    def detach(self, frame: LiveFrame) -> None:
        """Stop recording ``frame`` (its pending rows are recorded first)."""
        frame.remove_sink(self.write)
        self._frames = [f for f in self._frames if f is not frame]

    def write(self, chunk: pd.DataFrame) -> None:
        """Queue a chunk of rows for writing (the live frame's sink; returns at once)."""
        if not len(chunk):
            return
        with self._lock:
            if self._thread is None:
                try:
                    self._claim()
                except InvalidOptionError as exc:
                    self.rows_lost += len(chunk)
                    self._report(f"{exc} ({len(chunk)} row(s) not recorded)", "claim")
                    return
                self._thread = threading.Thread(target=self._run, name=f"nbsocket-record-{os.path.basename(self.path)}", daemon=True)
                self._thread.start()
            self._queue.put(("rows", chunk))

    def flush(self, timeout: float | None = 60.0) -> None:
        """Put every row recorded so far on disk (a Parquet part is written now); waits up to ``timeout`` seconds."""
        self._ask("flush", timeout)

    def close(self, timeout: float | None = 60.0) -> None:
        """Final flush: every row so far goes to disk and the writer thread ends. Recording resumes if rows arrive later."""
        self._ask("close", timeout)
        self._release()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path!r}: {self.rows_written} rows written>"

    # --- the writer thread ----------------------------------------------------------

    def _ask(self, kind: str, timeout: float | None) -> None:
        """Flush the frames' pending rows, then have the writer thread ``flush`` or ``close``, and wait for it."""
        for frame in list(self._frames):
            frame.flush()
        with self._lock:
            thread = self._thread
            if thread is None:
                return
            if kind == "close":
                self._thread = None
            done = threading.Event()
            self._queue.put((kind, done))
        done.wait(timeout)
        if kind == "close":
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            deadline = self._deadline()
            try:
                kind, item = self._queue.get(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self._safely("write", self._commit)
                continue
            if kind == "rows":
                self._safely("write", self._add, item)
                continue
            self._safely("write", self._commit)
            if kind == "close":
                self._safely("close", self._finish)
            item.set()
            if kind == "close":
                return

    def _safely(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            lost = self._discard_buffer()
            self.rows_lost += lost
            message = f"recording to {self.path} failed to {what}: {type(exc).__name__}: {exc}" + (
                f" ({lost} row(s) not recorded)" if lost else ""
            )
            self._report(message, type(exc).__name__)

    def _report(self, message: str, kind: str) -> None:
        """Log a failure (a warning the first time of its kind) and tell ``on_error``."""
        first = kind not in self._reported
        self._reported.add(kind)
        (log.warning if first else log.debug)(message)
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:
                log.exception("recording: the error callback failed")

    # --- claims: one recorder per path ----------------------------------------------------

    def _claim(self) -> None:
        with _claims_lock:
            holder = _claims.get(self.path)
            if holder is not None and holder is not self:
                raise InvalidOptionError(
                    f"{self.path} is already being recorded by another socket; record each socket to its own path"
                )
            _claims[self.path] = self

    def _release(self) -> None:
        with _claims_lock:
            if _claims.get(self.path) is self:
                del _claims[self.path]

    # --- format hooks ------------------------------------------------------------------

    def _check_path(self) -> None:
        parent = os.path.dirname(self.path)
        if not os.path.isdir(parent):
            raise InvalidOptionError(f"cannot record to {self.path}: the folder {parent} does not exist")
        if os.path.exists(self.path) and os.path.isdir(self.path) != self.is_folder:
            what = "a folder" if self.is_folder else "a file"
            raise InvalidOptionError(f"cannot record to {self.path}: a capture of this kind is {what}, and this path is not (pick a new name)")

    def _deadline(self) -> float | None:
        """When buffered rows must be written without waiting for more (None: nothing buffered)."""
        return None

    def _add(self, chunk: pd.DataFrame) -> None:
        raise NotImplementedError

    def _commit(self) -> None:
        """Write out whatever is buffered."""

    def _finish(self) -> None:
        """Release files at close."""

    def _discard_buffer(self) -> int:
        return 0


class JsonlRecorder(Recorder):
    """Appends every row to a JSON Lines file, flushing each batch."""

    def __init__(self, path: str, on_error: Callable[[str], Any] | None = None) -> None:
        self._file: Any = None
        super().__init__(path, on_error)

    def _add(self, chunk: pd.DataFrame) -> None:
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8", newline="\n")
        text = jsonl_text(chunk)
        self._file.write(text)
        self._file.flush()
        self.rows_written += len(chunk)

    def _finish(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def jsonl_text(chunk: pd.DataFrame) -> str:
    """Rows as JSON Lines, one object per row; a missing value leaves its key out.

    Timestamps are ISO 8601 UTC with microseconds, floats are exact (shortest
    round-trip form; NaN and infinities are left out), bytes are base64 text.
    """
    keys = [encode_basestring(str(name)) + ":" for name in chunk.columns]
    columns = [_json_values(chunk[name]) for name in chunk.columns]
    lines = ["{" + ",".join([k + v for k, v in zip(keys, values) if v is not None]) + "}" for values in zip(*columns)]
    return "\n".join(lines) + "\n"


def _json_values(column: pd.Series) -> list[str | None]:
    """Each value of ``column`` as JSON text (``None`` for a missing value)."""
    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        return _iso_times(column)
    values = column.tolist()
    if pd.api.types.is_bool_dtype(dtype) and dtype != object:
        return [None if _missing(v) else ("true" if v else "false") for v in values]
    if pd.api.types.is_integer_dtype(dtype):
        return [None if _missing(v) else str(v) for v in values]
    if pd.api.types.is_float_dtype(dtype):
        return [repr(v) if isfinite(v) else None for v in values]
    if pd.api.types.is_string_dtype(dtype) and dtype != object:
        return [encode_basestring(v) if isinstance(v, str) else None for v in values]
    return [_json_value(v) for v in values]


def _json_value(value: Any) -> str | None:
    if isinstance(value, str):
        return encode_basestring(value)
    if _missing(value):
        return None
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if isfinite(value) else None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return '"' + base64.b64encode(bytes(value)).decode("ascii") + '"'
    try:
        return json.dumps(value, ensure_ascii=False, default=_json_default, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return encode_basestring(str(value))


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def _iso_times(column: pd.Series) -> list[str | None]:
    """``2024-05-01T12:00:00.123456Z`` for each time: formats each distinct second once."""
    times = column if isinstance(column.dtype, pd.DatetimeTZDtype) else column.dt.tz_localize("UTC")
    micros = times.array.asi8 // 1000  # ns since the epoch, UTC
    missing = times.isna().to_numpy()
    seconds, fractions = divmod(micros, 1_000_000)
    distinct = np.unique(seconds[~missing])
    prefix = dict(zip(distinct.tolist(), pd.to_datetime(distinct, unit="s").strftime("%Y-%m-%dT%H:%M:%S")))
    return [
        None if gone else f'"{prefix[s]}.{f:06d}Z"'
        for s, f, gone in zip(seconds.tolist(), fractions.tolist(), missing.tolist())
    ]


class ParquetRecorder(Recorder):
    """Writes a folder of Parquet part files sharing one schema (see the module doc)."""

    is_folder = True

    def __init__(
        self, path: str, on_error: Callable[[str], Any] | None = None, *, part_rows: int = PART_ROWS, part_seconds: float = PART_SECONDS
    ) -> None:
        if importlib.util.find_spec("pyarrow") is None:
            raise InvalidOptionError("recording to Parquet needs pyarrow: pip install pyarrow (or record to a .jsonl file)")
        self.part_rows = part_rows
        self.part_seconds = part_seconds
        self.parts_written = 0
        self._buffer: list[pd.DataFrame] = []
        self._buffered = 0
        self._buffer_since = 0.0
        self._schema: dict[str, pa.DataType] | None = None  # loaded from disk on first write
        self._next_part = 1
        super().__init__(path, on_error)

    def _deadline(self) -> float | None:
        return self._buffer_since + self.part_seconds if self._buffered else None

    def _add(self, chunk: pd.DataFrame) -> None:
        if not self._buffered:
            self._buffer_since = time.monotonic()
        self._buffer.append(chunk)
        self._buffered += len(chunk)
        if self._buffered >= self.part_rows:
            self._commit()

    def _discard_buffer(self) -> int:
        lost, self._buffer, self._buffered = self._buffered, [], 0
        return lost

    def _commit(self) -> None:
        if not self._buffered:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = self._buffer[0] if len(self._buffer) == 1 else pd.concat(self._buffer)
        schema = self._load()
        columns: dict[str, pa.Array] = {}
        schema_changed = False
        for name in frame.columns:
            array = to_arrow(frame[name])
            recorded = schema.get(name)
            if array.null_count == len(array):
                if recorded is None:
                    continue  # no value yet: the column gets a type when one arrives
                array = pa.nulls(len(array), recorded)
            elif recorded is None:
                schema[name] = array.type
                schema_changed = True
            elif array.type != recorded:
                target = widen(recorded, array)
                if target != recorded:
                    self._rewrite_parts(name, target)
                    schema[name] = target
                    schema_changed = True
                array = cast(array, target)
            columns[name] = array
        rows = len(frame)
        table = pa.table({name: columns.get(name, pa.nulls(rows, kind)) for name, kind in schema.items()})
        os.makedirs(self.path, exist_ok=True)
        if schema_changed:
            self._write_atomically(pa.schema(list(schema.items())).empty_table(), SCHEMA_FILE, pq)
        self._write_atomically(table, f"part-{self._next_part:06d}.parquet", pq)
        self._next_part += 1
        self.parts_written += 1
        self.rows_written += rows
        self._buffer, self._buffered = [], 0

    def _write_atomically(self, table: pa.Table, name: str, pq: Any) -> None:
        temporary = os.path.join(self.path, f".{name}.tmp")
        pq.write_table(table, temporary)
        os.replace(temporary, os.path.join(self.path, name))

    def _load(self) -> dict[str, pa.DataType]:
        """The capture's schema and next part number, from disk the first time (recording appends)."""
        if self._schema is not None:
            return self._schema
        import pyarrow.parquet as pq

        schema: dict[str, Any] = {}
        if os.path.isdir(self.path):
            numbers = [int(m.group(1)) for m in map(_PART.match, os.listdir(self.path)) if m]
            self._next_part = max(numbers, default=0) + 1
            for name in os.listdir(self.path):
                if name.startswith(".part-") and name.endswith(".tmp"):
                    os.remove(os.path.join(self.path, name))  # left by a process that died mid-write
            schema_path = os.path.join(self.path, SCHEMA_FILE)
            if os.path.exists(schema_path):
                schema = {f.name: f.type for f in pq.read_schema(schema_path)}
        self._schema = schema
        return schema

    def _rewrite_parts(self, column: str, target: pa.DataType) -> None:
        """Widen ``column`` to ``target`` in every part written so far, one atomic rename per part."""
        import pyarrow.parquet as pq

        for name in sorted(os.listdir(self.path)) if os.path.isdir(self.path) else []:
            if not _PART.match(name):
                continue
            table = pq.read_table(os.path.join(self.path, name))
            index = table.schema.get_field_index(column)
            if index < 0 or table.schema.field(index).type == target:
                continue
            table = table.set_column(index, column, cast(table.column(index).combine_chunks(), target))
            self._write_atomically(table, name, pq)
        log.info("recording %s: column %r widened to %s", self.path, column, target)


# --- values to Arrow ------------------------------------------------------------------------


def to_arrow(column: pd.Series) -> pa.Array:
    """One frame column as an Arrow array of a type every Parquet reader knows (see the module doc)."""
    import pyarrow as pa

    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        values = column if isinstance(dtype, pd.DatetimeTZDtype) else column.dt.tz_localize("UTC")
        return pa.array(values.dt.tz_convert("UTC")).cast(pa.timestamp("us", tz="UTC"), safe=False)
    if pd.api.types.is_bool_dtype(dtype):
        return pa.array(column, type=pa.bool_(), from_pandas=True)
    if pd.api.types.is_integer_dtype(dtype):
        return pa.array(column, type=pa.int64(), from_pandas=True)
    if pd.api.types.is_float_dtype(dtype):
        return pa.array(column, type=pa.float64(), from_pandas=True)
    if pd.api.types.is_string_dtype(dtype) and dtype != object:
        return pa.array(column, from_pandas=True).cast(pa.string())
    kind = pd.api.types.infer_dtype(column, skipna=True)
    try:
        if kind == "empty":
            return pa.nulls(len(column))
        if kind == "string":
            return pa.array(column, type=pa.string(), from_pandas=True)
        if kind == "bytes":
            return pa.array(column, type=pa.binary(), from_pandas=True)
        if kind == "boolean":
            return pa.array(column, type=pa.bool_(), from_pandas=True)
        if kind == "integer":
            return pa.array(column, type=pa.int64(), from_pandas=True)
        if kind in ("floating", "mixed-integer-float", "integer-na"):
            return pa.array(column, type=pa.float64(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass  # e.g. an integer past 64 bits: keep it exactly, as text
    return pa.array([_text(v) for v in column], type=pa.string())


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _text(value: Any) -> str | None:
    """A value for a text column: strings as they are, bytes decoded, anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "backslashreplace")
    return _json_value(value)


def widen(recorded: pa.DataType, array: pa.Array) -> pa.DataType:
    """The type a column recorded as ``recorded`` must have to also hold ``array``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    new = array.type
    if pa.types.is_int64(recorded) and pa.types.is_floating(new):
        valid = pc.drop_null(array)
        if len(valid) == 0 or pc.all(pc.equal(pc.floor(valid), valid)).as_py():
            if len(valid) == 0 or (pc.max(pc.abs(valid)).as_py() or 0) < 2**63:
                return recorded  # integers that pandas turned to floats because some were missing
        return pa.float64()
    if pa.types.is_floating(recorded) and pa.types.is_integer(new):
        return recorded
    return pa.string()


def cast(array: Any, target: pa.DataType) -> Any:
    """``array`` as ``target``: numbers converted, anything as text for a string column."""
    import pyarrow as pa

    if array.type == target:
        return array
    if pa.types.is_string(target):
        if pa.types.is_binary(array.type):
            return pa.array([_text(v) for v in array.to_pylist()], type=pa.string())
        return array.cast(pa.string())
    return array.cast(target, safe=False)


@atexit.register
def _close_all() -> None:
    """At interpreter exit, write out every recording still open."""
    for recorder in list(_live):
        try:
            recorder.close(timeout=10.0)
        except Exception:
            log.debug("recording: closing %s at exit failed", recorder.path, exc_info=True)
