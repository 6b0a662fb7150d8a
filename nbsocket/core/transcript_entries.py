"""Transcripts: every message a socket sends and receives, and its connection events, in order.

This module is the pure part: the :class:`Entry` record, the DataFrame built
from entries (:func:`frame_from_entries`, which parses bodies with the
socket's codec) and the JSON Lines text of a saved transcript
(:func:`jsonl_lines`, :func:`parse_jsonl`). The runtime's recorder appends
entries on the hot path; files are written and read by the layers above.

An entry is ``(ts_ns, direction, kind, seq, body, error, code, reason, info)``:
``direction`` is ``sent``, ``received`` or ``event``; ``kind`` is ``text`` or
``binary`` for messages and ``open``, ``reconnect``, ``close``, ``reset``,
``error`` or ``failed`` for events.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple, cast

import pandas as pd

from ..errors import TranscriptFormatError
from .codecs import get_codec
from .events import utf8_size
from .flatten import message_fields

SENT, RECEIVED, EVENT = "sent", "received", "event"
TEXT, BINARY = "text", "binary"
COLUMNS = ("timestamp", "direction", "seq", "kind", "size", "body", "error", "code", "reason", "info")
"""The fixed transcript columns; parsed message fields follow them (a field named like one gets a ``data.`` prefix)."""

__all__ = [
    "BINARY",
    "COLUMNS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ENTRIES",
    "EVENT",
    "RECEIVED",
    "SENT",
    "TEXT",
    "Entry",
    "as_entries",
    "body_size",
    "entries_from_frame",
    "frame_from_entries",
    "jsonl_lines",
    "new_entry",
    "parse_jsonl",
]

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_BYTES = 32 * 2**20
FORMAT = "nbsocket-transcript"
FORMAT_VERSION = 1


class Entry(NamedTuple):
    """One transcript entry: a message sent or received, or a connection event."""

    ts_ns: int
    direction: str
    kind: str | None
    seq: int | None
    body: str | bytes | None
    error: str | None = None
    code: int | None = None
    reason: str | None = None
    info: Any = None


new_entry = tuple.__new__
"""``new_entry(Entry, (nine values))``: an :class:`Entry` without the keyword machinery (the recorder's hot path)."""


# --- DataFrames


# --- DataFrames ----------------------------------------------------------------------


def body_size(body: str | bytes | None) -> int | None:
    """Size of a body in bytes (UTF-8 for text)."""
    return None if body is None else utf8_size(body)


def _fields(entry: Entry, decode: Any) -> dict[str, Any]:
    direction, body = entry[1], entry[4]
    error = entry[5]
    if direction == EVENT or body is None:
        return {}
    if direction == RECEIVED and error is not None:
        return {}
    try:
        data = decode(body)
    except Exception:
        return {} if direction == SENT else {"data": body}
    fields = message_fields(data, None, body)
    return {("data." + k if k in COLUMNS else k): v for k, v in fields.items()}


def frame_from_entries(entries: Iterable[Entry], meta: dict[str, Any] | None = None, *, parse: bool = True) -> pd.DataFrame:
    """The transcript DataFrame of ``entries``: the fixed :data:`COLUMNS`, then parsed fields.

    Bodies are parsed with the codec of ``meta["content_type"]`` (JSON when it
    is unknown here); ``meta`` also lands in ``DataFrame.attrs``.
    """
    meta = dict(meta or {})
    decode = _decoder(meta.get("content_type"))
    rows = []
    for entry in entries:
        row = {
            "timestamp": entry[0],
            "direction": entry[1],
            "seq": entry[3],
            "kind": entry[2],
            "size": body_size(entry[4]),
            "body": entry[4],
            "error": entry[5],
            "code": entry[6],
            "reason": entry[7],
            "info": entry[8],
        }
        if parse:
            row.update(_fields(entry, decode))
        rows.append(row)
    frame = pd.DataFrame.from_records(rows, columns=None if rows else list(COLUMNS))
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    fields = [c for c in frame.columns if c not in COLUMNS]
    frame = frame[list(COLUMNS) + fields]
    frame["timestamp"] = pd.to_datetime(frame["timestamp"].astype("int64"), unit="ns", utc=True)
    for column in ("seq", "size", "code"):
        frame[column] = frame[column].astype("Int64")
    frame.attrs.update(meta)
    return frame


def _decoder(content_type: str | None) -> Any:
    try:
        return get_codec(content_type).decode
    except ValueError:
        return get_codec("application/json").decode


def entries_from_frame(frame: pd.DataFrame) -> list[Entry]:
    """The entries of a transcript DataFrame (the inverse of :func:`frame_from_entries`)."""
    if frame.empty:
        return []
    stamps = pd.DatetimeIndex(frame["timestamp"]).as_unit("ns").asi8  # type: ignore[attr-defined]  # missing from pandas-stubs
    columns: list[list[Any]] = [frame[c].tolist() if c in frame.columns else [None] * len(frame) for c in COLUMNS[1:]]
    direction, seq, kind, _size, body, error, code, reason, info = columns
    out = []
    for i, ts in enumerate(stamps):
        out.append(
            Entry(
                int(ts),
                direction[i],
                kind[i],
                _int(seq[i]),
                _none(body[i]),
                _none(error[i]),
                _int(code[i]),
                _none(reason[i]),
                _none(info[i]),
            )
        )
    return out


def _none(value: Any) -> Any:
    return None if value is None or value is pd.NA or (isinstance(value, float) and value != value) else value


def _int(value: Any) -> int | None:
    value = _none(value)
    return None if value is None else int(value)


# --- JSON Lines ------------------------------------------------------------------------


def jsonl_lines(entries: Iterable[Entry], meta: dict[str, Any] | None = None) -> Iterator[str]:
    """The lines of a saved transcript: a header (``"direction": "meta"``: socket, redacted URL, content
    type), then one line per entry. Binary bodies are base64 with ``"encoding": "base64"``."""
    header = {
        "direction": "meta",
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "saved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        **{k: v for k, v in (meta or {}).items() if _jsonable(v)},
    }
    yield json.dumps(header) + "\n"
    for entry in entries:
        yield json.dumps(_entry_record(entry), ensure_ascii=False) + "\n"


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _entry_record(entry: Entry) -> dict[str, Any]:
    ts, direction, kind, seq, body, error, code, reason, info = entry
    seconds, ns = divmod(ts, 1_000_000_000)
    record: dict[str, Any] = {
        "time": _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ns:09d}Z",
        "ts_ns": ts,
        "direction": direction,
        "kind": kind,
    }
    if seq is not None:
        record["seq"] = seq
    if isinstance(body, bytes):
        record["body"] = base64.b64encode(body).decode("ascii")
        record["encoding"] = "base64"
    elif body is not None:
        record["body"] = body
    for name, value in (("error", error), ("code", code), ("reason", reason), ("info", info)):
        if value is not None:
            record[name] = value
    return record


def parse_jsonl(lines: Iterable[str], source: str = "transcript") -> tuple[list[Entry], dict[str, Any]]:
    """The entries and meta data of a saved transcript's lines; :class:`TranscriptFormatError` names what is wrong."""
    entries: list[Entry] = []
    meta: dict[str, Any] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TranscriptFormatError(f"{source} line {number} is not JSON ({exc.msg}); is it a saved transcript?") from None
        direction = record.get("direction") if isinstance(record, dict) else None
        if direction not in (SENT, RECEIVED, EVENT, "meta") or (direction != "meta" and not isinstance(record.get("ts_ns"), int)):
            raise TranscriptFormatError(
                f"{source} line {number} is not a transcript entry (it has no 'ts_ns' and 'direction'); "
                "is it a saved transcript (conn.save_transcript) and not a recording or other JSON Lines file?"
            )
        if direction == "meta":
            meta = {k: v for k, v in record.items() if k != "direction"}
            continue
        body = record.get("body")
        if body is not None and record.get("encoding") == "base64":
            body = base64.b64decode(body)
        entries.append(
            Entry(
                record["ts_ns"],
                direction,
                record.get("kind"),
                record.get("seq"),
                body,
                record.get("error"),
                record.get("code"),
                record.get("reason"),
                record.get("info"),
            )
        )
    return entries, meta


def as_entries(transcript: Any) -> tuple[list[Entry], dict[str, Any]]:
    """Entries and meta data of a transcript given as a DataFrame or an object with ``transcript_entries()``."""
    if isinstance(transcript, pd.DataFrame):
        return entries_from_frame(transcript), cast("dict[str, Any]", dict(transcript.attrs))
    entries_of = getattr(transcript, "transcript_entries", None)
    if callable(entries_of):
        entries_and_meta: tuple[list[Entry], dict[str, Any]] = entries_of()
        return entries_and_meta
    raise TranscriptFormatError(
        f"a transcript is a DataFrame from conn.transcript() or nbs.replay(), a path to a saved .jsonl "
        f"transcript, or a Connection; not {type(transcript).__name__}"
    )
