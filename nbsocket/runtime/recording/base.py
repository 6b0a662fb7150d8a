"""Recording a live frame to disk as rows arrive: a folder of Parquet parts, or JSON Lines.

``connect(..., record="capture.parquet")`` (or ``.jsonl``) attaches a recorder to
the socket's live frame as a sink: it gets every chunk of rows before the
``max_rows`` cap can drop any, and its own thread writes them, so the loop never
waits for the disk. Rows are written once, in order; recording to an existing
capture appends to it.

JSON Lines: one object per row, appended and flushed for every batch (at least
once a second). ISO 8601 UTC timestamps, exact floats (``NaN``/``Infinity`` kept),
integers past 64 bits as digit strings, base64 bytes, missing values left out. ``pd.read_json(path, lines=True, precise_float=True)``, DuckDB
``read_json_auto('capture.jsonl')``, Spark ``spark.read.json(path)``.

Parquet: see :mod:`nbsocket.runtime.recording.parquet`.
"""

from __future__ import annotations

import atexit
import base64
import json
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from math import isfinite
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ...errors import InvalidOptionError

if TYPE_CHECKING:

    from ...core.frame import LiveFrame

log = logging.getLogger("nbsocket")


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
        from .parquet import ParquetRecorder  # pyarrow is only needed for Parquet

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
    round-trip form; ``NaN``, ``Infinity`` and ``-Infinity`` as those tokens,
    which ``pd.read_json`` reads; a float column's gaps are NaN there too),
    integers beyond 64 bits are strings of their exact digits, bytes are base64 text.
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
        return [None if _missing(v) else _json_int(v) for v in values]
    if pd.api.types.is_float_dtype(dtype):
        return [_json_float(v) for v in values]
    if pd.api.types.is_string_dtype(dtype) and dtype != object:
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


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _text(value: Any) -> str | None:
    """A value for a text column: strings as they are, bytes decoded, anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "backslashreplace")
    if type(value) is int:
        return str(value)  # its digits, however long
    return _json_value(value)


@atexit.register
def _close_all() -> None:
    """At interpreter exit, write out every recording still open."""
    for recorder in list(_live):
        try:
            recorder.close(timeout=10.0)
        except Exception:
            log.debug("recording: closing %s at exit failed", recorder.path, exc_info=True)
