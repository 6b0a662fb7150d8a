"""Properties of the JSON-RPC codec on generated messages, checked against json-rpc-2.0's own classification.

* what the verbs produce parses back to what was asked, and json-rpc-2.0 reads it as a request (calls,
  notifications) or a response (answers to the server's requests);
* generated server messages (replies, error replies, notifications, requests, batches of them) become the
  right actions, in order;
* any JSON (and any text) becomes actions without an exception, and json-rpc-2.0's ``isJSONRPCRequest`` /
  ``isJSONRPCResponse`` agree with what nbsocket made of it, except where nbsocket knowingly differs
  (:func:`known_difference`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbsocket.core.protocols.base import Deliver, Malformed, Reply, Report
from nbsocket.core.protocols.jsonrpc import JSONRPC, ServerRequest
from nbsocket.errors import EncodeError, RemoteError

from ...protocol_servers.node_servers import NodeOracle, node_oracle  # noqa: F401  (a fixture)
from ..strategies import PROPERTY, json_objects, json_values, names, never_raises

params_values = st.none() | st.lists(json_values, max_size=4) | json_objects
request_ids = st.none() | st.text(max_size=10) | st.integers(-(2**53), 2**53)


def started() -> JSONRPC:
    proto = JSONRPC()
    proto.start(0)
    return proto


@PROPERTY
@given(method=names, params=params_values)
def test_calls_and_notifications_parse_back_and_are_requests(node_oracle: NodeOracle, method: str, params: Any) -> None:
    proto = started()
    call_id, [call] = proto.call(method, params)
    expected: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        expected["params"] = params
    assert json.loads(call) == {**expected, "id": call_id}
    assert node_oracle.jsonrpc(call) == {"request": True, "response": False}
    [note] = proto.notify(method, params)
    assert json.loads(note) == expected
    assert node_oracle.jsonrpc(note) == {"request": True, "response": False}


@PROPERTY
@given(calls=st.lists(st.tuples(names, params_values), min_size=1, max_size=4))
def test_a_batch_call_parses_back_with_one_id_each(node_oracle: NodeOracle, calls: list[tuple[str, Any]]) -> None:
    proto = started()
    ids, [text] = proto.call_batch(calls)
    sent = json.loads(text)
    assert [m["id"] for m in sent] == ids and len(set(ids)) == len(ids) and proto.pending_calls() == sorted(ids)
    assert [(m["method"], m.get("params")) for m in sent] == [(method, params) for method, params in calls]
    assert node_oracle.jsonrpc(text) == {"batch": [{"request": True, "response": False}] * len(calls)}


@PROPERTY
@given(
    method=names,
    request_id=request_ids,
    value=json_values,
    outcome=st.sampled_from(["value", "raised", "remote", "unhandled", "negative"]),
    message=st.text(max_size=20),
)
def test_answers_to_server_requests_are_responses_to_that_id(
    node_oracle: NodeOracle, method: str, request_id: Any, value: Any, outcome: str, message: str
) -> None:
    proto = started()
    [deliver] = proto.receive(json.dumps({"jsonrpc": "2.0", "method": method, "id": request_id}), 1)
    assert deliver == Deliver(topic=method, data=None, ack=ServerRequest(request_id, 1))
    if outcome == "value":
        [text] = proto.acknowledge(deliver.ack, value)
    elif outcome == "raised":
        [text] = proto.acknowledge(deliver.ack, value, error=ValueError(message))
    elif outcome == "remote":
        [text] = proto.acknowledge(deliver.ack, None, error=RemoteError(message, code=-32099, data=value))
    elif outcome == "unhandled":
        [text] = proto.acknowledge(deliver.ack, value, handled=False)
    else:
        [text] = proto.acknowledge(deliver.ack, message, positive=False)
    answer = json.loads(text)
    assert answer["id"] == request_id and node_oracle.jsonrpc(text) == {"request": False, "response": True}
    expected_error = {
        "raised": {"code": 0, "message": message or "ValueError"},
        "remote": {"code": -32099, "message": message, **({"data": value} if value is not None else {})},
        "unhandled": {"code": -32601, "message": "Method not found"},
        "negative": {"code": -32000, "message": message},
    }
    assert answer == (
        {"jsonrpc": "2.0", "id": request_id, "result": value}
        if outcome == "value"
        else {"jsonrpc": "2.0", "id": request_id, "error": expected_error[outcome]}
    )


@PROPERTY
@given(data=st.data(), pending=st.integers(1, 5), as_batch=st.booleans())
def test_generated_server_messages_become_the_right_actions(data: st.DataObject, pending: int, as_batch: bool) -> None:
    proto = started()
    waiting = [proto.call("m")[0] for _ in range(pending)]
    members: list[dict[str, Any]] = []
    expected: list[Any] = []
    for _ in range(data.draw(st.integers(1, 5))):
        kind = data.draw(st.sampled_from(["result", "error", "notification", "request"]))
        method, params = data.draw(names), data.draw(params_values)
        if kind in ("result", "error") and waiting:
            call_id = waiting.pop(data.draw(st.integers(0, len(waiting) - 1)))
            echoed = data.draw(st.sampled_from([call_id, str(call_id), float(call_id)]))  # servers echo ids loosely
            if kind == "result":
                value = data.draw(json_values)
                members.append({"jsonrpc": "2.0", "id": echoed, "result": value})
                expected.append(Reply(call_id, value=value))
            else:
                code, text, extra = data.draw(st.integers(-32768, 32767)), data.draw(names), data.draw(json_values)
                members.append({"jsonrpc": "2.0", "id": echoed, "error": {"code": code, "message": text, "data": extra}})
                expected.append(Reply(call_id, error={"code": code, "message": text, "data": extra}))
        elif kind == "request":
            request_id = data.draw(request_ids)
            members.append({"jsonrpc": "2.0", "method": method, "params": params, "id": request_id})
            expected.append(Deliver(topic=method, data=params, ack=ServerRequest(request_id, 1)))
        else:
            members.append({"jsonrpc": "2.0", "method": method, "params": params})
            expected.append(Deliver(topic=method, data=params))
    if as_batch:
        assert never_raises(proto.receive(json.dumps(members), 1)) == expected
    else:
        assert [never_raises(proto.receive(json.dumps(m), 1))[0] for m in members] == expected
    assert proto.pending_calls() == sorted(waiting)


member_values = st.one_of(json_values, st.just("2.0"), st.lists(st.integers(), max_size=2), st.booleans())
messages = st.dictionaries(
    st.sampled_from(["jsonrpc", "id", "method", "params", "result", "error"]), member_values, max_size=5
).map(lambda m: {**m, "jsonrpc": "2.0"} if m.get("jsonrpc") == 0 else m)


def our_kind(actions: list[Any]) -> str:
    """What nbsocket made of one message: ``request`` (requests and notifications), ``response`` or ``invalid``."""
    [action] = actions
    if isinstance(action, Malformed):
        assert action.error.startswith("jsonrpc: ")
        return "invalid"
    if isinstance(action, Deliver) and action.topic is not None:
        return "request"
    assert isinstance(action, (Reply, Report, Deliver)), action  # Deliver with topic None: an error with id null
    return "response"


def known_difference(message: dict[str, Any]) -> str | None:
    """Why nbsocket may read ``message`` otherwise than json-rpc-2.0, or ``None`` when both must agree."""
    if "jsonrpc" not in message:
        return "nbsocket reads a message without the jsonrpc member as 2.0 (1.0 servers omit it)"
    if "method" in message and not isinstance(message["method"], str):
        return "the spec wants a string method; json-rpc-2.0 takes any defined one"
    if (
        "method" in message
        and "id" in message
        and not (message["id"] is None or (isinstance(message["id"], (str, int, float)) and not isinstance(message["id"], bool)))
    ):
        return "the spec wants a string, number or null id; json-rpc-2.0 takes any"
    if "method" not in message and message.get("id", 0) is None and message.get("error") is None:
        return "a reply with id null is only an error about an unreadable request (the spec); json-rpc-2.0 takes it"
    return None


@PROPERTY
@given(message=messages)
def test_any_message_is_read_as_json_rpc_2_0_reads_it(node_oracle: NodeOracle, message: dict[str, Any]) -> None:
    proto = started()
    proto.call("m")
    text = json.dumps(message)
    verdict = node_oracle.jsonrpc(text)
    reference = "request" if verdict["request"] else "response" if verdict["response"] else "invalid"
    ours = our_kind(never_raises(proto.receive(text, 1)))
    if ours != reference:
        assert known_difference(message), f"{text}: nbsocket read a {ours}, json-rpc-2.0 a {reference}"


@PROPERTY
@given(body=st.text(max_size=60) | st.binary(max_size=60) | json_values.map(json.dumps))
def test_any_text_or_bytes_become_actions_without_an_exception(body: str | bytes) -> None:
    proto = started()
    proto.call("m")
    for action in never_raises(proto.receive(body, 1)):
        if isinstance(action, Malformed):
            assert action.error.startswith("jsonrpc: ")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), [float("-inf")]])
def test_what_json_cannot_say_is_refused_before_it_is_sent(bad: Any) -> None:
    proto = started()
    with pytest.raises(EncodeError, match="cannot encode the message as JSON"):
        proto.call("m", [bad])
    assert proto.pending_calls() == []
