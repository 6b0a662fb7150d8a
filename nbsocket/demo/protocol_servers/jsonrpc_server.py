"""A real JSON-RPC 2.0 server over WebSocket for the notebooks and the tests.

``jsonrpcserver`` dispatch in a ``websockets`` server.

Each WebSocket text message is handed to ``jsonrpcserver.async_dispatch``, which
does the JSON-RPC work (parse errors, invalid requests, unknown methods, batches,
notifications); its answer, if any, is sent back. Requests run concurrently, so
a slow method does not hold up the others::

    with JSONRPCServer() as server:
        server.url                         # ws://127.0.0.1:PORT/
        server.push("tick", {"n": 1})      # a notification to every client
        server.send_raw("not json")        # anything, to every client (malformed-input tests)

Methods:

=================================  ==============================================================
``add(a, b)``                      ``a + b`` (by position or by name)
``echo(*args, **kwargs)``          the single argument, the list of them, or the named ones
``fail(code=-32001, message, data)`` an error reply with that code, message and data
``sleep(seconds)``                 answers ``seconds`` after that long (timeout tests)
``notify_me(n=1, method="tick")``  answers ``n``, then sends ``n`` notifications
                                   ``method`` with params ``{"n": 1..n}``
``ask(method, params=None)``       sends the *client* a request ``method`` (id ``"srv-N"``),
                                   waits for its answer and returns its result (or an error
                                   ``-32002`` carrying the client's error)
``log(*args, **kwargs)``           records its params in ``server.logged`` (send it as a notification)
=================================  ==============================================================

The server runs on its own loop in a daemon thread, on 127.0.0.1 and a free
port; ``stop()`` then ``start()`` restarts it on the same port, and
``kick_all(code)`` closes every client from the server side. ``received`` lists
every text message the server got.

``push``/``send_raw``/``kick_all`` reach the clients whose connection handler
is running: a client that has just connected may not be counted yet (answer
one call first, or wait for ``clients``).
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import threading
from typing import Any

from jsonrpcserver import Error, Result, Success, async_dispatch
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["METHODS", "JSONRPCServer"]

_after_reply: contextvars.ContextVar[list[Any]] = contextvars.ContextVar("after_reply")
"""Coroutines a method wants run once its answer is sent (each dispatch task has its own list)."""


class _Session:
    """One client connection: the context ``jsonrpcserver`` passes to every method."""

    def __init__(self, server: JSONRPCServer, ws: ServerConnection) -> None:
        self.server = server
        self.ws = ws
        self.waiting: dict[str, asyncio.Future[Any]] = {}


async def _add(session: _Session, a: Any, b: Any) -> Result:
    return Success(a + b)


async def _echo(session: _Session, *args: Any, **kwargs: Any) -> Result:
    if kwargs:
        return Success(kwargs)
    return Success(args[0] if len(args) == 1 else list(args))


async def _fail(session: _Session, code: int = -32001, message: str = "it failed on purpose", data: Any = None) -> Result:
    return Error(code, message, data)


async def _sleep(session: _Session, seconds: float) -> Result:
    await asyncio.sleep(seconds)
    return Success(seconds)


async def _notify_me(session: _Session, n: int = 1, method: str = "tick") -> Result:
    async def push() -> None:
        for i in range(1, n + 1):
            await session.ws.send(json.dumps({"jsonrpc": "2.0", "method": method, "params": {"n": i}}))

    _after_reply.get().append(push())
    return Success(n)


async def _ask(session: _Session, method: str, params: Any = None) -> Result:
    request_id = f"srv-{next(session.server.request_ids)}"
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    session.waiting[request_id] = future
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        request["params"] = params
    await session.ws.send(json.dumps(request))
    try:
        answer = await asyncio.wait_for(future, 10)
    except asyncio.TimeoutError:
        return Error(-32003, f"the client did not answer {method!r}")
    finally:
        session.waiting.pop(request_id, None)
    if "error" in answer:
        return Error(-32002, "the client answered with an error", answer["error"])
    return Success(answer.get("result"))


async def _log(session: _Session, *args: Any, **kwargs: Any) -> Result:
    session.server.logged.append(kwargs if kwargs else list(args))
    return Success(None)


METHODS = {"add": _add, "echo": _echo, "fail": _fail, "sleep": _sleep, "notify_me": _notify_me, "ask": _ask, "log": _log}
"""The methods the server offers (name -> coroutine function taking the session first)."""


class JSONRPCServer:
    """JSON-RPC 2.0 over WebSocket on 127.0.0.1 and a free port, in a background thread (a context manager)."""

    def __init__(self, *, port: int = 0) -> None:
        self.port = port
        self.received: list[str] = []
        self.logged: list[Any] = []
        self.request_ids = itertools.count(1)
        self._sessions: set[_Session] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="jsonrpc-server", daemon=True)
        self._server: Server | None = None

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/``."""
        return f"ws://127.0.0.1:{self.port}/"

    def _run(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # --- lifecycle ----------------------------------------------------------------

    def start(self) -> JSONRPCServer:
        """Listen (on the same port again after ``stop``)."""
        if not self._thread.is_alive():
            self._thread.start()

        async def listen() -> Server:
            server: Server = await serve(self._handle, "127.0.0.1", self.port)
            return server

        self._server = self._run(listen())
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop listening and close every client (1001); the loop thread stays for a later ``start``."""
        server, self._server = self._server, None
        if server is None:
            return

        async def close() -> None:
            server.close()
            await server.wait_closed()

        self._run(close())

    def close(self) -> None:
        """Stop and end the loop thread (no later ``start``)."""
        self.stop()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self) -> JSONRPCServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- pushing to clients ----------------------------------------------------------

    @property
    def clients(self) -> int:
        """How many clients are connected now."""
        return len(self._sessions)

    def send_raw(self, text: str | bytes) -> int:
        """Send ``text`` as is to every client; returns how many got it."""
        sessions = list(self._sessions)

        async def send_all() -> None:
            for session in sessions:
                try:
                    await session.ws.send(text)
                except ConnectionClosed:
                    pass  # a client that is going away

        self._run(send_all())
        return len(sessions)

    def push(self, method: str, params: Any = None) -> int:
        """Send the notification ``method(params)`` to every client; returns how many got it."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        return self.send_raw(json.dumps(message))

    def kick_all(self, code: int = 1012, reason: str = "kicked by the test") -> int:
        """Start closing every client from the server side; returns how many there were.

        It does not wait for the closing handshakes (the caller may be the very
        loop that has to answer them).
        """
        sessions = list(self._sessions)

        async def close_all() -> None:
            for session in sessions:
                self._closing.add(asyncio.create_task(session.ws.close(code, reason)))
                self._closing = {task for task in self._closing if not task.done()}

        self._run(close_all())
        return len(sessions)

    # --- serving -------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        session = _Session(self, ws)
        self._sessions.add(session)
        tasks: set[asyncio.Task[None]] = set()
        try:
            async for message in ws:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                self.received.append(text)
                if self._answers_a_server_request(session, text):
                    continue
                task = asyncio.create_task(self._dispatch(session, text))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            self._sessions.discard(session)
            for task in tasks:
                task.cancel()

    @staticmethod
    def _answers_a_server_request(session: _Session, text: str) -> bool:
        """Route the client's answer to an ``ask`` request to its waiter; True when it was one."""
        try:
            message = json.loads(text)
        except ValueError:
            return False
        answers = message if isinstance(message, list) else [message]
        if not answers or not all(isinstance(a, dict) and "method" not in a and a.get("id") in session.waiting for a in answers):
            return False
        for answer in answers:
            future = session.waiting.get(answer["id"])
            if future is not None and not future.done():
                future.set_result(answer)
        return True

    async def _dispatch(self, session: _Session, text: str) -> None:
        session_after: list[Any] = []
        _after_reply.set(session_after)  # this task's own context
        response = await async_dispatch(text, methods=METHODS, context=session)
        try:
            if response:
                await session.ws.send(response)
            for coro in session_after:
                await coro
        except Exception:
            for coro in session_after:
                if asyncio.iscoroutine(coro):
                    coro.close()
