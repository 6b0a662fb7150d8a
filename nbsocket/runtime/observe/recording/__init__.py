"""Recording a socket as messages arrive: to a local folder of Parquet parts or JSON Lines, to Parquet parts on
any fsspec URL (:mod:`.parts`), or to NATS JetStream (:mod:`.jetstream`).

``connect(..., record="capture.parquet")`` (or ``.jsonl``) attaches a recorder to
the socket's live frame as a sink: it gets every chunk of rows before the
``max_rows`` cap can drop any, and its own thread writes them, so the loop never
waits for the disk. Rows are written once, in order; recording to an existing
capture appends to it. The formats: :mod:`.jsonl` and :mod:`.parquet` (pyarrow
is imported only when a Parquet recording starts). ``record="nats://HOST:PORT/feeds.{name}"`` publishes
every message as received to JetStream instead (nats-py is imported then), and ``record="s3://bucket/feeds/"``
writes Parquet parts through fsspec. Every kind is a :class:`Recording`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ....core.streams import parse_nats_url, parse_parts_url, record_kind
from ....errors import InvalidOptionError
from .base import Recorder
from .jsonl import JsonlRecorder
from .runs import process_run

if TYPE_CHECKING:
    from ....core.frame import LiveFrame

__all__ = ["JsonlRecorder", "Recorder", "Recording", "open_recorder", "process_run", "stop_stream_publishers"]


class Recording(Protocol):
    """What a connection asks of its recording, whatever its kind."""

    path: str
    """Where it records (secrets masked)."""
    kind: str

    def flush(self, timeout: float | None = 60.0) -> bool | None:
        """Write out (or publish) everything received so far, waiting up to ``timeout`` seconds."""

    def close(self, timeout: float | None = 60.0) -> None:
        """Final flush at disconnect."""

    def sink_stats(self) -> dict[str, Any]:
        """Counters for status and metrics: ``received``, ``written``, ``pending``, ``dropped``, ``lag_s``."""


def open_recorder(
    path: str | os.PathLike[str],
    frame: LiveFrame | None,
    on_error: Callable[[str], object] | None = None,
    *,
    socket: str = "",
    content_type: str = "application/octet-stream",
    observe: Callable[[object], None] | None = None,
) -> Recording:
    """A recording for ``path``: a ``.parquet`` folder or ``.jsonl`` file, attached to ``frame``; an fsspec URL
    (Parquet parts of ``socket``, attached to ``frame``); or ``nats://...`` (JetStream, handed to ``observe`` to see
    every batch as received).

    Raises :class:`InvalidOptionError` before any I/O if the path cannot work.
    """
    text = os.fspath(path)
    kind = record_kind(text)
    if kind == "nats":
        if observe is None:
            raise InvalidOptionError("record='nats://...' needs the socket's observers (it is opened by connect)")
        from .jetstream import JetStreamRecorder  # nats-py is only needed for JetStream

        stream = JetStreamRecorder(parse_nats_url(text), socket, content_type, on_error)
        observe(stream)
        return stream
    if frame is None:
        raise InvalidOptionError(
            "record= writes the live frame's rows; it needs frame=True (use a small max_rows to save memory), "
            "or record to nats://... (JetStream takes the messages as received)"
        )
    if kind == "parts":
        from .parts import PartsRecorder  # fsspec and pyarrow are only needed for parts

        parts = PartsRecorder(parse_parts_url(text), socket or "socket", on_error)
        parts.attach(frame)
        return parts
    suffix = os.path.splitext(text.rstrip("/"))[1].lower()
    if suffix == ".parquet":
        from .parquet import ParquetRecorder  # pyarrow is only needed for Parquet

        recorder: Recorder = ParquetRecorder(text, on_error)
    elif suffix in (".jsonl", ".ndjson"):
        recorder = JsonlRecorder(text, on_error)
    else:
        raise InvalidOptionError(f"record= must name a .parquet or .jsonl path, not {text!r} (e.g. record='capture.parquet')")
    recorder.attach(frame)
    return recorder


def stop_stream_publishers(timeout: float = 10.0) -> None:
    """Publish what every JetStream recording still holds (up to ``timeout`` seconds per server) and close the NATS
    connections (nothing to do, and nothing imported, when no socket recorded to JetStream)."""
    jetstream = sys.modules.get(__name__ + ".jetstream")
    if jetstream is not None:
        jetstream.stop_publishers(timeout)
