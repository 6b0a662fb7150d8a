"""JSON Lines recordings: one object per row, appended and flushed for every batch.

At least once a second. ISO 8601 UTC timestamps, exact floats (``NaN`` and
``Infinity`` kept), integers past 64 bits as digit strings, base64 bytes,
missing values left out. ``pd.read_json(path, lines=True, precise_float=True)``,
DuckDB ``read_json_auto('capture.jsonl')``, Spark ``spark.read.json(path)``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from json.encoder import encode_basestring
from math import isfinite
from typing import Any, TextIO

import numpy as np
import pandas as pd

from .base import Recorder

__all__ = ["JsonlRecorder", "jsonl_text", "text_value"]


class JsonlRecorder(Recorder):
    """Appends every row to a JSON Lines file, flushing each batch."""

    def __init__(self, path: str, on_error: Callable[[str], object] | None = None) -> None:
        self._file: TextIO | None = None
        super().__init__(path, on_error)

    def _add(self, chunk: pd.DataFrame) -> None:
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115 (open until _finish)
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
    round-trip form; ``NaN``, ``Infinity`` and ``-Infinity`` as those tokens,
    which ``pd.read_json`` reads; a float column's gaps are NaN there too),
    integers beyond 64 bits are strings of their exact digits, bytes are base64 text.
    """
    keys = [encode_basestring(str(name)) + ":" for name in chunk.columns]
    columns = [_json_values(chunk[name]) for name in chunk.columns]
    lines = [
        "{" + ",".join([k + v for k, v in zip(keys, values, strict=True) if v is not None]) + "}"
        for values in zip(*columns, strict=True)
    ]
    return "\n".join(lines) + "\n"


def _json_values(column: pd.Series) -> list[str | None]:
    """Each value of ``column`` as JSON text (``None`` for a missing value)."""
    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        return _iso_times(column)
    values = column.tolist()
    if pd.api.types.is_bool_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return [None if _missing(v) else ("true" if v else "false") for v in values]
    if pd.api.types.is_integer_dtype(dtype):
        return [None if _missing(v) else _json_int(v) for v in values]
    if pd.api.types.is_float_dtype(dtype):
        return [_json_float(v) for v in values]
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return [encode_basestring(v) if isinstance(v, str) else None for v in values]
    return [_json_value(v) for v in values]


def _json_value(value: Any) -> str | None:
    if isinstance(value, str):
        return encode_basestring(value)
    if isinstance(value, float) and value != value:
        return "NaN"
    if _missing(value):
        return None
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return _json_int(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return '"' + base64.b64encode(bytes(value)).decode("ascii") + '"'
    try:
        return json.dumps(value, ensure_ascii=False, default=_json_default, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return encode_basestring(str(value))


def _json_int(value: int) -> str:
    """An integer as JSON: a number within 64 bits (what readers take), else its exact digits as a string."""
    return str(value) if -(2**63) <= value < 2**63 else '"' + str(value) + '"'


def _json_float(value: float) -> str:
    """A float as JSON: exact, with ``NaN``, ``Infinity`` and ``-Infinity`` as pandas and Spark read them."""
    if isfinite(value):
        return repr(value)
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _json_default(value: object) -> str:
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
    prefix = dict(zip(distinct.tolist(), pd.to_datetime(distinct, unit="s").strftime("%Y-%m-%dT%H:%M:%S"), strict=True))
    return [
        None if gone else f'"{prefix[s]}.{f:06d}Z"'
        for s, f, gone in zip(seconds.tolist(), fractions.tolist(), missing.tolist(), strict=True)
    ]


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def text_value(value: Any) -> str | None:
    """A value for a text column: strings as they are, bytes decoded, anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "backslashreplace")
    if type(value) is int:
        return str(value)  # its digits, however long
    return _json_value(value)
