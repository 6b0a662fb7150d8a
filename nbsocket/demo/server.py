"""The embedded demo server, for the quickstart, the notebooks, the tests and the benchmarks.

WebSocket endpoints:

* ``/echo``: sends every message back, same frame type.
* ``/ticker?rate=10&symbols=ABC,XYZ&count=0``: JSON ticks ``{"seq", "symbol", "price", "timestamp"}``
  at ``rate`` per second (``rate=max``: as fast as it can send); ``count`` stops after that many.
  Send ``{"op": "subscribe", "symbols": [...]}`` to change the symbols.
* ``/chat``: every message is broadcast to every client of ``/chat``.
* ``/rtm?ticket=...``: behaves like Slack's RTM API: ``hello``, then messages, then a
  ``{"type": "reconnect_url", "url": ...}``; the old ticket expires soon after.
* ``/close/CODE``: accepts, then closes at once with CODE (for reconnect tests).
* ``/notifications``: a subscriber's feed: ``{"type": "subscribed"}`` once it is listening,
  then every notification pushed over HTTP, as ``{"type": "notification", "id", "topic", "text", "ts"}``.

HTTP endpoints: ``/rtm.connect`` returns ``{"ok": true, "url": "ws://.../rtm?ticket=..."}``
(the "pre-call"), ``/notify?topic=...&text=...`` pushes a notification to every
``/notifications`` subscriber and returns ``{"ok": true, "id": N, "delivered": K}`` (a GET:
the WebSocket server speaks no other method), ``/status/CODE`` refuses the handshake with
that status, ``/health`` answers ``ok``.
"""

from __future__ import annotations

import asyncio
import http
import itertools
import json
import logging
import os
import random
import secrets
import socket
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from ..errors import DemoServerError

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ENV_URL", "DemoServer", "ensure_demo_server"]


log = logging.getLogger("nbsocket.demo")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
ENV_URL = "NBSOCKET_DEMO_URL"


def _json_response(status: int, body: Any) -> Response:
    payload = json.dumps(body).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return Response(status, http.HTTPStatus(status).phrase, headers, payload)


def _text_response(status: int, text: str) -> Response:
    payload = text.encode()
    headers = Headers([("Content-Type", "text/plain"), ("Content-Length", str(len(payload)))])
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return Response(status, phrase, headers, payload)


class DemoServer:
    """The demo server; run it with :meth:`serve_forever`, or in a background thread with :meth:`start_in_thread`."""

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        rtm_reconnect_after: float = 5.0,
        rtm_expire_after: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.rtm_reconnect_after = rtm_reconnect_after
        self.rtm_expire_after = rtm_expire_after
        self.received: deque[tuple[str, str | bytes]] = deque(maxlen=10_000)
        """The last messages received, as ``(path, message)``, for checking what clients sent."""
        self._chat: set[ServerConnection] = set()
        self._subscribers: set[ServerConnection] = set()
        self._notifications = itertools.count(1)
        self._tickets: dict[str, float] = {}  # ticket -> expiry (monotonic), inf while current
        self._server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self.connections = 0

    # --- addresses -----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``ws://host:port``."""
        return f"ws://{self.host}:{self.port}"

    def url(self, path: str = "/echo") -> str:
        """The WebSocket URL of an endpoint, e.g. ``url('/ticker?rate=5')``."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def http_url(self, path: str) -> str:
        """The HTTP URL of an endpoint, e.g. ``http_url('/rtm.connect')``."""
        return f"http://{self.host}:{self.port}" + (path if path.startswith("/") else "/" + path)

    def messages(self, path: str | None = None) -> list[str | bytes]:
        """Messages the server received (on ``path`` only, if given)."""
        return [m for p, m in list(self.received) if path is None or p == path]

    def json_messages(self, path: str | None = None) -> list[Any]:
        """The received messages that parse as JSON, parsed (others are left out)."""
        parsed = []
        for message in self.messages(path):
            try:
                parsed.append(json.loads(message))
            except (TypeError, ValueError):
                continue
        return parsed

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening on the running loop (port 0 picks a free port)."""
        self._stopped = asyncio.Event()
        self._server = await serve(
            self._route,
            self.host,
            self.port,
            process_request=self._process_request,
            max_size=2**24,
            ping_interval=20,
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        log.info("demo server listening on %s", self.base_url)

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._stopped is not None:
            self._stopped.set()

    async def wait_stopped(self) -> None:
        """Wait until the server was stopped (after :meth:`start`, on the same loop)."""
        if self._stopped is None:
            raise DemoServerError("the demo server was not started")
        await self._stopped.wait()

    async def serve_forever(self) -> None:
        """Start and run until cancelled."""
        await self.start()
        assert self._stopped is not None
        try:
            await self._stopped.wait()
        finally:
            await self.stop()

    def start_in_thread(self) -> DemoServer:
        """Run the server on its own loop in a daemon thread; returns once it listens."""
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # reported to the starting thread
                error.append(exc)
                ready.set()
                return
            ready.set()
            assert self._stopped is not None
            loop.run_until_complete(self._stopped.wait())
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="nbsocket-demo-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if error:
            raise error[0]
        return self

    def stop_thread(self, timeout: float = 5.0) -> None:
        """Stop a server started with :meth:`start_in_thread`."""
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout)

    def __enter__(self) -> DemoServer:
        return self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop_thread()

    # --- HTTP side ---------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        path = parts.path
        if path == "/health":
            return _text_response(200, "ok\n")
        if path == "/rtm.connect":
            return _json_response(200, {"ok": True, "url": self._new_rtm_url(request)})
        if path == "/notify":
            return _json_response(200, self._notify(parse_qs(parts.query)))
        if path.startswith("/status/"):
            try:
                status = int(path.rsplit("/", 1)[1])
            except ValueError:
                status = 400
            return _text_response(status, f"refused with {status} on purpose\n")
        if path == "/rtm":
            ticket = parse_qs(parts.query).get("ticket", [""])[0]
            expiry = self._tickets.get(ticket)
            if expiry is None or time.monotonic() > expiry:
                return _json_response(401, {"ok": False, "error": "invalid_auth" if expiry is None else "ticket_expired"})
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _text_response(426, "this is a WebSocket server; connect with ws://\n")
        return None

    def _new_rtm_url(self, request: Request | None = None) -> str:
        ticket = secrets.token_urlsafe(12)
        self._tickets[ticket] = float("inf")
        host = self.host
        if request is not None and request.headers.get("Host"):
            host_header = request.headers["Host"]
            return f"ws://{host_header}/rtm?ticket={ticket}"
        return f"ws://{host}:{self.port}/rtm?ticket={ticket}"

    # --- WebSocket side -------------------------------------------------------------------

    async def _route(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None  # a connection reaches its handler after the handshake
        parts = urlsplit(ws.request.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        try:
            if path == "/echo":
                await self._echo(ws, path)
            elif path == "/ticker":
                await self._ticker(ws, query)
            elif path == "/chat":
                await self._chat_room(ws)
            elif path == "/notifications":
                await self._notifications_feed(ws)
            elif path == "/rtm":
                await self._rtm(ws, query)
            elif path.startswith("/close/"):
                code = int(path.rsplit("/", 1)[1])
                await ws.close(code, "closed at once on purpose")
            else:
                await ws.close(1008, f"no endpoint {path}")
        except Exception as exc:  # a client going away mid-send is normal
            log.debug("demo server: %s on %s", exc, path)

    async def _echo(self, ws: ServerConnection, path: str) -> None:
        async for message in ws:
            self.received.append((path, message))
            await ws.send(message)

    async def _ticker(self, ws: ServerConnection, query: dict[str, str]) -> None:
        rate_text = query.get("rate", "10")
        rate = 0.0 if rate_text in ("max", "0") else float(rate_text)
        count = int(query.get("count", "0"))
        symbols = [s for s in query.get("symbols", "ABC,XYZ,QRS").split(",") if s]
        rng = random.Random(int(query["seed"]) if "seed" in query else None)
        prices = dict.fromkeys(symbols, 100.0)
        state = {"symbols": symbols}

        async def listen() -> None:
            async for message in ws:
                self.received.append(("/ticker", message))
                try:
                    command = json.loads(message)
                except ValueError:
                    continue
                if isinstance(command, dict) and command.get("op") == "subscribe" and command.get("symbols"):
                    state["symbols"] = [str(s) for s in command["symbols"]]
                    for s in state["symbols"]:
                        prices.setdefault(s, 100.0)

        listener = asyncio.ensure_future(listen())
        try:
            start = time.monotonic()
            for seq in itertools.count(1):
                if count and seq > count:
                    break
                syms = state["symbols"]
                symbol = syms[seq % len(syms)]
                price = prices[symbol] = round(max(0.01, prices[symbol] * (1 + rng.gauss(0, 0.001))), 4)
                await ws.send(f'{{"seq":{seq},"symbol":"{symbol}","price":{price},"timestamp":{time.time():.6f}}}')
                if rate:
                    delay = start + seq / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                elif seq % 256 == 0:
                    await asyncio.sleep(0)
            await ws.close(1000, "ticker finished")
        finally:
            listener.cancel()

    async def _chat_room(self, ws: ServerConnection) -> None:
        self._chat.add(ws)
        try:
            async for message in ws:
                self.received.append(("/chat", message))
                broadcast(self._chat, message)
        finally:
            self._chat.discard(ws)

    def _notify(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """Push a notification to every ``/notifications`` subscriber (the HTTP side of the REST-and-WebSocket pattern)."""
        notification = {
            "type": "notification",
            "id": next(self._notifications),
            "topic": query.get("topic", ["general"])[-1],
            "text": query.get("text", [""])[-1],
            "ts": f"{time.time():.6f}",
        }
        broadcast(self._subscribers, json.dumps(notification))
        return {"ok": True, "id": notification["id"], "delivered": len(self._subscribers)}

    async def _notifications_feed(self, ws: ServerConnection) -> None:
        self._subscribers.add(ws)
        try:
            await ws.send(json.dumps({"type": "subscribed", "subscribers": len(self._subscribers)}))
            async for message in ws:
                self.received.append(("/notifications", message))
        finally:
            self._subscribers.discard(ws)

    async def _rtm(self, ws: ServerConnection, query: dict[str, str]) -> None:
        ticket = query.get("ticket", "")
        reconnect_after = float(query.get("reconnect_after", self.rtm_reconnect_after))
        interval = float(query.get("interval", "0.2"))
        await ws.send(json.dumps({"type": "hello"}))
        counter = itertools.count(1)

        async def listen() -> None:
            async for message in ws:
                self.received.append(("/rtm", message))

        listener = asyncio.ensure_future(listen())
        try:
            started = time.monotonic()
            sent_reconnect = False
            while True:
                await asyncio.sleep(interval)
                n = next(counter)
                await ws.send(
                    json.dumps({"type": "message", "channel": "C1", "text": f"message {n}", "ts": f"{time.time():.6f}"})
                )
                if not sent_reconnect and time.monotonic() - started >= reconnect_after:
                    sent_reconnect = True
                    assert ws.request is not None  # (after the handshake)
                    new_url = f"ws://{ws.request.headers.get('Host', f'{self.host}:{self.port}')}/rtm?" + "&".join(
                        f"{k}={v}" for k, v in {**query, "ticket": self._issue_ticket()}.items()
                    )
                    await ws.send(json.dumps({"type": "reconnect_url", "url": new_url}))
                    self._tickets[ticket] = time.monotonic() + self.rtm_expire_after
                if sent_reconnect and time.monotonic() > self._tickets.get(ticket, 0):
                    await ws.close(4001, "ticket expired: use the reconnect_url")
                    return
        finally:
            listener.cancel()

    def _issue_ticket(self) -> str:
        ticket = secrets.token_urlsafe(12)
        self._tickets[ticket] = float("inf")
        return ticket


def _reachable(url: str, timeout: float = 0.5) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or DEFAULT_HOST, parts.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


_embedded: DemoServer | None = None
_embedded_lock = threading.Lock()


def ensure_demo_server() -> str:
    """The base URL (``ws://host:port``) of a running demo server.

    Uses ``$NBSOCKET_DEMO_URL`` when it points at a live server (``nbsocket demo``
    and Binder set it), otherwise starts one in a background thread on a free port.
    """
    global _embedded
    env = os.environ.get(ENV_URL)
    if env and _reachable(env):
        return env.rstrip("/")
    with _embedded_lock:
        if _embedded is None:
            _embedded = DemoServer(port=0).start_in_thread()
        return _embedded.base_url
