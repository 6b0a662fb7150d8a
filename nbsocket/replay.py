"""Sending many messages on purpose: replaying a saved transcript, and bursts at a controlled rate.

Both pace their sends on the caller's side (the cell blocks, with a progress
bar, and Ctrl-C stops it) and hand each message to the socket's outbox; when
the outbox is full they wait for it instead of failing. The pacing logic is a
generator of pauses, driven by ``time.sleep`` in :func:`replay` and
:func:`burst`, and by ``asyncio.sleep`` in their ``_async`` twins.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import threading
import time
from collections.abc import Generator, Iterable, Sized
from typing import Any

import pandas as pd

from .connection import Connection
from .errors import InvalidOptionError, OutboxFullError, SendError
from .manager import Manager, default_manager
from .progress import ProgressBar
from .transcript import RECEIVED, SENT, TranscriptRecorder, as_entries, frame_from_entries, write_jsonl

POLL_SECONDS = 0.01
"""How often a waiting replay or burst looks at its counters."""
_temp_names = itertools.count(1)


# --- pacing, shared by the sync and async drivers ----------------------------------------

@dataclasses.dataclass
class _Sending:
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


def _paced(conn: Connection, schedule: Iterable[tuple[float, Any]], sending: _Sending, deadline: float,
           progress: ProgressBar, before_send: Any = None) -> Generator[float, None, None]:
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


def _run_sync(steps: Generator[float, None, None]) -> None:
    try:
        for pause in steps:
            time.sleep(pause)
    finally:
        steps.close()  # on Ctrl-C too: detach observers now


async def _run_async(steps: Generator[float, None, None]) -> None:
    try:
        for pause in steps:
            await asyncio.sleep(pause)
    finally:
        steps.close()


def _refuse_loop_thread(manager: Manager, verb: str) -> None:
    manager.loop_thread.refuse_here(f"nbs.{verb}()", f"`await nbs.{verb}_async(...)`")


def _resolve(target: Any, manager: Manager) -> Connection:
    if isinstance(target, Connection):
        return target
    return manager.get(target)


# --- burst ---------------------------------------------------------------------------------

@dataclasses.dataclass
class BurstReport:
    """What :func:`burst` did: messages attempted, queued, delivered (written to the socket), failed, and replies seen."""

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


def _burst_plan(messages: Any, rate: float | None, count: int | None) -> tuple[Iterable[tuple[float, Any]], int | None]:
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 0):
        raise InvalidOptionError(f"rate must be messages per second (> 0), or None/0 for as fast as possible; not {rate!r}")
    if count is not None and (not isinstance(count, int) or count < 0):
        raise InvalidOptionError(f"count must be a non-negative integer, not {count!r}")
    if isinstance(messages, (str, bytes, dict)):
        raise InvalidOptionError("burst sends a list or generator of messages; wrap a single message in a list (or use itertools.repeat)")
    total = len(messages) if isinstance(messages, Sized) else None
    if count is not None:
        total = count if total is None else min(total, count)
    items: Iterable[Any] = itertools.islice(messages, count) if count is not None else messages
    step = 1.0 / rate if rate else 0.0
    return ((i * step, message) for i, message in enumerate(items)), total


class _Burst:
    def __init__(self, target: Any, messages: Any, rate: float | None, count: int | None, timeout: float,
                 settle: float, progress: bool | None, manager: Manager) -> None:
        self.conn = _resolve(target, manager)
        self.schedule, total = _burst_plan(messages, rate, count)
        self.rate = rate or None
        self.settle = settle
        self.deadline = time.monotonic() + timeout
        self.sending = _Sending()
        self.delivery = _Delivery()
        self.progress = ProgressBar(total, f"burst {self.conn.name}", progress)
        self.replies_before = self.conn.stats.messages_in

    def steps(self) -> Generator[float, None, None]:
        conn, delivery = self.conn, self.delivery
        conn.add_observer(delivery)
        try:
            yield from _paced(conn, self.schedule, self.sending, self.deadline, self.progress, delivery.track)
            while delivery.delivered < self.sending.queued and time.monotonic() < self.deadline and conn.state not in ("closed", "failed"):
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
            socket=self.conn.name, messages=sending.attempted, queued=sending.queued, delivered=delivery.delivered,
            failed=sending.failed + (sending.queued - delivery.delivered), replies=self.conn.stats.messages_in - self.replies_before,
            seconds=max(0.0, last - sending.started), rate=self.rate, errors=list(sending.errors),
        )
        if sending.queued > delivery.delivered:
            report.errors.append(f"{sending.queued - delivery.delivered} queued message(s) were not written before the timeout")
        self.progress.finish(report.messages, f"{report.delivered} delivered, {report.failed} failed", ok=report.failed == 0)
        return report


def burst(name: str | Connection, messages: Iterable[Any], rate: float | None = None, *, count: int | None = None,
          timeout: float = 60.0, settle: float = 0.2, progress: bool | None = None, manager: Manager | None = None) -> BurstReport:
    """Send ``messages`` (a list or a generator) on socket ``name`` at ``rate`` messages per second; returns a :class:`BurstReport`.

    ``rate=None`` (or 0) sends as fast as the socket takes them; ``count``
    stops after that many (for endless generators). The report counts the
    messages queued, delivered (written to the socket), failed, and the
    replies received until ``settle`` seconds after the last write (while
    fewer replies than deliveries came back, until replies stop arriving for
    ``settle`` seconds, so an echo's replies are all counted). Stops at
    ``timeout`` seconds; Ctrl-C stops it too. A progress bar shows in a
    notebook (``progress=False`` hides it).
    """
    manager = manager or default_manager
    _refuse_loop_thread(manager, "burst")
    run = _Burst(name, messages, rate, count, timeout, settle, progress, manager)
    _run_sync(run.steps())
    return run.report()


async def burst_async(name: str | Connection, messages: Iterable[Any], rate: float | None = None, *, count: int | None = None,
                      timeout: float = 60.0, settle: float = 0.2, progress: bool | None = None, manager: Manager | None = None) -> BurstReport:
    """Like :func:`burst`, for ``await`` (the kernel stays free while it sends)."""
    run = _Burst(name, messages, rate, count, timeout, settle, progress, manager or default_manager)
    await _run_async(run.steps())
    return run.report()


# --- replay --------------------------------------------------------------------------------

def replay_schedule(entries: list[tuple[Any, ...]], speed: float) -> list[tuple[float, str | bytes]]:
    """``(offset_seconds, body)`` of each sent entry: original gaps divided by ``speed``; all 0 for ``speed=0``."""
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or speed < 0:
        raise InvalidOptionError(f"speed must be >= 0 (1.0: original timing, 2.0: twice as fast, 0: as fast as possible), not {speed!r}")
    sent = [e for e in entries if e[1] == SENT and e[4] is not None]
    if not sent:
        return []
    first = sent[0][0]
    return [((e[0] - first) / 1e9 / speed if speed else 0.0, e[4]) for e in sent]


def _expected_replies(entries: list[tuple[Any, ...]]) -> int:
    first_sent = next((i for i, e in enumerate(entries) if e[1] == SENT), None)
    if first_sent is None:
        return 0
    return sum(1 for e in entries[first_sent:] if e[1] == RECEIVED)


class _Replay:
    def __init__(self, transcript: Any, target: Any, speed: float, settle: float, timeout: float | None,
                 progress: bool | None, name: str | None, keep: bool, manager: Manager, connect_options: dict[str, Any]) -> None:
        entries, self.source_meta = as_entries(transcript)
        self.schedule = replay_schedule(entries, speed)
        if not self.schedule:
            raise InvalidOptionError("the transcript has no sent messages to replay")
        self.speed = speed
        self.expected = _expected_replies(entries)
        self.settle = settle
        self.timeout = timeout if timeout is not None else self.schedule[-1][0] + 30.0
        self.deadline = float("inf")
        self.show_progress = progress
        self.progress = ProgressBar(None, "", enabled=False)
        self.manager = manager
        self.target, self.name, self.keep, self.connect_options = target, name, keep, connect_options
        if not (isinstance(target, str) and "://" in target) and connect_options:
            raise InvalidOptionError(f"connect options ({', '.join(connect_options)}) only apply when replaying to a URL")
        self.opened = False
        self.seed: list[tuple[Any, ...]] = []
        self.sending = _Sending()

    def connect(self) -> None:
        """Resolve the target, opening a socket for a URL (blocking)."""
        manager, target = self.manager, self.target
        if isinstance(target, str) and "://" in target:
            name = self.name or self._temp_name()
            self.opened = name not in manager
            options = dict(self.connect_options)
            options.setdefault("content_type", self.source_meta.get("content_type") or "application/json")
            try:
                self.conn = manager.connect(name, target, **options)
            except InvalidOptionError:
                if "content_type" in self.connect_options:
                    raise
                options["content_type"] = "application/json"  # the original's codec is not registered here
                self.conn = manager.connect(name, target, **options)
        else:
            self.conn = _resolve(target, manager)
        own = self.conn._transcript
        if self.opened and own is not None:
            self.seed = own.entries()  # the open event, recorded before the replay could attach
        self.recorder = TranscriptRecorder(self.conn, None, None)

    def _temp_name(self) -> str:
        while True:
            name = f"replay-{next(_temp_names)}"
            if name not in self.manager:
                return name

    def steps(self) -> Generator[float, None, None]:
        conn, recorder = self.conn, self.recorder
        self.progress = ProgressBar(len(self.schedule), f"replay {conn.name}", self.show_progress)
        self.deadline = time.monotonic() + self.timeout
        conn.add_observer(recorder)
        yield from _paced(conn, self.schedule, self.sending, self.deadline, self.progress)
        while recorder.sent < self.sending.queued and time.monotonic() < self.deadline and conn.state not in ("closed", "failed"):
            yield POLL_SECONDS
        seen, quiet_since = -1, time.monotonic()
        while recorder.received < self.expected and time.monotonic() < self.deadline and conn.state not in ("closed", "failed"):
            if recorder.received != seen:
                seen, quiet_since = recorder.received, time.monotonic()
            elif time.monotonic() - quiet_since >= self.settle:
                break
            yield POLL_SECONDS

    def close(self) -> None:
        """Remove a socket the replay opened (its close lands in the new transcript) and stop recording (blocking)."""
        conn = getattr(self, "conn", None)
        if conn is None:
            return
        try:
            if self.opened and not self.keep and self.manager._connections.get(conn.name) is conn:
                self.manager.remove(conn.name)
        finally:
            conn.remove_observer(self.recorder)

    def result(self, save: str | os.PathLike[str] | None = None) -> pd.DataFrame:
        """The new run's transcript (also written to ``save`` as JSON Lines if given)."""
        recorder, sending = self.recorder, self.sending
        meta = {
            **recorder.meta(), "replay_of": self.source_meta.get("path") or self.source_meta.get("socket"),
            "speed": self.speed, "sent": recorder.sent, "expected_replies": self.expected, "replies": recorder.received,
            "failed": sending.failed, "stopped": sending.stopped,
        }
        ok = sending.failed == 0 and recorder.received >= self.expected
        self.progress.finish(sending.attempted, f"{recorder.sent} sent, {recorder.received}/{self.expected} replies", ok=ok)
        result = frame_from_entries(self.seed + recorder.entries(), meta)
        if save is not None:
            write_jsonl(result, save)
        return result


def replay(transcript: Any, target: str | Connection, speed: float = 1.0, *, settle: float = 1.0, timeout: float | None = None,
           progress: bool | None = None, name: str | None = None, keep: bool = False, save: str | os.PathLike[str] | None = None,
           manager: Manager | None = None, **connect_options: Any) -> pd.DataFrame:
    """Send the sent side of a saved transcript again and record what comes back; returns the new run's transcript.

    ``transcript`` is a path to a ``.jsonl`` saved by ``conn.save_transcript``,
    a transcript DataFrame, or a Connection. ``target`` is a socket name, a
    Connection, or a ``ws://``/``wss://`` URL (a temporary socket is opened
    with the transcript's content type and ``connect_options``, and removed
    afterwards unless ``keep=True``). ``speed=1.0`` keeps the original gaps
    between messages, ``2.0`` halves them, ``0`` sends as fast as possible.
    After the last send it waits until as many replies arrived as in the
    original, or none came for ``settle`` seconds, or ``timeout`` (default: the
    run's duration plus 30 s). Compare two runs with :func:`nbsocket.compare`;
    ``save=path`` writes the new run as JSON Lines too.
    """
    manager = manager or default_manager
    _refuse_loop_thread(manager, "replay")
    run = _Replay(transcript, target, speed, settle, timeout, progress, name, keep, manager, connect_options)
    run.connect()
    try:
        _run_sync(run.steps())
    finally:
        run.close()
    return run.result(save)


async def replay_async(transcript: Any, target: str | Connection, speed: float = 1.0, *, settle: float = 1.0,
                       timeout: float | None = None, progress: bool | None = None, name: str | None = None, keep: bool = False,
                       save: str | os.PathLike[str] | None = None, manager: Manager | None = None, **connect_options: Any) -> pd.DataFrame:
    """Like :func:`replay`, for ``await`` (to a URL, the temporary socket is opened and closed on a worker thread)."""
    run = _Replay(transcript, target, speed, settle, timeout, progress, name, keep, manager or default_manager, connect_options)
    loop = asyncio.get_running_loop()
    opens_socket = isinstance(target, str) and "://" in target
    if opens_socket:  # connecting and removing block: keep them off this loop
        await loop.run_in_executor(None, run.connect)
    else:
        run.connect()
    try:
        await _run_async(run.steps())
    finally:
        if opens_socket:
            await loop.run_in_executor(None, run.close)
        else:
            run.close()
    return run.result(save)
