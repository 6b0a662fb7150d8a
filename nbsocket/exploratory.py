"""Exploratory testing on a connection: request/expect, transcripts, latency history (mixed into Connection).

* ``conn.request(message, match=...)`` sends and waits for the first reply
  that matches; it returns a :class:`Reply` (``.event``, ``.rtt`` in seconds;
  it also unpacks as ``event, rtt = ...``). ``conn.expect(match)`` waits
  without sending. Each has an ``_async`` twin for ``await`` in a cell.
* ``conn.transcript()`` is every frame sent and received plus connection
  events, recorded from the moment the socket connects (always on, bounded:
  see :meth:`ExploratoryMixin.keep_transcript`).
* ``conn.latency()`` is the history of ping and request round-trip times;
  ``conn.latency_stats()`` summarises them (p50/p95/p99).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import os
import time
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from .errors import InvalidOptionError, SocketClosedError, WaitTimeoutError
from .events import Request, WsEvent
from .match import Match, Matcher, compile_match
from .redact import scrub
from .transcript import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ENTRIES,
    RECEIVED,
    TranscriptRecorder,
    frame_from_entries,
    write_jsonl,
)

if TYPE_CHECKING:
    from .outbox import Outgoing

MAX_LATENCY_SAMPLES = 10_000
"""Ping and request round-trip times kept per socket (each)."""
SHOWN_ON_TIMEOUT = 5
"""How many recent messages a timeout error shows."""
STATS_COLUMNS = ["count", "mean_ms", "min_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"]


class Reply(NamedTuple):
    """What :meth:`~ExploratoryMixin.request` returns: the matching reply and the round-trip time.

    ``rtt`` is in seconds, from the moment the request frame was written to the
    socket to the receipt of the reply. Unpacks as ``event, rtt = reply``.
    """

    event: WsEvent
    rtt: float

    @property
    def data(self) -> Any:
        """The reply's parsed data (``event.data``)."""
        return self.event.data

    @property
    def seq(self) -> int:
        """The reply's sequence number on its socket."""
        return self.event.seq

    def __repr__(self) -> str:
        return f"<Reply seq={self.event.seq} rtt={self.rtt * 1000:.3f} ms data={_short(self.event.data)}>"


class ReplyWaiter:
    """A connection observer that resolves ``future`` with the first received event that matches.

    For a request, ``payload`` is the frame sent, so that the time it was
    written can be noted; the socket closing for good fails the wait at once.
    """

    def __init__(self, conn: Any, matcher: Matcher, payload: str | bytes | None = None) -> None:
        self.conn = conn
        self.matcher = matcher
        self.payload = payload
        self.queued_ns = time.time_ns()
        self.sent_ns: int | None = None
        self.others = 0
        self.seen: collections.deque[WsEvent] = collections.deque(maxlen=SHOWN_ON_TIMEOUT)
        self.future: concurrent.futures.Future[WsEvent] = concurrent.futures.Future()

    def on_received(self, event: WsEvent) -> None:
        if self.future.done():
            return
        if self.matcher(event):
            self.resolve(event)
        else:
            self.others += 1
            self.seen.append(event)

    def on_sent(self, item: Outgoing, ts_ns: int) -> None:
        if self.sent_ns is None and self.payload is not None and item.payload is self.payload:
            self.sent_ns = ts_ns

    def on_lifecycle(self, kind: str, info: dict[str, Any]) -> None:
        if kind == "state" and info.get("state") in ("closed", "failed") and not self.future.done():
            conn = self.conn
            self._settle(lambda f: f.set_exception(SocketClosedError(
                f"socket {conn.name!r} is {info['state']} while waiting for {self.matcher.description}"
                f"{_close_detail(conn)}; call nbs.reset({conn.name!r}) to reconnect"
            )))

    def resolve(self, event: WsEvent) -> None:
        self._settle(lambda f: f.set_result(event))

    def _settle(self, settle: Any) -> None:
        self.conn.remove_observer(self)
        try:
            settle(self.future)
        except concurrent.futures.InvalidStateError:  # cancelled by the waiting side meanwhile
            pass

    def close(self) -> None:
        """Stop waiting (idempotent)."""
        self.conn.remove_observer(self)
        self.future.cancel()

    def reply(self, event: WsEvent) -> Reply:
        """The :class:`Reply` for ``event``; the round trip counts from the write (or, if the reply beat the write notice, the queueing)."""
        start = self.sent_ns if self.sent_ns is not None and self.sent_ns <= event._ts_ns else self.queued_ns
        return Reply(event, max(0, event._ts_ns - start) / 1e9)

    def timeout_message(self, timeout: float | None, sent: bool) -> str:
        conn = self.conn
        what = f"no reply matching {self.matcher.description}" if sent else f"no message matching {self.matcher.description}"
        parts = [f"{what} arrived on {conn.name!r} within {timeout}s (socket {conn.state}"]
        if sent and self.sent_ns is None:
            parts.append("; the request was never written: it is still queued")
        parts.append(f"; {self.others} other message(s) arrived meanwhile")
        if self.matcher.errors:
            parts.append(f"; the match raised {self.matcher.error} on {self.matcher.errors} of them")
        parts.append(")")
        if self.seen:
            parts.append(". Last messages received:\n" + "\n".join(_event_line(e) for e in self.seen))
        else:
            recent = conn._recent_received(SHOWN_ON_TIMEOUT)
            parts.append(
                ". Last messages received before:\n" + "\n".join(_event_line(e) for e in recent)
                if recent else ". Nothing was received on this socket yet."
            )
        return scrub("".join(parts))


class ExploratoryMixin:
    """Methods of :class:`~nbsocket.connection.Connection` for testing servers by hand."""

    _transcript: TranscriptRecorder | None

    def _init_exploratory(self) -> None:
        self._transcript = TranscriptRecorder(self)  # type: ignore[arg-type]
        self.add_observer(self._transcript)  # type: ignore[attr-defined]
        self._ping_samples: collections.deque[tuple[int, float]] = collections.deque(maxlen=MAX_LATENCY_SAMPLES)
        self._request_samples: collections.deque[tuple[int, float]] = collections.deque(maxlen=MAX_LATENCY_SAMPLES)
        self._latency_ws: Any = None
        self._open_seq = 0  # the socket's seq when the current connection opened
        self._consumed_seq = 0  # the last message an expect or request returned
        self._latency_last = 0.0

    # --- request / expect ---------------------------------------------------------------

    def request(self, message: Any, match: Match = None, timeout: float | None = 5.0) -> Reply:
        """Send ``message`` and wait for the first reply that matches; returns a :class:`Reply`.

        ``match`` is a predicate on the event, a dict of field values that must
        be equal (dotted names for nested fields: ``{"result.id": 7}``; a
        callable value tests the field), a field name whose value must equal
        the request's (``match="id"``), or ``None`` (the next message). The
        matcher is registered before the message is queued, so a fast reply is
        never missed. It returns as soon as the reply is received (the
        socket's handlers may still be running on it), so a sync handler may
        itself call ``request``. Blocks at most ``timeout`` seconds, then raises
        :class:`WaitTimeoutError` showing the last messages received, or
        :class:`SocketClosedError` at once if the socket closes for good;
        Ctrl-C stops waiting. In a cell, ``await conn.request_async(...)``
        does not block the kernel.
        """
        self._refuse_loop_thread("request")
        waiter = self._start_request(message, match)
        try:
            event = waiter.future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise WaitTimeoutError(waiter.timeout_message(timeout, sent=True)) from None
        finally:
            waiter.close()
        return self._note_reply(waiter, event)

    async def request_async(self, message: Any, match: Match = None, timeout: float | None = 5.0) -> Reply:
        """Like :meth:`request`, for ``await`` (in a cell, or in an async handler)."""
        waiter = self._start_request(message, match)
        try:
            event = await asyncio.wait_for(asyncio.wrap_future(waiter.future), timeout)
        except asyncio.TimeoutError:
            raise WaitTimeoutError(waiter.timeout_message(timeout, sent=True)) from None
        finally:
            waiter.close()
        return self._note_reply(waiter, event)

    def expect(self, match: Match = None, timeout: float | None = 5.0, since: Any = None) -> WsEvent:
        """Wait for a message that matches (see :meth:`request` for ``match``) without sending; returns its event.

        By default, the messages that count are those received since the
        current connection opened that no earlier ``expect`` or ``request``
        returned (nor any message before the one it returned), then whatever
        arrives next. So ``connect(..., on_open=send_init)`` followed by
        ``conn.expect({"type": "connection_ack"})`` finds the ack even if it
        arrived before ``expect`` was called. ``since`` (a sequence number, an
        event or a :class:`Reply`) sets the starting point instead: messages
        received after it count (looked up in the transcript), e.g.
        ``conn.expect({"type": "done"}, since=reply)`` after a request.
        """
        self._refuse_loop_thread("expect")
        waiter = ReplyWaiter(self, compile_match(match))
        since_seq = _seq_of(since)
        try:
            if self._loop_thread.running:  # type: ignore[attr-defined]
                self._loop_thread.run(self._arm_async(waiter, since_seq), 10.0)  # type: ignore[attr-defined]
            else:
                self._arm(waiter, since_seq)
            event = waiter.future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise WaitTimeoutError(waiter.timeout_message(timeout, sent=False)) from None
        finally:
            waiter.close()
        return self._consumed(event)

    async def expect_async(self, match: Match = None, timeout: float | None = 5.0, since: Any = None) -> WsEvent:
        """Like :meth:`expect`, for ``await``."""
        waiter = ReplyWaiter(self, compile_match(match))
        since_seq = _seq_of(since)
        try:
            if self._loop_thread.in_loop_thread() or not self._loop_thread.running:  # type: ignore[attr-defined]
                self._arm(waiter, since_seq)
            else:
                await asyncio.wrap_future(self._loop_thread.submit(self._arm_async(waiter, since_seq)))  # type: ignore[attr-defined]
            return self._consumed(await asyncio.wait_for(asyncio.wrap_future(waiter.future), timeout))
        except asyncio.TimeoutError:
            raise WaitTimeoutError(waiter.timeout_message(timeout, sent=False)) from None
        finally:
            waiter.close()

    def _start_request(self, message: Any, match: Match) -> ReplyWaiter:
        matcher = compile_match(match, message)
        payload = self.encode(message)  # type: ignore[attr-defined]
        waiter = ReplyWaiter(self, matcher, payload)
        self.add_observer(waiter)  # type: ignore[attr-defined]
        try:
            self.send(payload)  # type: ignore[attr-defined]
        except BaseException:
            waiter.close()
            raise
        return waiter

    def _consumed(self, event: WsEvent) -> WsEvent:
        """Note that ``event`` was returned by expect/request: the next default ``expect`` starts after it."""
        self._consumed_seq = max(self._consumed_seq, event.seq)
        return event

    def _default_since(self) -> int:
        """Where a default ``expect`` starts: the current connection's opening, or the last message consumed after it."""
        return max(self._open_seq, self._consumed_seq)

    def _note_reply(self, waiter: ReplyWaiter, event: WsEvent) -> Reply:
        self._consumed(event)
        reply = waiter.reply(event)
        self._request_samples.append((event._ts_ns, reply.rtt))
        return reply

    def _arm(self, waiter: ReplyWaiter, since_seq: int | None) -> None:
        """Resolve ``waiter`` from the transcript (messages after ``since_seq``, by default :meth:`_default_since`) or start it listening."""
        recorder = self._transcript
        if since_seq is None:
            since_seq = self._default_since()
            if recorder is None or since_seq >= self._seq:  # type: ignore[attr-defined]
                self.add_observer(waiter)  # type: ignore[attr-defined]
                return
        if recorder is None:
            raise InvalidOptionError(
                "expect(since=...) looks back in the transcript, which is off for this socket; "
                "turn it on with conn.keep_transcript()"
            )
        for entry in recorder.entries():
            if entry[1] == RECEIVED and entry[3] > since_seq:
                event = self._event_from_entry(entry)
                if waiter.matcher(event):
                    waiter.resolve(event)
                    return
        self.add_observer(waiter)  # type: ignore[attr-defined]

    async def _arm_async(self, waiter: ReplyWaiter, since_seq: int | None) -> None:
        self._arm(waiter, since_seq)  # on the loop thread: no message can slip in between

    def _event_from_entry(self, entry: tuple[Any, ...]) -> WsEvent:
        ts, _direction, kind, seq, body, error = entry[:6]
        data = None
        if error is None:
            try:
                data = self._codec.decode(body)  # type: ignore[attr-defined]
            except Exception as exc:
                error = str(exc)
        request = Request(body, kind == "binary", self.content_type, self.url)  # type: ignore[attr-defined]
        return WsEvent(self.name, data, request, seq, ts, self.lockable, error, self)  # type: ignore[attr-defined]

    def _recent_received(self, n: int) -> list[WsEvent]:
        recorder = self._transcript
        if recorder is None:
            return []
        received = [e for e in recorder.entries()[-8 * n:] if e[1] == RECEIVED]
        return [self._event_from_entry(e) for e in received[-n:]]

    def _refuse_loop_thread(self, verb: str) -> None:
        self._loop_thread.refuse_here(f"conn.{verb}()", f"`await conn.{verb}_async(...)`")  # type: ignore[attr-defined]

    # --- transcript ---------------------------------------------------------------------------

    def transcript(self, parse: bool = True) -> pd.DataFrame:
        """Every frame sent and received and every connection event, in order, as a DataFrame.

        Columns: ``timestamp`` (UTC), ``direction`` (``sent``, ``received``,
        ``event``), ``seq`` (the socket's received-message number, or the
        sent-message number), ``kind`` (``text``/``binary``, or ``open``,
        ``reconnect``, ``close``, ``reset``, ``error``, ``failed``), ``size``
        (bytes), ``body`` (as sent or received), ``error``, ``code`` and
        ``reason`` (of a close), ``info``; then the parsed message fields
        (``parse=False`` leaves them out). ``attrs["dropped"]`` counts entries
        the bound pushed out.
        """
        recorder = self._transcript
        if recorder is None:
            return frame_from_entries([], self._transcript_meta(None))
        return frame_from_entries(recorder.entries(), recorder.meta(), parse=parse)

    def save_transcript(self, path: str | os.PathLike[str]) -> int:
        """Write the transcript to ``path`` as JSON Lines (replay it with :func:`nbsocket.replay`); returns the entries written."""
        recorder = self._transcript
        entries = recorder.entries() if recorder is not None else []
        return write_jsonl(entries, path, self._transcript_meta(recorder))

    def keep_transcript(self, max_entries: int | None = DEFAULT_MAX_ENTRIES, max_bytes: int | None = DEFAULT_MAX_BYTES) -> None:
        """Set how much of the transcript is kept: ``max_entries`` entries holding at most ``max_bytes`` of bodies.

        The transcript is on by default (10,000 entries, 32 MiB). ``None``
        lifts a bound; ``max_entries=0`` turns recording off (and forgets it).
        """
        for name, value in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise InvalidOptionError(f"{name} must be a non-negative integer or None, not {value!r}")
        recorder = self._transcript
        if max_entries == 0:
            if recorder is not None:
                self.remove_observer(recorder)  # type: ignore[attr-defined]
                self._transcript = None
            return
        if recorder is None:
            recorder = self._transcript = TranscriptRecorder(self, max_entries, max_bytes)  # type: ignore[arg-type]
            self.add_observer(recorder)  # type: ignore[attr-defined]
            return
        recorder.set_bounds(max_entries, max_bytes)
        if self._loop_thread.running and not self._loop_thread.in_loop_thread():  # type: ignore[attr-defined]
            self._loop_thread.call_soon(recorder.trim)  # type: ignore[attr-defined]
        else:
            recorder.trim()

    def clear_transcript(self) -> None:
        """Forget the transcript so far (recording goes on)."""
        if self._transcript is not None:
            self._transcript.clear()

    def _transcript_meta(self, recorder: TranscriptRecorder | None) -> dict[str, Any]:
        if recorder is not None:
            return recorder.meta()
        return {"socket": self.name, "url": self.url, "content_type": self.content_type, "dropped": 0}  # type: ignore[attr-defined]

    # --- latency --------------------------------------------------------------------------------

    def ping(self, timeout: float = 5.0) -> float:
        """Send a WebSocket ping now and return the round-trip time in seconds (also kept in :meth:`latency`)."""
        self._refuse_loop_thread("ping")
        try:
            return self._loop_thread.run(self._ping(), timeout)  # type: ignore[attr-defined]
        except concurrent.futures.TimeoutError:
            raise WaitTimeoutError(f"no pong from {self.name!r} within {timeout}s (socket {self.state})") from None  # type: ignore[attr-defined]

    async def ping_async(self, timeout: float = 5.0) -> float:
        """Like :meth:`ping`, for ``await``."""
        loop_thread = self._loop_thread  # type: ignore[attr-defined]
        pinging = self._ping() if loop_thread.in_loop_thread() else asyncio.wrap_future(loop_thread.submit(self._ping()))
        try:
            return await asyncio.wait_for(pinging, timeout)
        except asyncio.TimeoutError:
            raise WaitTimeoutError(f"no pong from {self.name!r} within {timeout}s (socket {self.state})") from None  # type: ignore[attr-defined]

    async def _ping(self) -> float:
        ws = self._ws  # type: ignore[attr-defined]
        if ws is None or not self.test():  # type: ignore[attr-defined]
            raise SocketClosedError(f"cannot ping {self.name!r}: the socket is {self.state}")  # type: ignore[attr-defined]
        pong = await ws.ping()
        rtt = float(await pong)
        if not (ws is self._latency_ws and rtt == self._latency_last):  # the ticker may have seen it first
            self._latency_ws, self._latency_last = ws, rtt
            self._ping_samples.append((time.time_ns(), rtt))
        return rtt

    def _sample_latency(self) -> None:
        """Note a new keepalive round trip, if there was one since the last call (loop thread, from the manager's ticker)."""
        ws = self._ws  # type: ignore[attr-defined]
        if ws is None:
            return
        latency = getattr(ws, "latency", 0.0)
        if latency and (ws is not self._latency_ws or latency != self._latency_last):
            self._latency_ws, self._latency_last = ws, latency
            self._ping_samples.append((time.time_ns(), latency))

    def latency(self) -> pd.DataFrame:
        """Round-trip times over time: ``timestamp``, ``kind`` (``ping`` or ``request``), ``rtt_ms``.

        ``ping`` rows are the keepalive pings (every ``ping_interval``) and
        :meth:`ping` calls; ``request`` rows are :meth:`request` round trips.
        """
        rows = [(ts, "ping", rtt * 1000) for ts, rtt in list(self._ping_samples)]
        rows += [(ts, "request", rtt * 1000) for ts, rtt in list(self._request_samples)]
        rows.sort(key=lambda row: row[0])
        frame = pd.DataFrame(rows, columns=["timestamp", "kind", "rtt_ms"])
        frame["timestamp"] = pd.to_datetime(frame["timestamp"].astype("int64"), unit="ns", utc=True)
        frame["rtt_ms"] = frame["rtt_ms"].astype("float64")
        return frame

    def latency_stats(self) -> pd.DataFrame:
        """Round-trip statistics in milliseconds, one row each for ``ping`` and ``request``: count, mean, min, p50, p95, p99, max."""
        rows = {}
        for kind, samples in (("ping", self._ping_samples), ("request", self._request_samples)):
            values = pd.Series([rtt * 1000 for _ts, rtt in list(samples)], dtype="float64")
            quantiles = values.quantile([0.5, 0.95, 0.99]) if len(values) else pd.Series([float("nan")] * 3)
            rows[kind] = [len(values), values.mean(), values.min(), *quantiles.tolist(), values.max()]
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=STATS_COLUMNS)
        frame["count"] = frame["count"].astype("int64")
        frame.index.name = "kind"
        return frame

    def request_stats(self) -> pd.Series:
        """Round-trip statistics of :meth:`request` calls in milliseconds (``count``, ``p50_ms``, ``p95_ms``, ``p99_ms`` ...)."""
        return self.latency_stats().loc["request"]

    # --- load -------------------------------------------------------------------------------------

    def burst(self, messages: Any, rate: float | None = None, **kwargs: Any) -> Any:
        """Send ``messages`` at ``rate`` per second; see :func:`nbsocket.burst`."""
        from .replay import burst

        return burst(self, messages, rate=rate, **kwargs)


def _seq_of(since: Any) -> int | None:
    if since is None:
        return None
    if isinstance(since, Reply):
        return since.event.seq
    if isinstance(since, WsEvent):
        return since.seq
    if isinstance(since, int) and not isinstance(since, bool):
        return since
    raise InvalidOptionError(f"since must be a sequence number, an event or a Reply, not {type(since).__name__}")


def _close_detail(conn: Any) -> str:
    code = conn.close_code
    if code is None:
        return ""
    return f" (closed with {code}{' ' + repr(conn.close_reason) if conn.close_reason else ''})"


def _event_line(event: WsEvent) -> str:
    body = event.request.body
    shown = repr(body[:64]) + ("..." if len(body) > 64 else "") if isinstance(body, bytes) else _clip(body, 200)
    return f"  #{event.seq} {event.timestamp:%H:%M:%S.%f} {shown}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: Any) -> str:
    return _clip(repr(value), 80)
