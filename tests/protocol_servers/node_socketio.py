"""The reference Socket.IO server (socket.io 4.8.4 on Node, ``node/socketio_server.js``) as a pytest fixture.

``node_socketio`` starts ``node socketio_server.js`` in its own process group on a free 127.0.0.1 port,
waits until it prints ``listening <port>``, and stops the whole group at the end of the test. It needs
``node`` on PATH and the npm package of ``tests/protocol_servers/node`` installed; without them the
fixture fails (it never skips) and says to run ``npm ci --prefix tests/protocol_servers/node``.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbsocket.runtime.manager import default_manager

__all__ = ["NODE_PACKAGE", "NodeSocketIOServer", "node_socketio"]

NODE_PACKAGE = Path(__file__).resolve().parent / "node"
"""The npm package holding the reference servers (its node_modules is installed by ``npm ci``)."""

START_TIMEOUT = 20.0
"""How long the server may take to print that it listens (a guard against hanging, not a speed check)."""

INSTALL_HINT = "run `npm ci --prefix tests/protocol_servers/node` (CI installs it)"


class NodeSocketIOServer:
    """``node socketio_server.js`` on 127.0.0.1; ``url`` for nbsocket, ``state()`` for what the server saw."""

    def __init__(self, *, ping_interval_ms: int = 25000, ping_timeout_ms: int = 20000) -> None:
        self.ping_interval_ms = ping_interval_ms
        self.ping_timeout_ms = ping_timeout_ms
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()

    @staticmethod
    def missing() -> str | None:
        """Why the server cannot run here (no node, no installed socket.io), or None."""
        if shutil.which("node") is None:
            return f"`node` is not on PATH: install Node.js 20 or newer, then {INSTALL_HINT}"
        if not (NODE_PACKAGE / "node_modules" / "socket.io" / "package.json").is_file():
            return f"socket.io is not installed for the reference servers: {INSTALL_HINT}"
        return None

    @property
    def url(self) -> str:
        """The server's base WebSocket URL (nbsocket adds ``/socket.io/?EIO=4&transport=websocket``)."""
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> NodeSocketIOServer:
        """Start node and return once the server listens."""
        problem = self.missing()
        if problem is not None:
            raise RuntimeError(problem)
        command = ["node", "socketio_server.js", "--port", "0", "--ping-interval", str(self.ping_interval_ms),
                   "--ping-timeout", str(self.ping_timeout_ms)]
        self._process = subprocess.Popen(command, cwd=NODE_PACKAGE, stdout=subprocess.PIPE, stderr=self._stderr,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        assert self._process.stdout is not None
        line = _read_line(self._process.stdout, START_TIMEOUT)
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"the reference Socket.IO server did not start (printed {line!r}); stderr:\n{self.stderr()}")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        """Stop the server and everything it started (its process group)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
            except ProcessLookupError:
                pass
        if process.stdout is not None:
            process.stdout.close()

    def stderr(self) -> str:
        """What node wrote to stderr so far (for failure messages)."""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def state(self) -> dict[str, Any]:
        """What the server saw: ``received``, ``acks``, ``connections``, ``disconnects``, ``errors`` (GET /state)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/state", timeout=5) as response:
            return json.loads(response.read())

    def received(self, event: str) -> list[list[Any]]:
        """The argument lists of every ``event`` the server received, in order."""
        return [entry["args"] for entry in self.state()["received"] if entry["event"] == event]

    def __enter__(self) -> NodeSocketIOServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._stderr.close()


def _read_line(stream: Any, timeout: float) -> str:
    """One line from a pipe, or what came before ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    chunks = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while b"\n" not in chunks:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                break
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                break
            chunks += chunk
    return chunks.decode("utf-8", "replace").strip()


@pytest.fixture()
def node_socketio() -> Iterator[NodeSocketIOServer]:
    """The reference socket.io 4.8.4 server (connectionStateRecovery on; ping 1 s / timeout 2 s) for one test."""
    problem = NodeSocketIOServer.missing()
    if problem is not None:
        pytest.fail(f"the reference Socket.IO server cannot run: {problem}", pytrace=False)
    with NodeSocketIOServer(ping_interval_ms=1000, ping_timeout_ms=2000) as server:
        try:
            yield server
        finally:
            default_manager.shutdown()  # nbsocket's sockets close before the server goes away
