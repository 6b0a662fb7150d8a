"""Transcript files: load a saved ``.jsonl`` transcript, and read any transcript-like thing as entries.

A transcript is given as a path to a file saved by ``conn.save_transcript``,
a DataFrame from ``conn.transcript()`` or :func:`nbsocket.replay`, or a
:class:`~nbsocket.Connection`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import pandas as pd

from ..core import transcript_entries as core
from ..core.compare import compare as compare_entries
from ..core.transcript_entries import Entry, frame_from_entries
from ..runtime import Connection, write_transcript_file

__all__ = ["TranscriptSource", "as_entries", "compare", "load_transcript", "read_transcript_file", "write_transcript_file"]

TranscriptSource = str | os.PathLike[str] | pd.DataFrame | Connection
"""A transcript as the explore verbs take it: a saved file's path, a transcript DataFrame (``conn.transcript()``,
a replay's result) or a Connection."""


def read_transcript_file(path: str | os.PathLike[str]) -> tuple[list[Entry], dict[str, Any]]:
    """The entries and meta data of a transcript saved with ``conn.save_transcript(path)``."""
    with open(path, encoding="utf-8") as lines:
        return core.parse_jsonl(lines, os.fspath(path))


def load_transcript(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A transcript saved with ``conn.save_transcript(path)``, as the same DataFrame ``conn.transcript()`` gives."""
    entries, meta = read_transcript_file(path)
    meta.pop("format", None)
    meta.pop("version", None)
    meta["path"] = os.fspath(path)
    return frame_from_entries(entries, meta)


def as_entries(transcript: TranscriptSource) -> tuple[list[Entry], dict[str, Any]]:
    """Entries and meta data of a transcript given as a path, a DataFrame or a Connection."""
    if isinstance(transcript, (str, os.PathLike)):
        entries, meta = read_transcript_file(transcript)
        meta["path"] = os.fspath(transcript)
        return entries, meta
    return core.as_entries(transcript)


def compare(
    a: TranscriptSource, b: TranscriptSource, *, key: str | None = None, ignore: str | Iterable[str] = ()
) -> pd.DataFrame:
    """Which replies differ between transcripts ``a`` and ``b``, field by field; empty when they agree.

    ``a`` and ``b`` are paths of saved ``.jsonl`` transcripts, transcript
    DataFrames (``conn.transcript()``, the result of :func:`nbsocket.replay`)
    or Connections. Received messages are paired in order, or by the value of
    field ``key`` (e.g. ``key="id"`` when the server may answer out of order).
    JSON replies are compared field by field (nested fields and list items as
    dotted names, ``quote.bid``, ``items.0.id``); other replies as a whole.
    ``ignore`` lists field names or glob patterns to skip (``"timestamp"``,
    ``"*.ts"``; a name also skips its nested fields). One row per difference;
    ``attrs`` holds the counts.
    """
    return compare_entries(as_entries(a), as_entries(b), key=key, ignore=ignore)
