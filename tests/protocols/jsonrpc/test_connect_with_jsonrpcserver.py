"""``protocol="jsonrpc"`` end to end against a jsonrpcserver dispatcher over websockets (real server, 127.0.0.1)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

pytest.importorskip("jsonrpcserver")

import nbsocket as nbs
from tests.protocol_servers.jsonrpc_server import JSONRPCServer
from tests.servers import eventually

pytestmark = pytest.mark.timeout(60)


@pytest.fixture()
def server() -> Iterator[JSONRPCServer]:
    with JSONRPCServer() as srv:
        yield srv


def test_calls_notifications_and_errors(server: JSONRPCServer) -> None:
    rpc = nbs.connect("node", server.url, protocol="jsonrpc")
    assert rpc.call("add", [1, 2]) == 3
    assert rpc.call("add", {"a": 2, "b": 5}) == 7
    rpc.notify("log", {"msg": "x"})
    eventually(lambda: server.logged, timeout=5.0)
    with pytest.raises(nbs.RemoteError) as info:
        rpc.call("fail", {"code": -32001, "message": "nope", "data": {"why": 1}})
    assert info.value.code == -32001 and "nope" in str(info.value) and info.value.data == {"why": 1}
    with pytest.raises(nbs.RemoteError) as missing:
        rpc.call("no_such_method")
    assert missing.value.code == -32601
    assert len(nbs.frame("node")) == 0


def test_server_notifications_are_events_with_topic(server: JSONRPCServer) -> None:
    rpc = nbs.connect("note", server.url, protocol="jsonrpc")
    waiter = rpc.waiter(3)
    assert rpc.call("notify_me", {"n": 3}) == 3
    events = waiter.future.result(5)
    assert [(e.topic, e.data) for e in events] == [("tick", {"n": n}) for n in (1, 2, 3)]
    frame = nbs.frame("note")
    assert frame["topic"].tolist() == ["tick"] * 3 and frame["n"].tolist() == [1, 2, 3]


def test_server_requests_are_answered_with_the_handler_value(server: JSONRPCServer) -> None:
    rpc = nbs.connect("ask", server.url, protocol="jsonrpc", handler=lambda event: {"seen": event.data})
    assert rpc.call("ask", {"method": "question", "params": [1]}) == {"seen": [1]}
    plain = nbs.connect("ask2", server.url, protocol="jsonrpc")  # no handler: Method not found, as json-rpc-2.0 answers
    with pytest.raises(nbs.RemoteError) as info:
        plain.call("ask", {"method": "question"})
    assert info.value.data == {"code": -32601, "message": "Method not found"}


def test_timeout_then_late_reply_is_recorded_not_raised(server: JSONRPCServer) -> None:
    rpc = nbs.connect("slow", server.url, protocol="jsonrpc")
    with pytest.raises(nbs.WaitTimeoutError):
        rpc.call("sleep", [0.5], timeout=0.1)
    eventually(lambda: rpc.transcript()["body"].astype(str).str.contains('"result": 0.5').any(), timeout=5)  # recorded
    assert len(nbs.frame("slow")) == 0
    assert rpc.state == "open" and rpc.call("add", [1, 1]) == 2


def test_keepalive_with_a_slow_handler(server: JSONRPCServer) -> None:
    rpc = nbs.connect("ka", server.url, protocol="jsonrpc", ping_interval=0.5, ping_timeout=0.5, handler=lambda e: time.sleep(2))
    rpc.call("notify_me", {"n": 2})
    time.sleep(2.5)
    assert rpc.state == "open" and rpc.stats.reconnects == 0


def test_malformed_and_reconnect(server: JSONRPCServer) -> None:
    got: list[nbs.WsEvent] = []
    rpc = nbs.connect(
        "mal", server.url, protocol="jsonrpc", handler=got.append, reconnect=nbs.ReconnectPolicy(initial=0.05, maximum=0.2)
    )
    rpc.call("add", [0, 0])
    server.send_raw("not json at all")
    server.send_raw('{"jsonrpc": "2.0", "id": 99999, "result": 1}')  # nobody asked
    eventually(lambda: len(got) == 1, timeout=5.0)
    assert got[0].error and nbs.frame("mal")["data"].tolist() == ["not json at all"]
    server.kick_all(1012)
    eventually(lambda: rpc.stats.reconnects >= 1 and rpc.state == "open", timeout=10)
    assert rpc.call("add", [2, 2]) == 4
