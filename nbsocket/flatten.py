"""Turning a parsed message into the fields of one live-frame row."""

from __future__ import annotations

import json
from typing import Any
from xml.etree.ElementTree import Element

RESERVED = frozenset({"timestamp", "socket", "seq", "error"})
"""Frame columns nbsocket owns; message fields with these names get a ``data.`` prefix."""

MAX_DEPTH = 32
"""Objects nested deeper than this are kept as JSON text in one column instead of flattened further."""


def _key(name: Any) -> str:
    key = name if isinstance(name, str) else str(name)
    return "data." + key if key in RESERVED else key


def flatten(obj: dict[Any, Any], max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Flatten nested dicts into dotted keys: ``{"q": {"bid": 1}}`` -> ``{"q.bid": 1}``.

    Lists stay values; iterative, so deeply nested input cannot exhaust the stack.
    """
    out: dict[str, Any] = {}
    for name, value in obj.items():
        if type(value) is dict and value:
            break
        out[_key(name)] = value
    else:
        return out  # the common case: already flat
    out.clear()
    stack = [("", iter(obj.items()), 0)]
    while stack:
        prefix, items, depth = stack[-1]
        for name, value in items:
            key = prefix + (name if isinstance(name, str) else str(name))
            if isinstance(value, dict) and value:
                if depth < max_depth:
                    stack.append((key + ".", iter(value.items()), depth + 1))
                    break
                value = _too_deep(value)
            out[key if prefix else _key(key)] = value
        else:
            stack.pop()
    return out


def _too_deep(value: dict[Any, Any]) -> str:
    """A subtree past ``MAX_DEPTH``, kept as JSON text so showing the frame cannot recurse."""
    try:
        return json.dumps(value, default=str)
    except (RecursionError, ValueError):
        return "<nested too deeply to show>"


def message_fields(data: Any, error: str | None, body: str | bytes) -> dict[str, Any]:
    """The row fields for one message: flattened JSON objects, else ``data``; failures keep the body."""
    if error is not None:
        return {"data": body, "error": error}
    if isinstance(data, dict):
        return flatten(data)
    if isinstance(data, Element):
        return {"data": body}
    return {"data": data}
