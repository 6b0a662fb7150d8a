"""What every recorder shares: the writer threads, path claims, flushing at exit.

A recorder is a sink of a live frame (see :mod:`nbsocket.runtime.observe.recording`):
it gets every chunk of rows before the ``max_rows`` cap can drop any, and a writer
thread writes them, so the loop never waits for the disk. The formats are
:mod:`.jsonl` and :mod:`.parquet` (and :mod:`.parts` on fsspec URLs).

Recordings share their writer threads: every local recording (a Parquet folder, a
JSON Lines file) is written by one thread, the fsspec parts by a pool of
:data:`REMOTE_WRITERS` (a remote write waits for the network, so a few run at once).
A recorder always goes to the same thread, which does its work in the order it was
queued, and commits its buffered rows when they are due (``_deadline``). A thread
per recording made a process that records thousands of sockets hold as many
threads, each taking the interpreter lock in turn for every chunk: the loop
starved, and opening a thousand sockets recording to Parquet took minutes.
"""

from __future__ import annotations

import atexit
import heapq
import itertools
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

__all__ = ["REMOTE_WRITERS", "Recorder", "Writer"]

log = logging.getLogger("nbsocket")


_claims: dict[str, Recorder] = {}
_claims_lock = threading.Lock()
_live: weakref.WeakSet[Recorder] = weakref.WeakSet()

REMOTE_WRITERS = 4
"""Threads writing the fsspec parts recordings (local recordings share one thread)."""


class Writer:
    """A thread that writes for many recorders: their queued work in order, and their buffered rows when due."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.SimpleQueue[tuple[Recorder, str, Any]] = queue.SimpleQueue()
        self._due: list[tuple[float, int, Recorder]] = []  # (deadline, tie-breaker, recorder): this thread's only
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, recorder: Recorder, kind: str, item: Any) -> None:
        """Queue ``("rows", a chunk)`` or ``("flush"/"close", an Event)`` for ``recorder`` (any thread)."""
        self._queue.put((recorder, kind, item))
        thread = self._thread
        if thread is None or not thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        due = self._due
        while True:
            timeout = max(0.0, due[0][0] - time.monotonic()) if due else None
            try:
                recorder, kind, item = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._commit_due()
                continue
            recorder._serve(kind, item)
            self._schedule(recorder)
            if due and due[0][0] <= time.monotonic():  # a steady stream of chunks never keeps a due part waiting
                self._commit_due()

    def _schedule(self, recorder: Recorder) -> None:
        deadline = recorder._deadline()
        if deadline is not None and deadline != recorder._scheduled:
            recorder._scheduled = deadline
            heapq.heappush(self._due, (deadline, next(self._order), recorder))

    def _commit_due(self) -> None:
        due, now = self._due, time.monotonic()
        while due and due[0][0] <= now:
            deadline, _, recorder = heapq.heappop(due)
            if deadline != recorder._scheduled:
                continue  # superseded
            recorder._scheduled = None
            current = recorder._deadline()
            if current is not None and current <= now:
                recorder._safely("write", recorder._commit)
            self._schedule(recorder)


_local_writer = Writer("nbsocket-record")
_remote_writers = [Writer(f"nbsocket-record-remote-{i}") for i in range(REMOTE_WRITERS)]
_next_remote = itertools.count()


class Recorder:
    """Writes the chunks of rows it is given to ``path`` on a writer thread; see the module doc for the formats."""

    is_folder = False
    kind = "file"
    remote = False
    """Written through the network (fsspec parts): by one of the remote writers, not the local one."""

    def __init__(self, path: str, on_error: Callable[[str], object] | None = None) -> None:
        self.path = self._normalize(path)
        self.on_error = on_error
        self.rows_written = 0
        self.rows_lost = 0
        self.rows_queued = 0
        self._frames: list[LiveFrame] = []
        self._lock = threading.Lock()
        self._writer = _remote_writers[next(_next_remote) % REMOTE_WRITERS] if self.remote else _local_writer
        self._active = False  # claimed, and writing (False before the first rows and after close)
        self._scheduled: float | None = None  # the deadline its writer will commit it at (the writer's)
        self._reported: set[str] = set()
        self._check_path()
        self._claim()
        _live.add(self)

    # --- public ------------------------------------------------------------------

    @property
    def sink_every(self) -> float | None:
        """The longest its frames may keep rows before handing them over (None: the frame's own, a second)."""
        return None

    def attach(self, frame: LiveFrame) -> None:
        """Record every row ``frame`` gets from now on."""
        self._frames.append(frame)
        frame.add_sink(self.write, every=self.sink_every)

    def detach(self, frame: LiveFrame) -> None:
        """Stop recording ``frame`` (its pending rows are recorded first)."""
        frame.remove_sink(self.write)
        self._frames = [f for f in self._frames if f is not frame]

    def write(self, chunk: pd.DataFrame) -> None:
        """Queue a chunk of rows for writing (the live frame's sink; returns at once)."""
        if not len(chunk):
            return
        with self._lock:
            if not self._active:
                try:
                    self._claim()
                except InvalidOptionError as exc:
                    self.rows_lost += len(chunk)
                    self._report(f"{exc} ({len(chunk)} row(s) not recorded)", "claim")
                    return
                self._active = True
            self.rows_queued += len(chunk)
            self._writer.put(self, "rows", chunk)

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
            if not self._active:
                return
            if kind == "close":
                self._active = False
            done = threading.Event()
            self._writer.put(self, kind, done)
        done.wait(timeout)

    def _serve(self, kind: str, item: Any) -> None:
        """Do one queued piece of work (on the writer thread): add a chunk, or commit and set the caller's event."""
        if kind == "rows":
            self._safely("write", self._add, item)
            return
        self._safely("write", self._commit)
        if kind == "close":
            self._safely("close", self._finish)
        item.set()

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
