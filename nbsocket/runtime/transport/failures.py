"""Turning what websockets, asyncio and the OS raise while opening a socket into a clear :class:`ConnectError`."""

from __future__ import annotations

import asyncio
import socket
import ssl

from websockets.exceptions import (
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidUpgrade,
    InvalidURI,
)

try:
    from websockets.exceptions import ProxyError
except ImportError:  # websockets 14 has no proxy support
    ProxyError = None  # type: ignore[assignment,misc]

from ...core.redact import scrub
from ...errors import ConnectError, ConnectTimeoutError, HandshakeStatusError, InvalidURLError, TLSError

__all__ = ["translate"]


_TLS_HINT = (
    "pass ssl=ssl.create_default_context(cafile='ca.pem') to trust the server's CA, "
    "or insecure=True to skip verification (not recommended)"
)


def _body_excerpt(body: bytes | bytearray | None, limit: int = 200) -> str:
    if not body:
        return ""
    text = body[:limit].decode("utf-8", "replace").strip().replace("\n", " ")
    return f": {text!r}" if text else ""


def translate(exc: BaseException, shown_url: str, open_timeout: float | None) -> ConnectError | InvalidURLError:
    """The nbsocket error that says why connecting to ``shown_url`` failed (secrets removed); ``cause`` is ``exc``."""
    error = _explain(exc, shown_url, open_timeout)
    if error is not exc and error.cause is None:
        error.cause = exc
    return error


def _explain(exc: BaseException, shown_url: str, open_timeout: float | None) -> ConnectError | InvalidURLError:
    where = f"cannot connect to {shown_url}"
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, InvalidStatus):
        response = exc.response
        status = response.status_code
        reason = response.reason_phrase or ""
        hints = {
            401: "the server wants credentials: pass headers={'Authorization': ...}",
            403: "the server refused access: check the credentials, Origin or token",
            404: "no WebSocket endpoint at this path: check the URL",
        }
        hint = hints.get(status, "the server may be down or overloaded; it is retried" if status >= 500 else "")
        message = f"{where}: the server answered the handshake with HTTP {status} {reason}{_body_excerpt(response.body)}"
        if hint:
            message += f" ({hint})"
        return HandshakeStatusError(scrub(message), kind="http", status=status)
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or str(exc)
        return TLSError(scrub(f"{where}: TLS certificate verification failed ({detail}); {_TLS_HINT}"), kind="tls")
    if isinstance(exc, ssl.SSLError):
        return TLSError(
            scrub(f"{where}: TLS handshake failed ({exc.reason or exc}); is this really a wss:// server?"), kind="tls"
        )
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return ConnectTimeoutError(
            scrub(f"{where}: no answer within open_timeout={open_timeout}s (raise open_timeout, or check the host and port)"),
            kind="timeout",
        )
    if isinstance(exc, socket.gaierror):
        return ConnectError(
            scrub(f"{where}: the host name could not be resolved ({exc.strerror or exc}); check the spelling and your network"),
            kind="dns",
        )
    if isinstance(exc, ConnectionRefusedError) or (isinstance(exc, OSError) and "Connect call failed" in str(exc)):
        return ConnectError(
            scrub(f"{where}: connection refused; is the server running and listening on that port?"), kind="refused"
        )
    if isinstance(exc, InvalidURI):
        return InvalidURLError(scrub(f"{shown_url!r} is not a valid WebSocket URL: {exc.msg}"))
    if ProxyError is not None and isinstance(exc, ProxyError):
        return ConnectError(
            scrub(f"{where}: the proxy refused the connection ({exc}); pass proxy=None to connect directly"), kind="proxy"
        )
    if isinstance(exc, InvalidUpgrade):
        return ConnectError(
            scrub(
                f"{where}: the server answered with HTTP but did not upgrade to WebSocket ({exc}); is this a WebSocket endpoint?"
            ),
            kind="handshake",
        )
    if isinstance(exc, InvalidMessage):
        cause = exc.__cause__ or exc.__context__
        detail = f"{type(cause).__name__}: {cause}" if cause else str(exc)
        return ConnectError(
            scrub(f"{where}: the server did not send a valid HTTP response ({detail}); is this a WebSocket server?"),
            kind="handshake",
        )
    if isinstance(exc, InvalidHandshake):
        return ConnectError(scrub(f"{where}: the WebSocket handshake failed ({type(exc).__name__}: {exc})"), kind="handshake")
    if isinstance(exc, OSError):
        return ConnectError(scrub(f"{where}: network error ({exc.strerror or exc})"), kind="network")
    return ConnectError(scrub(f"{where}: {type(exc).__name__}: {exc}"), kind="network")
