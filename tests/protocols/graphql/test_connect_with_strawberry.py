"""``protocol="graphql-ws"`` (graphql-transport-ws) and ``"graphql-ws-legacy"`` end to end against strawberry (real server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("strawberry")
pytest.importorskip("uvicorn")

import nbsocket as nbs
from tests.protocol_servers.graphql_server import GraphQLServer
from tests.servers import eventually

pytestmark = pytest.mark.timeout(60)
TOKEN = {"token": "good"}


@pytest.fixture()
def server() -> Iterator[GraphQLServer]:
    with GraphQLServer() as srv:
        yield srv


def test_queries_mutations_and_errors(server: GraphQLServer) -> None:
    gql = nbs.connect("api", server.url, protocol="graphql-ws", init_payload=TOKEN)
    assert gql.subprotocol == "graphql-transport-ws"
    assert gql.call("query { hello }") == {"hello": "Hello, world!"}
    assert gql.call("query ($n: String) { hello(name: $n) }", variables={"n": "nb"}) == {"hello": "Hello, nb!"}
    assert gql.call("mutation { add(a: 1, b: 2) }") == {"add": 3}
    with pytest.raises(nbs.RemoteError) as info:
        gql.call('query { fail(message: "nope") }')
    assert "nope" in str(info.value)
    assert len(nbs.frame("api")) == 0  # replies consumed by call never reach the frame
    assert "good" not in repr(gql.options) and "good" not in str(nbs.connections().to_dict())


def test_subscription_events_and_completion(server: GraphQLServer) -> None:
    gql = nbs.connect("subs", server.url, protocol="graphql-ws", init_payload=TOKEN)
    waiter = gql.waiter(3)
    sub = gql.subscribe("subscription { ticks(n: 3) { n } }")
    events = waiter.future.result(5)
    assert [e.topic for e in events] == [sub.topic] * 3 and sub.topic == sub.id
    assert [e.data for e in events] == [{"ticks": {"n": n}} for n in (1, 2, 3)]
    eventually(lambda: not sub.active, timeout=5.0)
    assert gql.subscriptions == []
    frame = nbs.frame("subs")
    assert frame["topic"].tolist() == [sub.id] * 3 and frame["ticks.n"].tolist() == [1, 2, 3]


def test_subscription_error_is_in_the_event_and_ends_it(server: GraphQLServer) -> None:
    gql = nbs.connect("boom", server.url, protocol="graphql-ws", init_payload=TOKEN)
    sub = gql.subscribe("subscription { boom(after: 1) { n } }")
    event = gql.expect(lambda e: e.error is not None, timeout=5)
    assert event.topic == sub.id
    eventually(lambda: not sub.active, timeout=5.0)


def test_cancel_and_reconnect_resubscribes(server: GraphQLServer) -> None:
    gql = nbs.connect(
        "re", server.url, protocol="graphql-ws", init_payload=TOKEN, reconnect=nbs.ReconnectPolicy(initial=0.05, maximum=0.2)
    )
    slow = gql.subscribe("subscription { ticks(n: 100000, delay: 0.05) { n } }")
    other = gql.subscribe("subscription { ticks(n: 100000, delay: 0.05) { n } }")
    gql.expect({"topic": slow.id}, timeout=5)
    other.cancel()
    assert not other.active and [s.id for s in gql.subscriptions] == [slow.id]
    server.kick_all(1012)
    eventually(lambda: gql.stats.reconnects >= 1 and gql.state == "open", timeout=10)
    event = gql.expect({"topic": slow.id, "ticks.n": 1}, timeout=10)  # it starts again from 1 on the new connection
    assert event.data == {"ticks": {"n": 1}}
    assert len(server.connection_params) >= 2
    assert not [e for e in gql.errors if "4409" in e.message]


def test_keepalive_with_a_slow_handler(server: GraphQLServer) -> None:
    gql = nbs.connect("ka", server.url, protocol="graphql-ws", init_payload=TOKEN, keepalive=0.5, handler=lambda e: time.sleep(2))
    gql.subscribe("subscription { ticks(n: 2) { n } }")
    time.sleep(3)
    assert gql.state == "open" and gql.stats.reconnects == 0
    assert gql.call("query { hello }") == {"hello": "Hello, world!"}


def test_refused_init_payload(server: GraphQLServer) -> None:
    with pytest.raises(nbs.ConnectError) as info:
        nbs.connect("bad", server.url, protocol="graphql-ws", init_payload={"token": "wrong-one"})
    assert info.value.kind == "protocol" and "4403" in str(info.value) and "Forbidden" in str(info.value)
    assert "bad" not in nbs.connections()["name"].tolist()
    with pytest.raises(nbs.ConnectError) as legacy:
        nbs.connect("bad", server.url, protocol="graphql-ws-legacy", init_payload={"token": "wrong-one"})
    assert legacy.value.kind == "protocol" and "invalid token" in str(legacy.value)
    assert "bad" not in nbs.connections()["name"].tolist()


def test_legacy_subscription(server: GraphQLServer) -> None:
    gql = nbs.connect("old", server.url, protocol="graphql-ws-legacy", init_payload=TOKEN)
    assert gql.subprotocol == "graphql-ws"
    waiter = gql.waiter(2)
    sub = gql.subscribe("subscription { ticks(n: 2) { n } }")
    assert [e.data["ticks"]["n"] for e in waiter.future.result(5)] == [1, 2]
    eventually(lambda: not sub.active, timeout=5.0)


def test_malformed_message_is_kept_and_call_timeout(server: GraphQLServer) -> None:
    got: list[nbs.WsEvent] = []
    gql = nbs.connect("mal", server.url, protocol="graphql-ws", init_payload=TOKEN, handler=got.append)
    (send,) = list(server._sockets)
    asyncio.run_coroutine_threadsafe(send({"type": "websocket.send", "text": "not json"}), server._loop).result(5)
    eventually(lambda: len(got) == 1, timeout=5.0)
    assert got[0].error and nbs.frame("mal")["data"].tolist() == ["not json"]
    with pytest.raises(nbs.WaitTimeoutError):
        gql.call("subscription { ticks(n: 1, delay: 2) { n } }", timeout=0.3)
    assert gql.call("query { hello }") == {"hello": "Hello, world!"}
    assert gql.state == "open"
