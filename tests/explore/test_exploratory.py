"""request / expect / ping / latency against the demo server and a server that misbehaves on purpose."""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
import threading
from typing import Any

import pytest

import nbsocket as nbs
from nbsocket.core.match import MISSING, compile_match, field

from ..misbehaving import url_of
from ..servers import eventually

pytestmark = pytest.mark.timeout(60)


def own_observers(conn: nbs.Connection) -> list[Any]:
    return [o for o in conn._observers if o is not conn._transcript.recorder]


# --- matching -------------------------------------------------------------------------------


def test_field_reaches_nested_values_list_items_and_dotted_keys() -> None:
    data = {"quote": {"bid": 1.5}, "items": [{"id": 7}], "a.b": 2}
    assert field(data, "quote.bid") == 1.5
    assert field(data, "items.0.id") == 7
    assert field(data, "items.-1.id") == 7
    assert field(data, "a.b") == 2
    assert field(data, "quote.ask") is MISSING
    assert field(data, "items.3.id") is MISSING
    assert field("text", "x") is MISSING


def test_compile_match_variants() -> None:
    def event(data: Any) -> Any:
        return type("E", (), {"data": data})()

    assert compile_match({"type": "ack", "n": lambda v: v > 2})(event({"type": "ack", "n": 3}))
    assert not compile_match({"type": "ack", "n": lambda v: v > 2})(event({"type": "ack", "n": 1}))
    assert compile_match("id", {"id": 4})(event({"id": 4, "x": 1}))
    assert not compile_match("id", {"id": 4})(event({"id": 5}))
    raising = compile_match(lambda e: e.data["missing"])
    assert not raising(event({}))
    assert raising.errors == 1 and "KeyError" in (raising.error or "")
    with pytest.raises(nbs.InvalidOptionError, match="not a dict"):
        compile_match("id", "plain text")
    with pytest.raises(nbs.InvalidOptionError, match="no field 'id'"):
        compile_match("id", {"other": 1})
    with pytest.raises(nbs.InvalidOptionError, match="predicate"):
        compile_match(42)  # type: ignore[arg-type]


# --- request ------------------------------------------------------------------------------------


def test_request_returns_the_reply_and_its_round_trip(demo: Any) -> None:
    conn = nbs.connect("echo", demo.url("/echo"))
    reply = conn.request({"id": 1, "q": {"a": 1}}, match="id")
    assert reply.data == {"id": 1, "q": {"a": 1}}
    assert reply.rtt > 0
    event, rtt = reply
    assert isinstance(event, nbs.WsEvent) and rtt == reply.rtt
    assert conn.request({"id": 2, "q": {"a": 5}}, match={"q.a": 5}).data["id"] == 2
    assert conn.request("hello", match=lambda e: e.request.body == "hello").event.error is not None  # text on a JSON socket
    assert own_observers(conn) == []


def test_concurrent_requests_get_their_own_replies_among_noise(bad_server: Any) -> None:
    conn = nbs.connect("bad", url_of(bad_server, "noise=0.005"))

    def ask(i: int) -> nbs.Reply:
        # later ids answer sooner: replies come back out of order
        return conn.request({"id": i, "op": "echo", "payload": f"p{i}", "delay": (40 - i) * 0.002}, match={"id": i}, timeout=10)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(ask, range(40)))
    for i, reply in enumerate(replies):
        assert reply.data == {"id": i, "type": "reply", "result": {"echo": f"p{i}"}}
    received = conn.transcript().query("direction == 'received'")
    assert (received["type"] == "noise").any()
    assert own_observers(conn) == []
    assert conn.latency_stats().loc["request", "count"] == 40


def test_request_async_replies_out_of_order(bad_server: Any) -> None:
    conn = nbs.connect("bad", url_of(bad_server))

    async def both() -> list[nbs.Reply]:
        slow = conn.request_async({"id": "slow", "op": "echo", "payload": 1, "delay": 0.3}, match="id")
        fast = conn.request_async({"id": "fast", "op": "echo", "payload": 2}, match="id")
        return await asyncio.gather(slow, fast)

    slow, fast = asyncio.run(both())
    assert slow.data["result"]["echo"] == 1 and fast.data["result"]["echo"] == 2
    assert fast.seq < slow.seq  # the fast reply arrived first, and each request still got its own
    assert own_observers(conn) == []


def test_request_timeout_shows_the_last_messages(bad_server: Any) -> None:
    conn = nbs.connect("bad", url_of(bad_server, "noise=0.01"))
    with pytest.raises(nbs.WaitTimeoutError) as info:
        conn.request({"id": 7, "op": "drop"}, match="id", timeout=0.5)
    text = str(info.value)
    assert isinstance(info.value, nbs.ExpectationError)  # an AssertionError: a failure in pytest
    assert "expected a reply matching a message with id=7 on 'bad' within 0.5 s" in text
    assert "waited 0.5" in text
    assert "the closest:" in text and '"type": "noise"' in text and "id: expected 7, missing" in text
    assert own_observers(conn) == []
    with pytest.raises(nbs.WaitTimeoutError):
        asyncio.run(conn.request_async({"id": 8, "op": "drop"}, match="id", timeout=0.2))
    assert own_observers(conn) == []


def test_request_fails_at_once_when_the_socket_closes(bad_server: Any) -> None:
    conn = nbs.connect("bad", url_of(bad_server), reconnect=False)
    with pytest.raises(nbs.SocketClosedError, match="1011"):
        conn.request({"id": 1, "op": "close"}, timeout=30)
    with pytest.raises(nbs.SocketClosedError, match="reset"):
        conn.request({"id": 2, "op": "echo"})


# --- expect -----------------------------------------------------------------------------------------


def test_expect_waits_for_a_matching_message(demo: Any) -> None:
    conn = nbs.connect("ticks", demo.url("/ticker?rate=100&symbols=ABC,XYZ"))
    event = conn.expect({"symbol": "XYZ"})
    assert event.data["symbol"] == "XYZ"
    later = conn.expect(lambda e: e.data["seq"] > event.data["seq"] + 3)
    assert later.seq > event.seq + 3
    assert own_observers(conn) == []


def test_expect_since_finds_a_message_that_already_arrived(bad_server: Any) -> None:
    conn = nbs.connect("bad", url_of(bad_server))
    ack = conn.request({"id": 5, "op": "ackdone"}, match={"id": 5, "type": "ack"})
    eventually(lambda: (conn.transcript().get("type") == "done").any())
    done = conn.expect({"id": 5, "type": "done"}, timeout=1)  # came before this call, after what request consumed
    with pytest.raises(nbs.WaitTimeoutError, match="nothing matching arrived"):
        conn.expect({"id": 5, "type": "done"}, timeout=0.2)  # consumed now
    done = conn.expect({"id": 5, "type": "done"}, since=ack)
    assert done.seq == ack.seq + 1 and done.data == {"id": 5, "type": "done"}
    assert asyncio.run(conn.expect_async({"type": "done"}, since=ack.seq)).seq == done.seq


def test_expect_reports_a_predicate_that_raises(bad_server: Any) -> None:
    conn = nbs.connect("bad", url_of(bad_server, "noise=0.01"))
    with pytest.raises(nbs.WaitTimeoutError, match="KeyError"):
        conn.expect(lambda e: e.data["missing"] == 1, timeout=0.3)


def test_expect_since_needs_the_transcript(demo: Any) -> None:
    conn = nbs.connect("echo", demo.url("/echo"))
    conn.keep_transcript(0)
    with pytest.raises(nbs.InvalidOptionError, match="transcript"):
        conn.expect(since=0, timeout=0.1)


# --- threads and loops ---------------------------------------------------------------------------------


def test_blocking_calls_are_refused_on_the_loop_thread_and_async_ones_work(bad_server: Any) -> None:
    conn = nbs.connect("bad", url_of(bad_server))

    async def blocking() -> Any:
        return conn.request({"id": 1, "op": "echo"})

    with pytest.raises(nbs.LoopThreadError, match="request_async"):
        conn._loop_thread.run(blocking(), 5)
    reply = conn._loop_thread.run(conn.request_async({"id": 2, "op": "echo", "payload": "x"}, match="id"), 10)
    assert reply.data["result"]["echo"] == "x"


def test_async_handler_can_await_a_request(bad_server: Any) -> None:
    conn = nbs.connect("bad", url_of(bad_server))
    got: concurrent.futures.Future[nbs.Reply] = concurrent.futures.Future()

    async def on_ack(event: nbs.WsEvent) -> None:
        if event.data.get("type") == "ack" and not got.done():
            got.set_result(await event.connection.request_async({"id": 99, "op": "echo", "payload": "from handler"}, match="id"))

    conn.on_message(on_ack)
    conn.send({"id": 1, "op": "ackdone"})
    assert got.result(10).data["result"]["echo"] == "from handler"


def test_sync_handler_can_block_on_a_request(bad_server: Any) -> None:
    conn = nbs.connect("bad", url_of(bad_server))
    got: concurrent.futures.Future[nbs.Reply] = concurrent.futures.Future()

    def on_ack(event: nbs.WsEvent) -> None:  # runs on a worker thread: blocking there is allowed
        if event.data.get("type") == "ack" and not got.done():
            got.set_result(event.connection.request({"id": 98, "op": "echo", "payload": "sync"}, match="id"))

    conn.on_message(on_ack)
    conn.send({"id": 1, "op": "ackdone"})
    assert got.result(10).data["result"]["echo"] == "sync"


def test_ctrl_c_interrupts_a_blocking_wait(demo: Any) -> None:
    conn = nbs.connect("echo", demo.url("/echo"))
    timer = threading.Timer(0.2, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            conn.expect({"never": True}, timeout=30)
    finally:
        timer.cancel()
    assert own_observers(conn) == []
    assert conn.request({"id": 1}, match="id").data == {"id": 1}  # the socket goes on


# --- latency -------------------------------------------------------------------------------------------


def test_latency_history_has_keepalive_pings_and_requests(demo: Any) -> None:
    conn = nbs.connect("echo", demo.url("/echo"), ping_interval=0.2)
    eventually(lambda: (conn.latency()["kind"] == "ping").sum() >= 3)
    rtt = conn.ping()
    assert rtt > 0
    for i in range(20):
        conn.request({"id": i}, match="id")
    history = conn.latency()
    assert list(history.columns) == ["timestamp", "kind", "rtt_s"]
    pings = history[history["kind"] == "ping"]
    assert len(pings) >= 4 and (pings["rtt_s"] > 0).all()
    assert history["timestamp"].is_monotonic_increasing
    assert str(history["timestamp"].dt.tz) == "UTC"
    stats = conn.latency_stats()
    assert stats.loc["request", "count"] == 20 and stats.loc["ping", "count"] == len(pings)
    row = conn.request_stats()
    assert 0 < row["min_s"] <= row["p50_s"] <= row["p95_s"] <= row["p99_s"] <= row["max_s"] < 5  # seconds
    assert asyncio.run(conn.ping_async()) > 0
    status = nbs.connections()
    assert status.loc[0, "latency_s"] > 0 and status.loc[0, "latency"] == status.loc[0, "latency_s"]


def test_ping_on_a_closed_socket_says_so(demo: Any) -> None:
    conn = nbs.connect("echo", demo.url("/echo"))
    conn.disconnect()
    before = conn.latency_stats().loc["ping", "count"]  # (connect's own settle ping may be there)
    with pytest.raises(nbs.SocketClosedError, match="closed"):
        conn.ping()
    assert conn.latency_stats().loc["ping", "count"] == before
