"""A real GraphQL-over-WebSocket server for the notebooks and the tests: strawberry-graphql on Starlette/uvicorn.

It speaks both subprotocols strawberry implements, ``graphql-transport-ws``
(the ``graphql-ws`` library's) and the legacy ``graphql-ws`` (Apollo's
subscriptions-transport-ws), at ``ws://127.0.0.1:PORT/graphql``::

    with GraphQLServer() as server:            # token="good" is required by default
        server.url                             # ws://127.0.0.1:PORT/graphql
        init_payload = {"token": "good"}

Schema::

    type Query        { hello(name: String = "world"): String!     # "Hello, world!"
                        fail(message: String = "boom"): String!    # a GraphQL error
                        whoami: JSON }                             # the connection_init payload
    type Mutation     { add(a: Int!, b: Int!): Int! }
    type Tick         { n: Int! }
    type Subscription { ticks(n: Int = 3, delay: Float = 0.01): Tick!   # n = 1..n, then complete
                        boom(after: Int = 1): Tick! }                    # `after` ticks, then raises

Authentication: ``connection_init`` must carry ``{"token": <token>}``
(``token=None`` turns the check off). Otherwise strawberry refuses: with
``graphql-transport-ws`` it closes the socket with 4403 ``Forbidden``; with the
legacy protocol it sends ``connection_error`` (payload
``{"message": "invalid token"}``) and closes with 1011.

Over the legacy protocol strawberry runs subscriptions only (a query gets an
``error`` "queries are not allowed"); over ``graphql-transport-ws`` it runs
queries, mutations and subscriptions.

``keep_alive=SECONDS`` makes strawberry send legacy ``ka`` messages. The
server runs uvicorn on its own loop in a daemon thread; ``stop()`` then
``start()`` restarts it on the same port (a reconnect test), and
``kick_all(code)`` closes every open WebSocket from the server side.
``connection_params`` lists every ``connection_init`` payload received.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncGenerator
from typing import Any

import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.scalars import JSON
from strawberry.types import Info

from ...errors import DemoServerError

__all__ = ["GraphQLServer", "ResolverError", "schema"]


class ResolverError(Exception):
    """What ``fail`` and ``boom`` raise on purpose: strawberry sends its message to the client as a GraphQL error."""


@strawberry.type
class Tick:
    """One tick of a subscription."""

    n: int


@strawberry.type
class Query:
    @strawberry.field
    def hello(self, name: str = "world") -> str:
        return f"Hello, {name}!"

    @strawberry.field
    def fail(self, message: str = "boom") -> str:
        raise ResolverError(message)

    @strawberry.field
    def whoami(self, info: Info) -> JSON | None:
        context = info.context
        return context.get("connection_params") if isinstance(context, dict) else None


@strawberry.type
class Mutation:
    @strawberry.mutation
    def add(self, a: int, b: int) -> int:
        return a + b


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self, n: int = 3, delay: float = 0.01) -> AsyncGenerator[Tick, None]:
        for i in range(1, n + 1):
            yield Tick(n=i)
            await asyncio.sleep(delay)

    @strawberry.subscription
    async def boom(self, after: int = 1) -> AsyncGenerator[Tick, None]:
        for i in range(1, after + 1):
            yield Tick(n=i)
        raise ResolverError(f"boom after {after} ticks")


class _QuietSchema(strawberry.Schema):
    """A schema that does not log the errors it reports to the client (the tests provoke them on purpose)."""

    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        return None


schema = _QuietSchema(query=Query, mutation=Mutation, subscription=Subscription)
"""The strawberry schema the server serves."""


class _View(GraphQL):
    """strawberry's ASGI view with a token check on ``connection_init``."""

    def __init__(self, server: GraphQLServer, **kwargs: Any) -> None:
        super().__init__(schema, **kwargs)
        self._server = server

    async def on_ws_connect(self, context: Any) -> dict[str, object] | None:
        params = context.get("connection_params") if isinstance(context, dict) else None
        self._server.connection_params.append(params)
        token = self._server.token
        if token is not None and (not isinstance(params, dict) or params.get("token") != token):
            raise ConnectionRejectionError({"message": "invalid token"})
        return {"server": "strawberry"}


class GraphQLServer:
    """strawberry-graphql on uvicorn, on 127.0.0.1 and a free port, in a background thread (a context manager)."""

    def __init__(self, *, token: str | None = "good", keep_alive: float | None = None, port: int = 0) -> None:
        self.token = token
        self.keep_alive = keep_alive
        self.port = port
        self.connection_params: list[Any] = []
        self._view = _View(self, keep_alive=keep_alive is not None, keep_alive_interval=keep_alive or 1, graphql_ide=None)
        self._app = Starlette(routes=[Route("/graphql", self._view), WebSocketRoute("/graphql", self._view)])
        self._sockets: set[Any] = set()  # the ASGI send callables of open WebSockets
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/graphql``."""
        return f"ws://127.0.0.1:{self.port}/graphql"

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The app, remembering open WebSockets so ``kick_all`` can close them."""
        if scope["type"] != "websocket":
            await self._app(scope, receive, send)
            return
        self._sockets.add(send)
        try:
            await self._app(scope, receive, send)
        finally:
            self._sockets.discard(send)

    def start(self) -> GraphQLServer:
        """Listen (on the same port again after ``stop``) and return once uvicorn accepts connections."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._asgi,
            lifespan="off",
            log_level="warning",
            ws="websockets-sansio",
            interface="asgi3",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, args=(self._server, sock), name="graphql-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise DemoServerError("the GraphQL demo server did not start")
            time.sleep(0.01)
        return self

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        finally:
            sock.close()
            loop.close()

    def kick_all(self, code: int = 1012, reason: str = "kicked by the test") -> int:
        """Close every open WebSocket from the server side; returns how many were open."""
        if self._loop is None or not self._sockets:
            return 0
        sends = list(self._sockets)

        async def close_all() -> None:
            for send in sends:
                with contextlib.suppress(Exception):  # a socket that is already closing
                    await send({"type": "websocket.close", "code": code, "reason": reason})

        asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(5)
        return len(sends)

    def stop(self) -> None:
        """Stop uvicorn (open WebSockets are closed) and wait for its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._server = self._thread = self._loop = None

    def close(self) -> None:
        """The same as ``stop`` (every server here has ``close``)."""
        self.stop()

    def __enter__(self) -> GraphQLServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
