"""Request and expect: send and wait for the matching reply, or wait for a matching message.

``conn.request(message, match=...)`` sends and waits for the first reply
that matches; it returns a :class:`Reply` (``.event``, ``.rtt`` in seconds;
it also unpacks as ``event, rtt = ...``). ``conn.expect(match)`` waits
without sending. Each has an ``_async`` twin for ``await`` in a cell.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ...core.codecs import Codec
from ...core.events import Request, WsEvent
from ...core.match import Match, Matcher, compile_match
from ...core.redact import scrub
from ...core.state import CLOSED_FOR_GOOD
from ...core.transcript_entries import RECEIVED, Entry
from ...errors import InvalidOptionError, SocketClosedError, WaitTimeoutError
from ..loop import LoopThread
from ..outbound.outbox import Outgoing
from ..parts import SocketView
from .latency import Latency
from .transcript import Transcript

__all__ = ["Reply", "ReplyWaiter", "Requests"]

SHOWN_ON_TIMEOUT = 5
"""How many recent messages a timeout error shows."""
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
        """The :class:`Reply` for ``event``; the round trip counts from the write (or, if the reply beat the write
        notice, the queueing)."""
        start = self.sent_ns if self.sent_ns is not None and self.sent_ns <= event.timestamp_ns else self.queued_ns
        return Reply(event, max(0, event.timestamp_ns - start) / 1e9)

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
            recent = self._recent(SHOWN_ON_TIMEOUT)
            parts.append(
                ". Last messages received before:\n" + "\n".join(_event_line(e) for e in recent)
                if recent
                else ". Nothing was received on this socket yet."
            )
        return scrub("".join(parts))


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
        lockable: Any,
        transcript: Transcript,
        latency: Latency,
        loop_thread: LoopThread,
        open_seq: Callable[[], int],
    ) -> None:
        self._conn = conn
        self._codec = codec
        self._lockable = lockable
        self._transcript = transcript
        self._latency = latency
        self._loop_thread = loop_thread
        self._open_seq = open_seq  # the socket's seq when the current connection opened
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
        self._loop_thread.refuse_blocking("request")
        waiter = self._start_request(message, match)
        try:
            event = waiter.future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise WaitTimeoutError(waiter.timeout_message(timeout, sent=True)) from None
        finally:
            waiter.close()
        return self._note_reply(waiter, event)

    async def request_async(self, message: Any, match: Match = None, timeout: float | None = 5.0) -> Reply:
        """Like :meth:`request`, for ``await``."""
        waiter = self._start_request(message, match)
        try:
            event = await asyncio.wait_for(asyncio.wrap_future(waiter.future), timeout)
        except asyncio.TimeoutError:
            raise WaitTimeoutError(waiter.timeout_message(timeout, sent=True)) from None
        finally:
            waiter.close()
        return self._note_reply(waiter, event)

    def expect(self, match: Match = None, timeout: float | None = 5.0, since: Any = None) -> WsEvent:
        """See :meth:`Connection.expect <nbsocket.Connection.expect>`."""
        self._loop_thread.refuse_blocking("expect")
        waiter = self._waiter(match)
        since_seq = _seq_of(since)
        try:
            if self._loop_thread.running:
                self._loop_thread.run(self._arm_async(waiter, since_seq), 10.0)
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
        waiter = self._waiter(match)
        since_seq = _seq_of(since)
        try:
            if self._loop_thread.in_loop_thread() or not self._loop_thread.running:
                self._arm(waiter, since_seq)
            else:
                await asyncio.wrap_future(self._loop_thread.submit(self._arm_async(waiter, since_seq)))
            return self._consumed(await asyncio.wait_for(asyncio.wrap_future(waiter.future), timeout))
        except asyncio.TimeoutError:
            raise WaitTimeoutError(waiter.timeout_message(timeout, sent=False)) from None
        finally:
            waiter.close()

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
            if self._recent is not None:
                for event in list(self._recent):
                    if event.seq > since_seq and waiter.matcher(event):
                        waiter.resolve(event)
                        return
                self._conn.add_observer(waiter)
                return
            if recorder is None or since_seq >= self._conn.received:
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
        self._conn.add_observer(waiter)

    async def _arm_async(self, waiter: ReplyWaiter, since_seq: int | None) -> None:
        self._arm(waiter, since_seq)  # on the loop thread: no message can slip in between

    def _event_from_entry(self, entry: Entry) -> WsEvent:
        conn = self._conn
        data, error = None, entry.error
        if error is None:
            try:
                data = self._codec.decode(entry.body)
            except Exception as exc:
                error = str(exc)
        request = Request(entry.body, entry.kind == "binary", conn.content_type, conn.url)
        return WsEvent(conn.name, data, request, entry.seq, entry.ts_ns, self._lockable, error, conn)

    def recent_received(self, n: int) -> list[WsEvent]:
        """The last ``n`` messages received, as events rebuilt from the transcript."""
        received = [e for e in self._transcript.entries()[0][-8 * n :] if e.direction == RECEIVED]
        return [self._event_from_entry(e) for e in received[-n:]]


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
