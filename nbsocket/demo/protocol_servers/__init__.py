"""Real protocol servers on 127.0.0.1 for ``notebooks/protocols.ipynb`` and the tests: Socket.IO, GraphQL, JSON-RPC.

Each start function runs a well-known server library on a free port in a
background thread and returns the started server (``server.url``,
``server.close()``)::

    from nbsocket.demo.protocol_servers import start_socketio_server
    sio_server = start_socketio_server()        # python-socketio AsyncServer on aiohttp
    sio_server.url                              # ws://127.0.0.1:PORT

The libraries are not dependencies of nbsocket: install the extra with
``pip install "nbsocket[protocols-demo]"``. They are imported only when a start
function runs; a missing one raises :class:`ImportError` naming the extra.

What each server offers is described in its module: :mod:`.socketio_server`,
:mod:`.graphql_server`, :mod:`.jsonrpc_server`. A STOMP broker is not started
here: use RabbitMQ with its Web-STOMP plugin (see the notebook).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .graphql_server import GraphQLServer
    from .jsonrpc_server import JSONRPCServer
    from .socketio_server import SocketIOServer

__all__ = ["EXTRA", "start_graphql_server", "start_jsonrpc_server", "start_socketio_server"]

EXTRA = "protocols-demo"
"""The optional extra that installs the server libraries: ``pip install "nbsocket[protocols-demo]"``."""

_NEEDS = {
    "socketio_server": ("socketio", "aiohttp"),
    "graphql_server": ("strawberry", "uvicorn", "starlette"),
    "jsonrpc_server": ("jsonrpcserver",),
}


def _load(module: str) -> Any:
    """Import ``module`` of this package, or raise an ImportError that names the extra to install."""
    for library in _NEEDS[module]:
        try:
            importlib.import_module(library)
        except ImportError as exc:
            raise ImportError(
                f"the {module.split('_')[0]} demo server needs {library!r}, which is not installed: "
                f'pip install "nbsocket[{EXTRA}]"'
            ) from exc
    return importlib.import_module(f"{__name__}.{module}")


def start_socketio_server(*, ping_interval: float = 25, ping_timeout: float = 20, port: int = 0) -> SocketIOServer:
    """Start python-socketio's ``AsyncServer`` (on aiohttp); ``url`` is ``ws://127.0.0.1:PORT``.

    Events: ``echo`` (acks with its arguments), ``chat`` (broadcast to everyone),
    ``ask`` (the server emits ``question`` asking the client for an ack; the
    answers are in ``server.acks``); namespace ``/admin`` needs ``auth={"token": "good"}``.
    """
    module = _load("socketio_server")
    server: SocketIOServer = module.SocketIOServer(ping_interval=ping_interval, ping_timeout=ping_timeout, port=port).start()
    return server


def start_graphql_server(*, token: str | None = "good", keep_alive: float | None = None, port: int = 0) -> GraphQLServer:
    """Start strawberry-graphql on uvicorn; ``url`` is ``ws://127.0.0.1:PORT/graphql``.

    ``connection_init`` must carry ``{"token": token}`` (``token=None``: no check).
    Query ``hello(name)``, ``fail(message)``; mutation ``add(a, b)``;
    subscriptions ``ticks(n, delay)`` and ``boom(after)``.
    """
    module = _load("graphql_server")
    server: GraphQLServer = module.GraphQLServer(token=token, keep_alive=keep_alive, port=port).start()
    return server


def start_jsonrpc_server(*, port: int = 0) -> JSONRPCServer:
    """Start a JSON-RPC 2.0 server (``jsonrpcserver`` dispatch); ``url`` is ``ws://127.0.0.1:PORT/``.

    Methods ``add``, ``echo``, ``fail`` (an error reply), ``sleep``,
    ``notify_me`` (answers, then sends notifications), ``ask``, ``log``.
    """
    module = _load("jsonrpc_server")
    server: JSONRPCServer = module.JSONRPCServer(port=port).start()
    return server
