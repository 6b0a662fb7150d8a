"""The WebSocket handshake's arguments: a socket's options as ``websockets.asyncio.client.connect`` takes them."""

from __future__ import annotations

import ssl as _ssl
from typing import Any

from ..core.options import DEFAULT, ConnectOptions

__all__ = ["insecure_context", "websockets_kwargs"]


def insecure_context() -> _ssl.SSLContext:
    """A TLS context that does not verify certificates (``insecure=True``)."""
    context = _ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = _ssl.CERT_NONE
    return context


def websockets_kwargs(url: str, options: ConnectOptions) -> dict[str, Any]:
    """The keyword arguments for ``websockets.asyncio.client.connect``."""
    kwargs: dict[str, Any] = {
        "additional_headers": list(options.headers) or None,
        "subprotocols": list(options.subprotocols) or None,
        "origin": options.origin,
        "proxy": options.proxy,
        "open_timeout": options.open_timeout,
        "ping_interval": options.ping_interval,
        "ping_timeout": options.ping_timeout,
        "close_timeout": options.close_timeout,
        "max_size": options.max_size,
        "max_queue": options.max_queue,
        "compression": options.compression,
    }
    if options.user_agent is not DEFAULT:
        kwargs["user_agent_header"] = options.user_agent
    if options.insecure:
        kwargs["ssl"] = insecure_context()
    elif options.ssl is not None:
        kwargs["ssl"] = options.ssl
    return kwargs
