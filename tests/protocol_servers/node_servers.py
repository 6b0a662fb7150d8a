"""The reference Node implementations of JSON-RPC and GraphQL over WebSocket, as pytest fixtures.

``node_oracle`` (one per test module) is ``node/oracle.js``: the libraries' own message checks (graphql-ws's
``parseMessage``, json-rpc-2.0's ``isJSONRPCRequest``/``isJSONRPCResponse``), asked line by line by the
property tests (:class:`NodeOracle`).

``node_jsonrpc`` runs ``node/jsonrpc_server.js`` (json-rpc-2.0's ``JSONRPCServerAndClient`` over ``ws``) and
``node_graphql`` runs ``node/graphql_server.js`` (graphql-ws's ``useServer`` over ``ws``), each as
:class:`NodeServer`: ``node <script> --port 0`` in its own process group, on a free 127.0.0.1 port the
script reports (``listening <port>`` on stdout) once it listens; the whole group is stopped at the end of
the test. Without ``node`` on PATH or without the npm package installed, the fixtures fail (they never
skip) and say to run ``npm ci --prefix tests/protocol_servers/node``.
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbsocket.runtime.manager import default_manager

__all__ = ["INSTALL_HINT", "NODE_PACKAGE", "NodeOracle", "NodeServer", "node_graphql", "node_jsonrpc", "node_oracle"]

NODE_PACKAGE = Path(__file__).resolve().parent / "node"
"""The npm package holding the reference servers (its node_modules is installed by ``npm ci``)."""

INSTALL_HINT = "run `npm ci --prefix tests/protocol_servers/node` (CI installs it)"

START_TIMEOUT = 20.0
"""How long a server may take to report that it listens (a guard against hanging, not a speed check)."""


class NodeServer:
    """``node <script>`` on 127.0.0.1 and a free port, in its own process group (a context manager)."""

    def __init__(self, script: str, *, needs: str) -> None:
        self.script = script
        self.needs = needs
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (the server's stderr, kept until it stops)

    def missing(self) -> str | None:
        """Why the server cannot run here (no node, the npm package not installed), or ``None``."""
        if shutil.which("node") is None:
            return f"`node` is not on PATH: install Node.js 20 or newer, then {INSTALL_HINT}"
        if not (NODE_PACKAGE / "node_modules" / self.needs / "package.json").is_file():
            return f"{self.needs} is not installed for the reference servers: {INSTALL_HINT}"
        if not (NODE_PACKAGE / self.script).is_file():
            return f"{NODE_PACKAGE / self.script} does not exist"
        return None

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/``."""
        return f"ws://127.0.0.1:{self.port}/"

    def start(self) -> NodeServer:
        """Start node and return once the server listens; ``RuntimeError`` (with node's stderr) if it does not."""
        problem = self.missing()
        if problem is not None:
            raise RuntimeError(problem)
        self._process = subprocess.Popen(
            ["node", self.script, "--port", "0"],
            cwd=NODE_PACKAGE,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        assert self._process.stdout is not None
        line = _read_line(self._process.stdout, START_TIMEOUT)
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"node {self.script} did not start (it printed {line!r}); stderr:\n{self.stderr()}")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        """Stop the server and everything it started (its process group)."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        except ProcessLookupError:
            pass
        _wait_group_gone(process.pid, 5.0)
        if process.stdout is not None:
            process.stdout.close()

    def stderr(self) -> str:
        """What node wrote to stderr so far (for failure messages)."""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def __enter__(self) -> NodeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._stderr.close()


class NodeOracle:
    """``node oracle.js``: asks the reference libraries whether a message is valid (one JSON line each way)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> NodeOracle:
        self._process = subprocess.Popen(
            ["node", "oracle.js"],
            cwd=NODE_PACKAGE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """The answer to ``{"graphql": text}`` or ``{"jsonrpc": text}`` (see ``oracle.js``)."""
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(request).encode() + b"\n")
        process.stdin.flush()
        line = _read_line(process.stdout, START_TIMEOUT)
        if not line:
            raise RuntimeError(f"node oracle.js gave no answer to {request!r}")
        return json.loads(line)

    def graphql(self, text: str) -> dict[str, Any]:
        """graphql-ws's verdict on one message: ``{"valid": True, "type": ...}`` or ``{"valid": False, "reason": ...}``."""
        return self.ask({"graphql": text})

    def jsonrpc(self, text: str) -> dict[str, Any]:
        """json-rpc-2.0's classification of one message: ``{"request": bool, "response": bool}`` (or ``batch``/``json``)."""
        return self.ask({"jsonrpc": text})

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()


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


def _wait_group_gone(pgid: int, timeout: float) -> None:
    """Wait until process group ``pgid`` is empty, SIGKILLing what is left after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        if time.monotonic() > deadline:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
        time.sleep(0.05)


def _running(script: str, needs: str) -> Iterator[NodeServer]:
    server = NodeServer(script, needs=needs)
    problem = server.missing()
    if problem is not None:
        pytest.fail(f"the reference server {script} cannot run: {problem}", pytrace=False)
    with server:
        try:
            yield server
        finally:
            default_manager.shutdown()  # nbsocket's sockets close before the server goes away


@pytest.fixture()
def node_jsonrpc() -> Iterator[NodeServer]:
    """json-rpc-2.0 1.8.1's ``JSONRPCServerAndClient`` over ``ws`` (``node/jsonrpc_server.js``) for one test."""
    yield from _running("jsonrpc_server.js", "json-rpc-2.0")


@pytest.fixture()
def node_graphql() -> Iterator[NodeServer]:
    """graphql-ws 6.4.2's ``useServer`` over ``ws`` (``node/graphql_server.js``) for one test; token ``"good"``."""
    yield from _running("graphql_server.js", "graphql-ws")


@pytest.fixture(scope="module")
def node_oracle() -> Iterator[NodeOracle]:
    """graphql-ws's and json-rpc-2.0's own message checks (``node/oracle.js``), for a test module."""
    problem = NodeServer("oracle.js", needs="graphql-ws").missing() or NodeServer("oracle.js", needs="json-rpc-2.0").missing()
    if problem is not None:
        pytest.fail(f"the reference libraries cannot run: {problem}", pytrace=False)
    oracle = NodeOracle().start()
    try:
        yield oracle
    finally:
        oracle.stop()
