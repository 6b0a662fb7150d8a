"""Servers the explore tests run against, written without websockets (aiohttp), on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from ..servers import AiohttpServer


class ReplyServer(AiohttpServer):
    """An aiohttp WebSocket server that answers each JSON request as it asks.

    A request ``{"id": n, ...}`` gets ``{"id": n, "echo": <the request>, "ts": <now>, **fields}`` after ``delay``
    seconds, where ``reply`` (a dict in the request) gives ``fields``; ``{"op": "silent"}`` gets no answer, and
    ``"twice": true`` sends the answer again. A JSON-RPC request (``"jsonrpc"``, ``"method"``) gets the result
    ``{"method", "params", **changed}``. ``changed`` (a dict set by the test) overrides fields of every answer, as a
    server whose replies changed would; ``silent`` stops all answers. ``seen_headers`` and ``seen_queries`` keep
    each handshake's headers and query.
    """

    def __init__(self) -> None:
        super().__init__()
        self.changed: dict[str, Any] = {}
        self.silent = False
        self._open: set[Any] = set()
        self.seen_headers: list[dict[str, str]] = []
        self.seen_queries: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def handle(self, request: Any) -> Any:
        from aiohttp import WSMsgType, web

        self.seen_headers.append(dict(request.headers))
        self.seen_queries.append(dict(request.query))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._open.add(ws)
        pending: set[asyncio.Task[None]] = set()

        async def answer(message: dict[str, Any]) -> None:
            if "jsonrpc" in message and "method" in message:
                result = {"method": message["method"], "params": message.get("params"), **self.changed}
                await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": message.get("id"), "result": result}))
                return
            await asyncio.sleep(float(message.get("delay", 0)))
            reply = {"id": message.get("id"), "echo": message, "ts": time.time(), **message.get("reply", {}), **self.changed}
            for _ in range(2 if message.get("twice") else 1):
                await ws.send_str(json.dumps(reply))

        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            try:
                message = json.loads(frame.data)
            except ValueError:
                await ws.send_str(f"not JSON: {frame.data}")
                continue
            if not isinstance(message, dict) or message.get("op") == "silent" or self.silent:
                continue
            task = asyncio.ensure_future(answer(message))
            pending.add(task)
            task.add_done_callback(pending.discard)
        for task in pending:
            task.cancel()
        self._open.discard(ws)
        return ws

    async def _stop(self) -> None:
        for ws in list(self._open):  # clients still connected: close them, or stopping waits for them
            await ws.close(code=1001, message=b"server stopping")
        await super()._stop()
