"""Application protocols on top of WebSocket (sans-I/O) and the registry ``connect(protocol=...)`` looks names up in.

Built in: ``socketio`` (Socket.IO v4 / Engine.IO v4), ``graphql-ws``
(graphql-transport-ws), ``graphql-ws-legacy`` (subscriptions-transport-ws),
``jsonrpc`` (JSON-RPC 2.0) and ``stomp`` (STOMP 1.2). ``protocol=None`` is the
plain WebSocket path (no protocol object at all). A user adds their own with
:func:`register_protocol`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from ...errors import InvalidOptionError
from .base import Protocol

__all__ = [
    "Protocol",
    "get_protocol",
    "make_protocol",
    "protocol_names",
    "protocol_option_names",
    "register_protocol",
    "secret_values",
]

_registry: dict[str, type[Protocol]] = {}
"""Replaced whole on every change (no lock: readers on any thread see one version)."""


def register_protocol(name: str, cls: type[Protocol]) -> None:
    """Make ``connect(..., protocol=name)`` use ``cls`` (a :class:`Protocol` subclass); replaces an earlier one of that name."""
    if not isinstance(name, str) or not name:
        raise InvalidOptionError(f"a protocol name must be a non-empty string, not {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Protocol)):
        raise InvalidOptionError(f"register_protocol needs a subclass of nbs.Protocol, not {cls!r}")
    global _registry
    _registry = {**_with_builtins(), name: cls}


def _with_builtins() -> dict[str, type[Protocol]]:
    """The registry, with the built-ins loaded on first use (so ``import nbsocket`` does not import them)."""
    global _registry
    if "socketio" not in _registry:
        from .graphql import GraphQLWS
        from .graphql_legacy import GraphQLWSLegacy
        from .jsonrpc import JSONRPC
        from .socketio import SocketIO
        from .stomp import STOMP

        builtins = {
            "socketio": SocketIO,
            "graphql-ws": GraphQLWS,
            "graphql-ws-legacy": GraphQLWSLegacy,
            "jsonrpc": JSONRPC,
            "stomp": STOMP,
        }
        _registry = {**builtins, **_registry}
    return _registry


def protocol_names() -> list[str]:
    """Names ``connect(protocol=...)`` accepts."""
    return sorted(_with_builtins())


def get_protocol(name: str) -> type[Protocol]:
    """The protocol class registered as ``name``; :class:`InvalidOptionError` for an unknown name."""
    registry = _with_builtins()
    cls = registry.get(name) if isinstance(name, str) else None
    if cls is None:
        raise InvalidOptionError(
            f"unknown protocol {name!r}; known: {', '.join(sorted(registry))} "
            "(or protocol=None for plain WebSocket; add one with nbs.register_protocol)"
        )
    return cls


def protocol_option_names(cls: type[Protocol]) -> list[str]:
    """The keyword options ``cls.__init__`` declares (what ``connect`` passes it)."""
    try:
        params = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def make_protocol(name: str, options: Mapping[str, Any]) -> Protocol:
    """A fresh protocol object for ``name`` with ``options`` (validated by the protocol itself, no I/O)."""
    cls = get_protocol(name)
    try:
        return cls(**dict(options))
    except TypeError as exc:
        raise InvalidOptionError(f"protocol {name!r}: {exc}") from None


def secret_values(value: Any) -> list[str]:
    """Every string (and number) inside a secret option's value, to be redacted wherever it shows."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            found.append(str(item))
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found
