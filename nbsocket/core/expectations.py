"""Why an expectation failed, in words: what was expected, what arrived instead, and how long it waited.

The runtime waits (``conn.expect``, ``conn.expect_none``); this module explains. An
:class:`Expectation` says what a test waits for (a match, a time bound, a schema).
When nothing matches, :func:`closest_messages` ranks the messages that did arrive
by how many of the expected fields they get wrong, and each :class:`FieldDifference`
shows both values. A schema is a JSON Schema (checked with ``jsonschema``) or a
pydantic model class; :func:`compile_schema` checks it before any waiting and
:meth:`Schema.violations` names each broken rule with its field path.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidOptionError
from .events import WsEvent
from .match import MISSING, Matcher, field_of_event
from .redact import scrub

__all__ = [
    "CLOSEST_SHOWN",
    "Expectation",
    "FieldDifference",
    "Schema",
    "Violation",
    "closest_messages",
    "compile_schema",
    "event_line",
    "field_differences",
    "late_text",
    "missing_text",
    "schema_text",
    "unwanted_text",
]

CLOSEST_SHOWN = 3
"""How many of the messages that arrived instead a failed expectation shows."""
BODY_CHARS = 200
"""How much of a message's body a failure shows."""
VIOLATIONS_SHOWN = 10
"""How many schema violations a failure lists."""
ROOT = "(the message)"
"""The field path of the message as a whole."""


@dataclasses.dataclass(frozen=True)
class FieldDifference:
    """One expected field of a match that a message gets wrong: its name, the expected value and the actual one.

    ``actual`` is :data:`~nbsocket.core.match.MISSING` when the message has no such field.
    """

    field: str
    expected: Any
    actual: Any

    def __str__(self) -> str:
        expected = self.expected
        if callable(expected) and not isinstance(expected, type):
            test = getattr(expected, "__qualname__", None) or "the predicate"
            shown = "missing" if self.actual is MISSING else f"{_short(self.actual)} fails {test}"
            return f"{self.field}: {shown}"
        if self.actual is MISSING:
            return f"{self.field}: expected {_short(expected)}, missing"
        return f"{self.field}: expected {_short(expected)}, got {_short(self.actual)}"


def field_differences(fields: Sequence[tuple[str, Any]], event: WsEvent) -> list[FieldDifference]:
    """The expected ``(name, value)`` fields that ``event`` gets wrong (a callable value is a test of the field)."""
    found = []
    for name, expected in fields:
        try:
            actual = field_of_event(event, name)
        except Exception:
            actual = MISSING
        if actual is MISSING:
            found.append(FieldDifference(name, expected, MISSING))
            continue
        if callable(expected) and not isinstance(expected, type):
            try:
                passed = bool(expected(actual))
            except Exception:
                passed = False
            if not passed:
                found.append(FieldDifference(name, expected, actual))
        elif not _equal(actual, expected):
            found.append(FieldDifference(name, expected, actual))
    return found


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return False


def closest_messages(
    matcher: Matcher, events: Sequence[WsEvent], limit: int = CLOSEST_SHOWN
) -> list[tuple[WsEvent, list[FieldDifference]]]:
    """The ``limit`` messages of ``events`` that came closest to ``matcher``, closest first, with their differences.

    For a dict match, closest means fewest wrong fields, then fewest missing ones (a field with another value is
    closer than no field), then the most recent; for a predicate, which cannot say how close a message came, the
    most recent messages (with no differences listed).
    """
    if matcher.fields is None:
        return [(event, []) for event in reversed(events[-limit:])]
    scored = []
    for position, event in enumerate(events):
        differences = field_differences(matcher.fields, event)
        missing = sum(1 for difference in differences if difference.actual is MISSING)
        scored.append(((len(differences), missing, -position), event, differences))
    scored.sort(key=lambda item: item[0])
    return [(event, differences) for _, event, differences in scored[:limit]]


def event_line(event: WsEvent) -> str:
    """``#seq HH:MM:SS.ffffff body`` of one message (the body clipped; a topic first on a protocol socket)."""
    body = event.request.body
    if isinstance(body, bytes):
        shown = repr(body[:64]) + ("..." if len(body) > 64 else "")
    elif event.topic is not None:
        shown = f"[{event.topic}] " + _clip(_json(event.data) if event.error is None else body, BODY_CHARS)
    else:
        shown = _clip(body, BODY_CHARS)
    return f"#{event.seq} {event.timestamp:%H:%M:%S.%f} {shown}"


# --- schemas ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Violation:
    """One rule of a schema a message breaks: where (a dotted field path, or :data:`ROOT`), which rule, and why."""

    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"at {self.path}: {self.message} (rule: {self.rule})"


class Schema:
    """A checked schema: a JSON Schema (a dict, validated with ``jsonschema``) or a pydantic model class.

    Made by :func:`compile_schema`; ``description`` names it in failures.
    """

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        if _is_pydantic_model(schema):
            self.description = f"the pydantic model {schema.__qualname__}"
            self._validator: Any = None
            return
        if not isinstance(schema, (Mapping, bool)):
            raise InvalidOptionError(
                f"schema must be a JSON Schema (a dict) or a pydantic model class, not {type(schema).__name__}"
            )
        try:
            import jsonschema
        except ImportError:
            raise InvalidOptionError(
                "schema= with a JSON Schema needs the jsonschema package: pip install 'nbsocket[testing]'"
            ) from None
        validator_class = jsonschema.validators.validator_for(schema)
        try:
            validator_class.check_schema(schema)  # type: ignore[arg-type]  # any Mapping does; the stubs say dict
        except jsonschema.SchemaError as exc:
            where = _dotted(exc.absolute_path)
            raise InvalidOptionError(f"schema is not a valid JSON Schema: {exc.message} (at {where})") from None
        self._validator = validator_class(schema)
        title = schema.get("title") if isinstance(schema, Mapping) else None
        self.description = f"the JSON Schema {title!r}" if title else "the JSON Schema"

    def violations(self, data: Any) -> list[Violation]:
        """Every rule ``data`` breaks (empty when it is valid), in the order of their field paths."""
        if self._validator is None:
            return _pydantic_violations(self.schema, data)
        found = []
        for error in self._validator.iter_errors(data):
            path = list(error.absolute_path)
            if error.validator == "required" and isinstance(error.instance, Mapping):
                missing = [name for name in error.validator_value if name not in error.instance and repr(name) in error.message]
                path += missing[:1]
            found.append(Violation(_dotted(path), str(error.validator), error.message))
        found.sort(key=lambda v: v.path)
        return found


def compile_schema(schema: Any) -> Schema | None:
    """``schema`` checked once, before any waiting (``None`` passes through); a bad one raises :class:`InvalidOptionError`."""
    return None if schema is None else Schema(schema)


def _is_pydantic_model(schema: Any) -> bool:
    return isinstance(schema, type) and callable(getattr(schema, "model_validate", None))


def _pydantic_violations(model: Any, data: Any) -> list[Violation]:
    try:
        model.model_validate(data)
    except Exception as exc:
        errors = getattr(exc, "errors", None)
        if not callable(errors):
            return [Violation(ROOT, type(exc).__name__, str(exc))]
        return [Violation(_dotted(error.get("loc", ())), str(error.get("type")), str(error.get("msg"))) for error in errors()]
    return []


def _dotted(path: Sequence[Any]) -> str:
    return ".".join(str(part) for part in path) if path else ROOT


# --- the texts of failures -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Expectation:
    """What a test waits for on one socket: a match, an optional time bound and schema, and what the bound counts from.

    ``reference`` names the moment ``within`` counts from (``"the last send"``, ``"message #4"``) and
    ``reference_ns`` is when it was (UTC nanoseconds). ``timeout`` is a plain wait's limit; ``during`` makes it
    an ``expect_none``; ``reply`` makes it a request's reply.
    """

    socket: str
    matcher: Matcher
    within: float | None = None
    reference: str = "the last send"
    reference_ns: int = 0
    schema: Schema | None = None
    during: float | None = None
    timeout: float | None = None
    reply: bool = False

    def describe(self) -> str:
        """The expectation in words, e.g. ``a message with id=1 on 'echo' within 0.5 s of the last send (12:00:01.2)``."""
        what = self.matcher.description
        if self.during is not None:
            what = "message" if what.startswith("any ") else what.removeprefix("a ")
            return f"no {what} on {self.socket!r} during {self.during:g} s"
        text = f"{'a reply matching ' if self.reply else ''}{what} on {self.socket!r}"
        if self.within is not None:
            text += f" within {self.within:g} s of {self.reference}"
            if self.reference_ns:
                text += f" ({_clock(self.reference_ns)} UTC)"
        elif self.timeout is not None:
            text += f" within {self.timeout:g} s"
        if self.schema is not None:
            text += f", valid under {self.schema.description}"
        return text


def missing_text(
    expectation: Expectation,
    waited: float,
    state: str,
    others: int,
    closest: list[tuple[WsEvent, list[FieldDifference]]],
    notes: Sequence[str] = (),
) -> str:
    """Nothing matching arrived: the expectation, how long it waited, and the closest messages that did arrive."""
    lines = [f"expected {expectation.describe()}", f"  nothing matching arrived; waited {waited:.3f} s (socket {state})"]
    lines += [f"  {note}" for note in notes]
    if closest:
        lines.append(
            f"  {others} other message(s) arrived; the closest:" if others else "  the closest messages received before:"
        )
        for event, differences in closest:
            lines.append(f"    {event_line(event)}")
            lines += [f"        {difference}" for difference in differences]
    else:
        lines.append("  no message arrived at all")
    return scrub("\n".join(lines))


def late_text(expectation: Expectation, event: WsEvent, waited: float) -> str:
    """The matching message arrived, but later than ``within`` allowed."""
    after = (event.timestamp_ns - expectation.reference_ns) / 1e9
    past = after - (expectation.within or 0)
    lines = [
        f"expected {expectation.describe()}",
        f"  it arrived late: {after:.3f} s after {expectation.reference}, {past:.3f} s past the bound (waited {waited:.3f} s)",
        f"    {event_line(event)}",
    ]
    return scrub("\n".join(lines))


def schema_text(expectation: Expectation, event: WsEvent, violations: Sequence[Violation], waited: float) -> str:
    """The matching message breaks the schema: each violation with its field path and rule."""
    schema = expectation.schema.description if expectation.schema is not None else "the schema"
    lines = [
        f"expected {expectation.describe()}",
        f"  #{event.seq} matched but is not valid under {schema} (waited {waited:.3f} s):",
    ]
    lines += [f"    {violation}" for violation in violations[:VIOLATIONS_SHOWN]]
    if len(violations) > VIOLATIONS_SHOWN:
        lines.append(f"    ... and {len(violations) - VIOLATIONS_SHOWN} more")
    lines.append(f"  the message: {event_line(event)}")
    return scrub("\n".join(lines))


def unwanted_text(expectation: Expectation, event: WsEvent, window_start_ns: int, waited: float) -> str:
    """A message that ``expect_none`` forbids arrived in its window."""
    at = (event.timestamp_ns - window_start_ns) / 1e9
    when = f"{at:.3f} s into the window" if at >= 0 else f"{-at:.3f} s before expect_none was called (not yet consumed)"
    lines = [f"expected {expectation.describe()}", f"  one arrived {when} (waited {waited:.3f} s):", f"    {event_line(event)}"]
    return scrub("\n".join(lines))


def _clock(ts_ns: int) -> str:
    return _dt.datetime.fromtimestamp(ts_ns / 1e9, _dt.timezone.utc).strftime("%H:%M:%S.%f")


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except Exception:
        return repr(value)


def _short(value: Any) -> str:
    return _clip(repr(value), 80)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
