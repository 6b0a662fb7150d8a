"""The transport: the one door to ``websockets``.

Everything nbsocket takes from ``websockets`` passes through this package, and
no other module imports it. ``handshake`` turns a socket's options into an open
connection, ``wire`` is that connection (a ``websockets`` client connection
that cuts whole frames itself and hands each read's messages over as a
batch), ``failures`` turns what opening raises into nbsocket's errors, and
``closing`` reads how a connection ended and aborts one. The rest of the
runtime holds a :class:`BatchingConnection` and uses its documented verbs
(``send``, ``ping``, ``close``, ``wait_closed``, ``latency``, ``subprotocol``)
and the few the wire adds (``attach``, ``is_open``, ``is_closed``, ``on_pong``).

The ``websockets`` versions this is proven with are the ones ``pyproject.toml``
admits; with any other, the wire logs once that it receives through
``websockets``' own parser only, and works as before, only slower.
"""

from __future__ import annotations

from websockets.exceptions import ConnectionClosed
from websockets.version import version as websockets_version

from .closing import abort_connection, close_info
from .failures import retryable, translate
from .handshake import PROXIES, check_supported, open_connection, websockets_kwargs
from .wire import MAX_BATCH, READ_SIZE, Batch, BatchingConnection, RawTextConnection, Sink

__all__ = [
    "MAX_BATCH",
    "PROXIES",
    "READ_SIZE",
    "Batch",
    "BatchingConnection",
    "ConnectionClosed",
    "RawTextConnection",
    "Sink",
    "abort_connection",
    "check_supported",
    "close_info",
    "open_connection",
    "retryable",
    "translate",
    "websockets_kwargs",
    "websockets_version",
]
