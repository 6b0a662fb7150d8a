"""Request and expect: send and wait for the matching reply, or wait for a matching message.

``conn.request(message, match=...)`` sends and waits for the first reply
that matches; it returns a :class:`Reply` (``.event``, ``.rtt`` in seconds;
it also unpacks as ``event, rtt = ...``). ``conn.expect(match)`` waits
without sending; ``within=`` bounds when the message may arrive and
``schema=`` checks it; ``conn.expect_none(match, during=S)`` fails when a
matching message arrives. Each has an ``_async`` twin for ``await`` in a cell.
A failure raises :class:`~nbsocket.errors.ExpectationError` (or its timeout
kind), whose text :mod:`nbsocket.core.expectations` writes.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import datetime
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ...core.codecs import Codec
from ...core.events import Request, WsEvent
from ...core.expectations import (
    Expectation,
    Schema,
    closest_messages,
    compile_schema,
    late_text,
    missing_text,
    schema_text,
    unwanted_text,
)
from ...core.match import Match, Matcher, compile_match
from ...core.state import CLOSED_FOR_GOOD
from ...core.transcript_entries import RECEIVED, Entry
from ...errors import ExpectationError, ExpectationTimeoutError, InvalidOptionError, SocketClosedError
from ..dispatch.lockable import Lockable
from ..loop import LoopThread
from ..outbound.outbox import Outgoing
from ..parts import SocketView
from .latency import Latency
from .observers import LifecycleInfo
from .transcript import Transcript

__all__ = ["Reply", "ReplyWaiter", "Requests", "SchemaSource", "Since"]

CANDIDATES = 50
"""How many of the messages that arrived instead a failed wait weighs to find the closest."""
RECENT_PROTOCOL_EVENTS = 1000
"""Events a protocol socket keeps for a default ``expect`` to look back in."""


class Reply(NamedTuple):
    """What :meth:`Connection.request <nbsocket.Connection.request>` returns: the matching reply and the round-trip time.

    ``rtt`` is in seconds, from the moment the request was written to the
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


Since = int | WsEvent | Reply | datetime.datetime | None
"""Where an ``expect`` starts looking: after this message (its ``seq``, the event or a :class:`Reply`), or after this
moment (a ``datetime``: what a REST call made the server push); ``None``: the default."""
SchemaSource = dict[str, Any] | type
"""What ``expect(schema=...)`` takes: a JSON Schema (a dict) or a pydantic model class."""


class ReplyWaiter:
    """A connection observer that resolves ``future`` with the first received event that matches.

    For a request, ``payload`` is the message sent, so that the time it was
    written can be noted; the socket closing for good fails the wait at once.
    """

    def __init__(
        self,
        conn: SocketView,
        matcher: Matcher,
        payload: str | bytes | None = None,
        recent: Callable[[int], list[WsEvent]] = lambda n: [],
    ) -> None:
        self.conn = conn
        self._recent = recent
        self.matcher = matcher
        self.payload = payload
        self.queued_ns = time.time_ns()
        self.sent_ns: int | None = None
        self.others = 0
        self.seen: collections.deque[WsEvent] = collections.deque(maxlen=CANDIDATES)
        self.future: concurrent.futures.Future[WsEvent] = concurrent.futures.Future()

    def on_received(self, event: WsEvent) -> None:
        if self.future.done():
            return
        if self.matcher(event):
            self.resolve(event)
        else:
            self.passed_over(event)

    def passed_over(self, event: WsEvent) -> None:
        """Note a message that did not match (shown, if it comes close, when the wait fails)."""
        self.others += 1
        self.seen.append(event)

    def on_sent(self, item: Outgoing, ts_ns: int) -> None:
        if self.sent_ns is None and self.payload is not None and item.payload is self.payload:
            self.sent_ns = ts_ns

    def on_lifecycle(self, kind: str, info: LifecycleInfo) -> None:
        if kind == "state" and info.get("state") in CLOSED_FOR_GOOD and not self.future.done():
            conn = self.conn
            self._settle(
                lambda f: f.set_exception(
                    SocketClosedError(
                        f"socket {conn.name!r} is {info['state']} while waiting for {self.matcher.description}"
                        f"{_close_detail(conn)}; call nbs.reset({conn.name!r}) to reconnect"
                    )
                )
            )

    def resolve(self, event: WsEvent) -> None:
        self._settle(lambda f: f.set_result(event))

    def _settle(self, settle: Callable[[concurrent.futures.Future[WsEvent]], object]) -> None:
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
        """The :class:`Reply` for ``event``; the round trip counts from the write (or, if the reply beat the write
        notice, the queueing)."""
        start = self.sent_ns if self.sent_ns is not None and self.sent_ns <= event.timestamp_ns else self.queued_ns
        return Reply(event, max(0, event.timestamp_ns - start) / 1e9)

    def failure_text(self, expectation: Expectation, waited: float, sent: bool) -> str:
        """Why nothing matched: the expectation, how long it waited, and the closest of the messages that arrived."""
        notes = []
        if sent and self.sent_ns is None:
            notes.append("the request was never written: it is still queued")
        if self.matcher.errors:
            notes.append(f"the match raised {self.matcher.error} on {self.matcher.errors} of the messages")
        if expectation.within is not None and expectation.reference_ns:
            called_s = (time.time_ns() - expectation.reference_ns) / 1e9 - waited
            if called_s > expectation.within:
                notes.append(
                    f"the window had closed when expect was called, {called_s:.3f} s after {expectation.reference} "
                    "(pass since= to count from another moment)"
                )
        candidates = list(self.seen) or self._recent(CANDIDATES)
        closest = closest_messages(self.matcher, candidates)
        return missing_text(expectation, waited, f"{self.conn.state}{_close_detail(self.conn)}", self.others, closest, notes)


class Requests:
    """A connection's request/expect part.

    ``conn`` is the connection (encode, send, observers, state); the
    transcript is where ``expect(since=...)`` looks back; the latency part
    keeps each request's round trip.
    """

    def __init__(
        self,
        conn: SocketView,
        codec: Codec,
        lockable: Lockable,
        transcript: Transcript,
        latency: Latency,
        loop_thread: LoopThread,
        open_seq: Callable[[], int],
        last_send_ns: Callable[[], int] = lambda: 0,
    ) -> None:
        self._conn = conn
        self._codec = codec
        self._lockable = lockable
        self._transcript = transcript
        self._latency = latency
        self._loop_thread = loop_thread
        self._open_seq = open_seq  # the socket's seq when the current connection opened
        self._last_send_ns = last_send_ns  # when a message was last queued: what within= counts from
        self._consumed_seq = 0  # the last message an expect or request returned
        self._recent: collections.deque[WsEvent] | None = None
        if getattr(conn.options, "protocol", None) is not None:
            # protocol messages cannot be rebuilt from raw transcript bodies: a default expect looks back in these
            self._recent = collections.deque(maxlen=RECENT_PROTOCOL_EVENTS)
            conn.add_observer(self)

    def on_received(self, event: WsEvent) -> None:
        """Keep a protocol socket's recent events (observer hook, loop thread)."""
        assert self._recent is not None
        self._recent.append(event)

    def request(self, message: Any, match: Match = None, timeout: float | None = 5.0) -> Reply:
        """See :meth:`Connection.request <nbsocket.Connection.request>`."""
        __tracebackhide__ = True  # pytest shows the caller's line, not these frames
        self._loop_thread.refuse_blocking("request")
        started = time.monotonic()
        waiter = self._start_request(message, match)
        try:
            event = waiter.future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise self._missing(waiter, self._expectation(waiter.matcher, timeout, reply=True), started, sent=True) from None
        finally:
            waiter.close()
        return self._note_reply(waiter, event)

    async def request_async(self, message: Any, match: Match = None, timeout: float | None = 5.0) -> Reply:
        """Like :meth:`request`, for ``await``."""
        __tracebackhide__ = True
        started = time.monotonic()
        waiter = self._start_request(message, match)
        try:
            event = await asyncio.wait_for(asyncio.wrap_future(waiter.future), timeout)
        except asyncio.TimeoutError:
            raise self._missing(waiter, self._expectation(waiter.matcher, timeout, reply=True), started, sent=True) from None
        finally:
            waiter.close()
        return self._note_reply(waiter, event)

    def expect(
        self,
        match: Match = None,
        timeout: float | None = 5.0,
        since: Since = None,
        *,
        within: float | None = None,
        schema: SchemaSource | None = None,
    ) -> WsEvent:
        """See :meth:`Connection.expect <nbsocket.Connection.expect>`."""
        __tracebackhide__ = True
        self._loop_thread.refuse_blocking("expect")
        waiter, since_seq, expectation, wait = self._prepare_expect(match, timeout, since, within, schema)
        started = time.monotonic()
        try:
            if self._loop_thread.running:
                self._loop_thread.run(self._arm_async(waiter, since_seq), 10.0)
            else:
                self._arm(waiter, since_seq)
            event = waiter.future.result(wait)
        except concurrent.futures.TimeoutError:
            raise self._missing(waiter, expectation, started) from None
        finally:
            waiter.close()
        return self._judge(expectation, self._consumed(event), started)

    async def expect_async(
        self,
        match: Match = None,
        timeout: float | None = 5.0,
        since: Since = None,
        *,
        within: float | None = None,
        schema: SchemaSource | None = None,
    ) -> WsEvent:
        """Like :meth:`expect`, for ``await``."""
        __tracebackhide__ = True
        waiter, since_seq, expectation, wait = self._prepare_expect(match, timeout, since, within, schema)
        started = time.monotonic()
        try:
            await self._arm_from_anywhere(waiter, since_seq)
            event = await asyncio.wait_for(asyncio.wrap_future(waiter.future), wait)
        except asyncio.TimeoutError:
            raise self._missing(waiter, expectation, started) from None
        finally:
            waiter.close()
        return self._judge(expectation, self._consumed(event), started)

    def expect_none(self, match: Match = None, during: float = 1.0, since: Since = None) -> None:
        """See :meth:`Connection.expect_none <nbsocket.Connection.expect_none>`."""
        __tracebackhide__ = True
        self._loop_thread.refuse_blocking("expect_none")
        started, start_ns = time.monotonic(), time.time_ns()
        waiter, since_seq, expectation = self._prepare_expect_none(match, during, since)
        try:
            if self._loop_thread.running:
                self._loop_thread.run(self._arm_async(waiter, since_seq), 10.0)
            else:
                self._arm(waiter, since_seq)
            event = waiter.future.result(during)
        except concurrent.futures.TimeoutError:
            return
        finally:
            waiter.close()
        raise ExpectationError(unwanted_text(expectation, event, start_ns, time.monotonic() - started))

    async def expect_none_async(self, match: Match = None, during: float = 1.0, since: Since = None) -> None:
        """Like :meth:`expect_none`, for ``await``."""
        __tracebackhide__ = True
        started, start_ns = time.monotonic(), time.time_ns()
        waiter, since_seq, expectation = self._prepare_expect_none(match, during, since)
        try:
            await self._arm_from_anywhere(waiter, since_seq)
            event = await asyncio.wait_for(asyncio.wrap_future(waiter.future), during)
        except asyncio.TimeoutError:
            return
        finally:
            waiter.close()
        raise ExpectationError(unwanted_text(expectation, event, start_ns, time.monotonic() - started))

    async def _arm_from_anywhere(self, waiter: ReplyWaiter, since_seq: int | None) -> None:
        if self._loop_thread.in_loop_thread() or not self._loop_thread.running:
            self._arm(waiter, since_seq)
        else:
            await asyncio.wrap_future(self._loop_thread.submit(self._arm_async(waiter, since_seq)))

    # --- what an expectation is, and its verdict ---------------------------------------------------

    def _prepare_expect(
        self, match: Match, timeout: float | None, since: Since, within: float | None, schema: SchemaSource | None
    ) -> tuple[ReplyWaiter, int | None, Expectation, float | None]:
        """The waiter, where it starts looking, the expectation, and how long to wait (checked before any waiting)."""
        if within is not None:
            _check_seconds("within", within)
        checked = compile_schema(schema)
        since_seq = self._since_seq(since)
        waiter = self._waiter(match)
        expectation = self._expectation(waiter.matcher, timeout, within=within, since=since, schema=checked)
        wait = timeout
        if within is not None:
            wait = max(0.0, (expectation.reference_ns + within * 1e9 - time.time_ns()) / 1e9)
        return waiter, since_seq, expectation, wait

    def _prepare_expect_none(self, match: Match, during: float, since: Since) -> tuple[ReplyWaiter, int | None, Expectation]:
        _check_seconds("during", during)
        since_seq = self._since_seq(since)
        waiter = self._waiter(match)
        return waiter, since_seq, Expectation(self._conn.name, waiter.matcher, during=during)

    def _expectation(
        self,
        matcher: Matcher,
        timeout: float | None,
        *,
        within: float | None = None,
        since: Since = None,
        schema: Schema | None = None,
        reply: bool = False,
    ) -> Expectation:
        reference, reference_ns = "", 0
        if within is not None:
            reference, reference_ns = self._reference(since)
        return Expectation(self._conn.name, matcher, within, reference, reference_ns, schema, timeout=timeout, reply=reply)

    def _reference(self, since: Since) -> tuple[str, int]:
        """What ``within`` counts from, and when it was: the ``since`` message, else the last send, else the opening."""
        if isinstance(since, Reply):
            since = since.event
        if isinstance(since, WsEvent):
            return f"message #{since.seq}", since.timestamp_ns
        if isinstance(since, datetime.datetime):
            return "the time given as since", _ns(since)
        if since is not None:
            seq = _seq_of(since)
            for entry in reversed(self._transcript.entries()[0]):
                if entry.direction == RECEIVED and entry.seq == seq:
                    return f"message #{seq}", entry.ts_ns
        last_send = self._last_send_ns()
        if last_send and since is None:
            return "the last send", last_send
        opened = self._conn.stats.opened_at
        return "the connection's opening", int(opened.timestamp() * 1e9) if opened is not None else time.time_ns()

    def _since_seq(self, since: Since) -> int | None:
        """The ``seq`` after which ``since`` starts looking: a message's own, or the last one received before a moment."""
        if not isinstance(since, datetime.datetime):
            return _seq_of(since)
        moment = _ns(since)
        if self._recent is not None:
            before = [event.seq for event in list(self._recent) if event.timestamp_ns < moment]
        else:
            before = [e.seq for e in self._transcript.entries()[0] if e.direction == RECEIVED and e.seq and e.ts_ns < moment]
        return max(before, default=0)

    def _missing(
        self, waiter: ReplyWaiter, expectation: Expectation, started: float, sent: bool = False
    ) -> ExpectationTimeoutError:
        return ExpectationTimeoutError(waiter.failure_text(expectation, time.monotonic() - started, sent))

    def _judge(self, expectation: Expectation, event: WsEvent, started: float) -> WsEvent:
        """``event`` matched: it still fails the expectation if it came later than ``within`` or breaks the schema."""
        __tracebackhide__ = True
        if expectation.within is not None and event.timestamp_ns > expectation.reference_ns + expectation.within * 1e9:
            raise ExpectationTimeoutError(late_text(expectation, event, time.monotonic() - started))
        if expectation.schema is not None:
            violations = expectation.schema.violations(event.data)
            if violations:
                raise ExpectationError(schema_text(expectation, event, violations, time.monotonic() - started))
        return event

    def _waiter(self, match: Match, message: Any = None, payload: str | bytes | None = None) -> ReplyWaiter:
        return ReplyWaiter(self._conn, compile_match(match, message), payload, self.recent_received)

    def _start_request(self, message: Any, match: Match) -> ReplyWaiter:
        conn = self._conn
        payload = conn.encode(message)
        waiter = self._waiter(match, message, payload)
        conn.add_observer(waiter)
        try:
            conn.send(payload)
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
        return max(self._open_seq(), self._consumed_seq)

    def _note_reply(self, waiter: ReplyWaiter, event: WsEvent) -> Reply:
        self._consumed(event)
        reply = waiter.reply(event)
        self._latency.note_request(event.timestamp_ns, reply.rtt)
        return reply

    def _arm(self, waiter: ReplyWaiter, since_seq: int | None) -> None:
        """Resolve ``waiter`` from the transcript (messages after ``since_seq``, by default :meth:`_default_since`),
        or start it listening."""
        recorder = self._transcript.recorder
        if since_seq is None:
            since_seq = self._default_since()
            if self._recent is None and (recorder is None or since_seq >= self._conn.received):
                self._conn.add_observer(waiter)
                return
        if self._recent is not None:  # a protocol socket's events cannot be rebuilt from the transcript
            for event in list(self._recent):
                if event.seq > since_seq:
                    if waiter.matcher(event):
                        waiter.resolve(event)
                        return
                    waiter.passed_over(event)
            self._conn.add_observer(waiter)
            return
        if recorder is None:
            raise InvalidOptionError(
                "expect(since=...) looks back in the transcript, which is off for this socket; "
                "turn it on with conn.keep_transcript()"
            )
        for entry in self._transcript.entries()[0]:
            if entry.direction == RECEIVED and entry.seq is not None and entry.seq > since_seq:
                event = self._event_from_entry(entry)
                if waiter.matcher(event):
                    waiter.resolve(event)
                    return
                waiter.passed_over(event)
        self._conn.add_observer(waiter)

    async def _arm_async(self, waiter: ReplyWaiter, since_seq: int | None) -> None:
        self._arm(waiter, since_seq)  # on the loop thread: no message can slip in between

    def _event_from_entry(self, entry: Entry) -> WsEvent:
        conn = self._conn
        body, seq = entry.body, entry.seq
        assert body is not None and seq is not None, entry  # a received message's entry has both
        data, error = None, entry.error
        if error is None:
            try:
                data = self._codec.decode(body)
            except Exception as exc:
                error = str(exc)
        request = Request(body, entry.kind == "binary", conn.content_type, conn.url)
        return WsEvent(conn.name, data, request, seq, entry.ts_ns, self._lockable, error, conn)

    def recent_received(self, n: int) -> list[WsEvent]:
        """The last ``n`` messages received: a protocol socket's own events (with their topics), a plain socket's
        rebuilt from the transcript."""
        if self._recent is not None:
            return list(self._recent)[-n:]
        received = [e for e in self._transcript.entries()[0][-8 * n :] if e.direction == RECEIVED and e.seq is not None]
        return [self._event_from_entry(e) for e in received[-n:]]


def _seq_of(since: object) -> int | None:
    if since is None:
        return None
    if isinstance(since, Reply):
        return since.event.seq
    if isinstance(since, WsEvent):
        return since.seq
    if isinstance(since, int) and not isinstance(since, bool):
        return since
    raise InvalidOptionError(f"since must be a sequence number, an event, a Reply or a datetime, not {type(since).__name__}")


def _ns(moment: datetime.datetime) -> int:
    """A datetime as UTC nanoseconds (a naive one is taken as local time, as ``datetime.timestamp`` does)."""
    return int(moment.timestamp() * 1_000_000_000)


def _check_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidOptionError(f"{name} must be a positive number of seconds, not {value!r}")


def _close_detail(conn: SocketView) -> str:
    code = conn.close_code
    if code is None:
        return ""
    return f" (closed with {code}{' ' + repr(conn.close_reason) if conn.close_reason else ''})"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: object) -> str:
    return _clip(repr(value), 80)
