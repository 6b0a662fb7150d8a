"""Transcripts: every frame a socket sends and receives, and its connection events, in order.

A :class:`TranscriptRecorder` is a connection observer. On the hot path it
appends one small tuple per frame to a bounded deque (no parsing, no
pandas); the DataFrame is built only when asked for, by
:func:`frame_from_entries`, which parses bodies with the socket's codec.
Transcripts are saved as JSON Lines (:func:`write_jsonl`) and read back with
:func:`load_transcript`, so a saved run can be replayed and compared.

An entry is a tuple ``(ts_ns, direction, kind, seq, body, error, code, reason, info)``:
``direction`` is ``sent``, ``received`` or ``event``; ``kind`` is ``text`` or
``binary`` for frames and ``open``, ``reconnect``, ``close``, ``reset``,
``error`` or ``failed`` for events.
"""

from __future__ import annotations

import base64
import collections
import datetime as _dt
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from .codecs import get_codec
from .errors import TranscriptFormatError
from .flatten import message_fields

if TYPE_CHECKING:
    from .connection import Connection
    from .outbox import Outgoing

SENT, RECEIVED, EVENT = "sent", "received", "event"
TEXT, BINARY = "text", "binary"
COLUMNS = ("timestamp", "direction", "seq", "kind", "size", "body", "error", "code", "reason", "info")
"""The fixed transcript columns; parsed message fields follow them (a field named like one gets a ``data.`` prefix)."""

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_BYTES = 32 * 2**20
FORMAT = "nbsocket-transcript"
FORMAT_VERSION = 1

Entry = tuple  # (ts_ns, direction, kind, seq, body, error, code, reason, info)


class TranscriptRecorder:
    """Records a connection's frames and events into a bounded deque, oldest dropped first.

    ``max_entries`` bounds the number of entries and ``max_bytes`` the bodies
    they hold (``None``: no bound); past a bound the oldest tenth is dropped
    at once. Frames are recorded on the loop thread.
    """

    def __init__(self, conn: Connection, max_entries: int | None = DEFAULT_MAX_ENTRIES, max_bytes: int | None = DEFAULT_MAX_BYTES) -> None:
        self.conn = conn
        self._entries: collections.deque[Entry] = collections.deque()
        self._bytes = 0
        self.dropped = 0
        self.received = 0
        self.sent = 0
        self._reconnects_seen = conn.stats.reconnects
        self.set_bounds(max_entries, max_bytes)

    def set_bounds(self, max_entries: int | None, max_bytes: int | None) -> None:
        """Change the bounds (takes effect with the next entry)."""
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._limit = max_entries if max_entries is not None else sys.maxsize
        self._byte_limit = max_bytes if max_bytes is not None else sys.maxsize

    # --- observer hooks (loop thread, except errors raised by handlers) ------------

    def on_frame(self, ts_ns: int, seq: int, body: str | bytes, is_binary: bool, error: str | None) -> None:
        entries = self._entries
        entries.append((ts_ns, RECEIVED, BINARY if is_binary else TEXT, seq, body, error))
        self.received += 1
        self._bytes += len(body)
        if len(entries) > self._limit or self._bytes > self._byte_limit:
            self._evict()

    def on_sent(self, item: Outgoing, ts_ns: int) -> None:
        body = item.payload
        entries = self._entries
        entries.append((ts_ns, SENT, TEXT if body.__class__ is str else BINARY, self.conn.stats.messages_out, body, None))
        self.sent += 1
        self._bytes += len(body)
        if len(entries) > self._limit or self._bytes > self._byte_limit:
            self._evict()

    def on_lifecycle(self, kind: str, info: dict[str, Any]) -> None:
        ts = time.time_ns()
        if kind == "open":
            reconnects = self.conn.stats.reconnects
            kind = "reconnect" if reconnects > self._reconnects_seen else "open"
            self._reconnects_seen = reconnects
            detail = info.get("url")
            if info.get("subprotocol"):
                detail = f"{detail} (subprotocol {info['subprotocol']})"
            entry: Entry = (ts, EVENT, kind, None, None, None, None, None, detail)
        elif kind == "close":
            entry = (ts, EVENT, "close", None, None, None, info.get("code"), info.get("reason") or "", None)
        elif kind == "error":
            entry = (ts, EVENT, "error", None, None, f"{info.get('error')}: {info.get('message')}", None, None, info.get("where"))
        elif kind == "reset":
            entry = (ts, EVENT, "reset", None, None, None, None, None, info.get("url"))
        elif kind == "state" and info.get("state") == "failed":
            entry = (ts, EVENT, "failed", None, None, None, None, None, None)
        else:
            return
        self._entries.append(entry)
        if len(self._entries) > self._limit:
            self._evict()

    def _evict(self) -> None:
        """Drop the oldest entries down to 90% of the bounds, so that eviction is not paid on every message."""
        entries = self._entries
        limit = self._limit - self._limit // 10
        byte_limit = self._byte_limit - self._byte_limit // 10
        while entries and (len(entries) > limit or self._bytes > byte_limit):
            body = entries.popleft()[4]
            if body is not None:
                self._bytes -= len(body)
            self.dropped += 1

    def trim(self) -> None:
        """Apply the bounds now (after they were lowered)."""
        if len(self._entries) > self._limit or self._bytes > self._byte_limit:
            self._evict()

    # --- reading (any thread) ------------------------------------------------------

    def entries(self) -> list[Entry]:
        """A copy of the entries kept now, oldest first."""
        for _ in range(100):
            try:
                return list(self._entries)
            except RuntimeError:  # appended to while copying; try again
                continue
        return list(self._entries.copy())

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry kept (counters go on)."""
        self._entries.clear()
        self._bytes = 0

    def meta(self) -> dict[str, Any]:
        """What a saved transcript says about its socket."""
        conn = self.conn
        return {"socket": conn.name, "url": conn.url, "content_type": conn.content_type, "dropped": self.dropped}


# --- DataFrames ----------------------------------------------------------------------

def body_size(body: str | bytes | None) -> int | None:
    """Size of a body in bytes (UTF-8 for text)."""
    if body is None:
        return None
    if isinstance(body, str):
        return len(body) if body.isascii() else len(body.encode("utf-8", "surrogatepass"))
    return len(body)


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
        entry = _padded(entry)
        row = {
            "timestamp": entry[0], "direction": entry[1], "seq": entry[3], "kind": entry[2],
            "size": body_size(entry[4]), "body": entry[4], "error": entry[5], "code": entry[6],
            "reason": entry[7], "info": entry[8],
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


def _padded(entry: Entry) -> Entry:
    return entry if len(entry) >= 9 else entry + (None,) * (9 - len(entry))


def _decoder(content_type: str | None) -> Any:
    try:
        return get_codec(content_type).decode
    except ValueError:
        return get_codec("application/json").decode


def entries_from_frame(frame: pd.DataFrame) -> list[Entry]:
    """The entries of a transcript DataFrame (the inverse of :func:`frame_from_entries`)."""
    if frame.empty:
        return []
    stamps = pd.DatetimeIndex(frame["timestamp"]).as_unit("ns").asi8
    columns = [frame[c].tolist() if c in frame.columns else [None] * len(frame) for c in COLUMNS[1:]]
    direction, seq, kind, _size, body, error, code, reason, info = columns
    out = []
    for i, ts in enumerate(stamps):
        out.append((
            int(ts), direction[i], kind[i], _int(seq[i]), _none(body[i]), _none(error[i]),
            _int(code[i]), _none(reason[i]), _none(info[i]),
        ))
    return out


def _none(value: Any) -> Any:
    return None if value is None or value is pd.NA or (isinstance(value, float) and value != value) else value


def _int(value: Any) -> int | None:
    value = _none(value)
    return None if value is None else int(value)


# --- JSON Lines ------------------------------------------------------------------------

def write_jsonl(transcript: pd.DataFrame | Sequence[Entry], path: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> int:
    """Write a transcript (a DataFrame or entries) to ``path`` as JSON Lines; returns the entries written.

    The first line describes the transcript (``"direction": "meta"``: socket,
    redacted URL, content type); then one line per entry. Binary bodies are
    base64 with ``"encoding": "base64"``.
    """
    if isinstance(transcript, pd.DataFrame):
        meta = {**transcript.attrs, **(meta or {})}
        entries = entries_from_frame(transcript)
    else:
        entries = list(transcript)
        meta = dict(meta or {})
    header = {
        "direction": "meta", "format": FORMAT, "version": FORMAT_VERSION,
        "saved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        **{k: v for k, v in meta.items() if _jsonable(v)},
    }
    with open(path, "w", encoding="utf-8") as out:
        out.write(json.dumps(header) + "\n")
        for entry in entries:
            out.write(json.dumps(_entry_record(_padded(entry)), ensure_ascii=False) + "\n")
    return len(entries)


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _entry_record(entry: Entry) -> dict[str, Any]:
    ts, direction, kind, seq, body, error, code, reason, info = entry
    seconds, ns = divmod(ts, 1_000_000_000)
    record: dict[str, Any] = {
        "time": _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ns:09d}Z",
        "ts_ns": ts, "direction": direction, "kind": kind,
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


def read_jsonl(path: str | os.PathLike[str]) -> tuple[list[Entry], dict[str, Any]]:
    """The entries and the meta data of a transcript saved with :func:`write_jsonl`."""
    entries: list[Entry] = []
    meta: dict[str, Any] = {}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TranscriptFormatError(f"{os.fspath(path)} line {number} is not JSON ({exc.msg}); is it a saved transcript?") from None
            if not isinstance(record, dict) or (record.get("direction") != "meta" and not {"ts_ns", "direction"} <= record.keys()):
                raise TranscriptFormatError(
                    f"{os.fspath(path)} line {number} is not a transcript entry (it has no 'ts_ns' and 'direction'); "
                    "is it a saved transcript (conn.save_transcript) and not a recording or other JSON Lines file?"
                )
            if record.get("direction") == "meta":
                meta = {k: v for k, v in record.items() if k not in ("direction",)}
                continue
            body = record.get("body")
            if body is not None and record.get("encoding") == "base64":
                body = base64.b64decode(body)
            entries.append((
                int(record["ts_ns"]), record["direction"], record.get("kind"), record.get("seq"), body,
                record.get("error"), record.get("code"), record.get("reason"), record.get("info"),
            ))
    return entries, meta


def load_transcript(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A transcript saved with ``conn.save_transcript(path)``, as the same DataFrame ``conn.transcript()`` gives."""
    entries, meta = read_jsonl(path)
    meta.pop("format", None)
    meta.pop("version", None)
    meta["path"] = os.fspath(path)
    return frame_from_entries(entries, meta)


def as_entries(transcript: Any) -> tuple[list[Entry], dict[str, Any]]:
    """Entries and meta data of a transcript given as a DataFrame, a path, or a :class:`Connection`."""
    if isinstance(transcript, pd.DataFrame):
        return entries_from_frame(transcript), dict(transcript.attrs)
    if isinstance(transcript, (str, os.PathLike)):
        entries, meta = read_jsonl(transcript)
        meta["path"] = os.fspath(transcript)
        return entries, meta
    recorder = getattr(transcript, "_transcript", None)
    if isinstance(recorder, TranscriptRecorder):
        return recorder.entries(), recorder.meta()
    raise TypeError(
        f"a transcript is a DataFrame from conn.transcript() or nbs.replay(), a path to a saved .jsonl "
        f"transcript, or a Connection; not {type(transcript).__name__}"
    )
