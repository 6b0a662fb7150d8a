"""What a connection counts and remembers: its states, counters and error records."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import NamedTuple

__all__ = ["CLOSED_FOR_GOOD", "STATES", "ErrorRecord", "Stats", "ns_to_datetime", "utc_now"]

STATES = ("connecting", "open", "closing", "reconnecting", "closed", "failed")
"""A socket's states, in the order of a normal life."""
CLOSED_FOR_GOOD = ("closed", "failed")
"""States in which nothing happens until the user connects again."""


def utc_now() -> _dt.datetime:
    """The current time, timezone-aware UTC."""
    return _dt.datetime.now(_dt.timezone.utc)


def ns_to_datetime(ns: int) -> _dt.datetime | None:
    """Nanoseconds since the epoch as a UTC datetime (``None`` for 0)."""
    return _dt.datetime.fromtimestamp(ns / 1e9, _dt.timezone.utc) if ns else None


@dataclasses.dataclass
class Stats:
    """Counters of one socket."""

    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    parse_errors: int = 0
    reconnects: int = 0
    resets: int = 0
    errors: int = 0
    opened_at: _dt.datetime | None = None


class ErrorRecord(NamedTuple):
    """One thing that went wrong on a socket: when, where (``handler f``, ``connect``, ``close`` ...), what, and the traceback."""

    time: _dt.datetime
    where: str
    error: str
    message: str
    traceback: str | None = None
    seq: int | None = None

    def __str__(self) -> str:
        return f"{self.time:%H:%M:%S} {self.where}: {self.error}: {self.message}"
