"""A mistyped ``%ws_`` magic gets the nearest real one suggested.

IPython's custom exception hook shows it, only when no other handler uses it.
Rewording nbsocket's advice as magics is :func:`nbsocket.core.hints.in_magic_words`.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from IPython.core.error import UsageError

__all__ = ["install_magic_suggestions", "suggest_magic", "uninstall_magic_suggestions"]

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
