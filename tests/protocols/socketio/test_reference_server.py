"""``protocol="socketio"`` against the reference server: socket.io 4.8.4 on Node (``tests/protocol_servers/node``).

The server runs with ``connectionStateRecovery`` (so every event it emits without an ack carries its offset as
an extra last argument), binary events, server-side acks (``emitWithAck`` with a timeout) and a namespace whose
middleware refuses with ``err.data``. What the server saw comes from its ``/state`` endpoint.
"""

from __future__ import annotations

import base64
import concurrent.futures
import threading
from typing import Any

import pytest

import nbsocket as nbs
from tests.servers import eventually

from ...protocol_servers.node_socketio import NodeSocketIOServer, node_socketio  # noqa: F401  (a fixture)

pytestmark = pytest.mark.timeout(60)

QUICK = nbs.ReconnectPolicy(initial=0.05, maximum=0.2)
"""Reconnect almost at once (the server keeps a lost session for two minutes)."""
ONE_SECOND = nbs.ReconnectPolicy(initial=1.0, maximum=1.0, jitter=0.0)
"""Stay down for a second: long enough to act while the socket is reconnecting."""
SLOW = nbs.ReconnectPolicy(initial=30.0, maximum=30.0)


def _b64(data: bytes) -> dict[str, str]:
    """How the server's /state shows bytes it received."""
    return {"$bytes": base64.b64encode(data).decode()}


def _numbers(events: list[nbs.WsEvent]) -> list[Any]:
    """The ``n`` of every "number" event, in order (from the data, or its first element if the offset was left in)."""
    found = []
    for event in events:
        if event.topic == "number":
            data = event.data[0] if isinstance(event.data, list) else event.data
            found.append(data["n"])
    return found


# --- connectionStateRecovery: the offset ----------------------------------------------------


def test_the_offset_never_reaches_the_data(node_socketio: NodeSocketIOServer) -> None:
    got: list[nbs.WsEvent] = []
    sio = nbs.connect("offsets", node_socketio.url, protocol="socketio", handler=got.append)
    sio.emit("numbers", {"count": 3, "interval_ms": 1})
    eventually(lambda: len(got) == 3, timeout=10, what="three numbers")
    assert [event.data for event in got] == [{"n": 1}, {"n": 2}, {"n": 3}]
    offsets = [event.headers["offset"] for event in got]
    assert all(isinstance(offset, str) and offset for offset in offsets) and len(set(offsets)) == 3
    frame = nbs.frame("offsets")
    assert frame["n"].tolist() == [1, 2, 3]
    assert "data" not in frame.columns  # a list [{"n": 1}, "<offset>"] would have landed in data


def test_events_asking_for_an_ack_carry_no_offset(node_socketio: NodeSocketIOServer) -> None:
    sio = nbs.connect("noffset", node_socketio.url, protocol="socketio", handler=lambda event: "answer")
    sio.emit("ask", "why")
    question = sio.expect({"topic": "question"}, timeout=5)
    assert question.data == "why" and "offset" not in question.headers
    eventually(lambda: node_socketio.state()["acks"], timeout=5, what="the ack")
    assert node_socketio.state()["acks"] == [{"event": "question", "ok": True, "value": "answer"}]


def test_a_volatile_events_last_string_is_taken_for_the_offset_and_kept(node_socketio: NodeSocketIOServer) -> None:
    # socket.io adds no offset to a volatile event, and on the wire it cannot be told from one that has one:
    # socket.io-client takes its last string argument for the offset too. nbsocket keeps it in the headers.
    sio = nbs.connect("volatile", node_socketio.url, protocol="socketio")
    sio.emit("volatile_string", "hello")
    event = sio.expect({"topic": "plain"}, timeout=5)
    assert event.data is None and event.headers["offset"] == "hello"


def test_events_emitted_while_the_client_was_down_are_recovered(node_socketio: NodeSocketIOServer) -> None:
    got: list[nbs.WsEvent] = []
    sio = nbs.connect("recover", node_socketio.url, protocol="socketio", handler=got.append, reconnect=QUICK)
    sio.emit("numbers", {"count": 120, "interval_ms": 5, "drop_after": 40, "room": "feed"})
    eventually(lambda: 120 in _numbers(got), timeout=20, what="the 120th number")
    sio.wait_handled()
    assert _numbers(got) == list(range(1, 121))
    assert sio.stats.reconnects >= 1
    first, second, *_ = node_socketio.state()["connections"]
    assert not first["recovered"] and second["recovered"]
    assert second["id"] == first["id"]  # the same Socket.IO session, restored
    assert set(second["auth"]) == {"pid", "offset"}
    offsets = [event.headers["offset"] for event in got]
    last_seen = got[offsets.index(second["auth"]["offset"])]  # the last event that arrived before the drop
    assert 30 <= last_seen.data["n"] <= 40  # (the 40th may die with the transport, and is then among the missed ones)


def test_recovery_keeps_the_auth_and_recovers_again(node_socketio: NodeSocketIOServer) -> None:
    got: list[nbs.WsEvent] = []
    sio = nbs.connect(
        "again",
        node_socketio.url,
        protocol="socketio",
        namespace="/private",
        auth={"token": "good"},
        handler=got.append,
        reconnect=QUICK,
    )
    assert sio.call("echo", 1) == 1
    for round_ in range(2):
        before = sio.stats.reconnects
        sio.emit("drop")
        eventually(lambda before=before: sio.stats.reconnects > before and sio.state == "open", timeout=10, what="the reconnect")
        assert sio.call("echo", round_) == round_
    connections = node_socketio.state()["connections"]
    assert [c["auth"].get("token") for c in connections] == ["good"] * 3
    # no event arrived on /private before the drops, so there was no offset to recover from
    assert [c["recovered"] for c in connections] == [False, False, False]


# --- acks the server asks for ------------------------------------------------------------------------


def _question_acks(server: NodeSocketIOServer) -> list[dict[str, Any]]:
    return eventually(lambda: server.state()["acks"], timeout=10, what="the server's emitWithAck to settle")


def test_a_handler_that_raises_sends_no_ack(node_socketio: NodeSocketIOServer) -> None:
    def refuse(event: nbs.WsEvent) -> str:
        raise ValueError("no answer today")

    sio = nbs.connect("raises", node_socketio.url, protocol="socketio", handler=refuse)
    sio.emit("ask", "why", 500)  # the server waits 500 ms for the ack
    [ack] = _question_acks(node_socketio)
    assert ack == {"event": "question", "ok": False, "error": "operation has timed out"}
    sent = sio.transcript()
    assert not [body for body in sent["body"].dropna().astype(str) if body.startswith("43")]
    assert any("no answer today" in str(error) for error in sio.errors)


def test_an_event_nobody_handles_gets_no_ack(node_socketio: NodeSocketIOServer) -> None:
    sio = nbs.connect("nobody", node_socketio.url, protocol="socketio")
    sio.emit("ask", "why", 500)
    [ack] = _question_acks(node_socketio)
    assert ack == {"event": "question", "ok": False, "error": "operation has timed out"}
    assert sio.state == "open"


def test_a_handler_acks_with_bytes(node_socketio: NodeSocketIOServer) -> None:
    sio = nbs.connect("bytes", node_socketio.url, protocol="socketio", handler=lambda event: b"\x07\x00")
    sio.emit("ask", "why")
    assert _question_acks(node_socketio) == [{"event": "question", "ok": True, "value": _b64(b"\x07\x00")}]


# --- calls across a lost connection ----------------------------------------------------------------------


def test_a_call_written_on_a_lost_connection_fails_at_once(node_socketio: NodeSocketIOServer) -> None:
    sio = nbs.connect("lost", node_socketio.url, protocol="socketio", reconnect=SLOW)
    outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def call() -> None:
        try:
            outcome.set_result(sio.call("drop", timeout=None))  # the server drops the transport instead of acking
        except BaseException as exc:
            outcome.set_exception(exc)

    threading.Thread(target=call, daemon=True).start()
    with pytest.raises(nbs.SocketClosedError, match="it had been sent"):
        outcome.result(30)  # a guard against hanging: it used to wait forever


def test_a_call_made_while_down_is_sent_after_the_reconnect(node_socketio: NodeSocketIOServer) -> None:
    sio = nbs.connect("queued", node_socketio.url, protocol="socketio", reconnect=ONE_SECOND)
    assert sio.call("echo", "before") == "before"
    sio.emit("drop")
    eventually(lambda: sio.state == "reconnecting", timeout=10, what="the drop")
    assert sio.call("echo", "queued", timeout=20) == "queued"  # its ack id still resolves on the new connection
    assert sio.stats.reconnects == 1
    assert node_socketio.received("echo") == [["before"], ["queued"]]
    assert sio.call("echo", "after") == "after"


# --- connect_error data ---------------------------------------------------------------------------------------


def test_a_refusal_carries_err_data(node_socketio: NodeSocketIOServer) -> None:
    with pytest.raises(nbs.ConnectError) as refused:
        nbs.connect("private", node_socketio.url, protocol="socketio", namespace="/private", auth={"token": "wrong"})
    assert refused.value.kind == "protocol" and "not authorized" in str(refused.value)
    assert refused.value.data == {"code": 4031, "hint": "send auth {token}"}
    assert "private" not in nbs.connections()["name"].tolist()


# --- binary attachments ---------------------------------------------------------------------------------------------


def test_binary_both_ways(node_socketio: NodeSocketIOServer) -> None:
    sio = nbs.connect("bin", node_socketio.url, protocol="socketio")
    waiter = sio.waiter(1, match=lambda event: event.topic == "bin_echo")
    args = [b"\x00\xff", {"nested": b"\x01", "text": "t"}, [b"a", "b", {"deep": [b""]}]]
    assert sio.call("bin_echo", *args) == args  # a BINARY_ACK with three placeholders
    (event,) = waiter.future.result(10)
    assert event.data == args and event.headers["offset"]  # a BINARY_EVENT, with the recovery offset taken out
    assert node_socketio.received("bin_echo") == [
        [_b64(b"\x00\xff"), {"nested": _b64(b"\x01"), "text": "t"}, [_b64(b"a"), "b", {"deep": [_b64(b"")]}]]
    ]
    assert not node_socketio.state()["errors"]


def test_an_emit_that_does_not_fit_the_outbox_leaves_nothing_behind(node_socketio: NodeSocketIOServer) -> None:
    sio = nbs.connect("full", node_socketio.url, protocol="socketio", reconnect=ONE_SECOND, outbox_size=3)
    sio.emit("drop")
    eventually(lambda: sio.state == "reconnecting", timeout=10, what="the drop")
    with pytest.raises(nbs.OutboxFullError):
        sio.emit("record", b"1", b"2", b"3")  # the header and three attachments: four messages, room for three
    sio.emit("record", b"after", "intact")
    eventually(lambda: node_socketio.received("record"), timeout=20, what="the emit after the reconnect")
    assert node_socketio.received("record") == [[_b64(b"after"), "intact"]]
    assert sio.call("echo", "still up") == "still up"
    state = node_socketio.state()
    assert not state["errors"] and [d["reason"] for d in state["disconnects"]] == ["transport close"]
    assert sio.stats.reconnects == 1 and sio.state == "open"
