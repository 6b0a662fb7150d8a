"""Receiving: order, frame types, parse failures, handlers of every kind, and what handlers may do."""

from __future__ import annotations

import asyncio
import threading
import time

import nbsocket as nbs

from ..servers import WsServer, eventually


def test_messages_reach_handlers_in_order_under_load(demo) -> None:
    n = 20_000
    seqs: list[int] = []
    ticks: list[int] = []

    def handler(event):
        seqs.append(event.seq)
        ticks.append(event.data["seq"])

    conn = nbs.connect("t", demo.url(f"/ticker?rate=max&count={n}"), handler=handler, reconnect=False)
    eventually(lambda: len(seqs) >= n, timeout=60)
    assert seqs == list(range(1, n + 1)) and ticks == seqs
    assert conn.stats.messages_in == n and conn.stats.bytes_in > n * 40


def test_text_and_binary_frames_round_trip_apart(demo) -> None:
    conn = nbs.connect("e", demo.url("/echo"), content_type="application/octet-stream")
    waiter = conn.waiter(3)
    conn.send("text ✓")
    conn.send(b"\x00\xffbinary")
    conn.send(bytearray(b"ba"))
    events = waiter.future.result(5)
    assert [(e.request.body, e.request.is_binary) for e in events] == [
        ("text ✓", False),
        (b"\x00\xffbinary", True),
        (b"ba", True),
    ]
    assert events[0].request.size == len("text ✓".encode())
    assert list(demo.messages("/echo")[-3:]) == ["text ✓", b"\x00\xffbinary", b"ba"]


def test_a_message_that_fails_to_parse_is_kept(demo) -> None:
    seen = []
    conn = nbs.connect("e", demo.url("/echo"), handler=seen.append)
    conn.send("{not json")
    conn.send(b"\xff\xfe\x00")
    conn.send({"ok": 1})
    eventually(lambda: len(seen) == 3)
    bad, binary, good = seen
    assert bad.data is None and "invalid JSON" in bad.error and bad.request.body == "{not json"
    assert binary.data is None and "not UTF-8" in binary.error and binary.request.body == b"\xff\xfe\x00"
    assert good.data == {"ok": 1} and good.error is None
    frame = nbs.frame("e")
    assert frame["error"].notna().tolist() == [True, True, False]
    assert frame["data"].tolist()[:2] == ["{not json", b"\xff\xfe\x00"]
    assert conn.stats.parse_errors == 2 and conn.stats.errors == 0


def test_event_fields(demo) -> None:
    seen = []
    conn = nbs.connect("e", demo.url("/echo"), handler=seen.append)
    before = time.time()
    conn.send({"a": 1})
    event = eventually(lambda: seen)[0]
    assert event.name == "e" and event.seq == 1 and event.connection is conn
    assert event.timestamp.tzinfo is not None and before - 1 < event.timestamp.timestamp() < time.time() + 1
    assert event.request.content_type == "application/json" and event.request.url == conn.url
    assert event.lockable is conn.lockable and "seq=1" in repr(event)


def test_sync_async_several_handlers_and_args(demo) -> None:
    calls: list[tuple[str, int, object]] = []
    threads: set[str] = set()

    def sync_handler(event, tag):
        threads.add(threading.current_thread().name)
        calls.append(("sync", event.seq, tag))

    async def async_handler(event, tag):
        await asyncio.sleep(0)
        calls.append(("async", event.seq, tag))

    conn = nbs.connect("e", demo.url("/echo"), handler=sync_handler, args=("A",))
    conn.on_message(async_handler, args=("B",))

    @conn.on_message
    def third(event):
        calls.append(("third", event.seq, None))

    assert third in conn.handlers
    for i in range(3):
        conn.send({"i": i})
    eventually(lambda: len(calls) == 9)
    assert calls == [(kind, seq, tag) for seq in (1, 2, 3) for kind, tag in (("sync", "A"), ("async", "B"), ("third", None))]
    assert threading.main_thread().name not in threads
    assert conn.remove_handler(third) and third not in conn.handlers


def test_a_failing_handler_is_logged_and_the_socket_goes_on(demo, caplog) -> None:
    good = []

    def flaky(event):
        if event.data["i"] == 1:
            raise ValueError("boom on one")
        good.append(event.data["i"])

    conn = nbs.connect("e", demo.url("/echo"), handler=flaky)
    for i in range(3):
        conn.send({"i": i})
    eventually(lambda: len(good) == 2)
    assert good == [0, 2] and conn.test()
    record = conn.last_error
    assert record.where == "handler test_a_failing_handler_is_logged_and_the_socket_goes_on.<locals>.flaky"
    assert record.error == "ValueError" and "boom on one" in record.message and record.seq == 2
    assert "Traceback" in record.traceback and "raise ValueError" in record.traceback
    assert conn.stats.errors == 1
    assert "boom on one" in caplog.text
    assert nbs.connections().loc[0, "errors"] == 1


def test_on_error_callback_hears_handler_failures(demo) -> None:
    errors = []

    def bad(event):
        raise RuntimeError("handler broke")

    conn = nbs.connect("e", demo.url("/echo"), handler=bad, on_error=lambda c, exc: errors.append((c.name, str(exc))))
    conn.send("x")
    eventually(lambda: errors)
    assert errors == [("e", "handler broke")]


def test_a_slow_handler_does_not_stall_keepalive() -> None:
    async def chatty(ws):
        for i in range(10):
            await ws.send(str(i))
        await ws.wait_closed()

    seen = []

    def slow(event):
        time.sleep(0.4)
        seen.append(event.request.body)

    with WsServer(chatty, ping_interval=0.1, ping_timeout=1.0) as server:
        conn = nbs.connect("slow", server.url, handler=slow, content_type="text/plain", ping_interval=0.1, ping_timeout=1.0)
        eventually(lambda: len(seen) == 10, timeout=20)
        assert conn.test() and conn.stats.reconnects == 0 and conn.stats.errors == 0
        assert conn.last_latency is not None
        assert seen == [str(i) for i in range(10)]


def test_handler_can_send_disconnect_and_reset_on_its_own_socket(demo) -> None:
    order = []

    def handler(event):
        order.append(event.data)
        if event.data == {"step": "send"}:
            event.send({"step": "echoed"})
        elif event.data == {"step": "echoed"}:
            event.reset(demo.url("/echo?moved=1"))
        elif event.data == {"step": "after-reset"}:
            event.disconnect(1000, "done")

    conn = nbs.connect("e", demo.url("/echo"), handler=handler)
    conn.send({"step": "send"})
    eventually(lambda: conn.url.endswith("moved=1") and conn.state == "open")
    conn.send({"step": "after-reset"})
    eventually(lambda: conn.state == "closed")
    assert order == [{"step": "send"}, {"step": "echoed"}, {"step": "after-reset"}]
    assert conn.stats.resets == 1 and "e" in nbs.connections()["name"].tolist()


def test_async_handler_can_use_the_sync_api_without_deadlock(demo) -> None:
    got = []

    async def handler(event):
        if event.data == "ping":
            nbs.send("e", "pong")
            event.send("pong2")
        else:
            got.append(event.data)

    conn = nbs.connect("e", demo.url("/echo"), handler=handler, content_type="text/plain")
    conn.send("ping")
    eventually(lambda: len(got) == 2)
    assert got == ["pong", "pong2"]


def test_blocking_waits_are_refused_on_the_loop_thread_not_deadlocked(demo) -> None:
    errors = []

    async def handler(event):
        for call in (lambda: event.connection.wait(1, timeout=5), lambda: event.connection.wait_handled(timeout=5)):
            try:
                call()
            except nbs.LoopThreadError as exc:
                errors.append(str(exc))

    conn = nbs.connect("e", demo.url("/echo"), handler=handler)
    conn.send("go")
    eventually(lambda: len(errors) == 2, timeout=15)  # unguarded, they block the loop and end in WaitTimeoutError
    assert "wait_async" in errors[0] and conn.test()


def test_lockable_is_shared_by_all_handlers_of_all_sockets(demo) -> None:
    def count(event):
        with event.lockable as state:
            state["n"] = state.get("n", 0) + 1

    a = nbs.connect("a", demo.url("/echo"), handler=count)
    b = nbs.connect("b", demo.url("/echo"), handler=count)
    assert a.lockable is b.lockable
    for _ in range(50):
        a.send("1")
        b.send("2")
    eventually(lambda: a.lockable.get("n") == 100)


def test_message_over_max_size_closes_with_1009_and_reconnects() -> None:
    connections = []

    async def big_once_then_small(ws):
        connections.append(ws)
        if len(connections) == 1:
            await ws.send("x" * 5000)
        await ws.send("small")
        await ws.wait_closed()

    with WsServer(big_once_then_small) as server:
        conn = nbs.connect(
            "big", server.url, content_type="text/plain", max_size=1000, reconnect=nbs.ReconnectPolicy(initial=0.05, maximum=0.1)
        )
        eventually(lambda: conn.stats.reconnects >= 1 and conn.state == "open")

        def received() -> list:
            frame = conn.transcript(parse=False)
            return frame.loc[frame["direction"] == "received", "body"].tolist()

        eventually(lambda: received() == ["small"])  # the big message is dropped with the connection; the small one arrives
        assert any("1009" in r.message for r in conn.errors)
        assert 1009 in server.close_codes


def test_wait_handled_returns_once_handlers_caught_up(demo) -> None:
    done = []

    def slow(event):
        time.sleep(0.05)
        done.append(event.seq)

    conn = nbs.connect("e", demo.url("/echo"), handler=slow)
    for i in range(10):
        conn.request({"i": i}, timeout=5)  # each reply has arrived; handlers may lag behind
    last = conn.wait_handled(timeout=10)
    assert last == 10 and done == list(range(1, 11))
    assert conn.wait_handled() == 10  # nothing pending: returns at once


def test_order_holds_when_an_async_handler_comes_and_goes_mid_stream(demo) -> None:
    seen: list[int] = []
    async_seen: list[int] = []

    def sync_handler(event):
        time.sleep(0.001)  # keep work queued on the worker thread when the async handler arrives
        seen.append(event.data["seq"])

    async def async_handler(event):
        async_seen.append(event.data["seq"])

    conn = nbs.connect("mix", demo.url("/ticker?rate=2000&count=3000"), handler=sync_handler, reconnect=False)
    eventually(lambda: len(seen) >= 200)
    conn.on_message(async_handler)
    eventually(lambda: len(async_seen) >= 200)
    conn.remove_handler(async_handler)
    eventually(lambda: len(seen) == 3000, timeout=60)
    assert seen == list(range(1, 3001))
    assert async_seen == sorted(async_seen) and len(async_seen) >= 200


def test_a_blocked_handler_does_not_hold_up_another_sockets_handlers() -> None:
    """Socket a's handler blocks until socket b's handler has run: b's must run meanwhile, whether b's message
    is handed to the workers together with a's (one gathering) or after a's handler started."""

    async def reply_when_asked(ws):
        async for _ in ws:
            await ws.send("x")

    for together in (True, False):
        b_ran = threading.Event()
        a_started = threading.Event()
        outcome = []

        def blocked(event, b_ran=b_ran, a_started=a_started, outcome=outcome):
            a_started.set()
            outcome.append(b_ran.wait(10))

        with WsServer(reply_when_asked) as server:
            a = nbs.connect(f"blocked-{together}", server.url, handler=blocked, content_type="text/plain")
            b = nbs.connect(
                f"other-{together}", server.url, handler=lambda e, b_ran=b_ran: b_ran.set(), content_type="text/plain"
            )
            a.send("go")
            if together:
                b.send("go")
            else:
                assert a_started.wait(10)
                b.send("go")
            eventually(lambda outcome=outcome: outcome, timeout=15, what="socket a's handler to finish")
            assert outcome == [True], "socket b's handler did not run while socket a's handler was blocked"
            a.remove()
            b.remove()
