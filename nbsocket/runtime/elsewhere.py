"""A socket that another shard holds: what ``connect`` returns for it under ``nbsocket run --shard I/N``.

A sharded process runs the whole feed file, so it calls ``connect`` for every socket; it opens only
those whose names fall to its shard (:mod:`nbsocket.core.sharding`). For the others, ``connect``
returns a :class:`HeldElsewhere`: the same verbs, which do nothing (the file's ``conn.send(...)`` or
``@conn.on_message`` need no ``if``), state ``"elsewhere"``, no live frame. Nothing is opened,
recorded or counted for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..core.redact import redact_url
from ..core.state import Stats

__all__ = ["ELSEWHERE", "HeldElsewhere"]

log = logging.getLogger("nbsocket")

ELSEWHERE = "elsewhere"
"""The state of a socket that another shard holds."""


class HeldElsewhere:
    """Stands in for socket ``name`` in a shard that does not hold it: its verbs do nothing (see the module)."""

    frame = None
    recorder = None
    errors: list[Any] = []  # noqa: RUF012 (never changed: a stand-in has no errors)
    last_error = None
    is_open = False
    removed = False

    def __init__(self, name: str, url: str, shard: str) -> None:
        self.name = name
        self.url = redact_url(url)
        self.shard = shard
        self.stats = Stats()

    @property
    def state(self) -> str:
        """Always ``"elsewhere"``."""
        return ELSEWHERE

    def test(self) -> bool:
        """Never open here."""
        return False

    def on_message(self, fn: Callable[..., Any] | None = None, **_: Any) -> Any:
        """Accepts a handler (also as a decorator) and never calls it."""
        return fn if fn is not None else (lambda func: func)

    def _nothing(self, *args: Any, **kwargs: Any) -> None:
        """A verb of a socket held elsewhere: nothing to do here."""

    send = disconnect = reset = remove = emit = publish = notify = _nothing

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        log.debug("socket %r is held by another shard; %s does nothing here", self.name, name)
        return self._nothing

    def __repr__(self) -> str:
        return f"<HeldElsewhere {self.name!r} {self.url}: held by another shard than {self.shard}>"
