"""A private RabbitMQ broker with its Web-STOMP plugin, for tests that need a real STOMP server.

Tests use the session fixture :func:`rabbitmq`::

    from tests.protocol_servers.rabbitmq import rabbitmq  # noqa: F401  (a fixture)

    def test_something(rabbitmq):
        url = rabbitmq.ws_url          # ws://127.0.0.1:PORT/ws
        login, passcode = rabbitmq.login, rabbitmq.passcode

or :class:`RabbitMQ` directly (a context manager) outside pytest.

The broker runs as a subprocess of the test process, on 127.0.0.1 only, with
its own node name, Erlang cookie, epmd, data/log/config directory (a temp dir)
and free ports for every listener (AMQP, STOMP over TCP, Web-STOMP, Erlang
distribution, epmd), so it never clashes with a system broker the Debian
package may have started on install. It is stopped at the end and its whole
process group is gone afterwards; the temp dir is removed.

The only preparation needed on the machine is ``apt-get install -y rabbitmq-server``
(the Web-STOMP plugin is bundled). Set ``NBSOCKET_RABBITMQ_SERVER`` to the
``rabbitmq-server`` script to use another installation. When RabbitMQ is not
installed, the fixture fails (it does not skip) and says how to install it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["RabbitMQ", "RabbitMQUnavailable", "find_rabbitmq_server", "rabbitmq"]

INSTALL_HINT = "install it with `apt-get update && apt-get install -y rabbitmq-server` (Web-STOMP is bundled)"

STARTUP_TIMEOUT = 120.0
"""Seconds to wait for Web-STOMP to accept a STOMP session (a cold start takes ~5-15 s)."""


class RabbitMQUnavailable(RuntimeError):
    """RabbitMQ is not installed here, or it did not start; the message says why and what to do."""


def find_rabbitmq_server() -> str:
    """The ``rabbitmq-server`` script to run as the current user.

    The Debian package's ``/usr/sbin/rabbitmq-server`` is a wrapper that
    switches to the ``rabbitmq`` user when run as root (which could not read a
    private temp dir), so the script it wraps is preferred.
    """
    override = os.environ.get("NBSOCKET_RABBITMQ_SERVER")
    if override:
        if not os.access(override, os.X_OK):
            raise RabbitMQUnavailable(f"NBSOCKET_RABBITMQ_SERVER={override!r} is not an executable file")
        return override
    candidates = sorted(glob.glob("/usr/lib/rabbitmq/bin/rabbitmq-server"))
    candidates += sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server"), reverse=True)
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("rabbitmq-server")
    if found:
        return found
    raise RabbitMQUnavailable(f"RabbitMQ (rabbitmq-server) is not installed; {INSTALL_HINT}")


def _find_epmd() -> str:
    found = shutil.which("epmd") or next(iter(sorted(glob.glob("/usr/lib/erlang/erts-*/bin/epmd"))), None)
    if not found:
        raise RabbitMQUnavailable(f"Erlang's epmd was not found; {INSTALL_HINT}")
    return found


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
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


def _stomp_session_works(url: str, login: str, passcode: str, timeout: float) -> bool:
    """True when a STOMP CONNECT over ``url`` is answered with CONNECTED."""
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    try:
        with connect(url, subprotocols=["v12.stomp"], open_timeout=timeout, close_timeout=1) as ws:
            ws.send(f"CONNECT\naccept-version:1.2\nhost:/\nlogin:{login}\npasscode:{passcode}\n\n\x00")
            reply = ws.recv(timeout=timeout)
            return (reply.decode() if isinstance(reply, bytes) else reply).startswith("CONNECTED")
    except (OSError, TimeoutError, WebSocketException, UnicodeDecodeError):
        return False


class RabbitMQ:
    """One private RabbitMQ node with Web-STOMP on 127.0.0.1; ``start()`` it, ``stop()`` it (or use ``with``)."""

    login = "guest"
    """A user the broker accepts (RabbitMQ lets ``guest`` in from loopback only)."""
    passcode = "guest"

    def __init__(self, startup_timeout: float = STARTUP_TIMEOUT) -> None:
        self.startup_timeout = startup_timeout
        self.server_script = find_rabbitmq_server()
        self.epmd = _find_epmd()
        self._pick_ports()
        self.node_name = f"nbsocket-test-{secrets.token_hex(4)}@localhost"
        self.startup_seconds: float | None = None
        self._workdir: Path | None = None
        self._broker: subprocess.Popen | None = None
        self._epmd: subprocess.Popen | None = None
        self._output = None

    def _pick_ports(self) -> None:
        self.amqp_port, self.web_stomp_port, self.dist_port, self.epmd_port = _free_ports(4)

    @property
    def ws_url(self) -> str:
        """The Web-STOMP endpoint: ``ws://127.0.0.1:PORT/ws``."""
        return f"ws://127.0.0.1:{self.web_stomp_port}/ws"

    # --- lifecycle ---------------------------------------------------------------

    def start(self, attempts: int = 3) -> RabbitMQ:
        """Start the node and return once Web-STOMP answers a STOMP CONNECT; raises :class:`RabbitMQUnavailable`.

        A port picked as free can be taken before the broker binds it (by
        anything's outgoing connection): then it starts again on other ports.
        """
        began = time.monotonic()
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(began)
                break
            except RabbitMQUnavailable as exc:
                if "eaddrinuse" not in str(exc) or attempt == attempts:
                    raise
                self._pick_ports()
        self.startup_seconds = time.monotonic() - began
        return self

    def _start_once(self, began: float) -> None:
        self._workdir = Path(tempfile.mkdtemp(prefix="nbsocket-rabbitmq-"))
        try:
            env = self._prepare(self._workdir)
            self._epmd = subprocess.Popen(
                [self.epmd, "-port", str(self.epmd_port)],
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self._wait_epmd()
            self._output = open(self._workdir / "server-output.log", "wb")  # noqa: SIM115 (kept until the broker stops)
            self._broker = subprocess.Popen(
                [self.server_script],
                env=env,
                cwd=self._workdir,
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=self._output,
                stderr=subprocess.STDOUT,
            )
            self._wait_ready(began)
        except BaseException:
            self.stop()
            raise

    def _prepare(self, workdir: Path) -> dict[str, str]:
        """Write config, plugin list and cookie into ``workdir``; the environment that points RabbitMQ at them."""
        (workdir / "mnesia").mkdir()
        (workdir / "log").mkdir()
        (workdir / "home").mkdir()
        cookie = workdir / "home" / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        (workdir / "enabled_plugins").write_text("[rabbitmq_web_stomp].\n")
        (workdir / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}",
                    "stomp.listeners.tcp = none",  # only Web-STOMP is needed
                    "web_stomp.tcp.ip = 127.0.0.1",
                    f"web_stomp.tcp.port = {self.web_stomp_port}",
                    "log.console = false",
                    "log.file.level = info",
                    "",
                ]
            )
        )
        (workdir / "rabbitmq-env.conf").write_text("")  # so /etc/rabbitmq/rabbitmq-env.conf is not read
        env = {key: value for key, value in os.environ.items() if not key.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            {
                "HOME": str(workdir / "home"),  # the Erlang cookie lives in $HOME
                "RABBITMQ_NODENAME": self.node_name,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.amqp_port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_CONF_ENV_FILE": str(workdir / "rabbitmq-env.conf"),
                "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(workdir / "advanced.config"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
                "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
                "RABBITMQ_LOG_BASE": str(workdir / "log"),
                "RABBITMQ_PID_FILE": str(workdir / "rabbitmq.pid"),
                "ERL_EPMD_PORT": str(self.epmd_port),
                "ERL_EPMD_ADDRESS": "127.0.0.1",
                # Never let Erlang start a daemon epmd of its own: ours runs in a process group we stop.
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-start_epmd false",
            }
        )
        return env

    def _wait_epmd(self, timeout: float = 10.0) -> None:
        """Our epmd listens (else Erlang would start a daemon epmd of its own that outlives the test)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._epmd is not None
            if self._epmd.poll() is not None:
                raise RabbitMQUnavailable(f"epmd could not listen on port {self.epmd_port} (eaddrinuse?)")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.epmd_port), timeout=1):
                return
            time.sleep(0.05)
        raise RabbitMQUnavailable(f"epmd did not listen on port {self.epmd_port} within {timeout:.0f} s")

    def _wait_ready(self, began: float) -> None:
        deadline = began + self.startup_timeout
        while time.monotonic() < deadline:
            assert self._broker is not None
            if self._broker.poll() is not None:
                output = self._workdir / "server-output.log" if self._workdir else None
                port_taken = output is not None and "eaddrinuse" in output.read_text(errors="replace")
                raise RabbitMQUnavailable(
                    f"RabbitMQ exited with status {self._broker.returncode} while starting"
                    f"{' (a port was taken: eaddrinuse)' if port_taken else ''}:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.web_stomp_port), timeout=1):
                if _stomp_session_works(self.ws_url, self.login, self.passcode, timeout=5):
                    return
            time.sleep(0.25)
        raise RabbitMQUnavailable(
            f"RabbitMQ's Web-STOMP did not accept a STOMP session within {self.startup_timeout:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the broker's console output and log files (for failure messages)."""
        if self._workdir is None:
            return ""
        chunks = []
        for path in [self._workdir / "server-output.log", *sorted((self._workdir / "log").glob("*.log"))]:
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").splitlines()[-lines:]
                chunks.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(chunks)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the node gracefully (SIGTERM), then make sure nothing of it is left; remove the temp dir."""
        for process in (self._broker, self._epmd):
            if process is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            # Erlang's helpers (erl_child_setup, inet_gethost) share the group: none may outlive the node.
            _wait_group_gone(process.pid, timeout=10)
        self._broker = self._epmd = None
        if self._output is not None:
            self._output.close()
            self._output = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> RabbitMQ:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _wait_group_gone(pgid: int, timeout: float) -> None:
    """Wait until process group ``pgid`` is empty, SIGKILLing what remains after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        except PermissionError:  # a reused id that is not ours
            return
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            return
        time.sleep(0.1)


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQ]:
    """A private RabbitMQ with Web-STOMP for the whole test session; fails (never skips) when it cannot run."""
    failure = None
    try:
        broker = RabbitMQ().start()
    except RabbitMQUnavailable as exc:
        failure = str(exc)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()
