"""A real Socket.IO v4 server for the notebooks and the tests: python-socketio's ``AsyncServer`` on aiohttp.

Usage::

    with SocketIOServer(ping_interval=1, ping_timeout=1) as server:
        server.url        # "ws://127.0.0.1:PORT" (the client adds /socket.io/?EIO=4&transport=websocket)
        server.http_url   # "http://127.0.0.1:PORT" (what python-socketio's own client takes)

What it serves, on the default namespace ``/``:

``echo``      acks with the arguments it got (one argument -> one ack value, several -> several)
``chat``      broadcast as ``chat`` to every client of the namespace (the sender included)
``ask``       the server emits ``question`` with the same arguments to the sender, asking for an ack;
              what the client acks is recorded in ``server.acks`` as ``(namespace, "question", [values])``
``bin_echo``  acks with its arguments and emits them back as a ``bin_echo`` event (binary both ways)
``kick``      the server disconnects the sender from the namespace (Socket.IO DISCONNECT ``41``)

and on ``/admin``, which needs ``auth={"token": "good"}`` (any other auth gets a connect_error whose
message is ``"bad token"``): ``echo`` as above and ``stats`` (acks with ``{"clients": n}``).

Records: ``received`` (``(namespace, event, args)`` for every event), ``acks``, ``connects`` and
``refused`` counters, ``sids(namespace)``. Control from the test thread: ``emit`` (optionally waiting
for the client's ack), ``disconnect_all`` (Engine.IO close packet, a clean server-side disconnect),
``drop_all`` (the transport closes without any Engine.IO/Socket.IO goodbye, as when a process dies),
``restart`` (stop listening and listen again on the same port). ``stop``/``start`` work too.

Use whole seconds for ``ping_interval``: python-engineio advertises ``int(ping_interval) * 1000`` ms,
so 0.5 s goes out as ``pingInterval: 0`` and clients then time out early.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from ...errors import InvalidOptionError

__all__ = ["ADMIN_NAMESPACE", "ADMIN_TOKEN", "SocketIOServer"]

ADMIN_NAMESPACE = "/admin"
ADMIN_TOKEN = "good"


class SocketIOServer:
    """python-socketio ``AsyncServer`` (aiohttp) on 127.0.0.1, a free port, on its own loop thread."""

    def __init__(self, *, ping_interval: float = 25, ping_timeout: float = 20, port: int = 0) -> None:
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.port = port
        self.received: list[tuple[str, str, list[Any]]] = []
        self.acks: list[tuple[str, str, list[Any]]] = []
        self.connects = 0
        self.refused = 0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="socketio-demo-server", daemon=True)
        self._runner: Any = None
        self._sids: dict[str, set[str]] = {"/": set(), ADMIN_NAMESPACE: set()}
        self._lock = threading.Lock()
        self.sio = self._build()

    # --- the application ------------------------------------------------------------

    def _build(self) -> Any:  # a socketio.AsyncServer (python-socketio ships no types)
        import socketio

        sio = socketio.AsyncServer(
            async_mode="aiohttp",
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            cors_allowed_origins="*",
            max_http_buffer_size=10 * 2**20,
        )

        def record(namespace: str, event: str, args: tuple[Any, ...]) -> None:
            with self._lock:
                self.received.append((namespace, event, list(args)))

        for namespace in ("/", ADMIN_NAMESPACE):
            self._register_common(sio, namespace, record)

        async def chat(sid: str, *args: Any) -> None:
            record("/", "chat", args)
            await sio.emit("chat", _as_data(args))

        async def ask(sid: str, *args: Any) -> None:
            record("/", "ask", args)

            def on_ack(*values: Any) -> None:
                with self._lock:
                    self.acks.append(("/", "question", list(values)))

            await sio.emit("question", _as_data(args), to=sid, callback=on_ack)

        async def bin_echo(sid: str, *args: Any) -> Any:
            record("/", "bin_echo", args)
            await sio.emit("bin_echo", _as_data(args), to=sid)
            return args

        async def kick(sid: str, *args: Any) -> None:
            record("/", "kick", args)
            await sio.disconnect(sid)

        async def stats(sid: str, *args: Any) -> Any:
            record(ADMIN_NAMESPACE, "stats", args)
            return {"clients": len(self.sids(ADMIN_NAMESPACE))}

        sio.on("chat", chat)
        sio.on("ask", ask)
        sio.on("bin_echo", bin_echo)
        sio.on("kick", kick)
        sio.on("stats", stats, namespace=ADMIN_NAMESPACE)
        return sio

    def _register_common(self, sio: Any, namespace: str, record: Callable[[str, str, tuple[Any, ...]], None]) -> None:
        """connect/disconnect bookkeeping and ``echo`` for ``namespace``."""
        import socketio

        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            if namespace == ADMIN_NAMESPACE and auth != {"token": ADMIN_TOKEN}:
                with self._lock:
                    self.refused += 1
                raise socketio.exceptions.ConnectionRefusedError("bad token")
            with self._lock:
                self.connects += 1
                self._sids[namespace].add(sid)

        async def disconnect(sid: str, *reason: Any) -> None:
            with self._lock:
                self._sids[namespace].discard(sid)

        async def echo(sid: str, *args: Any) -> Any:
            record(namespace, "echo", args)
            return args

        sio.on("connect", connect, namespace=namespace)
        sio.on("disconnect", disconnect, namespace=namespace)
        sio.on("echo", echo, namespace=namespace)

    # --- lifecycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's base WebSocket URL (no Socket.IO path)."""
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        """The same server as python-socketio's client wants it."""
        return f"http://127.0.0.1:{self.port}"

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        """Run ``coro`` on the server's loop and return its result (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> SocketIOServer:
        """Start listening (on the same port as before after a ``stop``)."""
        if not self._thread.is_alive():
            self._thread.start()
        self.run(self._start())
        return self

    def stop(self) -> None:
        """Stop listening and close every session (the loop thread stays for a later ``start``)."""
        self.run(self._stop())

    def restart(self) -> None:
        """Every session dies with the server; it listens again at once on the same port."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop, cancel the server's background tasks and end the loop thread."""
        try:
            if self._runner is not None:
                self.stop()
            if self._thread.is_alive():
                self.run(self._cancel_tasks())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)

    def __enter__(self) -> SocketIOServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _start(self) -> None:
        from aiohttp import web

        app = web.Application()
        self.sio.attach(app)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def _cancel_tasks(self) -> None:
        """Cancel what python-engineio left running (its service task), so nothing is destroyed pending."""
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _stop(self) -> None:
        await self._drop_all()
        await self._runner.cleanup()
        self._runner = None
        with self._lock:
            for sids in self._sids.values():
                sids.clear()

    # --- control and inspection ---------------------------------------------------------

    def sids(self, namespace: str = "/") -> set[str]:
        """Session ids connected to ``namespace`` right now."""
        with self._lock:
            return set(self._sids[namespace])

    def emit(
        self, event: str, *args: Any, to: str | None = None, namespace: str = "/", ack: bool = False, timeout: float = 10
    ) -> Any:
        """Emit ``event`` to ``to`` (or everyone); with ``ack=True`` wait for the client's ack and return its values.

        The ack's values come back as python-socketio gives them: one value as itself, several as a tuple.
        """
        if ack:
            if to is None:
                raise InvalidOptionError("an ack needs a single recipient: pass to=sid")
            return self.run(self.sio.call(event, _as_data(args), to=to, namespace=namespace, timeout=timeout), timeout + 1)
        return self.run(self.sio.emit(event, _as_data(args), to=to, namespace=namespace))

    def disconnect_all(self) -> None:
        """End every session cleanly: Engine.IO close packet (``1``), then the transport closes."""
        self.run(self.sio.eio.disconnect())

    def drop_all(self) -> None:
        """End every session without a protocol goodbye: only the WebSocket closes."""
        self.run(self._drop_all())

    async def _drop_all(self) -> None:
        for eio_socket in list(self.sio.eio.sockets.values()):
            await eio_socket.queue.put(None)  # the websocket writer stops and closes the transport
        await asyncio.sleep(0.05)


def _as_data(args: tuple[Any, ...] | list[Any]) -> Any:
    """python-socketio's convention: a tuple is several arguments, anything else one (so one stays one)."""
    return args[0] if len(args) == 1 else tuple(args)
