"""The reference Socket.IO server (socket.io 4.8.4 on Node, ``node/socketio_server.js``) as a pytest fixture.

``node_socketio`` starts ``node socketio_server.js`` (a :class:`~.node_servers.NodeServer`: its own process
group, a free 127.0.0.1 port it reports once it listens, the group stopped at the end of the test). The
server runs with ``connectionStateRecovery``, a 1 s ping interval and a 2 s ping timeout. Without ``node`` on
PATH or without the npm package installed, the fixture fails (it never skips) and says to run
``npm ci --prefix tests/protocol_servers/node``.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from nbsocket.runtime.manager import default_manager

from .node_servers import NodeServer

__all__ = ["NodeSocketIOServer", "node_socketio"]


class NodeSocketIOServer(NodeServer):
    """``node socketio_server.js``; ``url`` for nbsocket, ``state()`` for what the server saw."""

    def __init__(self) -> None:
        super().__init__("socketio_server.js", needs="socket.io")

    def state(self) -> dict[str, Any]:
        """What the server saw: ``received``, ``acks``, ``connections``, ``disconnects``, ``errors`` (its GET /state)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/state", timeout=5) as response:
            return json.loads(response.read())

    def received(self, event: str) -> list[list[Any]]:
        """The argument lists of every ``event`` the server received, in order (bytes as ``{"$bytes": base64}``)."""
        return [entry["args"] for entry in self.state()["received"] if entry["event"] == event]


@pytest.fixture()
def node_socketio() -> Iterator[NodeSocketIOServer]:
    """The reference socket.io 4.8.4 server for one test."""
    server = NodeSocketIOServer()
    problem = server.missing()
    if problem is not None:
        pytest.fail(f"the reference Socket.IO server cannot run: {problem}", pytrace=False)
    with server:
        try:
            yield server
        finally:
            default_manager.shutdown()  # nbsocket's sockets close before the server goes away
