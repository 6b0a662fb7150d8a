"""Hints in the language the user is in: ``%ws_*`` magics and widget buttons rather than Python calls.

nbsocket's errors say what to do in Python (``call nbs.reset('x') to
reconnect``). A magic or a widget shows the same advice as the magic to run or
the button to click. A mistyped ``%ws_`` magic gets the nearest real one
suggested (through IPython's custom exception hook, only when no other
handler uses it).
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from IPython.core.error import UsageError

__all__ = ["in_magic_words", "in_widget_words", "install_magic_suggestions", "uninstall_magic_suggestions", "suggest_magic"]

_NAME = r"'([^']*)'"
_MAGIC_WORDS = [
    (re.compile(rf"call nbs\.reset\({_NAME}\) to reconnect"), r"run %ws_reset \1 to reconnect"),
    (re.compile(rf"use nbs\.reset\({_NAME}, url=\.\.\.\) to move it"), r"use %ws_reset \1 URL to move it"),
    (re.compile(r"Pass replace=True to replace it"), "Add --replace to %ws_connect to replace it"),
    (re.compile(r"unless replace=True"), "unless --replace is given"),
    (re.compile(r"connect it again with nbs\.connect\(\)"), "connect it again with %ws_connect NAME URL"),
    (re.compile(r"connect one with nbs\.connect\(name, url\)"), "connect one with %ws_connect NAME URL"),
    (re.compile(rf"use nbs\.get\({_NAME}\)"), r"see %ws_status \1"),
    (re.compile(r"see conn\.errors"), "see %ws_status"),
    (re.compile(r"nbs\.frame\(\)"), "%ws_frame"),
]
_WIDGET_WORDS = [
    (re.compile(rf"call nbs\.reset\({_NAME}\) to reconnect"), "click Connect (or Reset with a URL) to reconnect"),
    (re.compile(rf"use nbs\.reset\({_NAME}, url=\.\.\.\) to move it"), "use Reset with a new URL to move it"),
    (re.compile(r"connect it again with nbs\.connect\(\)"), "connect it again with %ws_connect NAME URL"),
    (re.compile(r"see conn\.errors"), "see Errors below"),
]


def _rewrite(message: str, rules: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, replacement in rules:
        message = pattern.sub(replacement, message)
    return message


def in_magic_words(message: str) -> str:
    """``message`` with its Python advice (``nbs.reset('x')``, ``conn.errors``) said as ``%ws_*`` magics."""
    return _rewrite(message, _MAGIC_WORDS)


def in_widget_words(message: str) -> str:
    """``message`` with its Python advice said as the panel's buttons (Connect, Reset) and its Errors list."""
    return _rewrite(message, _WIDGET_WORDS)


# --- mistyped magics ----------------------------------------------------------------------------------

_NOT_FOUND = re.compile(r"^(Line magic function|Cell magic) `(%{1,2})([\w.]+)` not found")


def suggest_magic(message: str, known: list[str]) -> str | None:
    """The magic (of ``known``) nearest to the unknown one IPython's ``message`` names, or ``None``."""
    match = _NOT_FOUND.match(message)
    if match is None:
        return None
    name = match.group(3)
    if not name.startswith(("ws", "w_", "sw")):
        return None
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return match.group(2) + close[0] if close else None


def _show_usage_error(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
    """IPython's own display of a ``UsageError``, with a "did you mean" for a mistyped ``%ws_`` magic."""
    magics = shell.magics_manager.magics
    known = sorted(name for kind in ("line", "cell") for name in magics.get(kind, {}) if name.startswith("ws_"))
    suggestion = suggest_magic(str(value), known)
    if suggestion is not None:
        value = UsageError(f"{str(value).rstrip('.')}. Did you mean {suggestion}?")
    shell.show_usage_error(value)


def install_magic_suggestions(shell: Any) -> bool:
    """Suggest the nearest ``%ws_*`` magic for a mistyped one; only when no other custom exception handler is set."""
    if getattr(shell, "custom_exceptions", None) != ():
        return False
    shell.set_custom_exc((UsageError,), _show_usage_error)
    return True


def uninstall_magic_suggestions(shell: Any) -> None:
    """Take the suggestion hook away again (if it is still nbsocket's)."""
    if getattr(shell, "custom_exceptions", None) == (UsageError,):
        wrapper = getattr(getattr(shell, "CustomTB", None), "__func__", None)  # IPython wraps the handler
        cells = getattr(wrapper, "__closure__", None) or ()
        if any(getattr(cell, "cell_contents", None) is _show_usage_error for cell in cells):
            shell.set_custom_exc((), None)
