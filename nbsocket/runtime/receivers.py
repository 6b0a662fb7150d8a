"""What a session does with each connection's messages: the :class:`Receiver` it holds.

A plain socket's :class:`PlainReceiver` numbers each read's batch, decodes it with the socket's codec, adds it
to the live frame, tells the observers and hands the events to the handlers; its first open settles once a
message arrives or the server answered a ping (so a server that refuses at once makes ``connect`` raise). A
protocol socket's receiver is its :class:`~nbsocket.runtime.protocols.driver.ProtocolDriver`, which lets the
protocol decide what each message is. The session never asks which one it holds.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..core.backoff import ReconnectPolicy
from ..core.closes import NORMAL_CLOSES
from ..core.events import Request, SocketVerbs, WsEvent
from ..core.inbound import decode_batch
from ..core.options import ConnectOptions
from ..errors import ConnectError
from .dispatch.dispatcher import Kind
from .parts import SessionPort, SocketParts
from .transport import Batch, CloseInfo, Wire

__all__ = ["OPEN_SETTLE", "SILENT_PEER_SETTLE", "PlainReceiver", "Receiver", "hand_over"]

OPEN_SETTLE = 0.1
"""The longest ``connect`` waits after the handshake (and ``on_open``) for the ping that shows the server keeps the connection."""
SILENT_PEER_SETTLE = 0.005
"""What ``connect`` waits instead, for a close sent right after the handshake, at a server that did not answer that ping."""
_silent_peers: set[str] = set()  # host:port of servers that did not answer the settling ping (they may never answer one)


class Receiver(Protocol):
    """What a session hands each connection's life to (see the module)."""

    @property
    def decode_text(self) -> bool:
        """False: text messages reach :meth:`receive` as their UTF-8 bytes (STOMP bodies need not be UTF-8)."""

    @property
    def ping_at_open(self) -> bool:
        """True: the wire pings the server as the session attaches to it (its pong may settle the first open)."""

    def prepare_open(self, url: str, options: ConnectOptions) -> tuple[str, list[str] | None]:
        """The URL to open and the subprotocols to offer (``None``: the options')."""

    def opened(self, wire: Wire, ready: asyncio.Event, first: asyncio.Future[None]) -> None:
        """A connection opened: start what makes ``ready`` set (``on_open`` and the writer wait for it), and settle
        ``first`` (what ``connect`` waits for) when the open is known to hold."""

    def receive(self, batch: Batch) -> None:
        """One read's messages, in order (loop thread)."""

    def closed(self, info: CloseInfo, first: asyncio.Future[None]) -> bool:
        """The connection closed; may fail ``first`` with the server's refusal. True: do not reopen."""


def hand_over(parts: SocketParts, events: list[WsEvent]) -> None:
    """Received events, in order, to the observers and then the handlers (loop thread; protocol messages too)."""
    observers, dispatcher = parts.observers, parts.dispatcher
    if observers.on_received:
        for event in events:
            observers.call(observers.on_received, event)
    if parts.handlers:
        dispatcher.push(Kind.MESSAGES, events)  # the dispatcher notes each handled once the handlers ran
    else:
        for event in events:
            dispatcher.note_handled(event)


class PlainReceiver:
    """The receiver of a socket without an application protocol (see the module)."""

    decode_text = True
    ping_at_open = True

    def __init__(self, parts: SocketParts, delivery: SessionPort, verbs: SocketVerbs) -> None:
        self._parts = parts
        self._delivery = delivery
        self._verbs = verbs
        self._first: asyncio.Future[None] | None = None
        self._settler: asyncio.Task[None] | None = None

    def prepare_open(self, url: str, options: ConnectOptions) -> tuple[str, list[str] | None]:
        return url, None

    def opened(self, wire: Wire, ready: asyncio.Event, first: asyncio.Future[None]) -> None:
        self._first = first
        self._parts.dispatcher.push_open(ready)
        early = ready.is_set() and not len(self._parts.outbox)  # nothing to write first: the wire's opening ping tells
        if not first.done():
            self._settler = asyncio.get_running_loop().create_task(
                self._settle(wire, ready, first, early), name=f"nbsocket-settle-{self._parts.name}"
            )

    def receive(self, batch: Batch) -> None:
        first = self._first
        if first is not None and not first.done():
            first.set_result(None)  # a message arrived: the server did not refuse the connection
        parts, delivery = self._parts, self._delivery
        ts = delivery.last_ts_ns = time.time_ns()
        seq = delivery.seq + 1
        delivery.seq += len(batch)
        datas, errors = decode_batch(batch, parts.codec.decode, parts.stats)
        frame = parts.frame
        if frame is not None:
            frame.append_messages(ts, seq, datas, errors, batch)
        observers = parts.observers
        if observers.on_batch:
            observers.call(observers.on_batch, ts, seq, batch, errors)
        if not (parts.handlers or observers.on_received or observers.on_handled):
            return
        name, content_type, url, lockable, verbs = (
            parts.name,
            parts.options.content_type,
            delivery.url,
            parts.lockable,
            self._verbs,
        )
        events = [
            WsEvent(
                name,
                datas[i],
                Request(body, body.__class__ is not str, content_type, url),
                seq + i,
                ts,
                lockable,
                errors[i],
                verbs,
            )
            for i, body in enumerate(batch)
        ]
        hand_over(parts, events)

    def closed(self, info: CloseInfo, first: asyncio.Future[None]) -> bool:
        settler, self._settler = self._settler, None
        if settler is not None:
            settler.cancel()
        self._first = None
        if first.done():
            return False
        if self._refused_at_open(info.code):
            error = ConnectError(
                f"{self._delivery.url} accepted the connection and closed it at once with code {info.code} {info.reason!r}",
                kind="closed",
                code=info.code,
                reason=info.reason,
            )
            self._parts.errors.record("connect", type(error).__name__, str(error))
            first.set_exception(error)
            return True
        first.set_result(None)
        return False

    def _refused_at_open(self, code: int | None) -> bool:
        """Is ``code``, received right after the handshake, a refusal (not retried: 1008, 4000-4999)?"""
        if code is None or code in NORMAL_CLOSES:
            return False
        return not (self._parts.options.reconnect or ReconnectPolicy()).retries_close(code)

    async def _settle(self, wire: Wire, ready: asyncio.Event, first: asyncio.Future[None], early: bool) -> None:
        """Resolve ``first`` once ``on_open`` ran, what it sent was written, and the server answered a ping.

        The server handles our messages in order: if it meant to refuse the
        connection at once (or on the auth ``on_open`` sent), its close comes
        before the pong, and ``connect`` raises it. The wait is one round trip,
        at most :data:`OPEN_SETTLE`. A server that let that time pass without a
        pong is remembered (by host and port) and waited for only
        :data:`SILENT_PEER_SETTLE` next time, until it answers a ping.
        """
        await ready.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + OPEN_SETTLE
        outbox = self._parts.outbox
        while len(outbox) and loop.time() < deadline:  # noqa: ASYNC110 (on_open's sends go out first; the writer sets no event)
            await asyncio.sleep(0.001)
        peer = urlsplit(self._delivery.real_url).netloc
        if not first.done() and wire.is_open:
            try:
                opening: asyncio.Future[Any] | None = getattr(wire, "opening_pong", None) if early else None
                pong = opening if opening is not None else asyncio.ensure_future(await wire.ping())
                if peer in _silent_peers:  # no wait: a loop of connects would wait OPEN_SETTLE for each
                    pong.add_done_callback(functools.partial(_answered, peer))
                    await asyncio.sleep(SILENT_PEER_SETTLE)
                elif not await _within(pong, max(0.0, deadline - loop.time())):
                    _silent_peers.add(peer)
            except Exception:  # the connection is closing: judged when it closed
                pass
        if not first.done() and wire.is_open:
            first.set_result(None)
        if self._settler is asyncio.current_task():
            self._settler = None  # done: a socket keeps no finished task


async def _within(future: asyncio.Future[float], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``future`` to finish, never cancelling it; True if it did (whatever its
    outcome). As ``wait_for(shield(future))`` with two callbacks and a future fewer, once per connect."""
    if not future.done():
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()

        def wake(_: object = None) -> None:
            if not waiter.done():
                waiter.set_result(None)

        future.add_done_callback(wake)
        timer = loop.call_later(timeout, wake)
        try:
            await waiter
        finally:
            timer.cancel()
            future.remove_done_callback(wake)
    return future.done()


def _answered(peer: str, pong: asyncio.Future[float]) -> None:
    """A silent peer answered a ping after all: wait for its pong again next time."""
    if not pong.cancelled() and pong.exception() is None:
        _silent_peers.discard(peer)
