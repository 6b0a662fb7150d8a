"""Content types: one registry of codecs that parse received messages and encode sent ones.

A codec turns a message body (``str`` from a text frame, ``bytes`` from a
binary frame) into Python data, and Python data into a body. Register your
own with :func:`register_codec`.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import datetime as _dt
import decimal
import io
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from xml.etree import ElementTree

from defusedxml import ElementTree as SafeElementTree

from ..errors import CodecError, EncodeError, InvalidOptionError

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "Body",
    "Codec",
    "CodecRegistry",
    "Decoder",
    "Encoder",
    "decode_bytes",
    "decode_csv",
    "decode_json",
    "decode_text",
    "decode_xml",
    "encode_bytes",
    "encode_csv",
    "encode_json",
    "encode_message",
    "encode_text",
    "encode_xml",
    "get_codec",
    "normalize_content_type",
    "register_codec",
    "registry",
    "utf8_checked",
]


Body = str | bytes
Decoder = Callable[[Body], Any]
Encoder = Callable[[Any], Body]

DEFAULT_CONTENT_TYPE = "application/json"


@dataclasses.dataclass(frozen=True)
class Codec:
    """How one content type is parsed (``decode``) and produced (``encode``)."""

    content_type: str
    decode: Decoder
    encode: Encoder
    description: str = ""


def normalize_content_type(content_type: str) -> str:
    """``'Application/JSON; charset=utf-8'`` -> ``'application/json'``."""
    return content_type.split(";", 1)[0].strip().lower()


# --- JSON -------------------------------------------------------------------


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, (decimal.Decimal,)):
        return float(obj)
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(obj)).decode("ascii")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    item = getattr(obj, "item", None)  # numpy and pandas scalars
    if callable(item):
        return item()
    to_dict = getattr(obj, "to_dict", None)  # pandas Series
    if callable(to_dict):
        return to_dict()
    isoformat = getattr(obj, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _fast_json_loads() -> Callable[[Body], Any] | None:
    """msgspec's JSON decoder (a dependency of nbsocket), or ``None`` where it cannot be imported (a platform without
    its wheel): then the standard library parses everything."""
    try:
        import msgspec
    except ImportError:
        return None
    return msgspec.json.Decoder().decode


_fast_loads = _fast_json_loads()


def decode_json(body: Body) -> Any:
    """Parse a JSON message (text, or UTF-8 bytes).

    msgspec parses first (about eight times faster than the standard library;
    integers of any size stay exact); anything it refuses
    (``NaN``/``Infinity``, numbers past float range, lone surrogates, deep
    nesting, invalid JSON) is parsed again by the standard library, so results
    and error messages are exactly the standard library's.
    """
    if _fast_loads is not None:
        try:
            return _fast_loads(body)
        except Exception:  # msgspec.DecodeError and its limits: the standard library decides
            pass
    try:
        return json.loads(body)
    except RecursionError:
        raise CodecError("JSON is nested too deeply to parse") from None
    except UnicodeDecodeError as exc:
        raise CodecError(f"binary message is not UTF-8 JSON: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise CodecError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def encode_json(obj: Any) -> str:
    """Encode Python data as compact JSON text."""
    try:
        return json.dumps(obj, separators=(",", ":"), default=_json_default, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise EncodeError(f"cannot encode {type(obj).__name__} as JSON: {exc}") from None


# --- text ---------------------------------------------------------------------


def _as_text(body: Body) -> str:
    if isinstance(body, str):
        return body
    try:
        return bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError(f"binary message is not UTF-8 text: {exc.reason} at byte {exc.start}") from None


def decode_text(body: Body) -> str:
    """A text message as ``str`` (binary frames must be UTF-8)."""
    return _as_text(body)


def encode_text(obj: Any) -> str:
    """Anything as its ``str()``."""
    return obj if isinstance(obj, str) else str(obj)


# --- CSV ----------------------------------------------------------------------


def decode_csv(body: Body) -> list[dict[str, str]]:
    """A CSV message with a header row -> a list of dicts; ragged rows are an error."""
    text = _as_text(body)
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        rows = [row for row in reader if row]
    except csv.Error as exc:
        raise CodecError(f"invalid CSV: {exc}") from None
    if not rows:
        return []
    header, records = rows[0], []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise CodecError(f"ragged CSV: row {number} has {len(row)} fields, the header has {len(header)}")
        records.append(dict(zip(header, row, strict=True)))
    return records


def encode_csv(obj: Any) -> str:
    """A DataFrame, a list of dicts or a list of rows -> CSV text."""
    to_csv = getattr(obj, "to_csv", None)
    if callable(to_csv):
        return str(to_csv(index=False))
    if isinstance(obj, Mapping):
        obj = [obj]
    if not isinstance(obj, (list, tuple)):
        raise EncodeError(f"cannot encode {type(obj).__name__} as CSV: pass a DataFrame, a list of dicts or a list of rows")
    out = io.StringIO()
    if obj and all(isinstance(r, Mapping) for r in obj):
        fields: dict[str, None] = {}
        for r in obj:
            fields.update(dict.fromkeys(r))
        writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n")
        writer.writeheader()
        writer.writerows(obj)
    else:
        csv.writer(out, lineterminator="\n").writerows(obj)
    return out.getvalue()


# --- XML ----------------------------------------------------------------------


def decode_xml(body: Body) -> ElementTree.Element:
    """Parse XML safely (no entity expansion, no external entities) into an Element."""
    try:
        return SafeElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise CodecError(f"invalid XML: {exc}") from None
    except Exception as exc:  # defusedxml's EntitiesForbidden, DTDForbidden, ...
        raise CodecError(f"unsafe XML refused: {type(exc).__name__}: {exc}") from None


def encode_xml(obj: Any) -> str:
    """An Element -> XML text; strings are sent as they are."""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, ElementTree.Element):
        return ElementTree.tostring(obj, encoding="unicode")
    raise EncodeError(f"cannot encode {type(obj).__name__} as XML: pass an xml.etree Element or a string")


# --- binary -------------------------------------------------------------------


def decode_bytes(body: Body) -> Body:
    """The body as received."""
    return body


def encode_bytes(obj: Any) -> bytes:
    """bytes-like objects as they are."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj)
    raise EncodeError(f"cannot encode {type(obj).__name__} as application/octet-stream: pass bytes")


# --- registry -----------------------------------------------------------------


class CodecRegistry:
    """Maps content types to codecs; ``+json`` and ``+xml`` suffix types fall back to JSON and XML."""

    def __init__(self) -> None:
        self._codecs: dict[str, Codec] = {}  # replaced whole on change, so readers on any thread see one version

    def register(
        self, content_type: str, decode: Decoder, encode: Encoder, *, description: str = "", replace: bool = False
    ) -> Codec:
        """Add a codec for ``content_type``; ``replace=True`` overrides an existing one."""
        key = normalize_content_type(content_type)
        if not key or "/" not in key:
            raise InvalidOptionError(f"{content_type!r} is not a content type like 'application/x-mine'")
        if not callable(decode) or not callable(encode):
            raise InvalidOptionError("decode and encode must be callables")
        codec = Codec(key, decode, encode, description)
        if key in self._codecs and not replace:
            raise InvalidOptionError(f"a codec for {key!r} is already registered; pass replace=True to override it")
        self._codecs = {**self._codecs, key: codec}
        return codec

    def get(self, content_type: str | None) -> Codec:
        """The codec for ``content_type`` (JSON when ``None``)."""
        key = normalize_content_type(content_type or DEFAULT_CONTENT_TYPE)
        codec = self._codecs.get(key)
        if codec is not None:
            return codec
        if key.endswith("+json"):
            return dataclasses.replace(self._codecs["application/json"], content_type=key)
        if key.endswith("+xml") or key == "text/xml":
            return dataclasses.replace(self._codecs["application/xml"], content_type=key)
        known = ", ".join(sorted(self._codecs))
        raise InvalidOptionError(f"no codec for content type {key!r}; known: {known}. Register one with nbs.register_codec().")

    def content_types(self) -> list[Codec]:
        """Every registered codec."""
        return list(self._codecs.values())


registry = CodecRegistry()
registry.register("application/json", decode_json, encode_json, description="JSON -> dict/list; objects -> JSON text (default)")
registry.register("text/plain", decode_text, encode_text, description="text -> str; objects -> str(obj)")
registry.register("text/csv", decode_csv, encode_csv, description="CSV with header -> list of dicts; DataFrame/list -> CSV")
registry.register("application/xml", decode_xml, encode_xml, description="XML -> Element (safe: no entity expansion)")
registry.register("application/octet-stream", decode_bytes, encode_bytes, description="bytes as received; bytes sent as binary")


def register_codec(content_type: str, decode: Decoder, encode: Encoder, *, description: str = "", replace: bool = False) -> Codec:
    """Register a codec for ``content_type`` in the shared registry."""
    return registry.register(content_type, decode, encode, description=description, replace=replace)


def get_codec(content_type: str | None) -> Codec:
    """The codec the shared registry uses for ``content_type``."""
    return registry.get(content_type)


def encode_message(codec: Codec, message: Any, content_type: str, name: str) -> str | bytes:
    """The payload ``message`` is sent as on socket ``name``: ``str`` and ``bytes`` as they are, anything else by ``codec``.

    Raises :class:`EncodeError` (naming the socket and content type) when the
    message cannot be sent, text that cannot be UTF-8 (a lone surrogate)
    included: refused here, before it could reach the socket and kill the connection.
    """
    if isinstance(message, str):
        return utf8_checked(message)
    if isinstance(message, bytes):
        return message
    if isinstance(message, (bytearray, memoryview)):
        return bytes(message)
    if message is None:
        raise EncodeError(f"cannot send None on {name!r}; pass a str, bytes, or data for {content_type}")
    try:
        payload = codec.encode(message)
    except EncodeError:
        raise
    except Exception as exc:
        raise EncodeError(f"cannot encode {type(message).__name__} as {content_type}: {exc}") from None
    if isinstance(payload, str):
        return utf8_checked(payload)
    if not isinstance(payload, bytes):
        raise EncodeError(f"the {content_type} codec returned {type(payload).__name__}, not str or bytes")
    return payload


def utf8_checked(text: str) -> str:
    """``text`` if it can go in a text frame (valid UTF-8); else :class:`EncodeError` naming the bad character."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = text[exc.start : exc.end]
            raise EncodeError(
                f"cannot send text containing {bad!r} at position {exc.start}: a lone surrogate is not valid UTF-8 "
                "(a text frame must be UTF-8; fix the string, or send bytes for a binary frame)"
            ) from None
    return text
