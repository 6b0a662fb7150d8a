"""The Socket.IO protocol object follows its references (socket.io-client 4.8, socket.io-parser 4.2) where it used to
diverge: strict packet reading, connection state recovery, acks, calls across reconnects, connect_error data."""

from __future__ import annotations

import json

import pytest

from nbsocket.core.protocols.base import Deliver, Housekeeping, Malformed, Ready, Refused, Reply, Report, Send
from nbsocket.core.protocols.socketio import SocketIO
from nbsocket.core.protocols.socketio_packets import MAX_ACK_ID, MAX_ATTACHMENTS

OPEN = '0{"sid":"eio1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'


def opened(connect_reply: str = '40{"sid":"sio1"}', **options) -> SocketIO:
    """A protocol whose connection is open and whose CONNECT was answered with ``connect_reply``."""
    prot = SocketIO(**options)
    prot.start(0.0)
    prot.receive(OPEN, 0.0)
    [ready] = prot.receive(connect_reply, 0.0)
    assert isinstance(ready, Ready)
    return prot


def reconnect(prot: SocketIO) -> str:
    """Lose the connection, open a new one; returns the CONNECT packet the protocol sends."""
    prot.closed()
    prot.start(1.0)
    [send, _] = prot.receive(OPEN, 1.0)
    assert isinstance(send, Send)
    return send.payload


def only_malformed(prot: SocketIO, body: str | bytes) -> Malformed:
    actions = prot.receive(body, 0.0)
    assert len(actions) == 1 and isinstance(actions[0], Malformed), actions
    return actions[0]


# --- 1. the codec never raises, and reads ASCII digits only -----------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("43" + "1" * 5000 + "[1]", "beyond 2**53 - 1"),  # Python's int-limit ValueError before
        (f"43{MAX_ACK_ID + 1}[1]", "beyond 2**53 - 1"),
        ('4２["ev"]', "unknown Socket.IO packet type '２' (U+FF12)"),
        ("43٣[1]", "non-ASCII numeral '٣' (U+0663)"),
        ("431٣[1]", "non-ASCII numeral '٣'"),
        ('45²-["e",{"_placeholder":true,"num":0}]', "without an attachment count"),  # int('²') raised before
        ('45٢-["e",{"_placeholder":true,"num":0}]', "without an attachment count"),
        ('450-["e"]', "announces 0 attachments"),
        (f'45{MAX_ATTACHMENTS + 1}-["e"]', f"1 to {MAX_ATTACHMENTS} are allowed"),
        ("45" + "9" * 5000 + '-["e"]', "are allowed"),
        ('45-["e"]', "without an attachment count"),
        ('451["e"]', "without an attachment count"),
        ('42["x",NaN]', "NaN is not JSON"),
        ('42["x",-Infinity]', "-Infinity is not JSON"),
        ('42["x",' + "[" * 100_000 + "]" * 100_000 + "]", "bad JSON"),
        ('42["x",' + "9" * 5000 + "]", "bad JSON"),
        ('42["connect"]', "reserved event name 'connect'"),
        ("42[true]", "must be a list starting with the event name"),
        ("41{}", "DISCONNECT carries no payload"),
        ("40[1]", "CONNECT payload must be a JSON object"),
        ("44[1]", "CONNECT_ERROR payload must be a JSON object or a string"),
        ('452-["e",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]', "not 0..1 once each"),
        ('451-["e",{"_placeholder":true,"num":0.0}]', "not 0..0 once each"),
        ('451-["e",{"_placeholder":true,"num":true}]', "not 0..0 once each"),
        ('451-["e",{"_placeholder":true}]', "not 0..0 once each"),
        ('451-["e"]', "placeholders number none"),
        ('٤2["e"]', "unknown Engine.IO packet type '٤' (U+0664)"),
    ],
)
def test_bad_packets_are_malformed_with_a_precise_reason(body: str, reason: str) -> None:
    prot = opened()
    bad = only_malformed(prot, body)
    assert reason in bad.error
    assert prot.receive('42["ok"]', 0.0)[0].topic == "ok"  # and the protocol goes on


def test_ascii_digits_within_bounds_are_read() -> None:
    prot = opened()
    [report] = prot.receive(f"43{MAX_ACK_ID}[1]", 0.0)  # read, and reported: no call has that id
    assert isinstance(report, Report) and f"ack {MAX_ACK_ID} on /:" in report.message
    ack_id, _ = prot.call("echo")
    assert prot.receive(f"4300{ack_id}[1]", 0.0) == [Reply(ack_id, value=1)]  # leading zeros, as Number("001")
    [header] = prot.receive('4500002-["e",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]', 0.0)
    assert isinstance(header, Housekeeping)
    prot.receive(b"a", 0.0)
    [event] = prot.receive(b"b", 0.0)
    assert event.data == [b"b", b"a"]


def test_a_numeric_event_name_is_a_topic_as_in_javascript() -> None:
    prot = opened()
    assert prot.receive("42[1,2]", 0.0) == [Deliver(topic="1", data=2, headers={"namespace": "/"})]
    assert prot.receive("42[2.0]", 0.0)[0].topic == "2"


def test_a_deeply_nested_binary_event_is_resolved_without_recursion() -> None:
    prot = opened()
    depth = 800  # as deep as Python's JSON parser goes within the default recursion limit
    prot.receive('451-["deep",' + "[" * depth + '{"_placeholder":true,"num":0}' + "]" * depth + "]", 0.0)
    [event] = prot.receive(b"bottom", 0.0)
    node = event.data
    for _ in range(depth):
        node = node[0]
    assert node == b"bottom"


def test_a_malformed_binary_packet_swallows_its_attachments() -> None:
    prot = opened()
    bad = only_malformed(prot, '452-["pic",{"_placeholder":true,"num":7},{"_placeholder":true,"num":0}]')
    assert bad.topic == "pic"
    assert all(isinstance(a, Housekeeping) for b in (b"1", b"2") for a in prot.receive(b, 0.0))
    assert isinstance(only_malformed(prot, b"3"), Malformed)  # a third one was never announced


def test_binary_packets_for_another_namespace_take_their_attachments_along() -> None:
    prot = opened()
    assert isinstance(prot.receive('451-/other,["e",{"_placeholder":true,"num":0}]', 0.0)[0], Housekeeping)
    [ignored] = prot.receive(b"x", 0.0)
    assert isinstance(ignored, Housekeeping) and "/other" in ignored.what


def test_a_connect_reply_without_a_sid_is_refused_as_the_reference_client_does() -> None:
    prot = SocketIO()
    prot.start(0.0)
    prot.receive(OPEN, 0.0)
    [refused] = prot.receive("40", 0.0)
    assert isinstance(refused, Refused) and "v2" in refused.reason and not prot.ready


def test_a_lone_surrogate_is_escaped_as_json_stringify_does() -> None:
    prot = opened()
    [text] = prot.emit("x", "\ud800", "é")
    text.encode("utf-8")  # valid UTF-8, so the WebSocket frame can be written
    assert json.loads(text[2:]) == ["x", "\ud800", "é"]


# --- 2. connectionStateRecovery ----------------------------------------------------------------

CSR_REPLY = '40{"sid":"sio1","pid":"pid-1"}'


def test_the_offset_is_taken_out_of_the_event_and_kept() -> None:
    prot = opened(CSR_REPLY)
    [event] = prot.receive('42["number",{"n":1},"Q99ISDl"]', 0.0)
    assert event == Deliver(topic="number", data={"n": 1}, headers={"namespace": "/", "offset": "Q99ISDl"})
    [event] = prot.receive('42["pair",1,2,"Q99ISDm"]', 0.0)
    assert event.data == [1, 2] and event.headers["offset"] == "Q99ISDm"
    [event] = prot.receive('42["bare","Q99ISDn"]', 0.0)
    assert event.data is None and event.headers["offset"] == "Q99ISDn"


def test_binary_events_carry_the_offset_too() -> None:
    prot = opened(CSR_REPLY)
    prot.receive('451-["blob",{"_placeholder":true,"num":0},"Q9A"]', 0.0)
    [event] = prot.receive(b"\x00", 0.0)
    assert event.data == b"\x00" and event.headers["offset"] == "Q9A"


def test_no_offset_where_the_server_adds_none() -> None:
    plain = opened()  # no pid: the server does not recover state, so a trailing string is data
    assert plain.receive('42["pair",{"n":1},"text"]', 0.0)[0].data == [{"n": 1}, "text"]
    prot = opened(CSR_REPLY)
    [asking] = prot.receive('425["question","why"]', 0.0)  # events with an ack id are never stored by the server
    assert asking.data == "why" and "offset" not in asking.headers
    [named] = prot.receive('42["ping"]', 0.0)  # a volatile event without arguments: the name is not an offset
    assert named.topic == "ping" and named.data is None and "offset" not in named.headers
    assert prot.receive('42["number",5]', 0.0)[0].data == 5  # a volatile event whose last argument is no string


def test_the_connect_after_a_reconnect_carries_pid_and_the_last_offset() -> None:
    prot = opened(CSR_REPLY, auth={"token": "t"})
    assert reconnect(prot) == '40{"pid":"pid-1","token":"t"}'  # no event yet: no offset (JSON.stringify drops undefined)
    [ready] = prot.receive(CSR_REPLY, 1.0)
    assert ready.info["recovered"] is True and "pid" not in ready.info
    prot.receive('42["number",{"n":1},"off-1"]', 1.0)
    prot.receive('42["number",{"n":2},"off-2"]', 1.0)
    assert reconnect(prot) == '40{"pid":"pid-1","offset":"off-2","token":"t"}'


def test_missed_events_arrive_before_the_connect_reply() -> None:
    prot = opened('40/feed,{"sid":"sio1","pid":"pid-1"}', namespace="/feed")
    prot.receive('42/feed,["number",{"n":1},"off-1"]', 0.0)
    assert reconnect(prot) == '40/feed,{"pid":"pid-1","offset":"off-1"}'
    [missed] = prot.receive('42/feed,["number",{"n":2},"off-2"]', 1.0)  # socket.io sends them before its CONNECT
    assert missed.data == {"n": 2} and missed.headers["offset"] == "off-2"
    [ready] = prot.receive('40/feed,{"sid":"sio1","pid":"pid-1"}', 1.0)
    assert ready.info["recovered"] is True
    assert reconnect(prot) == '40/feed,{"pid":"pid-1","offset":"off-2"}'


def test_a_new_session_is_not_recovered_and_a_server_without_recovery_gets_no_pid() -> None:
    prot = opened(CSR_REPLY)
    prot.receive('42["number",{"n":1},"off-1"]', 0.0)
    reconnect(prot)
    [ready] = prot.receive('40{"sid":"sio2","pid":"pid-2"}', 1.0)  # the session had expired: a new one
    assert ready.info["recovered"] is False
    # as socket.io-client: the new pid, and the last offset seen (it is still the best the client knows)
    assert reconnect(prot) == '40{"pid":"pid-2","offset":"off-1"}'
    prot.receive('40{"sid":"sio3"}', 1.0)  # the server no longer recovers state
    assert reconnect(prot) == "40"
    assert prot.receive('42["pair",1,"x"]', 1.0)[0].data == [1, "x"]


# --- 3. acks ---------------------------------------------------------------------------------------


def test_no_ack_when_a_handler_raised_or_none_ran() -> None:
    prot = opened()
    [event] = prot.receive('427["question","why"]', 0.0)
    assert prot.acknowledge(event.ack, None, error=ValueError("boom")) == []
    assert prot.acknowledge(event.ack, "ignored", error=RuntimeError()) == []
    assert prot.acknowledge(event.ack, None, handled=False) == []
    assert prot.acknowledge(event.ack, None) == ["437[]"]  # a handler ran and returned None: an empty ack
    assert prot.acknowledge(event.ack, ("a", b"\x01")) == ['461-7["a",{"_placeholder":true,"num":0}]', b"\x01"]


# --- 4. calls across a lost connection ---------------------------------------------------------------


def test_a_queued_call_keeps_its_ack_id_across_a_reconnect() -> None:
    prot = opened()
    first, _ = prot.call("echo", 1)
    queued, messages = prot.call("echo", 2)  # made while connected, not written before the connection was lost
    reconnect(prot)
    prot.receive('40{"sid":"sio2"}', 1.0)
    later, _ = prot.call("echo", 3)
    assert len({first, queued, later}) == 3  # ids are never reused
    assert messages == [f'42{queued}["echo",2]']  # written as is on the new connection
    assert prot.receive(f"43{queued}[2]", 1.0) == [Reply(queued, value=2)]


def test_cancel_call_sends_nothing() -> None:
    prot = opened()
    call_id, _ = prot.call("slow")
    assert prot.cancel_call(call_id) == []
    assert prot.receive('42["ok"]', 0.0)[0].topic == "ok"


def test_a_call_given_up_is_forgotten_and_its_late_ack_reported() -> None:
    prot = opened()
    call_id, _ = prot.call("slow")
    kept, _ = prot.call("kept")
    assert prot.pending_calls() == [call_id, kept]
    reconnect(prot)  # a reconnect forgets no call: the runtime decides which were lost
    assert prot.pending_calls() == [call_id, kept]
    assert prot.cancel_call(call_id) == []  # Socket.IO has no message that cancels a call
    assert prot.pending_calls() == [kept]
    [late] = prot.receive(f"43{call_id}[1]", 1.0)
    assert isinstance(late, Report) and late.error == "UnknownReply" and f"ack {call_id} " in late.message
    assert prot.receive(f"43{kept}[1]", 1.0) == [Reply(kept, value=1)]


# --- 5. connect_error data ---------------------------------------------------------------------------


def test_connect_error_data_is_kept_as_err_data() -> None:
    prot = SocketIO(namespace="/admin")
    prot.start(0.0)
    prot.receive(OPEN, 0.0)
    [refused] = prot.receive('44/admin,{"message":"not authorized","data":{"code":4031,"hint":["token"]}}', 0.0)
    assert refused == Refused("socket.io connect_error on /admin: not authorized", data={"code": 4031, "hint": ["token"]})
    [plain] = prot.receive('44/admin,{"message":"no data"}', 0.0)
    assert plain.data is None
    [legacy] = prot.receive('44/admin,"a string payload"', 0.0)  # Socket.IO v4 servers speaking to v2 clients
    assert legacy.data is None and legacy.reason.endswith("a string payload")
