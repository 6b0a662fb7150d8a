"""Deciding whether a received message is the one a test waits for.

A match is a predicate on the :class:`~nbsocket.core.events.WsEvent`, a dict of
field values that must be equal (dotted names reach into nested objects and
lists: ``{"result.items.0.id": 7}``), a field name whose value must equal the
same field of the request (``match="id"`` correlates replies by id), or
``None`` for the first message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InvalidOptionError
from .events import WsEvent

__all__ = ["MISSING", "Match", "Matcher", "compile_match", "field", "field_of_event"]


Match = Callable[[WsEvent], bool] | Mapping[str, Any] | str | None

MISSING = object()
"""What :func:`field` returns for a field the message does not have."""


def field(data: Any, name: str) -> Any:
    """The value of field ``name`` in parsed message ``data``, or :data:`MISSING`.

    ``name`` is a key, or a dotted path through nested dicts and lists
    (``"quote.bid"``, ``"items.0.id"``); a key that itself contains dots is
    found too.
    """
    if isinstance(data, Mapping) and name in data:
        return data[name]
    value = data
    for part in name.split("."):
        if isinstance(value, Mapping):
            if part not in value:
                return MISSING
            value = value[part]
        elif isinstance(value, (list, tuple)) and _is_index(part):
            index = int(part)
            if not -len(value) <= index < len(value):
                return MISSING
            value = value[index]
        else:
            return MISSING
    return value


def field_of_event(event: WsEvent, name: str) -> Any:
    """Field ``name`` of ``event``'s data (:func:`field`); ``topic`` is the event's topic on a protocol socket."""
    if name == "topic":
        topic = getattr(event, "topic", None)
        if topic is not None:
            return topic
    return field(event.data, name)


def _is_index(part: str) -> bool:
    return part.isdigit() or (part.startswith("-") and part[1:].isdigit())


class Matcher:
    """A compiled match: call it with an event; ``description`` says what it waits for.

    A predicate that raises is taken as "no match" (a stream usually carries
    messages of other shapes); the first such error is kept in ``error`` and
    shown if the wait times out. ``fields`` holds the ``(name, value)`` pairs of
    a dict match (``None`` for a predicate), so a failure can say which fields
    of the messages that did arrive differ.
    """

    def __init__(
        self, test: Callable[[WsEvent], bool], description: str, fields: tuple[tuple[str, Any], ...] | None = None
    ) -> None:
        self._test = test
        self.description = description
        self.fields = fields
        self.error: str | None = None
        self.errors = 0

    def __call__(self, event: WsEvent) -> bool:
        try:
            return bool(self._test(event))
        except Exception as exc:
            self.errors += 1
            if self.error is None:
                self.error = f"{type(exc).__name__}: {exc}"
            return False


def compile_match(match: Match, request: Any = None) -> Matcher:
    """Turn ``match`` (see the module docstring) into a :class:`Matcher`.

    ``request`` is the message being sent, for ``match="field"``.
    """
    if match is None:
        return Matcher(lambda event: True, "any message")
    if isinstance(match, str):
        if not isinstance(request, Mapping):
            raise InvalidOptionError(
                f"match={match!r} correlates by a field of the request, but the request is not a dict; "
                "pass a dict of field values or a predicate instead"
            )
        wanted = field(request, match)
        if wanted is MISSING:
            raise InvalidOptionError(f"match={match!r}: the request has no field {match!r} to correlate the reply with")
        return compile_match({match: wanted})
    if isinstance(match, Mapping):
        items = [(str(name), value) for name, value in match.items()]
        if not items:
            return compile_match(None)

        def test(event: WsEvent) -> bool:
            for name, value in items:
                actual = field_of_event(event, name)
                if actual is MISSING:
                    return False
                if callable(value) and not isinstance(value, type):
                    if not value(actual):
                        return False
                elif actual != value:
                    return False
            return True

        shown = ", ".join(f"{name}={_shown(value)}" for name, value in items)
        return Matcher(test, "a message with " + shown, tuple(items))
    if callable(match):
        name = getattr(match, "__qualname__", None) or type(match).__name__
        return Matcher(match, f"a message for which {name}(event) is true")
    raise InvalidOptionError(
        f"match must be a predicate on the event, a dict of field values, a field name or None, not {type(match).__name__}"
    )


def _shown(value: Any) -> str:
    if callable(value) and not isinstance(value, type):
        return getattr(value, "__qualname__", None) or "<predicate>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
