"""The plain Python API: Pode's external WebSocket verbs as functions on named sockets."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from .core.saved_tests import SavedTest
from .errors import NbSocketError
from .explore.replay import burst, burst_async, replay, replay_async
from .explore.saved_tests import propose_ignore
from .explore.transcript_files import compare, load_transcript
from .runtime import Connection, registry

__all__ = [  # with the explore verbs the package offers as nbs.* (burst, compare, replay ...)
    "burst",
    "burst_async",
    "compare",
    "connect",
    "connections",
    "dashboard",
    "disconnect",
    "follow",
    "frame",
    "get",
    "load_transcript",
    "panel",
    "plot",
    "propose_ignore",
    "public_error",
    "remove",
    "replay",
    "replay_async",
    "reset",
    "save_test",
    "send",
    "shutdown",
    "test",
    "wait",
]


def public_error(exc: NbSocketError) -> NbSocketError:
    """``exc`` made fit to raise from a public call: its chained cause kept as ``exc.cause``.

    Used as ``raise public_error(exc) from None``: the notebook shows the user's own frames and the
    message (:meth:`NbSocketError._render_traceback_` leaves nbsocket's frames out), and the traceback
    keeps every frame for ``%debug`` and logging.
    """
    if exc.cause is None:
        exc.cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return exc


def connect(
    name: str,
    url: str,
    handler: Callable[..., Any] | None = None,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    subprotocols: list[str] | None = None,
    args: tuple[Any, ...] = (),
    on_open: Callable[..., Any] | None = None,
    on_close: Callable[..., Any] | None = None,
    on_error: Callable[..., Any] | None = None,
    replace: bool = False,
    **options: Any,
) -> Connection:
    """Open a named connection to a WebSocket server and return it once it is open.

    ``handler(event, *args)`` is called for every message (sync or async; sync
    handlers run on a worker thread, in order). Options: ``content_type``,
    ``headers``, ``subprotocols``, ``origin``, ``user_agent``, ``ssl``
    (an ``SSLContext``), ``insecure``, ``proxy``, ``open_timeout``,
    ``ping_interval``, ``ping_timeout``, ``close_timeout``, ``max_size``,
    ``max_queue``, ``compression``, ``reconnect`` (``True``, ``False`` or a
    :class:`ReconnectPolicy`), ``outbox_size``, ``send_timeout``, ``frame``, ``max_rows``,
    ``max_columns``, ``record``, ``secret_headers``, ``secrets``; each is
    described, with its default, in ``nbsocket.core.options.CONNECT_OPTIONS``.

    ``protocol`` makes the socket speak an application protocol and returns a
    :class:`ProtocolConnection` (``emit``, ``call``, ``notify``, ``subscribe``,
    ``publish``): ``"socketio"`` (options ``namespace``, ``auth``, ``path``),
    ``"graphql-ws"`` and ``"graphql-ws-legacy"`` (``init_payload``,
    ``keepalive``), ``"jsonrpc"``, ``"stomp"`` (``login``, ``passcode``,
    ``host``, ``heartbeat``, ``ack``), or one added with
    :func:`register_protocol`. ``auth``, ``init_payload`` and ``passcode`` are
    secrets. With a protocol, ``connect`` returns once the protocol's handshake
    is done, or raises ``ConnectError(kind="protocol")`` with the server's reason.

    Re-running with the same name, URL and options returns the existing
    connection (replacing its handler); another URL raises
    :class:`NameInUseError` unless ``replace=True``. If the connection cannot
    be opened, the real cause is raised (:class:`ConnectError` and subclasses)
    and nothing stays registered.
    """
    try:
        return registry().connect(
            name,
            url,
            handler,
            content_type=content_type,
            headers=headers,
            subprotocols=subprotocols,
            args=args,
            on_open=on_open,
            on_close=on_close,
            on_error=on_error,
            replace=replace,
            **options,
        )
    except NbSocketError as exc:
        raise public_error(exc) from None


def send(name: str, message: Any) -> None:
    """Send ``message`` on socket ``name``: dict/list encoded by its content type, ``str`` as text, ``bytes`` as binary.

    See :meth:`Connection.send` for the outbox and its limits.
    """
    try:
        registry().send(name, message)
    except NbSocketError as exc:
        raise public_error(exc) from None


def disconnect(name: str, code: int = 1000, reason: str = "") -> None:
    """Close socket ``name`` and keep its registration, so it can be reset later."""
    try:
        registry().disconnect(name, code, reason)
    except NbSocketError as exc:
        raise public_error(exc) from None


def reset(name: str, url: str | None = None) -> None:
    """Reconnect socket ``name``, to a new ``url`` if given, keeping its handlers and options."""
    try:
        registry().reset(name, url)
    except NbSocketError as exc:
        raise public_error(exc) from None


def remove(name: str) -> None:
    """Disconnect socket ``name`` and forget it."""
    try:
        registry().remove(name)
    except NbSocketError as exc:
        raise public_error(exc) from None


def test(name: str) -> bool:
    """True if socket ``name`` exists and is open right now."""
    return registry().test(name)


test.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def get(name: str) -> Connection:
    """The :class:`Connection` registered as ``name``."""
    try:
        return registry().get(name)
    except NbSocketError as exc:
        raise public_error(exc) from None


def connections() -> pd.DataFrame:
    """Status of every socket: one row each, with redacted URLs."""
    return registry().connections()


def frame(name: str | None = None) -> pd.DataFrame:
    """Snapshot of socket ``name``'s live frame (all sockets when ``name`` is omitted)."""
    try:
        return registry().frame(name)
    except NbSocketError as exc:
        raise public_error(exc) from None


def wait(name: str, count: int = 1, timeout: float | None = 30.0) -> list[Any]:
    """Block until ``count`` more messages arrive on socket ``name``; returns their events."""
    try:
        return registry().get(name).wait(count, timeout)
    except NbSocketError as exc:
        raise public_error(exc) from None


def save_test(name: str, path: str | os.PathLike[str], ignore: str | Iterable[str] = ()) -> SavedTest:
    """Write socket ``name``'s exploration as a pytest file at ``path`` (see :meth:`Connection.save_test`).

    ``ignore`` lists fields the expectations leave out (names or glob patterns:
    ``("ts", "items.*.id")``); :func:`propose_ignore` finds the ones that change
    on every run. Returns what was written: ``.path`` and ``.environment``, the
    variables the test reads (its URL, and every secret, never written).
    """
    try:
        return registry().get(name).save_test(path, ignore)
    except NbSocketError as exc:
        raise public_error(exc) from None


def follow(
    name: str,
    url: str,
    since: Any = "new",
    handler: Callable[..., Any] | None = None,
    *,
    replace: bool = False,
    **options: Any,
) -> Connection:
    """Follow a JetStream subject that recorders elsewhere write (``record="nats://..."``) as socket ``name``.

    ``url`` is ``nats://HOST:PORT/SUBJECT`` (``?stream=NAME`` to name the stream). ``since`` is
    ``"start"`` (all the stream holds), ``"new"`` (only what is published from now on) or a time
    (a datetime or ISO 8601 string; naive means UTC). Returns a read-only :class:`Connection`: its
    live frame (``nbs.frame(name)``), ``nbs.panel(name)``, ``nbs.plot(name)``, handlers and waits
    work as for a socket; rows keep the recorder's receipt time and seq. Options are ``connect``'s
    (``content_type``, ``max_rows``, ``on_open``, ...). Needs nats-py (``pip install 'nbsocket[nats]'``).
    """
    try:
        return registry().follow(name, url, since, handler, replace=replace, **options)
    except NbSocketError as exc:
        raise public_error(exc) from None


def shutdown(timeout: float = 2.0) -> None:
    """Close every socket (code 1001) and stop the background loop thread."""
    registry().shutdown(timeout)


def panel(name: str, **kwargs: Any) -> Any:
    """A live ipywidgets panel for socket ``name``: state, counters, latest rows, Send, Reset, Disconnect."""
    from .widgets import panel as make_panel

    return make_panel(name, **kwargs)


def dashboard(**kwargs: Any) -> Any:
    """A live ipywidgets dashboard of every socket, one row each, with the same buttons."""
    from .widgets import dashboard as make_dashboard

    return make_dashboard(**kwargs)


def plot(name: str, y: str | list[str] | None = None, x: str = "timestamp", window: int = 500, **kwargs: Any) -> Any:
    """A live chart of numeric columns of socket ``name``'s frame, following new rows."""
    from .widgets import plot as make_plot

    return make_plot(name, y=y, x=x, window=window, **kwargs)
