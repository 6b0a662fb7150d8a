"""Where recordings go beyond a local file, as pure data: JetStream subjects and headers, Parquet part names.

``connect(..., record=...)`` takes a local ``.jsonl``/``.parquet`` path, a ``nats://HOST:PORT/SUBJECT``
URL (JetStream; the subject may hold ``{name}``, the socket's name) or any other fsspec URL
(``s3://bucket/prefix/``, ``file://``, ``memory://``: Parquet parts). :func:`record_kind` tells them
apart. A JetStream message carries the headers :func:`stream_headers` builds and the body as received;
its ``Nats-Msg-Id`` is ``<socket>:<run>:<seq>`` (:func:`message_id`), where the run is unique per
process start (:func:`run_id`), so JetStream drops a retried publish but never a restarted recorder's
new messages. Nothing here does I/O.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ..errors import InvalidOptionError
from .redact import add_secrets, redact_url, url_secrets

__all__ = [
    "HEADER_BINARY",
    "HEADER_CONTENT_TYPE",
    "HEADER_MSG_ID",
    "HEADER_RUN",
    "HEADER_SEQ",
    "HEADER_SOCKET",
    "HEADER_TIMESTAMP",
    "PARTS_SCHEMES",
    "NatsTarget",
    "PartsTarget",
    "message_id",
    "parse_nats_url",
    "parse_parts_url",
    "parse_timestamp",
    "part_name",
    "record_kind",
    "run_id",
    "stream_headers",
    "subject_for",
    "timestamp_text",
]

HEADER_SOCKET = "Nbs-Socket"
HEADER_SEQ = "Nbs-Seq"
HEADER_TIMESTAMP = "Nbs-Timestamp"
HEADER_CONTENT_TYPE = "Nbs-Content-Type"
HEADER_RUN = "Nbs-Run"
HEADER_BINARY = "Nbs-Binary"
"""``1`` when the message was a binary WebSocket message (absent for text)."""
HEADER_MSG_ID = "Nats-Msg-Id"
"""JetStream's de-duplication header: ``<socket>:<run>:<seq>``."""

PARTS_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "file", "memory", "hdfs", "webhdfs"})
"""fsspec schemes taken for Parquet parts without asking fsspec (any other ``scheme://`` is asked at connect)."""

_TOKEN = re.compile(r"[^\s*>.]+")
_NAME = "{name}"


def record_kind(value: str) -> str:
    """What ``record=value`` writes: ``"jsonl"``, ``"parquet"`` (local), ``"nats"`` (JetStream) or ``"parts"`` (fsspec)."""
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme in ("nats", "tls"):
        return "nats"
    if scheme and re.fullmatch(r"[a-z][a-z0-9+.\-]*", scheme) and len(scheme) > 1:
        return "parts"
    lowered = value.lower()
    if lowered.endswith((".parquet", ".parquet/")):
        return "parquet"
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    raise InvalidOptionError(
        f"record= takes a .parquet or .jsonl path, nats://HOST:PORT/SUBJECT (JetStream) or an fsspec URL "
        f"such as s3://bucket/prefix/ (Parquet parts), not {value!r} (e.g. record='capture.parquet')"
    )


# --- JetStream -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NatsTarget:
    """A parsed ``nats://`` recording or following URL."""

    server: str
    """``nats://[user:pass@]host:port`` to connect to (credentials kept; never shown)."""
    subject: str
    """The subject, with ``{name}`` where the socket's name goes."""
    shown: str
    """The URL with its credentials masked."""
    stream: str | None = None
    """The JetStream stream to use (``?stream=NAME``); by default the one whose subjects cover the subject,
    created when there is none: for ``feeds.{name}`` ``NBS_feeds`` taking ``feeds.>``, for a subject without
    ``{name}`` ``NBS_<subject>`` taking that subject."""
    max_pending: int = 100_000
    """Messages the sink holds before it drops new ones (``?max_pending=N``)."""

    def subject_for(self, socket: str) -> str:
        """The subject the messages of ``socket`` go to."""
        return subject_for(self.subject, socket)

    @property
    def stream_subjects(self) -> str:
        """The subjects a stream created for this target takes: the subject up to ``{name}``, then ``>``."""
        if _NAME not in self.subject:
            return self.subject
        head = self.subject.split(_NAME, 1)[0]
        return head + ">" if head.endswith(".") else self.subject.replace(_NAME, "*")

    @property
    def stream_name(self) -> str:
        """The name of a stream this target creates when none covers its subject."""
        if self.stream:
            return self.stream
        named = self.subject.split(".", 1)[0].replace(_NAME, "ALL") if _NAME in self.subject else self.subject
        return "NBS_" + re.sub(r"[^A-Za-z0-9_\-]", "_", named or "ALL")


def parse_nats_url(url: str, *, wildcards: bool = False) -> NatsTarget:
    """``nats://[user:pass@]HOST[:PORT]/SUBJECT[?stream=NAME&max_pending=N]`` as a :class:`NatsTarget`; its secrets are
    registered. ``wildcards``: the subject may hold ``*`` and ``>`` (following, not recording)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidOptionError(f"not a nats:// URL: {redact_url(url)!r} ({exc})") from None
    if parts.scheme.lower() not in ("nats", "tls") or not parts.hostname:
        raise InvalidOptionError(f"a JetStream URL is nats://HOST:PORT/SUBJECT, not {redact_url(url)!r}")
    secrets = url_secrets(url)
    if parts.username and not parts.password:
        secrets.append(parts.username)  # nats://TOKEN@host: the user part is a token
    add_secrets(secrets)
    subject = parts.path.lstrip("/")
    _check_subject(subject, wildcards, redact_url(url))
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - {"stream", "max_pending"})
    if unknown:
        raise InvalidOptionError(f"{redact_url(url)}: unknown option(s) {', '.join(unknown)} (known: stream, max_pending)")
    stream = options.get("stream") or None
    if stream is not None and not re.fullmatch(r"[A-Za-z0-9_\-]+", stream):
        raise InvalidOptionError(f"stream={stream!r}: a JetStream stream name is letters, digits, '_' and '-'")
    max_pending = options.get("max_pending", "100000")
    if not max_pending.isdigit() or int(max_pending) < 1:
        raise InvalidOptionError(f"max_pending={max_pending!r}: a positive number of messages")
    netloc = parts.netloc.split("?", 1)[0]
    server = urlunsplit(("nats" if parts.scheme.lower() == "nats" else "tls", netloc if port else f"{netloc}:4222", "", "", ""))
    shown = redact_url(urlunsplit((parts.scheme, parts.netloc, "/" + subject, parts.query, "")))
    return NatsTarget(server, subject, shown, stream, int(max_pending))


def _check_subject(subject: str, wildcards: bool, shown: str) -> None:
    if not subject:
        raise InvalidOptionError(f"{shown}: name the subject after the address, e.g. nats://127.0.0.1:4222/feeds.{{name}}")
    tokens = subject.replace(_NAME, "x").split(".")
    for position, token in enumerate(tokens):
        if wildcards and (token == "*" or (token == ">" and position == len(tokens) - 1)):
            continue
        if not _TOKEN.fullmatch(token):
            allowed = "" if wildcards else " (wildcards * and > only when following)"
            raise InvalidOptionError(
                f"{shown}: {subject!r} is not a NATS subject: tokens of printable characters between dots{allowed}"
            )


def subject_for(template: str, socket: str) -> str:
    """``template`` with ``{name}`` replaced by the socket's name."""
    return template.replace(_NAME, socket)


def message_id(socket: str, run: str, seq: int) -> str:
    """JetStream's de-duplication id of message ``seq`` of ``socket`` in recording run ``run``."""
    return f"{socket}:{run}:{seq}"


def run_id(now_ns: int | None = None, entropy: str = "") -> str:
    """A recording run's id: the start time (UTC, to the second, base 36) and ``entropy`` (a few random hex digits)."""
    seconds = (time.time_ns() if now_ns is None else now_ns) // 1_000_000_000
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while seconds:
        seconds, rest = divmod(seconds, 36)
        text = digits[rest] + text
    return (text or "0") + entropy


_second_text: tuple[int, str] = (-1, "")


def timestamp_text(ts_ns: int) -> str:
    """A receipt time (ns since the epoch) as RFC 3339 UTC with nanoseconds: ``2026-01-02T03:04:05.123456789Z``."""
    global _second_text
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    cached, text = _second_text
    if cached != seconds:  # one strftime per second, not per message
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second_text = (seconds, text)
    return f"{text}.{nanos:09d}Z"


def parse_timestamp(text: str) -> int:
    """The inverse of :func:`timestamp_text` (ns since the epoch); raises :class:`InvalidOptionError` on other text."""
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z", text.strip())
    if match is None:
        raise InvalidOptionError(f"not an RFC 3339 UTC time: {text!r}")
    import calendar

    seconds = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1_000_000_000 + int((match.group(2) or "0").ljust(9, "0"))


def stream_headers(socket: str, run: str, seq: int, ts_ns: int, content_type: str, binary: bool) -> dict[str, str]:
    """The headers of one recorded message (see the module doc)."""
    headers = {
        HEADER_MSG_ID: message_id(socket, run, seq),
        HEADER_SOCKET: socket,
        HEADER_SEQ: str(seq),
        HEADER_TIMESTAMP: timestamp_text(ts_ns),
        HEADER_CONTENT_TYPE: content_type,
        HEADER_RUN: run,
    }
    if binary:
        headers[HEADER_BINARY] = "1"
    return headers


# --- Parquet parts on fsspec ---------------------------------------------------------------------


@dataclass(frozen=True)
class PartsTarget:
    """A parsed fsspec URL for Parquet parts (``s3://bucket/prefix/``, ``file:///data/feeds/``, ``memory://feeds/``)."""

    url: str
    """The URL without the options (``{name}`` kept if given)."""
    shown: str
    protocol: str
    part_seconds: float = 60.0
    """A part is written at least this often while rows arrive (``?part_seconds=S``)."""
    part_rows: int = 100_000
    """... or once it has this many rows (``?part_rows=N``)."""
    part_bytes: int = 64 * 2**20
    """... or about this many bytes in memory (``?part_mb=M``)."""

    def folder_for(self, socket: str) -> str:
        """Where the parts of ``socket`` go: the URL with ``{name}`` filled in, else the URL's folder ``/<socket>``."""
        if _NAME in self.url:
            return self.url.replace(_NAME, socket).rstrip("/")
        return self.url.rstrip("/") + "/" + socket


def parse_parts_url(url: str) -> PartsTarget:
    """An fsspec URL with optional ``?part_seconds=S&part_rows=N&part_mb=M`` as a :class:`PartsTarget`."""
    base, _, query = url.partition("?")
    protocol = base.split("://", 1)[0].lower()
    add_secrets(url_secrets(url))
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - {"part_seconds", "part_rows", "part_mb"})
    if unknown:
        raise InvalidOptionError(
            f"{redact_url(url)}: unknown option(s) {', '.join(unknown)} (known: part_seconds, part_rows, part_mb)"
        )
    try:
        seconds = float(options.get("part_seconds", "60"))
        rows = int(options.get("part_rows", "100000"))
        megabytes = float(options.get("part_mb", "64"))
    except ValueError:
        raise InvalidOptionError(f"{redact_url(url)}: part_seconds, part_rows and part_mb are numbers") from None
    if not (seconds > 0 and rows > 0 and megabytes > 0):
        raise InvalidOptionError(f"{redact_url(url)}: part_seconds, part_rows and part_mb must be positive")
    if not base.split("://", 1)[1].strip("/"):
        raise InvalidOptionError(f"{redact_url(url)}: name a folder, e.g. s3://bucket/feeds/")
    return PartsTarget(base, redact_url(base), protocol, seconds, rows, int(megabytes * 2**20))


def part_name(run: str, number: int, first_ts_ns: int) -> str:
    """A part's file name: its first row's time (so names sort by time), the run and the part's number in the run."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(first_ts_ns // 1_000_000_000))
    return f"part-{stamp}Z-{run}-{number:06d}.parquet"
