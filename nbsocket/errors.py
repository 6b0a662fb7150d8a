"""nbsocket's own exceptions.

Every public error is an :class:`NbSocketError`; its message says what went
wrong and what to do about it, and never contains a secret. Where Python code
would catch a built-in error for the same mistake, the class is that built-in
too (in brackets)::

    NbSocketError
    ├── InvalidURLError             [ValueError]    not a ws:// or wss:// URL; refused before any I/O
    ├── InvalidOptionError          [ValueError]    an option that cannot work (connect, magics, codecs, widgets)
    ├── UnknownSocketError          [KeyError]      no socket of that name
    ├── UnknownColumnError          [KeyError]      no column of that name in a frame
    ├── NameInUseError                              the name is taken by another URL or options
    ├── ConnectError                [ConnectionError]  kind: dns, refused, http, tls, timeout, closed, protocol, ...
    │   ├── ConnectTimeoutError     [TimeoutError]
    │   ├── HandshakeStatusError                    the server answered with an HTTP error status
    │   └── TLSError                                certificate not trusted, TLS handshake failed
    ├── SendError                                   a message could not be queued
    │   ├── SocketClosedError                       closed for good; reset first
    │   ├── OutboxFullError                         the server does not read fast enough
    │   └── EncodeError             [ValueError]    the content type cannot encode it
    ├── InvalidMessageError         [ValueError]    a widget's message box does not hold what its mode asks
    ├── CodecError                  [ValueError]    a received message did not parse
    ├── WaitTimeoutError            [TimeoutError]
    ├── ExpectationError            [AssertionError]  an expectation of a test failed (expect, expect_none, assert_ok)
    │   └── ExpectationTimeoutError [TimeoutError]  nothing matching arrived in time, or it arrived late (also a WaitTimeoutError)
    ├── TranscriptFormatError       [ValueError]    not a saved transcript
    ├── LoopThreadError             [RuntimeError]  a blocking call on nbsocket's loop thread
    ├── ProtocolError                               an application protocol used in a way it does not allow
    ├── RemoteError                                 the server answered a call with an error
    └── DemoServerError             [RuntimeError]  the demo server or demo notebook did not start
"""

from __future__ import annotations

import json

from .core.redact import scrub

__all__ = [
    "SHOWN_DATA_CHARS",
    "CodecError",
    "ConnectError",
    "ConnectTimeoutError",
    "DemoServerError",
    "EncodeError",
    "ExpectationError",
    "ExpectationTimeoutError",
    "HandshakeStatusError",
    "InvalidMessageError",
    "InvalidOptionError",
    "InvalidURLError",
    "LoopThreadError",
    "NameInUseError",
    "NbSocketError",
    "OutboxFullError",
    "ProtocolError",
    "RemoteError",
    "SendError",
    "SocketClosedError",
    "TLSError",
    "TranscriptFormatError",
    "UnknownColumnError",
    "UnknownSocketError",
    "WaitTimeoutError",
]


SHOWN_DATA_CHARS = 200
"""A ``ConnectError``'s ``data`` appears in its text when its JSON is at most this long."""


def _inside_nbsocket(filename: str) -> bool:
    """True for a frame of nbsocket's own code (its package folder)."""
    import os

    package = os.path.dirname(os.path.abspath(__file__))
    return os.path.abspath(filename).startswith(package + os.sep)


def _inside_ipython(filename: str) -> bool:
    """True for a frame of IPython's own code (the shell that runs a cell)."""
    import os
    import sys

    ipython = sys.modules.get("IPython")
    if ipython is None or ipython.__file__ is None:
        return False
    package = os.path.dirname(os.path.abspath(ipython.__file__))
    return os.path.abspath(filename).startswith(package + os.sep)


def _scrub_data(data: object) -> object:
    """``data`` with every secret nbsocket knows masked in its strings (dicts, lists and tuples are copied)."""
    if isinstance(data, str):
        return scrub(data)
    if isinstance(data, dict):
        return {_scrub_data(key) if isinstance(key, str) else key: _scrub_data(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_scrub_data(item) for item in data]
    return data


def _short_json(data: object) -> str | None:
    """``data`` as compact JSON when it is short enough to show in an error's text, else ``None``."""
    if data is None:
        return None
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=repr)
    return text if len(text) <= SHOWN_DATA_CHARS else None


class NbSocketError(Exception):
    """Base class of every error nbsocket raises on purpose.

    A notebook shows it as a line or two: the caller's own frames and the message, without
    nbsocket's inner frames (:meth:`_render_traceback_`), while the traceback itself keeps every
    frame for ``%debug``, ``traceback`` and logging. ``cause`` keeps the underlying exception
    (``ConnectionRefusedError``, a ``websockets`` error, ...) when there is one.
    """

    cause: BaseException | None = None

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for this error: the frames up to the call into nbsocket, then the message.

        IPython calls this instead of formatting the whole traceback (as it does for ipyparallel's remote
        errors); frames inside nbsocket are counted, not shown. Outside IPython nothing changes.
        """
        import types

        from IPython.core.getipython import get_ipython

        shell = get_ipython()
        caller_frames = []
        tb = self.__traceback__
        while tb is not None and _inside_ipython(tb.tb_frame.f_code.co_filename):
            tb = tb.tb_next  # the shell's own frames (run_code) above the cell's
        while tb is not None and not _inside_nbsocket(tb.tb_frame.f_code.co_filename):
            caller_frames.append(tb)
            tb = tb.tb_next
        shown: types.TracebackType | None = None
        for entry in reversed(caller_frames):
            shown = types.TracebackType(shown, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
        if shell is None:
            import traceback

            return traceback.format_exception(type(self), self, shown)
        formatter = shell.InteractiveTB
        # tb_offset=0: the shell's frames are left out above, so every frame left is the caller's
        return list(formatter.structured_traceback(type(self), self, shown, tb_offset=0))


class InvalidURLError(NbSocketError, ValueError):
    """The URL is not a ``ws://`` or ``wss://`` URL; refused before any I/O."""


class InvalidOptionError(NbSocketError, ValueError):
    """An option passed to ``connect`` (or a magic) has a value that cannot work."""


class UnknownSocketError(NbSocketError, KeyError):
    """No socket is registered under that name."""

    def __init__(self, name: str, known: list[str] | tuple[str, ...] = ()) -> None:
        self.name = name
        self.known = tuple(known)
        hint = (
            "known sockets: " + ", ".join(repr(k) for k in self.known)
            if self.known
            else "no sockets are registered; connect one with nbs.connect(name, url)"
        )
        super().__init__(f"no socket named {name!r} ({hint})")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnknownColumnError(NbSocketError, KeyError):
    """A frame has no column of that name (e.g. :func:`nbsocket.to_datetime`)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class NameInUseError(NbSocketError):
    """``connect`` was called with a name that is registered to another URL or options."""


class ConnectError(NbSocketError, ConnectionError):
    """Opening the WebSocket failed; ``kind`` tells why.

    ``kind`` is one of ``dns``, ``refused``, ``http``, ``tls``, ``timeout``,
    ``handshake``, ``proxy``, ``network`` or ``closed`` (the server accepted
    the handshake and at once closed with a code that says "do not come
    back", e.g. 1008 or 4000-4999; ``code`` and ``reason`` are the server's).

    ``data`` is what the server sent with a protocol refusal (``kind="protocol"``:
    Socket.IO ``connect_error`` data, a GraphQL ``connection_error`` payload),
    secrets masked. The text shows it when it is short
    (at most :data:`SHOWN_DATA_CHARS` characters as JSON); a longer one is only
    in ``data``.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        status: int | None = None,
        code: int | None = None,
        reason: str | None = None,
        data: object = None,
    ) -> None:
        data = _scrub_data(data)
        shown = _short_json(data)
        super().__init__(f"{message} (data: {shown})" if shown is not None else message)
        self.kind = kind
        self.status = status
        self.code = code
        self.reason = reason
        self.data = data


class ConnectTimeoutError(ConnectError, TimeoutError):
    """The TCP connection, TLS or WebSocket handshake did not finish in ``open_timeout``."""


class HandshakeStatusError(ConnectError):
    """The server answered the WebSocket handshake with an HTTP error status."""


class TLSError(ConnectError):
    """The TLS handshake failed, usually because the certificate was not trusted."""


class SendError(NbSocketError):
    """A message could not be queued for sending."""


class SocketClosedError(SendError):
    """The socket is closed for good; reset or reconnect it before sending."""


class OutboxFullError(SendError):
    """Too many messages are waiting to be sent; the server is not reading them fast enough."""


class EncodeError(SendError, ValueError):
    """The message cannot be encoded with the socket's content type."""


class InvalidMessageError(NbSocketError, ValueError):
    """The message box does not hold what its mode asks for (JSON mode with text that is not JSON)."""


class CodecError(NbSocketError, ValueError):
    """A received message could not be parsed with the socket's content type."""


class WaitTimeoutError(NbSocketError, TimeoutError):
    """Waiting for messages or for a state took longer than the timeout."""


class ExpectationError(NbSocketError, AssertionError):
    """An expectation failed: ``conn.expect`` (a schema violated), ``conn.expect_none``, ``report.assert_ok``.

    Its text names the expectation, what arrived instead (the closest messages, with the fields that differ and both
    values) and how long it waited; pytest shows it as an assertion failure.
    """


class ExpectationTimeoutError(ExpectationError, WaitTimeoutError):
    """Nothing matching arrived in time (``expect``, ``request``), or it arrived later than ``within`` allowed."""


class TranscriptFormatError(NbSocketError, ValueError):
    """A file or object given as a transcript is not one (not JSON Lines, or its lines are not transcript entries)."""


class LoopThreadError(NbSocketError, RuntimeError):
    """A blocking call was made from nbsocket's own loop thread, where it would deadlock."""


class ProtocolError(NbSocketError):
    """An application protocol (Socket.IO, GraphQL, JSON-RPC, STOMP) was used in a way it does not allow."""


class RemoteError(NbSocketError):
    """The server answered a ``call`` with an error: ``code``, ``message`` and ``data`` are its own."""

    def __init__(self, message: str, *, code: object = None, data: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


class DemoServerError(NbSocketError, RuntimeError):
    """The demo server (or the demo's notebook run) did not start or was used before it started."""
