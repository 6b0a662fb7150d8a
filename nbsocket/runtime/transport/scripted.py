"""A transport that plays a server written as a coroutine, in memory: the runtime's test seam.

As httpx's ``MockTransport``: give a :class:`~nbsocket.runtime.manager.Manager` a :class:`ScriptedTransport`
and its sockets open :class:`ScriptedWire` connections to your script instead of the network, so what the
runtime does on its own (handler order, the outbox, reconnect policy, dispatch, backpressure) can be tested
fast and deterministically. Everything that touches the network keeps its real-server tests::

    async def server(peer: ScriptedPeer) -> None:
        await peer.send_batch(["a", "b"])        # one read of two messages
        assert await peer.recv() == "hello"       # what the client wrote
        await peer.close(4000, "bye")

    manager = Manager(transport=ScriptedTransport(server))
    conn = manager.connect("s", "ws://scripted/")

Each open runs the script once, on nbsocket's loop, with a new :class:`ScriptedPeer`; ``refuse`` can fail
opens (a callable given the attempt number, returning the error to raise or ``None``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from ...core.options import ConnectOptions
from .interface import Batch, CloseInfo, Sink

__all__ = ["ScriptedPeer", "ScriptedTransport", "ScriptedWire", "ServerScript"]

ServerScript = Callable[["ScriptedPeer"], Awaitable[None]]
"""The server side of one connection."""


class ScriptedWire:
    """The client side of a scripted connection (a :class:`~nbsocket.runtime.transport.interface.Wire`)."""

    def __init__(self, url: str, subprotocol: str | None, decode_text: bool) -> None:
        self.url = url
        self.subprotocol = subprotocol
        self.decode_text = decode_text
        self.on_pong: Callable[[], None] | None = None
        self.latency = 0.0
        self.failure: BaseException | None = None
        self.answer_pings = True
        self._sink: Sink | None = None
        self._held: list[Batch] = []
        self._paused = False
        self._open = True
        self._closed = asyncio.get_running_loop().create_future()
        self._info = CloseInfo(1006, "", False)
        self.sent: asyncio.Queue[str | bytes] = asyncio.Queue()

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def is_closed(self) -> bool:
        return self._closed.done()

    @property
    def reading_paused(self) -> bool:
        """The runtime paused reading (its handlers are behind); what the peer sends waits."""
        return self._paused

    def attach(self, sink: Sink) -> None:
        self._sink = sink
        self._flush()

    async def send(self, message: str | bytes) -> None:
        if not self._open:
            raise ConnectionClosed(None, Close(self._info.code, self._info.reason) if self._info.by_us else None)
        await self.sent.put(message)

    async def ping(self) -> Awaitable[float]:
        pong: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if self._open and self.answer_pings:
            pong.set_result(0.0)
            if self.on_pong is not None:
                self.on_pong()
        return pong

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.end(CloseInfo(code, reason, False))  # the script's peer echoes the close

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    def close_info(self) -> CloseInfo:
        return self._info

    async def abort(self) -> None:
        self.drop()

    def drop(self) -> None:
        self.end(CloseInfo(1006, "", False))

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        self._paused = False
        self._flush()

    # --- the peer's side ---------------------------------------------------------------------

    def deliver(self, batch: Batch) -> None:
        """A read of ``batch`` arrives (text is handed over as UTF-8 bytes when the wire does not decode it)."""
        if not self._open:
            return
        if not self.decode_text:
            batch = [m.encode() if isinstance(m, str) else m for m in batch]
        self._held.append(list(batch))
        self._flush()

    def end(self, info: CloseInfo) -> None:
        """The connection ends as ``info`` says (no-op once it ended)."""
        if self._closed.done():
            return
        self._open = False
        self._info = info
        self._closed.set_result(None)

    def _flush(self) -> None:
        sink = self._sink
        while sink is not None and self._held and not self._paused and self._open:
            sink(self._held.pop(0))


class ScriptedPeer:
    """The server's end of one scripted connection, handed to the script."""

    def __init__(self, wire: ScriptedWire, attempt: int) -> None:
        self.wire = wire
        self.attempt = attempt
        """Which open this is (1 for the first, 2 after the first reconnect...)."""

    @property
    def url(self) -> str:
        """The URL the client opened (secrets included)."""
        return self.wire.url

    async def send(self, message: str | bytes) -> None:
        """Send one message (a read of its own)."""
        await self.send_batch([message])

    async def send_batch(self, messages: list[str | bytes]) -> None:
        """Send ``messages`` as one read, so the client gets them as one batch."""
        self.wire.deliver(list(messages))
        await asyncio.sleep(0)

    async def recv(self, timeout: float | None = 10.0) -> str | bytes:
        """The next message the client wrote."""
        return await asyncio.wait_for(self.wire.sent.get(), timeout)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection from the server's side."""
        self.wire.end(CloseInfo(code, reason, False))
        await asyncio.sleep(0)

    def drop(self) -> None:
        """Lose the connection (1006)."""
        self.wire.end(CloseInfo(1006, "", False))

    async def closed(self) -> CloseInfo:
        """Wait until the connection ended; how it ended."""
        await self.wire.wait_closed()
        return self.wire.close_info()


class ScriptedTransport:
    """Opens :class:`ScriptedWire` connections that run ``server`` (see the module)."""

    def __init__(
        self, server: ServerScript, *, refuse: Callable[[int], BaseException | None] | None = None, subprotocol: str | None = None
    ) -> None:
        self.server = server
        self.refuse = refuse
        self.subprotocol = subprotocol
        self.opens = 0
        """How many times a socket tried to open."""
        self.peers: list[ScriptedPeer] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def check_supported(self, options: ConnectOptions) -> None:
        pass

    async def open(
        self,
        url: str,
        options: ConnectOptions,
        *,
        subprotocols: list[str] | None = None,
        decode_text: bool = True,
        ping_at_open: bool = False,
    ) -> ScriptedWire:
        self.opens += 1
        refusal = self.refuse(self.opens) if self.refuse is not None else None
        if refusal is not None:
            raise refusal
        chosen = self.subprotocol or next(iter(subprotocols or options.subprotocols), None)
        wire = ScriptedWire(url, chosen, decode_text)
        peer = ScriptedPeer(wire, self.opens)
        self.peers.append(peer)
        task = asyncio.get_running_loop().create_task(self._run(peer), name=f"nbsocket-scripted-{self.opens}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return wire

    async def _run(self, peer: ScriptedPeer) -> None:
        try:
            await self.server(peer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failing script drops the connection, and says why
            peer.wire.failure = exc
            peer.drop()
