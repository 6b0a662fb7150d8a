"""Sending (encoding, outbox, errors) and reconnecting (backoff, retry rules, callbacks)."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Response

import nbsocket as nbs

from ..servers import WsServer, eventually

FAST = nbs.ReconnectPolicy(initial=0.05, maximum=0.2, stable_after=1.0)


def test_send_encodes_by_content_type_and_keeps_str_and_bytes_as_they_are(demo) -> None:
    conn = nbs.connect("e", demo.url("/echo"))
    before = len(demo.messages("/echo"))
    nbs.send("e", {"op": "subscribe", "when": dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)})
    nbs.send("e", [1, 2])
    nbs.send("e", "raw text {")
    nbs.send("e", b"\x01\x02")
    eventually(lambda: len(demo.messages("/echo")) >= before + 4)
    sent = demo.messages("/echo")[before : before + 4]
    assert json.loads(sent[0]) == {"op": "subscribe", "when": "2026-01-02T00:00:00+00:00"}
    assert sent[1:] == ["[1,2]", "raw text {", b"\x01\x02"]
    assert conn.stats.messages_out == 4 and conn.stats.bytes_out == sum(len(m) for m in sent)


def test_send_errors_are_clear(demo) -> None:
    with pytest.raises(nbs.UnknownSocketError, match=r"no socket named 'ghost'.*no sockets are registered"):
        nbs.send("ghost", "x")
    conn = nbs.connect("e", demo.url("/echo"), content_type="application/octet-stream")
    with pytest.raises(nbs.UnknownSocketError, match="known sockets: 'e'"):
        nbs.send("ghost", "x")
    with pytest.raises(nbs.EncodeError, match="pass bytes"):
        conn.send({"a": 1})
    with pytest.raises(nbs.EncodeError, match="cannot send None"):
        conn.send(None)
    nbs.disconnect("e")
    assert conn.state == "closed" and "e" in nbs.connections()["name"].tolist()
    with pytest.raises(nbs.SocketClosedError, match=r"nbs.reset\('e'\)"):
        conn.send(b"late")
    nbs.remove("e")
    with pytest.raises(nbs.UnknownSocketError):
        nbs.get("e")
    with pytest.raises(nbs.SocketClosedError, match="removed"):
        conn.send(b"after remove")


def test_outbox_queues_while_down_and_flushes_in_order_after_a_server_restart(unused_port) -> None:
    server = WsServer(port=unused_port).start()
    try:
        conn = nbs.connect("q", server.url, content_type="text/plain", reconnect=FAST)
        conn.send("before")
        eventually(lambda: server.received == ["before"])
        server.stop()
        eventually(lambda: conn.state == "reconnecting")
        for i in range(50):
            conn.send(f"down {i}")
        assert conn.queued == 50
        server.start()
        eventually(lambda: len(server.received) == 51)
        assert server.received == ["before"] + [f"down {i}" for i in range(50)]
        assert conn.queued == 0 and conn.stats.reconnects >= 1
    finally:
        server.__exit__()


def test_a_loop_of_sends_longer_than_the_outbox_follows_the_network() -> None:
    with WsServer() as server:
        conn = nbs.connect("many", server.url, content_type="text/plain", outbox_size=10)
        for i in range(2000):
            conn.send(f"m{i}")  # waits for room instead of failing once 10 are queued
        eventually(lambda: len(server.received) == 2000)
        assert server.received == [f"m{i}" for i in range(2000)]


def test_full_outbox_raises_instead_of_dropping(unused_port) -> None:
    server = WsServer(port=unused_port).start()
    try:
        conn = nbs.connect("q", server.url, content_type="text/plain", reconnect=FAST, outbox_size=5)
        server.stop()
        eventually(lambda: conn.state == "reconnecting")
        for i in range(5):
            conn.send(str(i))
        with pytest.raises(nbs.OutboxFullError, match="5 messages are still waiting"):
            conn.send("one too many")
        server.start()
        eventually(lambda: len(server.received) == 5)
        assert server.received == ["0", "1", "2", "3", "4"]
    finally:
        server.__exit__()


def test_on_open_runs_on_every_reconnect_and_its_sends_go_first(unused_port) -> None:
    opened = []
    closed = []

    def on_open(conn):
        opened.append(conn.stats.reconnects)
        conn.send("subscribe")

    server = WsServer(port=unused_port).start()
    try:
        conn = nbs.connect(
            "q",
            server.url,
            content_type="text/plain",
            reconnect=FAST,
            on_open=on_open,
            on_close=lambda c, code, reason: closed.append(code),
        )
        eventually(lambda: server.received == ["subscribe"])
        server.stop()
        eventually(lambda: conn.state == "reconnecting")
        conn.send("queued while down")
        server.start()
        eventually(lambda: len(server.received) == 3)
        assert server.received == ["subscribe", "subscribe", "queued while down"]
        assert opened == [0, 1] and closed and closed[0] in (1001, 1006)
    finally:
        server.__exit__()


def test_accept_then_close_server_gets_growing_backoff_not_a_tight_loop(demo) -> None:
    policy = nbs.ReconnectPolicy(initial=0.05, maximum=10, factor=2, jitter=0.0, stable_after=5)
    conn = nbs.connect("flappy", demo.url("/close/1011"), reconnect=policy)
    connections_before = demo.connections
    time.sleep(2.0)
    attempts = demo.connections - connections_before
    # 0.05 + 0.1 + 0.2 + 0.4 + 0.8 = 1.55 s: about 5-6 attempts in 2 s; a tight loop would make hundreds
    assert 3 <= attempts <= 8, attempts
    assert conn.state in ("reconnecting", "open", "closing")
    nbs.remove("flappy")


@pytest.mark.parametrize("code", [1008, 4000, 4999])
def test_policy_close_codes_are_not_retried(demo, code: int) -> None:
    with pytest.raises(nbs.ConnectError) as refused:  # at once after the handshake: a failed connect
        nbs.connect("c", demo.url(f"/close/{code}"), reconnect=FAST)
    assert refused.value.code == code and nbs.connections().empty

    async def welcome_then_close(ws) -> None:
        await ws.send("welcome")
        await ws.recv()
        await ws.close(code, "go away")

    with WsServer(welcome_then_close) as server:
        conn = nbs.connect("c", server.url, content_type="text/plain", reconnect=FAST)
        conn.send("bye")
        eventually(lambda: conn.state == "failed")
        assert conn.close_code == code and conn.stats.reconnects == 0 and server.connections == 1
        assert "not retried" in conn.last_error.message


def test_retry_close_codes_opt_in(demo) -> None:
    policy = nbs.ReconnectPolicy(initial=0.05, maximum=0.1, retry_close_codes=frozenset({4001}))
    conn = nbs.connect("c", demo.url("/close/4001"), reconnect=policy)
    eventually(lambda: conn.stats.reconnects >= 2)


def _server_refusing_after_first(status: int) -> WsServer:
    state = {"n": 0}

    def process_request(connection, request):
        state["n"] += 1
        if state["n"] > 1:
            return Response(status, "Refused", Headers([("Content-Length", "0")]), b"")
        return None

    async def close_soon(ws):
        await ws.close(1011, "restart")

    server = WsServer(close_soon, process_request=process_request)
    server.state = state  # type: ignore[attr-defined]
    return server


@pytest.mark.parametrize("status", [401, 403])
def test_auth_refusals_on_reconnect_are_not_retried(status: int) -> None:
    with _server_refusing_after_first(status) as server:
        conn = nbs.connect("r", server.url, reconnect=FAST)
        eventually(lambda: conn.state == "failed")
        assert server.state["n"] == 2  # type: ignore[attr-defined]
        assert f"HTTP {status}" in conn.last_error.message


def test_server_errors_on_reconnect_are_retried() -> None:
    with _server_refusing_after_first(503) as server:
        conn = nbs.connect("r", server.url, reconnect=FAST)
        eventually(lambda: server.state["n"] >= 4)  # type: ignore[attr-defined]
        assert conn.state == "reconnecting"


def test_reconnect_false_stays_closed(demo) -> None:
    conn = nbs.connect("c", demo.url("/ticker?rate=max&count=5"), reconnect=False)
    eventually(lambda: conn.state == "closed")
    assert conn.close_code == 1000 and conn.stats.messages_in == 5 and conn.stats.reconnects == 0


def test_max_attempts_gives_up(unused_port) -> None:
    server = WsServer(port=unused_port).start()
    try:
        policy = nbs.ReconnectPolicy(initial=0.02, maximum=0.05, max_attempts=3)
        conn = nbs.connect("g", server.url, reconnect=policy)
        server.stop()
        eventually(lambda: conn.state == "failed")
        with pytest.raises(nbs.SocketClosedError, match="failed"):
            conn.send("x")
    finally:
        server.__exit__()


def test_disconnect_reset_and_remove(demo) -> None:
    closes = []
    conn = nbs.connect("e", demo.url("/echo"), on_close=lambda c, code, reason: closes.append((code, reason)))
    nbs.disconnect("e", 4000, "bye")
    assert conn.state == "closed" and not nbs.test("e")
    eventually(lambda: closes)
    assert closes == [(4000, "bye")]
    nbs.reset("e")
    assert conn.state == "open" and nbs.get("e") is conn
    nbs.reset("e", demo.url("/echo?second=1"))
    assert conn.url.endswith("?second=1") and conn.test() and conn.stats.resets == 2
    with pytest.raises(nbs.InvalidURLError):
        nbs.reset("e", "http://nope")
    assert conn.test()
    with pytest.raises(ValueError, match="close code"):
        nbs.disconnect("e", 1005)
    nbs.remove("e")
    assert conn.state == "closed" and len(nbs.connections()) == 0


def test_reset_to_a_failing_url_raises_and_keeps_the_registration(demo) -> None:
    conn = nbs.connect("e", demo.url("/echo"))
    with pytest.raises(nbs.HandshakeStatusError):
        nbs.reset("e", demo.url("/status/404"))
    assert conn.state == "failed" and nbs.get("e") is conn
    nbs.reset("e", demo.url("/echo"))
    assert conn.test()
