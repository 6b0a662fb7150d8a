"""Advice in the language the user is in: ``%ws_*`` magics and widget buttons rather than Python calls.

nbsocket's errors say what to do in Python (``call nbs.reset('x') to
reconnect``). A magic or a widget shows the same advice as the magic to run
or the button to click; these functions reword a message for each.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["in_magic_words", "in_widget_words"]

_NAME = r"'([^']*)'"


def _as_flag(match: re.Match[str]) -> str:
    return "--" + match.group(1).replace("_", "-") + " ..."


_MAGIC_WORDS = [
    (re.compile(rf"call nbs\.reset\({_NAME}\) to reconnect"), r"run %ws_reset \1 to reconnect"),
    (re.compile(rf"use nbs\.reset\({_NAME}, url=\.\.\.\) to move it"), r"use %ws_reset \1 URL to move it"),
    (re.compile(r"Pass replace=True to replace it"), "Add --replace to %ws_connect to replace it"),
    (re.compile(r"unless replace=True"), "unless --replace is given"),
    (re.compile(r"connect it again with nbs\.connect\(\)"), "connect it again with %ws_connect NAME URL"),
    (re.compile(r"connect one with nbs\.connect\(name, url\)"), "connect one with %ws_connect NAME URL"),
    (re.compile(rf"use nbs\.get\({_NAME}\)"), r"see %ws_status \1"),
    (re.compile(r"see conn\.errors"), "see %ws_status"),
    (re.compile(r"is recorded in conn\.errors"), "is recorded as an error (see %ws_status)"),
    (re.compile(r"nbs\.frame\(\)"), "%ws_frame"),
    (re.compile(rf"nbs\.get\({_NAME}\)\.errors"), r"%ws_status \1"),
    # connect keywords said as %ws_connect's flags: "pass the namespace as namespace=..." -> "--namespace ..."
    (re.compile(r"\b(namespace|path|auth|init_payload|login|passcode|host|heartbeat|ack|keepalive|protocol)=\.\.\."), _as_flag),
]
_WIDGET_WORDS = [
    (re.compile(rf"call nbs\.reset\({_NAME}\) to reconnect"), "click Connect (or Reset with a URL) to reconnect"),
    (re.compile(rf"use nbs\.reset\({_NAME}, url=\.\.\.\) to move it"), "use Reset with a new URL to move it"),
    (re.compile(r"connect it again with nbs\.connect\(\)"), "connect it again with %ws_connect NAME URL"),
    (re.compile(r"see conn\.errors"), "see Errors below"),
    (re.compile(r"is recorded in conn\.errors"), "is recorded in Errors below"),
]


def _rewrite(message: str, rules: list[tuple[re.Pattern[str], Any]]) -> str:
    for pattern, replacement in rules:
        message = pattern.sub(replacement, message)
    return message


def in_magic_words(message: str) -> str:
    """``message`` with its Python advice (``nbs.reset('x')``, ``conn.errors``) said as ``%ws_*`` magics."""
    return _rewrite(message, _MAGIC_WORDS)


def in_widget_words(message: str) -> str:
    """``message`` with its Python advice said as the panel's buttons (Connect, Reset) and its Errors list."""
    return _rewrite(message, _WIDGET_WORDS)
