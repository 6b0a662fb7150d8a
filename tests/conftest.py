"""Shared fixtures: the embedded demo server and a clean nbsocket manager per test."""

from __future__ import annotations

import logging
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

import nbsocket as nbs
from nbsocket.demo import DemoServer
from nbsocket.runtime.manager import default_manager

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
"""What the suite produces (logs, executed notebooks, screenshots); swept for secrets at the end."""

SECRET = "nbs-sweep-SECRET-4d7e1b"
"""A secret the suite uses in URLs, headers and notebooks; it must never appear in ARTIFACTS."""


def pytest_sessionstart(session: pytest.Session) -> None:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``sweep`` run last, after everything else has produced its artifacts."""
    items.sort(key=lambda item: item.get_closest_marker("sweep") is not None)


@pytest.fixture(scope="session", autouse=True)
def nbsocket_log_file() -> Iterator[Path]:
    """Everything nbsocket logs during the session, at DEBUG, in test-artifacts/nbsocket.log."""
    path = ARTIFACTS / "nbsocket.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("nbsocket")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    frames = logging.getLogger("nbsocket.websockets")
    if int(websockets.__version__.split(".")[0]) < 17:
        # websockets before 17 fails to format its log line for a text frame that is not UTF-8 (STOMP bodies, a
        # fragment cut inside a character), and pytest turns a logging error into an exception inside websockets'
        # parser: no frame lines there.
        frames.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield path
    logger.removeHandler(handler)
    logger.setLevel(previous)
    frames.setLevel(logging.NOTSET)
    handler.close()


@pytest.fixture(scope="session")
def demo() -> Iterator[DemoServer]:
    """The demo server on 127.0.0.1, on a free port, for the whole session."""
    server = DemoServer(port=0, rtm_reconnect_after=0.5, rtm_expire_after=0.5).start_in_thread()
    yield server
    server.stop_thread()


@pytest.fixture(autouse=True)
def clean_manager() -> Iterator[None]:
    """Every test starts and ends with no sockets and no loop thread."""
    yield
    default_manager.shutdown()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def bad_server() -> Iterator[Any]:
    """The server that misbehaves on purpose (tests/misbehaving.py)."""
    from .misbehaving import start_misbehaving
    from .servers import ThreadedServer

    with ThreadedServer(start_misbehaving) as running:
        yield running.server


__all__ = ["free_port", "nbs"]


@pytest.fixture
def unused_port() -> int:
    """A port with no listener."""
    return free_port()
