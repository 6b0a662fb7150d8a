"""``max_queue`` bounds a socket's receive backlog against a real server: a socket whose handler is stuck stops
reading (TCP pushes back on the server), loses nothing, and holds up no other socket."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from websockets.asyncio.server import ServerConnection

import nbsocket as nbs
from nbsocket.runtime.transport.wire import READ_SIZE

from ..servers import WsServer, eventually

TOTAL = 6_000
"""Messages the flooding server sends: 24 MB, more than the kernel's socket buffers hold between the two ends."""
PAD = "x" * 4_000
FRAME_SIZE = 4 + 6 + len(PAD)
"""A message's frame on the wire (a 4-byte header, then the body)."""
PER_READ = READ_SIZE // FRAME_SIZE + 1
"""The most messages one read completes: the read that crosses ``max_queue`` is still handed over."""


class Servers:
    """``/flood`` sends TOTAL numbered messages as fast as the socket takes them; ``/paced`` one every 10 ms.
    Served without compression, so the wire carries every byte of each message."""

    def __init__(self) -> None:
        self.flood_sent = 0

    async def handler(self, ws: ServerConnection) -> None:
        if ws.request.path == "/paced":
            n = 0
            while True:
                await ws.send(str(n))
                n += 1
                await asyncio.sleep(0.01)
        for n in range(TOTAL):
            await ws.send(f"{n:06d}{PAD}")
            self.flood_sent = n + 1
        await ws.wait_closed()


@pytest.mark.parametrize("max_queue", [64, 1])
def test_a_stuck_handler_bounds_the_backlog_loses_nothing_and_stalls_no_other_socket(max_queue: int) -> None:
    servers = Servers()
    release = threading.Event()
    got: list[str] = []
    paced: list[str] = []

    def stuck(event: nbs.WsEvent) -> None:
        if not got:
            release.wait(30)
        got.append(event.data[:6])
        time.sleep(0.0001)  # slower than the server once released too: reading pauses and resumes many times

    with WsServer(servers.handler, compression=None) as server:
        nbs.connect("paced", server.url + "/paced", content_type="text/plain", handler=lambda e: paced.append(e.data))
        flood = nbs.connect("flood", server.url + "/flood", content_type="text/plain", handler=stuck, max_queue=max_queue)
        bound = max_queue + PER_READ
        backlogs: list[int] = []
        sampling = True

        def sample() -> None:
            while sampling:
                received = flood.received  # read before handled: never an underestimate
                backlogs.append(received - flood.handled)
                time.sleep(0.0005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            eventually(lambda: flood.received > max_queue, what="the flood reached max_queue")
            before = len(paced)
            time.sleep(1.0)  # the handler is stuck: the backlog stays where the pause left it
            assert flood.handled == 0
            assert max_queue < flood.received <= bound
            assert servers.flood_sent < TOTAL, "the server was held back (TCP), not read into memory"
            assert len(paced) - before >= 20, "the other socket kept receiving while this one waited"
            release.set()
            eventually(lambda: flood.handled == TOTAL, timeout=60, what="every message handled")
        finally:
            release.set()
            sampling = False
            sampler.join(5)
    assert got == [f"{n:06d}" for n in range(TOTAL)]
    assert max(backlogs) <= bound, (max(backlogs), bound)


def test_max_queue_none_reads_without_bound() -> None:
    servers = Servers()
    release = threading.Event()
    with WsServer(servers.handler, compression=None) as server:
        flood = nbs.connect(
            "flood", server.url + "/flood", content_type="text/plain", handler=lambda e: release.wait(30), max_queue=None
        )
        try:
            eventually(lambda: flood.received == TOTAL, timeout=30, what="the whole flood read while the handler is stuck")
            assert flood.handled == 0
        finally:
            release.set()
