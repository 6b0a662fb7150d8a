"""The transport: how a session opens its socket, and the one door to ``websockets``.

A session opens every connection through a :class:`Transport` and holds the :class:`Wire` it returns
(``interface``). :class:`WebsocketsTransport` (``handshake``) is the real one: the wire is a ``websockets``
client connection that cuts whole frames itself and hands each read's messages over as a batch (``wire``),
and what opening raises becomes an nbsocket error (``failures``). :class:`ScriptedTransport` (``scripted``)
plays a server written as a coroutine, in memory: the test seam for what the runtime does on its own.

Everything nbsocket takes from ``websockets`` passes through this package; no other module imports it.
The ``websockets`` versions this is proven with are the ones ``pyproject.toml`` admits; with any other, the
wire logs once that it receives through ``websockets``' own parser only, and works as before, only slower.
"""

from __future__ import annotations

from websockets.exceptions import ConnectionClosed
from websockets.version import version as websockets_version

from .handshake import PROXIES, WebsocketsTransport, check_supported, open_connection, websockets_kwargs
from .interface import Batch, CloseInfo, Sink, Transport, Wire
from .scripted import ScriptedPeer, ScriptedTransport, ScriptedWire, ServerScript
from .wire import MAX_BATCH, READ_SIZE, BatchingConnection, RawTextConnection

__all__ = [
    "MAX_BATCH",
    "PROXIES",
    "READ_SIZE",
    "Batch",
    "BatchingConnection",
    "CloseInfo",
    "ConnectionClosed",
    "RawTextConnection",
    "ScriptedPeer",
    "ScriptedTransport",
    "ScriptedWire",
    "ServerScript",
    "Sink",
    "Transport",
    "WebsocketsTransport",
    "Wire",
    "check_supported",
    "open_connection",
    "websockets_kwargs",
    "websockets_version",
]
