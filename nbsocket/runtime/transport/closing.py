"""Closing sockets on the loop: what a finished connection's code was, and aborting one."""

from __future__ import annotations

import asyncio
from typing import Any

from ...core.closes import NORMAL_CLOSES

__all__ = ["NORMAL_CLOSES", "abort_connection", "close_info"]


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
