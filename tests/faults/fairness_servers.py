"""Servers for the fairness tests (aiohttp, so not written with websockets), run as their own process.

    python -m tests.faults.fairness_servers ticker|echo

Prints ``ready PORT`` and serves ``/ws`` until stdin closes. Each runs in its own
process, with its own interpreter lock and loop, as real external servers do (a
busy echo server must not slow the ticker down: that would measure the server).

* ``ticker`` sends ``{"n": i}`` every 10 ms and answers ``{"id": k}`` with
  ``{"id": k, "pong": true}``;
* ``echo`` sends every text message back.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from typing import Any

from aiohttp import WSMsgType, web


async def ticker(request: Any) -> Any:
    ws = web.WebSocketResponse()
    await ws.prepare(request)

    async def tick() -> None:
        for n in itertools.count(1):
            await ws.send_str(json.dumps({"n": n}))
            await asyncio.sleep(0.01)

    ticking = asyncio.ensure_future(tick())
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str(json.dumps({"id": json.loads(message.data)["id"], "pong": True}))
    finally:
        ticking.cancel()
    return ws


async def echo(request: Any) -> Any:
    ws = web.WebSocketResponse(max_msg_size=0)
    await ws.prepare(request)
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            await ws.send_str(message.data)
    return ws


async def start(handler: Any) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def main(which: str) -> None:
    _, port = await start({"ticker": ticker, "echo": echo}[which])
    print(f"ready {port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
