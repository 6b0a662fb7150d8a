"""Validating WebSocket URLs before any I/O."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import InvalidURLError
from .redact import redact_url

__all__ = ["validate_url"]


_SUGGEST = {"http": "ws", "https": "wss"}


def validate_url(url: object) -> str:
    """Return ``url`` stripped if it is a usable ``ws://`` or ``wss://`` URL.

    Raises :class:`InvalidURLError` (with the URL redacted) otherwise.
    """
    if not isinstance(url, str):
        raise InvalidURLError(f"a WebSocket URL must be a string like 'wss://host/path', not {type(url).__name__}")
    text = url.strip()
    if not text:
        raise InvalidURLError("the WebSocket URL is empty: pass one like 'wss://host/path'")
    shown = redact_url(text)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidURLError(f"{shown!r} is not a valid URL ({exc}); use 'ws://host:port/path' or 'wss://...'") from None
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        if scheme in _SUGGEST:
            better = _SUGGEST[scheme] + text[len(parts.scheme) :]
            hint = f"; did you mean {redact_url(better)!r}?"
        elif not scheme:
            hint = "; add the scheme, e.g. 'wss://" + shown + "'"
        else:
            hint = ""
        raise InvalidURLError(
            f"{shown!r} is not a WebSocket URL: the scheme must be ws:// or wss://"
            f" (got {scheme + '://' if scheme else 'none'}){hint}"
        )
    if not parts.hostname:
        raise InvalidURLError(f"{shown!r} has no host name; use '{scheme}://host[:port]/path'")
    if port is not None and not 0 < port < 65536:
        raise InvalidURLError(f"{shown!r} has an invalid port {port}")
    if any(ch.isspace() for ch in text):
        raise InvalidURLError(f"{shown!r} contains whitespace; percent-encode it (%20)")
    return text
