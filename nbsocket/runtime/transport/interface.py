"""What the runtime asks of a transport: to open a socket, and of the open socket (the wire) while it lives.

A :class:`Session <nbsocket.runtime.session.Session>` opens every connection through a :class:`Transport`
and holds the :class:`Wire` it returns. :class:`~nbsocket.runtime.transport.WebsocketsTransport` is the real
one (``websockets`` underneath); :class:`~nbsocket.runtime.transport.ScriptedTransport` plays a server
written as a coroutine, in memory, so ordering, the outbox, reconnects and dispatch can be tested without a
network (as httpx's ``MockTransport``). Nothing here imports ``websockets``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple, Protocol

from ...core.options import ConnectOptions

__all__ = ["Batch", "CloseInfo", "Sink", "Transport", "Wire"]

Batch = list[str | bytes]
"""The data messages of one read, in order: ``str`` for text, ``bytes`` for binary."""
Sink = Callable[[Batch], None]
"""Where a wire hands each read's batch (on the loop thread)."""


class CloseInfo(NamedTuple):
    """How a finished connection ended: the peer's close code and reason, else ours (e.g. 1009), else 1006."""

    code: int
    reason: str
    by_us: bool


class Wire(Protocol):
    """An open WebSocket connection as the runtime uses it (loop thread only)."""

    on_pong: Callable[[], None] | None
    """Called after a keepalive pong updated :attr:`latency`."""

    @property
    def is_open(self) -> bool:
        """The WebSocket connection is open (not closing or closed)."""

    @property
    def is_closed(self) -> bool:
        """The connection is gone."""

    @property
    def latency(self) -> float:
        """The last keepalive round trip in seconds (0 before the first)."""

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose."""

    @property
    def failure(self) -> BaseException | None:
        """What broke the connection from our side, if anything (a decoding error, a network error)."""

    def attach(self, sink: Sink) -> None:
        """Hand every received batch to ``sink`` from now on; what arrived before goes first."""

    async def send(self, message: str | bytes) -> None:
        """Write one message (``str``: a text frame, ``bytes``: a binary frame); raises ``ConnectionClosed`` once closed."""

    async def ping(self) -> Awaitable[float]:
        """Send a ping; the awaitable resolves to the round trip when the pong arrives."""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the close handshake and wait for the end."""

    async def wait_closed(self) -> None:
        """Return once the connection is gone."""

    def close_info(self) -> CloseInfo:
        """How the connection ended (valid once it is closed)."""

    async def abort(self) -> None:
        """Drop the connection at once, without a close handshake, and wait briefly for it to be gone."""

    def drop(self) -> None:
        """Drop the connection at once (callable from a shutdown that cannot wait)."""

    def pause_reading(self) -> None:
        """Stop reading (the handlers are behind: TCP pushes back on the server)."""

    def resume_reading(self) -> None:
        """Read again."""


class Transport(Protocol):
    """Opens sockets for a session."""

    def check_supported(self, options: ConnectOptions) -> None:
        """Refuse, before anything opens, an option this transport cannot honour."""

    async def open(
        self,
        url: str,
        options: ConnectOptions,
        *,
        subprotocols: list[str] | None = None,
        decode_text: bool = True,
        ping_at_open: bool = False,
    ) -> Wire:
        """Open ``url`` and return the wire once the WebSocket handshake is done; raise the nbsocket error that says
        why it failed (:class:`~nbsocket.errors.ConnectError` and its kinds). ``subprotocols`` replaces the options'
        when given; ``decode_text=False`` hands text messages over as UTF-8 bytes; ``ping_at_open``: the wire pings
        the server when it is attached, and settles its ``opening_pong`` future (``None`` where the wire has none)
        with the pong."""
