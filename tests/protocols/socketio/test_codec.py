"""The Socket.IO v4 protocol object on its own: packets in, actions and messages out (no network)."""

from __future__ import annotations

import json

import pytest

from nbsocket.core.protocols.base import Close, Deliver, Housekeeping, Malformed, Ready, Refused, Reply, Report, Send
from nbsocket.core.protocols.socketio import AckToken, SocketIO
from nbsocket.errors import EncodeError, InvalidOptionError, InvalidURLError, ProtocolError

OPEN = '0{"sid":"eio1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'


def opened(now: float = 0.0, **options) -> SocketIO:
    """A protocol whose connection is open and whose namespace CONNECT was accepted."""
    prot = SocketIO(**options)
    assert prot.start(now) == []
    prot.receive(OPEN, now)
    ns = prot.namespace
    prefix = "" if ns == "/" else ns + ","
    actions = prot.receive(f'40{prefix}{{"sid":"sio1"}}', now)
    assert isinstance(actions[0], Ready)
    return prot


# --- options and URL -------------------------------------------------------------------


def test_options_are_validated():
    assert SocketIO().namespace == "/"
    assert SocketIO(namespace="admin").namespace == "/admin"
    assert SocketIO(path="custom").path == "/custom/"
    assert "auth" in SocketIO.secret_options
    with pytest.raises(InvalidOptionError):
        SocketIO(nonsense=1)
    with pytest.raises(InvalidOptionError):
        SocketIO(namespace="/a,b")
    with pytest.raises(InvalidOptionError):
        SocketIO(auth="token")
    with pytest.raises(InvalidOptionError):
        SocketIO(auth={"x": object()})
    with pytest.raises(InvalidOptionError):
        SocketIO(path="/")


@pytest.mark.parametrize(
    ("url", "options", "expected"),
    [
        ("ws://host:3000", {}, "ws://host:3000/socket.io/?EIO=4&transport=websocket"),
        ("ws://host:3000/", {}, "ws://host:3000/socket.io/?EIO=4&transport=websocket"),
        ("wss://host/?token=a%20b", {}, "wss://host/socket.io/?token=a+b&EIO=4&transport=websocket"),
        ("ws://host", {"path": "/api/live"}, "ws://host/api/live/?EIO=4&transport=websocket"),
        ("ws://host/app/socket.io", {}, "ws://host/app/socket.io/?EIO=4&transport=websocket"),
        ("ws://host/socket.io/?EIO=3&x=1", {}, "ws://host/socket.io/?x=1&EIO=4&transport=websocket"),
    ],
)
def test_prepare_url(url, options, expected):
    assert SocketIO(**options).prepare_url(url) == expected


def test_prepare_url_refuses_a_path_that_looks_like_a_namespace():
    with pytest.raises(InvalidURLError, match="namespace"):
        SocketIO().prepare_url("ws://host/admin")


# --- handshake -----------------------------------------------------------------------


def test_handshake_default_namespace():
    prot = SocketIO()
    assert prot.start(10.0) == []
    assert not prot.ready
    assert prot.next_deadline() is None
    actions = prot.receive(OPEN, 10.0)
    assert Send("40") in actions
    assert any(isinstance(a, Housekeeping) for a in actions)
    assert prot.next_deadline() == pytest.approx(10.0 + 45.0)
    [ready] = prot.receive('40{"sid":"sio1"}', 11.0)
    assert prot.ready
    assert ready.info["sid"] == "sio1"
    assert ready.info["engine_sid"] == "eio1"
    assert ready.info["ping_interval"] == 25000


def test_handshake_namespace_and_auth():
    prot = SocketIO(namespace="/admin", auth={"token": "good"})
    prot.start(0)
    actions = prot.receive(OPEN, 0)
    assert Send('40/admin,{"token":"good"}') in actions
    assert Send('40{"token":"good"}') in SocketIO(auth={"token": "good"}).receive(OPEN, 0)
    [ready] = prot.receive('40/admin,{"sid":"x"}', 0)
    assert isinstance(ready, Ready) and ready.info["namespace"] == "/admin"


def test_connect_error_is_refused_with_the_servers_reason():
    prot = SocketIO(namespace="/admin")
    prot.start(0)
    prot.receive(OPEN, 0)
    [refused] = prot.receive('44/admin,{"message":"bad token","data":{"x":1}}', 0)
    assert isinstance(refused, Refused)
    assert "bad token" in refused.reason
    assert not prot.ready
    # an old-style string payload is understood too
    [refused] = prot.receive('44/admin,"nope"', 0)
    assert "nope" in refused.reason


def test_reconnect_resets_the_handshake():
    prot = opened()
    assert prot.ready
    prot.closed()
    assert not prot.ready and prot.next_deadline() is None
    prot.start(100.0)
    assert not prot.ready
    assert Send("40") in prot.receive(OPEN, 100.0)


# --- keep-alive ----------------------------------------------------------------------


def test_ping_is_answered_with_pong():
    prot = opened()
    assert prot.receive("2", 5.0) == [Send("3"), Housekeeping("ping")]
    assert prot.receive("3", 5.0) == [Housekeeping("pong")]
    assert prot.receive("6", 5.0) == [Housekeeping("noop")]


def test_silence_past_ping_interval_and_timeout_closes():
    prot = opened(now=0.0)
    prot.receive("2", 30.0)
    assert prot.next_deadline() == pytest.approx(75.0)
    assert prot.poll(74.0) == []
    [close] = prot.poll(75.5)
    assert isinstance(close, Close) and "ping timeout" in close.reason
    assert prot.poll(80.0) == []  # only once
    assert prot.next_deadline() is None


def test_any_message_resets_the_keepalive_clock():
    prot = opened(now=0.0)
    prot.receive('42["tick",1]', 40.0)
    assert prot.next_deadline() == pytest.approx(85.0)


def test_engine_close_and_namespace_disconnect_close_the_socket():
    prot = opened()
    [close] = prot.receive("1", 0)
    assert isinstance(close, Close)
    prot = opened()
    [close] = prot.receive("41", 0)
    assert isinstance(close, Close) and "disconnected" in close.reason
    assert not prot.ready


# --- events --------------------------------------------------------------------------


def test_events_without_ack():
    prot = opened()
    assert prot.receive('42["chat",{"text":"hi"}]', 0) == [Deliver(topic="chat", data={"text": "hi"}, headers={"namespace": "/"})]
    [one] = prot.receive('42["nothing"]', 0)
    assert one.data is None and one.ack is None
    [many] = prot.receive('42["pair",1,"two"]', 0)
    assert many.data == [1, "two"]


def test_event_with_ack_and_acknowledge():
    prot = opened()
    [event] = prot.receive('4213["question",{"q":1}]', 0)
    assert event.topic == "question" and event.data == {"q": 1}
    assert isinstance(event.ack, AckToken) and event.ack.id == 13
    assert prot.acknowledge(event.ack, {"a": 2}) == ['4313[{"a":2}]']
    assert prot.acknowledge(event.ack, (1, 2)) == ["4313[1,2]"]
    assert prot.acknowledge(event.ack, [1, 2]) == ["4313[[1,2]]"]
    assert prot.acknowledge(event.ack, None) == ["4313[]"]
    assert prot.acknowledge(event.ack, (None,)) == ["4313[null]"]


def test_ack_token_from_an_earlier_connection_sends_nothing():
    prot = opened()
    [event] = prot.receive('427["question"]', 0)
    prot.closed()
    prot.start(1)
    assert prot.acknowledge(event.ack, 1) == []
    with pytest.raises(ProtocolError):
        prot.acknowledge("not a token", 1)


def test_namespaced_events_and_other_namespaces():
    prot = opened(namespace="/admin")
    [event] = prot.receive('42/admin,5["stats",{"n":1}]', 0)
    assert event.headers == {"namespace": "/admin"} and event.ack.id == 5
    assert prot.acknowledge(event.ack, "ok") == ['43/admin,5["ok"]']
    [ignored] = prot.receive('42["chat","root namespace"]', 0)
    assert isinstance(ignored, Housekeeping) and "ignored" in ignored.what


# --- emitting and calling ------------------------------------------------------------


def test_emit_and_call():
    prot = opened()
    assert prot.emit("message", {"text": "hi"}) == ['42["message",{"text":"hi"}]']
    assert prot.emit("none") == ['42["none"]']
    assert prot.emit("two", 1, "é") == ['42["two",1,"é"]']
    first, messages = prot.call("echo", {"x": 1})
    second, _ = prot.call("echo")
    assert second > first
    assert messages == [f'42{first}["echo",{{"x":1}}]']
    ns = opened(namespace="/admin")
    assert ns.emit("x", 1, ack_id=7) == ['42/admin,7["x",1]']


def test_emit_refuses_bad_input():
    prot = opened()
    with pytest.raises(ProtocolError):
        prot.emit("connect")
    with pytest.raises(ProtocolError):
        prot.emit("")
    with pytest.raises(EncodeError):
        prot.emit("x", object())
    with pytest.raises(EncodeError):
        prot.emit("x", float("nan"))


def test_acks_from_the_server_become_replies():
    prot = opened()
    one, two, three = (prot.call("echo", n)[0] for n in range(3))
    assert prot.receive(f"43{one}[1]", 0) == [Reply(one, value=1)]
    assert prot.receive(f"43{two}[1,2]", 0) == [Reply(two, value=[1, 2])]
    assert prot.receive(f"43{three}[]", 0) == [Reply(three, value=None)]
    # an id no call waits for (answered already, or never made) is reported: the runtime records it in conn.errors
    for again in (f"43{one}[1]", "43999[[1,2]]"):
        [report] = prot.receive(again, 0)
        assert isinstance(report, Report) and report.error == "UnknownReply"


# --- binary --------------------------------------------------------------------------


def test_binary_emit_puts_bytes_in_attachments():
    prot = opened()
    messages = prot.emit("upload", {"name": "a", "blob": b"\x00\x01"}, bytearray(b"zz"))
    text, *attachments = messages
    assert text.startswith("452-")
    assert json.loads(text[4:]) == [
        "upload",
        {"name": "a", "blob": {"_placeholder": True, "num": 0}},
        {"_placeholder": True, "num": 1},
    ]
    assert attachments == [b"\x00\x01", b"zz"]
    ack_id, messages = prot.call("bin", b"x")
    assert messages == [f'451-{ack_id}["bin",{{"_placeholder":true,"num":0}}]', b"x"]


def test_binary_acknowledge():
    prot = opened(namespace="/admin")
    [event] = prot.receive('42/admin,3["want_bytes"]', 0)
    assert prot.acknowledge(event.ack, b"\xff") == ['461-/admin,3[{"_placeholder":true,"num":0}]', b"\xff"]


def test_binary_event_is_held_until_its_attachments_arrived():
    prot = opened()
    head = prot.receive('452-["file",{"a":{"_placeholder":true,"num":1}},{"_placeholder":true,"num":0}]', 0)
    assert [type(a) for a in head] == [Housekeeping]
    assert [type(a) for a in prot.receive(b"first", 0)] == [Housekeeping]
    [event] = prot.receive(b"second", 0)
    assert event == Deliver(topic="file", data=[{"a": b"second"}, b"first"], headers={"namespace": "/"})


def test_binary_ack_and_binary_event_with_ack_id():
    prot = opened(namespace="/admin")
    ack_id, _ = prot.call("bin")
    prot.receive(f'461-/admin,{ack_id}[{{"_placeholder":true,"num":0}}]', 0)
    assert prot.receive(b"\x01\x02", 0) == [Reply(ack_id, value=b"\x01\x02")]
    prot.receive('451-/admin,9["blob",{"_placeholder":true,"num":0}]', 0)
    [event] = prot.receive(b"\x00", 0)
    assert event.data == b"\x00" and event.ack.id == 9


# --- malformed input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "",
        "9",
        "0not json",
        '0{"pingInterval":1}',
        "4",
        "49",
        '42["chat",',
        "42{}",
        "42[]",
        "42[true,2]",
        '43["no id"]',
        "431{}",
        '45x-["e"]',
        '452-["e",{"_placeholder":true,"num":0}]',
    ],
)
def test_malformed_packets_never_raise(body):
    prot = opened()
    actions = prot.receive(body, 0)
    assert len(actions) == 1 and isinstance(actions[0], Malformed), actions
    assert actions[0].error
    # the protocol keeps working
    assert prot.receive('42["ok"]', 0)[0].topic == "ok"


def test_unannounced_binary_frame_is_malformed():
    prot = opened()
    [bad] = prot.receive(b"stray", 0)
    assert isinstance(bad, Malformed) and "binary" in bad.error


def test_placeholder_out_of_range_is_malformed_with_the_topic():
    prot = opened()
    [bad] = prot.receive('451-["pic",{"_placeholder":true,"num":3}]', 0)
    assert isinstance(bad, Malformed) and bad.topic == "pic" and "placeholders number [3]" in bad.error
    [swallowed] = prot.receive(b"data", 0)  # the attachment it announced is not reported again
    assert isinstance(swallowed, Housekeeping)


def test_text_frame_before_the_attachments_arrived():
    prot = opened()
    prot.receive('452-["pic",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', 0)
    prot.receive(b"one", 0)
    bad, event = prot.receive('42["next"]', 0)
    assert isinstance(bad, Malformed) and "attachment" in bad.error
    assert event.topic == "next"
    [stray] = prot.receive(b"two", 0)
    assert isinstance(stray, Malformed)


def test_subscribe_is_unsupported():
    with pytest.raises(ProtocolError):
        SocketIO().subscribe("x")
