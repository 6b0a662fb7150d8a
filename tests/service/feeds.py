"""What the service tests run against: a feed server that remembers every message it sent, and stream readers.

:class:`FeedServer` answers ``ws://127.0.0.1:PORT/<socket>`` with ``{"socket": <socket>, "n": <k>}`` every
``interval`` seconds, ``n`` counting per socket name across connections, and keeps, for each message
it handed to a connection, the socket, ``n``, when and on which connection. A message counts as
sent once ``send`` returned: after a client is killed, sends fail and nothing more is counted.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ..servers import WsServer

__all__ = ["FEED_FILE", "FeedServer", "Sent", "read_stream"]


@dataclass(frozen=True)
class Sent:
    socket: str
    n: int
    at: float
    connection: int


class FeedServer(WsServer):
    """Per-socket numbered feeds (see the module); ``sent`` lists every message sent, ``close_codes`` each close."""

    def __init__(self, interval: float = 0.01) -> None:
        super().__init__(self.feed)
        self.interval = interval
        self.sent: list[Sent] = []
        self._counters: dict[str, itertools.count[int]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    async def feed(self, ws: ServerConnection) -> None:
        socket = ws.request.path.strip("/").split("?")[0]
        connection = next(self._ids)
        with self._lock:
            counter = self._counters.setdefault(socket, itertools.count(1))
        try:
            while True:
                n = next(counter)
                await ws.send(json.dumps({"socket": socket, "n": n}))
                self.sent.append(Sent(socket, n, time.time(), connection))
                await asyncio.sleep(self.interval)
        except ConnectionClosed:
            pass

    def sent_by_socket(self) -> dict[str, list[Sent]]:
        out: dict[str, list[Sent]] = {}
        for item in list(self.sent):
            out.setdefault(item.socket, []).append(item)
        return out


FEED_FILE = """
import os
import nbsocket as nbs

URL = os.environ["FEED_URL"]
RECORD = os.environ["FEED_RECORD"]
for i in range(int(os.environ.get("FEED_SOCKETS", "9"))):
    nbs.connect(f"feed{i:02d}", f"{URL}/feed{i:02d}", record=RECORD, reconnect=True)
"""
"""A feed file as a user writes one: ordinary nbsocket calls, configured by environment variables."""


async def _read(url: str, subject: str, idle: float) -> list[Any]:
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe(subject, ordered_consumer=True)
        messages = []
        while True:
            try:
                messages.append(await sub.next_msg(timeout=idle))
            except (asyncio.TimeoutError, TimeoutError, Exception) as exc:
                if "timeout" in type(exc).__name__.lower():
                    break
                raise
        await sub.unsubscribe()
        return messages
    finally:
        await nc.close()


def read_stream(url: str, subject: str, idle: float = 1.0) -> list[Any]:
    """Every message JetStream holds on ``subject`` (from the start), with its headers."""
    return asyncio.run(_read(url, subject, idle))
