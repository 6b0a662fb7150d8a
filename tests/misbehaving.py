"""A WebSocket server that misbehaves on purpose, for the exploratory-testing tests.

Requests are JSON objects ``{"id": n, "op": ..., ...}``:

* ``echo``: replies ``{"id", "type": "reply", "result": {"echo": <the request's "payload">}}``
  after ``delay`` seconds (so replies can come out of order);
* ``price``: replies ``{"id", "type": "quote", "price": 100 + id}``; with ``?variant=b`` the
  quote for id 3 is 999 (a planted difference);
* ``drop``: never replies;
* ``ackdone``: replies ``{"id", "type": "ack"}`` and at once ``{"id", "type": "done"}``;
* ``close``: closes the connection with 1011.

With ``?noise=SECONDS`` unsolicited ``{"type": "noise", "n": k}`` messages flow meanwhile.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve


async def _handler(ws: ServerConnection) -> None:
    query = {k: v[-1] for k, v in parse_qs(urlsplit(ws.request.path).query).items()}
    noise = float(query.get("noise", "0"))
    variant = query.get("variant", "a")
    tasks: set[asyncio.Task[None]] = set()

    async def make_noise() -> None:
        n = 0
        while True:
            n += 1
            await ws.send(json.dumps({"type": "noise", "n": n}))
            await asyncio.sleep(noise)

    async def reply_later(delay: float, reply: dict[str, Any]) -> None:
        await asyncio.sleep(delay)
        await ws.send(json.dumps(reply))

    if noise:
        tasks.add(asyncio.ensure_future(make_noise()))
    try:
        async for message in ws:
            try:
                request = json.loads(message)
                rid, op = request["id"], request.get("op", "echo")
            except (ValueError, KeyError, TypeError):
                await ws.send("what?")
                continue
            if op == "echo":
                task = asyncio.ensure_future(
                    reply_later(
                        float(request.get("delay", 0)),
                        {
                            "id": rid,
                            "type": "reply",
                            "result": {"echo": request.get("payload")},
                        },
                    )
                )
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            elif op == "price":
                price = 999 if variant == "b" and rid == 3 else 100 + rid
                await ws.send(json.dumps({"id": rid, "type": "quote", "price": price}))
            elif op == "ackdone":
                await ws.send(json.dumps({"id": rid, "type": "ack"}))
                await ws.send(json.dumps({"id": rid, "type": "done"}))
            elif op == "close":
                await ws.close(1011, "closed on request")
                return
            # "drop" and anything else: no reply
    finally:
        for task in tasks:
            task.cancel()


async def start_misbehaving() -> Any:
    """Start the server on a free port of 127.0.0.1 (on the running loop)."""
    return await serve(_handler, "127.0.0.1", 0, ping_interval=None)


def url_of(server: Any, query: str = "") -> str:
    """The ws:// URL of a started server."""
    port = next(iter(server.sockets)).getsockname()[1]
    return f"ws://127.0.0.1:{port}/" + (f"?{query}" if query else "")
