"""``protocol="jsonrpc"`` against the reference implementation: json-rpc-2.0 1.8.1's ``JSONRPCServerAndClient`` on Node.

The server (``protocol_servers/node/jsonrpc_server.js``) is the library as its README wires it over ``ws``. Where
the server asks the client something, it checks the answer itself (``isJSONRPCResponse``, the id) and reports the
raw response back, so these tests see exactly what reached the reference.
"""

from __future__ import annotations

from typing import Any

import pytest

import nbsocket as nbs
from tests.servers import eventually

from ...protocol_servers.node_servers import NodeServer, node_jsonrpc  # noqa: F401  (a fixture)

pytestmark = pytest.mark.timeout(60)

AFTER_A_SECOND = nbs.ReconnectPolicy(initial=1.0, maximum=2.0, jitter=0.0)
"""Reconnect a second after a drop: a test calls while the socket is down."""


def answering(event: nbs.WsEvent) -> Any:
    """The client's handler: ``double`` answers twice its number, ``explode`` raises, the rest answer nothing."""
    if event.topic == "explode":
        raise ValueError("it exploded")
    if event.topic == "double":
        return event.data * 2
    return None


def test_calls_and_the_reference_errors(node_jsonrpc: NodeServer) -> None:
    rpc = nbs.connect("rpc", node_jsonrpc.url, protocol="jsonrpc")
    assert rpc.call("add", [1, 2]) == 3 and rpc.call("add", {"a": 2, "b": 5}) == 7
    assert rpc.call("echo", {"k": [1, None, "x"]}) == {"k": [1, None, "x"]}
    with pytest.raises(nbs.RemoteError) as failed:
        rpc.call("fail", {"code": -32042, "message": "nope", "data": {"why": 1}})
    assert (failed.value.code, str(failed.value), failed.value.data) == (-32042, "nope", {"why": 1})
    with pytest.raises(nbs.RemoteError) as thrown:
        rpc.call("throw", {"message": "it broke"})
    assert (thrown.value.code, str(thrown.value)) == (0, "it broke")  # the library's default for a plain Error
    with pytest.raises(nbs.RemoteError) as missing:
        rpc.call("no_such_method")
    assert (missing.value.code, str(missing.value)) == (-32601, "Method not found")
    assert len(nbs.frame("rpc")) == 0  # replies consumed by call never reach the frame


def test_notifications_both_ways(node_jsonrpc: NodeServer) -> None:
    rpc = nbs.connect("notes", node_jsonrpc.url, protocol="jsonrpc")
    rpc.notify("log", {"msg": "hello"})
    rpc.notify("log", ["positional"])
    assert rpc.call("logged") == [{"msg": "hello"}, ["positional"]]  # in order, and no reply was sent for them
    waiter = rpc.waiter(3)
    assert rpc.call("notify_me", {"n": 3}) == 3
    assert [(e.topic, e.data, e.ack_token) for e in waiter.future.result(10)] == [("tick", {"n": n}, None) for n in (1, 2, 3)]
    assert nbs.frame("notes")["topic"].tolist() == ["tick"] * 3


def test_server_requests_are_answered_as_the_reference_answers(node_jsonrpc: NodeServer) -> None:
    """A value, a handler that raises (code 0 and its message, like a throwing json-rpc-2.0 method), a request no
    handler takes (-32601 "Method not found"), and a request whose id is null (a request, so it is answered)."""
    rpc = nbs.connect("asked", node_jsonrpc.url, protocol="jsonrpc", handler=answering)

    def ask(**params: Any) -> dict[str, Any]:
        report = rpc.call("ask", params, timeout=15)
        assert "timeout" not in report, f"the client never answered {params}"
        assert report["checks"]["is_response"] and report["checks"]["id_matches"], report
        return report["response"]

    assert ask(method="double", params=21) == {"jsonrpc": "2.0", "id": "srv-1", "result": 42}
    assert ask(method="explode") == {"jsonrpc": "2.0", "id": "srv-2", "error": {"code": 0, "message": "it exploded"}}
    assert ask(method="other") == {"jsonrpc": "2.0", "id": "srv-3", "result": None}  # a handler ran and returned None
    assert ask(method="double", params=2, null_id=True) == {"jsonrpc": "2.0", "id": None, "result": 4}
    assert [e for e in rpc.errors if e.error == "ValueError"]  # the handler's failure is recorded, the socket goes on
    assert rpc.state == "open"

    unhandled = nbs.connect("unhandled", node_jsonrpc.url, protocol="jsonrpc")  # no handler at all
    report = unhandled.call("ask", {"method": "double", "params": 1}, timeout=15)
    assert report["response"]["error"] == {"code": -32601, "message": "Method not found"}
    assert report["checks"] == {
        "is_response": True,
        "id_matches": True,
        "has_result": False,
        "has_error": True,
        "error_code_is_integer": True,
        "error_message_is_string": True,
    }


def test_a_late_reply_is_recorded_in_conn_errors(node_jsonrpc: NodeServer) -> None:
    rpc = nbs.connect("late", node_jsonrpc.url, protocol="jsonrpc")
    with pytest.raises(nbs.WaitTimeoutError):
        rpc.call("sleep", [0.5], timeout=0.1)
    record = eventually(lambda: next((e for e in rpc.errors if e.error == "UnknownReply"), None), timeout=10)
    assert "which no call is waiting for" in record.message
    assert rpc.call("add", [1, 1]) == 2 and len(nbs.frame("late")) == 0


def test_a_call_made_while_reconnecting_is_sent_on_the_new_connection(node_jsonrpc: NodeServer) -> None:
    rpc = nbs.connect("again", node_jsonrpc.url, protocol="jsonrpc", reconnect=AFTER_A_SECOND)
    with pytest.raises(nbs.SocketClosedError):
        rpc.call("drop_after", {"ms": 0}, timeout=30)
    eventually(lambda: rpc.state == "reconnecting", timeout=10)
    assert rpc.call("add", [20, 22], timeout=30) == 42  # waited in the outbox, written once the socket was back
    assert rpc.stats.reconnects == 1 and rpc.call("calls").count("add") == 1


def test_a_call_written_on_a_lost_connection_fails_at_once_naming_it(node_jsonrpc: NodeServer) -> None:
    rpc = nbs.connect("lost", node_jsonrpc.url, protocol="jsonrpc", reconnect=AFTER_A_SECOND)
    with pytest.raises(nbs.SocketClosedError) as lost:
        rpc.call("drop_after", {"ms": 50}, timeout=30)  # not a WaitTimeoutError: it fails when the connection does
    text = str(lost.value)
    assert "'lost'" in text and "(connection 1, opened " in text and "UTC)" in text and "code 1012" in text
    assert "call 1 was answered" in text and "call again if that is safe" in text
    eventually(lambda: rpc.state == "open" and rpc.stats.reconnects == 1, timeout=15)
    assert rpc.call("add", [1, 2]) == 3
    with pytest.raises(nbs.SocketClosedError, match=r"connection 2, opened"):
        rpc.call("drop_after", {"ms": 50}, timeout=30)


def test_conn_topics_keeps_the_most_recent_thousand(node_jsonrpc: NodeServer) -> None:
    rpc = nbs.connect("topics", node_jsonrpc.url, protocol="jsonrpc", max_rows=100)
    waiter = rpc.waiter(1500)
    assert rpc.call("notify_me", {"n": 1500, "method": "m", "distinct": True}) == 1500
    waiter.future.result(30)
    topics = rpc.topics
    assert len(topics) == 1000 and "m1500" in topics and "m500" not in topics and "m501" in topics
    assert set(topics.values()) == {1}
    assert rpc.status()["topics"].count("(1)") == 5


def test_an_async_handler_that_raises_is_answered_with_an_error(node_jsonrpc: NodeServer) -> None:
    async def answer(event: nbs.WsEvent) -> Any:
        if event.topic == "explode":
            raise RuntimeError("async trouble")
        return "fine"

    rpc = nbs.connect("async", node_jsonrpc.url, protocol="jsonrpc", handler=answer)
    assert rpc.call("ask", {"method": "explode"}, timeout=15)["response"]["error"] == {"code": 0, "message": "async trouble"}
    assert rpc.call("ask", {"method": "other"}, timeout=15)["response"]["result"] == "fine"
