"""Paced sending: the engine under bursts and replays (the caller's thread paces, the socket's outbox takes).

The pacing logic is a generator of pauses (:func:`paced`), driven by
``time.sleep`` (:func:`run_sync`) or ``asyncio.sleep`` (:func:`run_async`);
when the outbox is full it waits for room instead of failing. A
:class:`Burst` sends a list or generator at a rate and counts what was
delivered and the replies; :class:`BurstReport` is its result.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
import time
from collections.abc import Generator, Iterable, Sized
from typing import Any

from ...core.state import CLOSED_FOR_GOOD
from ...errors import InvalidOptionError, OutboxFullError, SendError
from ..parts import SocketView
from ..progress import ProgressBar

__all__ = ["POLL_SECONDS", "Burst", "BurstReport", "Sending", "burst_plan", "paced", "run_async", "run_sync"]

POLL_SECONDS = 0.01
"""How often a waiting replay or burst looks at its counters."""


@dataclasses.dataclass
class Sending:
    """The running count of one paced send."""

    attempted: int = 0
    queued: int = 0
    failed: int = 0
    stopped: str | None = None
    errors: list[str] = dataclasses.field(default_factory=list)
    started: float = 0.0

    def fail(self, message: str) -> None:
        self.failed += 1
        if len(self.errors) < 10:
            self.errors.append(message)


def paced(
    conn: SocketView,
    schedule: Iterable[tuple[float, Any]],
    sending: Sending,
    deadline: float,
    progress: ProgressBar,
    before_send: Any = None,
) -> Generator[float, None, None]:
    """Send each ``(offset_seconds, message)`` at its offset from now; yields the pauses to take."""
    start = sending.started = time.monotonic()
    for offset, message in schedule:
        delay = start + offset - time.monotonic()
        if delay > 0:
            yield delay
        sending.attempted += 1
        try:
            payload = conn.encode(message)
        except SendError as exc:
            sending.fail(str(exc))
            continue
        if before_send is not None:
            before_send(payload)
        while True:
            try:
                conn.send(payload, timeout=0)  # this loop does its own waiting (and shows progress)
                sending.queued += 1
                break
            except OutboxFullError:
                if time.monotonic() > deadline:
                    sending.fail("the outbox stayed full until the timeout")
                    sending.stopped = "timeout"
                    return
                yield POLL_SECONDS
            except SendError as exc:  # closed for good: nothing more can go out
                sending.fail(str(exc))
                sending.stopped = "closed"
                return
        progress.update(sending.attempted)
        if time.monotonic() > deadline:
            sending.stopped = "timeout"
            return


def run_sync(steps: Generator[float, None, None]) -> None:
    try:
        for pause in steps:
            time.sleep(pause)
    finally:
        steps.close()  # on Ctrl-C too: detach observers now


async def run_async(steps: Generator[float, None, None]) -> None:
    try:
        for pause in steps:
            await asyncio.sleep(pause)
    finally:
        steps.close()


@dataclasses.dataclass
class BurstReport:
    """What a burst (:func:`nbsocket.burst`) did: messages attempted, queued, delivered (written to the socket), failed,
    and replies seen."""

    socket: str
    messages: int
    queued: int
    delivered: int
    failed: int
    replies: int
    seconds: float
    rate: float | None
    errors: list[str]

    @property
    def achieved_rate(self) -> float:
        """Messages delivered per second."""
        return self.delivered / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """The report as a dict (one row of a DataFrame)."""
        return {**dataclasses.asdict(self), "achieved_rate": self.achieved_rate}

    def __repr__(self) -> str:
        target = f"at {self.rate:g}/s" if self.rate else "as fast as possible"
        errors = f"; first error: {self.errors[0]}" if self.errors else ""
        return (
            f"<BurstReport {self.socket!r} {target}: {self.delivered} of {self.messages} delivered, {self.failed} failed, "
            f"in {self.seconds:.3f} s ({self.achieved_rate:,.0f}/s); {self.replies} replies{errors}>"
        )


class _Delivery:
    """Observer counting the writes of the payloads a burst queued (by identity)."""

    def __init__(self) -> None:
        self._pending: dict[int, list[Any]] = {}
        self._lock = threading.Lock()
        self.delivered = 0
        self.last_write = 0.0

    def track(self, payload: Any) -> None:
        with self._lock:
            slot = self._pending.get(id(payload))
            if slot is None:
                self._pending[id(payload)] = [payload, 1]
            else:
                slot[1] += 1

    def on_sent(self, item: Any, ts_ns: int) -> None:
        with self._lock:
            slot = self._pending.get(id(item.payload))
            if slot is None or slot[0] is not item.payload:
                return
            slot[1] -= 1
            if slot[1] == 0:
                del self._pending[id(item.payload)]
            self.delivered += 1
            self.last_write = time.monotonic()


def burst_plan(messages: Any, rate: float | None, count: int | None) -> tuple[Iterable[tuple[float, Any]], int | None]:
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 0):
        raise InvalidOptionError(f"rate must be messages per second (> 0), or None/0 for as fast as possible; not {rate!r}")
    if count is not None and (not isinstance(count, int) or count < 0):
        raise InvalidOptionError(f"count must be a non-negative integer, not {count!r}")
    if isinstance(messages, (str, bytes, dict)):
        raise InvalidOptionError(
            "burst sends a list or generator of messages; wrap a single message in a list (or use itertools.repeat)"
        )
    total = len(messages) if isinstance(messages, Sized) else None
    if count is not None:
        total = count if total is None else min(total, count)
    items: Iterable[Any] = itertools.islice(messages, count) if count is not None else messages
    step = 1.0 / rate if rate else 0.0
    return ((i * step, message) for i, message in enumerate(items)), total


class Burst:
    """One burst in progress: its plan, counts and progress bar; ``steps()`` drives it, ``report()`` sums it up."""

    def __init__(
        self,
        conn: SocketView,
        messages: Any,
        rate: float | None,
        count: int | None,
        timeout: float,
        settle: float,
        progress: bool | None,
    ) -> None:
        self.conn = conn
        self.schedule, total = burst_plan(messages, rate, count)
        self.rate = rate or None
        self.settle = settle
        self.deadline = time.monotonic() + timeout
        self.sending = Sending()
        self.delivery = _Delivery()
        self.progress = ProgressBar(total, f"burst {self.conn.name}", progress)
        self.replies_before = self.conn.stats.messages_in

    def steps(self) -> Generator[float, None, None]:
        conn, delivery = self.conn, self.delivery
        conn.add_observer(delivery)
        try:
            yield from paced(conn, self.schedule, self.sending, self.deadline, self.progress, delivery.track)
            while (
                delivery.delivered < self.sending.queued
                and time.monotonic() < self.deadline
                and conn.state not in CLOSED_FOR_GOOD
            ):
                yield POLL_SECONDS
            # settle: until `settle` seconds pass with no new message, while fewer replies than
            # deliveries came back (an echo's replies may still be on their way after the last write)
            end = time.monotonic() + self.settle
            seen = conn.stats.messages_in
            while time.monotonic() < end:
                yield min(POLL_SECONDS, max(0.0, end - time.monotonic()))
                now_in = conn.stats.messages_in
                if now_in != seen and now_in - self.replies_before < delivery.delivered and time.monotonic() < self.deadline:
                    seen = now_in
                    end = time.monotonic() + self.settle
        finally:
            conn.remove_observer(delivery)

    def report(self) -> BurstReport:
        sending, delivery = self.sending, self.delivery
        last = delivery.last_write or time.monotonic()
        report = BurstReport(
            socket=self.conn.name,
            messages=sending.attempted,
            queued=sending.queued,
            delivered=delivery.delivered,
            failed=sending.failed + (sending.queued - delivery.delivered),
            replies=self.conn.stats.messages_in - self.replies_before,
            seconds=max(0.0, last - sending.started),
            rate=self.rate,
            errors=list(sending.errors),
        )
        if sending.queued > delivery.delivered:
            report.errors.append(f"{sending.queued - delivery.delivered} queued message(s) were not written before the timeout")
        self.progress.finish(report.messages, f"{report.delivered} delivered, {report.failed} failed", ok=report.failed == 0)
        return report
