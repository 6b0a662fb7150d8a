"""A connection's internal observers (waiters, transcripts, recorders), with each kind of hook gathered once.

An observer may have any of ``on_batch(ts_ns, first_seq, bodies, errors)`` (the messages
of one read at once, without building events; it replaces ``on_received``),
``on_received(event)``, ``on_handled(event)`` (after the handlers ran),
``on_sent(item, ts_ns)`` and ``on_lifecycle(kind, info)``. The hook tuples are
rebuilt on every change (copy-on-write), so the reader never looks a hook up per message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Observers"]


log = logging.getLogger("nbsocket")


class Observers:
    """The observers of one connection and their hooks, by kind."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self.all: tuple[Any, ...] = ()
        self.on_batch: tuple[Callable[..., Any], ...] = ()
        self.on_received: tuple[Callable[..., Any], ...] = ()
        self.on_handled: tuple[Callable[..., Any], ...] = ()
        self.on_sent: tuple[Callable[..., Any], ...] = ()
        self.on_lifecycle: tuple[Callable[..., Any], ...] = ()

    def add(self, observer: Any) -> None:
        """Attach ``observer``."""
        with self._lock:
            self._rebuild((*self.all, observer))

    def remove(self, observer: Any) -> None:
        """Detach ``observer`` (no error if it is not attached)."""
        with self._lock:
            self._rebuild(tuple(o for o in self.all if o is not observer))

    def _rebuild(self, observers: tuple[Any, ...]) -> None:
        def hooks(kind: str, *skip: str) -> tuple[Callable[..., Any], ...]:
            return tuple(
                getattr(o, kind)
                for o in observers
                if getattr(o, kind, None) is not None and all(getattr(o, other, None) is None for other in skip)
            )

        # on_handled first: a waiter must be listening before it can be reached by a message
        self.on_handled = hooks("on_handled")
        self.on_batch = hooks("on_batch")
        self.on_received = hooks("on_received", "on_batch")
        self.on_sent = hooks("on_sent")
        self.on_lifecycle = hooks("on_lifecycle")
        self.all = observers

    def call(self, hooks: tuple[Callable[..., Any], ...], *args: Any) -> None:
        """Call each hook with ``args``; a failing observer is logged and the others still run."""
        for hook in hooks:
            try:
                hook(*args)
            except Exception:
                log.exception("socket %r: an observer failed", self.name)

    def __len__(self) -> int:
        return len(self.all)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.all)
