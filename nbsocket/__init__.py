"""nbsocket: named connections to external WebSocket servers from Jupyter.

A background loop owns the sockets; every received message becomes a
:class:`WsEvent`, goes to the socket's handlers, and lands as a row in its
live pandas DataFrame. The verbs follow Pode's external WebSockets::

    import nbsocket as nbs
    conn = nbs.connect("prices", "ws://127.0.0.1:8765/ticker", handler=on_tick)
    nbs.send("prices", {"op": "subscribe"})
    nbs.frame("prices")

``import nbsocket`` itself loads nothing else: each public name is imported from
its module the first time it is used (:data:`PUBLIC_NAMES`), so the pytest plugin
nbsocket registers costs a test run nothing until a test uses it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import (
        burst,
        burst_async,
        compare,
        connect,
        connections,
        dashboard,
        disconnect,
        follow,
        frame,
        get,
        load_transcript,
        panel,
        plot,
        propose_ignore,
        remove,
        replay,
        replay_async,
        reset,
        save_test,
        send,
        shutdown,
        test,
        wait,
    )
    from .core.backoff import (
        ReconnectPolicy,
    )
    from .core.codecs import (
        Codec,
        get_codec,
        register_codec,
    )
    from .core.datetimes import (
        to_datetime,
    )
    from .core.events import (
        Request,
        WsEvent,
    )
    from .core.frame import (
        LiveFrame,
    )
    from .core.options import (
        InsecureConnectionWarning,
    )
    from .core.protocols import (
        register_protocol,
    )
    from .core.protocols.base import (
        Protocol,
    )
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
    from .explore.replay import (
        BurstReport,
    )
    from .runtime import (
        Connection,
        ErrorRecord,
        Lockable,
        ProtocolConnection,
        Reply,
        Subscription,
    )

__version__ = "0.1.0"

PUBLIC_NAMES: dict[str, str] = {
    "burst": ".api",
    "burst_async": ".api",
    "compare": ".api",
    "connect": ".api",
    "connections": ".api",
    "dashboard": ".api",
    "disconnect": ".api",
    "follow": ".api",
    "frame": ".api",
    "get": ".api",
    "load_transcript": ".api",
    "panel": ".api",
    "plot": ".api",
    "remove": ".api",
    "replay": ".api",
    "propose_ignore": ".api",
    "replay_async": ".api",
    "reset": ".api",
    "save_test": ".api",
    "send": ".api",
    "shutdown": ".api",
    "test": ".api",
    "wait": ".api",
    "ReconnectPolicy": ".core.backoff",
    "Codec": ".core.codecs",
    "get_codec": ".core.codecs",
    "register_codec": ".core.codecs",
    "to_datetime": ".core.datetimes",
    "Request": ".core.events",
    "WsEvent": ".core.events",
    "LiveFrame": ".core.frame",
    "InsecureConnectionWarning": ".core.options",
    "register_protocol": ".core.protocols",
    "Protocol": ".core.protocols.base",
    "CodecError": ".errors",
    "ConnectError": ".errors",
    "ConnectTimeoutError": ".errors",
    "EncodeError": ".errors",
    "ExpectationError": ".errors",
    "ExpectationTimeoutError": ".errors",
    "HandshakeStatusError": ".errors",
    "InvalidOptionError": ".errors",
    "InvalidURLError": ".errors",
    "LoopThreadError": ".errors",
    "NameInUseError": ".errors",
    "NbSocketError": ".errors",
    "OutboxFullError": ".errors",
    "ProtocolError": ".errors",
    "RemoteError": ".errors",
    "SendError": ".errors",
    "SocketClosedError": ".errors",
    "TLSError": ".errors",
    "TranscriptFormatError": ".errors",
    "UnknownSocketError": ".errors",
    "WaitTimeoutError": ".errors",
    "BurstReport": ".explore.replay",
    "Connection": ".runtime",
    "ErrorRecord": ".runtime",
    "Lockable": ".runtime",
    "ProtocolConnection": ".runtime",
    "Reply": ".runtime",
    "Subscription": ".runtime",
}
"""Each public name and the module (relative to this package) it is imported from on first use."""

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
    "follow",
    "frame",
    "get",
    "get_codec",
    "load_transcript",
    "panel",
    "plot",
    "propose_ignore",
    "register_codec",
    "register_protocol",
    "remove",
    "replay",
    "replay_async",
    "reset",
    "save_test",
    "send",
    "shutdown",
    "test",
    "to_datetime",
    "wait",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is used (``nbs.connect``, ``from nbsocket import frame``)."""
    module = PUBLIC_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def load_ipython_extension(ipython):  # type: ignore[no-untyped-def]
    """``%load_ext nbsocket``: register the ``%ws_*`` magics."""
    from .magics.commands import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):  # type: ignore[no-untyped-def]
    """``%unload_ext nbsocket``: close every socket and stop the loop thread."""
    from .magics.commands import unload_ipython_extension as unload

    unload(ipython)
