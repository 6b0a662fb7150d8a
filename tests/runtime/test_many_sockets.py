"""What one process pays per socket: a loop of thousands of connects must not cost more per socket as sockets add up.

The proxy the environment gives a URL is looked up once while the environment stays the same (and again when it
changes); a socket that only receives keeps no writer task, no dispatcher task and no finished settle task.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import logging
from typing import Any

import pytest

import nbsocket as nbs
from nbsocket.runtime.manager import default_manager
from nbsocket.runtime.transport import PROXIES

from ..servers import ConnectProxy, ThreadedServer, WsServer, eventually


@pytest.mark.skipif(not PROXIES, reason="websockets 14 connects through no proxy")
def test_the_environment_proxy_is_followed_as_it_changes(demo, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "https_proxy", "HTTPS_PROXY", "ws_proxy", "WS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with ConnectProxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        via = nbs.connect("via-env", demo.url("/echo"))  # proxy=True: the environment's
        assert via.request({"n": 1}, timeout=5).data == {"n": 1}
        nbs.connect("via-env-2", demo.url("/echo"))
        assert proxy.targets == [f"127.0.0.1:{demo.port}"] * 2
        monkeypatch.setenv("no_proxy", "127.0.0.1")  # the environment changed: looked up again
        assert nbs.connect("bypassed", demo.url("/echo")).test()
        monkeypatch.delenv("no_proxy")
        monkeypatch.delenv("http_proxy")
        assert nbs.connect("direct", demo.url("/echo")).test()
        assert len(proxy.targets) == 2
        nbs.remove("via-env")  # before the proxy goes
        nbs.remove("via-env-2")


def _tasks_of(name: str) -> list[str]:
    async def names() -> list[str]:
        return sorted(t.get_name() for t in asyncio.all_tasks() if t.get_name().endswith(f"-{name}"))

    return default_manager.loop_thread.run(names())


def test_a_socket_that_only_receives_keeps_one_task_of_its_own() -> None:
    async def feed(ws: object) -> None:
        await ws.send("hello")  # type: ignore[attr-defined]
        await ws.wait_closed()  # type: ignore[attr-defined]

    seen: list[str] = []
    with WsServer(feed) as server:
        conn = nbs.connect("quiet", server.url, content_type="text/plain", handler=lambda event: seen.append(event.data))
        eventually(lambda: len(seen) == 1)
        assert _tasks_of("quiet") == ["nbsocket-quiet"]  # the session's supervisor only: no writer, no dispatcher
        conn.send("hi")  # the first send starts the writer
        eventually(lambda: conn.stats.messages_out == 1)
        assert _tasks_of("quiet") == ["nbsocket-quiet", "nbsocket-writer-quiet"]

        async def on_message(event: nbs.WsEvent) -> None:
            seen.append(event.data)

        conn.on_message(on_message)  # an async handler: its items go through the dispatcher's task
        conn.send("again")
        server_sends = server.run(_send_all(server, "more"))
        assert server_sends == 1
        eventually(lambda: seen.count("more") == 2)
        assert "nbsocket-dispatch-quiet" in _tasks_of("quiet")


async def _send_all(server: WsServer, text: str) -> int:
    count = 0
    for ws in list(server._server.connections):  # type: ignore[union-attr]
        await ws.send(text)
        count += 1
    return count


def test_a_socket_keeps_few_tracked_objects_beyond_a_bare_client() -> None:
    """The collector's full passes visit every tracked object of the process, and a loop of connects makes them
    happen again and again as the heap grows: what a socket keeps is what each pass costs per socket. Measured
    against bare ``websockets`` clients with a reader task each, on the same loop and the same in-process server."""

    async def quiet(ws: object) -> None:
        await ws.wait_closed()  # type: ignore[attr-defined]

    count = 50
    with WsServer(quiet) as server:
        nbs.connect("warm", server.url, handler=lambda e: None)
        kept: list[object] = []

        async def bare() -> None:
            from websockets.asyncio.client import connect

            async def reader(ws: object) -> None:
                async for _ in ws:  # type: ignore[attr-defined]
                    pass

            for _ in range(count):
                ws = await connect(server.url)
                kept.append((ws, asyncio.ensure_future(reader(ws))))

        def per_socket(open_them: object) -> float:
            logging.disable(logging.CRITICAL)  # the log records pytest keeps would count too
            try:
                gc.collect()
                before = len(gc.get_objects())
                open_them()  # type: ignore[operator]
                gc.collect()
                return (len(gc.get_objects()) - before) / count
            finally:
                logging.disable(logging.NOTSET)

        bare_clients = per_socket(lambda: default_manager.loop_thread.run(bare()))
        sockets = per_socket(lambda: [nbs.connect(f"s{i}", server.url, handler=lambda e: None) for i in range(count)])
    assert sockets - bare_clients < 100, (sockets, bare_clients)


def test_a_steady_trickle_of_messages_leaves_no_container_behind_for_the_old_generation() -> None:
    """A container made per message (or per drain of a socket's lane) that lives until the next one outlives two
    young collections and is counted in the old generation: with thousands of quiet sockets those set off a full
    collection every few seconds."""
    from nbsocket.runtime.dispatch.lane import SerialLane
    from nbsocket.runtime.dispatch.workers import WorkerPool

    pool = WorkerPool(max_workers=1)
    ran: list[int] = []
    lane: SerialLane[int] = SerialLane(ran.extend, lambda: pool)
    waiters = lane._idle_waiters
    try:
        for n in range(20):
            lane.push(n)
            eventually(lambda n=n: len(ran) == n + 1)  # type: ignore[misc]
            eventually(lambda: not lane.busy)
        assert lane._idle_waiters is waiters  # nobody waited: the same (empty) list, not one per drain
    finally:
        pool.shutdown()


class FrameRecorder:
    """A server written by hand: it answers the handshake, then records every frame the client sends (opcode, payload)
    and answers pings with pongs, as every server does."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []
        self.port = 0

    async def start(self) -> Any:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        key = next(line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith("sec-websocket-key"))
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n"
        )
        try:
            while True:
                first, second = await reader.readexactly(2)
                length = second & 0x7F
                if length == 126:
                    length = int.from_bytes(await reader.readexactly(2), "big")
                elif length == 127:
                    length = int.from_bytes(await reader.readexactly(8), "big")
                mask = await reader.readexactly(4)
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(await reader.readexactly(length)))
                opcode = first & 0x0F
                self.frames.append((opcode, payload))
                if opcode == 0x9:  # ping: pong
                    writer.write(bytes([0x8A, len(payload)]) + payload)
                elif opcode == 0x8:
                    writer.write(bytes([0x88, 2]) + (1000).to_bytes(2, "big"))
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass


def test_a_plain_socket_pings_as_its_handshake_completes_and_settles_on_that_pong() -> None:
    recorder = FrameRecorder()
    with ThreadedServer(recorder.start):
        url = f"ws://127.0.0.1:{recorder.port}/"
        nbs.connect("plain", url, ping_interval=None)
        eventually(lambda: recorder.frames)
        opening = recorder.frames[0]
        assert opening[0] == 0x9 and len(opening[1]) == 4  # the first frame after the handshake: a ping
        assert len(recorder.frames) == 1  # and the only one: the open settled on its pong

        # with on_open, what it sends goes before the ping the open settles on (a refusal of it is seen)
        recorder.frames.clear()
        nbs.connect("hello", url, ping_interval=None, content_type="text/plain", on_open=lambda conn: conn.send("hi"))
        eventually(lambda: len(recorder.frames) >= 3)
        opcodes = [opcode for opcode, _ in recorder.frames]
        assert opcodes[0] == 0x9 and opcodes[-1] == 0x9 and opcodes.index(0x1) < len(opcodes) - 1
        assert recorder.frames[-1][1] != recorder.frames[0][1]  # a ping of its own, after what on_open sent
        nbs.remove("plain")
        nbs.remove("hello")
