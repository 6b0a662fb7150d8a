"""Network faults injected by a TCP proxy: cuts, half-open links, a server that stops reading, a slow link."""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc

import pytest

import nbsocket as nbs

from ..servers import WsServer, eventually
from .proxy import FaultProxy

FAST = nbs.ReconnectPolicy(initial=0.05, maximum=0.3, stable_after=1.0)


async def big_feed(ws) -> None:  # type: ignore[no-untyped-def]
    padding = "x" * 100_000
    for i in range(1, 10**9):
        await ws.send(json.dumps({"i": i, "pad": padding}))
        await asyncio.sleep(0.002)


def test_connection_cut_mid_message_is_survived() -> None:
    events = []
    with WsServer(big_feed) as server, FaultProxy(server.port) as proxy:
        conn = nbs.connect("cut", proxy.url, handler=events.append, reconnect=FAST, frame=False)
        eventually(lambda: len(events) >= 5)
        for _ in range(3):
            before = conn.stats.reconnects
            proxy.cut()
            eventually(lambda before=before: conn.stats.reconnects > before and conn.state == "open")
        count = len(events)
        eventually(lambda: len(events) > count + 3)
    assert all(e.error is None and len(e.data["pad"]) == 100_000 for e in events)  # no torn message delivered
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert any("1006" in r.message for r in conn.errors)


def test_half_open_link_is_detected_by_the_ping_timeout() -> None:
    with WsServer() as server, FaultProxy(server.port) as proxy:
        conn = nbs.connect("half", proxy.url, ping_interval=0.2, ping_timeout=0.3, open_timeout=0.5, reconnect=FAST)
        proxy.blackhole(True)  # no FIN, no RST: bytes just stop
        eventually(lambda: conn.state != "open", timeout=10)  # "closing" at once, while the close handshake times out
        eventually(lambda: any("1011" in r.message or "keepalive" in r.message.lower() for r in conn.errors), timeout=10)
        proxy.blackhole(False)
        eventually(lambda: conn.state == "open", timeout=15)
        waiter = conn.waiter(1)
        conn.send({"alive": True})
        assert waiter.future.result(5)[0].data == {"alive": True}


def test_a_server_that_stops_reading_fills_the_bounded_outbox_and_says_so() -> None:
    async def never_reads(ws) -> None:  # type: ignore[no-untyped-def]
        await ws.wait_closed()

    with WsServer(never_reads, close_timeout=0.5) as server:
        conn = nbs.connect(
            "stuck", server.url, outbox_size=50, ping_interval=None, content_type="text/plain", compression=None, send_timeout=0.2
        )
        chunk = "y" * 65_536
        tracemalloc.start()
        baseline = None
        error = None
        for i in range(5_000):
            try:
                conn.send(chunk)
            except nbs.OutboxFullError as exc:
                error = exc
                break
            if i == 60:
                baseline = tracemalloc.get_traced_memory()[0]
            time.sleep(0.001)
        assert error is not None, "the outbox never filled"
        assert "the server is not reading" in str(error) and conn.queued == 50
        # it stays full and memory stays flat: further sends are refused, not buffered
        assert "after waiting 0.2 s" in str(error)  # it waited for room before giving up
        for _ in range(200):
            with pytest.raises(nbs.OutboxFullError):
                conn.send(chunk, timeout=0)
        current = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert baseline is not None and current - baseline < 10 * 2**20
        assert conn.test()


def test_slow_network_keeps_order_and_shows_in_latency() -> None:
    with WsServer() as server, FaultProxy(server.port) as proxy:
        proxy.delay = 0.05
        conn = nbs.connect("slow", proxy.url, ping_interval=0.2, ping_timeout=5, open_timeout=5)
        waiter = conn.waiter(20)
        for i in range(20):
            conn.send({"i": i})
        events = waiter.future.result(30)
        assert [e.data["i"] for e in events] == list(range(20))
        eventually(lambda: (conn.last_latency or 0) >= 0.09, timeout=10)


def test_proxy_refusing_then_recovering() -> None:
    with WsServer() as server, FaultProxy(server.port) as proxy:
        conn = nbs.connect("r", proxy.url, reconnect=FAST)
        proxy.refuse(True)
        proxy.cut()
        eventually(lambda: conn.state == "reconnecting")
        time.sleep(0.5)
        assert conn.state == "reconnecting"
        proxy.refuse(False)
        eventually(lambda: conn.state == "open", timeout=10)
