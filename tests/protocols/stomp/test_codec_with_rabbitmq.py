"""The STOMP protocol object against a real broker: RabbitMQ's Web-STOMP on 127.0.0.1.

A plain ``websockets`` client carries the bytes; :class:`STOMP` does everything
else (handshake, heart-beats, subscriptions, receipts, acks). The broker is a
private RabbitMQ started for the session (``tests/protocol_servers/rabbitmq.py``);
when RabbitMQ is not installed these tests fail and say how to install it.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterator

import pytest
from websockets.sync.client import ClientConnection, connect

from nbsocket.core.protocols.base import Action, Close, Deliver, Housekeeping, Malformed, Ready, Refused, Reply, Report, Send
from nbsocket.core.protocols.stomp import STOMP

from ...protocol_servers.rabbitmq import RabbitMQ, rabbitmq  # noqa: F401  (a fixture)

pytestmark = pytest.mark.timeout(120)


class Session:
    """Drives a :class:`STOMP` object over one WebSocket, the way the runtime will (minus threads).

    Messages are read undecoded (``recv(decode=False)``): RabbitMQ sends frames
    in text messages, and a binary body would make them invalid UTF-8.
    """

    def __init__(self, url: str, stomp: STOMP) -> None:
        self.url = url
        self.stomp = stomp
        self.ws: ClientConnection | None = None
        self.actions: list[Action] = []  # every action seen, in order
        self._unclaimed: list[Action] = []  # actions no wait_for has returned yet
        self.sent: list[str | bytes] = []
        self._exit = contextlib.ExitStack()

    def open(self) -> Session:
        self.ws = self._exit.enter_context(
            connect(self.url, subprotocols=list(STOMP.subprotocols), open_timeout=10, close_timeout=2)
        )
        assert self.ws.subprotocol == "v12.stomp"
        self.send(self.stomp.start(time.monotonic()))
        return self

    def send(self, messages: list[str | bytes]) -> None:
        assert self.ws is not None
        for message in messages:
            self.ws.send(message)
            self.sent.append(message)

    def _carry_out(self, actions: list[Action]) -> None:
        for action in actions:
            self.actions.append(action)
            self._unclaimed.append(action)
            if isinstance(action, Send):
                self.send([action.payload])

    def wait_for(self, wanted: Callable[[Action], bool], timeout: float = 10.0) -> Action:
        """The first action not returned before that matches ``wanted``, pumping messages and timers until it comes."""
        assert self.ws is not None
        deadline = time.monotonic() + timeout
        while True:
            for index, action in enumerate(self._unclaimed):
                if wanted(action):
                    return self._unclaimed.pop(index)
            now = time.monotonic()
            if now >= deadline:
                raise AssertionError(f"no matching action within {timeout} s; saw {self.actions[-10:]}")
            due = self.stomp.next_deadline()
            if due is not None and due <= now:
                self._carry_out(self.stomp.poll(now))
                continue
            wait = min(deadline, due if due is not None else deadline) - now
            try:
                message = self.ws.recv(timeout=max(wait, 0.01), decode=False)
            except TimeoutError:
                continue
            self._carry_out(self.stomp.receive(message, time.monotonic()))

    def close(self) -> None:
        if self.ws is not None:
            self._exit.close()
            self.ws = None
            self.stomp.closed()


@pytest.fixture
def session(rabbitmq: RabbitMQ) -> Iterator[Session]:
    """A STOMP session as guest, past its handshake."""
    live = Session(rabbitmq.ws_url, STOMP(login=rabbitmq.login, passcode=rabbitmq.passcode)).open()
    live.wait_for(lambda a: isinstance(a, Ready))
    yield live
    live.close()


def queue_name() -> str:
    return f"/queue/nbsocket-{secrets.token_hex(4)}"


def test_broker_startup_is_measured(rabbitmq: RabbitMQ) -> None:
    assert rabbitmq.startup_seconds is not None and rabbitmq.startup_seconds < 120


def test_connect_reports_the_broker(session: Session) -> None:
    ready = next(a for a in session.actions if isinstance(a, Ready))
    assert ready.info["version"] == "1.2"
    assert ready.info["server"].startswith("RabbitMQ/")
    assert ready.info["session"]
    assert session.stomp.ready


def test_refused_passcode_gives_the_brokers_reason(rabbitmq: RabbitMQ) -> None:
    refused_session = Session(rabbitmq.ws_url, STOMP(login=rabbitmq.login, passcode="not-the-passcode")).open()
    try:
        refused = refused_session.wait_for(lambda a: isinstance(a, (Refused, Ready)))
        assert isinstance(refused, Refused)
        assert "access refused" in refused.reason.lower() or "login" in refused.reason.lower()
        assert "not-the-passcode" not in refused.reason
        assert not refused_session.stomp.ready
        # RabbitMQ leaves the socket open after refusing: closing it is up to the client (the runtime).
    finally:
        refused_session.close()


def test_subscribe_publish_with_receipt_and_receive(session: Session) -> None:
    destination = queue_name()
    sub_id, topic, frames = session.stomp.subscribe(destination)
    session.send(frames)
    receipt_id, frames = session.stomp.publish_with_receipt(destination, {"price": 101.5, "sym": "ABC"})
    session.send(frames)
    reply = session.wait_for(lambda a: isinstance(a, Reply))
    assert reply.id == receipt_id and reply.error is None
    deliver = session.wait_for(lambda a: isinstance(a, Deliver))
    assert deliver.topic == topic == destination
    assert deliver.data == {"price": 101.5, "sym": "ABC"} and deliver.error is None
    assert deliver.headers["subscription"] == sub_id and deliver.ack is None


def test_text_binary_and_bad_json_bodies(session: Session) -> None:
    destination = queue_name()
    session.send(session.stomp.subscribe(destination)[2])
    session.send(session.stomp.publish(destination, "héllo\nworld"))
    session.send(session.stomp.publish(destination, b"\x00\x01\xff binary"))
    session.send(session.stomp.publish(destination, "{not json", content_type="application/json"))
    got = [session.wait_for(lambda a: isinstance(a, (Deliver, Malformed))) for _ in range(3)]
    assert [type(a) for a in got] == [Deliver] * 3
    assert got[0].data == "héllo\nworld"
    assert got[1].data == b"\x00\x01\xff binary"
    assert got[2].data is None and "JSON" in got[2].error


def test_several_messages_in_order(session: Session) -> None:
    destination = queue_name()
    session.send(session.stomp.subscribe(destination)[2])
    for n in range(20):
        session.send(session.stomp.publish(destination, {"n": n}))
    got = [session.wait_for(lambda a: isinstance(a, Deliver)).data["n"] for _ in range(20)]
    assert got == list(range(20))


def test_client_ack_nack_redelivers_then_ack(session: Session) -> None:
    destination = queue_name()
    session.send(session.stomp.subscribe(destination, ack="client-individual", headers={"prefetch-count": 1})[2])
    session.send(session.stomp.publish(destination, "job-1"))
    first = session.wait_for(lambda a: isinstance(a, Deliver))
    assert first.data == "job-1" and first.ack is not None
    session.send(session.stomp.acknowledge(first.ack, positive=False))  # RabbitMQ requeues on NACK
    again = session.wait_for(lambda a: isinstance(a, Deliver))
    assert again.data == "job-1" and again.headers.get("redelivered") == "true"
    receipt_id = "ack-receipt"
    (ack_frame,) = session.stomp.acknowledge(again.ack)
    session.send([ack_frame.replace("ACK\n", f"ACK\nreceipt:{receipt_id}\n", 1)])
    assert session.wait_for(lambda a: isinstance(a, Reply)).id == receipt_id


def test_heartbeats_are_exchanged_and_keep_the_session(rabbitmq: RabbitMQ) -> None:
    live = Session(rabbitmq.ws_url, STOMP(login=rabbitmq.login, passcode=rabbitmq.passcode, heartbeat=(500, 500))).open()
    try:
        ready = live.wait_for(lambda a: isinstance(a, Ready))
        send_ms, expect_ms = ready.info["heart-beat"]
        assert 500 <= send_ms <= 1000 and 500 <= expect_ms <= 1000  # RabbitMQ asks for no less than 1 s
        live.wait_for(lambda a: isinstance(a, Housekeeping) and a.what == "heart-beat", timeout=5)
        start = time.monotonic()
        with pytest.raises(AssertionError):  # nothing but heart-beats for 3 s, and no Close
            live.wait_for(lambda a: isinstance(a, (Close, Deliver, Malformed)), timeout=3)
        assert time.monotonic() - start >= 3
        assert live.sent.count("\n") >= 2
        destination = queue_name()
        live.send(live.stomp.subscribe(destination)[2])
        live.send(live.stomp.publish(destination, "still here"))
        assert live.wait_for(lambda a: isinstance(a, Deliver)).data == "still here"
    finally:
        live.close()


def test_reconnect_resubscribes(rabbitmq: RabbitMQ) -> None:
    stomp = STOMP(login=rabbitmq.login, passcode=rabbitmq.passcode)
    destination = queue_name()
    first = Session(rabbitmq.ws_url, stomp).open()
    first.wait_for(lambda a: isinstance(a, Ready))
    sub_id, _, frames = stomp.subscribe(destination)
    first.send(frames)
    first.close()
    second = Session(rabbitmq.ws_url, stomp).open()  # the same protocol object, as after a reconnect
    try:
        second.wait_for(lambda a: isinstance(a, Ready))
        resent = [a.payload for a in second.actions if isinstance(a, Send)]
        assert len(resent) == 1 and f"id:{sub_id}\n" in resent[0]
        second.send(stomp.publish(destination, "after reconnect"))
        deliver = second.wait_for(lambda a: isinstance(a, Deliver))
        assert deliver.data == "after reconnect" and deliver.headers["subscription"] == sub_id
    finally:
        second.close()


def test_refusals_of_rabbitmq_are_pinned_on_the_frame_they_refuse(session: Session) -> None:
    """RabbitMQ refuses an invalid destination with an ERROR without receipt-id and keeps the connection: the
    refused SUBSCRIBE ends its subscription, the refused SEND's receipt fails, later frames are unaffected."""
    good, _, messages = session.stomp.subscribe(f"/queue/nbs-{secrets.token_hex(4)}")
    session.send(messages)
    session.wait_for(lambda a: isinstance(a, Housekeeping) and good in a.what)  # its receipt
    bad, _, messages = session.stomp.subscribe("/no-such-kind/x")
    session.send(messages)
    report = session.wait_for(lambda a: isinstance(a, Report))
    assert f"subscription {bad} to /no-such-kind/x" in report.message and "Unknown destination" in report.message
    assert list(session.stomp.subscriptions) == [good]
    refused, messages = session.stomp.publish_with_receipt("/no-such-kind/y", "x")
    session.send(messages)
    later, messages = session.stomp.publish_with_receipt("/queue/fine", "y")
    session.send(messages)
    failed = session.wait_for(lambda a: isinstance(a, Reply) and a.id == refused)
    assert failed.error["message"].startswith("Unknown destination; '/no-such-kind/y' is not a valid destination")
    assert failed.error["data"]["message"] == "Unknown destination"
    assert session.wait_for(lambda a: isinstance(a, Reply) and a.id == later).error is None
    assert not [a for a in session.actions if isinstance(a, Deliver)]  # an ERROR is never a message for handlers
