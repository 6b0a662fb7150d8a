"""Structured logs for ``nbsocket run``: one JSON object per line on stderr, secrets masked.

Every line has ``time`` (RFC 3339 UTC), ``level``, ``logger``, ``event`` and ``message``; a socket's
state changes (``event: "state"``, with ``socket`` and ``state``) and errors (``event: "error"``, with
``socket``, ``where`` and ``error``) add their fields. Everything goes through
:func:`nbsocket.core.redact.scrub`, so a secret that nbsocket was told of (URL credentials and token
parameters, secret headers, ``secrets=``) never reaches the log, not even inside a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from ..core.redact import scrub

__all__ = ["EVENT_FIELDS", "JsonFormatter", "StateLogger", "install", "log"]

log = logging.getLogger("nbsocket.service")

EVENT_FIELDS = ("event", "socket", "state", "where", "error", "code", "reason", "url", "shard", "run", "exit_code")
"""Fields a log call may add with ``extra=``."""


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON (see the module)."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = record.created
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1000):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", "log"),
            "message": scrub(record.getMessage()),
        }
        for field in EVENT_FIELDS[1:]:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            line["traceback"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def install(level: int = logging.INFO) -> logging.Handler:
    """Send nbsocket's logs (and the root logger's) to stderr as JSON lines; returns the handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("nbsocket").setLevel(level)
    logging.getLogger("nbsocket.websockets").setLevel(max(level, logging.INFO))
    return handler


class StateLogger:
    """An observer of one socket that logs each state change and error as one structured line."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def on_lifecycle(self, kind: str, info: dict[str, Any]) -> None:
        """A lifecycle change of the socket (loop thread): log states and errors."""
        if kind == "state":
            state = info.get("state")
            log.info("socket %s is %s", self.socket, state, extra={"event": "state", "socket": self.socket, "state": state})
        elif kind == "error":
            where, error = info.get("where"), info.get("error")
            log.warning(
                "socket %s: %s: %s: %s",
                self.socket,
                where,
                error,
                info.get("message"),
                extra={"event": "error", "socket": self.socket, "where": where, "error": error},
            )
        elif kind == "close":
            code, reason = info.get("code"), info.get("reason")
            log.info(
                "socket %s closed with %s %s",
                self.socket,
                code,
                reason or "",
                extra={"event": "close", "socket": self.socket, "code": code, "reason": reason},
            )
