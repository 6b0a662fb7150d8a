"""nbsocket: named connections to external WebSocket servers from Jupyter.

A background loop owns the sockets; every received message becomes a
:class:`WsEvent`, goes to the socket's handlers, and lands as a row in its
live pandas DataFrame. The verbs follow Pode's external WebSockets::

    import nbsocket as nbs
    conn = nbs.connect("prices", "ws://127.0.0.1:8765/ticker", handler=on_tick)
    nbs.send("prices", {"op": "subscribe"})
    nbs.frame("prices")
"""

from __future__ import annotations

from .api import (
    burst,
    burst_async,
    compare,
    connect,
    connections,
    dashboard,
    disconnect,
    frame,
    get,
    load_transcript,
    panel,
    plot,
    remove,
    replay,
    replay_async,
    reset,
    send,
    shutdown,
    test,
    wait,
)
from .core.backoff import ReconnectPolicy
from .core.codecs import Codec, get_codec, register_codec
from .core.datetimes import to_datetime
from .core.events import Request, WsEvent
from .core.frame import LiveFrame
from .core.options import InsecureConnectionWarning
from .core.protocols import register_protocol
from .core.protocols.base import Protocol
from .errors import (
    CodecError,
    ConnectError,
    ConnectTimeoutError,
    EncodeError,
    ExpectationError,
    ExpectationTimeoutError,
    HandshakeStatusError,
    InvalidOptionError,
    InvalidURLError,
    LoopThreadError,
    NameInUseError,
    NbSocketError,
    OutboxFullError,
    ProtocolError,
    RemoteError,
    SendError,
    SocketClosedError,
    TLSError,
    TranscriptFormatError,
    UnknownSocketError,
    WaitTimeoutError,
)
from .explore.replay import BurstReport
from .runtime import Connection, ErrorRecord, Lockable, ProtocolConnection, Reply, Subscription

__version__ = "0.1.0"

__all__ = [
    "BurstReport",
    "Codec",
    "CodecError",
    "ConnectError",
    "ConnectTimeoutError",
    "Connection",
    "EncodeError",
    "ErrorRecord",
    "ExpectationError",
    "ExpectationTimeoutError",
    "HandshakeStatusError",
    "InsecureConnectionWarning",
    "InvalidOptionError",
    "InvalidURLError",
    "LiveFrame",
    "Lockable",
    "LoopThreadError",
    "NameInUseError",
    "NbSocketError",
    "OutboxFullError",
    "Protocol",
    "ProtocolConnection",
    "ProtocolError",
    "ReconnectPolicy",
    "RemoteError",
    "Reply",
    "Request",
    "SendError",
    "SocketClosedError",
    "Subscription",
    "TLSError",
    "TranscriptFormatError",
    "UnknownSocketError",
    "WaitTimeoutError",
    "WsEvent",
    "burst",
    "burst_async",
    "compare",
    "connect",
    "connections",
    "dashboard",
    "disconnect",
    "frame",
    "get",
    "get_codec",
    "load_transcript",
    "panel",
    "plot",
    "register_codec",
    "register_protocol",
    "remove",
    "replay",
    "replay_async",
    "reset",
    "send",
    "shutdown",
    "test",
    "to_datetime",
    "wait",
]


def load_ipython_extension(ipython):  # type: ignore[no-untyped-def]
    """``%load_ext nbsocket``: register the ``%ws_*`` magics."""
    from .magics.commands import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):  # type: ignore[no-untyped-def]
    """``%unload_ext nbsocket``: close every socket and stop the loop thread."""
    from .magics.commands import unload_ipython_extension as unload

    unload(ipython)
