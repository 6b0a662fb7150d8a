"""The Socket.IO test server works (checked with python-socketio's own client), and the sans-I/O
``SocketIO`` protocol object talks to it over a plain ``websockets`` connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("socketio")
pytest.importorskip("aiohttp")

import socketio
from websockets.asyncio.client import ClientConnection, connect

from nbsocket.core.protocols.base import Close, Deliver, Housekeeping, Malformed, Ready, Refused, Reply, Send
from nbsocket.core.protocols.socketio import SocketIO
from tests.protocol_servers.socketio_server import ADMIN_NAMESPACE, SocketIOServer
from tests.servers import eventually

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def server() -> Iterator[SocketIOServer]:
    with SocketIOServer(ping_interval=1, ping_timeout=1) as srv:
        yield srv


# --- the server, with python-socketio's own client --------------------------------------


async def _reference_client_session(srv: SocketIOServer) -> dict[str, Any]:
    client = socketio.AsyncClient(reconnection=False)
    got: dict[str, Any] = {"chat": asyncio.Queue(), "bin": asyncio.Queue()}
    client.on("chat", lambda data: got["chat"].put_nowait(data))
    client.on("bin_echo", lambda *args: got["bin"].put_nowait(args))
    client.on("question", lambda *args: ("answer", *args))  # a tuple acks with several values
    await client.connect(srv.http_url, transports=["websocket"])
    try:
        got["echo"] = await client.call("echo", {"x": 1}, timeout=5)
        got["echo_many"] = await client.call("echo", (1, 2), timeout=5)
        await client.emit("chat", {"text": "hi"})
        got["chat_data"] = await asyncio.wait_for(got["chat"].get(), 5)
        got["bin_ack"] = await client.call("bin_echo", b"\x00\xff", timeout=5)
        got["bin_event"] = await asyncio.wait_for(got["bin"].get(), 5)
        await client.emit("ask", "why")
        await asyncio.sleep(2.5)  # several ping intervals: the session must survive them
        got["still_connected"] = client.connected
    finally:
        await client.disconnect()
    return got


def test_reference_client_against_the_server(server: SocketIOServer) -> None:
    got = asyncio.run(_reference_client_session(server))
    assert got["echo"] == {"x": 1}
    assert got["echo_many"] == (1, 2)
    assert got["chat_data"] == {"text": "hi"}
    assert got["bin_ack"] == b"\x00\xff"
    assert got["bin_event"] == (b"\x00\xff",)
    assert got["still_connected"]
    eventually(lambda: ("/", "question", ["answer", "why"]) in server.acks, timeout=5.0)


async def _reference_admin(srv: SocketIOServer, token: str) -> Any:
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", lambda data: errors.append(data), namespace=ADMIN_NAMESPACE)
    try:
        await client.connect(srv.http_url, namespaces=[ADMIN_NAMESPACE], auth={"token": token}, transports=["websocket"])
    except socketio.exceptions.ConnectionError:
        return errors
    try:
        return await client.call("stats", namespace=ADMIN_NAMESPACE, timeout=5)
    finally:
        await client.disconnect()


def test_reference_client_admin_namespace(server: SocketIOServer) -> None:
    assert asyncio.run(_reference_admin(server, "good")) == {"clients": 1}
    refused_before = server.refused
    assert asyncio.run(_reference_admin(server, "bad")) == [{"message": "bad token"}]
    assert server.refused == refused_before + 1


# --- the SocketIO protocol object over plain websockets ---------------------------------


class Driver:
    """The smallest runtime: feeds a ``websockets`` connection to a ``SocketIO`` object and carries out its actions."""

    def __init__(self, protocol: SocketIO, url: str) -> None:
        self.protocol = protocol
        self.url = protocol.prepare_url(url)
        self.ws: ClientConnection | None = None
        self.events: asyncio.Queue[Deliver] = asyncio.Queue()
        self.replies: dict[Any, asyncio.Future[Reply]] = {}
        self.ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.log: list[Any] = []
        self.closed_by_protocol: Close | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> Any:
        self.ws = await connect(self.url)
        for message in self.protocol.start(time.monotonic()):
            await self.ws.send(message)
        self._reader = asyncio.create_task(self._read())
        return await asyncio.wait_for(asyncio.shield(self.ready), 5)

    async def _read(self) -> None:
        assert self.ws is not None
        while True:
            deadline = self.protocol.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                body = await asyncio.wait_for(self.ws.recv(), timeout)
            except asyncio.TimeoutError:
                await self._act(self.protocol.poll(time.monotonic()))
                continue
            except Exception:
                self.protocol.closed()
                return
            await self._act(self.protocol.receive(body, time.monotonic()))

    async def _act(self, actions: list[Any]) -> None:
        assert self.ws is not None
        for action in actions:
            self.log.append(action)
            if isinstance(action, Send):
                await self.ws.send(action.payload)
            elif isinstance(action, Deliver):
                self.events.put_nowait(action)
            elif isinstance(action, Reply):
                self.replies.setdefault(action.id, asyncio.get_running_loop().create_future()).set_result(action)
            elif isinstance(action, Ready):
                self.ready.set_result(action.info)
            elif isinstance(action, Refused):
                self.ready.set_exception(ConnectionRefusedError(action.reason))
            elif isinstance(action, Close):
                self.closed_by_protocol = action
                await self.ws.close(action.code, action.reason)

    async def send(self, messages: list[str | bytes]) -> None:
        assert self.ws is not None
        for message in messages:
            await self.ws.send(message)

    async def call(self, event: str, *args: Any) -> Any:
        ack_id, messages = self.protocol.call(event, *args)
        future = self.replies.setdefault(ack_id, asyncio.get_running_loop().create_future())
        await self.send(messages)
        return (await asyncio.wait_for(future, 5)).value

    async def next_event(self, topic: str) -> Deliver:
        while True:
            event = await asyncio.wait_for(self.events.get(), 5)
            if event.topic == topic:
                return event

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader


async def _protocol_session(srv: SocketIOServer) -> dict[str, Any]:
    driver = Driver(SocketIO(), srv.url)
    got: dict[str, Any] = {"info": await driver.open()}
    got["echo"] = await driver.call("echo", {"x": 1})
    got["echo_many"] = await driver.call("echo", 1, [2, 3])
    await driver.send(driver.protocol.emit("chat", {"text": "hi"}))
    got["chat"] = (await driver.next_event("chat")).data
    got["bin_ack"] = await driver.call("bin_echo", b"\x00\xff", {"nested": b"\x01"})
    got["bin_event"] = (await driver.next_event("bin_echo")).data
    await driver.send(driver.protocol.emit("ask", "why"))
    question = await driver.next_event("question")
    got["question"] = question
    await driver.send(driver.protocol.acknowledge(question.ack, ("answer", b"\x07")))
    await asyncio.sleep(2.5)  # ping interval 1s: the protocol must pong in time
    got["pings"] = sum(1 for action in driver.log if action == Housekeeping("ping"))
    got["open_after_pings"] = driver.ws is not None and driver.ws.state.name == "OPEN"
    got["malformed"] = [action for action in driver.log if isinstance(action, Malformed)]
    await driver.close()
    return got


def test_protocol_object_against_the_server(server: SocketIOServer) -> None:
    got = asyncio.run(_protocol_session(server))
    assert got["info"]["sid"] and got["info"]["engine_sid"]
    assert got["echo"] == {"x": 1}
    assert got["echo_many"] == [1, [2, 3]]
    assert got["chat"] == {"text": "hi"}
    assert got["bin_ack"] == [b"\x00\xff", {"nested": b"\x01"}]
    assert got["bin_event"] == [b"\x00\xff", {"nested": b"\x01"}]
    assert got["question"].data == "why" and got["question"].ack is not None
    assert got["pings"] >= 2
    assert got["open_after_pings"]
    assert got["malformed"] == []
    eventually(lambda: ("/", "question", ["answer", b"\x07"]) in server.acks, timeout=5.0)


async def _protocol_admin(srv: SocketIOServer, token: str) -> Any:
    driver = Driver(SocketIO(namespace=ADMIN_NAMESPACE, auth={"token": token}), srv.url)
    try:
        await driver.open()
    except ConnectionRefusedError as exc:
        await driver.close()
        return exc
    try:
        return await driver.call("stats"), await driver.call("echo", "a", "b")
    finally:
        await driver.close()


def test_protocol_object_admin_namespace_and_auth(server: SocketIOServer) -> None:
    stats, echo = asyncio.run(_protocol_admin(server, "good"))
    assert stats == {"clients": 1}
    assert echo == ["a", "b"]
    refused = asyncio.run(_protocol_admin(server, "wrong"))
    assert isinstance(refused, ConnectionRefusedError) and "bad token" in str(refused)


async def _server_ends_session(srv: SocketIOServer, how: str) -> Driver:
    driver = Driver(SocketIO(), srv.url)
    await driver.open()
    if how == "kick":
        await driver.send(driver.protocol.emit("kick"))
    else:
        await asyncio.to_thread(getattr(srv, how))
    assert driver._reader is not None
    await asyncio.wait_for(driver._reader, 5)
    return driver


@pytest.mark.parametrize("how", ["kick", "disconnect_all", "drop_all"])
def test_server_ending_the_session_is_seen(server: SocketIOServer, how: str) -> None:
    driver = asyncio.run(_server_ends_session(server, how))
    assert not driver.protocol.ready
    if how in ("kick", "disconnect_all"):  # a protocol goodbye: the protocol object asks to close
        assert isinstance(driver.closed_by_protocol, Close)
    else:  # only the transport closed
        assert driver.closed_by_protocol is None


async def _reconnect_after_restart(srv: SocketIOServer) -> tuple[Any, Any]:
    protocol = SocketIO()
    first = Driver(protocol, srv.url)
    await first.open()
    before = await first.call("echo", 1)
    await asyncio.to_thread(srv.restart)
    await asyncio.wait_for(first._reader, 5)  # type: ignore[arg-type]
    second = Driver(protocol, srv.url)  # the same protocol object, as the runtime reconnects with it
    await second.open()
    after = await second.call("echo", 2)
    await second.close()
    return before, after


def test_restart_and_reconnect_with_the_same_protocol_object(server: SocketIOServer) -> None:
    assert asyncio.run(_reconnect_after_restart(server)) == (1, 2)


async def _silent_server(srv: SocketIOServer) -> Driver:
    """A client that never answers pings is dropped by the server after ping_interval + ping_timeout."""
    driver = Driver(SocketIO(), srv.url)
    original = driver._act

    async def no_pongs(actions: list[Any]) -> None:
        await original([a for a in actions if not (isinstance(a, Send) and a.payload == "3")])

    driver._act = no_pongs  # type: ignore[method-assign]
    await driver.open()
    await asyncio.wait_for(driver._reader, 10)  # type: ignore[arg-type]
    return driver


def test_server_drops_a_client_that_does_not_pong(server: SocketIOServer) -> None:
    driver = asyncio.run(_silent_server(server))
    assert not driver.protocol.ready
