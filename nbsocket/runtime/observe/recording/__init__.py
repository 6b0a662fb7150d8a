"""Recording a live frame to disk as rows arrive: a folder of Parquet parts, or JSON Lines.

``connect(..., record="capture.parquet")`` (or ``.jsonl``) attaches a recorder to
the socket's live frame as a sink: it gets every chunk of rows before the
``max_rows`` cap can drop any, and its own thread writes them, so the loop never
waits for the disk. Rows are written once, in order; recording to an existing
capture appends to it. The formats: :mod:`.jsonl` and :mod:`.parquet` (pyarrow
is imported only when a Parquet recording starts).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ....errors import InvalidOptionError
from .base import Recorder
from .jsonl import JsonlRecorder

if TYPE_CHECKING:
    from ....core.frame import LiveFrame

__all__ = ["JsonlRecorder", "Recorder", "open_recorder"]


def open_recorder(
    path: str | os.PathLike[str], frame: LiveFrame | None, on_error: Callable[[str], Any] | None = None
) -> Recorder:
    """A recorder for ``path`` (``.parquet`` directory or ``.jsonl`` file), attached to ``frame``.

    Raises :class:`InvalidOptionError` before any I/O if the path cannot work.
    """
    if frame is None:
        raise InvalidOptionError(
            "record= writes the live frame's rows to disk; it needs frame=True (use a small max_rows to save memory)"
        )
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
