"""The GraphQL protocol objects against a real server (strawberry-graphql), over a plain ``websockets`` client.

The little driver below does what the runtime will: open the socket with the
protocol's subprotocols, send what ``start`` returns, feed every received
message to ``receive`` and write the ``Send`` actions back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from nbsocket.core.protocols.base import Deliver, Housekeeping, Protocol, Ready, Refused, Reply, Send
from nbsocket.core.protocols.graphql import GraphQLWS, refusal_reason
from nbsocket.core.protocols.graphql_legacy import GraphQLWSLegacy
from tests.protocol_servers.graphql_server import GraphQLServer

GOOD = {"token": "good"}


@pytest.fixture(scope="module")
def server() -> Iterator[GraphQLServer]:
    with GraphQLServer(keep_alive=0.05) as running:
        yield running


class Driver:
    """One protocol object over one ``websockets`` connection (reopened by :meth:`reconnect`)."""

    def __init__(self, url: str, protocol: Protocol) -> None:
        self.url, self.protocol = url, protocol
        self.ws: ClientConnection | None = None
        self.actions: list[Any] = []

    async def open(self) -> Driver:
        self.ws = await connect(self.url, subprotocols=list(self.protocol.subprotocols) or None)
        await self.send(self.protocol.start(time.monotonic()))
        return self

    async def reconnect(self) -> None:
        self.protocol.closed()
        await self.open()

    async def send(self, messages: list[Any]) -> None:
        for message in messages:
            await self.ws.send(message)

    async def until(self, predicate: Callable[[Any], bool], timeout: float = 5) -> Any:
        """Receive (answering ``Send``) until an action matches ``predicate``; return it."""
        deadline = time.monotonic() + timeout
        while True:
            body = await asyncio.wait_for(self.ws.recv(), max(0.01, deadline - time.monotonic()))
            matched = None
            for action in self.protocol.receive(body, time.monotonic()):  # the whole batch, then the match
                self.actions.append(action)
                if isinstance(action, Send):
                    await self.ws.send(action.payload)
                if matched is None and predicate(action):
                    matched = action
            if matched is not None:
                return matched

    async def ready(self) -> Ready:
        return await self.until(lambda a: isinstance(a, Ready))

    async def reply(self, call_id: str) -> Reply:
        return await self.until(lambda a: isinstance(a, Reply) and a.id == call_id)

    def delivered(self, topic: str) -> list[Deliver]:
        return [a for a in self.actions if isinstance(a, Deliver) and a.topic == topic]

    async def close(self) -> None:
        await self.ws.close()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def is_complete(sub_id: str) -> Callable[[Any], bool]:
    return lambda a: isinstance(a, Housekeeping) and a.what.startswith(f"complete {sub_id} ")


# --- graphql-transport-ws ------------------------------------------------------------------


def test_handshake_and_calls(server):
    async def scenario():
        driver = await Driver(server.url, GraphQLWS(init_payload=GOOD)).open()
        assert driver.ws.subprotocol == "graphql-transport-ws"
        assert (await driver.ready()).info == {"server": "strawberry"}
        call_id, messages = driver.protocol.call("query Hi($name: String!) { hello(name: $name) }", {"name": "nb"})
        await driver.send(messages)
        assert (await driver.reply(call_id)).value == {"hello": "Hello, nb!"}
        call_id, messages = driver.protocol.call("mutation { add(a: 2, b: 3) }")
        await driver.send(messages)
        assert (await driver.reply(call_id)).value == {"add": 5}
        call_id, messages = driver.protocol.call("{ whoami }")
        await driver.send(messages)
        assert (await driver.reply(call_id)).value == {"whoami": GOOD}
        call_id, messages = driver.protocol.call('{ fail(message: "nope") }')
        await driver.send(messages)
        failed = await driver.reply(call_id)
        assert failed.error["message"] == "nope (at fail)" and failed.error["data"]["data"] is None
        call_id, messages = driver.protocol.call("{ nosuchfield }")
        await driver.send(messages)
        invalid = await driver.reply(call_id)
        assert "nosuchfield" in invalid.error["message"]
        assert driver.protocol.pending_calls() == []
        await driver.close()

    run(scenario())


def test_subscription_runs_to_complete(server):
    async def scenario():
        driver = await Driver(server.url, GraphQLWS(init_payload=GOOD)).open()
        await driver.ready()
        sub_id, topic, messages = driver.protocol.subscribe("subscription T($n: Int) { ticks(n: $n) { n } }", {"n": 3})
        await driver.send(messages)
        await driver.until(is_complete(sub_id))
        assert [d.data for d in driver.delivered(topic)] == [{"ticks": {"n": i}} for i in (1, 2, 3)]
        assert not driver.protocol.is_active(sub_id)
        await driver.close()

    run(scenario())


def test_subscription_that_errors(server):
    async def scenario():
        driver = await Driver(server.url, GraphQLWS(init_payload=GOOD)).open()
        await driver.ready()
        boom, _, messages = driver.protocol.subscribe("subscription { boom(after: 2) { n } }")
        await driver.send(messages)
        await driver.until(is_complete(boom))
        delivered = driver.delivered(boom)
        assert [d.data for d in delivered] == [{"boom": {"n": 1}}, {"boom": {"n": 2}}, None]
        assert delivered[-1].error == "boom after 2 ticks"
        invalid, _, messages = driver.protocol.subscribe("subscription { nosuch }")
        await driver.send(messages)
        final = await driver.until(lambda a: isinstance(a, Deliver) and a.topic == invalid)
        assert final.data is None and "nosuch" in final.error
        assert driver.protocol.active_subscriptions() == []
        await driver.close()

    run(scenario())


def test_unsubscribe_stops_the_stream(server):
    async def scenario():
        driver = await Driver(server.url, GraphQLWS(init_payload=GOOD)).open()
        await driver.ready()
        sub_id, _, messages = driver.protocol.subscribe("subscription { ticks(n: 100000, delay: 0.01) { n } }")
        await driver.send(messages)
        await driver.until(lambda a: isinstance(a, Deliver))
        await driver.send(driver.protocol.unsubscribe(sub_id))
        count = len(driver.delivered(sub_id))
        call_id, messages = driver.protocol.call("{ hello }")  # the connection still works
        await driver.send(messages)
        await driver.reply(call_id)
        await asyncio.sleep(0.1)
        with pytest.raises(asyncio.TimeoutError):
            await driver.until(lambda a: isinstance(a, Deliver), timeout=0.2)
        assert len(driver.delivered(sub_id)) <= count + 2  # only what was already on its way
        await driver.close()

    run(scenario())


def test_bad_token_is_refused_with_4403(server):
    async def scenario():
        driver = await Driver(server.url, GraphQLWS(init_payload={"token": "bad"})).open()
        with pytest.raises(ConnectionClosed):
            await driver.ready()
        assert not driver.protocol.ready
        assert driver.ws.protocol.close_code == 4403
        reason = refusal_reason(driver.ws.protocol.close_code, driver.ws.protocol.close_reason)
        assert reason.startswith("Forbidden (4403") and "connection_init" in reason

    run(scenario())


def test_subscriptions_come_back_after_reconnect_in_order(server):
    async def scenario():
        driver = Driver(server.url, GraphQLWS(init_payload=GOOD))
        first, _, early = driver.protocol.subscribe("subscription { ticks(n: 100000, delay: 0.02) { n } }")
        assert early == []  # before the socket: sent with the handshake
        await driver.open()
        await driver.ready()
        second, _, messages = driver.protocol.subscribe("subscription { ticks(n: 100000, delay: 0.02) { n } }")
        await driver.send(messages)
        await driver.until(lambda a: isinstance(a, Deliver) and a.topic == second)
        assert server.kick_all() >= 1
        with pytest.raises(ConnectionClosed):
            await driver.until(lambda a: False)
        driver.actions.clear()
        await driver.reconnect()
        await driver.ready()
        resent = [a.payload for a in driver.actions if isinstance(a, Send)]
        assert [f'"id":"{first}"' in resent[0], f'"id":"{second}"' in resent[1]] == [True, True]
        await driver.until(lambda a: isinstance(a, Deliver) and a.topic == first)
        await driver.until(lambda a: isinstance(a, Deliver) and a.topic == second)
        assert driver.protocol.active_subscriptions() == [first, second]
        await driver.close()

    run(scenario())


# --- legacy subscriptions-transport-ws (strawberry's "graphql-ws") --------------------------


def test_legacy_subscription_call_and_keepalive(server):
    async def scenario():
        driver = await Driver(server.url, GraphQLWSLegacy(init_payload=GOOD, keepalive=5)).open()
        assert driver.ws.subprotocol == "graphql-ws"
        assert (await driver.ready()).info == {"server": "strawberry"}
        sub_id, topic, messages = driver.protocol.subscribe("subscription { ticks(n: 2) { n } }")
        await driver.send(messages)
        await driver.until(is_complete(sub_id))
        assert [d.data for d in driver.delivered(topic)] == [{"ticks": {"n": 1}}, {"ticks": {"n": 2}}]
        await driver.until(lambda a: isinstance(a, Housekeeping) and a.what == "ka")
        assert driver.protocol.next_deadline() is not None  # armed by the server's ka
        # strawberry runs only subscriptions over the legacy protocol: a one-result subscription as a call
        call_id, messages = driver.protocol.call("subscription { ticks(n: 1) { n } }")
        await driver.send(messages)
        assert (await driver.reply(call_id)).value == {"ticks": {"n": 1}}
        call_id, messages = driver.protocol.call("{ hello }")
        await driver.send(messages)
        assert (await driver.reply(call_id)).error["message"] == "queries are not allowed"
        boom, _, messages = driver.protocol.subscribe("subscription { boom(after: 1) { n } }")
        await driver.send(messages)
        await driver.until(is_complete(boom))
        assert driver.delivered(boom)[-1].error == "boom after 1 ticks"
        await driver.close()

    run(scenario())


def test_legacy_unsubscribe(server):
    async def scenario():
        driver = await Driver(server.url, GraphQLWSLegacy(init_payload=GOOD)).open()
        await driver.ready()
        sub_id, _, messages = driver.protocol.subscribe("subscription { ticks(n: 100000, delay: 0.01) { n } }")
        await driver.send(messages)
        await driver.until(lambda a: isinstance(a, Deliver))
        [stop] = driver.protocol.unsubscribe(sub_id)
        assert '"type":"stop"' in stop
        await driver.send([stop])
        await asyncio.sleep(0.1)
        with pytest.raises(asyncio.TimeoutError):
            await driver.until(lambda a: isinstance(a, Deliver), timeout=0.2)
        await driver.close()

    run(scenario())


def test_legacy_bad_token_is_refused(server):
    async def scenario():
        driver = await Driver(server.url, GraphQLWSLegacy(init_payload={"token": "bad"})).open()
        refused = await driver.until(lambda a: isinstance(a, (Refused, Ready)))
        assert refused == Refused("invalid token")

    run(scenario())
