"""Small WebSocket servers written for the tests, each running on its own loop thread."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection, serve


class LoopServer:
    """A test server on its own asyncio loop in a daemon thread; subclasses implement ``_start`` and ``_stop``.

    ``start()`` may be called again after ``stop()`` (a server restarting on the same port).
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def run(self, coro: Awaitable[Any], timeout: float = 10) -> Any:
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    async def _start(self) -> None:
        raise NotImplementedError

    async def _stop(self) -> None:
        """Stop listening (the loop keeps running)."""

    def start(self) -> Any:
        """Start listening (and the loop thread, the first time)."""
        if not self._thread.is_alive():
            self._thread.start()
        self.run(self._start())
        return self

    def stop(self) -> None:
        """Stop listening and close every connection."""
        self.run(self._stop())

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


class WsServer(LoopServer):
    """A ``websockets`` server on 127.0.0.1 running ``handler`` in a background thread.

    Records every request's path and headers, every message received and the close code
    of each connection, so tests can check what really reached the server.
    """

    def __init__(
        self,
        handler: Callable[[ServerConnection], Awaitable[None]] | None = None,
        *,
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        **serve_kwargs: Any,
    ) -> None:
        self.handler = handler or self.echo
        self.port = port
        self.ssl_context = ssl_context
        self.serve_kwargs = serve_kwargs
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.received: list[str | bytes] = []
        self.close_codes: list[int | None] = []
        self.connections = 0
        self.subprotocols: list[str | None] = []
        self._server: Any = None
        super().__init__()

    @property
    def url(self) -> str:
        scheme = "wss" if self.ssl_context else "ws"
        host = "localhost" if self.ssl_context else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}"

    async def echo(self, ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async def _wrapped(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.requests.append((ws.request.path, dict(ws.request.headers.raw_items())))
        self.subprotocols.append(ws.subprotocol)
        original_recv = ws.recv

        async def recording_recv(*args: Any, **kwargs: Any) -> Any:
            message = await original_recv(*args, **kwargs)
            self.received.append(message)
            return message

        ws.recv = recording_recv  # type: ignore[method-assign]
        try:
            await self.handler(ws)
        except Exception:
            pass
        finally:
            await ws.wait_closed()
            self.close_codes.append(ws.protocol.close_code)

    async def _start(self) -> None:
        self._server = await serve(self._wrapped, "127.0.0.1", self.port, ssl=self.ssl_context, **self.serve_kwargs)
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


class SilentTcpServer:
    """Accepts TCP connections and never answers (for handshake timeouts)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def __enter__(self) -> SilentTcpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def eventually(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail with AssertionError after ``timeout``.

    A guard against hanging, not a speed check.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} still false after {timeout}s")
        time.sleep(interval)


class AiohttpServer(LoopServer):
    """An aiohttp WebSocket server (not written with websockets) on 127.0.0.1, in a background thread.

    Subclasses implement ``handle(request)``; it is served at ``/`` and ``/ws``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.runner: Any = None
        self.port = 0

    async def handle(self, request: Any) -> Any:
        raise NotImplementedError

    async def _start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/", self.handle)
        app.router.add_get("/ws", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        await self.runner.cleanup()


class ConnectProxy(LoopServer):
    """An HTTP CONNECT proxy on 127.0.0.1 (what corporate proxies speak), recording the targets it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.port = 0
        self._server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = request.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        self.targets.append(target)
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        self._server.close()


class ThreadedServer(LoopServer):
    """Runs an asyncio server factory (a coroutine function returning the server) on its own loop thread."""

    def __init__(self, start: Callable[[], Awaitable[Any]]) -> None:
        super().__init__()
        self._factory = start
        self.server: Any = None

    async def _start(self) -> None:
        self.server = await self._factory()

    async def _stop(self) -> None:
        self.server.close()
        try:
            await asyncio.wait_for(self.server.wait_closed(), 5)
        except Exception:
            pass
