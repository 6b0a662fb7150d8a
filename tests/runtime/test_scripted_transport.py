"""What the runtime does on its own, through the scripted transport (no network): handler order, the outbox
across reconnects, the reconnect policy, dispatch isolation, backpressure and a protocol's calls.

The real-server tests stay; these pin down the runtime's rules where a network would only add noise.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import nbsocket as nbs
from nbsocket.errors import ConnectError
from nbsocket.runtime import Manager, ScriptedPeer, ScriptedTransport

from ..servers import eventually

FAST = nbs.ReconnectPolicy(initial=0.01, maximum=0.05, stable_after=0.01)


@pytest.fixture
def managers() -> Iterator[list[Manager]]:
    """Managers made by a test, shut down after it."""
    made: list[Manager] = []
    yield made
    for manager in made:
        manager.shutdown()


def manager_for(managers: list[Manager], transport: ScriptedTransport) -> Manager:
    manager = Manager(transport=transport)
    managers.append(manager)
    return manager


def test_batches_reach_handlers_and_the_frame_in_order_with_consecutive_seq(managers: list[Manager]) -> None:
    async def server(peer: ScriptedPeer) -> None:
        await peer.send_batch([json.dumps({"n": n}) for n in range(3)])
        await peer.send_batch([json.dumps({"n": n}) for n in range(3, 10)])
        await peer.send("not json")

    seen: list[tuple[int, Any]] = []
    manager = manager_for(managers, ScriptedTransport(server))
    conn = manager.connect("s", "ws://scripted/", handler=lambda event: seen.append((event.seq, event.data)))
    eventually(lambda: len(seen) == 11)
    assert [seq for seq, _ in seen] == list(range(1, 12))
    assert [data for _, data in seen[:10]] == [{"n": n} for n in range(10)]
    assert seen[10] == (11, None)  # kept, with its parse error
    frame = manager.frame("s")
    assert list(frame["seq"]) == list(range(1, 12)) and frame["error"].notna().sum() == 1
    assert conn.received == 11


def test_messages_sent_while_reconnecting_go_out_in_order_after_the_reopen(managers: list[Manager]) -> None:
    dropped = threading.Event()
    second: list[str | bytes] = []

    async def server(peer: ScriptedPeer) -> None:
        if peer.attempt == 1:
            assert await peer.recv() == "before"
            peer.drop()
            dropped.set()
            return
        for _ in range(5):
            second.append(await peer.recv())

    manager = manager_for(managers, ScriptedTransport(server, refuse=lambda attempt: _refused() if attempt == 2 else None))
    conn = manager.connect("s", "ws://scripted/", reconnect=FAST)
    conn.send("before")
    assert dropped.wait(5)
    for n in range(5):
        conn.send(f"queued {n}")  # the socket is down or reconnecting: they wait in the outbox
    eventually(lambda: len(second) == 5)
    assert second == [f"queued {n}" for n in range(5)]
    assert conn.stats.reconnects >= 1 and conn.state == "open"


def _refused() -> ConnectError:
    return ConnectError("cannot connect to ws://scripted/: connection refused", kind="refused")


def test_the_policy_gives_up_after_max_attempts_and_says_so(managers: list[Manager]) -> None:
    async def server(peer: ScriptedPeer) -> None:
        peer.drop()

    transport = ScriptedTransport(server, refuse=lambda attempt: _refused() if attempt > 1 else None)
    manager = manager_for(managers, transport)
    conn = manager.connect("s", "ws://scripted/", reconnect=nbs.ReconnectPolicy(initial=0.01, maximum=0.02, max_attempts=3))
    eventually(lambda: conn.state == "failed")
    assert transport.opens == 4  # the first open, then three refused attempts
    assert any("refused" in e.message for e in conn.errors)


def test_close_codes_not_worth_retrying_end_in_failed(managers: list[Manager]) -> None:
    async def server(peer: ScriptedPeer) -> None:
        await peer.send("hello")
        await asyncio.sleep(0.05)
        await peer.close(4001, "go away")

    transport = ScriptedTransport(server)
    manager = manager_for(managers, transport)
    conn = manager.connect("s", "ws://scripted/", reconnect=FAST)
    eventually(lambda: conn.state == "failed")
    assert transport.opens == 1 and conn.close_code == 4001
    assert any(e.where == "close" and "not retried" in e.message for e in conn.errors)


def test_a_refusal_right_after_the_handshake_makes_connect_raise_and_leaves_nothing(managers: list[Manager]) -> None:
    async def server(peer: ScriptedPeer) -> None:
        await peer.close(1008, "no token")

    manager = manager_for(managers, ScriptedTransport(server))
    with pytest.raises(ConnectError, match="1008") as caught:
        manager.connect("s", "ws://scripted/")
    assert caught.value.kind == "closed"
    assert "s" not in manager


def test_a_blocked_handler_holds_up_no_other_socket(managers: list[Manager]) -> None:
    release = threading.Event()

    async def server(peer: ScriptedPeer) -> None:
        for n in range(20):
            await peer.send(str(n))
            await asyncio.sleep(0.001)

    manager = manager_for(managers, ScriptedTransport(server))
    stuck: list[str] = []
    free: list[str] = []
    manager.connect(
        "stuck", "ws://scripted/a", content_type="text/plain", handler=lambda event: (stuck.append(event.data), release.wait(10))
    )
    manager.connect("free", "ws://scripted/b", content_type="text/plain", handler=lambda event: free.append(event.data))
    eventually(lambda: len(free) == 20)
    assert stuck == ["0"]  # still in its first handler call
    release.set()
    eventually(lambda: len(stuck) == 20)


def test_a_flood_the_handlers_cannot_follow_pauses_reading_and_loses_nothing(managers: list[Manager]) -> None:
    slow = threading.Event()
    paused: list[bool] = []

    async def server(peer: ScriptedPeer) -> None:
        for n in range(20):
            await peer.send_batch([str(n * 10 + i) for i in range(10)])
        paused.append(peer.wire.reading_paused)  # the client stopped reading: the rest waits on the server's side

    seen: list[str] = []
    manager = manager_for(managers, ScriptedTransport(server))
    manager.connect(
        "flood",
        "ws://scripted/",
        content_type="text/plain",
        max_queue=50,
        handler=lambda event: (slow.wait(0.001), seen.append(event.data)),
    )
    eventually(lambda: len(seen) == 200, timeout=20)
    assert seen == [str(n) for n in range(200)]
    assert paused == [True]


def test_a_protocol_call_is_answered_through_the_scripted_server(managers: list[Manager]) -> None:
    async def server(peer: ScriptedPeer) -> None:
        while True:
            request = json.loads(await peer.recv())
            await peer.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": sum(request["params"])}))

    manager = manager_for(managers, ScriptedTransport(server))
    rpc = manager.connect("rpc", "ws://scripted/", protocol="jsonrpc")
    assert rpc.call("add", [1, 2, 3], timeout=5) == 6
    assert rpc.call("add", [], timeout=5) == 0


def test_a_protocol_socket_frame_has_its_topic_column_before_the_first_message(managers: list[Manager]) -> None:
    async def server(peer: ScriptedPeer) -> None:
        await peer.recv(timeout=None)

    manager = manager_for(managers, ScriptedTransport(server))
    manager.connect("rpc", "ws://scripted/", protocol="jsonrpc")
    manager.connect("plain", "ws://scripted/")
    empty = manager.frame("rpc")
    assert list(empty.columns) == ["timestamp", "socket", "seq", "topic"]
    assert empty[empty.topic == "x"].empty  # filtering by topic works on an empty frame
    assert "topic" not in manager.frame("plain").columns
