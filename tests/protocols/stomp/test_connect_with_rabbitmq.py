"""``protocol="stomp"`` end to end against a private RabbitMQ with Web-STOMP (real broker, 127.0.0.1)."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest

import nbsocket as nbs
from nbsocket.core.redact import MASK
from tests.servers import eventually

from ...protocol_servers.rabbitmq import RabbitMQ, rabbitmq  # noqa: F401  (a fixture)

pytestmark = pytest.mark.timeout(120)


def queue_name() -> str:
    return f"/queue/nbs-{secrets.token_hex(4)}"


def connect(name: str, broker: RabbitMQ, **options: Any) -> nbs.ProtocolConnection:
    return nbs.connect(name, broker.ws_url, protocol="stomp", login=broker.login, passcode=broker.passcode, **options)


def test_subscribe_publish_receipt_and_bodies(rabbitmq: RabbitMQ) -> None:
    mq = connect("mq", rabbitmq)
    assert mq.protocol == "stomp" and mq.subprotocol == "v12.stomp"
    destination = queue_name()
    sub = mq.subscribe(destination)
    assert sub.topic == destination and sub.active and mq.subscriptions == [sub]
    waiter = mq.waiter(3)
    mq.publish(destination, {"p": 1}, receipt=True)
    mq.publish(destination, b"\x00\x01\xff binary")
    mq.publish(destination, "{not json", content_type="application/json")
    events = waiter.future.result(10)
    assert [e.topic for e in events] == [destination] * 3
    assert events[0].data == {"p": 1} and events[1].data == b"\x00\x01\xff binary"
    assert events[2].data is None and "JSON" in events[2].error  # kept, with its error
    frame = nbs.frame("mq")
    assert frame["topic"].tolist() == [destination] * 3 and frame["error"].notna().tolist() == [False, False, True]
    sub.cancel()
    assert not sub.active and mq.subscriptions == []


def test_passcode_is_redacted_everywhere(rabbitmq: RabbitMQ) -> None:
    mq = connect("secret", rabbitmq)
    bodies = " ".join(mq.transcript()["body"].dropna().astype(str))
    assert "CONNECT" in bodies and f"passcode:{MASK}" in bodies and f"passcode:{rabbitmq.passcode}" not in bodies
    assert rabbitmq.passcode not in repr(mq.options)


def test_client_ack_and_nack(rabbitmq: RabbitMQ) -> None:
    mq = connect("ack", rabbitmq)
    destination = queue_name()
    mq.subscribe(destination, ack="client-individual", headers={"prefetch-count": 1})
    mq.publish(destination, "job-1")
    first = mq.expect({"topic": destination}, timeout=10)
    first.nack()
    again = mq.expect({"topic": destination}, timeout=10)
    assert again.data == "job-1" and again.headers.get("redelivered") == "true"
    again.ack()
    mq.publish(destination, "job-2")
    assert mq.expect({"topic": destination}, timeout=10).data == "job-2"


def test_refused_passcode(rabbitmq: RabbitMQ) -> None:
    with pytest.raises(nbs.ConnectError) as info:
        nbs.connect("bad", rabbitmq.ws_url, protocol="stomp", login=rabbitmq.login, passcode="wrong-passcode")
    assert info.value.kind == "protocol" and "refused" in str(info.value)
    assert "wrong-passcode" not in str(info.value)
    assert "bad" not in nbs.connections()["name"].tolist()


def test_heartbeats_keep_the_session_with_a_slow_handler(rabbitmq: RabbitMQ) -> None:
    mq = connect("hb", rabbitmq, heartbeat=(1000, 1000), handler=lambda e: time.sleep(2))
    destination = queue_name()
    mq.subscribe(destination)
    mq.publish(destination, "a")
    mq.publish(destination, "b")
    time.sleep(4.5)
    assert mq.state == "open" and mq.stats.reconnects == 0
    assert (mq.transcript()["body"].astype(str) == "\n").any()  # heart-beats in the transcript only
    assert "\n" not in nbs.frame("hb")["data"].tolist()


def test_reconnect_resubscribes_before_queued_messages(rabbitmq: RabbitMQ) -> None:
    mq = connect("re", rabbitmq, reconnect=nbs.ReconnectPolicy(initial=0.2, maximum=0.5))
    destination = queue_name()
    sub = mq.subscribe(destination)
    waiter = mq.waiter(1)
    mq._abort()  # the TCP connection drops under it
    eventually(lambda: mq.state != "open", timeout=5.0)
    mq.publish(destination, "queued while down")
    eventually(lambda: mq.stats.reconnects >= 1 and mq.state == "open", timeout=15)
    (event,) = waiter.future.result(10)
    assert event.topic == destination and event.data == "queued while down" and sub.active


def test_broker_refusals_fail_at_once_reach_conn_errors_and_end_the_subscription(rabbitmq: RabbitMQ) -> None:
    """RabbitMQ refuses an invalid destination with an ERROR that has no receipt-id and keeps the connection."""
    got: list[nbs.WsEvent] = []
    mq = connect("refusals", rabbitmq, handler=got.append, reconnect=nbs.ReconnectPolicy(initial=0.2, maximum=0.5))
    with pytest.raises(nbs.RemoteError) as refused:  # at once, not a WaitTimeoutError after 30 s
        mq.publish("/no-such-kind/x", {"p": 1}, receipt=True, timeout=30)
    assert str(refused.value).startswith("Unknown destination; '/no-such-kind/x' is not a valid destination")
    assert refused.value.data["message"] == "Unknown destination"
    destination = queue_name()
    good = mq.subscribe(destination)
    bad = mq.subscribe("/no-such-kind/y")
    eventually(lambda: not bad.active, timeout=10)
    assert good.active and mq.subscriptions == [good]
    stomp_errors = [e for e in mq.errors if e.error == "StompError"]
    assert len(stomp_errors) == 2 and f"subscription {bad.id} to /no-such-kind/y" in stomp_errors[1].message
    mq.publish(destination, "still fine", receipt=True)
    assert mq.expect({"topic": destination}, timeout=10).data == "still fine"
    eventually(lambda: len(got) == 1, timeout=10)
    assert [e.topic for e in got] == [destination]  # no handler event with topic None for the ERRORs
    mq._abort()
    eventually(lambda: mq.stats.reconnects >= 1 and mq.state == "open", timeout=15)
    mq.publish(destination, "after the reconnect", receipt=True)
    assert mq.expect(lambda e: e.topic == destination and e.data == "after the reconnect", timeout=10)
    bodies = mq.transcript()["body"].astype(str)
    assert bodies.str.contains("destination:/no-such-kind/y").sum() == 1  # the refused SUBSCRIBE was never sent again
    assert len([e for e in mq.errors if e.error == "StompError"]) == 2
