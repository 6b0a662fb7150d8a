"""What a connection counts and remembers: its states, counters and error records."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import html
from typing import NamedTuple

__all__ = ["CLOSED_FOR_GOOD", "STATES", "ErrorList", "ErrorRecord", "Stats", "ns_to_datetime", "utc_now"]

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
        on = f" (message {self.seq})" if self.seq is not None else ""
        return f"{self.time:%H:%M:%S} {self.where}: {self.error}: {self.message}{on}"

    def __repr__(self) -> str:
        folded = ", traceback folded: print(record.traceback)" if self.traceback else ""
        return f"<ErrorRecord {self}{folded}>"

    def _repr_html_(self) -> str:
        return ErrorList([self])._repr_html_()


class ErrorList(list[ErrorRecord]):
    """A socket's error records (``conn.errors``), oldest first: a list that shows itself as a table.

    In a notebook each record is a row (time, where, error, message, message number) with its
    traceback folded under it; printed, one line per record.
    """

    def __repr__(self) -> str:
        if not self:
            return "ErrorList([]): no errors"
        lines = [f"ErrorList of {len(self)} error(s), oldest first (each .traceback has the details):"]
        lines += [f"  {index}: {record}" for index, record in enumerate(self)]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if not self:
            return "<div>no errors</div>"
        cell = 'style="text-align:left;vertical-align:top;padding:2px 10px 2px 0"'
        head = "".join(f"<th {cell}>{name}</th>" for name in ("#", "time (UTC)", "where", "error", "message", "message no."))
        rows = []
        for index, record in enumerate(self):
            values = (index, f"{record.time:%H:%M:%S.%f}"[:-3], record.where, record.error, record.message, record.seq or "")
            rows.append("<tr>" + "".join(f"<td {cell}>{html.escape(str(v))}</td>" for v in values) + "</tr>")
            if record.traceback:
                rows.append(
                    f'<tr><td></td><td colspan="5"><details><summary style="cursor:pointer">traceback</summary>'
                    f'<pre style="font-size:85%;white-space:pre-wrap">{html.escape(record.traceback)}</pre></details></td></tr>'
                )
        return f'<table class="nbsocket-errors-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
