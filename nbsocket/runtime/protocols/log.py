"""The protocol log: a protocol socket's verbs and the messages it received, in order (what ``save_test`` writes from).

A plain socket's transcript holds its messages as sent and received, and a saved
test repeats them. A protocol socket's messages are packets with generated ids
and housekeeping between them; a test repeats its verbs instead (``emit``,
``call`` and what it returned, ``subscribe`` and the events that came). The
:class:`ProtocolLog` is a connection observer that keeps them as
:class:`~nbsocket.core.saved_tests.ProtocolStep` records, bounded.
"""

from __future__ import annotations

import collections
import concurrent.futures
import copy
import threading
import time
from collections.abc import Mapping
from typing import Any

from ...core.events import WsEvent
from ...core.saved_tests import ProtocolStep
from ...errors import RemoteError

__all__ = ["DEFAULT_MAX_STEPS", "ProtocolLog"]

DEFAULT_MAX_STEPS = 10_000
"""Steps a protocol socket's log keeps, oldest dropped first."""


class ProtocolLog:
    """A protocol socket's verbs (with a call's outcome and round trip) and received messages, oldest dropped first."""

    def __init__(self, max_steps: int = DEFAULT_MAX_STEPS) -> None:
        self._steps: collections.deque[ProtocolStep] = collections.deque(maxlen=max_steps)
        self._lock = threading.Lock()

    def on_received(self, event: WsEvent) -> None:
        """Keep a delivered message (observer hook, loop thread)."""
        step = ProtocolStep(event.timestamp_ns, "event", event.topic, outcome=event.data, seq=event.seq)
        with self._lock:
            self._steps.append(step)

    def verb(
        self,
        kind: str,
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        name: Any = None,
        outcome: Any = None,
        started_ns: int | None = None,
    ) -> None:
        """Keep a verb that was carried out; ``started_ns`` (a call's start) also gives its round trip."""
        now = time.time_ns()
        start = now if started_ns is None else started_ns
        step = ProtocolStep(
            start,
            kind,
            name,
            _snapshot(tuple(args)),
            _snapshot(dict(kwargs or {})),
            _snapshot(outcome),
            duration=None if started_ns is None else (now - started_ns) / 1e9,
        )
        with self._lock:
            self._steps.append(step)

    def call_done(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any], started_ns: int, future: concurrent.futures.Future[Any]
    ) -> None:
        """Keep a call once it has its outcome: its result or the server's error (a timeout or a lost socket: nothing)."""
        if future.cancelled():
            return
        error = future.exception()
        if error is None:
            self.verb("call", args, kwargs, outcome=("result", future.result()), started_ns=started_ns)
        elif isinstance(error, RemoteError):
            self.verb("call", args, kwargs, outcome=("error", str(error)), started_ns=started_ns)

    def steps(self) -> list[ProtocolStep]:
        """The steps kept, in the order they started."""
        with self._lock:
            steps = list(self._steps)
        return sorted(steps, key=lambda step: step.ts_ns)

    def clear(self) -> None:
        """Forget the steps so far."""
        with self._lock:
            self._steps.clear()


def _snapshot(value: Any) -> Any:
    """``value`` as it is now (a later change by the caller does not rewrite history)."""
    try:
        return copy.deepcopy(value)
    except Exception:
        return value
