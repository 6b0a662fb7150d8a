"""Keeping secrets out of everything nbsocket shows.

URLs lose their ``user:password@`` part and the values of token-like query
parameters; secret headers lose their values; and every string nbsocket shows
(reprs, status tables, widgets, log lines, error messages, tracebacks) goes
through :func:`scrub`, which replaces every secret value it has been told of.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "SECRET_NAME",
    "ScrubFilter",
    "add_secret",
    "add_secrets",
    "header_secrets",
    "install_log_filter",
    "is_secret_name",
    "redact_headers",
    "redact_url",
    "scrub",
    "url_secrets",
]


MASK = "***"

SECRET_NAME = re.compile(
    r"token|secret|passw|pwd|auth|api[-_]?key|access[-_]?key|private[-_]?key|"
    r"signature|^sig$|session|credential|ticket|^code$|jwt|bearer|cookie|^key$",
    re.IGNORECASE,
)
"""Names of query parameters and headers whose values are secret."""

_MIN_SECRET_LEN = 3

_secrets: set[str] = set()
"""Every secret value seen so far. It only grows, and ``set.update`` is atomic, so no lock is needed."""

_compiled: tuple[int, re.Pattern[str] | None] = (0, None)
"""The pattern :func:`scrub` uses and how many secrets it was built from; rebuilt when ``_secrets`` has grown.

Without a lock two threads may build it at once and the older one may win; the
next :func:`scrub` sees the count differ and builds it again, so a secret added
before a call to :func:`scrub` is always hidden by it.
"""


def is_secret_name(name: str) -> bool:
    """True if a header or query parameter of this name holds a secret."""
    return bool(SECRET_NAME.search(name))


def add_secret(value: str | None) -> None:
    """Remember a secret value so that :func:`scrub` hides it everywhere."""
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    variants = {value, quote(value, safe=""), quote_plus(value)}
    if not variants <= _secrets:
        _secrets.update(variants)
        _compile()


def _compile() -> re.Pattern[str] | None:
    """Build the pattern of every secret known now (longest first, so a secret inside another is hidden whole).

    Whole values only: a short secret must not blank part of an ordinary word ("***ion refused").
    """
    global _compiled
    known = list(_secrets)
    alternatives = "|".join(re.escape(s) for s in sorted(known, key=len, reverse=True))
    pattern = re.compile(r"(?<![A-Za-z0-9])(?:" + alternatives + r")(?![A-Za-z0-9])") if known else None
    _compiled = (len(known), pattern)
    return pattern


def add_secrets(values: Iterable[str]) -> None:
    """Remember several secret values."""
    for value in values:
        add_secret(value)


def scrub(text: object) -> str:
    """Return ``str(text)`` with every known secret value replaced by ``***``.

    A value is replaced where it stands whole (in a URL, a header, after
    ``Bearer``), never where it is only part of a longer word or token, so a
    short secret cannot garble unrelated text.
    """
    s = text if isinstance(text, str) else str(text)
    count, pattern = _compiled
    if count != len(_secrets):
        pattern = _compile()
    if pattern is None:
        return s
    return pattern.sub(MASK, s)


def url_secrets(url: str) -> list[str]:
    """The secret parts of a URL: its password, user name and token-like query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found: list[str] = []
    if parts.password:
        found.append(parts.password)
    if parts.username and parts.password:
        found.append(parts.username)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if value and is_secret_name(name):
            found.append(value)
    return found


def redact_url(url: str) -> str:
    """The URL with credentials and token-like query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub(url)
    netloc = parts.netloc
    if "@" in netloc:
        host = netloc.rsplit("@", 1)[1]
        netloc = f"{MASK}:{MASK}@{host}" if parts.password is not None else f"{MASK}@{host}"
    query = parts.query
    if query:
        pieces = []
        for piece in query.split("&"):
            name, sep, value = piece.partition("=")
            if sep and value and is_secret_name(name):
                pieces.append(f"{name}={MASK}")
            else:
                pieces.append(piece)
        query = "&".join(pieces)
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def header_secrets(headers: Mapping[str, str] | Iterable[tuple[str, str]], secret_names: Iterable[str] = ()) -> list[str]:
    """The secret values among handshake headers (and the token part of ``Bearer x``)."""
    extra = {n.lower() for n in secret_names}
    items = headers.items() if isinstance(headers, Mapping) else headers
    found: list[str] = []
    for name, value in items:
        if not value:
            continue
        if is_secret_name(name) or name.lower() in extra:
            found.append(str(value))
            scheme, _, token = str(value).partition(" ")
            if token and scheme.isalpha():
                found.append(token.strip())
    return found


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]], secret_names: Iterable[str] = ()) -> dict[str, str]:
    """Headers with secret values replaced by ``***`` (safe to show)."""
    extra = {n.lower() for n in secret_names}
    items = headers.items() if isinstance(headers, Mapping) else headers
    shown: dict[str, str] = {}
    for name, value in items:
        if is_secret_name(name) or name.lower() in extra:
            shown[name] = MASK
        else:
            shown[name] = scrub(value)
    return shown


class ScrubFilter(logging.Filter):
    """A logging filter that removes every known secret from log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is left to logging's own handling
            return True
        record.msg = scrub(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def install_log_filter(logger: logging.Logger) -> None:
    """Attach the secret-scrubbing filter to ``logger`` once."""
    if not any(isinstance(f, ScrubFilter) for f in logger.filters):
        logger.addFilter(ScrubFilter())
