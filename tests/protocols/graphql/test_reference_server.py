"""``protocol="graphql-ws"`` against the reference implementation: graphql-ws 6.4.2's ``useServer`` on Node (graphql 16).

The server is ``protocol_servers/node/graphql_server.js``; its ``raw`` mutation makes it send a message as is on
the connection (ids nobody uses, malformed messages), which the reference itself never would.
"""

from __future__ import annotations

import json

import pytest

import nbsocket as nbs
from tests.servers import eventually

from ...protocol_servers.node_servers import NodeServer, node_graphql  # noqa: F401  (a fixture)

pytestmark = pytest.mark.timeout(60)

TOKEN = {"token": "good"}
AFTER_A_SECOND = nbs.ReconnectPolicy(initial=1.0, maximum=2.0, jitter=0.0)
"""Reconnect a second after a drop: a test calls while the socket is down."""


def connect(name: str, server: NodeServer, **options: object) -> nbs.ProtocolConnection:
    return nbs.connect(name, server.url, protocol="graphql-ws", init_payload=TOKEN, **options)


def test_queries_mutations_and_errors(node_graphql: NodeServer) -> None:
    gql = connect("api", node_graphql)
    assert gql.subprotocol == "graphql-transport-ws"
    assert gql.call("query { hello }") == {"hello": "Hello, world!"}
    assert gql.call("query ($n: String) { hello(name: $n) }", variables={"n": "nb"}) == {"hello": "Hello, nb!"}
    assert gql.call("mutation { add(a: 1, b: 2) }") == {"add": 3}
    with pytest.raises(nbs.RemoteError) as resolver:
        gql.call('query { fail(message: "it broke") }')
    assert str(resolver.value) == "it broke (at fail)" and resolver.value.data["data"] == {"fail": None}
    with pytest.raises(nbs.RemoteError) as invalid:  # a validation error: graphql-ws answers with an `error` message
        gql.call("query { nope }")
    assert 'Cannot query field "nope"' in str(invalid.value)
    assert len(nbs.frame("api")) == 0 and gql.errors == []


def test_subscriptions_complete_and_error(node_graphql: NodeServer) -> None:
    gql = connect("subs", node_graphql)
    waiter = gql.waiter(3)
    sub = gql.subscribe("subscription { ticks(n: 3) { n } }")
    assert [e.data for e in waiter.future.result(10)] == [{"ticks": {"n": n}} for n in (1, 2, 3)]
    eventually(lambda: not sub.active, timeout=10)
    boom = gql.subscribe("subscription { boom(after: 1) { n } }")
    failed = gql.expect(lambda e: e.topic == boom.id and e.error is not None, timeout=10)
    assert failed.error == "boom" and failed.data is None
    eventually(lambda: not boom.active, timeout=10)
    assert gql.subscriptions == [] and gql.errors == []


def test_a_refused_init_payload_is_a_connect_error(node_graphql: NodeServer) -> None:
    with pytest.raises(nbs.ConnectError) as info:
        nbs.connect("bad", node_graphql.url, protocol="graphql-ws", init_payload={"token": "wrong-one"})
    assert info.value.kind == "protocol" and "Forbidden (4403" in str(info.value)
    assert "bad" not in nbs.connections()["name"].tolist()


def test_replies_to_unknown_operations_are_recorded_in_conn_errors(node_graphql: NodeServer) -> None:
    gql = connect("unknown", node_graphql)
    sub = gql.subscribe("subscription { ticks(n: 1000, delayMs: 20) { n } }")
    gql.expect({"topic": sub.id}, timeout=10)
    sub.cancel()
    for message in (
        {"id": "999", "type": "next", "payload": {"data": {}}},
        {"id": "998", "type": "complete"},
        {"id": sub.id, "type": "next", "payload": {"data": {}}},
    ):  # the last: after the client ended it
        assert gql.call("mutation ($t: String!) { raw(text: $t) }", variables={"t": json.dumps(message)}) == {"raw": True}
    unknown = eventually(lambda: [e for e in gql.errors if e.error == "UnknownReply"] or None, timeout=10)
    eventually(lambda: len([e for e in gql.errors if e.error == "UnknownReply"]) == 2, timeout=10)
    assert "'999'" in unknown[0].message and not [e for e in gql.errors if f"'{sub.id}'" in e.message]
    assert gql.state == "open" and len(nbs.frame("unknown")) == 1  # the one tick delivered before the cancel


def test_a_malformed_message_is_kept_with_its_error(node_graphql: NodeServer) -> None:
    got: list[nbs.WsEvent] = []
    gql = connect("malformed", node_graphql, handler=got.append)
    for text in ("not json", json.dumps({"type": "next", "id": 7, "payload": {}})):
        gql.call("mutation ($t: String!) { raw(text: $t) }", variables={"t": text})
    eventually(lambda: len(got) == 2, timeout=10)
    assert [e.data for e in got] == [None, None] and "invalid JSON" in got[0].error and "non-empty string" in got[1].error
    assert nbs.frame("malformed")["data"].tolist()[0] == "not json"
    assert gql.call("query { hello }") == {"hello": "Hello, world!"}


def test_calls_across_reconnects_and_resubscription(node_graphql: NodeServer) -> None:
    gql = connect("again", node_graphql, reconnect=AFTER_A_SECOND)
    sub = gql.subscribe("subscription { ticks(n: 100000, delayMs: 20) { n } }")
    gql.expect({"topic": sub.id}, timeout=10)
    assert gql.call("mutation { drop(afterMs: 1000) }") == {"drop": True}
    with pytest.raises(nbs.SocketClosedError) as lost:  # written, then the connection was dropped under it
        gql.call("query { slow(ms: 20000) }", timeout=30)
    assert "'again' (connection 1, opened " in str(lost.value) and "graphql-ws call" in str(lost.value)
    eventually(lambda: gql.state == "reconnecting", timeout=10)
    assert gql.call("query { hello }", timeout=30) == {"hello": "Hello, world!"}  # sent once the socket was back
    assert gql.stats.reconnects == 1
    gql.expect({"topic": sub.id}, timeout=10)
    assert sub.active and not [e for e in gql.errors if "4409" in e.message]
    operations = gql.call("query { operations }")["operations"]
    assert operations.count(sub.id) == 2  # subscribed again on the new connection, once
