"""A socket's error log: every failure recorded with its traceback, warnings in the log kept few."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

from ...core.redact import scrub
from ...core.state import ErrorList, ErrorRecord, Stats, utc_now
from .observers import LifecycleInfo

__all__ = ["MAX_ERROR_RECORDS", "WARN_EVERY", "ErrorLog"]

log = logging.getLogger("nbsocket")

MAX_ERROR_RECORDS = 200
WARN_EVERY = 10.0
"""Seconds between two connection warnings of one socket in the log (every error is still in ``conn.errors``)."""


class ErrorLog:
    """The most recent :class:`ErrorRecord` of one socket, oldest first.

    ``notify`` tells the socket's observers (the transcript records errors);
    ``state`` gives the socket's state for log lines.
    """

    def __init__(self, name: str, stats: Stats, notify: Callable[[str, LifecycleInfo], None], state: Callable[[], str]) -> None:
        self.name = name
        self._stats = stats
        self._notify = notify
        self._state = state
        self._records: collections.deque[ErrorRecord] = collections.deque(maxlen=MAX_ERROR_RECORDS)
        self._last_warning = float("-inf")
        self._warned_handlers: set[str] = set()

    def __len__(self) -> int:
        return len(self._records)

    def records(self) -> ErrorList:
        """The records kept, oldest first (a list that shows itself as a table in a notebook)."""
        return ErrorList(self._records)

    @property
    def last(self) -> ErrorRecord | None:
        """The most recent record, or ``None``."""
        return self._records[-1] if self._records else None

    def record(self, where: str, error: str, message: str, tb: str | None = None, seq: int | None = None) -> ErrorRecord:
        """Keep one error (secrets scrubbed) and tell the observers."""
        record = ErrorRecord(utc_now(), where, error, scrub(message), scrub(tb) if tb else None, seq)
        self._records.append(record)
        self._stats.errors += 1
        self._notify("error", {"where": where, "error": error, "message": record.message})
        return record

    def handler_failed(self, handler_name: str, seq: int, exc: BaseException, tb: str) -> None:
        """A handler raised on message ``seq``: recorded; the first failure of each handler is a warning."""
        first = handler_name not in self._warned_handlers
        self._warned_handlers.add(handler_name)
        self.record(f"handler {handler_name}", type(exc).__name__, str(exc), tb, seq)
        (log.warning if first else log.debug)(
            "socket %r: handler %s raised %s: %s on message %d (the socket goes on; the traceback is in its errors: "
            "nbs.get(%r).errors, %%ws_status, or the panel's Errors)",
            self.name,
            handler_name,
            type(exc).__name__,
            scrub(exc),
            seq,
            self.name,
        )

    def callback_failed(self, where: str, exc: BaseException, tb: str) -> None:
        """``on_open``/``on_close``/``on_error`` raised."""
        self.record(where, type(exc).__name__, str(exc), tb)
        log.warning("socket %r: %s raised %s: %s", self.name, where, type(exc).__name__, scrub(exc))

    def connection_error(self, where: str, exc: BaseException) -> None:
        """A connect, close or reconnect failure: recorded; warned about at most every ``WARN_EVERY`` seconds."""
        self.record(where, type(exc).__name__, str(exc))
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY:
            self._last_warning = now
            log.warning(
                "socket %r: %s (state %s; see nbs.get(%r).errors or %%ws_status)", self.name, scrub(exc), self._state(), self.name
            )
        else:
            log.debug("socket %r: %s", self.name, scrub(exc))
