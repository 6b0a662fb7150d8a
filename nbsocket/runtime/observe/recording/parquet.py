"""Recording a live frame as a folder of Parquet parts (``record="capture.parquet"``).

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

import importlib.util
import logging
import os
import re
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pandas as pd

from ....errors import InvalidOptionError
from .base import Recorder
from .jsonl import text_value

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "PART_ROWS",
    "PART_SECONDS",
    "SCHEMA_FILE",
    "ParquetRecorder",
    "PartBuffer",
    "arrow_columns",
    "cast",
    "import_pyarrow",
    "to_arrow",
    "widen",
]

log = logging.getLogger("nbsocket")

PART_ROWS = 100_000
PART_SECONDS = 10.0
SCHEMA_FILE = "part-000000-schema.parquet"
_PART = re.compile(r"^part-(\d{6,})\.parquet$")


def import_pyarrow() -> None:
    """Import what writing Parquet uses now, not at the first write: that may be the last flush at interpreter exit,
    when a module that registers an exit hook can no longer be imported (pyarrow's bridge to pandas imports
    ``concurrent.futures.thread``, which does; Python 3.10 refuses it then)."""
    import pyarrow
    import pyarrow.pandas_compat
    import pyarrow.parquet  # noqa: F401


class ParquetRecorder(Recorder):
    """Writes a folder of Parquet part files sharing one schema (see the module doc)."""

    is_folder = True

    def __init__(
        self,
        path: str,
        on_error: Callable[[str], object] | None = None,
        *,
        part_rows: int = PART_ROWS,
        part_seconds: float = PART_SECONDS,
    ) -> None:
        if importlib.util.find_spec("pyarrow") is None:
            raise InvalidOptionError("recording to Parquet needs pyarrow: pip install pyarrow (or record to a .jsonl file)")
        import_pyarrow()

        self.part_rows = part_rows
        self.part_seconds = part_seconds
        self.parts_written = 0
        self._buffer = PartBuffer()
        self._schema: dict[str, pa.DataType] | None = None  # loaded from disk on first write
        self._next_part = 1
        super().__init__(path, on_error)

    @property
    def sink_every(self) -> float | None:
        """Rows are written a part every ``part_seconds``: the frame hands them over twice as often, not every second
        (a chunk per socket per second is what thousands of recorded sockets could not afford)."""
        return self.part_seconds / 2

    def _deadline(self) -> float | None:
        return self._buffer.deadline(self.part_seconds)

    def _add(self, chunk: pd.DataFrame) -> None:
        self._buffer.add(chunk)
        if self._buffer.rows >= self.part_rows:
            self._commit()

    def _discard_buffer(self) -> int:
        return self._buffer.clear()

    def _commit(self) -> None:
        if not self._buffer.rows:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = self._buffer.frame()
        schema = self._load()
        columns, schema_changed = arrow_columns(frame, schema, self._rewrite_parts)
        rows = len(frame)
        table = pa.table({name: columns[name] if name in columns else _nulls(rows, kind) for name, kind in schema.items()})
        os.makedirs(self.path, exist_ok=True)
        if schema_changed:
            self._write_atomically(pa.schema(list(schema.items())).empty_table(), SCHEMA_FILE, pq)
        self._write_atomically(table, f"part-{self._next_part:06d}.parquet", pq)
        self._next_part += 1
        self.parts_written += 1
        self.rows_written += rows
        self._buffer.clear()

    def _write_atomically(self, table: pa.Table, name: str, pq: ModuleType) -> None:
        temporary = os.path.join(self.path, f".{name}.tmp")
        pq.write_table(table, temporary)
        os.replace(temporary, os.path.join(self.path, name))

    def _load(self) -> dict[str, pa.DataType]:
        """The capture's schema and next part number, from disk the first time (recording appends)."""
        if self._schema is not None:
            return self._schema
        import pyarrow.parquet as pq

        schema: dict[str, pa.DataType] = {}
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


# --- rows waiting for their part, and values to Arrow -----------------------------------------


class PartBuffer:
    """The live frame's rows waiting to be written as one part: the chunks handed over, their rows, their (shallow)
    bytes when ``count_bytes`` (measuring a chunk costs about a quarter of a millisecond: only a recorder that rolls
    parts by size asks), and when the first of them came (a part is due ``part_seconds`` after that)."""

    def __init__(self, count_bytes: bool = False) -> None:
        self.count_bytes = count_bytes
        self.chunks: list[pd.DataFrame] = []
        self.rows = 0
        self.bytes = 0
        self.since = 0.0

    def add(self, chunk: pd.DataFrame) -> None:
        """Keep ``chunk`` for the next part."""
        if not self.rows:
            self.since = time.monotonic()
        self.chunks.append(chunk)
        self.rows += len(chunk)
        if self.count_bytes:
            self.bytes += int(chunk.memory_usage(deep=False).sum())

    def deadline(self, part_seconds: float) -> float | None:
        """When the part is due (monotonic seconds), or ``None`` with nothing buffered."""
        return self.since + part_seconds if self.rows else None

    def frame(self) -> pd.DataFrame:
        """The rows buffered, as one frame."""
        return self.chunks[0] if len(self.chunks) == 1 else pd.concat(self.chunks)

    def split(self, rows: int) -> pd.DataFrame:
        """Keep the first ``rows`` rows buffered; returns the rest (to buffer again once those are written)."""
        frame = self.frame()
        self.chunks, self.rows = [frame.iloc[:rows]], min(rows, len(frame))
        return frame.iloc[rows:]

    def clear(self) -> int:
        """Forget what is buffered; returns how many rows that was."""
        rows = self.rows
        self.chunks, self.rows, self.bytes = [], 0, 0
        return rows


def arrow_columns(
    frame: pd.DataFrame,
    schema: dict[str, pa.DataType],
    widening: Callable[[str, pa.DataType], None] | None = None,
) -> tuple[dict[str, pa.Array[Any]], bool]:
    """``frame``'s columns as Arrow arrays of the types ``schema`` records, and whether ``schema`` changed.

    ``schema`` is updated in place: a column's first values give its type, a column whose values no
    longer fit is widened (``widening(column, new_type)`` is told first), and a column with no value
    yet is left out until one arrives.
    """
    columns: dict[str, pa.Array[Any]] = {}
    changed = False
    for name in frame.columns:
        key = str(name)
        array = to_arrow(frame[name])
        recorded = schema.get(key)
        if array.null_count == len(array):
            if recorded is None:
                continue  # no value yet: the column gets a type when one arrives
            array = _nulls(len(array), recorded)
        elif recorded is None:
            schema[key] = array.type
            changed = True
        elif array.type != recorded:
            target = widen(recorded, array)
            if target != recorded:
                if widening is not None:
                    widening(key, target)
                schema[key] = target
                changed = True
            array = cast(array, target)
        columns[key] = array
    return columns, changed


def to_arrow(column: pd.Series) -> pa.Array[Any]:
    """One frame column as an Arrow array of a type every Parquet reader knows (see the module doc)."""
    import pyarrow as pa

    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        values = column if isinstance(dtype, pd.DatetimeTZDtype) else column.dt.tz_localize("UTC")
        times: pa.Array[Any] = pa.array(values.dt.tz_convert("UTC"))  # (the stubs take no Series here)
        return times.cast(pa.timestamp("us", tz="UTC"), safe=False)
    if pd.api.types.is_bool_dtype(dtype):
        return pa.array(column, type=pa.bool_(), from_pandas=True)
    if pd.api.types.is_integer_dtype(dtype):
        return pa.array(column, type=pa.int64(), from_pandas=True)
    if pd.api.types.is_float_dtype(dtype):
        return pa.array(column, type=pa.float64(), from_pandas=True)
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        strings: pa.Array[Any] = pa.array(column, from_pandas=True)
        return strings.cast(pa.string())
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
    return pa.array([text_value(v) for v in column], type=pa.string())


def widen(recorded: pa.DataType, array: pa.Array[Any]) -> pa.DataType:
    """The type a column recorded as ``recorded`` must have to also hold ``array``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    new = array.type
    if pa.types.is_int64(recorded) and pa.types.is_floating(new):
        valid = pc.drop_null(array)
        if len(valid) == 0 or (pc.all(pc.equal(pc.floor(valid), valid)).as_py() and (pc.max(pc.abs(valid)).as_py() or 0) < 2**63):
            return recorded  # integers that pandas turned to floats because some were missing
        return pa.float64()
    if pa.types.is_floating(recorded) and pa.types.is_integer(new):
        return recorded
    return pa.string()


def cast(array: pa.Array[Any], target: pa.DataType) -> pa.Array[Any]:
    """``array`` as ``target``: numbers converted, anything as text for a string column."""
    import pyarrow as pa

    if array.type == target:
        return array
    if pa.types.is_string(target):
        if pa.types.is_binary(array.type):
            return pa.array([text_value(v) for v in array.to_pylist()], type=pa.string())
        return array.cast(pa.string())
    return array.cast(target, safe=False)


def _nulls(count: int, kind: pa.DataType) -> pa.Array[Any]:
    """``count`` nulls of type ``kind``."""
    import pyarrow as pa

    nulls: pa.Array[Any] = pa.nulls(count, kind)  # type: ignore[call-overload]  # the stubs list nulls() per concrete type
    return nulls
