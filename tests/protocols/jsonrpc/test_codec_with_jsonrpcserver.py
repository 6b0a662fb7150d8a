"""The JSON-RPC protocol object against a real server (``jsonrpcserver`` dispatch), over a plain ``websockets`` client.

The little driver below does what the runtime will: send what the verbs return,
feed every received message to ``receive`` and write the ``Send`` actions back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from nbsocket.core.protocols.base import Deliver, Malformed, Reply, Send
from nbsocket.core.protocols.jsonrpc import JSONRPC
from tests.protocol_servers.jsonrpc_server import JSONRPCServer


@pytest.fixture(scope="module")
def server() -> Iterator[JSONRPCServer]:
    with JSONRPCServer() as running:
        yield running


class Driver:
    """One :class:`JSONRPC` over one ``websockets`` connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.protocol = JSONRPC()
        self.ws: ClientConnection | None = None
        self.actions: list[Any] = []

    async def open(self) -> Driver:
        self.ws = await connect(self.url)
        await self.send(self.protocol.start(time.monotonic()))
        assert self.protocol.ready
        return self

    async def send(self, messages: list[Any]) -> None:
        for message in messages:
            await self.ws.send(message)

    async def until(self, predicate: Callable[[Any], bool], timeout: float = 5) -> Any:
        """Receive (answering ``Send``) until an action matches ``predicate``; return it."""
        deadline = time.monotonic() + timeout
        while True:
            body = await asyncio.wait_for(self.ws.recv(), max(0.01, deadline - time.monotonic()))
            matched = None
            for action in self.protocol.receive(body, time.monotonic()):
                self.actions.append(action)
                if isinstance(action, Send):
                    await self.ws.send(action.payload)
                if matched is None and predicate(action):
                    matched = action
            if matched is not None:
                return matched

    async def call(self, method: str, params: Any = None) -> Reply:
        call_id, messages = self.protocol.call(method, params)
        await self.send(messages)
        return await self.until(lambda a: isinstance(a, Reply) and a.id == call_id)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_calls_and_error_replies(server):
    async def scenario():
        driver = await Driver(server.url).open()
        assert await driver.call("add", [1, 2]) == Reply(1, value=3)
        assert (await driver.call("add", {"a": 2, "b": 5})).value == 7
        assert (await driver.call("echo", ["x"])).value == "x"
        assert (await driver.call("echo", {"k": [1, None]})).value == {"k": [1, None]}
        failed = await driver.call("fail", {"code": -32042, "message": "nope", "data": {"why": 1}})
        assert failed.error == {"code": -32042, "message": "nope", "data": {"why": 1}}
        unknown = await driver.call("no_such_method")
        assert unknown.error["code"] == -32601
        bad_params = await driver.call("add", [1])
        assert bad_params.error["code"] == -32602
        assert driver.protocol.pending_calls() == []
        await driver.ws.close()

    run(scenario())


def test_concurrent_calls_are_matched_by_id(server):
    async def scenario():
        driver = await Driver(server.url).open()
        slow, messages = driver.protocol.call("sleep", [0.2])
        await driver.send(messages)
        fast = await driver.call("add", [1, 1])
        assert fast.value == 2
        assert (await driver.until(lambda a: isinstance(a, Reply) and a.id == slow)).value == 0.2
        await driver.ws.close()

    run(scenario())


def test_batch(server):
    async def scenario():
        driver = await Driver(server.url).open()
        ids, messages = driver.protocol.call_batch([("add", [1, 2]), ("fail", None), ("echo", ["b"])])
        await driver.send(messages)
        await driver.until(lambda a: isinstance(a, Reply))  # one message with the three replies
        replies = {a.id: a for a in driver.actions if isinstance(a, Reply)}
        assert sorted(replies) == ids
        assert replies[ids[0]].value == 3 and replies[ids[2]].value == "b"
        assert replies[ids[1]].error["code"] == -32001
        await driver.ws.close()

    run(scenario())


def test_notifications_both_ways(server):
    async def scenario():
        driver = await Driver(server.url).open()
        await driver.send(driver.protocol.notify("log", {"msg": "hello"}))
        assert (await driver.call("notify_me", {"n": 2, "method": "tick"})).value == 2
        await driver.until(lambda a: isinstance(a, Deliver) and a.data == {"n": 2})
        assert [(d.topic, d.data, d.ack) for d in driver.actions if isinstance(d, Deliver)] == [
            ("tick", {"n": 1}, None),
            ("tick", {"n": 2}, None),
        ]
        assert {"msg": "hello"} in server.logged  # the notification reached the server (no reply)
        assert server.push("news", ["a", 1]) >= 1
        pushed = await driver.until(lambda a: isinstance(a, Deliver) and a.topic == "news")
        assert pushed.data == ["a", 1] and pushed.ack is None
        await driver.ws.close()

    run(scenario())


def test_server_request_is_acknowledged(server):
    async def scenario():
        driver = await Driver(server.url).open()
        call_id, messages = driver.protocol.call("ask", ["confirm", {"q": "ok?"}])
        await driver.send(messages)
        request = await driver.until(lambda a: isinstance(a, Deliver) and a.topic == "confirm")
        assert request.data == {"q": "ok?"} and request.ack is not None
        await driver.send(driver.protocol.acknowledge(request.ack, {"answer": "yes"}))
        assert (await driver.until(lambda a: isinstance(a, Reply) and a.id == call_id)).value == {"answer": "yes"}
        call_id, messages = driver.protocol.call("ask", ["confirm"])
        await driver.send(messages)
        request = await driver.until(lambda a: isinstance(a, Deliver) and a.topic == "confirm")
        await driver.send(driver.protocol.acknowledge(request.ack, "refused", positive=False))
        failed = await driver.until(lambda a: isinstance(a, Reply) and a.id == call_id)
        assert failed.error["code"] == -32002 and failed.error["data"]["message"] == "refused"
        await driver.ws.close()

    run(scenario())


def test_malformed_both_ways(server):
    async def scenario():
        driver = await Driver(server.url).open()
        await driver.call("echo", ["registered"])  # the server now knows this client (send_raw reaches it)
        server.send_raw("this is not json")
        malformed = await driver.until(lambda a: isinstance(a, Malformed))
        assert "invalid JSON" in malformed.error
        await driver.ws.send("{not json either")  # the server answers with a parse error, id null
        parse_error = await driver.until(lambda a: isinstance(a, Deliver) and a.topic is None)
        assert parse_error.data["code"] == -32700 and "Parse error" in parse_error.error
        assert (await driver.call("add", [2, 2])).value == 4  # still fine
        await driver.ws.close()

    run(scenario())


def test_reconnect_forgets_calls_in_flight(server):
    async def scenario():
        driver = await Driver(server.url).open()
        lost, messages = driver.protocol.call("sleep", [5])
        await driver.send(messages)
        await asyncio.sleep(0.05)
        assert server.kick_all() >= 1
        with pytest.raises(ConnectionClosed):
            await driver.until(lambda a: False)
        driver.protocol.closed()
        assert driver.protocol.cancel_call(lost) == []  # what the runtime does for a call written on a lost connection
        assert driver.protocol.pending_calls() == []
        await driver.open()
        reply = await driver.call("add", [3, 4])
        assert reply.value == 7 and reply.id > lost
        await driver.ws.close()

    run(scenario())


def test_start_functions_name_the_extra_when_a_library_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from nbsocket.demo.protocol_servers import EXTRA, start_jsonrpc_server

    monkeypatch.setitem(sys.modules, "jsonrpcserver", None)  # as if it were not installed
    with pytest.raises(ImportError) as info:
        start_jsonrpc_server()
    assert f"nbsocket[{EXTRA}]" in str(info.value) and "jsonrpcserver" in str(info.value)


def test_start_function_serves_the_methods() -> None:
    from nbsocket.demo.protocol_servers import start_jsonrpc_server

    server = start_jsonrpc_server()
    try:
        assert server.url.startswith("ws://127.0.0.1:") and server.port
    finally:
        server.close()
