"""Following a JetStream subject as if it were a socket: ``nbs.follow(name, "nats://HOST:PORT/feeds.prices", since=...)``.

Processes elsewhere record feeds to JetStream (``record="nats://..."``); a notebook follows them. A
followed stream is a :class:`FollowConnection`: a :class:`~nbsocket.runtime.connection.Connection`
whose transport is a JetStream consumer instead of a WebSocket, so everything a socket has works
unchanged: the live frame, ``nbs.panel``, ``nbs.plot``, handlers, ``wait``, the status row, reset and
remove. Its rows keep what the recorder saw: ``timestamp`` is the receipt time and ``seq`` the
socket's number from the ``Nbs-Timestamp`` and ``Nbs-Seq`` headers, and the message is decoded by the
socket's content type as it would have been on the socket. It is read-only: ``send`` raises.

``since`` says where to start: ``"start"`` (everything the stream holds), ``"new"`` (only messages
published from now on, the default), or a time (a ``datetime``, a pandas ``Timestamp`` or an ISO 8601
string; naive means UTC). The consumer is an ordered push consumer (nats-py's ``ordered_consumer``); after
a reset or a broker restart, following resumes after the last stream message handed over, so nothing is
shown twice and nothing is skipped.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..core.events import Request, SocketVerbs, WsEvent
from ..core.inbound import decode_batch
from ..core.options import ConnectOptions
from ..core.streams import HEADER_BINARY, HEADER_SEQ, HEADER_TIMESTAMP, NatsTarget, parse_nats_url, parse_timestamp
from ..errors import ConnectError, InvalidOptionError, SocketClosedError
from .connection import Connection
from .outbound.outbox import SendTimeout
from .parts import SessionPort, SocketParts
from .receivers import Receiver, hand_over
from .transport import Batch, CloseInfo, Sink, Wire

if TYPE_CHECKING:  # nats-py is imported when a stream is first followed
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

__all__ = ["FollowConnection", "JetStreamTransport", "StreamReceiver", "StreamWire", "follow_target", "parse_since"]

log = logging.getLogger("nbsocket")

Since = str | _dt.datetime | None
"""Where following starts: "start", "new", or a time (a datetime, a pandas Timestamp or an ISO 8601 string)."""


def parse_since(since: Since) -> tuple[str, _dt.datetime | None]:
    """``since`` as a JetStream deliver policy (``all``, ``new`` or ``by_start_time``) and its start time."""
    if since in ("start", "all", "beginning"):
        return "all", None
    if since in ("new", "now", None):
        return "new", None
    if isinstance(since, str):
        try:
            since = _dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidOptionError(
                f"since= takes 'start', 'new' or a time (a datetime or an ISO 8601 string), not {since!r}"
            ) from None
    to_pydatetime = getattr(since, "to_pydatetime", None)
    if callable(to_pydatetime):
        since = to_pydatetime()
    if not isinstance(since, _dt.datetime):
        raise InvalidOptionError(f"since= takes 'start', 'new' or a time, not {since!r}")
    return "by_start_time", since if since.tzinfo is not None else since.replace(tzinfo=_dt.timezone.utc)


class StreamWire:
    """A JetStream consumer as the runtime's :class:`~nbsocket.runtime.transport.Wire` (read-only; loop thread)."""

    subprotocol = None
    latency = 0.0

    def __init__(self, nc: Client, target: NatsTarget) -> None:
        self.on_pong: Callable[[], None] | None = None
        self.failure: BaseException | None = None
        self.batch_meta: list[tuple[int, int]] = []
        """(receipt ns, seq) of each message of the batch being handed over."""
        self.last_stream_seq = 0
        self._nc = nc
        self._target = target
        self._sub: JetStreamContext.PushSubscription | None = None
        self._sink: Sink | None = None
        self._waiting: list[tuple[str | bytes, int, int]] = []
        self._scheduled = False
        self._paused = False
        self._open = True
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._info = CloseInfo(1000, "", True)

    async def subscribe(self, policy: str, start: _dt.datetime | None, after: int) -> None:
        """Start the ordered consumer: after stream message ``after`` if any was seen, else by ``policy``."""
        from nats.js.api import ConsumerConfig, DeliverPolicy

        js = self._nc.jetstream()
        config: ConsumerConfig | None = None
        if after:
            deliver, config = DeliverPolicy.BY_START_SEQUENCE, ConsumerConfig(opt_start_seq=after + 1)
        elif policy == "by_start_time":
            deliver, config = DeliverPolicy.BY_START_TIME, ConsumerConfig(opt_start_time=start)
        else:
            deliver = DeliverPolicy(policy)
        self._sub = await js.subscribe(
            self._target.subject,
            cb=self._on_message,
            ordered_consumer=True,
            deliver_policy=deliver,
            config=config,
            stream=self._target.stream,
        )

    async def _on_message(self, msg: Msg) -> None:
        headers = msg.headers or {}
        data: bytes = msg.data
        body: str | bytes = data if headers.get(HEADER_BINARY) == "1" else data.decode("utf-8", "replace")
        metadata = msg.metadata
        try:
            ts = parse_timestamp(headers[HEADER_TIMESTAMP])
        except (KeyError, InvalidOptionError):
            ts = int(metadata.timestamp.timestamp() * 1e9) if metadata.timestamp else time.time_ns()
        try:
            seq = int(headers[HEADER_SEQ])
        except (KeyError, ValueError):
            seq = int(metadata.sequence.stream)
        self.last_stream_seq = int(metadata.sequence.stream)
        self._waiting.append((body, ts, seq))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._hand_over)

    def _hand_over(self) -> None:
        """What arrived since the last hand-over, as one batch (the wire's "read")."""
        self._scheduled = False
        if self._sink is None or self._paused or not self._waiting:
            return
        waiting, self._waiting = self._waiting, []
        self.batch_meta = [(ts, seq) for _, ts, seq in waiting]
        self._sink([body for body, _, _ in waiting])

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def is_closed(self) -> bool:
        return self._closed.done()

    def attach(self, sink: Sink) -> None:
        self._sink = sink
        self._hand_over()

    async def send(self, message: str | bytes) -> None:
        raise SocketClosedError("a followed stream is read-only: it cannot send")

    async def ping(self) -> Awaitable[float]:
        pong: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        pong.set_result(0.0)
        return pong

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self._info = CloseInfo(code, reason, True)
        await self._finish()

    async def _finish(self) -> None:
        if self._closed.done():
            return
        self._open = False
        try:
            await asyncio.wait_for(self._nc.close(), 5.0)
        except Exception:
            pass
        if not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    def close_info(self) -> CloseInfo:
        return self._info

    async def abort(self) -> None:
        await self._finish()

    def drop(self) -> None:
        self._open = False
        asyncio.get_running_loop().create_task(self._finish())

    def lost(self, reason: str) -> None:
        """The broker went away for good: the session reconnects (resuming after the last message)."""
        self._info = CloseInfo(1006, reason, False)
        asyncio.get_running_loop().create_task(self._finish())

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        self._paused = False
        self._hand_over()


class JetStreamTransport:
    """Opens a followed stream: a NATS connection and an ordered consumer of the subject (see the module)."""

    def __init__(self, target: NatsTarget, since: Since) -> None:
        try:
            import nats  # noqa: F401
        except ImportError:
            raise InvalidOptionError("nbs.follow needs nats-py: pip install 'nbsocket[nats]' (or nats-py)") from None
        self.target = target
        self.policy, self.start = parse_since(since)
        self.last_stream_seq = 0
        self._wire: StreamWire | None = None

    def check_supported(self, options: ConnectOptions) -> None:
        """Nothing a stream cannot honour among the options follow takes."""

    async def open(
        self,
        url: str,
        options: ConnectOptions,
        *,
        subprotocols: list[str] | None = None,
        decode_text: bool = True,
        ping_at_open: bool = False,
    ) -> Wire:
        import nats

        if self._wire is not None:
            self.last_stream_seq = max(self.last_stream_seq, self._wire.last_stream_seq)
        holder: list[StreamWire] = []

        async def closed() -> None:
            if holder:
                holder[0].lost("the NATS connection closed")

        try:
            nc = await nats.connect(
                self.target.server,
                connect_timeout=max(1, int(options.open_timeout or 10)),
                max_reconnect_attempts=5,
                reconnect_time_wait=0.5,
                allow_reconnect=True,
                closed_cb=closed,
                name="nbsocket-follow",
            )
        except Exception as exc:
            raise ConnectError(f"cannot reach {self.target.shown}: {type(exc).__name__}: {exc}", kind="refused") from None
        wire = StreamWire(nc, self.target)
        holder.append(wire)
        try:
            await wire.subscribe(self.policy, self.start, self.last_stream_seq)
        except Exception as exc:
            await nc.close()
            raise ConnectError(
                f"cannot follow {self.target.shown}: {type(exc).__name__}: {exc} (does a stream take this subject?)",
                kind="protocol",
            ) from None
        self._wire = wire
        return wire


class StreamReceiver:
    """A followed stream's receiver: rows and events keep the recorded receipt time and seq (see the module)."""

    decode_text = True
    ping_at_open = False

    def __init__(self, parts: SocketParts, delivery: SessionPort, verbs: SocketVerbs) -> None:
        self._parts = parts
        self._delivery = delivery
        self._verbs = verbs
        self._wire: StreamWire | None = None

    def prepare_open(self, url: str, options: ConnectOptions) -> tuple[str, list[str] | None]:
        return url, None

    def opened(self, wire: Wire, ready: asyncio.Event, first: asyncio.Future[None]) -> None:
        self._wire = wire if isinstance(wire, StreamWire) else None
        self._parts.dispatcher.push_open(ready)
        if not first.done():
            first.set_result(None)

    def receive(self, batch: Batch) -> None:
        wire = self._wire
        meta = wire.batch_meta if wire is not None and len(wire.batch_meta) == len(batch) else None
        now = time.time_ns()
        parts, delivery = self._parts, self._delivery
        datas, errors = decode_batch(batch, parts.codec.decode, parts.stats)
        stamps = meta if meta is not None else [(now, delivery.seq + 1 + i) for i in range(len(batch))]
        delivery.seq = stamps[-1][1]
        delivery.last_ts_ns = now
        frame, observers = parts.frame, parts.observers
        for i, (ts, seq) in enumerate(stamps):
            if frame is not None:
                frame.append_messages(ts, seq, datas[i : i + 1], errors[i : i + 1], batch[i : i + 1])
            if observers.on_batch:
                observers.call(observers.on_batch, ts, seq, batch[i : i + 1], errors[i : i + 1])
        if not (parts.handlers or observers.on_received or observers.on_handled):
            return
        content_type, url = parts.options.content_type, delivery.url
        events = [
            WsEvent(
                parts.name,
                datas[i],
                Request(body, not isinstance(body, str), content_type, url),
                stamps[i][1],
                stamps[i][0],
                parts.lockable,
                errors[i],
                self._verbs,
            )
            for i, body in enumerate(batch)
        ]
        hand_over(parts, events)

    def closed(self, info: CloseInfo, first: asyncio.Future[None]) -> bool:
        self._wire = None
        if not first.done():
            first.set_result(None)
        return False


class FollowConnection(Connection):
    """A JetStream subject followed like a socket (see the module); built by :meth:`Manager.follow`."""

    def _receiver(self) -> Receiver:
        return StreamReceiver(self._parts, self._session, self)

    def send(self, message: Any, *, timeout: SendTimeout = None) -> None:
        """A followed stream is read-only: raises :class:`SocketClosedError`."""
        raise SocketClosedError(f"{self.name!r} follows {self.url}: a followed stream is read-only, it cannot send")


def follow_target(url: str) -> NatsTarget:
    """A follow URL checked (wildcards allowed in the subject); refused before any I/O when it cannot work."""
    target = parse_nats_url(url, wildcards=True)
    if "{name}" in target.subject:
        raise InvalidOptionError(f"{target.shown}: follow a subject, not a template: put the socket's name in place of {{name}}")
    return target
