"""Connection options: validated once, before any I/O, and compared to decide whether a re-run ``connect`` is the same socket."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from .backoff import ReconnectPolicy
from .codecs import get_codec, normalize_content_type
from ..errors import InvalidOptionError
from .protocols import get_protocol as protocol_class, make_protocol, protocol_option_names, secret_values
from .redact import MASK, add_secrets, header_secrets, redact_headers, scrub, url_secrets

__all__ = ["DEFAULT", "InsecureConnectionWarning", "ConnectOptions", "build_options", "warn_insecure"]


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()
"""Marks an option left at websockets' own default (e.g. the User-Agent header)."""


class InsecureConnectionWarning(UserWarning):
    """``insecure=True`` turned off TLS certificate verification."""


@dataclasses.dataclass(frozen=True, repr=False)
class ConnectOptions:
    """Everything about how a socket connects, except its URL and handlers."""

    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()
    origin: str | None = None
    user_agent: Any = DEFAULT
    ssl: Any = None  # an ssl.SSLContext
    insecure: bool = False
    proxy: str | bool | None = True
    open_timeout: float | None = 10.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float | None = 5.0
    max_size: int | None = 2**20
    max_queue: int = 64
    compression: str | None = "deflate"
    reconnect: ReconnectPolicy | None = dataclasses.field(default_factory=ReconnectPolicy)
    outbox_size: int = 1000
    send_timeout: float | None = 10.0
    frame: bool = True
    max_rows: int | None = 100_000
    max_columns: int = 1000
    record: str | None = None
    secret_headers: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    protocol: str | None = None
    protocol_options: tuple[tuple[str, Any], ...] = ()

    def differences(self, other: ConnectOptions) -> list[str]:
        """Names of the options that differ from ``other``."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(other, f.name)]

    def shown_headers(self) -> dict[str, str]:
        """Handshake headers with secrets masked."""
        return redact_headers(self.headers, self.secret_headers)

    def shown_protocol_options(self) -> dict[str, Any]:
        """The protocol's options with secret ones masked."""
        secret = set(protocol_class(self.protocol).secret_options) if self.protocol else set()
        return {k: (MASK if k in secret and v is not None else v) for k, v in self.protocol_options}

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "secrets":
                shown.append(f"secrets=<{len(value)} hidden>")
                continue
            if f.name == "headers":
                value = self.shown_headers()
            if f.name == "protocol_options":
                value = self.shown_protocol_options()
            shown.append(f"{f.name}={value!r}")
        return scrub("ConnectOptions(" + ", ".join(shown) + ")")


def _positive(name: str, value: Any, allow_none: bool = True) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise InvalidOptionError(f"{name} must be a positive number of seconds or bytes{' or None' if allow_none else ''}, not {value!r}")
    return value


def _headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> tuple[tuple[str, str], ...]:
    if not headers:
        return ()
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise InvalidOptionError("headers must be a dict or a list of (name, value) pairs") from None
        if not isinstance(name, str) or not name or any(c in name for c in ":\r\n "):
            raise InvalidOptionError(f"invalid header name {name!r}")
        value = str(value)
        if "\r" in value or "\n" in value:
            raise InvalidOptionError(f"header {name!r} has a line break in its value")
        out.append((name, value))
    return tuple(out)


def build_options(url: str, **kwargs: Any) -> ConnectOptions:
    """Validate ``connect`` keywords into :class:`ConnectOptions` (no I/O); registers the secrets they hold."""
    known = {f.name for f in dataclasses.fields(ConnectOptions)} - {"protocol_options"}
    protocol_opts = _protocol_options(kwargs, known)
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise InvalidOptionError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    reconnect = kwargs.get("reconnect", True)
    if reconnect is True:
        kwargs["reconnect"] = ReconnectPolicy()
    elif reconnect is False or reconnect is None:
        kwargs["reconnect"] = None
    elif not isinstance(reconnect, ReconnectPolicy):
        raise InvalidOptionError("reconnect must be True, False or an nbs.ReconnectPolicy(...)")
    content_type = kwargs.get("content_type") or "application/json"
    try:
        get_codec(content_type)
    except ValueError as exc:
        raise InvalidOptionError(str(exc)) from None
    kwargs["content_type"] = normalize_content_type(content_type)
    kwargs["headers"] = _headers(kwargs.get("headers"))
    subprotocols = kwargs.get("subprotocols") or ()
    if isinstance(subprotocols, str):
        subprotocols = (subprotocols,)
    kwargs["subprotocols"] = tuple(str(p) for p in subprotocols)
    for name in ("open_timeout", "ping_interval", "ping_timeout", "close_timeout", "max_size", "send_timeout"):
        if name in kwargs:
            _positive(name, kwargs[name])
    for name in ("outbox_size", "max_columns", "max_queue"):
        if name in kwargs and (not isinstance(kwargs[name], int) or isinstance(kwargs[name], bool) or kwargs[name] < 1):
            raise InvalidOptionError(f"{name} must be a positive integer, not {kwargs[name]!r}")
    max_rows = kwargs.get("max_rows", 100_000)
    if max_rows is not None and (not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 1):
        raise InvalidOptionError(f"max_rows must be a positive integer or None, not {max_rows!r}")
    ssl_context = kwargs.get("ssl")
    secure = url.lower().startswith("wss:")
    if ssl_context is not None and not callable(getattr(ssl_context, "wrap_socket", None)):
        raise InvalidOptionError("ssl must be an ssl.SSLContext (or None for default verification)")
    if (ssl_context is not None or kwargs.get("insecure")) and not secure:
        raise InvalidOptionError("ssl and insecure apply to wss:// URLs only; this URL is ws://")
    if ssl_context is not None and kwargs.get("insecure"):
        raise InvalidOptionError("pass either ssl=<SSLContext> or insecure=True, not both")
    compression = kwargs.get("compression", "deflate")
    if compression not in ("deflate", None):
        raise InvalidOptionError("compression must be 'deflate' or None")
    for name in ("secret_headers", "secrets"):
        value = kwargs.get(name) or ()
        kwargs[name] = (value,) if isinstance(value, str) else tuple(value)
    options = ConnectOptions(**kwargs, protocol_options=protocol_opts)
    add_secrets(url_secrets(url))
    add_secrets(header_secrets(options.headers, options.secret_headers))
    add_secrets(options.secrets)
    return options


PROTOCOL_OPTIONS = ("namespace", "auth", "path", "init_payload", "keepalive", "login", "passcode", "host", "heartbeat", "ack")
"""The built-in protocols' ``connect`` options (each protocol takes its own subset; a registered one may add others)."""


def _protocol_options(kwargs: dict[str, Any], known: set[str]) -> tuple[tuple[str, Any], ...]:
    """Take the protocol's options out of ``kwargs``: validated by building the protocol (no I/O); secrets registered."""
    name = kwargs.get("protocol")
    if name is None:
        given = sorted(k for k in kwargs if k in PROTOCOL_OPTIONS)
        if given:
            raise InvalidOptionError(f"{', '.join(given)} {'is a protocol option' if len(given) == 1 else 'are protocol options'}: "
                                     "pass protocol=... (socketio, graphql-ws, graphql-ws-legacy, jsonrpc, stomp) too")
        return ()
    cls = protocol_class(name)
    takes = set(protocol_option_names(cls)) | {k for k in kwargs if k not in known}
    options = {k: kwargs.pop(k) for k in sorted(takes) if k in kwargs}
    misplaced = sorted(k for k in kwargs if k in PROTOCOL_OPTIONS)
    if misplaced:
        raise InvalidOptionError(f"protocol {name!r} takes no option {misplaced[0]!r}; it takes: "
                                 f"{', '.join(protocol_option_names(cls)) or 'none'}")
    for key in cls.secret_options:
        if options.get(key) is not None:
            add_secrets(secret_values(options[key]))
    make_protocol(name, options)  # validates; the runtime makes its own
    order = protocol_option_names(cls)
    return tuple(sorted(options.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def warn_insecure(shown_url: str) -> None:
    """Warn that certificate verification is off for a socket."""
    warnings.warn(
        f"insecure=True: TLS certificates are not verified for {shown_url}; anyone on the path can read "
        "and change this traffic. Pass ssl=ssl.create_default_context(cafile=...) to trust a private CA instead.",
        InsecureConnectionWarning,
        stacklevel=4,
    )
