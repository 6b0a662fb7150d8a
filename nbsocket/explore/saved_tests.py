"""Saved tests: find the fields of an exploration that change on every run.

``conn.save_test`` writes an exploration as a pytest file (its text comes from
:mod:`nbsocket.core.saved_tests`). :func:`propose_ignore` replays the
exploration once more, on a new socket to the same server with the same options,
step by step as the saved test would, and returns the fields whose values differed
(timestamps, ids): pass them as ``save_test``'s ``ignore``.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

from ..core.saved_tests import (
    Call,
    Expect,
    Exploration,
    Send,
    Step,
    Subscribe,
    Verb,
    differing_fields,
    ignore_patterns,
    plan,
)
from ..errors import InvalidOptionError, NbSocketError
from ..runtime import Connection, Manager, ProtocolConnection, registry

__all__ = ["ProposalWarning", "propose_ignore"]

_names = itertools.count(1)


class ProposalWarning(UserWarning):
    """The replay of :func:`propose_ignore` stopped early: fields after that step were not compared."""


def _resolve(target: str | Connection, manager: Manager) -> Connection:
    return target if isinstance(target, Connection) else manager.get(target)


def propose_ignore(
    name: str | Connection, *, runs: int = 1, timeout: float = 10.0, manager: Manager | None = None
) -> tuple[str, ...]:
    """The fields that change from run to run, found by replaying socket ``name``'s exploration ``runs`` more times.

    Each run opens a new socket to the same server with the same options (the
    registry's, removed afterwards), does what the saved test would do (sends,
    protocol verbs and calls, in order) and compares every message and call
    result with the one recorded, field by field. Returns the differing fields as
    ``ignore`` patterns (``ts``, ``items.*.id``), ready for
    ``save_test(..., ignore=...)``. A reply that does not come within
    ``timeout`` seconds ends the run with a :class:`ProposalWarning`.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise InvalidOptionError(f"runs must be a positive integer, not {runs!r}")
    manager = manager or registry()
    manager.loop_thread.refuse_blocking("propose_ignore", "nbs")
    source = _resolve(name, manager)
    exploration = source.exploration()
    steps = plan(exploration)
    differing: set[str] = set()
    for _ in range(runs):
        differing |= _replay_once(source, exploration, steps, timeout, manager)
    return ignore_patterns(differing)


def _replay_once(source: Connection, exploration: Exploration, steps: list[Step], timeout: float, manager: Manager) -> set[str]:
    name = f"{source.name}.propose-{next(_names)}"
    while name in manager:
        name = f"{source.name}.propose-{next(_names)}"
    twin = manager.connect_like(source, name, reconnect=False)
    differing: set[str] = set()
    topics: dict[str, str] = {}  # a subscription's variable -> its topic on the twin
    subscriptions: dict[str, Any] = {}
    try:
        for number, step in enumerate(steps, start=1):
            try:
                differing |= _carry_out(twin, step, timeout, topics, subscriptions)
            except NbSocketError as exc:
                warnings.warn(
                    f"propose_ignore: replaying {exploration.socket!r} stopped at step {number} of {len(steps)} "
                    f"({type(step).__name__.lower()}): {exc}",
                    ProposalWarning,
                    stacklevel=4,
                )
                break
    finally:
        manager.remove(name)
    return differing


def _carry_out(twin: Connection, step: Step, timeout: float, topics: dict[str, str], subscriptions: dict[str, Any]) -> set[str]:
    """Do ``step`` on ``twin``; the fields of what came back that differ from what was recorded."""
    if isinstance(step, Send):
        twin.send(step.payload)
    elif isinstance(step, Expect):
        topic = topics.get(step.subscription or "", step.topic)
        event = twin.expect({"topic": topic} if topic is not None else None, timeout=max(step.within * 2, timeout))
        if step.decoded and event.error is None:
            return differing_fields(step.data, event.data)
        if not step.decoded and event.request.body != step.body:
            return {"data"}
    elif isinstance(step, Call) and isinstance(twin, ProtocolConnection):
        kind, recorded = step.outcome
        try:
            result = twin.call(*step.args, timeout=max(step.timeout * 2, timeout), **step.kwargs)
        except NbSocketError:
            if kind == "error":
                return set()
            raise
        return differing_fields(recorded, result) if kind == "result" else set()
    elif isinstance(step, Subscribe) and isinstance(twin, ProtocolConnection):
        subscription = twin.subscribe(*step.args, **step.kwargs)
        topics[step.variable] = subscription.topic
        subscriptions[step.variable] = subscription
    elif isinstance(step, Verb) and isinstance(twin, ProtocolConnection):
        if step.kind == "unsubscribe":
            if step.subscription in subscriptions:
                subscriptions[step.subscription].cancel()
        else:
            getattr(twin, step.kind)(*step.args, **step.kwargs)
    return set()
