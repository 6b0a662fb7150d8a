"""STOMP frames over WebSocket: parsing, encoding, header escaping and message bodies (pure functions).

Used by :class:`~.stomp.STOMP`; nothing here keeps state.

Framing is written here (about a hundred lines) rather than taken from
stomp.py's ``stomp.utils``: those helpers parse one frame out of a TCP stream
buffer and treat bodies as text by default, while over WebSocket a message holds
zero or more whole frames with heart-beat EOLs between them, bodies are bytes
measured by ``content-length``, header escaping depends on the negotiated
version and on the command (CONNECT/CONNECTED are never escaped), and a broken
frame must become a ``Malformed`` action instead of an exception. Owning that
small parser keeps nbsocket free of an extra dependency and of a library that
also brings its own transports and threads.

Rules followed (STOMP 1.2 specification):

* a frame is ``COMMAND EOL (name:value EOL)* EOL body NUL``, EOL being ``\\n``
  or ``\\r\\n``; any number of EOLs may follow a frame (heart-beats);
* header names and values escape ``\\\\``, ``\\n``, ``\\r`` (1.2 only) and
  ``:`` as ``\\c``, except in CONNECT/CONNECTED frames; an unknown escape is an
  error; when a header repeats, the first value counts;
* ``content-length`` gives the body's octet count (the body may then hold NUL);

Each WebSocket message must hold whole frames; a message ending inside a frame
is reported as ``Malformed`` (brokers send one or more whole frames per message).
A message of EOLs only is a heart-beat (``Housekeeping("heart-beat")``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ...errors import ProtocolError
from .base import Malformed

__all__ = ["SERVER_COMMANDS", "FrameError", "StompFrame", "decode_body", "encode_body", "encode_frame", "parse_frames"]

SERVER_COMMANDS = frozenset({"CONNECTED", "MESSAGE", "RECEIPT", "ERROR"})
_UNESCAPED_COMMANDS = frozenset({"CONNECT", "CONNECTED", "STOMP"})
_ESCAPES_12 = {"\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\c": ":"}


class FrameError(ValueError):
    """A frame that cannot be parsed; :func:`parse_frames` turns it into ``Malformed``, so no user sees it."""


@dataclasses.dataclass
class StompFrame:
    """One STOMP frame: ``command``, ``headers`` (first occurrence of each name wins) and ``body`` bytes."""

    command: str
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""


# --- framing ----------------------------------------------------------------------


def _escape(text: str, version: str) -> str:
    if version == "1.0":
        return text
    text = text.replace("\\", "\\\\").replace("\n", "\\n").replace(":", "\\c")
    return text.replace("\r", "\\r") if version == "1.2" else text


def _unescape(text: str, version: str) -> str:
    if version == "1.0" or "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            pair = text[i : i + 2]
            if pair not in _ESCAPES_12 or (pair == "\\r" and version != "1.2"):
                raise FrameError(f"undefined escape sequence {pair!r} in header {text!r}")
            out.append(_ESCAPES_12[pair])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def encode_frame(command: str, headers: dict[str, Any] | None = None, body: bytes = b"", *, version: str = "1.2") -> bytes:
    """The wire bytes of one frame; ``content-length`` is added when there is a body.

    :class:`~nbsocket.errors.ProtocolError` for a header no STOMP parser could read back: one holding NUL
    (which ends a frame), or a line break in the never-escaped CONNECT/CONNECTED headers.
    """
    escape = command not in _UNESCAPED_COMMANDS
    lines = [command]
    for key, value in (headers or {}).items():
        if value is None:
            continue
        key, value = str(key), str(value)
        if "\x00" in key or "\x00" in value:  # no escape exists for it, and NUL ends a frame
            raise ProtocolError(f"a STOMP header cannot hold a NUL character: {key!r}")
        if not escape and ("\n" in key + value or ":" in key):  # CONNECT/CONNECTED headers are never escaped
            raise ProtocolError(f"a {command} header cannot hold a line break (or a ':' in its name): {key!r}")
        lines.append(f"{_escape(key, version)}:{_escape(value, version)}" if escape else f"{key}:{value}")
    if body and "content-length" not in (headers or {}):
        lines.append(f"content-length:{len(body)}")
    return ("\n".join(lines) + "\n\n").encode("utf-8") + body + b"\x00"


def parse_frames(data: str | bytes, *, version: str = "1.2") -> list[StompFrame | Malformed | None]:
    """Every frame in one WebSocket message, in order: a :class:`StompFrame`, ``None`` for a heart-beat EOL
    run, or :class:`~.base.Malformed` for a frame that could not be parsed (parsing resumes after its NUL)."""
    buf = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    out: list[StompFrame | Malformed | None] = []
    pos, end = 0, len(buf)
    while pos < end:
        start = pos
        while pos < end and buf[pos] in b"\r\n":
            pos += 1
        if pos > start:
            out.append(None)  # heart-beat(s)
            continue
        try:
            frame, pos = _parse_one(buf, pos, version)
            out.append(frame)
        except ValueError as exc:
            out.append(Malformed(f"malformed STOMP frame: {exc}"))
            nul = buf.find(b"\x00", pos)
            pos = end if nul < 0 else nul + 1
    return out


def _read_line(buf: bytes, pos: int) -> tuple[str, int]:
    nl = buf.find(b"\n", pos)
    if nl < 0:
        raise FrameError("message ends inside the frame's head (no blank line after the headers)")
    raw = buf[pos:nl]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        return raw.decode("utf-8"), nl + 1
    except UnicodeDecodeError as exc:
        raise FrameError(f"frame head is not UTF-8 ({exc.reason})") from None


def _parse_one(buf: bytes, pos: int, version: str) -> tuple[StompFrame, int]:
    command, pos = _read_line(buf, pos)
    if not command.isalpha() or not command.isupper():
        raise FrameError(f"bad command line {command[:40]!r}")
    escaped = command not in _UNESCAPED_COMMANDS
    headers: dict[str, str] = {}
    while True:
        line, pos = _read_line(buf, pos)
        if line == "":
            break
        name, sep, value = line.partition(":")
        if not sep:
            raise FrameError(f"header line without ':' {line[:60]!r}")
        if escaped:
            name, value = _unescape(name, version), _unescape(value, version)
        headers.setdefault(name, value)
    length_text = headers.get("content-length")
    if length_text is not None:
        if not length_text.strip().isdigit():
            raise FrameError(f"bad content-length {length_text!r}")
        body_end = pos + int(length_text)
        if body_end >= len(buf) or buf[body_end] != 0:
            raise FrameError(f"body is not {length_text} octets followed by NUL")
    else:
        body_end = buf.find(b"\x00", pos)
        if body_end < 0:
            raise FrameError("message ends before the frame's NUL terminator")
    return StompFrame(command, headers, buf[pos:body_end]), body_end + 1


def decode_body(body: bytes, content_type: str | None) -> tuple[Any, str | None]:
    """A MESSAGE body by its content-type: JSON -> object, ``text/*`` -> str, else bytes; ``(data, error)``."""
    if not content_type:
        return body, None
    mime, *params = [part.strip() for part in content_type.split(";")]
    mime = mime.lower()
    charset = "utf-8"
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value:
            charset = value.strip().strip('"')
    is_json = mime == "application/json" or mime.endswith("+json")
    if not (is_json or mime.startswith("text/")):
        return body, None
    try:
        text = body.decode(charset)
    except (LookupError, UnicodeDecodeError) as exc:
        return None, f"body is not {charset} text: {exc}"
    if not is_json:
        return text, None
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, f"body is not valid JSON: {exc}"


def encode_body(body: Any, content_type: str | None) -> tuple[bytes, str | None, bool]:
    """``(octets, content_type, is_binary)`` for a body to publish: dict/list -> JSON, str -> text, bytes -> binary."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), content_type or "application/octet-stream", True
    if isinstance(body, str):
        return body.encode("utf-8"), content_type or "text/plain;charset=utf-8", False
    if body is None:
        return b"", content_type, False
    if isinstance(body, (dict, list, tuple, int, float, bool)):
        return json.dumps(body, separators=(",", ":")).encode("utf-8"), content_type or "application/json", False
    raise ProtocolError(f"cannot publish a {type(body).__name__} body: use dict/list (JSON), str or bytes")
