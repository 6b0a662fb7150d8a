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
from typing import TypedDict, overload

from ...core.events import WsEvent
from ..outbound.outbox import Outgoing
from ..transport import Batch

__all__ = ["BatchHook", "EventHook", "LifecycleHook", "LifecycleInfo", "Observers", "SentHook"]


log = logging.getLogger("nbsocket")


class LifecycleInfo(TypedDict, total=False):
    """What a lifecycle change carries: ``state``; ``open`` (url, subprotocol); ``close`` (code, reason);
    ``reset`` (url); ``error`` (where, error, message)."""

    state: str
    url: str
    subprotocol: str | None
    code: int
    reason: str
    where: str
    error: str
    message: str


BatchHook = Callable[[int, "int | None", Batch, "list[str | None]"], object]
"""``on_batch(ts_ns, first_seq, bodies, errors)``: one read's messages (``first_seq`` is ``None`` for a protocol's
housekeeping, which has no number)."""
EventHook = Callable[[WsEvent], object]
"""``on_received(event)`` and ``on_handled(event)``."""
SentHook = Callable[[Outgoing, int], object]
"""``on_sent(item, ts_ns)``: the writer wrote ``item``."""
LifecycleHook = Callable[[str, LifecycleInfo], object]
"""``on_lifecycle(kind, info)``."""


class Observers:
    """The observers of one connection and their hooks, by kind."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self.all: tuple[object, ...] = ()
        self.on_batch: tuple[BatchHook, ...] = ()
        self.on_received: tuple[EventHook, ...] = ()
        self.on_handled: tuple[EventHook, ...] = ()
        self.on_sent: tuple[SentHook, ...] = ()
        self.on_lifecycle: tuple[LifecycleHook, ...] = ()

    def add(self, observer: object) -> None:
        """Attach ``observer``."""
        with self._lock:
            self._rebuild((*self.all, observer))

    def remove(self, observer: object) -> None:
        """Detach ``observer`` (no error if it is not attached)."""
        with self._lock:
            self._rebuild(tuple(o for o in self.all if o is not observer))

    def _rebuild(self, observers: tuple[object, ...]) -> None:
        def hooks(kind: str, *skip: str) -> tuple[Callable[..., object], ...]:
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

    @overload
    def call(
        self, hooks: tuple[BatchHook, ...], ts_ns: int, first_seq: int | None, bodies: Batch, errors: list[str | None], /
    ) -> None: ...
    @overload
    def call(self, hooks: tuple[EventHook, ...], event: WsEvent, /) -> None: ...
    @overload
    def call(self, hooks: tuple[SentHook, ...], item: Outgoing, ts_ns: int, /) -> None: ...
    @overload
    def call(self, hooks: tuple[LifecycleHook, ...], kind: str, info: LifecycleInfo, /) -> None: ...

    def call(self, hooks: tuple[Callable[..., object], ...], *args: object) -> None:
        """Call each hook with ``args``; a failing observer is logged and the others still run."""
        for hook in hooks:
            try:
                hook(*args)
            except Exception:
                log.exception("socket %r: an observer failed", self.name)

    def __len__(self) -> int:
        return len(self.all)

    def __iter__(self) -> Iterator[object]:
        return iter(self.all)
