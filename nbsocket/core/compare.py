"""Comparing the replies of two transcripts field by field (e.g. a recorded run and its replay)."""

from __future__ import annotations

import fnmatch
import itertools
from collections.abc import Iterable
from typing import Any

import pandas as pd

from .codecs import get_codec
from .match import MISSING, field
from .transcript_entries import RECEIVED, as_entries

__all__ = ["COLUMNS", "compare", "is_ignored", "leaf_fields", "leaves", "same_value"]

COLUMNS = ["reply", "seq_a", "seq_b", "field", "a", "b", "change"]
"""``reply`` is the reply's position (or its ``key`` value); ``change`` is ``changed``, ``only in a``, ``only in b``,
``reply only in a`` or ``reply only in b``."""


def compare(a: Any, b: Any, *, key: str | None = None, ignore: str | Iterable[str] = ()) -> pd.DataFrame:
    """Which replies differ between transcripts ``a`` and ``b``, field by field; empty when they agree.

    ``a`` and ``b`` are transcript DataFrames (``conn.transcript()``, the
    result of :func:`nbsocket.replay`), Connections, or ``(entries, meta)``
    pairs (:func:`nbsocket.compare` also takes paths of saved ``.jsonl`` files).
    Received messages are paired in order, or by the value of field ``key``
    (e.g. ``key="id"`` when the server may answer out of order).
    JSON replies are compared field by field (nested fields and list items as
    dotted names, ``quote.bid``, ``items.0.id``); other replies as a whole.
    ``ignore`` lists field names or glob patterns to skip (``"timestamp"``,
    ``"*.ts"``; a name also skips its nested fields). One row per difference:
    :data:`COLUMNS`; ``attrs`` holds the counts.
    """
    patterns = (ignore,) if isinstance(ignore, str) else tuple(ignore)
    replies_a = _replies(a)
    replies_b = _replies(b)
    pairs = _pair(replies_a, replies_b, key)
    rows: list[dict[str, Any]] = []
    differing = 0
    for label, ra, rb in pairs:
        before = len(rows)
        if ra is None or rb is None:
            rows.append(
                {
                    "reply": label,
                    "seq_a": ra and ra[0],
                    "seq_b": rb and rb[0],
                    "field": None,
                    "a": ra[1] if ra else None,
                    "b": rb[1] if rb else None,
                    "change": "reply only in a" if ra is not None else "reply only in b",
                }
            )
        else:
            rows.extend(_field_rows(label, ra, rb, patterns))
        differing += len(rows) > before
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("seq_a", "seq_b"):
        frame[column] = frame[column].astype("Int64")
    frame.attrs.update(
        {
            "replies_a": len(replies_a),
            "replies_b": len(replies_b),
            "compared": len(pairs),
            "differing": differing,
            "key": key,
            "ignore": list(patterns),
        }
    )
    return frame


Reply = tuple[int | None, str | bytes | None, Any]
"""A received message: its ``seq``, its body and the body decoded (the body itself when it does not decode)."""


def _replies(transcript: Any) -> list[Reply]:
    entries, meta = transcript if isinstance(transcript, tuple) else as_entries(transcript)
    try:
        decode = get_codec(meta.get("content_type")).decode
    except ValueError:
        decode = get_codec("application/json").decode
    out = []
    for entry in entries:
        if entry[1] != RECEIVED:
            continue
        body = entry[4]
        try:
            data = decode(body)
        except Exception:
            data = body
        out.append((entry[3], body, data))
    return out


def _pair(replies_a: list[Reply], replies_b: list[Reply], key: str | None) -> list[tuple[Any, Reply | None, Reply | None]]:
    if key is None:
        return [(i, ra, rb) for i, (ra, rb) in enumerate(itertools.zip_longest(replies_a, replies_b))]
    groups_b: dict[Any, list[Reply]] = {}
    for reply in replies_b:
        groups_b.setdefault(_key_of(reply, key), []).append(reply)
    pairs: list[tuple[Any, Reply | None, Reply | None]] = []
    for reply in replies_a:
        value = _key_of(reply, key)
        matches = groups_b.get(value)
        other = matches.pop(0) if matches else None
        pairs.append((None if value is MISSING else value, reply, other))
    for value, rest in groups_b.items():
        pairs.extend((None if value is MISSING else value, None, reply) for reply in rest)
    return pairs


def _key_of(reply: Reply, key: str) -> Any:
    value = field(reply[2], key)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _field_rows(label: Any, ra: Reply, rb: Reply, patterns: tuple[str, ...]) -> list[dict[str, Any]]:
    fields_a, fields_b = leaf_fields(ra[2]), leaf_fields(rb[2])
    rows = []
    for name in {**fields_a, **fields_b}:
        if is_ignored(name, patterns):
            continue
        va, vb = fields_a.get(name, MISSING), fields_b.get(name, MISSING)
        if va is MISSING:
            change = "only in b"
        elif vb is MISSING:
            change = "only in a"
        elif same_value(va, vb):
            continue
        else:
            change = "changed"
        rows.append(
            {
                "reply": label,
                "seq_a": ra[0],
                "seq_b": rb[0],
                "field": name,
                "a": None if va is MISSING else va,
                "b": None if vb is MISSING else vb,
                "change": change,
            }
        )
    return rows


def leaves(data: Any) -> list[tuple[tuple[Any, ...], Any]]:
    """The leaf values of parsed data with their paths (dict keys and list indices), in order; empty dicts and
    lists are leaves too. Data that is not a dict or list is one leaf with the empty path."""
    if not isinstance(data, (dict, list)) or not data:
        return [((), data)]
    found: list[tuple[tuple[Any, ...], Any]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, (dict, list)) and value:
            items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
            stack.extend(((*path, key), item) for key, item in reversed(items))
        else:
            found.append((path, value))
    return found


def leaf_fields(data: Any) -> dict[str, Any]:
    """Leaf values of parsed data by dotted name (``quote.bid``, ``items.0.id``); anything else is the field ``data``."""
    return {".".join(str(part) for part in path) or "data": value for path, value in leaves(data)}


def is_ignored(name: str, patterns: tuple[str, ...]) -> bool:
    """Is field ``name`` (dotted) left out by ``patterns``: a glob that matches it, or a name it is nested in?"""
    return any(fnmatch.fnmatchcase(name, p) or name.startswith(p + ".") for p in patterns)


def same_value(a: Any, b: Any) -> bool:
    """Are two field values the same: equal, of the same kind (``True`` is not ``1``), or both NaN?"""
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    try:
        return bool(a == b)
    except Exception:
        return False
