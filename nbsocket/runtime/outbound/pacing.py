"""Paced sending: the engine under bursts and replays (the caller's thread paces, the socket's outbox takes).

The pacing logic is a generator of pauses (:func:`paced`), driven by
``time.sleep`` (:func:`run_sync`) or ``asyncio.sleep`` (:func:`run_async`);
when the outbox is full it waits for room instead of failing. A
:class:`Burst` sends a list or generator at a rate and counts what was
delivered and the replies, and times each reply's round trip (paired with
the messages in order, or by a field with ``match=``); :class:`BurstReport`
is its result, and ``report.assert_ok(p95_s=..., errors=...)`` turns it into
a test's assertion, as k6's thresholds do.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import itertools
import math
import threading
import time
from collections.abc import Callable, Generator, Hashable, Iterable, Sized
from typing import Any

from ...core.events import WsEvent
from ...core.match import MISSING, field
from ...core.state import CLOSED_FOR_GOOD
from ...errors import ExpectationError, InvalidOptionError, OutboxFullError, SendError
from ..parts import SocketView
from ..progress import ProgressBar
from ..transport import Batch
from .outbox import Outgoing

__all__ = [
    "POLL_SECONDS",
    "Burst",
    "BurstReport",
    "RoundTripsByField",
    "RoundTripsInOrder",
    "Sending",
    "burst_plan",
    "paced",
    "quantile",
    "run_async",
    "run_sync",
]

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
    schedule: Iterable[tuple[float, Any]],  # (offset, a user's message)
    sending: Sending,
    deadline: float,
    progress: ProgressBar,
    before_send: Callable[[Any, str | bytes], None] | None = None,
) -> Generator[float, None, None]:
    """Send each ``(offset_seconds, message)`` at its offset from now; yields the pauses to take.

    ``before_send(message, payload)`` sees each message and what it was encoded to, just before it is queued.
    """
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
            before_send(message, payload)
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


def quantile(ordered: list[float], q: float) -> float | None:
    """The ``q`` quantile of sorted ``ordered`` by linear interpolation (as pandas' ``quantile``); ``None`` when empty."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


THRESHOLDS = ("p50_s", "p95_s", "p99_s", "max_s", "errors", "min_replies", "min_rate")
"""What :meth:`BurstReport.assert_ok` can bound: round-trip figures and failures from above, replies and rate from below."""


@dataclasses.dataclass
class BurstReport:
    """What a burst (:func:`nbsocket.burst`) did: messages attempted, queued, delivered (written to the socket), failed,
    replies seen, and the round trips of the replies (``round_trips``, seconds; ``p50_s``, ``p95_s``, ``p99_s``,
    ``max_s``). ``assert_ok`` turns thresholds on these into a test's assertion."""

    socket: str
    messages: int
    queued: int
    delivered: int
    failed: int
    replies: int
    seconds: float
    rate: float | None
    errors: list[str]
    round_trips: list[float] = dataclasses.field(default_factory=list, repr=False)
    """Each reply's round trip in seconds, from the write of the message it answers (paired in order, or by
    ``match``) to its receipt, in the order the replies came."""

    @property
    def achieved_rate(self) -> float:
        """Messages delivered per second."""
        return self.delivered / self.seconds if self.seconds > 0 else float("nan")

    @functools.cached_property
    def _ordered(self) -> list[float]:
        return sorted(self.round_trips)

    @property
    def p50_s(self) -> float | None:
        """The median round trip in seconds (``None`` when no reply was timed)."""
        return quantile(self._ordered, 0.5)

    @property
    def p95_s(self) -> float | None:
        """The 95th percentile of the round trips in seconds."""
        return quantile(self._ordered, 0.95)

    @property
    def p99_s(self) -> float | None:
        """The 99th percentile of the round trips in seconds."""
        return quantile(self._ordered, 0.99)

    @property
    def max_s(self) -> float | None:
        """The longest round trip in seconds."""
        return self._ordered[-1] if self._ordered else None

    def round_trip_figures(self) -> dict[str, float]:
        """``p50``, ``p95``, ``p99`` and ``max`` of the round trips in seconds (empty when no reply was timed)."""
        if not self.round_trips:
            return {}
        return {"p50": self.p50_s or 0.0, "p95": self.p95_s or 0.0, "p99": self.p99_s or 0.0, "max": self.max_s or 0.0}

    def to_dict(self) -> dict[str, Any]:
        """The report as a dict (one row of a DataFrame): the counts, the rate and the round-trip figures."""
        row = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "round_trips"}
        row["errors"] = list(self.errors)
        return {
            **row,
            "achieved_rate": self.achieved_rate,
            "round_trips": len(self.round_trips),
            "p50_s": self.p50_s,
            "p95_s": self.p95_s,
            "p99_s": self.p99_s,
            "max_s": self.max_s,
        }

    def assert_ok(
        self,
        *,
        p50_s: float | None = None,
        p95_s: float | None = None,
        p99_s: float | None = None,
        max_s: float | None = None,
        errors: int | None = None,
        min_replies: int | None = None,
        min_rate: float | None = None,
    ) -> BurstReport:
        """Check thresholds, as k6 does: round trips (seconds) and failed messages at most, replies and rate at least.

        ``report.assert_ok(p95_s=0.2, errors=0)`` raises :class:`~nbsocket.errors.ExpectationError` listing every
        threshold with its figure when one is broken (a percentile with no timed reply is broken); returns the
        report otherwise, so it chains.
        """
        __tracebackhide__ = True
        limits = {
            "p50_s": p50_s,
            "p95_s": p95_s,
            "p99_s": p99_s,
            "max_s": max_s,
            "errors": errors,
            "min_replies": min_replies,
            "min_rate": min_rate,
        }
        given = {name: limit for name, limit in limits.items() if limit is not None}
        if not given:
            raise InvalidOptionError(f"assert_ok needs at least one threshold: {', '.join(THRESHOLDS)}")
        for name, limit in given.items():
            if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 0:
                raise InvalidOptionError(f"{name} must be a number >= 0, not {limit!r}")
        figures = {
            "p50_s": self.p50_s,
            "p95_s": self.p95_s,
            "p99_s": self.p99_s,
            "max_s": self.max_s,
            "errors": self.failed,
            "min_replies": self.replies,
            "min_rate": self.achieved_rate,
        }
        lines, broken = [], 0
        for name, limit in given.items():
            figure = figures[name]
            at_least = name.startswith("min_")
            ok = figure is not None and figure == figure and (figure >= limit if at_least else figure <= limit)
            broken += not ok
            shown = "none (no reply was timed)" if figure is None else f"{figure:.6g}"
            relation = (">=" if ok else "<") if at_least else ("<=" if ok else ">")
            lines.append(f"  {name.removeprefix('min_')}: {shown} {relation} {limit:g}  {'ok' if ok else 'BROKEN'}")
        if broken:
            lines.insert(0, f"burst on {self.socket!r} broke {broken} of {len(given)} threshold(s):")
            lines.append(f"  ({self.summary()})")
            raise ExpectationError("\n".join(lines))
        return self

    def summary(self) -> str:
        """The figures in one line: counts, rate and round trips."""
        timed = "no round trip timed"
        if self.round_trips:
            figures = ", ".join(f"{name} {value * 1000:.3f} ms" for name, value in self.round_trip_figures().items())
            timed = f"{len(self.round_trips)} round trips: {figures}"
        errors = f"; first error: {self.errors[0]}" if self.errors else ""
        return (
            f"{self.delivered} of {self.messages} delivered, {self.failed} failed, in {self.seconds:.3f} s "
            f"({self.achieved_rate:,.0f}/s); {self.replies} replies; {timed}{errors}"
        )

    def __repr__(self) -> str:
        target = f"at {self.rate:g}/s" if self.rate else "as fast as possible"
        return f"<BurstReport {self.socket!r} {target}: {self.summary()}>"


class RoundTripsInOrder:
    """Times replies by pairing the n-th reply after a burst starts with its n-th written message (an echo's way).

    An observer (``on_batch``: no events built). ``wrote`` is told each write; a reply seen before the write notice
    of its message waits for it.
    """

    def __init__(self) -> None:
        self._written: collections.deque[int] = collections.deque()
        self._early: collections.deque[int] = collections.deque()
        self.samples: list[tuple[int, float]] = []

    def wrote(self, message: Any, ts_ns: int) -> None:
        if self._early:
            received = self._early.popleft()
            self.samples.append((received, max(0, received - ts_ns) / 1e9))
        else:
            self._written.append(ts_ns)

    def on_batch(self, ts_ns: int, first_seq: int | None, bodies: Batch, errors: list[str | None]) -> None:
        if first_seq is None:  # a protocol's housekeeping
            return
        for _ in range(len(bodies)):
            if self._written:
                self.samples.append((ts_ns, (ts_ns - self._written.popleft()) / 1e9))
            else:
                self._early.append(ts_ns)


class RoundTripsByField:
    """Times replies by a field they share with the message they answer (``match="id"``), in any order.

    An observer (``on_received``). A reply whose field matches no written message is not timed.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self._written: dict[Hashable, int] = {}
        self._lock = threading.Lock()
        self.samples: list[tuple[int, float]] = []

    def wrote(self, message: Any, ts_ns: int) -> None:
        value = _hashable(field(message, self.key))
        if value is not MISSING:
            with self._lock:
                self._written[value] = ts_ns

    def on_received(self, event: WsEvent) -> None:
        value = _hashable(field(event.data, self.key))
        with self._lock:
            written = self._written.pop(value, None) if value is not MISSING else None
        if written is not None:
            self.samples.append((event.timestamp_ns, max(0, event.timestamp_ns - written) / 1e9))


def _hashable(value: Any) -> Hashable:  # value: a field of a message
    try:
        hash(value)
    except TypeError:
        return repr(value)
    hashable: Hashable = value
    return hashable


class _Queued:
    """The queued copies of one payload (a burst may send the same object again): how many wait, and their messages."""

    __slots__ = ("count", "messages", "payload")

    def __init__(self, payload: str | bytes, message: Any) -> None:
        self.payload = payload
        self.count = 1
        self.messages: collections.deque[Any] = collections.deque([message])  # the user's messages, in order


class _Delivery:
    """Observer counting the writes of the payloads a burst queued (by identity), and telling ``round_trips`` of each."""

    def __init__(self, round_trips: RoundTripsInOrder | RoundTripsByField) -> None:
        self._pending: dict[int, _Queued] = {}
        self._lock = threading.Lock()
        self._round_trips = round_trips
        self.delivered = 0
        self.last_write = 0.0

    def track(self, message: Any, payload: str | bytes) -> None:
        with self._lock:
            slot = self._pending.get(id(payload))
            if slot is None:
                self._pending[id(payload)] = _Queued(payload, message)
            else:
                slot.count += 1
                slot.messages.append(message)

    def on_sent(self, item: Outgoing, ts_ns: int) -> None:
        with self._lock:
            slot = self._pending.get(id(item.payload))
            if slot is None or slot.payload is not item.payload:
                return
            slot.count -= 1
            message = slot.messages.popleft()
            if slot.count == 0:
                del self._pending[id(item.payload)]
            self.delivered += 1
            self.last_write = time.monotonic()
        self._round_trips.wrote(message, ts_ns)


def burst_plan(
    messages: Iterable[Any], rate: float | str | None, count: int | None
) -> tuple[Iterable[tuple[float, Any]], int | None]:
    """The schedule of a burst: ``(offset_seconds, message)`` pairs at ``rate`` per second, and how many (if known).

    ``rate`` is messages per second, or ``None``, ``0`` or ``"max"`` for as fast as the socket takes them.
    """
    if rate == "max":
        rate = None
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 0):
        raise InvalidOptionError(
            f"rate must be messages per second (> 0), or None, 0 or 'max' for as fast as possible; not {rate!r}"
        )
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
    """One burst in progress: its plan, counts and progress bar; ``steps()`` drives it, ``report()`` sums it up.

    ``match`` names a field that a reply shares with the message it answers (``"id"``): round trips are paired by
    it; without it the n-th reply answers the n-th message (an echo). The round trips also go to the socket's
    ``latency()`` (kind ``burst``).
    """

    def __init__(
        self,
        conn: SocketView,
        messages: Iterable[Any],
        rate: float | str | None,
        count: int | None,
        timeout: float,
        settle: float,
        progress: bool | None,
        match: str | None = None,
    ) -> None:
        if match is not None and not isinstance(match, str):
            raise InvalidOptionError(f"match must be the name of a field replies share with their messages, not {match!r}")
        self.conn = conn
        self.schedule, total = burst_plan(messages, rate, count)
        self.rate = rate if isinstance(rate, (int, float)) and rate else None  # "max" and 0: as fast as possible
        self.settle = settle
        self.deadline = time.monotonic() + timeout
        self.sending = Sending()
        self.round_trips = RoundTripsInOrder() if match is None else RoundTripsByField(match)
        self.delivery = _Delivery(self.round_trips)
        self.progress = ProgressBar(total, f"burst {self.conn.name}", progress)
        self.replies_before = self.conn.stats.messages_in

    def steps(self) -> Generator[float, None, None]:
        conn, delivery = self.conn, self.delivery
        conn.add_observer(delivery)
        conn.add_observer(self.round_trips)
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
            conn.remove_observer(self.round_trips)

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
            round_trips=[rtt for _, rtt in self.round_trips.samples],
        )
        self.conn.note_round_trips("burst", self.round_trips.samples)
        if sending.queued > delivery.delivered:
            report.errors.append(f"{sending.queued - delivery.delivered} queued message(s) were not written before the timeout")
        self.progress.finish(report.messages, f"{report.delivered} delivered, {report.failed} failed", ok=report.failed == 0)
        return report
