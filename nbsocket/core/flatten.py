"""Turning a parsed message into the fields of one live-frame row."""

from __future__ import annotations

import json
from typing import Any
from xml.etree.ElementTree import Element

__all__ = ["MAX_DEPTH", "PREFIX", "RESERVED", "field_name", "flatten", "message_fields"]


RESERVED = frozenset({"timestamp", "socket", "seq", "error", "extra"})
"""Frame columns nbsocket owns; top-level message fields with these names get a ``data.`` prefix."""

PREFIX = "data."
_RENAMED = {name: PREFIX + name for name in RESERVED}

MAX_DEPTH = 32
"""Objects nested deeper than this are kept as JSON text in one column instead of flattened further."""


def field_name(name: Any) -> str:
    """The column name of a top-level message field: reserved names get the ``data.`` prefix."""
    key = name if isinstance(name, str) else str(name)
    return PREFIX + key if key in RESERVED else key


def flatten(obj: dict[Any, Any], max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Flatten nested dicts into dotted keys: ``{"q": {"bid": 1}}`` -> ``{"q.bid": 1}``.

    Lists stay values, empty objects stay ``{}``. When two fields flatten to the
    same name (``{"a.b": 2, "a": {"b": 3}}``), the later one gets ``#2`` appended
    (``a.b#2``), so no value is lost. Always returns a new dict, so
    the row cannot change when a handler later mutates the parsed message.
    Iterative, so deeply nested input cannot exhaust the stack.
    Only plain ``dict`` values are flattened (what JSON decoding gives).
    """
    for value in obj.values():
        if type(value) is dict:
            break
    else:  # the common case: already flat
        if RESERVED.isdisjoint(obj):
            return dict(obj)  # (the live frame names a non-string key with str())
        return {_RENAMED.get(k, k): v for k, v in obj.items()}
    out: dict[str, Any] = {}
    stack = [("", iter(obj.items()), 0)]
    while stack:
        prefix, items, depth = stack[-1]
        for name, value in items:
            key = prefix + (name if isinstance(name, str) else str(name))
            if type(value) is dict and value:
                if depth < max_depth:
                    stack.append((key + ".", iter(value.items()), depth + 1))
                    break
                value = _too_deep(value)
            name = key if prefix else field_name(key)
            if name in out:  # {"a.b": 2, "a": {"b": 3}}: both dotted to "a.b"; keep both
                name = _free_name(out, name)
            out[name] = value
        else:
            stack.pop()
    return out


def _free_name(taken: dict[str, Any], name: str) -> str:
    """``name#2`` (or ``#3``, ...): the first such name not in ``taken``."""
    n = 2
    while f"{name}#{n}" in taken:
        n += 1
    return f"{name}#{n}"


def _too_deep(value: dict[Any, Any]) -> str:
    """A subtree past ``MAX_DEPTH``, kept as JSON text so showing the frame cannot recurse."""
    try:
        return json.dumps(value, default=str)
    except (RecursionError, ValueError):
        return "<nested too deeply to show>"


def message_fields(data: Any, error: str | None, body: str | bytes) -> dict[str, Any]:
    """The row fields for one message.

    JSON objects are flattened; anything else (lists, scalars, text, bytes) goes
    in ``data``; XML keeps its text. A parse failure keeps the raw body in
    ``data`` and the reason in ``error``.
    """
    if error is not None:
        return {"data": body, "error": error}
    if isinstance(data, dict):
        return flatten(data)
    if isinstance(data, Element):
        return {"data": body}
    return {"data": data}
