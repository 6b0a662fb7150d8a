"""Connection options: validated once, before any I/O, and compared to decide whether a re-run ``connect`` is the same socket."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from ..errors import InvalidOptionError
from .backoff import ReconnectPolicy
from .codecs import get_codec, normalize_content_type
from .protocols import get_protocol as protocol_class
from .protocols import make_protocol, protocol_option_names, secret_values
from .redact import MASK, add_secrets, header_secrets, redact_headers, scrub, url_secrets
from .streams import parse_nats_url, parse_parts_url, record_kind

__all__ = [
    "CONNECT_OPTIONS",
    "DEFAULT",
    "PROTOCOL_OPTIONS",
    "ConnectOptions",
    "InsecureConnectionWarning",
    "Option",
    "build_options",
    "option",
    "warn_insecure",
]


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()
"""Marks an option left at websockets' own default (e.g. the User-Agent header)."""


class InsecureConnectionWarning(UserWarning):
    """``insecure=True`` turned off TLS certificate verification."""


def _positive(name: str, value: Any, allow_none: bool = True) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise InvalidOptionError(
            f"{name} must be a positive number of seconds or bytes{' or None' if allow_none else ''}, not {value!r}"
        )
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


def _record(name: str, value: Any) -> str | None:
    """A ``record=`` target, checked without I/O (the kind of target, a JetStream URL's subject, a parts URL's options)."""
    if value is None:
        return None
    if hasattr(value, "__fspath__"):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise InvalidOptionError(f"{name} must be a path or URL, not {value!r}")
    kind = record_kind(value)
    if kind == "nats":
        parse_nats_url(value)
    elif kind == "parts":
        parse_parts_url(value)
    return value


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidOptionError(f"{name} must be a positive integer, not {value!r}")
    return value


def _positive_int_or_none(name: str, value: Any) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidOptionError(f"{name} must be a positive integer or None, not {value!r}")
    return value


def _content_type(name: str, value: Any) -> str:
    value = value or "application/json"
    try:
        get_codec(value)
    except ValueError as exc:
        raise InvalidOptionError(str(exc)) from None
    return normalize_content_type(value)


def _strings(name: str, value: Any) -> tuple[str, ...]:
    value = value or ()
    return (value,) if isinstance(value, str) else tuple(value)


def _subprotocols(name: str, value: Any) -> tuple[str, ...]:
    return tuple(str(p) for p in _strings(name, value))


def _ssl(name: str, value: Any) -> Any:
    if value is not None and not callable(getattr(value, "wrap_socket", None)):
        raise InvalidOptionError("ssl must be an ssl.SSLContext (or None for default verification)")
    return value


def _compression(name: str, value: Any) -> str | None:
    if value not in ("deflate", None):
        raise InvalidOptionError("compression must be 'deflate' or None")
    compression: str | None = value
    return compression


def _reconnect(name: str, value: Any) -> ReconnectPolicy | None:
    if value is True:
        return ReconnectPolicy()
    if value is False or value is None:
        return None
    if not isinstance(value, ReconnectPolicy):
        raise InvalidOptionError("reconnect must be True, False or an nbs.ReconnectPolicy(...)")
    return value


class Flag(NamedTuple):
    """How ``%ws_connect`` takes an option: its flags, help (without the default), and how it parses."""

    names: tuple[str, ...]
    help: str
    action: str | None = None  # None: one value; "append": repeatable; "switch": store_true; "toggle": --x/--no-x
    metavar: str | None = None


@dataclasses.dataclass(frozen=True)
class Option:
    """One plain ``connect`` option: the single declaration the API, the magics and ``%config`` follow."""

    name: str
    default: Any
    """What ``connect`` uses when the option is not given (``ConnectOptions`` holds it checked)."""
    help: str
    """One line, for the docs and ``%config NbSocket.<name>``."""
    check: Callable[[str, Any], Any] | None = None
    """Validates a value and returns it normalized; raises :class:`InvalidOptionError`."""
    kind: type | None = None
    """``str``, ``int``, ``float`` or ``bool``: the ``%config`` trait and the flag's parser."""
    none: bool = False
    """``None`` is a valid value (no limit / off)."""
    secret: bool = False
    """Its values are secrets: registered for masking and never shown."""
    config: bool = False
    """A ``%config NbSocket.<name>`` trait sets the magics' default."""
    flag: Flag | None = None
    """The ``%ws_connect`` flag, if it has one."""

    def checked(self, value: Any) -> Any:
        """``value`` validated and normalized."""
        return value if self.check is None else self.check(self.name, value)

    def config_help(self) -> str:
        """The help of its ``%config`` trait: the one line and the flag that overrides it."""
        assert self.flag is not None
        note = f"--no-{self.flag.names[-1][2:]} turns it off" if self.flag.action == "toggle" else "/".join(self.flag.names)
        return f"{self.help} ({note})."


_SECONDS: dict[str, Any] = {"check": _positive, "kind": float, "none": True}

CONNECT_OPTIONS: tuple[Option, ...] = (
    Option(
        "content_type",
        "application/json",
        "Content type used to parse received messages and encode sent data",
        _content_type,
        str,
        config=True,
        flag=Flag(
            ("-t", "--content-type"),
            "parses received messages and encodes sent data, e.g. application/json, "
            "text/plain, text/csv, application/xml, application/octet-stream",
            metavar="TYPE",
        ),
    ),
    Option(
        "headers",
        None,
        "Handshake headers, a dict or (name, value) pairs; secret ones are masked",
        lambda n, v: _headers(v),
        flag=Flag(
            ("-H", "--header"),
            "handshake header, repeatable; a value may use {var} from the notebook, and such a "
            "value is a secret, masked wherever it is shown (default: none)",
            "append",
            '"NAME: VALUE"',
        ),
    ),
    Option(
        "subprotocols",
        None,
        "WebSocket subprotocols to offer",
        _subprotocols,
        flag=Flag(("-p", "--subprotocol"), "WebSocket subprotocol to offer, repeatable (default: none)", "append", "PROTOCOL"),
    ),
    Option(
        "origin",
        None,
        "Origin header to send",
        kind=str,
        none=True,
        flag=Flag(("--origin",), "Origin header to send (default: none)"),
    ),
    Option("user_agent", DEFAULT, "User-Agent header (default: websockets' own)"),
    Option("ssl", None, "An ssl.SSLContext for wss:// (None: default verification)", _ssl),
    Option(
        "insecure",
        False,
        "wss:// only: do not verify the server's TLS certificate",
        kind=bool,
        flag=Flag(("--insecure",), "wss:// only: do not verify the server's TLS certificate (default: verify)", "switch"),
    ),
    Option(
        "proxy",
        True,
        "Proxy URL (websockets 15 or newer); True (the default) uses the environment's proxy settings, None connects directly",
    ),
    Option(
        "open_timeout",
        10.0,
        "Seconds to wait for a socket to open; None waits forever",
        **_SECONDS,
        config=True,
        flag=Flag(("--open-timeout",), "seconds to wait for the socket to open", metavar="S|none"),
    ),
    Option(
        "ping_interval",
        20.0,
        "Seconds between keepalive pings; None turns keepalive off",
        **_SECONDS,
        config=True,
        flag=Flag(("--ping-interval",), "seconds between keepalive pings; none turns keepalive off", metavar="S|none"),
    ),
    Option(
        "ping_timeout",
        20.0,
        "Seconds to wait for a pong before the connection counts as lost; None waits forever",
        **_SECONDS,
        config=True,
        flag=Flag(("--ping-timeout",), "seconds to wait for a pong before the connection counts as lost", metavar="S|none"),
    ),
    Option("close_timeout", 5.0, "Seconds to wait for the closing handshake", **_SECONDS),
    Option(
        "max_size",
        2**20,
        "Largest message accepted, in bytes; None accepts any size",
        _positive,
        int,
        none=True,
        config=True,
        flag=Flag(("--max-size",), "largest message accepted", metavar="BYTES|none"),
    ),
    Option(
        "max_queue",
        64,
        "Messages received but not yet handled beyond which the socket stops reading until the handlers are down "
        "to half as many; None never stops",
        _positive_int_or_none,
        int,
        none=True,
    ),
    Option("compression", "deflate", "'deflate' (permessage-deflate) or None", _compression),
    Option(
        "reconnect",
        True,
        "Reconnect with backoff after the connection drops",
        _reconnect,
        bool,
        config=True,
        flag=Flag(("--reconnect",), "reconnect with backoff when the connection drops", "toggle"),
    ),
    Option("outbox_size", 1000, "Messages the outbox holds while the socket is not open", _positive_int, int),
    Option("send_timeout", 10.0, "Seconds a send waits for room in a full outbox; None waits forever", **_SECONDS),
    Option(
        "frame",
        True,
        "Keep a live DataFrame of received messages",
        kind=bool,
        config=True,
        flag=Flag(("--frame",), "keep a live DataFrame of received messages; --no-frame turns it off", "toggle"),
    ),
    Option(
        "max_rows",
        100_000,
        "Rows kept in each socket's live DataFrame, oldest dropped first; None keeps every row",
        _positive_int_or_none,
        int,
        none=True,
        config=True,
        flag=Flag(("--max-rows",), "rows kept in the live DataFrame, oldest dropped first", metavar="N|none"),
    ),
    Option(
        "max_columns", 1000, "Columns the live DataFrame makes; fields past them go into one extra column", _positive_int, int
    ),
    Option(
        "record",
        None,
        "Also record every message: to a .jsonl file or .parquet folder, to Parquet parts on an fsspec URL "
        "(s3://bucket/prefix/), or to JetStream (nats://HOST:PORT/SUBJECT, the subject may hold {name})",
        _record,
        kind=str,
        none=True,
        flag=Flag(
            ("--record",),
            "also record every message to PATH: a .jsonl file, a .parquet folder, Parquet parts on an fsspec URL "
            "(s3://bucket/prefix/) or JetStream (nats://HOST:PORT/SUBJECT) (default: off)",
            metavar="PATH",
        ),
    ),
    Option(
        "secret_headers",
        (),
        "Names of more headers whose values are masked",
        _strings,
        flag=Flag(
            ("--secret-header",),
            "also mask this header's value (Authorization, Cookie and *token*/*key* headers always are); repeatable",
            "append",
            "NAME",
        ),
    ),
    Option("secrets", (), "More strings to mask wherever nbsocket shows text", _strings, secret=True),
)
"""The plain ``connect`` options, in ``ConnectOptions`` order (the protocol's own are :data:`PROTOCOL_OPTIONS`)."""

_BY_NAME = {o.name: o for o in CONNECT_OPTIONS}


def option(name: str) -> Option:
    """The declaration of the plain ``connect`` option ``name``."""
    return _BY_NAME[name]


def _field(name: str) -> Any:
    """A ``ConnectOptions`` field whose default is the table's default, checked."""
    opt = _BY_NAME[name]
    value = opt.checked(opt.default)
    if type(value).__hash__ is None or dataclasses.is_dataclass(value):
        return dataclasses.field(default_factory=lambda: opt.checked(opt.default))
    return dataclasses.field(default=value)


@dataclasses.dataclass(frozen=True, repr=False)
class ConnectOptions:
    """Everything about how a socket connects, except its URL and handlers."""

    content_type: str = _field("content_type")
    headers: tuple[tuple[str, str], ...] = _field("headers")
    subprotocols: tuple[str, ...] = _field("subprotocols")
    origin: str | None = _field("origin")
    user_agent: Any = _field("user_agent")
    ssl: Any = _field("ssl")  # an ssl.SSLContext
    insecure: bool = _field("insecure")
    proxy: str | bool | None = _field("proxy")
    open_timeout: float | None = _field("open_timeout")
    ping_interval: float | None = _field("ping_interval")
    ping_timeout: float | None = _field("ping_timeout")
    close_timeout: float | None = _field("close_timeout")
    max_size: int | None = _field("max_size")
    max_queue: int | None = _field("max_queue")
    compression: str | None = _field("compression")
    reconnect: ReconnectPolicy | None = _field("reconnect")
    outbox_size: int = _field("outbox_size")
    send_timeout: float | None = _field("send_timeout")
    frame: bool = _field("frame")
    max_rows: int | None = _field("max_rows")
    max_columns: int = _field("max_columns")
    record: str | None = _field("record")
    secret_headers: tuple[str, ...] = _field("secret_headers")
    secrets: tuple[str, ...] = _field("secrets")
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
            if f.name in _BY_NAME and _BY_NAME[f.name].secret:
                shown.append(f"{f.name}=<{len(value)} hidden>")
                continue
            if f.name == "headers":
                value = self.shown_headers()
            if f.name == "protocol_options":
                value = self.shown_protocol_options()
            shown.append(f"{f.name}={value!r}")
        return scrub("ConnectOptions(" + ", ".join(shown) + ")")


_KNOWN = frozenset(f.name for f in dataclasses.fields(ConnectOptions)) - {"protocol_options"}
_SHARED_DEFAULTS = {
    o.name: value
    for o in CONNECT_OPTIONS
    if type(value := o.checked(o.default)).__hash__ is not None and not dataclasses.is_dataclass(value)
}
"""The checked defaults that every socket may share (immutable): checked once, not at every ``connect``."""


def build_options(url: str, **kwargs: Any) -> ConnectOptions:
    """Validate ``connect`` keywords into :class:`ConnectOptions` (no I/O); registers the secrets they hold."""
    known = _KNOWN
    protocol_opts = _protocol_options(kwargs, known)
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise InvalidOptionError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    shared = _SHARED_DEFAULTS
    values = {
        o.name: o.checked(kwargs[o.name]) if o.name in kwargs else (shared[o.name] if o.name in shared else o.checked(o.default))
        for o in CONNECT_OPTIONS
    }
    ssl_context, insecure = values["ssl"], values["insecure"]
    if (ssl_context is not None or insecure) and not url.lower().startswith("wss:"):
        raise InvalidOptionError("ssl and insecure apply to wss:// URLs only; this URL is ws://")
    if ssl_context is not None and insecure:
        raise InvalidOptionError("pass either ssl=<SSLContext> or insecure=True, not both")
    if "protocol" in kwargs:
        values["protocol"] = kwargs["protocol"]
    options = ConnectOptions(**values, protocol_options=protocol_opts)
    add_secrets(url_secrets(url))
    add_secrets(header_secrets(options.headers, options.secret_headers))
    add_secrets(options.secrets)
    return options


PROTOCOL_OPTIONS = ("namespace", "auth", "path", "init_payload", "keepalive", "login", "passcode", "host", "heartbeat", "ack")
"""The built-in protocols' ``connect`` options (each protocol takes its own subset; a registered one may add others)."""


def _protocol_options(kwargs: dict[str, Any], known: frozenset[str]) -> tuple[tuple[str, Any], ...]:
    """Take the protocol's options out of ``kwargs``: validated by building the protocol (no I/O); secrets registered."""
    name = kwargs.get("protocol")
    if name is None:
        given = sorted(k for k in kwargs if k in PROTOCOL_OPTIONS)
        if given:
            raise InvalidOptionError(
                f"{', '.join(given)} {'is a protocol option' if len(given) == 1 else 'are protocol options'}: "
                "pass protocol=... (socketio, graphql-ws, graphql-ws-legacy, jsonrpc, stomp) too"
            )
        return ()
    cls = protocol_class(name)
    takes = set(protocol_option_names(cls)) | {k for k in kwargs if k not in known}
    options = {k: kwargs.pop(k) for k in sorted(takes) if k in kwargs}
    misplaced = sorted(k for k in kwargs if k in PROTOCOL_OPTIONS)
    if misplaced:
        raise InvalidOptionError(
            f"protocol {name!r} takes no option {misplaced[0]!r}; it takes: {', '.join(protocol_option_names(cls)) or 'none'}"
        )
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
