"""``nbs.connect(..., protocol="socketio")`` end to end against python-socketio's AsyncServer (real server, 127.0.0.1)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("socketio")
pytest.importorskip("aiohttp")

import nbsocket as nbs
from tests.protocol_servers.socketio_server import ADMIN_NAMESPACE, ADMIN_TOKEN, SocketIOServer
from tests.servers import eventually

pytestmark = pytest.mark.timeout(60)


@pytest.fixture()
def server() -> Iterator[SocketIOServer]:
    with SocketIOServer(ping_interval=1, ping_timeout=1) as srv:
        yield srv


def test_connect_emit_call_and_events(server: SocketIOServer) -> None:
    got: list[nbs.WsEvent] = []
    sio = nbs.connect("chat", server.url, protocol="socketio", handler=got.append)
    assert sio.state == "open" and sio.protocol == "socketio"
    assert server.sids("/")
    assert sio.call("echo", {"x": 1}, timeout=10) == {"x": 1}
    assert sio.call("echo", 1, 2) == [1, 2]
    sio.emit("chat", {"text": "hi"})
    reply = sio.expect({"topic": "chat"}, timeout=5)
    assert reply.topic == "chat" and reply.data == {"text": "hi"}
    sio.wait_handled()
    assert [(e.topic, e.data) for e in got] == [("chat", {"text": "hi"})]
    frame = nbs.frame("chat")
    assert list(frame.columns[:4]) == ["timestamp", "socket", "seq", "topic"]
    assert frame["topic"].tolist() == ["chat"] and frame["text"].tolist() == ["hi"]
    assert nbs.connections().loc[0, "protocol"] == "socketio"
    transcript = sio.transcript()
    bodies = transcript["body"].dropna().astype(str).tolist()
    assert "40" in bodies and any(b.startswith("0{") for b in bodies)  # housekeeping is in the transcript only


def test_an_expectation_that_times_out_explains_itself(server: SocketIOServer) -> None:
    """The failure names the closest messages; the handshake's housekeeping (transcript only, no seq) is not one."""
    sio = nbs.connect("quiet", server.url, protocol="socketio")
    sio.emit("chat", {"text": "hi"})
    sio.expect({"topic": "chat"}, timeout=5)
    with pytest.raises(nbs.ExpectationTimeoutError) as failure:
        sio.expect({"topic": "never"}, within=0.3)
    text = str(failure.value)
    assert "within 0.3" in text and "'chat'" in text and '0{"sid"' not in text


def test_each_verb_is_in_the_protocol_log_before_its_message_is_written(server: SocketIOServer) -> None:
    """So a saved test never puts the reply (logged by the loop thread) before the emit that caused it."""
    sio = nbs.connect("order", server.url, protocol="socketio")
    assert isinstance(sio, nbs.ProtocolConnection)
    unlogged: list[int] = []

    class WrittenBeforeLogged:
        def on_sent(self, item: Any, ts_ns: int) -> None:
            if isinstance(item.payload, str) and item.payload.startswith('42["chat"'):
                n = json.loads(item.payload[2:])[1]["n"]
                if not any(step.kind == "emit" and step.args[1:] == ({"n": n},) for step in sio._protocol_steps()):
                    unlogged.append(n)

    sio.add_observer(WrittenBeforeLogged())
    for n in range(200):
        sio.emit("chat", {"n": n})
    sio.expect({"topic": "chat", "n": 199}, timeout=10)
    assert unlogged == []
    order = [(step.kind, (step.args[1:] if step.kind == "emit" else step.outcome)) for step in sio._protocol_steps()]
    for n in range(200):
        assert order.index(("emit", ({"n": n},))) < order.index(("event", {"n": n}))


def test_binary_both_ways(server: SocketIOServer) -> None:
    sio = nbs.connect("bin", server.url, protocol="socketio")
    waiter = sio.waiter(1)
    assert sio.call("bin_echo", b"\x00\xff") == b"\x00\xff"
    (event,) = waiter.future.result(5)
    assert event.topic == "bin_echo" and event.data == b"\x00\xff"


def test_server_event_is_acked_with_the_handler_value(server: SocketIOServer) -> None:
    sio = nbs.connect("ask", server.url, protocol="socketio", handler=lambda event: ("answer", event.data))
    sio.emit("ask", "why")
    eventually(lambda: ("/", "question", ["answer", "why"]) in server.acks, timeout=5.0)


def test_keepalive_survives_a_slow_handler(server: SocketIOServer) -> None:
    seen: list[int] = []

    def slow(event: nbs.WsEvent) -> None:
        time.sleep(2)
        seen.append(event.seq)

    sio = nbs.connect("slow", server.url, protocol="socketio", handler=slow)
    for n in range(3):
        sio.emit("chat", {"n": n})
    time.sleep(4.5)  # pingInterval 1 s + pingTimeout 1 s: the handlers are busy for 6 s in all
    assert sio.state == "open" and sio.stats.reconnects == 0
    eventually(lambda: len(seen) == 3, timeout=10)
    assert sio.stats.reconnects == 0 and not [e for e in sio.errors if e.where == "close"]


def test_reconnect_runs_the_handshake_again(server: SocketIOServer) -> None:
    sio = nbs.connect("re", server.url, protocol="socketio", reconnect=nbs.ReconnectPolicy(initial=0.05, maximum=0.2))
    server.drop_all()
    eventually(lambda: sio.stats.reconnects >= 1 and sio.state == "open", timeout=10)
    assert sio.call("echo", "again") == "again"
    server.restart()
    sio.emit("chat", {"queued": True})  # queued while down: goes out after the new handshake
    eventually(lambda: ("/", "chat", [{"queued": True}]) in server.received, timeout=10)


def test_server_disconnect_ends_the_session(server: SocketIOServer) -> None:
    sio = nbs.connect("kick", server.url, protocol="socketio")
    sio.emit("kick")
    eventually(lambda: sio.state == "closed", timeout=5.0)


def test_namespace_and_auth(server: SocketIOServer) -> None:
    admin = nbs.connect("admin", server.url, protocol="socketio", namespace=ADMIN_NAMESPACE, auth={"token": ADMIN_TOKEN})
    assert admin.call("stats") == {"clients": 1}
    assert "good" not in repr(admin.options)


def test_refused_auth_raises_the_servers_words_and_leaves_nothing(server: SocketIOServer) -> None:
    with pytest.raises(nbs.ConnectError) as info:
        nbs.connect("bad", server.url, protocol="socketio", namespace=ADMIN_NAMESPACE, auth={"token": "wrong-token"})
    assert info.value.kind == "protocol" and "bad token" in str(info.value)
    assert "bad" not in nbs.connections()["name"].tolist()


def test_malformed_packet_is_kept_and_the_socket_goes_on(server: SocketIOServer) -> None:
    got: list[nbs.WsEvent] = []
    sio = nbs.connect("mal", server.url, protocol="socketio", handler=got.append)
    (eio_sid,) = list(server.sio.eio.sockets)
    server.run(server.sio.eio.send(eio_sid, "garbage"))
    eventually(lambda: len(got) == 1, timeout=5.0)
    assert got[0].error and got[0].data is None
    frame = nbs.frame("mal")
    assert frame["error"].notna().all() and frame["data"].tolist() == ["4garbage"]
    assert sio.call("echo", 5) == 5


def test_call_timeout_and_options_refused_before_io(server: SocketIOServer) -> None:
    sio = nbs.connect("to", server.url, protocol="socketio")
    with pytest.raises(nbs.WaitTimeoutError):
        sio.call("nobody_answers", timeout=0.3)
    with pytest.raises(nbs.InvalidOptionError):
        nbs.connect("x", server.url, protocol="socketio", auth="not a dict")
    with pytest.raises(nbs.InvalidOptionError):
        nbs.connect("x", server.url, namespace="/a")
    with pytest.raises(nbs.InvalidOptionError):
        nbs.connect("x", server.url, protocol="no-such-protocol")


def test_a_slow_handler_does_not_delay_calls(server: SocketIOServer) -> None:
    release = threading.Event()
    sio = nbs.connect("busy", server.url, protocol="socketio", handler=lambda e: release.wait(5))
    sio.emit("chat", {"n": 1})
    start = time.monotonic()
    assert sio.call("echo", 1) == 1
    assert time.monotonic() - start < 1
    release.set()
