"""Secrets never shown; shutdown closes everything; a server not written with websockets (aiohttp)."""

from __future__ import annotations

import logging
import threading
import time

import aiohttp
import pytest
from aiohttp import web

import nbsocket as nbs
from nbsocket.runtime.manager import default_manager

from .servers import AiohttpServer, WsServer, eventually

SECRET_PW = "pw-Zq81x"
SECRET_TOKEN = "tkn-77Hh2q"
SECRET_BEARER = "bearer-Qq12ws"


def test_secrets_do_not_appear_in_repr_status_errors_or_logs(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="nbsocket")

    def failing(event):
        raise RuntimeError(f"handler saw {event.request.url}")

    with WsServer() as server:
        url = server.url.replace("ws://", f"ws://alice:{SECRET_PW}@") + f"/feed?token={SECRET_TOKEN}&x=1"
        conn = nbs.connect(
            "s",
            url,
            handler=failing,
            headers={"Authorization": f"Bearer {SECRET_BEARER}"},
            reconnect=nbs.ReconnectPolicy(initial=0.05, maximum=0.1),
        )
        waiter = conn.waiter(1)
        conn.send("hello")
        event = waiter.future.result(5)[0]
        eventually(lambda: conn.errors)
        server.stop()
        eventually(lambda: conn.state == "reconnecting")
        eventually(lambda: len(conn.errors) >= 3)
        shown = [
            repr(conn),
            str(conn.url),
            repr(event),
            repr(event.request),
            nbs.connections().to_string(),
            str(conn.status()),
            "\n".join(f"{r} {r.traceback}" for r in conn.errors),
            caplog.text,
            str(conn.options.shown_headers()),
        ]
        with pytest.raises(nbs.ConnectError) as info:
            nbs.connect("s2", url, open_timeout=2)
        shown.append(str(info.value))
        text = "\n".join(shown)
        for secret in (SECRET_PW, SECRET_TOKEN, SECRET_BEARER):
            assert secret not in text, secret
        assert "alice" not in conn.url and "x=1" in conn.url
        assert "handler saw ws://***:***@" in conn.errors[0].message


def test_shutdown_closes_every_socket_with_1001_and_stops_the_thread() -> None:
    with WsServer() as server:
        for i in range(20):
            nbs.connect(f"s{i}", server.url)
        eventually(lambda: server.connections == 20)
        thread = default_manager.loop_thread._thread
        started = time.monotonic()
        nbs.shutdown()
        elapsed = time.monotonic() - started
        assert elapsed < 2.5
        assert thread is not None and not thread.is_alive()
        eventually(lambda: len(server.close_codes) == 20)
        assert set(server.close_codes) == {1001}
    assert not any(t.name.startswith("nbsocket-loop") and t.is_alive() for t in threading.enumerate())
    assert len(nbs.connections()) == 0


def test_the_loop_starts_again_after_shutdown(demo) -> None:
    nbs.connect("a", demo.url("/echo"))
    nbs.shutdown()
    conn = nbs.connect("a", demo.url("/echo"))
    assert conn.test()


class AiohttpEcho(AiohttpServer):
    """Sends a greeting, then echoes text and binary frames; remembers what it received."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[object] = []

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("chat.v1",))
        await ws.prepare(request)
        await ws.send_str('{"hello": "from aiohttp"}')
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.received.append(msg.data)
                await ws.send_str(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                self.received.append(msg.data)
                await ws.send_bytes(msg.data)
        return ws


def test_against_an_aiohttp_server() -> None:
    seen = []
    with AiohttpEcho() as server:
        conn = nbs.connect("aio", f"ws://127.0.0.1:{server.port}/ws", handler=seen.append, subprotocols=["chat.v1"])
        assert conn.subprotocol == "chat.v1"
        conn.send({"n": 1})
        conn.send(b"\x00bin")
        eventually(lambda: len(seen) == 3)
        assert seen[0].data == {"hello": "from aiohttp"} and seen[0].seq == 1
        assert seen[1].data == {"n": 1} and not seen[1].request.is_binary
        assert seen[2].request.is_binary and seen[2].request.body == b"\x00bin"
        assert server.received == ['{"n":1}', b"\x00bin"]
        nbs.disconnect("aio")
        assert conn.state == "closed"


def test_options_repr_hides_header_values_and_secrets() -> None:
    from nbsocket.core.options import build_options

    options = build_options(
        "ws://h/?token=" + SECRET_TOKEN, headers={"Authorization": "Bearer " + SECRET_BEARER}, secrets=[SECRET_PW]
    )
    shown = repr(options)
    assert "Authorization" in shown and "secrets=<1 hidden>" in shown
    for secret in (SECRET_TOKEN, SECRET_BEARER, SECRET_PW):
        assert secret not in shown
