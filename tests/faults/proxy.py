"""A TCP proxy on 127.0.0.1 that a test controls, to inject network faults between nbsocket and a server."""

from __future__ import annotations

import asyncio
from typing import Any

from ..servers import LoopServer


class FaultProxy(LoopServer):
    """Forwards ``127.0.0.1:port`` to ``target_port``; the test can cut, blackhole or slow the traffic.

    * ``cut()``: reset every connection at once (like a cable pulled mid-message).
    * ``blackhole(True)``: stop forwarding in both directions without closing anything (a half-open link).
    * ``delay``: seconds added to every chunk forwarded (a slow network).
    * ``refuse(True)``: new connections are closed as soon as they arrive.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        super().__init__()
        self.target = (target_host, target_port)
        self.port = 0
        self.delay = 0.0
        self.connections = 0
        self._blackhole = False
        self._refuse = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: Any = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refuse:
            writer.transport.abort()
            return
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                writer.transport.abort()
                return
            while self._blackhole:  # noqa: ASYNC110 (a flag the test thread sets and clears)
                await asyncio.sleep(0.05)
            if self.delay:
                await asyncio.sleep(self.delay)
            writer.write(data)
            await writer.drain()

    def cut(self) -> None:
        """Abort every proxied connection now."""

        def abort() -> None:
            for writer in list(self._writers):
                writer.transport.abort()

        self.loop.call_soon_threadsafe(abort)

    def blackhole(self, on: bool = True) -> None:
        """Hold every byte (both ways) while on; nothing is closed."""
        self._blackhole = on

    def refuse(self, on: bool = True) -> None:
        """Close new connections at once while on."""
        self._refuse = on

    async def _stop(self) -> None:
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
