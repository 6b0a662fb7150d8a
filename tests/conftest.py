"""Shared fixtures: the embedded demo server and a clean nbsocket manager per test."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import nbsocket as nbs
from nbsocket.demo import DemoServer
from nbsocket.manager import default_manager

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
    logger.addHandler(handler)
    yield path
    logger.removeHandler(handler)
    logger.setLevel(previous)
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


class ThreadedServer:
    """Runs an asyncio server factory on its own loop in a thread (for servers written per test)."""

    def __init__(self, start: Callable[[], Awaitable[Any]]) -> None:
        self._start = start
        self.loop = asyncio.new_event_loop()
        self.server: Any = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def run(self, coro: Awaitable[Any], timeout: float = 10) -> Any:
        """Run a coroutine on the server's loop."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            close = getattr(self.server, "close", None)
            if close is not None:
                result = close()
                if asyncio.iscoroutine(result):
                    await result
            wait_closed = getattr(self.server, "wait_closed", None)
            if wait_closed is not None:
                try:
                    await asyncio.wait_for(wait_closed(), 5)
                except Exception:
                    pass

        try:
            self.run(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


@pytest.fixture(scope="module")
def bad_server() -> Iterator[Any]:
    """The server that misbehaves on purpose (tests/misbehaving.py)."""
    from .misbehaving import start_misbehaving

    with ThreadedServer(start_misbehaving) as running:
        yield running.server


@pytest.fixture
def threaded_server() -> type[ThreadedServer]:
    """The :class:`ThreadedServer` helper."""
    return ThreadedServer


__all__ = ["nbs", "free_port", "ThreadedServer"]


@pytest.fixture
def unused_port() -> int:
    """A port with no listener."""
    return free_port()
