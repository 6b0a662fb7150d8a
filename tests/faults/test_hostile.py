"""The hostile-input list of issue 11: each case against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import nbsocket as nbs

from ..runtime.transport.wire_streams import Script, StreamServer, close_payload, frame
from ..servers import AiohttpServer, SilentTcpServer, WsServer, eventually

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
        conn = nbs.connect(
            "full",
            server.url,
            content_type="text/plain",
            reconnect=FAST,
            outbox_size=3,
            on_open=on_open_async if asynchronous else on_open,
        )
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
        with pytest.raises(nbs.EncodeError, match=r"surrogate|UTF-8"):
            conn.send("a\ud800b")
        with pytest.raises(nbs.EncodeError):
            nbs.send("sur", "\udfff")
        reply = conn.request("still fine", timeout=5)
        assert reply.data == "still fine" and conn.state == "open"


# --- a connection the server refuses right after the handshake is a failed connect ----------


class RefusingServer(AiohttpServer):
    """aiohttp: accepts the handshake, then closes at once with 1008 ``no endpoint <path>`` (or 4401 on /auth)."""

    async def handle(self, request):  # type: ignore[no-untyped-def]
        from aiohttp import web

        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close(code=1008, message=f"no endpoint {request.path}".encode())
        return ws


@pytest.mark.parametrize("reconnect", [True, False], ids=["reconnect", "no-reconnect"])
def test_a_server_closing_with_1008_right_after_the_handshake_fails_connect(reconnect, caplog) -> None:
    with RefusingServer() as server:
        with pytest.raises(nbs.ConnectError, match="1008") as info:
            nbs.connect("refused", f"ws://127.0.0.1:{server.port}/ws", reconnect=reconnect)
        assert info.value.code == 1008 and info.value.reason == "no endpoint /ws" and info.value.kind == "closed"
        assert "refused" not in nbs.connections()["name"].tolist()
        with pytest.raises(nbs.NbSocketError):
            nbs.get("refused")
        assert "connection lost" not in caplog.text


class SilentServer(AiohttpServer):
    """aiohttp, answering no ping (``autoping=False``) and sending nothing; ``/refuse`` closes at once with 4403."""

    async def handle(self, request):  # type: ignore[no-untyped-def]
        from aiohttp import web

        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        if request.query.get("refuse"):
            await ws.close(code=4403, message=b"go away")
            return ws
        async for _ in ws:
            pass
        return ws


def test_a_server_that_answers_no_ping_still_has_its_refusals_fail_connect() -> None:
    """Once a server has let the settling ping go unanswered, connects to it no longer wait for one (a loop of
    them would wait 0.1 s each); a close sent right after the handshake still fails ``connect``."""
    with SilentServer() as server:
        url = f"ws://127.0.0.1:{server.port}/ws"
        for i in range(5):
            assert nbs.connect(f"silent{i}", url).state == "open"
        with pytest.raises(nbs.ConnectError) as info:
            nbs.connect("refused", url + "?refuse=1")
        assert (info.value.code, info.value.reason, info.value.kind) == (4403, "go away", "closed")
        assert [nbs.get(f"silent{i}").state for i in range(5)] == ["open"] * 5
        nbs.shutdown()  # before the server stops


def test_a_4xxx_close_after_on_open_sent_its_auth_fails_connect() -> None:
    async def check_auth(ws) -> None:  # type: ignore[no-untyped-def]
        message = await ws.recv()
        if message != "token good":
            await ws.close(4401, "bad token")
            return
        await ws.send("welcome")
        await ws.wait_closed()

    with WsServer(check_auth) as server:
        with pytest.raises(nbs.ConnectError) as info:
            nbs.connect("auth", server.url, on_open=lambda conn: conn.send("token bad"))
        assert (info.value.code, info.value.reason) == (4401, "bad token")
        assert nbs.connections().empty
        conn = nbs.connect("auth", server.url, on_open=lambda conn: conn.send("token good"))
        assert conn.state == "open"


# --- reset to a bad URL keeps the working one ------------------------------------------------


def test_reset_to_a_bad_url_raises_and_keeps_the_url_that_worked(unused_port) -> None:
    with WsServer() as server:
        conn = nbs.connect("keep", server.url, content_type="text/plain")
        good = conn.url
        with pytest.raises(nbs.ConnectError):
            nbs.reset("keep", f"ws://127.0.0.1:{unused_port}/")
        assert conn.url == good and conn._session.real_url == server.url
        assert nbs.connections().set_index("name").loc["keep", "url"] == good
        nbs.reset("keep")
        assert conn.state == "open" and conn.request("back", timeout=5).data == "back"
        conn.disconnect()
        conn.connect()  # what the panel's Connect button does
        assert conn.state == "open" and server.connections == 3


# --- expect right after connect sees what arrived since the socket opened ----------------------


class AckingServer(AiohttpServer):
    """aiohttp, graphql-transport-ws style: answers ``connection_init`` with ``connection_ack`` at once."""

    async def handle(self, request):  # type: ignore[no-untyped-def]
        from aiohttp import WSMsgType, web

        ws = web.WebSocketResponse()
        await ws.prepare(request)
        acks = 0
        async for message in ws:
            if message.type == WSMsgType.TEXT and json.loads(message.data).get("type") == "connection_init":
                acks += 1
                await ws.send_str(json.dumps({"type": "connection_ack", "n": acks}))
        return ws


def test_expect_after_connect_finds_the_ack_on_open_caused() -> None:
    with AckingServer() as server:

        def init(conn: nbs.Connection) -> None:
            conn.send({"type": "connection_init"})

        for attempt in range(5):
            conn = nbs.connect(f"gql{attempt}", f"ws://127.0.0.1:{server.port}/ws", on_open=init)
            ack = conn.expect({"type": "connection_ack"}, timeout=5)
            assert ack.data["n"] == 1
            with pytest.raises(nbs.WaitTimeoutError):  # consumed: a second expect does not return it again
                conn.expect({"type": "connection_ack"}, timeout=0.3)
            conn.reset()  # a new connection: only its own ack counts
            again = conn.expect({"type": "connection_ack"}, timeout=5)
            assert again.seq > ack.seq and again.data["n"] == 1
            nbs.remove(conn.name)


# --- open_timeout=None: no hidden limit, never an unretrieved-future log -----------------------


def _unretrieved(caplog) -> list[str]:  # type: ignore[no-untyped-def]
    gc.collect()
    time.sleep(0.2)
    gc.collect()
    return [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]


def test_open_timeout_none_waits_without_a_hidden_limit_and_stops_cleanly(caplog) -> None:
    outcome: list[BaseException] = []
    with SilentTcpServer() as silent:

        def connect() -> None:
            try:
                nbs.connect("silent", f"ws://127.0.0.1:{silent.port}/", open_timeout=None)
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=connect, daemon=True)
        thread.start()
        time.sleep(1.5)
        assert thread.is_alive() and not outcome  # still waiting: no limit
        assert nbs.get("silent").open_timeout_total is None
        nbs.remove("silent")  # the only way it ends
        thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], nbs.ConnectError) and str(outcome[0])
    assert not _unretrieved(caplog)


def test_ctrl_c_during_connect_leaves_no_unretrieved_future_log(caplog) -> None:
    with SilentTcpServer() as silent:
        timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))  # what Ctrl-C (or Interrupt kernel) does
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            nbs.connect("silent", f"ws://127.0.0.1:{silent.port}/", open_timeout=None)
        timer.join()
        assert nbs.connections().empty
    assert not _unretrieved(caplog)


# --- the column cap never hides nbsocket's own columns -----------------------------------------


def test_the_column_cap_never_pushes_data_or_error_into_extra() -> None:
    wide = json.dumps({f"f{i}": i for i in range(30)})

    async def send_wide_then_odd(ws) -> None:  # type: ignore[no-untyped-def]
        await ws.send(wide)
        await ws.send("{broken")
        await ws.send("[1, 2]")
        await ws.send(json.dumps({"f0": 7}))
        await ws.wait_closed()

    with WsServer(send_wide_then_odd) as server:
        nbs.connect("wide", server.url, max_columns=10)
        eventually(lambda: len(nbs.frame("wide")) == 4)
        frame = nbs.frame("wide")
        assert {"timestamp", "socket", "seq", "data", "error", "extra"} <= set(frame.columns)
        assert frame["error"].iloc[1].startswith("invalid JSON") and frame["data"].iloc[1] == "{broken"
        assert frame["data"].iloc[2] == [1, 2] and frame["f0"].iloc[3] == 7
        assert all("error" not in e and "data" not in e for e in frame["extra"].dropna())


# --- waits that can never finish, inside a sync handler, raise at once ----------------------------


@pytest.mark.parametrize("call", ["nbs.wait", "wait_handled"])
def test_waiting_inside_a_sync_handler_raises_at_once(call) -> None:
    raised: list[BaseException] = []

    def handler(event):  # type: ignore[no-untyped-def]
        started = time.monotonic()
        try:
            nbs.wait("inside", timeout=3) if call == "nbs.wait" else event.connection.wait_handled(timeout=3)
        except BaseException as exc:
            raised.append(exc)
        raised.append(time.monotonic() - started)  # type: ignore[arg-type]

    with WsServer() as server:
        conn = nbs.connect("inside", server.url, content_type="text/plain", handler=handler)
        conn.send("go")
        eventually(lambda: len(raised) == 2)
        assert isinstance(raised[0], nbs.LoopThreadError) and "handler" in str(raised[0])
        assert raised[1] < 1.0


def test_wait_count_zero_is_an_invalid_option() -> None:
    with WsServer() as server:
        conn = nbs.connect("zero", server.url)
        with pytest.raises(nbs.InvalidOptionError):
            nbs.wait("zero", count=0)
        with pytest.raises(nbs.InvalidOptionError):
            conn.wait(count=-1)


# --- interpreter exit is not held by a stuck handler -------------------------------------------


def test_interpreter_exit_is_not_held_by_a_stuck_sync_handler() -> None:
    with WsServer() as server:
        script = textwrap.dedent(f"""
            import logging, time, nbsocket as nbs
            logging.basicConfig(level=logging.WARNING)

            def stuck_handler(event):
                print("handler started", flush=True)
                time.sleep(40)

            conn = nbs.connect("stuck", "{server.url}/", content_type="text/plain", handler=stuck_handler)
            conn.send("go")
            time.sleep(1.0)
            print("exiting", flush=True)
        """)
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        took = time.monotonic() - started
    assert result.returncode == 0 and "handler started" in result.stdout and "exiting" in result.stdout, result.stderr
    assert took < 15, f"exit took {took:.1f} s"
    assert "abandoned" in result.stderr and "stuck_handler" in result.stderr, result.stderr


# --- the smaller ones ----------------------------------------------------------------------------


def test_flattening_keeps_both_a_dotted_key_and_the_nested_one() -> None:
    from nbsocket.core.flatten import flatten

    assert flatten({"a.b": 2, "a": {"b": 3}}) == {"a.b": 2, "a.b#2": 3}


@pytest.mark.parametrize("name", ["ok\n", "préços", "a b", ".hidden", ""])
def test_socket_names_are_checked_whole_and_the_message_says_what_is_accepted(name) -> None:
    with pytest.raises(nbs.InvalidOptionError, match="ASCII letters"):
        nbs.connect(name, "ws://127.0.0.1:1/")


def test_a_short_secret_does_not_garble_unrelated_words(unused_port) -> None:
    from nbsocket.core.redact import add_secret, scrub

    add_secret("con")  # a three-letter cookie
    assert scrub("connection refused; Cookie: con; url ws://h/?token=con&x=1") == (
        "connection refused; Cookie: ***; url ws://h/?token=***&x=1"
    )
    with pytest.raises(nbs.ConnectError) as info:
        nbs.connect("short", f"ws://127.0.0.1:{unused_port}/", headers={"Cookie": "con"})
    assert "***" not in str(info.value) and "onnect" in str(info.value)


def test_state_is_closing_as_soon_as_an_invalid_utf8_frame_is_detected() -> None:
    async def bad_utf8_then_silence(ws) -> None:  # type: ignore[no-untyped-def]
        await ws.send("hello")
        await ws.send(b"\xff\xfe", text=True)  # a text frame that is not UTF-8: the client fails with 1007
        await asyncio.sleep(3)  # does not answer the close for a while: the client may wait close_timeout

    with WsServer(bad_utf8_then_silence) as server:
        conn = nbs.connect("bad8", server.url, content_type="text/plain", close_timeout=5, reconnect=False)
        eventually(lambda: conn.state != "open", timeout=1.5)
        assert conn.state in ("closing", "closed", "failed")
        assert nbs.connections().set_index("name").loc["bad8", "state"] in ("closing", "closed", "failed")


def test_a_max_size_overflow_says_which_option_to_raise() -> None:
    async def big(ws) -> None:  # type: ignore[no-untyped-def]
        await ws.send("x" * 5000)
        await ws.wait_closed()

    with WsServer(big) as server:
        conn = nbs.connect("big", server.url, max_size=1000, reconnect=False)
        eventually(lambda: conn.state == "failed")
        message = next(e.message for e in conn.errors if e.where == "close")
        assert "1009" in message and "max_size" in message


def test_after_text_that_is_not_utf8_no_later_message_reaches_handlers_or_the_frame() -> None:
    """RFC 6455 7.1.7: once the connection is failed (1007), nothing after the bad message is processed,
    even when it arrived in the same read."""
    stream = (
        frame(1, b"ok")
        + frame(1, b"bad \xed\xa0\x80")
        + frame(1, b"after1")
        + frame(1, b"after2")
        + frame(8, close_payload(1000))
    )
    seen: list[str] = []
    closed: list[int] = []
    with StreamServer() as server:
        conn = nbs.connect(
            "bad-utf8",
            server.url_for(Script((stream,))),
            content_type="text/plain",
            handler=lambda event: seen.append(event.data),
            reconnect=False,
            on_close=lambda conn, code, reason: closed.append(code),
        )
        eventually(lambda: closed)  # on_close runs after the handlers of every message before the close
    assert seen == ["ok"]
    assert list(nbs.frame("bad-utf8")["data"]) == ["ok"]
    assert conn.close_code == 1007
    assert any("1007" in e.message for e in conn.errors)


def test_a_1009_from_the_server_is_about_what_nbsocket_sent_not_max_size() -> None:
    with WsServer(max_size=100) as server:  # websockets' server closes with 1009 on a message over 100 bytes
        conn = nbs.connect("toobig", server.url, reconnect=False)
        conn.send("y" * 500)
        eventually(lambda: conn.state in ("closed", "failed"))
        message = next(e.message for e in conn.errors if e.where == "close")
        assert "1009" in message and "nbsocket sent" in message and "max_size" not in message


def test_a_jsonl_file_that_is_not_a_transcript_raises_a_clear_error(tmp_path) -> None:
    path = tmp_path / "capture.jsonl"
    path.write_text('{"timestamp": "2026-01-01T00:00:00Z", "seq": 1, "x": 1}\n')
    with pytest.raises(nbs.TranscriptFormatError, match="not a transcript"):
        nbs.load_transcript(path)


def test_invalid_close_codes_and_policies_are_invalid_options() -> None:
    with WsServer() as server:
        conn = nbs.connect("codes", server.url)
        with pytest.raises(nbs.InvalidOptionError):
            conn.disconnect(code=1006)
        with pytest.raises(nbs.InvalidOptionError):
            nbs.disconnect("codes", code=1006)
    with pytest.raises(nbs.InvalidOptionError):
        nbs.ReconnectPolicy(initial=0)


def test_recording_keeps_inf_nan_big_integers_and_integer_columns(tmp_path) -> None:
    import pandas as pd

    big = 123456789012345678901234567890
    bodies = ['{"f": NaN, "n": 1}', '{"f": Infinity, "g": 1}', f'{{"f": -Infinity, "n": 3, "big": {big}}}']

    async def send(ws) -> None:  # type: ignore[no-untyped-def]
        for body in bodies:
            await ws.send(body)
        await ws.wait_closed()

    with WsServer(send) as server:
        for suffix in ("jsonl", "parquet"):
            path = tmp_path / f"capture.{suffix}"
            conn = nbs.connect(f"rec{suffix}", server.url, record=str(path))
            eventually(lambda conn=conn: conn.stats.messages_in == 3)
            conn.disconnect()
            if suffix == "jsonl":
                back = pd.read_json(path, lines=True)
                text = path.read_text()
                assert f'"{big}"' in text
            else:
                back = pd.read_parquet(path)
            f = back["f"].tolist()
            assert f[0] != f[0] and f[1] == float("inf") and f[2] == float("-inf")
            if suffix == "parquet":
                import pyarrow.parquet as pq

                assert str(pq.read_table(path).schema.field("n").type) == "int64"
                assert pd.read_parquet(path, dtype_backend="numpy_nullable")["n"].tolist()[::2] == [1, 3]
