"""What every recorder shares: a writer thread per recording, path claims, flushing at exit.

A recorder is a sink of a live frame (see :mod:`nbsocket.runtime.observe.recording`):
it gets every chunk of rows before the ``max_rows`` cap can drop any, and its
own thread writes them, so the loop never waits for the disk. The formats are
:mod:`.jsonl` and :mod:`.parquet`.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from ....errors import InvalidOptionError

if TYPE_CHECKING:
    from ....core.frame import LiveFrame

__all__ = ["Recorder"]

log = logging.getLogger("nbsocket")


_claims: dict[str, Recorder] = {}
_claims_lock = threading.Lock()
_live: weakref.WeakSet[Recorder] = weakref.WeakSet()


class Recorder:
    """Writes the chunks of rows it is given to ``path`` on its own thread; see the module doc for the formats."""

    is_folder = False
    kind = "file"

    def __init__(self, path: str, on_error: Callable[[str], object] | None = None) -> None:
        self.path = self._normalize(path)
        self.on_error = on_error
        self.rows_written = 0
        self.rows_lost = 0
        self.rows_queued = 0
        self._frames: list[LiveFrame] = []
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()  # ("rows", a chunk) or ("flush"/"close", an Event)
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
                self._thread = threading.Thread(
                    target=self._run, name=f"nbsocket-record-{os.path.basename(self.path)}", daemon=True
                )
                self._thread.start()
            self.rows_queued += len(chunk)
            self._queue.put(("rows", chunk))

    def flush(self, timeout: float | None = 60.0) -> None:
        """Put every row recorded so far on disk (a Parquet part is written now); waits up to ``timeout`` seconds."""
        self._ask("flush", timeout)

    def close(self, timeout: float | None = 60.0) -> None:
        """Final flush: every row so far goes to disk and the writer thread ends. Recording resumes if rows arrive later."""
        self._ask("close", timeout)
        self._release()

    def sink_stats(self) -> dict[str, Any]:
        """What this sink did so far: rows written, rows queued for the writer thread, rows lost."""
        return {
            "kind": self.kind,
            "target": self.path,
            "received": self.rows_queued,
            "written": self.rows_written,
            "pending": max(0, self.rows_queued - self.rows_written - self.rows_lost),
            "dropped": self.rows_lost,
            "lag_s": 0.0,
            "connected": True,
        }

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

    def _safely(self, what: str, fn: Callable[..., object], *args: object) -> None:
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

    def _normalize(self, path: str) -> str:
        """The recording's path as claimed and shown (a local path made absolute)."""
        return os.path.abspath(path)

    def _check_path(self) -> None:
        parent = os.path.dirname(self.path)
        if not os.path.isdir(parent):
            raise InvalidOptionError(f"cannot record to {self.path}: the folder {parent} does not exist")
        if os.path.exists(self.path) and os.path.isdir(self.path) != self.is_folder:
            what = "a folder" if self.is_folder else "a file"
            raise InvalidOptionError(
                f"cannot record to {self.path}: a capture of this kind is {what}, and this path is not (pick a new name)"
            )

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


@atexit.register
def _close_all() -> None:
    """At interpreter exit, write out every recording still open."""
    for recorder in list(_live):
        try:
            recorder.close(timeout=10.0)
        except Exception:
            log.debug("recording: closing %s at exit failed", recorder.path, exc_info=True)
