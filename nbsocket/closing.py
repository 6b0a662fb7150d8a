"""Closing sockets: which close codes a client may send, what a finished connection's code was, aborting."""

from __future__ import annotations

import asyncio
from typing import Any

from .errors import InvalidOptionError

NORMAL_CLOSES = (1000, 1001)
"""Close codes of a normal end (not recorded as errors)."""


async def abort_connection(ws: Any) -> None:
    """Drop a connection at once (no close handshake) and wait briefly for it to be gone."""
    transport = getattr(ws, "transport", None)
    if transport is not None:
        transport.abort()
    waiter = getattr(ws, "connection_lost_waiter", None)
    if waiter is not None:
        try:
            await asyncio.wait_for(asyncio.shield(waiter), 1.0)
        except (asyncio.TimeoutError, Exception):
            pass


def close_info(ws: Any) -> tuple[int, str, bool]:
    """Close code and reason of a finished connection: the peer's, else ours (e.g. 1009), else 1006."""
    protocol = ws.protocol
    received, sent = getattr(protocol, "close_rcvd", None), getattr(protocol, "close_sent", None)
    if received is not None:
        return received.code, received.reason, False
    if sent is not None:
        return sent.code, sent.reason, True
    return 1006, "", False


def check_close_code(code: int) -> None:
    """Raise :class:`InvalidOptionError` unless ``code`` is a close code a client may send."""
    if not isinstance(code, int) or not (code in (1000, 1001) or 1002 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
        raise InvalidOptionError(f"{code!r} is not a close code a client may send (use 1000, 1001, or 3000-4999)")
