"""GraphQL over WebSocket protocol objects, driven by hand (pure: no network)."""

from __future__ import annotations

import json

import pytest

from nbsocket.core.protocols.base import Close, Deliver, Housekeeping, Malformed, Ready, Refused, Reply, Report, Send
from nbsocket.core.protocols.graphql import GraphQLWS, errors_text, refusal_reason
from nbsocket.core.protocols.graphql_legacy import GraphQLWSLegacy
from nbsocket.errors import InvalidOptionError, ProtocolError

SUB = "subscription { ticks { n } }"


def j(text: str) -> dict:
    return json.loads(text)


def msg(**fields) -> str:
    return json.dumps(fields)


def ready(proto: GraphQLWS, now: float = 0.0) -> list:
    """Start ``proto`` and acknowledge it; the actions of the ack."""
    proto.start(now)
    return proto.receive(msg(type="connection_ack"), now)


# --- options and handshake ---------------------------------------------------------------


def test_names_and_subprotocols():
    assert GraphQLWS.name == "graphql-ws" and GraphQLWS.subprotocols == ("graphql-transport-ws",)
    assert GraphQLWSLegacy.name == "graphql-ws-legacy" and GraphQLWSLegacy.subprotocols == ("graphql-ws",)
    assert "init_payload" in GraphQLWS.secret_options and "init_payload" in GraphQLWSLegacy.secret_options


@pytest.mark.parametrize("options", [{"init_payload": "token"}, {"keepalive": 0}, {"keepalive": "5"}, {"bogus": 1}])
def test_bad_options_are_refused(options):
    with pytest.raises(InvalidOptionError):
        GraphQLWS(**options)


def test_start_sends_connection_init_with_payload():
    proto = GraphQLWS(init_payload={"token": "t"})
    assert [j(m) for m in proto.start(0)] == [{"type": "connection_init", "payload": {"token": "t"}}]
    assert not proto.ready
    assert [j(m) for m in GraphQLWS().start(0)] == [{"type": "connection_init"}]


def test_ack_is_ready_with_its_payload():
    proto = GraphQLWS()
    assert ready(proto) == [Ready(info={})]
    assert proto.ready
    proto2 = GraphQLWS()
    proto2.start(0)
    assert proto2.receive(msg(type="connection_ack", payload={"server": "x"}), 0) == [Ready(info={"server": "x"})]
    assert isinstance(proto2.receive(msg(type="connection_ack"), 0)[0], Housekeeping)  # a second ack


def test_server_ping_is_answered_with_pong():
    proto = GraphQLWS()
    ready(proto)
    assert proto.receive(msg(type="ping"), 1) == [Send('{"type":"pong"}')]
    assert isinstance(proto.receive(msg(type="pong"), 1)[0], Housekeeping)


# --- subscriptions ---------------------------------------------------------------------


def test_subscribe_next_and_server_complete():
    proto = GraphQLWS()
    ready(proto)
    sub_id, topic, messages = proto.subscribe(SUB, {"a": 1}, "Ticks")
    assert isinstance(sub_id, str) and topic == sub_id
    assert [j(m) for m in messages] == [
        {"id": sub_id, "type": "subscribe", "payload": {"query": SUB, "variables": {"a": 1}, "operationName": "Ticks"}}
    ]
    assert proto.is_active(sub_id) and proto.active_subscriptions() == [sub_id]
    actions = proto.receive(msg(id=sub_id, type="next", payload={"data": {"ticks": {"n": 1}}}), 1)
    assert actions == [Deliver(topic=sub_id, data={"ticks": {"n": 1}})]
    actions = proto.receive(
        msg(id=sub_id, type="next", payload={"data": None, "errors": [{"message": "bad", "path": ["ticks"]}]}), 1
    )
    assert actions == [Deliver(topic=sub_id, data=None, error="bad (at ticks)")]
    actions = proto.receive(msg(id=sub_id, type="complete"), 2)
    assert len(actions) == 1 and isinstance(actions[0], Housekeeping)
    assert not proto.is_active(sub_id) and proto.active_subscriptions() == []


def test_error_message_ends_a_subscription_with_a_deliver():
    proto = GraphQLWS()
    ready(proto)
    sub_id, _, _ = proto.subscribe(SUB)
    actions = proto.receive(msg(id=sub_id, type="error", payload=[{"message": "Cannot query field"}]), 1)
    assert actions == [Deliver(topic=sub_id, data=None, error="Cannot query field")]
    assert not proto.is_active(sub_id)


def test_unsubscribe_sends_complete_and_forgets():
    proto = GraphQLWS()
    ready(proto)
    sub_id, _, _ = proto.subscribe(SUB)
    assert [j(m) for m in proto.unsubscribe(sub_id)] == [{"id": sub_id, "type": "complete"}]
    assert proto.active_subscriptions() == []
    assert proto.unsubscribe(sub_id) == []  # idempotent
    late = proto.receive(msg(id=sub_id, type="next", payload={"data": {}}), 1)
    assert len(late) == 1 and isinstance(late[0], Housekeeping)  # in flight after our complete: transcript only


def test_subscriptions_wait_for_ack_and_are_resent_in_order_after_reconnect():
    proto = GraphQLWS(init_payload={"token": "t"})
    first, _, early = proto.subscribe("subscription { a }")
    assert early == []  # before the handshake: held back (a server closes 4401 otherwise)
    proto.start(0)
    second, _, still_early = proto.subscribe("subscription { b }")
    assert still_early == []
    actions = proto.receive(msg(type="connection_ack"), 0)
    assert isinstance(actions[0], Ready)
    assert [j(a.payload)["id"] for a in actions[1:]] == [first, second]
    assert all(isinstance(a, Send) and j(a.payload)["type"] == "subscribe" for a in actions[1:])
    third, _, now_sent = proto.subscribe("subscription { c }")
    assert len(now_sent) == 1
    proto.unsubscribe(second)
    # the socket drops and comes back: handshake again, then the active ones in order
    proto.closed()
    assert not proto.ready
    assert [j(m)["type"] for m in proto.start(5)] == ["connection_init"]
    actions = proto.receive(msg(type="connection_ack"), 5)
    assert [j(a.payload)["id"] for a in actions[1:]] == [first, third]
    assert [j(a.payload)["payload"]["query"] for a in actions[1:]] == ["subscription { a }", "subscription { c }"]


def test_ids_are_unique_strings_across_calls_and_subscriptions():
    proto = GraphQLWS()
    ready(proto)
    ids = [proto.subscribe(SUB)[0], proto.call("{ hello }")[0], proto.subscribe(SUB)[0]]
    assert len(set(ids)) == 3 and all(isinstance(i, str) for i in ids)


# --- calls -----------------------------------------------------------------------------------


def test_call_keeps_first_result_and_replies_at_complete():
    proto = GraphQLWS()
    ready(proto)
    call_id, messages = proto.call("query Q($n: String) { hello(name: $n) }", {"n": "x"})
    assert j(messages[0])["type"] == "subscribe" and j(messages[0])["id"] == call_id
    assert proto.pending_calls() == [call_id] and proto.active_subscriptions() == []
    first = proto.receive(msg(id=call_id, type="next", payload={"data": {"hello": "Hello, x!"}}), 1)
    assert len(first) == 1 and isinstance(first[0], Housekeeping)  # nothing reaches handlers
    proto.receive(msg(id=call_id, type="next", payload={"data": {"hello": "later"}}), 1)
    assert proto.receive(msg(id=call_id, type="complete"), 1) == [Reply(call_id, value={"hello": "Hello, x!"})]
    assert proto.pending_calls() == []


def test_call_with_graphql_errors_replies_with_an_error():
    proto = GraphQLWS()
    ready(proto)
    call_id, _ = proto.call("{ fail }")
    errors = [{"message": "boom", "path": ["fail"], "extensions": {"code": "BOOM"}}]
    proto.receive(msg(id=call_id, type="next", payload={"data": None, "errors": errors}), 1)
    [reply] = proto.receive(msg(id=call_id, type="complete"), 1)
    assert reply.id == call_id and reply.value is None
    assert reply.error == {"message": "boom (at fail)", "code": "BOOM", "data": {"errors": errors, "data": None}}


def test_call_with_error_message_replies_at_once():
    proto = GraphQLWS()
    ready(proto)
    call_id, _ = proto.call("{ nope }")
    [reply] = proto.receive(msg(id=call_id, type="error", payload=[{"message": "Cannot query field 'nope'"}]), 1)
    assert reply.error["message"] == "Cannot query field 'nope'"
    assert proto.pending_calls() == []


def test_calls_wait_in_the_outbox_and_stay_pending_across_reconnects():
    """A call's message is returned at once (the runtime writes the outbox only after the ack), never re-sent by
    the protocol, and the call stays pending across a reconnect: the runtime cancels it if it was lost."""
    proto = GraphQLWS()
    proto.start(0)
    queued, messages = proto.call("{ hello }")
    assert [j(m) for m in messages] == [{"id": queued, "type": "subscribe", "payload": {"query": "{ hello }"}}]
    assert proto.receive(msg(type="connection_ack"), 0) == [Ready(info={})]  # not sent again at the ack
    proto.closed()
    proto.start(1)
    assert proto.pending_calls() == [queued] and proto.receive(msg(type="connection_ack"), 1) == [Ready(info={})]
    assert proto.cancel_call(queued) == [msg(id=queued, type="complete").replace(" ", "")]
    assert proto.pending_calls() == []


def test_replies_to_unknown_operations_are_reports_but_not_after_the_client_ended_them():
    proto = GraphQLWS()
    ready(proto)
    for kind, extra in (("next", {"payload": {"data": {}}}), ("error", {"payload": [{"message": "x"}]}), ("complete", {})):
        [action] = proto.receive(msg(id="99", type=kind, **extra), 1)
        assert isinstance(action, Report) and action.error == "UnknownReply" and "'99'" in action.message
    call_id, _ = proto.call("{ hello }")
    proto.receive(msg(id=call_id, type="complete"), 1)
    assert isinstance(proto.receive(msg(id=call_id, type="complete"), 1)[0], Report)  # answered twice
    sub_id, _, _ = proto.subscribe(SUB)
    proto.unsubscribe(sub_id)
    assert isinstance(proto.receive(msg(id=sub_id, type="next", payload={"data": {}}), 1)[0], Housekeeping)


@pytest.mark.parametrize(
    "message, why",
    [
        ({"type": "next", "id": 1, "payload": {}}, "not a non-empty string"),
        ({"type": "next", "id": "", "payload": {}}, "not a non-empty string"),
        ({"type": "complete"}, "without an id"),
        ({"type": "error", "id": "1", "payload": []}, "non-empty list"),
        ({"type": "error", "id": "1", "payload": [{"path": ["x"]}]}, "without a 'message'"),
        ({"type": "error", "id": "1", "payload": {"message": "x"}}, "non-empty list"),
        ({"type": "ping", "payload": [1]}, "object or null"),
        ({"type": "connection_ack", "payload": "yes"}, "object or null"),
    ],
)
def test_messages_graphql_ws_would_refuse_are_malformed(message, why):
    proto = GraphQLWS()
    ready(proto)
    proto.call("{ hello }")
    [action] = proto.receive(json.dumps(message), 1)
    assert isinstance(action, Malformed) and why in action.error


def test_cancel_call():
    proto = GraphQLWS()
    ready(proto)
    call_id, _ = proto.call("{ hello }")
    assert [j(m) for m in proto.cancel_call(call_id)] == [{"id": call_id, "type": "complete"}]
    assert proto.pending_calls() == []


def test_bad_verb_arguments_raise_protocol_error():
    proto = GraphQLWS()
    with pytest.raises(ProtocolError):
        proto.subscribe("")
    with pytest.raises(ProtocolError):
        proto.call("{ hello }", variables=[1])
    with pytest.raises(ProtocolError):
        proto.emit("x")
    with pytest.raises(ProtocolError):
        proto.notify("x")


# --- keep-alive ----------------------------------------------------------------------------


def test_keepalive_pings_and_closes_when_pong_is_missing():
    proto = GraphQLWS(keepalive=10)
    proto.start(0)
    assert proto.next_deadline() is None  # no ping before the handshake
    proto.receive(msg(type="connection_ack"), 0)
    assert proto.next_deadline() == 10
    assert proto.poll(5) == []
    assert proto.poll(10) == [Send('{"type":"ping"}')]
    proto.receive(msg(type="pong"), 11)
    assert proto.poll(20) == [Send('{"type":"ping"}')]
    [close] = proto.poll(30)  # no pong this time
    assert isinstance(close, Close) and close.code == 4499
    assert proto.next_deadline() is None


def test_no_keepalive_means_no_deadline():
    proto = GraphQLWS()
    ready(proto)
    assert proto.next_deadline() is None and proto.poll(1e9) == []


# --- malformed input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        '{"id": "1"}',
        '{"type": "surprise"}',
        b"\xff\xfe",
        '{"type": "next", "payload": {}}',
        '{"type": "next", "id": "1", "payload": 3}',
        '{"type": "complete"}',
        '{"type": "error"}',
    ],
)
def test_malformed_input_never_raises(body):
    proto = GraphQLWS()
    ready(proto)
    proto.subscribe(SUB)
    actions = proto.receive(body, 1)
    assert len(actions) == 1 and isinstance(actions[0], Malformed) and actions[0].error.startswith("graphql-ws:")


def test_binary_json_is_read():
    proto = GraphQLWS()
    ready(proto)
    sub_id, _, _ = proto.subscribe(SUB)
    body = msg(id=sub_id, type="next", payload={"data": {"x": 1}}).encode()
    assert proto.receive(body, 1) == [Deliver(topic=sub_id, data={"x": 1})]


# --- close codes ----------------------------------------------------------------------------


def test_refusal_reason():
    assert "forbidden" in refusal_reason(4403, "Forbidden").lower()
    assert refusal_reason(4403, "Forbidden").startswith("Forbidden (4403")
    for code in (4400, 4401, 4406, 4408, 4429):
        assert refusal_reason(code, "") and str(code) in refusal_reason(code, "")
    assert refusal_reason(1000, "bye") is None and refusal_reason(None, "") is None
    assert GraphQLWS.refusal_reason(4406, "") == refusal_reason(4406, "")


def test_errors_text():
    assert errors_text([{"message": "a"}, {"message": "b", "path": ["x", 0]}]) == "a; b (at x.0)"
    assert errors_text({"message": "one"}) == "one"
    assert errors_text([]) == "unknown GraphQL error"


# --- legacy subscriptions-transport-ws ------------------------------------------------------


def test_legacy_start_data_complete_stop():
    proto = GraphQLWSLegacy(init_payload={"token": "t"})
    assert [j(m) for m in proto.start(0)] == [{"type": "connection_init", "payload": {"token": "t"}}]
    assert proto.receive(msg(type="connection_ack"), 0) == [Ready(info={})]
    sub_id, _, messages = proto.subscribe(SUB)
    assert [j(m) for m in messages] == [{"id": sub_id, "type": "start", "payload": {"query": SUB}}]
    assert proto.receive(msg(type="data", id=sub_id, payload={"data": {"n": 1}}), 1) == [Deliver(topic=sub_id, data={"n": 1})]
    assert isinstance(proto.receive(msg(type="ka"), 1)[0], Housekeeping)
    assert [j(m) for m in proto.unsubscribe(sub_id)] == [{"id": sub_id, "type": "stop"}]
    other, _, _ = proto.subscribe(SUB)
    assert isinstance(proto.receive(msg(type="complete", id=other), 2)[0], Housekeeping)
    assert proto.active_subscriptions() == []


def test_legacy_error_ends_subscription_and_call():
    proto = GraphQLWSLegacy()
    ready(proto)
    sub_id, _, _ = proto.subscribe(SUB)
    assert proto.receive(msg(type="error", id=sub_id, payload={"message": "nope"}), 1) == [
        Deliver(topic=sub_id, data=None, error="nope")
    ]
    assert not proto.is_active(sub_id)
    call_id, _ = proto.call("subscription { ticks(n: 1) { n } }")
    proto.receive(msg(type="data", id=call_id, payload={"data": {"ticks": {"n": 1}}}), 1)
    assert proto.receive(msg(type="complete", id=call_id), 1) == [Reply(call_id, value={"ticks": {"n": 1}})]


def test_legacy_connection_error_is_refused():
    proto = GraphQLWSLegacy()
    proto.start(0)
    assert proto.receive(msg(type="connection_error", payload={"message": "invalid token"}), 0) == [Refused("invalid token")]
    proto.start(0.5)
    assert proto.receive(msg(type="connection_error", payload={"message": "no", "retry": 5}), 0) == [
        Refused("no", data={"retry": 5})
    ]
    assert not proto.ready
    proto.start(1)
    [refused] = proto.receive(msg(type="connection_error"), 1)
    assert isinstance(refused, Refused) and refused.reason


def test_legacy_has_no_ping_and_keepalive_watches_ka():
    proto = GraphQLWSLegacy(keepalive=5)
    ready(proto)
    assert proto.next_deadline() is None  # armed by the first ka
    assert isinstance(proto.receive("ping", 0)[0], Malformed)
    assert isinstance(proto.receive(msg(type="ping"), 0)[0], Malformed)  # not a legacy message
    proto.receive(msg(type="ka"), 1)
    assert proto.next_deadline() == 6
    proto.receive(msg(type="ka"), 4)
    assert proto.poll(6) == []
    [close] = proto.poll(9)
    assert isinstance(close, Close) and close.code == 4499
