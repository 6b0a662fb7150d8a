"""``protocol="socketio"`` against the reference server: socket.io 4.8.4 on Node (``tests/protocol_servers/node``).

The server runs with ``connectionStateRecovery`` (so every event it emits without an ack carries its offset as
an extra last argument), binary events, server-side acks (``emitWithAck`` with a timeout) and a namespace whose
middleware refuses with ``err.data``. What the server saw comes from its ``/state`` endpoint.
"""

from __future__ import annotations

from typing import Any

import pytest

import nbsocket as nbs
from tests.servers import eventually

from .protocol_servers.node_socketio import NodeSocketIOServer, node_socketio

pytestmark = pytest.mark.timeout(60)

QUICK = nbs.ReconnectPolicy(initial=0.05, maximum=0.2)
"""Reconnect almost at once (the server keeps a lost session for two minutes)."""


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


def test_server_acks_and_volatile_events_carry_no_offset(node_socketio: NodeSocketIOServer) -> None:
    sio = nbs.connect("noffset", node_socketio.url, protocol="socketio", handler=lambda event: "answer")
    sio.emit("ask", "why")
    question = sio.expect({"topic": "question"}, timeout=5)
    assert question.data == "why" and "offset" not in question.headers
    eventually(lambda: node_socketio.state()["acks"], timeout=5, what="the ack")
    assert node_socketio.state()["acks"] == [{"event": "question", "ok": True, "value": "answer"}]


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
    assert second["auth"]["offset"] == got[39].headers["offset"]  # the last offset seen before the drop


def test_recovery_keeps_the_auth_and_recovers_again(node_socketio: NodeSocketIOServer) -> None:
    got: list[nbs.WsEvent] = []
    sio = nbs.connect("again", node_socketio.url, protocol="socketio", namespace="/private", auth={"token": "good"},
                      handler=got.append, reconnect=QUICK)
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
