"""Recording every received message to NATS JetStream (``record="nats://HOST:PORT/feeds.{name}"``).

A :class:`JetStreamRecorder` is an observer of its socket: for each read's batch it gets the bodies
as received (``on_batch``) and hands them, as one item, to the :class:`JetStreamPublisher` of that
server, which the process's sockets share (one NATS connection and one thread per server, whatever
the number of sockets). The loop thread only appends to a queue: it never waits for the broker.

The publisher's thread runs its own asyncio loop with nats-py. It publishes what is queued in
batches, each message with a reply subject, and awaits the acknowledgements of a batch together
(one round trip per batch, never one per message). A message not acknowledged in time (the broker
slow, down, or restarting) is published again with the same ``Nats-Msg-Id``, so JetStream keeps it
once: publishing is at least once, stored exactly once within the stream's duplicate window. Each
message carries ``Nbs-Socket``, ``Nbs-Seq``, ``Nbs-Timestamp`` (receipt, RFC 3339 UTC with ns),
``Nbs-Content-Type``, ``Nbs-Run`` and ``Nats-Msg-Id = <socket>:<run>:<seq>`` (``<run>`` new at every
process start) and the body as received (text as UTF-8).

The queue is bounded (``?max_pending=N`` messages per server, 100,000 by default). While the broker
is away the sink buffers up to that bound and reports its lag (the age of the oldest message not yet
acknowledged); past it, new messages are dropped, counted per socket, logged (at once, then once
every 10 s with the count) and recorded in ``conn.errors``. When no stream covers the subject, one
is created (``NBS_<first token>``, subjects ``<subject up to {name}>>``, file storage).

A recorder is released when its socket closes (after its last flush). A publisher none of whose
recorders is left, with nothing to publish, closes its NATS connection and ends its thread after
:data:`UNUSED_CLOSE_SECONDS` (a broker that went away is not retried for nobody); a recorder that
receives again (a socket reset or reopened) queues to the server's current publisher, started anew
if need be.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ....core.streams import NatsTarget, stream_headers
from ....errors import InvalidOptionError
from .runs import process_run, run_for

if TYPE_CHECKING:  # nats-py is imported when a recording first publishes
    from nats.aio.client import Client
    from nats.aio.msg import Msg

__all__ = [
    "ACK_TIMEOUT",
    "BATCH_MESSAGES",
    "UNUSED_CLOSE_SECONDS",
    "JetStreamPublisher",
    "JetStreamRecorder",
    "publisher_for",
    "stop_publishers",
]

log = logging.getLogger("nbsocket")

BATCH_MESSAGES = 1024
"""The most messages published before their acknowledgements are awaited together."""
ACK_TIMEOUT = 5.0
"""Seconds to wait for a batch's acknowledgements before publishing the rest of it again."""
DROP_REPORT_SECONDS = 10.0
UNUSED_CLOSE_SECONDS = 5.0
"""Seconds a publisher with no recorder left and nothing to publish keeps its NATS connection before it closes."""


class _InFlight:
    """The batch waiting for its acknowledgements: reply subject -> position, each position's outcome."""

    def __init__(self, size: int) -> None:
        self.tokens: dict[str, int] = {}
        self.outcomes: list[bool] = [False] * size
        self.done = asyncio.Event()


@dataclass
class _Pending:
    """One message waiting for its acknowledgement."""

    recorder: JetStreamRecorder
    seq: int
    ts_ns: int
    body: str | bytes


class JetStreamRecorder:
    """A socket's JetStream sink: an observer that queues each batch for its server's publisher (see the module doc)."""

    kind = "nats"

    def __init__(self, target: NatsTarget, socket: str, content_type: str, on_error: Callable[[str], Any] | None = None) -> None:
        self.target = target
        self.socket = socket
        self.content_type = content_type
        self.subject = target.subject_for(socket)
        self.path = target.shown.replace("{name}", socket)
        self.run = run_for(socket)
        self.on_error = on_error
        self.received = 0
        self.published = 0
        self.dropped = 0
        self.lost_at_close = 0
        self.pending = 0
        self.batches: collections.deque[list[int]] = collections.deque()  # [receipt ns, messages not yet acknowledged]
        self.publisher = publisher_for(target)
        self.publisher.add(self)

    # --- the observer hook (loop thread) ----------------------------------------------------

    def on_batch(self, ts_ns: int, first_seq: int | None, bodies: list[str | bytes], errors: list[str | None]) -> None:
        """Queue one read's messages (protocol housekeeping, which has no seq, is not recorded)."""
        if first_seq is None or not bodies:
            return
        if not self.publisher.offer(self, ts_ns, first_seq, bodies):  # that publisher closed: its server's current one
            self.publisher = publisher_for(self.target)
            self.publisher.offer(self, ts_ns, first_seq, bodies)

    # --- the recorder's face -----------------------------------------------------------------

    @property
    def lag_s(self) -> float:
        """Seconds since the oldest message not yet acknowledged by JetStream was received (0 when none is pending)."""
        batches = self.batches
        try:
            oldest = batches[0][0]
        except IndexError:
            return 0.0
        return max(0.0, (time.time_ns() - oldest) / 1e9)

    def sink_stats(self) -> dict[str, Any]:
        """What this sink did so far: messages received, published (acknowledged), pending, dropped, and its lag."""
        return {
            "kind": self.kind,
            "target": self.path,
            "received": self.received,
            "written": self.published,
            "pending": self.pending,
            "dropped": self.dropped + self.lost_at_close,
            "lag_s": self.lag_s,
            "connected": self.publisher.connected,
        }

    def flush(self, timeout: float | None = 60.0) -> bool:
        """Wait until every message queued so far is acknowledged by JetStream; False if ``timeout`` passed first."""
        return self.publisher.wait_acknowledged(self, timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush at disconnect (up to ``timeout`` seconds); what is still unacknowledged then is counted as lost and said.
        The publisher is released; recording goes on if the socket receives again (after a reset)."""
        try:
            self._flush_or_abandon(timeout)
        finally:
            self.publisher.release(self)

    def _flush_or_abandon(self, timeout: float | None) -> None:
        if self.flush(timeout):
            return
        lost = self.publisher.abandon(self)
        if lost:
            self.lost_at_close += lost
            message = (
                f"recording to {self.path}: {lost} message(s) of socket {self.socket!r} were not acknowledged by "
                f"JetStream within {timeout:g} s and are lost"
            )
            log.warning(message)
            self.report(message, "close")

    def report(self, message: str, kind: str) -> None:
        """Tell ``on_error`` (the socket's error log); the publisher logs."""
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:
                log.exception("recording: the error callback failed")

    def __repr__(self) -> str:
        return f"<JetStreamRecorder {self.path!r}: {self.published} published, {self.pending} pending, {self.dropped} dropped>"


_publishers: dict[str, JetStreamPublisher] = {}
_publishers_lock = threading.Lock()


def publisher_for(target: NatsTarget) -> JetStreamPublisher:
    """The process's publisher for ``target``'s server (started on first use; nats-py is imported here)."""
    with _publishers_lock:
        publisher = _publishers.get(target.server)
        if publisher is None or publisher.closing:
            publisher = _publishers[target.server] = JetStreamPublisher(target)
        return publisher


class JetStreamPublisher:
    """One NATS connection, on a thread of its own, publishing the queued messages of every socket recorded to one server."""

    def __init__(self, target: NatsTarget) -> None:
        try:
            import nats  # noqa: F401
        except ImportError:
            raise InvalidOptionError(
                f"recording to {target.shown} needs nats-py: pip install 'nbsocket[nats]' (or nats-py)"
            ) from None
        self.server = target.server
        self.shown = target.shown.split("/", 3)
        self.shown_server = "/".join(self.shown[:3])
        self.max_pending = target.max_pending
        self.connected = False
        self.stopped = False
        self.closing = False
        """Set (for good) when the publisher stops taking messages: stopped, or closing for want of recorders."""
        self.buffered = 0
        self.published = 0
        self.dropped = 0
        self.batches_published = 0
        self._targets: dict[str, NatsTarget] = {}
        self._recorders: set[JetStreamRecorder] = set()
        self._unused_since: float | None = None  # when the last recorder was released (monotonic)
        self._incoming: collections.deque[tuple[JetStreamRecorder, int, int, list[str | bytes]]] = collections.deque()
        self._retry: collections.deque[_Pending] = collections.deque()
        self._lock = threading.Lock()
        self._acknowledged = threading.Condition(self._lock)
        self._idle = True
        self._stop_requested = False
        self._streams_ready: set[str] = set()
        self._drops_unreported = 0
        self._last_drop_report = float("-inf")
        self._tokens = 0
        self._in_flight: _InFlight | None = None
        self._loop = asyncio.new_event_loop()
        self._wake: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run_thread, name=f"nbsocket-jetstream-{self.shown_server}", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)

    # --- from any thread ------------------------------------------------------------------

    def add(self, recorder: JetStreamRecorder) -> bool:
        """Publish ``recorder``'s messages from now on; False if this publisher is closing (use a new one)."""
        with self._lock:
            return self._keep(recorder)

    def _keep(self, recorder: JetStreamRecorder) -> bool:  # under the lock
        if self.closing:
            return False
        self._targets.setdefault(recorder.target.stream_subjects, recorder.target)
        self._recorders.add(recorder)
        self._unused_since = None
        return True

    def release(self, recorder: JetStreamRecorder) -> None:
        """``recorder``'s socket closed: once none is left and nothing waits, the connection closes (see the module)."""
        with self._lock:
            self._recorders.discard(recorder)
            if not self._recorders and self._unused_since is None:
                self._unused_since = time.monotonic()

    def offer(self, recorder: JetStreamRecorder, ts_ns: int, first_seq: int, bodies: list[str | bytes]) -> bool:
        """Queue one batch (loop thread): never waits; drops it, counted, when the bound is reached. False (nothing
        queued) if this publisher is closing."""
        count = len(bodies)
        with self._lock:
            if recorder not in self._recorders and not self._keep(recorder):
                return False
            recorder.received += count
            room = self.max_pending - self.buffered
            if count > room:  # the bound is reached: keep what fits, drop the rest of this read
                lost = count - max(0, room)
                recorder.dropped += lost
                self.dropped += lost
                self._drops_unreported += lost
                count -= lost
                bodies = bodies[:count]
            dropped = self._drops_unreported > 0
            if count:
                self.buffered += count
                recorder.pending += count
                recorder.batches.append([ts_ns, count])
                self._incoming.append((recorder, ts_ns, first_seq, bodies))
            wake, self._idle = self._idle, False
        if dropped:
            self._report_drops(recorder)
        if wake:
            self._call_soon(self._wake_up)
        return True

    def wait_acknowledged(self, recorder: JetStreamRecorder, timeout: float | None) -> bool:
        """Block until ``recorder`` has nothing pending; False when ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._acknowledged:
            while recorder.pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._acknowledged.wait(remaining if remaining is not None else 1.0)
        return True

    def abandon(self, recorder: JetStreamRecorder) -> int:
        """Stop trying to publish what ``recorder`` still has pending; returns how many messages that was."""
        with self._lock:
            lost = recorder.pending
            self.buffered -= lost
            recorder.pending = 0
            recorder.batches.clear()
            self._incoming = collections.deque(item for item in self._incoming if item[0] is not recorder)
            self._retry = collections.deque(item for item in self._retry if item.recorder is not recorder)
            self._acknowledged.notify_all()
        return lost

    def stop(self, timeout: float = 10.0) -> None:
        """Publish what is queued (up to ``timeout`` seconds), close the NATS connection and end the thread."""
        if self.stopped:
            return
        with self._lock:
            self.closing = True
        self._stop_requested = True
        self._call_soon(self._wake_up)
        self._thread.join(timeout)
        self.stopped = True

    # --- the publisher's thread ----------------------------------------------------------------

    def _call_soon(self, fn: Callable[[], None]) -> None:
        try:
            self._loop.call_soon_threadsafe(fn)
        except RuntimeError:  # the loop is closed: the process is ending
            pass

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _run_thread(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except Exception:
            log.exception("recording to %s: the JetStream publisher stopped", self.shown_server)
        finally:
            self.connected = False
            self.stopped = True
            leftovers = [task for task in asyncio.all_tasks(self._loop) if not task.done()]
            for task in leftovers:  # nats-py's reader, flusher and reconnect tasks
                task.cancel()
            if leftovers:
                self._loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            self._loop.close()

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        self._ready.set()
        nc: Client | None = None
        inbox = ""
        backoff = 0.1
        while True:
            if self._unused():
                break
            if nc is None or not nc.is_connected:
                if self._stop_requested and not self._has_work():
                    break
                try:
                    nc, inbox = await self._connect(nc)
                    backoff = 0.1
                except Exception as exc:
                    self.connected = False
                    self._log_once(
                        f"cannot reach {self.shown_server}: {type(exc).__name__}: {exc}; retrying (messages are buffered)"
                    )
                    if self._stop_requested:
                        break
                    await self._sleep(backoff)
                    backoff = min(2.0, backoff * 2)
                    continue
            batch = self._take(BATCH_MESSAGES)
            if not batch:
                if self._stop_requested:
                    break
                await self._idle_wait()
                continue
            ok = await self._publish(nc, inbox, batch)
            if not ok:
                await self._sleep(backoff)
                backoff = min(2.0, backoff * 2)
            else:
                backoff = 0.1
        if nc is not None:
            try:
                await asyncio.wait_for(nc.drain() if nc.is_connected else nc.close(), 5.0)
            except Exception:
                pass

    async def _connect(self, old: Client | None) -> tuple[Client, str]:
        import nats

        if old is not None:
            try:
                await old.close()
            except Exception:
                pass

        async def disconnected() -> None:
            self.connected = False
            self._log_once(f"lost the connection to {self.shown_server}; reconnecting (messages are buffered)")

        async def reconnected() -> None:
            self.connected = True
            log.info("recording: reconnected to %s", self.shown_server)

        async def error(exc: Exception) -> None:
            log.debug("recording: NATS client error on %s: %s", self.shown_server, exc)

        nc = await nats.connect(
            self.server,
            connect_timeout=2,
            reconnect_time_wait=0.5,
            max_reconnect_attempts=-1,
            allow_reconnect=True,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            error_cb=error,
            name=f"nbsocket-{process_run()}",
        )
        inbox = nc.new_inbox()

        async def on_ack(msg: Msg) -> None:
            batch = self._in_flight
            index = batch.tokens.pop(msg.subject, None) if batch is not None else None
            if batch is None or index is None:
                return  # a late acknowledgement of a batch already settled
            data: bytes = msg.data
            ok = not (msg.headers or {}).get("Status") and data.startswith(b"{") and b'"error"' not in data
            if not ok:
                log.debug("recording: JetStream refused a message: %r", data[:200])
            batch.outcomes[index] = ok
            if not batch.tokens:
                batch.done.set()

        await nc.subscribe(inbox + ".*", cb=on_ack)
        self.connected = True
        self._reported_connect = False
        log.info("recording: connected to %s", self.shown_server)
        return nc, inbox

    def _unused(self) -> bool:
        """No recorder left and nothing to publish for :data:`UNUSED_CLOSE_SECONDS`: stop taking messages (True)."""
        with self._lock:
            since = self._unused_since
            if since is None or self._recorders or self.buffered or time.monotonic() - since < UNUSED_CLOSE_SECONDS:
                return False
            self.closing = True
        log.info("recording: no socket records to %s any more; closing the connection", self.shown_server)
        return True

    def _has_work(self) -> bool:
        return bool(self._incoming or self._retry)

    async def _idle_wait(self) -> None:
        wake = self._wake
        assert wake is not None
        with self._lock:
            if self._incoming or self._retry:
                return
            self._idle = True
            wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), 1.0)
        except asyncio.TimeoutError:
            pass
        self._report_drops(None)

    async def _sleep(self, seconds: float) -> None:
        wake = self._wake
        assert wake is not None
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    def _take(self, limit: int) -> list[_Pending]:
        """Up to ``limit`` messages: those to publish again first, then new ones, in order."""
        batch: list[_Pending] = []
        retry = self._retry
        while retry and len(batch) < limit:
            batch.append(retry.popleft())
        incoming = self._incoming
        while len(batch) < limit:
            try:
                recorder, ts_ns, first_seq, bodies = incoming.popleft()
            except IndexError:
                break
            room = limit - len(batch)
            if len(bodies) > room:  # the rest of this read goes first next time
                incoming.appendleft((recorder, ts_ns, first_seq + room, bodies[room:]))
                bodies = bodies[:room]
            batch.extend(_Pending(recorder, first_seq + i, ts_ns, body) for i, body in enumerate(bodies))
        return batch

    async def _publish(self, nc: Client, inbox: str, batch: list[_Pending]) -> bool:
        """Publish ``batch`` and await its acknowledgements together; what was not acknowledged goes back in front."""
        for subject in {item.recorder.target.stream_subjects for item in batch} - self._streams_ready:
            await self._ensure_stream(nc, self._targets.get(subject) or batch[0].recorder.target)
        flight = _InFlight(len(batch))
        self._in_flight = flight
        try:
            for index, item in enumerate(batch):
                recorder = item.recorder
                self._tokens += 1
                token = f"{inbox}.{self._tokens}"
                flight.tokens[token] = index
                body = item.body
                payload = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
                headers = stream_headers(
                    recorder.socket, recorder.run, item.seq, item.ts_ns, recorder.content_type, not isinstance(body, str)
                )
                await nc.publish(recorder.subject, payload, reply=token, headers=headers)
            await asyncio.wait_for(flight.done.wait(), ACK_TIMEOUT)
        except asyncio.TimeoutError:
            pass
        except Exception as exc:
            self._log_once(f"publishing to {self.shown_server} failed: {type(exc).__name__}: {exc}; retrying")
        self._in_flight = None
        failed: list[_Pending] = []
        acknowledged: dict[JetStreamRecorder, int] = {}
        for item, ok in zip(batch, flight.outcomes, strict=True):
            if ok:
                acknowledged[item.recorder] = acknowledged.get(item.recorder, 0) + 1
            else:
                failed.append(item)
        with self._lock:
            for recorder, count in acknowledged.items():
                count = min(count, recorder.pending)  # what was abandoned at close meanwhile is not counted
                recorder.published += count
                recorder.pending -= count
                self.buffered -= count
                self.published += count
                _consume(recorder.batches, count)
            self._retry.extendleft(reversed([item for item in failed if item.recorder.pending]))
            self.batches_published += 1
            self._acknowledged.notify_all()
        if failed:
            self._streams_ready.clear()  # a missing stream (503) is made again before the next try
            self._log_once(f"{len(failed)} message(s) not acknowledged by {self.shown_server} in time; publishing them again")
            return False
        return True

    async def _ensure_stream(self, nc: Client, target: NatsTarget) -> None:
        """Make sure a stream takes ``target``'s subjects (create ``target.stream_name`` if none does)."""
        from nats.js.errors import BadRequestError, NotFoundError

        js = nc.jetstream(timeout=ACK_TIMEOUT)
        subject = target.stream_subjects
        probe = target.subject_for("x") if "{name}" in target.subject else target.subject
        try:
            if target.stream:
                await js.stream_info(target.stream)
            else:
                await js.find_stream_name_by_subject(probe)
            self._streams_ready.add(subject)
            return
        except NotFoundError:
            pass
        except Exception as exc:
            self._log_once(f"cannot ask {self.shown_server} for its streams: {type(exc).__name__}: {exc}")
            return
        try:
            await js.add_stream(name=target.stream_name, subjects=[subject], duplicate_window=120.0)
            log.info("recording: created the JetStream stream %s for %s", target.stream_name, subject)
        except BadRequestError as exc:  # another process created it meanwhile, or the name is taken by other subjects
            try:
                await js.find_stream_name_by_subject(probe)
            except Exception:
                self._log_once(
                    f"no stream takes {subject} on {self.shown_server} and stream {target.stream_name} cannot be created "
                    f"({exc}); create one, or name it with ?stream=NAME"
                )
                return
        except Exception as exc:
            self._log_once(f"cannot create a stream for {subject} on {self.shown_server}: {type(exc).__name__}: {exc}")
            return
        self._streams_ready.add(subject)

    # --- reporting ------------------------------------------------------------------------------

    _reported_connect = False

    def _log_once(self, message: str) -> None:
        """A warning the first time, debug after that (until the connection is back)."""
        (log.debug if self._reported_connect else log.warning)("recording: %s", message)
        self._reported_connect = True

    def _report_drops(self, recorder: JetStreamRecorder | None) -> None:
        """Say that messages were dropped: at once the first time, then at most every 10 s, with the count."""
        now = time.monotonic()
        with self._lock:
            count = self._drops_unreported
            if not count or now - self._last_drop_report < DROP_REPORT_SECONDS:
                return
            self._drops_unreported = 0
            self._last_drop_report = now
        message = (
            f"recording to {self.shown_server}: the sink is full ({self.max_pending} messages waiting for JetStream); "
            f"dropped {count} new message(s) (total {self.dropped})"
        )
        log.warning(message)
        if recorder is not None:
            recorder.report(message, "dropped")


def _consume(batches: collections.deque[list[int]], count: int) -> None:
    """Take ``count`` acknowledged messages off the oldest batches (for the lag)."""
    while count and batches:
        head = batches[0]
        if head[1] > count:
            head[1] -= count
            return
        count -= head[1]
        batches.popleft()


def stop_publishers(timeout: float = 10.0) -> None:
    """Publish what is queued (up to ``timeout`` seconds for each server) and close every NATS connection."""
    for publisher in list(_publishers.values()):
        try:
            publisher.stop(timeout=timeout)
        except Exception:
            log.debug("recording: stopping a JetStream publisher failed", exc_info=True)


atexit.register(stop_publishers)
