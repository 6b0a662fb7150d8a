"""nbsocket's pytest plugin: the ``ws`` fixture, and the transcripts of a failed test's sockets in its report.

Installing nbsocket registers this module with pytest (the ``pytest11`` entry point
``nbsocket``), so a test file needs no conftest::

    def test_echo(ws):
        echo = ws.connect("echo", URL)
        echo.send({"op": "hi", "id": 1})
        echo.expect({"id": 1}, within=0.5, schema={"type": "object", "required": ["id"]})

``ws`` is a :class:`SocketRegistry`: a registry of named sockets of the test's own
(the same name may be used in every test), with the verbs of ``nbs``. At teardown
its sockets are closed and its loop thread stopped. When a test fails, its report
gains one section per socket: the last :data:`TRANSCRIPT_ENTRIES` entries of its
transcript, secrets masked.

This module imports nothing of nbsocket until a test asks for ``ws``, so having
nbsocket installed costs other test runs nothing.
"""

from __future__ import annotations

import os
import re
import time
import types
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import pandas as pd

    from ..core.saved_tests import SavedTest
    from ..runtime import BurstReport, Connection, Manager

__all__ = [
    "ENV_REFERENCE",
    "TRANSCRIPT_ENTRIES",
    "SocketRegistry",
    "entry_line",
    "pytest_runtest_makereport",
    "transcript_text",
    "ws",
]

TRANSCRIPT_ENTRIES = 50
"""How many of each socket's last transcript entries a failed test's report shows."""

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""``${NAME}``: an environment variable in a saved test's URL (:meth:`SocketRegistry.expand`)."""

_REGISTRY = pytest.StashKey["SocketRegistry"]()
_REPORTED = pytest.StashKey[bool]()


class SocketRegistry:
    """The ``ws`` fixture: a registry of named sockets for one test, with the verbs of ``nbs``.

    ``ws.connect``, ``ws.send``, ``ws.get``, ``ws.frame``, ``ws.wait``, ``ws.burst``, ``ws.replay``,
    ``ws.save_test`` ... act on this registry's sockets only; :meth:`close` (the fixture's teardown) closes
    them and stops the registry's loop thread. :meth:`secret` and :meth:`expand` read secrets from the
    environment, as saved tests do, and have them masked in everything nbsocket shows.
    """

    def __init__(self) -> None:
        from ..runtime import Manager

        self.manager: Manager = Manager()
        """The registry itself (a :class:`~nbsocket.runtime.Manager` of the test's own)."""
        self._opened: dict[str, Connection] = {}

    # --- the nbs verbs -------------------------------------------------------------------------

    def connect(self, name: str, url: str, handler: Callable[..., Any] | None = None, **options: Any) -> Connection:
        """Open socket ``name`` in this registry (see :func:`nbsocket.connect`)."""
        __tracebackhide__ = True
        conn = self.manager.connect(name, url, handler, **options)
        self._opened[name] = conn
        return conn

    def send(self, name: str, message: Any) -> None:
        """Send ``message`` on socket ``name`` (see :func:`nbsocket.send`)."""
        __tracebackhide__ = True
        self.manager.send(name, message)

    def disconnect(self, name: str, code: int = 1000, reason: str = "") -> None:
        """Close socket ``name``, keeping it registered (see :func:`nbsocket.disconnect`)."""
        self.manager.disconnect(name, code, reason)

    def reset(self, name: str, url: str | None = None) -> None:
        """Reconnect socket ``name`` (see :func:`nbsocket.reset`)."""
        self.manager.reset(name, url)

    def remove(self, name: str) -> None:
        """Close socket ``name`` and forget it (see :func:`nbsocket.remove`)."""
        self.manager.remove(name)

    def test(self, name: str) -> bool:
        """Is socket ``name`` open right now?"""
        return self.manager.test(name)

    test.__test__ = False  # type: ignore[attr-defined]  # not a pytest test

    def get(self, name: str) -> Connection:
        """The connection registered as ``name``."""
        return self.manager.get(name)

    def connections(self) -> pd.DataFrame:
        """One row per socket of this registry (see :func:`nbsocket.connections`)."""
        return self.manager.connections()

    def frame(self, name: str | None = None) -> pd.DataFrame:
        """A snapshot of socket ``name``'s live frame, or of every socket's (see :func:`nbsocket.frame`)."""
        return self.manager.frame(name)

    def wait(self, name: str, count: int = 1, timeout: float | None = 30.0) -> list[Any]:
        """Wait until ``count`` more messages arrive on socket ``name`` (see :func:`nbsocket.wait`)."""
        __tracebackhide__ = True
        return self.manager.get(name).wait(count, timeout)

    def burst(
        self, name: str | Connection, messages: Iterable[Any], rate: float | str | None = None, **options: Any
    ) -> BurstReport:
        """Send ``messages`` on socket ``name`` at ``rate`` per second and report (see :func:`nbsocket.burst`)."""
        __tracebackhide__ = True
        from .replay import burst

        return burst(name, messages, rate, manager=self.manager, **options)

    async def burst_async(
        self, name: str | Connection, messages: Iterable[Any], rate: float | str | None = None, **options: Any
    ) -> BurstReport:
        """Like :meth:`burst`, for ``await``."""
        from .replay import burst_async

        return await burst_async(name, messages, rate, manager=self.manager, **options)

    def replay(self, transcript: Any, target: str | Connection, speed: float = 1.0, **options: Any) -> pd.DataFrame:
        """Send a saved transcript again on this registry's socket or URL (see :func:`nbsocket.replay`)."""
        from .replay import replay

        return replay(transcript, target, speed, manager=self.manager, **options)

    async def replay_async(self, transcript: Any, target: str | Connection, speed: float = 1.0, **options: Any) -> pd.DataFrame:
        """Like :meth:`replay`, for ``await``."""
        from .replay import replay_async

        return await replay_async(transcript, target, speed, manager=self.manager, **options)

    def compare(self, a: Any, b: Any, **options: Any) -> pd.DataFrame:
        """Which replies differ between two transcripts (see :func:`nbsocket.compare`)."""
        from .transcript_files import compare

        return compare(a, b, **options)

    def load_transcript(self, path: str | os.PathLike[str]) -> pd.DataFrame:
        """A saved transcript as a DataFrame (see :func:`nbsocket.load_transcript`)."""
        from .transcript_files import load_transcript

        return load_transcript(path)

    def save_test(self, name: str, path: str | os.PathLike[str], ignore: str | Iterable[str] = ()) -> SavedTest:
        """Write socket ``name``'s exploration as a pytest file (see :func:`nbsocket.save_test`)."""
        return self.manager.get(name).save_test(path, ignore)

    def propose_ignore(self, name: str, **options: Any) -> tuple[str, ...]:
        """The fields of socket ``name``'s exploration that change from run to run (see :func:`nbsocket.propose_ignore`)."""
        from .saved_tests import propose_ignore

        return propose_ignore(name, manager=self.manager, **options)

    # --- secrets from the environment ------------------------------------------------------------

    def secret(self, variable: str) -> str:
        """The value of environment variable ``variable``, remembered as a secret (masked wherever nbsocket shows text).

        Saved tests read every secret this way; an unset variable fails with a message naming it.
        """
        __tracebackhide__ = True
        from ..core.redact import add_secret
        from ..errors import InvalidOptionError

        value = os.environ.get(variable)
        if value is None:
            raise InvalidOptionError(f"the environment variable {variable} is not set; this test reads a secret from it")
        add_secret(value)
        return value

    def expand(self, text: str) -> str:
        """``text`` with each ``${NAME}`` replaced by environment variable ``NAME`` (read with :meth:`secret`)."""
        __tracebackhide__ = True

        def value_of(found: re.Match[str]) -> str:
            __tracebackhide__ = True
            return self.secret(found.group(1))

        return ENV_REFERENCE.sub(value_of, text)

    # --- teardown and reports ----------------------------------------------------------------------

    def close(self) -> None:
        """Close every socket (1001) and stop this registry's loop thread (the fixture's teardown)."""
        self.manager.shutdown()

    def transcript_sections(self, entries: int = TRANSCRIPT_ENTRIES) -> Iterator[tuple[str, str]]:
        """``(title, text)`` of each socket's last ``entries`` transcript entries, for a failed test's report."""
        for name, conn in self._opened.items():
            yield f"nbsocket transcript: {name} (last {entries} entries)", transcript_text(conn, entries)

    def __repr__(self) -> str:
        return f"<SocketRegistry of a test: {', '.join(self.manager.names()) or 'no sockets'}>"


def transcript_text(conn: Connection, entries: int = TRANSCRIPT_ENTRIES) -> str:
    """The last ``entries`` entries of ``conn``'s transcript, one line each, secrets masked."""
    from ..core.redact import scrub

    kept, meta = conn.transcript_entries()
    shown = kept[-entries:]
    lines = [f"{conn.name} {meta.get('url')} ({conn.state}; {len(kept)} entries kept, {meta.get('dropped', 0)} dropped)"]
    lines += [entry_line(entry) for entry in shown]
    return scrub("\n".join(lines))


def entry_line(entry: Any, body_chars: int = 300) -> str:
    """One transcript entry as a line: time, direction, number or event kind, body (clipped) and what else it has."""
    ts_ns, direction, kind, seq, body, error, code, reason, info = entry
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    clock = f"{time.strftime('%H:%M:%S', time.gmtime(seconds))}.{ns // 1000:06d}"
    if direction == "event":
        words = [kind or "?"]
        words += [str(code)] if code is not None else []
        words += [repr(reason)] if reason else []
        words += [str(info)] if info is not None else []
    else:
        shown = repr(body[:64]) + ("..." if len(body) > 64 else "") if isinstance(body, bytes) else str(body)
        if len(shown) > body_chars:
            shown = shown[: body_chars - 3] + "..."
        words = [f"#{seq}" if seq is not None else "(protocol)", shown]
    if error:
        words.append(f"error: {error}")
    return f"{clock} {direction:<8} " + " ".join(words)


@pytest.fixture
def ws(request: pytest.FixtureRequest) -> Generator[SocketRegistry, None, None]:
    """A registry of named sockets for this test, with the verbs of ``nbs``; its sockets close at teardown."""
    registry = SocketRegistry()
    request.node.stash[_REGISTRY] = registry
    try:
        yield registry
    finally:
        registry.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """A failed test that used ``ws`` gets a report section per socket: its last transcript entries; an nbsocket
    error it raised is shown from the test's own lines (nbsocket's frames left out unless ``--full-trace``)."""
    if call.excinfo is not None and _REGISTRY in item.stash and not item.config.getoption("fulltrace", False):
        call.excinfo = _without_nbsocket_frames(call.excinfo)
    report = yield
    registry = item.stash.get(_REGISTRY, None)
    if registry is not None and report.failed and not item.stash.get(_REPORTED, False):
        item.stash[_REPORTED] = True
        for title, text in registry.transcript_sections():
            report.sections.append((title, text))
    return report


_PACKAGE = Path(__file__).resolve().parent.parent


def _without_nbsocket_frames(excinfo: pytest.ExceptionInfo[BaseException]) -> pytest.ExceptionInfo[BaseException]:
    """An nbsocket error's traceback up to the call into nbsocket: the message says what went wrong, the test's lines
    say where (anything else, or a traceback that starts inside nbsocket, as it was)."""
    from ..errors import NbSocketError

    error = excinfo.value
    if not isinstance(error, NbSocketError):
        return excinfo
    frames: list[types.TracebackType] = []
    tb = error.__traceback__
    while tb is not None and not Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE):
        frames.append(tb)
        tb = tb.tb_next
    if not frames:
        return excinfo
    kept: types.TracebackType | None = None
    for frame in reversed(frames):
        kept = types.TracebackType(kept, frame.tb_frame, frame.tb_lasti, frame.tb_lineno)
    return pytest.ExceptionInfo.from_exception(error.with_traceback(kept))
