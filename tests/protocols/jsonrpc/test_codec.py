"""JSON-RPC 2.0 protocol object, driven by hand (pure: no network)."""

from __future__ import annotations

import json

import pytest

from nbsocket.core.protocols.base import Deliver, Malformed, Reply, Report
from nbsocket.core.protocols.jsonrpc import JSONRPC, ServerRequest, error_text
from nbsocket.errors import InvalidOptionError, ProtocolError, RemoteError


def j(text: str):
    return json.loads(text)


def started() -> JSONRPC:
    proto = JSONRPC()
    assert proto.start(0) == []
    return proto


def test_name_no_subprotocol_no_options_ready_at_once():
    assert JSONRPC.name == "jsonrpc" and JSONRPC.subprotocols == ()
    with pytest.raises(InvalidOptionError):
        JSONRPC(bogus=1)
    proto = started()
    assert proto.ready and proto.next_deadline() is None


def test_call_has_integer_ids_and_reply_resolves_it():
    proto = started()
    first, [text] = proto.call("add", [1, 2])
    second, _ = proto.call("add", {"a": 1, "b": 2})
    assert isinstance(first, int) and second == first + 1
    assert j(text) == {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": first}
    assert proto.pending_calls() == [first, second]
    assert proto.receive(json.dumps({"jsonrpc": "2.0", "result": 3, "id": first}), 1) == [Reply(first, value=3)]
    assert proto.pending_calls() == [second]


def test_call_without_params_and_tuple_params():
    proto = started()
    _, [text] = proto.call("ping")
    assert "params" not in j(text)
    _, [text] = proto.call("add", (1, 2))
    assert j(text)["params"] == [1, 2]
    with pytest.raises(ProtocolError):
        proto.call("add", 5)
    with pytest.raises(ProtocolError):
        proto.call("")


def test_error_reply():
    proto = started()
    call_id, _ = proto.call("fail")
    body = json.dumps({"jsonrpc": "2.0", "id": call_id, "error": {"code": -32001, "message": "nope", "data": {"x": 1}}})
    assert proto.receive(body, 1) == [Reply(call_id, error={"code": -32001, "message": "nope", "data": {"x": 1}})]
    assert error_text({"code": -32601, "message": "Method not found"}) == "Method not found (code -32601)"


def test_error_reply_without_data_or_message_is_normalised():
    proto = started()
    call_id, _ = proto.call("fail")
    [reply] = proto.receive(json.dumps({"jsonrpc": "2.0", "id": call_id, "error": {"code": 7}}), 1)
    assert reply.error == {"code": 7, "message": "7", "data": None}


def test_notify_has_no_id():
    proto = started()
    [text] = proto.notify("log", {"msg": "x"})
    assert j(text) == {"jsonrpc": "2.0", "method": "log", "params": {"msg": "x"}}
    assert proto.pending_calls() == []


def test_batch_call_and_batch_reply():
    proto = started()
    ids, [text] = proto.call_batch([("add", [1, 2]), ("fail", None), ("ping",)])
    sent = j(text)
    assert [m["id"] for m in sent] == ids and [m["method"] for m in sent] == ["add", "fail", "ping"]
    assert "params" not in sent[1]
    reply = json.dumps(
        [
            {"jsonrpc": "2.0", "id": ids[1], "error": {"code": -1, "message": "bad"}},
            {"jsonrpc": "2.0", "id": ids[0], "result": 3},
            {"jsonrpc": "2.0", "method": "tick", "params": {"n": 1}},
            {"jsonrpc": "2.0", "id": ids[2], "result": "pong"},
        ]
    )
    assert proto.receive(reply, 1) == [
        Reply(ids[1], error={"code": -1, "message": "bad", "data": None}),
        Reply(ids[0], value=3),
        Deliver(topic="tick", data={"n": 1}),
        Reply(ids[2], value="pong"),
    ]
    with pytest.raises(ProtocolError):
        proto.call_batch([])


def test_server_notification_and_request_with_acknowledge():
    proto = started()
    assert proto.receive('{"jsonrpc": "2.0", "method": "tick", "params": [1, 2]}', 1) == [Deliver(topic="tick", data=[1, 2])]
    [deliver] = proto.receive('{"jsonrpc": "2.0", "method": "confirm", "params": {"q": 1}, "id": "srv-1"}', 1)
    assert deliver == Deliver(topic="confirm", data={"q": 1}, ack=ServerRequest("srv-1", 1))
    assert j(proto.acknowledge(deliver.ack, {"ok": True})[0]) == {"jsonrpc": "2.0", "id": "srv-1", "result": {"ok": True}}
    assert j(proto.acknowledge(deliver.ack)[0]) == {"jsonrpc": "2.0", "id": "srv-1", "result": None}
    assert j(proto.acknowledge(deliver.ack, "no way", positive=False)[0]) == {
        "jsonrpc": "2.0",
        "id": "srv-1",
        "error": {"code": -32000, "message": "no way"},
    }
    assert j(proto.acknowledge(7, {"code": 5, "message": "m", "data": 1}, positive=False)[0])["error"] == {
        "code": 5,
        "message": "m",
        "data": 1,
    }


def test_a_request_with_id_null_is_a_request_not_a_notification():
    proto = started()
    [deliver] = proto.receive('{"jsonrpc": "2.0", "method": "confirm", "id": null}', 1)
    assert deliver.ack == ServerRequest(None, 1)
    assert j(proto.acknowledge(deliver.ack, 3)[0]) == {"jsonrpc": "2.0", "id": None, "result": 3}


def test_answers_follow_json_rpc_2_0_the_library():
    """No handler: -32601 "Method not found"; a handler that raised: code 0 and the exception's message
    (json-rpc-2.0's defaults); a RemoteError raised by a handler: its own code, message and data."""
    proto = started()
    token = ServerRequest(4, 1)
    assert j(proto.acknowledge(token, handled=False)[0]) == {
        "jsonrpc": "2.0",
        "id": 4,
        "error": {"code": -32601, "message": "Method not found"},
    }
    assert j(proto.acknowledge(token, error=ValueError("bad input"))[0]) == {
        "jsonrpc": "2.0",
        "id": 4,
        "error": {"code": 0, "message": "bad input"},
    }
    assert j(proto.acknowledge(token, error=KeyError())[0])["error"] == {"code": 0, "message": "KeyError"}
    assert j(proto.acknowledge(token, error=RemoteError("nope", code=-32042, data={"why": 1}))[0])["error"] == {
        "code": -32042,
        "message": "nope",
        "data": {"why": 1},
    }


def test_a_request_from_an_earlier_connection_is_not_answered():
    proto = started()
    [deliver] = proto.receive('{"jsonrpc": "2.0", "method": "confirm", "id": 1}', 1)
    proto.closed()
    proto.start(2)
    assert proto.acknowledge(deliver.ack, 1) == []


@pytest.mark.parametrize("request_id", ["[1]", "{}", "true"])
def test_a_request_with_an_id_of_the_wrong_type_is_malformed(request_id):
    proto = started()
    [action] = proto.receive(f'{{"jsonrpc": "2.0", "method": "m", "id": {request_id}}}', 1)
    assert isinstance(action, Malformed) and "string, number or null" in action.error and action.topic == "m"


def test_unknown_answered_and_abandoned_replies_are_reports():
    proto = started()
    [action] = proto.receive('{"jsonrpc": "2.0", "result": 1, "id": 99}', 1)
    assert isinstance(action, Report) and action.error == "UnknownReply" and "99" in action.message
    call_id, _ = proto.call("sleep", [10])
    assert proto.cancel_call(call_id) == []
    assert isinstance(proto.receive(json.dumps({"jsonrpc": "2.0", "result": 10, "id": call_id}), 2)[0], Report)
    answered, _ = proto.call("add", [1, 1])
    proto.receive(json.dumps({"jsonrpc": "2.0", "result": 2, "id": answered}), 3)
    assert isinstance(proto.receive(json.dumps({"jsonrpc": "2.0", "result": 2, "id": answered}), 3)[0], Report)


def test_a_reply_with_both_result_and_error_fails_its_call():
    proto = started()
    call_id, _ = proto.call("add", [1, 1])
    [reply] = proto.receive(json.dumps({"jsonrpc": "2.0", "id": call_id, "result": 2, "error": {"code": 1, "message": "x"}}), 1)
    assert reply.id == call_id and "both result and error" in reply.error["message"]


def test_ids_echoed_as_strings_still_match():
    proto = started()
    call_id, _ = proto.call("add", [1, 1])
    assert proto.receive(json.dumps({"jsonrpc": "2.0", "result": 2, "id": str(call_id)}), 1) == [Reply(call_id, value=2)]


def test_null_id_error_is_delivered_with_its_error():
    proto = started()
    [action] = proto.receive('{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}', 1)
    assert isinstance(action, Deliver) and action.topic is None
    assert action.error == "server error: Parse error (code -32700)"
    assert action.data["code"] == -32700


def test_pending_calls_survive_a_reconnect_and_ids_keep_counting():
    proto = started()
    first, _ = proto.call("add", [1, 2])
    proto.closed()
    proto.start(5)
    assert proto.pending_calls() == [first]  # the runtime cancels it if it was written on the lost connection
    second, _ = proto.call("add", [1, 2])
    assert second > first
    assert proto.receive(json.dumps({"jsonrpc": "2.0", "result": 3, "id": first}), 6) == [Reply(first, value=3)]


@pytest.mark.parametrize(
    "body",
    [
        "garbage",
        b"\xff",
        "[]",
        "3",
        '"text"',
        "[1]",
        '{"jsonrpc": "1.0", "method": "x"}',
        '{"jsonrpc": "2.0"}',
        '{"jsonrpc": "2.0", "result": 1}',
        '{"jsonrpc": "2.0", "method": 5}',
        '{"jsonrpc": "2.0", "id": null, "result": 1}',
    ],
)
def test_malformed_input_never_raises(body):
    proto = started()
    proto.call("add", [1, 2])
    actions = proto.receive(body, 1)
    assert actions and all(isinstance(a, Malformed) for a in actions)
    assert actions[0].error.startswith("jsonrpc:")


def test_batch_with_a_bad_member_keeps_the_good_ones():
    proto = started()
    call_id, _ = proto.call("add", [1, 2])
    actions = proto.receive(json.dumps([1, {"jsonrpc": "2.0", "id": call_id, "result": 3}]), 1)
    assert isinstance(actions[0], Malformed) and actions[1] == Reply(call_id, value=3)


def test_binary_json_is_read():
    proto = started()
    call_id, _ = proto.call("add", [1, 2])
    assert proto.receive(json.dumps({"jsonrpc": "2.0", "id": call_id, "result": 3}).encode(), 1) == [Reply(call_id, value=3)]


def test_unsupported_verbs_raise_protocol_error():
    proto = started()
    for verb in (lambda: proto.emit("x"), lambda: proto.subscribe("x"), lambda: proto.publish("x")):
        with pytest.raises(ProtocolError):
            verb()
