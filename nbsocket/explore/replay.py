"""Sending many messages on purpose: replaying a saved transcript, and bursts at a controlled rate.

Both pace their sends on the caller's side (the cell blocks, with a progress
bar, and Ctrl-C stops it) with the runtime's pacing engine
(:mod:`nbsocket.runtime.outbound.pacing`): :func:`replay` and :func:`burst` drive it
with ``time.sleep``, their ``_async`` twins with ``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Generator, Iterable
from typing import Any

import pandas as pd

from ..core.state import CLOSED_FOR_GOOD
from ..core.transcript_entries import RECEIVED, SENT, Entry, frame_from_entries
from ..errors import InvalidOptionError
from ..runtime import (
    POLL_SECONDS,
    Burst,
    BurstReport,
    Connection,
    Manager,
    ProgressBar,
    Sending,
    TranscriptRecorder,
    paced,
    registry,
    run_async,
    run_sync,
    write_transcript_file,
)
from .transcript_files import TranscriptSource, as_entries

__all__ = ["BurstReport", "burst", "burst_async", "replay", "replay_async", "replay_schedule"]

_temp_names = itertools.count(1)


def _resolve(target: str | Connection, manager: Manager) -> Connection:
    if isinstance(target, Connection):
        return target
    return manager.get(target)


# --- burst ---------------------------------------------------------------------------------


def burst(
    name: str | Connection,
    messages: Iterable[Any],
    rate: float | str | None = None,
    *,
    count: int | None = None,
    timeout: float = 60.0,
    settle: float = 0.2,
    progress: bool | None = None,
    match: str | None = None,
    manager: Manager | None = None,
) -> BurstReport:
    """Send ``messages`` (a list or a generator) on socket ``name`` at ``rate`` messages per second.

    Returns a :class:`BurstReport`.

    ``rate=None`` (or 0, or ``"max"``) sends as fast as the socket takes them; ``count``
    stops after that many (for endless generators). The report counts the
    messages queued, delivered (written to the socket), failed, and the
    replies received until ``settle`` seconds after the last write (while
    fewer replies than deliveries came back, until replies stop arriving for
    ``settle`` seconds, so an echo's replies are all counted). Stops at
    ``timeout`` seconds; Ctrl-C stops it too. A progress bar shows in a
    notebook (``progress=False`` hides it).

    The report times each reply's round trip (``report.p50_s``, ``p95_s``,
    ``p99_s``, ``max_s``, the list in ``report.round_trips``; also in the
    socket's ``latency()`` as kind ``burst``): the n-th reply answers the n-th
    message (an echo), or, with ``match="id"``, the message whose ``id`` it
    carries. ``report.assert_ok(p95_s=0.2, errors=0)`` makes it a test.
    """
    manager = manager or registry()
    manager.loop_thread.refuse_blocking("burst", "nbs")
    run = Burst(_resolve(name, manager), messages, rate, count, timeout, settle, progress, match)
    run_sync(run.steps())
    return run.report()


async def burst_async(
    name: str | Connection,
    messages: Iterable[Any],
    rate: float | str | None = None,
    *,
    count: int | None = None,
    timeout: float = 60.0,
    settle: float = 0.2,
    progress: bool | None = None,
    match: str | None = None,
    manager: Manager | None = None,
) -> BurstReport:
    """Like :func:`burst`, for ``await`` (the kernel stays free while it sends)."""
    run = Burst(_resolve(name, manager or registry()), messages, rate, count, timeout, settle, progress, match)
    await run_async(run.steps())
    return run.report()


# --- replay --------------------------------------------------------------------------------


def replay_schedule(entries: list[Entry], speed: float) -> list[tuple[float, str | bytes]]:
    """``(offset_seconds, body)`` of each sent entry: original gaps divided by ``speed``; all 0 for ``speed=0``."""
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or speed < 0:
        raise InvalidOptionError(
            f"speed must be >= 0 (1.0: original timing, 2.0: twice as fast, 0: as fast as possible), not {speed!r}"
        )
    sent = [(e.ts_ns, e.body) for e in entries if e.direction == SENT and e.body is not None]
    if not sent:
        return []
    first = sent[0][0]
    return [((ts_ns - first) / 1e9 / speed if speed else 0.0, body) for ts_ns, body in sent]


def _expected_replies(entries: list[Entry]) -> int:
    first_sent = next((i for i, e in enumerate(entries) if e.direction == SENT), None)
    if first_sent is None:
        return 0
    return sum(1 for e in entries[first_sent:] if e.direction == RECEIVED)


class _Replay:
    def __init__(
        self,
        transcript: TranscriptSource,
        target: str | Connection,
        speed: float,
        settle: float,
        timeout: float | None,
        progress: bool | None,
        name: str | None,
        keep: bool,
        manager: Manager,
        connect_options: dict[str, Any],
    ) -> None:
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
        self.seed: list[Entry] = []
        self.sending = Sending()

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
        if self.opened:
            self.seed = self.conn.transcript_entries()[0]  # the open event, recorded before the replay could attach
        conn = self.conn
        self.recorder = TranscriptRecorder(
            conn.stats, lambda: {"socket": conn.name, "url": conn.url, "content_type": conn.content_type}, None, None
        )

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
        yield from paced(conn, self.schedule, self.sending, self.deadline, self.progress)
        while recorder.sent < self.sending.queued and time.monotonic() < self.deadline and conn.state not in CLOSED_FOR_GOOD:
            yield POLL_SECONDS
        seen, quiet_since = -1, time.monotonic()
        while recorder.received < self.expected and time.monotonic() < self.deadline and conn.state not in CLOSED_FOR_GOOD:
            if recorder.received != seen:
                seen, quiet_since = recorder.received, time.monotonic()
            elif time.monotonic() - quiet_since >= self.settle:
                break
            yield POLL_SECONDS

    def close(self) -> None:
        """Remove a socket the replay opened (its close lands in the new transcript) and stop recording (blocking)."""
        conn: Connection | None = getattr(self, "conn", None)
        if conn is None:
            return
        try:
            registered = self.manager.find(conn.name)
            if self.opened and not self.keep and registered is conn:
                self.manager.remove(conn.name)
        finally:
            conn.remove_observer(self.recorder)

    def result(self, save: str | os.PathLike[str] | None = None) -> pd.DataFrame:
        """The new run's transcript (also written to ``save`` as JSON Lines if given)."""
        recorder, sending = self.recorder, self.sending
        meta = {
            **recorder.meta(),
            "replay_of": self.source_meta.get("path") or self.source_meta.get("socket"),
            "speed": self.speed,
            "sent": recorder.sent,
            "expected_replies": self.expected,
            "replies": recorder.received,
            "failed": sending.failed,
            "stopped": sending.stopped,
        }
        ok = sending.failed == 0 and recorder.received >= self.expected
        self.progress.finish(sending.attempted, f"{recorder.sent} sent, {recorder.received}/{self.expected} replies", ok=ok)
        result = frame_from_entries(self.seed + recorder.entries(), meta)
        if save is not None:
            write_transcript_file(save, self.seed + recorder.entries(), meta)
        return result


def replay(
    transcript: TranscriptSource,
    target: str | Connection,
    speed: float = 1.0,
    *,
    settle: float = 1.0,
    timeout: float | None = None,
    progress: bool | None = None,
    name: str | None = None,
    keep: bool = False,
    save: str | os.PathLike[str] | None = None,
    manager: Manager | None = None,
    **connect_options: Any,
) -> pd.DataFrame:
    """Send the sent side of a saved transcript again and record what comes back; returns the new run's transcript.

    ``transcript`` is a path to a ``.jsonl`` saved by ``conn.save_transcript``,
    a transcript DataFrame, or a Connection. ``target`` is a socket name, a
    Connection, or a ``ws://``/``wss://`` URL (a temporary socket is opened
    with the transcript's content type and ``connect_options``, and removed
    afterwards unless ``keep=True``). ``speed=1.0`` keeps the original gaps
    between messages, ``2.0`` halves them, ``0`` sends as fast as possible.
    After the last send it waits until as many replies arrived as in the
    original, or none came for ``settle`` seconds, or ``timeout`` (default: the
    run's duration plus 30 s). Compare two runs with :func:`nbsocket.core.compare`;
    ``save=path`` writes the new run as JSON Lines too.
    """
    manager = manager or registry()
    manager.loop_thread.refuse_blocking("replay", "nbs")
    run = _Replay(transcript, target, speed, settle, timeout, progress, name, keep, manager, connect_options)
    run.connect()
    try:
        run_sync(run.steps())
    finally:
        run.close()
    return run.result(save)


async def replay_async(
    transcript: TranscriptSource,
    target: str | Connection,
    speed: float = 1.0,
    *,
    settle: float = 1.0,
    timeout: float | None = None,
    progress: bool | None = None,
    name: str | None = None,
    keep: bool = False,
    save: str | os.PathLike[str] | None = None,
    manager: Manager | None = None,
    **connect_options: Any,
) -> pd.DataFrame:
    """Like :func:`replay`, for ``await`` (to a URL, the temporary socket is opened and closed on a worker thread)."""
    run = _Replay(transcript, target, speed, settle, timeout, progress, name, keep, manager or registry(), connect_options)
    loop = asyncio.get_running_loop()
    opens_socket = isinstance(target, str) and "://" in target
    if opens_socket:  # connecting and removing block: keep them off this loop
        await loop.run_in_executor(None, run.connect)
    else:
        run.connect()
    try:
        await run_async(run.steps())
    finally:
        if opens_socket:
            await loop.run_in_executor(None, run.close)
        else:
            run.close()
    return run.result(save)
