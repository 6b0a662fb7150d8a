"""The registry of named sockets and the synchronous facade onto the loop thread."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import re
import threading
from collections.abc import Callable
from typing import Any, cast

import pandas as pd

from ..core.frame import LiveFrame
from ..core.options import ConnectOptions, build_options, warn_insecure
from ..core.redact import add_secrets, install_log_filter, redact_url, url_secrets
from ..core.state import CLOSED_FOR_GOOD
from ..core.urls import validate_url
from ..errors import ConnectTimeoutError, InvalidOptionError, NameInUseError, UnknownSocketError
from .connection import Connection
from .dispatch.lockable import Lockable
from .elsewhere import HeldElsewhere
from .loop import LoopThread
from .protocols.connection import ProtocolConnection
from .transport import Transport, WebsocketsTransport

__all__ = ["PRIMARY", "STATUS_COLUMNS", "TICK_SECONDS", "Manager", "default_manager", "registry", "validate_name"]


log = logging.getLogger("nbsocket")
install_log_filter(log)
install_log_filter(logging.getLogger("nbsocket.websockets"))

STATUS_COLUMNS = [
    "name",
    "url",
    "protocol",
    "state",
    "content_type",
    "messages_in",
    "messages_out",
    "bytes_in",
    "bytes_out",
    "queued",
    "reconnects",
    "errors",
    "parse_errors",
    "last_error",
    "latency_s",
    "latency",
    "opened_at",
    "last_message_at",
    "rows",
    "handlers",
    "record",
    "record_pending",
    "record_dropped",
    "record_lag_s",
]
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
PRIMARY = "connect"
"""Key of the handler passed to ``connect``; re-running ``connect`` replaces it."""

TICK_SECONDS = 0.05


def validate_name(name: object) -> str:
    """A socket name: ASCII letters and digits, ``_``, ``.`` and ``-``, not starting with ``.`` or ``-``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidOptionError(
            f"{name!r} is not a valid socket name: use ASCII letters A-Z and a-z, digits, '_', '.' or '-', "
            "not starting with '.' or '-', and nothing else (no spaces or newlines; e.g. 'prices')"
        )
    return name


class Manager:
    """Owns the loop thread and every named :class:`Connection`; all front ends go through it."""

    def __init__(self, *, transport: Transport | None = None) -> None:
        self.transport: Transport = transport if transport is not None else WebsocketsTransport()
        """How this registry's sockets open (a :class:`~nbsocket.runtime.transport.ScriptedTransport` in runtime tests)."""
        self._loop_thread = LoopThread()
        self._connections: dict[str, Connection] = {}
        self._lock = threading.RLock()
        self.lockable = Lockable()
        self._ticker: concurrent.futures.Future[None] | None = None
        self._watched: list[LiveFrame] = []  # the frames with subscribers or sinks, listed again when ...
        self._watch_version = 0  # ... this changes (a frame gained or lost one, a socket came or went)
        self._watched_version = -1
        self._atexit_registered = False
        self._holds: Callable[[str], bool] | None = None
        self._shard = ""
        self._elsewhere: dict[str, HeldElsewhere] = {}
        self._connect_listeners: list[Callable[[Connection], object]] = []

    # --- running as one shard of many (nbsocket run --shard I/N) ------------------------------

    def hold_only(self, holds: Callable[[str], bool] | None, shard: str = "") -> None:
        """Open only the sockets whose names ``holds`` accepts; ``connect`` returns a :class:`HeldElsewhere` for the
        others (``None``: hold every socket)."""
        self._holds = holds
        self._shard = shard

    def add_connect_listener(self, listener: Callable[[Connection], object]) -> None:
        """Call ``listener(conn)`` for every new connection, before it opens (a service logs its state changes)."""
        self._connect_listeners.append(listener)

    def held_elsewhere(self) -> list[str]:
        """Names ``connect`` was called with that another shard holds."""
        return list(self._elsewhere)

    # --- registry -------------------------------------------------------------------

    def names(self) -> list[str]:
        """Names of the registered sockets."""
        with self._lock:
            return list(self._connections)

    def get(self, name: str) -> Connection:
        """The connection registered as ``name``."""
        with self._lock:
            conn = self._connections.get(name)
            if conn is None:
                elsewhere = self._elsewhere.get(name)
                if elsewhere is not None:
                    return cast(Connection, elsewhere)  # the same verbs, doing nothing
                raise UnknownSocketError(name, list(self._connections))
            return conn

    def find(self, name: str) -> Connection | None:
        """The live connection registered as ``name``, or ``None`` (unknown, or being removed)."""
        conn = self._connections.get(name)
        return None if conn is None or conn.removed else conn

    def __contains__(self, name: object) -> bool:
        return name in self._connections

    # --- connect --------------------------------------------------------------------------

    def connect(
        self,
        name: str,
        url: str,
        handler: Callable[..., Any] | None = None,
        *,
        args: tuple[Any, ...] = (),
        on_open: Callable[..., Any] | None = None,
        on_close: Callable[..., Any] | None = None,
        on_error: Callable[..., Any] | None = None,
        replace: bool = False,
        **options: Any,
    ) -> Connection:
        """Open a named socket and return its :class:`Connection` once it is open (see :func:`nbsocket.connect`)."""
        validate_name(name)
        url = validate_url(url)
        opts = build_options(url, **options)
        self.transport.check_supported(opts)
        for cb_name, cb in (("handler", handler), ("on_open", on_open), ("on_close", on_close), ("on_error", on_error)):
            if cb is not None and not callable(cb):
                raise InvalidOptionError(f"{cb_name} must be callable, not {type(cb).__name__}")
        if self._holds is not None and not self._holds(name):
            with self._lock:
                elsewhere = self._elsewhere.setdefault(name, HeldElsewhere(name, url, self._shard))
            return cast(Connection, elsewhere)  # a stand-in with the verbs of a Connection, doing nothing
        with self._lock:
            existing = self._connections.get(name)
            if existing is not None and not replace:
                if not existing._same_target(url, opts):
                    raise NameInUseError(self._in_use_message(existing, url, opts))
                self._configure(existing, handler, args, on_open, on_close, on_error)
                reopen = existing.state in CLOSED_FOR_GOOD
            else:
                reopen = False
        if existing is not None and not replace:
            if reopen:
                existing.reset()
            return existing
        if existing is not None:
            self.remove(name)
        kind = ProtocolConnection if opts.protocol is not None else Connection
        conn = kind(self, name, url, opts, lockable=self.lockable, loop_thread=self._loop_thread, transport=self.transport)
        return self._open_new(conn, handler, args, on_open, on_close, on_error)

    def follow(
        self,
        name: str,
        url: str,
        since: Any = "new",
        handler: Callable[..., Any] | None = None,
        *,
        args: tuple[Any, ...] = (),
        on_open: Callable[..., Any] | None = None,
        on_close: Callable[..., Any] | None = None,
        on_error: Callable[..., Any] | None = None,
        replace: bool = False,
        **options: Any,
    ) -> Connection:
        """Follow a JetStream subject as socket ``name`` (see :func:`nbsocket.follow`); returns once it is followed."""
        from .follow import FollowConnection, JetStreamTransport, follow_target

        validate_name(name)
        transport = JetStreamTransport(follow_target(url), since)
        opts = build_options(url, **options)
        with self._lock:
            existing = self._connections.get(name)
        if existing is not None and not replace:
            if not isinstance(existing, FollowConnection) or not existing._same_target(url, opts):
                raise NameInUseError(self._in_use_message(existing, url, opts))
            self._configure(existing, handler, args, on_open, on_close, on_error)
            return existing
        if existing is not None:
            self.remove(name)
        conn = FollowConnection(self, name, url, opts, lockable=self.lockable, loop_thread=self._loop_thread, transport=transport)
        return self._open_new(conn, handler, args, on_open, on_close, on_error)

    def _open_new(
        self,
        conn: Connection,
        handler: Callable[..., Any] | None,
        args: tuple[Any, ...],
        on_open: Callable[..., Any] | None,
        on_close: Callable[..., Any] | None,
        on_error: Callable[..., Any] | None,
    ) -> Connection:
        """Register a new connection and wait for its first open; if that fails, nothing stays registered."""
        name, opts = conn.name, conn.options
        self._configure(conn, handler, args, on_open, on_close, on_error)
        for listener in self._connect_listeners:
            listener(conn)
        with self._lock:
            if name in self._connections:
                raise NameInUseError(f"socket {name!r} was connected by another thread just now; use nbs.get({name!r})")
            self._connections[name] = conn
            self._socket_changed(conn)
        if conn.frame is not None:
            conn.frame.on_watch_change = self._frames_changed
        if opts.insecure:
            warn_insecure(conn.url)
        self._ensure_started()
        try:
            self._loop_thread.run(conn._open_first(), conn.open_timeout_total)
        except concurrent.futures.TimeoutError:
            with self._lock:
                if self._connections.get(name) is conn:
                    del self._connections[name]
                    self._socket_changed(conn)
            self._discard(conn)
            raise ConnectTimeoutError(
                f"{conn.url} did not open within {conn.open_timeout_total:g} s (open_timeout={opts.open_timeout}); "
                "raise open_timeout, or pass open_timeout=None to wait as long as it takes",
                kind="timeout",
            ) from None
        except BaseException:
            with self._lock:
                if self._connections.get(name) is conn:
                    del self._connections[name]
                    self._socket_changed(conn)
            self._discard(conn)
            raise
        return conn

    @staticmethod
    def _configure(
        conn: Connection,
        handler: Callable[..., Any] | None,
        args: tuple[Any, ...],
        on_open: Callable[..., Any] | None,
        on_close: Callable[..., Any] | None,
        on_error: Callable[..., Any] | None,
    ) -> None:
        if handler is not None:
            conn.on_message(handler, args=args, key=PRIMARY)
        conn.on_open = on_open if on_open is not None else conn.on_open
        conn.on_close = on_close if on_close is not None else conn.on_close
        conn.on_error = on_error if on_error is not None else conn.on_error

    @staticmethod
    def _in_use_message(existing: Connection, url: str, opts: ConnectOptions) -> str:
        if not existing._same_target(url, existing.options):
            what = f"connected to {existing.url}, not {redact_url(url)}"
        else:
            what = "connected with other options (" + ", ".join(opts.differences(existing.options)) + ")"
        return (
            f"socket {existing.name!r} is already {what} (state {existing.state}). "
            f"Pass replace=True to replace it, use nbs.reset({existing.name!r}, url=...) to move it, or pick another name."
        )

    def connect_like(self, source: Connection, name: str, **overrides: Any) -> Connection:
        """Open socket ``name`` here to ``source``'s URL with its options (not its handlers, callbacks or recording);
        ``overrides`` are ``connect`` keywords that differ. ``source`` may belong to another manager."""
        url, options = source._connect_arguments()
        options.update({"record": None, **overrides})
        return self.connect(name, url, **options)

    def validate_url_for(self, conn: Connection, url: str) -> str:
        """``url`` checked as a new URL for ``conn`` (scheme, TLS options kept); its secrets are remembered."""
        url = validate_url(url)
        if url.lower().startswith("ws:") and (conn.options.ssl is not None or conn.options.insecure):
            raise InvalidOptionError(f"{conn.name!r} was connected with TLS options; it cannot move to a ws:// URL")
        add_secrets(url_secrets(url))
        return url

    def _discard(self, conn: Connection) -> None:
        if self._loop_thread.running and not self._loop_thread.in_loop_thread():
            try:
                self._loop_thread.run(conn._shutdown(1000, "connect failed"), 5.0)
            except Exception:
                pass

    # --- verbs by name ---------------------------------------------------------------------

    def send(self, name: str, message: Any) -> None:
        """Queue ``message`` on socket ``name``."""
        self.get(name).send(message)

    def disconnect(self, name: str, code: int = 1000, reason: str = "") -> None:
        """Close socket ``name``, keeping its registration."""
        self.get(name).disconnect(code, reason)

    def disconnect_all(self, code: int = 1000, reason: str = "") -> None:
        """Close every socket, keeping their registrations."""
        for name in self.names():
            conn = self._connections.get(name)
            if conn is not None and conn.state not in CLOSED_FOR_GOOD:
                conn.disconnect(code, reason)

    def reset(self, name: str, url: str | None = None) -> None:
        """Reconnect socket ``name``, to ``url`` if given."""
        self.get(name).reset(url)

    def remove(self, name: str) -> None:
        """Disconnect socket ``name`` and forget it."""
        with self._lock:
            if self._elsewhere.pop(name, None) is not None:
                return
            conn = self.get(name)
            del self._connections[name]
            self._socket_changed(conn)
        conn._mark_removed()
        queued = conn.queued
        if queued:
            log.warning("socket %r removed with %d message(s) still queued; they were not sent", name, queued)
        if self._loop_thread.running:
            conn._run_or_schedule(conn._shutdown(1000, "removed"), conn.stop_timeout)

    def test(self, name: str) -> bool:
        """Is socket ``name`` open right now? (False for unknown names)"""
        conn = self._connections.get(name)
        return conn is not None and conn.test()

    # --- views ------------------------------------------------------------------------------

    def connections(self) -> pd.DataFrame:
        """One row per socket: state, counters, latency, last error (no secrets)."""
        rows = [{"protocol": None, **conn.status()} for conn in list(self._connections.values())]
        return pd.DataFrame(rows, columns=STATUS_COLUMNS)

    def frame(self, name: str | None = None) -> pd.DataFrame:
        """A snapshot of socket ``name``'s live frame, or of every socket's together."""
        if name is not None:
            conn = self.get(name)
            if conn.frame is None:
                raise InvalidOptionError(f"socket {name!r} has no live frame (it was connected with frame=False)")
            return conn.frame.snapshot()
        frames = [c.frame.snapshot() for c in list(self._connections.values()) if c.frame is not None]
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame({"timestamp": pd.Series(dtype="datetime64[ns, UTC]"), "socket": [], "seq": []})
        combined = pd.concat(frames, ignore_index=True)
        return combined.sort_values(["timestamp", "socket", "seq"], kind="stable", ignore_index=True)

    # --- loop, ticker and shutdown ------------------------------------------------------------------

    @property
    def loop_thread(self) -> LoopThread:
        """The background loop thread."""
        return self._loop_thread

    def _ensure_started(self) -> None:
        fresh = not self._loop_thread.running
        self._loop_thread.ensure_started()
        if fresh:
            self._ticker = self._loop_thread.submit(self._tick())
        if not self._atexit_registered:
            self._atexit_registered = True
            atexit.register(self.shutdown)

    async def _tick(self) -> None:
        """Deliver new live-frame rows to subscribers at their rates, and let the handler workers grow when every
        one is held by a slow handler."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self._loop_thread.handler_pool.check()
            version = self._watch_version
            if version != self._watched_version:
                with self._lock:
                    frames = [conn.frame for conn in self._connections.values() if conn.frame is not None]
                self._watched = [frame for frame in frames if frame.watched]
                self._watched_version = version
            for frame in self._watched:
                if frame.needs_poll:
                    frame.poll()

    def _frames_changed(self) -> None:
        """A live frame gained or lost a subscriber or sink: the ticker lists the frames it polls again."""
        self._watch_version += 1

    def _socket_changed(self, conn: Connection) -> None:
        """A socket came or went: the ticker lists the frames it polls again, if this socket's frame is one of them
        (a loop of thousands of connects must not make every tick look at every socket)."""
        if conn.frame is not None and conn.frame.watched:
            self._watch_version += 1

    def shutdown(self, timeout: float = 2.0) -> None:
        """Close every socket with 1001 and stop the loop thread, within about ``timeout`` seconds."""
        with self._lock:
            conns = list(self._connections.values())
            self._connections.clear()
            self._watch_version += 1
        for conn in conns:
            conn._mark_removed()
        if not self._loop_thread.running:
            return
        if conns:
            try:
                self._loop_thread.run(_close_all(conns, timeout * 0.6), timeout * 0.75)
            except Exception:
                log.debug("shutdown: closing sockets took too long; aborting the rest", exc_info=True)
        self._loop_thread.stop(max(0.2, timeout * 0.25))


async def _close_all(conns: list[Connection], timeout: float) -> None:
    tasks = [asyncio.ensure_future(c._shutdown(1001, "going away")) for c in conns]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for conn in conns:
        conn._abort()
    for task in pending:
        task.cancel()
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.debug("shutdown: closing a socket failed: %r", task.exception())


default_manager = Manager()
"""The manager behind the module-level API."""


def registry() -> Manager:
    """The process-wide registry of named sockets: the one ``nbs.connect``, the magics and the widgets use."""
    return default_manager
