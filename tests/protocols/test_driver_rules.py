"""The protocol runtime's own rules, the same for every protocol, against small scripted servers on 127.0.0.1.

Scripted servers play exactly the moment a rule is about (a connection lost after a call was written and
before its answer, a socket that cannot take all of a verb's messages), which the reference servers only
reach by chance. What each rule is:

* a call written on a connection that is then lost fails at once with ``SocketClosedError`` naming that
  connection (STOMP receipts and Socket.IO acks included); a call waiting in the outbox when the socket
  closes for good fails too, and is dropped from the outbox;
* a verb's messages enter the outbox all or nothing;
* a protocol's refusal carries its ``data`` to ``ConnectError``, secrets masked;
* ``conn.topics`` stays bounded however many topics a feed has.
"""

from __future__ import annotations

import json
import threading
import tracemalloc
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from websockets.asyncio.server import ServerConnection

import nbsocket as nbs
from nbsocket.core.protocols.base import Action, Deliver, Protocol, Ready, Refused
from nbsocket.runtime.protocols import calls as calls_module
from nbsocket.runtime.protocols.calls import TOPICS_KEPT, RecentTopics
from tests.servers import WsServer, eventually

pytestmark = pytest.mark.timeout(60)

SLOW_RECONNECT = nbs.ReconnectPolicy(initial=30.0, maximum=30.0, jitter=0.0)
"""Reconnect only after 30 s: the socket stays down while a test looks at what waits for it."""

ENGINE_OPEN = '0{"sid":"engine-1","pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'


async def stomp_that_drops_on_a_receipt(ws: ServerConnection) -> None:
    """CONNECTED for a CONNECT; a SEND asking for a receipt is never confirmed: the connection drops instead."""
    async for message in ws:
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        if text.startswith("CONNECT"):
            await ws.send("CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\x00")
        elif text.startswith("SEND") and "\nreceipt:" in text:
            await ws.close(1012, "dropped on purpose")


async def socketio_that_drops_before_acking(ws: ServerConnection) -> None:
    """An Engine.IO open and a namespace CONNECT; an event asking for an ack drops the connection instead."""
    await ws.send(ENGINE_OPEN)
    async for message in ws:
        if message == "40":
            await ws.send('40{"sid":"socket-1"}')
        elif isinstance(message, str) and message.startswith("42"):
            await ws.close(1012, "dropped on purpose")


async def silent_after_open(ws: ServerConnection) -> None:
    """Reads everything and answers nothing (a JSON-RPC server that never replies)."""
    async for _ in ws:
        pass


@pytest.fixture()
def server(request: pytest.FixtureRequest) -> Iterator[WsServer]:
    with WsServer(request.param) as running:
        yield running


def call_in_thread(fn: Any, *args: Any, **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Run a blocking call on a thread; ``outcome`` gets its ``result`` or ``error``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = fn(*args, **kwargs)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("server", [stomp_that_drops_on_a_receipt], indirect=True)
def test_a_stomp_receipt_wait_fails_when_its_connection_is_lost(server: WsServer) -> None:
    mq = nbs.connect("mq", server.url, protocol="stomp", reconnect=SLOW_RECONNECT)
    with pytest.raises(nbs.SocketClosedError) as lost:  # not a WaitTimeoutError after 30 s
        mq.publish("/queue/a", {"p": 1}, receipt=True, timeout=30)
    assert "'mq' (connection 1, opened " in str(lost.value) and "stomp call 'rcpt-1'" in str(lost.value)


@pytest.mark.parametrize("server", [socketio_that_drops_before_acking], indirect=True)
def test_a_socketio_call_fails_when_its_connection_drops_before_the_ack(server: WsServer) -> None:
    sio = nbs.connect("sio", server.url, protocol="socketio", reconnect=SLOW_RECONNECT)
    with pytest.raises(nbs.SocketClosedError) as lost:  # it used to stay pending forever with timeout=None
        sio.call("echo", {"x": 1}, timeout=None)
    assert "'sio' (connection 1, opened " in str(lost.value) and "socketio call 1" in str(lost.value)


@pytest.mark.parametrize("server", [silent_after_open], indirect=True)
def test_calls_waiting_in_the_outbox_fail_when_the_socket_closes_for_good(server: WsServer) -> None:
    rpc = nbs.connect("rpc", server.url, protocol="jsonrpc", reconnect=SLOW_RECONNECT)
    server.stop()  # the connection drops and the socket waits 30 s before reconnecting
    eventually(lambda: rpc.state == "reconnecting", timeout=10)
    thread, outcome = call_in_thread(rpc.call, "add", [1, 2], timeout=None)
    eventually(lambda: rpc.queued == 1, timeout=10)
    rpc.disconnect()
    thread.join(10)
    error = outcome.get("error")
    assert isinstance(error, nbs.SocketClosedError), outcome
    assert "'rpc' is closed: jsonrpc call 1 got no reply (it was never sent)" in str(error)
    assert rpc.clear_outbox() == 0  # dropped, so a later reset does not send a call nobody waits for


@pytest.mark.parametrize("server", [socketio_that_drops_before_acking], indirect=True)
def test_a_verbs_messages_enter_the_outbox_all_or_nothing(server: WsServer) -> None:
    sio = nbs.connect("bin", server.url, protocol="socketio", reconnect=SLOW_RECONNECT, outbox_size=3)
    server.stop()
    eventually(lambda: sio.state == "reconnecting", timeout=10)
    sio.emit("one", 1)
    sio.emit("two", 2)
    with pytest.raises(nbs.OutboxFullError, match="these 3 messages go together: none of them was queued"):
        sio.emit("blob", b"first", b"second")  # the header packet and two attachments
    assert sio.clear_outbox() == 2
    with pytest.raises(nbs.OutboxFullError, match="outbox holds at most 3; none of them was queued"):
        sio.emit("blob", b"1", b"2", b"3")
    assert sio.clear_outbox() == 0


class Turnstile(Protocol):
    """A protocol that refuses every connection with the server's first message as data (a test's own protocol)."""

    name: ClassVar[str] = "turnstile"
    secret_options: ClassVar[tuple[str, ...]] = ("password",)

    def __init__(self, *, password: str = "", **options: Any) -> None:
        super().__init__(**options)
        self.password = password
        self._ready = False

    @property
    def ready(self) -> bool:
        return self._ready

    def start(self, now: float) -> list[str | bytes]:
        return [json.dumps({"login": self.password})]

    def receive(self, body: str | bytes, now: float) -> list[Action]:
        message = json.loads(body)
        if message.get("refused"):
            return [Refused("not today", data=message["refused"])]
        self._ready = True
        return [Ready(), Deliver("hello", message)]


async def refuse_with_data(ws: ServerConnection) -> None:
    """Answers the login with a refusal whose data echoes it, once with a long data."""
    login = json.loads(await ws.recv())["login"]
    detail: Any = {"why": "banned", "you sent": login}
    if login == "long":
        detail = {"why": "x" * 500}
    await ws.send(json.dumps({"refused": detail}))
    await ws.wait_closed()


@pytest.mark.parametrize("server", [refuse_with_data], indirect=True)
def test_a_refusal_carries_its_data_to_connect_error_with_secrets_masked(server: WsServer) -> None:
    nbs.register_protocol("turnstile", Turnstile)
    secret = "nbs-turnstile-password-7f3a"
    with pytest.raises(nbs.ConnectError) as refused:
        nbs.connect("gate", server.url, protocol="turnstile", password=secret)
    assert refused.value.kind == "protocol" and refused.value.data == {"why": "banned", "you sent": "***"}
    assert str(refused.value).endswith('not today (data: {"why":"banned","you sent":"***"})')
    assert secret not in str(refused.value) and secret not in repr(refused.value.data)
    with pytest.raises(nbs.ConnectError) as long:
        nbs.connect("gate", server.url, protocol="turnstile", password="long")
    assert long.value.data == {"why": "x" * 500} and "(data:" not in str(long.value)  # too long to show


def test_connect_error_data_is_optional_and_shown_only_when_short() -> None:
    assert str(nbs.ConnectError("refused", kind="protocol")) == "refused"
    assert nbs.ConnectError("refused", kind="protocol").data is None
    assert str(nbs.ConnectError("refused", kind="protocol", data=[1, "a"])) == 'refused (data: [1,"a"])'


def test_recent_topics_stay_bounded_for_a_feed_of_new_topics() -> None:
    """200,000 distinct topics (a Counter of them holds about 20 MB): only the last TOPICS_KEPT are counted, and
    what is kept stops growing once the table has its working size."""
    topics = RecentTopics()
    # only what the table and this test allocate (the topic names): other tests' threads may still be winding down
    only_the_table = [tracemalloc.Filter(True, calls_module.__file__), tracemalloc.Filter(True, __file__)]

    def kept() -> int:
        return sum(stat.size for stat in tracemalloc.take_snapshot().filter_traces(only_the_table).statistics("filename"))

    tracemalloc.start()
    try:
        before = kept()
        grown = []
        for n in range(200_000):
            topics.add(f"method-{n}")
            if n % 7 == 0:
                topics.add("hot")
            if n in (99_999, 199_999):
                grown.append(kept() - before)
    finally:
        tracemalloc.stop()
    assert len(topics) == TOPICS_KEPT and topics.forgotten == 200_001 - TOPICS_KEPT
    assert grown[1] < 1024 * 1024 and grown[1] - grown[0] < 16 * 1024, grown
    assert topics.most_common(1) == [("hot", 28_572)] and "method-199999" in topics.as_dict()
