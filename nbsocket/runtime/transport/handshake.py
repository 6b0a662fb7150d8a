"""Opening a WebSocket with ``websockets``: :class:`WebsocketsTransport`, the runtime's real transport.

A socket's options become the keywords of ``websockets.asyncio.client.connect``; the connection it opens is
the wire (:class:`~nbsocket.runtime.transport.wire.BatchingConnection`); what opening raises becomes the
nbsocket error that says why (:mod:`~nbsocket.runtime.transport.failures`).
"""

from __future__ import annotations

import logging
import os
import ssl as _ssl
import urllib.request
from typing import Any

from websockets.asyncio.client import connect as websockets_connect
from websockets.version import version as websockets_version

from ...core.options import DEFAULT, ConnectOptions
from ...core.redact import redact_url
from ...errors import InvalidOptionError
from .failures import translate
from .wire import BatchingConnection, PingingConnection, RawTextConnection

__all__ = [
    "PROXIES",
    "WebsocketsTransport",
    "check_supported",
    "environment_proxy",
    "insecure_context",
    "open_connection",
    "websockets_kwargs",
]

wire_log = logging.getLogger("nbsocket.websockets")
"""websockets' own log lines (the frame log at DEBUG) for nbsocket's sockets."""

PROXIES = int(websockets_version.split(".")[0]) >= 15
"""Whether ``websockets`` connects through proxies (from version 15). Before it, the default ``proxy=True`` connects
directly (the environment's proxy settings are not read) and a proxy URL is refused."""


def check_supported(options: ConnectOptions) -> None:
    """Refuse, before anything opens, an option the installed ``websockets`` cannot honour."""
    if not PROXIES and isinstance(options.proxy, str):
        raise InvalidOptionError(
            f"a proxy URL needs websockets 15 or newer (this is {websockets_version}): pip install -U websockets"
        )


def insecure_context() -> _ssl.SSLContext:
    """A TLS context that does not verify certificates (``insecure=True``)."""
    context = _ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = _ssl.CERT_NONE
    return context


def websockets_kwargs(url: str, options: ConnectOptions) -> dict[str, Any]:
    """The keyword arguments for ``websockets.asyncio.client.connect`` (values of as many types as its parameters)."""
    kwargs: dict[str, Any] = {
        "additional_headers": list(options.headers) or None,
        "subprotocols": list(options.subprotocols) or None,
        "origin": options.origin,
        "open_timeout": options.open_timeout,
        "ping_interval": options.ping_interval,
        "ping_timeout": options.ping_timeout,
        "close_timeout": options.close_timeout,
        "max_size": options.max_size,
        "max_queue": options.max_queue,
        "compression": options.compression,
    }
    if PROXIES:
        kwargs["proxy"] = environment_proxy(url) if options.proxy is True else options.proxy
    if options.user_agent is not DEFAULT:
        kwargs["user_agent_header"] = options.user_agent
    if options.insecure:
        kwargs["ssl"] = insecure_context()
    elif options.ssl is not None:
        kwargs["ssl"] = options.ssl
    return kwargs


_proxies: dict[str, str | None] = {}  # scheme://host:port -> the proxy the environment gives it, while the environment is ...
_proxies_environ: dict[Any, Any] = {}  # ... this (a copy)


def environment_proxy(url: str) -> str | bool | None:
    """What ``proxy=True`` means for ``url``: the proxy ``websockets`` would pick from the environment (its
    ``get_proxy``: ``*_proxy`` variables, ``no_proxy``), or ``None``, looked up once while the environment stays the
    same. Reading the environment costs ``websockets`` two passes over every variable per connect, which a loop of
    thousands of connects felt. Where proxies also come from the system (macOS, Windows), ``True``: ``websockets``
    looks them up itself, as before."""
    global _proxies_environ
    data = getattr(os.environ, "_data", None)  # the environment as os.environ keeps it (encoded), compared in one step
    if (
        not isinstance(data, dict)
        or urllib.request.getproxies is not urllib.request.getproxies_environment
        or urllib.request.proxy_bypass is not getattr(urllib.request, "proxy_bypass_environment", None)
    ):
        return True
    if data != _proxies_environ:  # compared in place: nothing is built per connect
        _proxies.clear()
        _proxies_environ = dict(data)
    scheme, _, rest = url.partition("://")
    key = scheme.lower() + "://" + rest.partition("/")[0].rpartition("@")[2].lower()  # the proxy depends on these
    try:  # (and no credentials are kept here)
        return _proxies[key]
    except KeyError:
        pass
    from websockets.proxy import get_proxy
    from websockets.uri import parse_uri

    try:
        proxy = get_proxy(parse_uri(url))
    except Exception:  # websockets raises it again, in its own words
        return True
    if len(_proxies) < 1024:
        _proxies[key] = proxy
    return proxy


async def open_connection(
    url: str, kwargs: dict[str, Any], *, decode_text: bool = True, ping_at_open: bool = False
) -> BatchingConnection:
    """Open ``url`` with ``kwargs`` (from :func:`websockets_kwargs`) and return the wire once the handshake is done;
    ``decode_text=False`` hands text messages over as UTF-8 bytes (:class:`RawTextConnection`); ``ping_at_open``
    pings the server once the session attaches (:class:`PingingConnection`, for text only)."""
    wire: type[BatchingConnection] = (
        (PingingConnection if ping_at_open else BatchingConnection) if decode_text else RawTextConnection
    )
    return await websockets_connect(url, logger=wire_log, create_connection=wire, **kwargs)  # type: ignore[return-value]


class WebsocketsTransport:
    """Opens sockets with ``websockets`` (the :class:`~nbsocket.runtime.transport.interface.Transport` of every real socket)."""

    def check_supported(self, options: ConnectOptions) -> None:
        check_supported(options)

    async def open(
        self,
        url: str,
        options: ConnectOptions,
        *,
        subprotocols: list[str] | None = None,
        decode_text: bool = True,
        ping_at_open: bool = False,
    ) -> BatchingConnection:
        kwargs = websockets_kwargs(url, options)
        if subprotocols is not None:
            kwargs["subprotocols"] = subprotocols
        try:
            return await open_connection(url, kwargs, decode_text=decode_text, ping_at_open=ping_at_open)
        except Exception as exc:
            raise translate(exc, redact_url(url), options.open_timeout) from None  # the cause is kept as its .cause
