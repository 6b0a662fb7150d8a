"""The hostile-input list of issue 11: each case against a real server on 127.0.0.1."""

from __future__ import annotations

import time

import pytest

import nbsocket as nbs

from .servers import WsServer, eventually

FAST = nbs.ReconnectPolicy(initial=0.05, maximum=0.2, stable_after=1.0)


# --- on_open goes first, even with a full outbox -------------------------------------------

@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_on_open_sends_bypass_a_full_outbox_and_go_first(unused_port, asynchronous) -> None:
    def on_open(conn):
        conn.send("auth")
        conn.send("subscribe")

    async def on_open_async(conn):
        on_open(conn)

    server = WsServer(port=unused_port).start()
    try:
        conn = nbs.connect("full", server.url, content_type="text/plain", reconnect=FAST, outbox_size=3,
                           on_open=on_open_async if asynchronous else on_open)
        eventually(lambda: server.received == ["auth", "subscribe"])
        server.stop()
        eventually(lambda: conn.state == "reconnecting")
        for n in range(3):
            conn.send(f"queued {n}")
        with pytest.raises(nbs.OutboxFullError):
            conn.send("one too many")
        started = time.monotonic()
        server.start()
        eventually(lambda: len(server.received) == 7, timeout=8)
        assert server.received[2:] == ["auth", "subscribe", "queued 0", "queued 1", "queued 2"]
        assert time.monotonic() - started < 5  # no wait for room that only comes after on_open returns
        assert not [e for e in conn.errors if e.where == "on_open"]
    finally:
        server.__exit__()


# --- unencodable text is refused at send ----------------------------------------------------

def test_a_lone_surrogate_is_refused_at_send_and_the_socket_stays_open() -> None:
    with WsServer() as server:
        conn = nbs.connect("sur", server.url, content_type="text/plain")
        with pytest.raises(nbs.EncodeError, match="surrogate|UTF-8"):
            conn.send("a\ud800b")
        with pytest.raises(nbs.EncodeError):
            nbs.send("sur", "\udfff")
        reply = conn.request("still fine", timeout=5)
        assert reply.data == "still fine" and conn.state == "open"
