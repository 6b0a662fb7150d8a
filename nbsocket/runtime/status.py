"""A socket's row of :func:`nbsocket.connections`, built from the public face of its :class:`Connection`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["status_row"]


def status_row(conn: Connection) -> dict[str, Any]:
    """``conn``'s status as one row: name, redacted URL, state, counters, last error, latency, times (no secrets)."""
    stats = conn.stats
    last = conn.last_error
    return {
        "name": conn.name,
        "url": conn.url,
        "state": conn.state,
        "content_type": conn.content_type,
        "messages_in": stats.messages_in,
        "messages_out": stats.messages_out,
        "bytes_in": stats.bytes_in,
        "bytes_out": stats.bytes_out,
        "queued": conn.queued,
        "reconnects": stats.reconnects,
        "errors": stats.errors,
        "parse_errors": stats.parse_errors,
        "last_error": str(last) if last else None,
        "latency": conn.last_latency,
        "opened_at": stats.opened_at,
        "last_message_at": conn.last_message_at,
        "rows": len(conn.frame) if conn.frame is not None else None,
        "handlers": len(conn.handlers),
    }
