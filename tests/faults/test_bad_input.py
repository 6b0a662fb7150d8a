"""Misbehaving servers and bad input: each is recorded, the loop survives, later messages still flow."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp import web

import nbsocket as nbs
from nbsocket.runtime.manager import default_manager

from ..servers import AiohttpServer, WsServer, eventually

FAST = nbs.ReconnectPolicy(initial=0.05, maximum=0.2, stable_after=1.0)

DEEP = "[" * 10_000 + "]" * 10_000
BOMB = (
    '<?xml version="1.0"?><!DOCTYPE b [<!ENTITY a "aaaaaaaaaa">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><b>&c;</b>'
)


def sends(*messages: str | bytes, text_bytes: bytes | None = None):  # type: ignore[no-untyped-def]
    """A server handler that sends ``messages`` on the first connection, then ``{"after": n}`` forever."""
    state = {"connection": 0}

    async def handler(ws) -> None:  # type: ignore[no-untyped-def]
        state["connection"] += 1
        if state["connection"] == 1:
            for message in messages:
                await ws.send(message)
            if text_bytes is not None:
                await ws.send(text_bytes, text=True)  # a text frame that is not UTF-8
        for n in range(1, 1000):
            await ws.send(json.dumps({"after": n}))
            await asyncio.sleep(0.01)

    return handler


def assert_loop_alive() -> None:
    assert default_manager.loop_thread.running
    assert default_manager.loop_thread.run(asyncio.sleep(0, result="alive"), 5) == "alive"


def test_invalid_json_binary_on_json_empty_and_deep_nesting_are_recorded() -> None:
    seen = []
    with WsServer(sends("{broken", b"\x00\x01binary", "", DEEP)) as server:
        conn = nbs.connect("bad", server.url, handler=seen.append)
        eventually(lambda: any(e.data == {"after": 3} for e in seen))
        broken, binary, empty, deep = seen[:4]
        assert broken.data is None and "invalid JSON" in broken.error and broken.request.body == "{broken"
        assert binary.data is None and binary.request.is_binary and binary.request.body == b"\x00\x01binary"
        assert empty.data is None and empty.error and empty.request.body == "" and empty.request.size == 0
        assert deep.data is None and "nested too deeply" in deep.error and deep.request.size == 20_000
        frame = nbs.frame("bad")
        assert frame["error"].iloc[:4].notna().all() and frame["error"].iloc[4:].isna().all()
        assert frame["data"].iloc[0] == "{broken"
        assert conn.test() and conn.stats.parse_errors == 4
        repr(frame)  # showing the frame must not fail
    assert_loop_alive()


def test_invalid_utf8_text_frame_closes_with_1007_is_recorded_and_reconnects() -> None:
    seen = []
    with WsServer(sends('{"before": 1}', text_bytes=b"\xff\xfeoops")) as server:
        conn = nbs.connect("utf8", server.url, handler=seen.append, reconnect=FAST)
        eventually(lambda: any(e.data == {"after": 2} for e in seen) and conn.stats.reconnects == 1)
        assert seen[0].data == {"before": 1}
        assert any("1007" in r.message for r in conn.errors)
    assert_loop_alive()


def test_a_new_key_in_every_message_hits_the_column_cap(caplog) -> None:
    messages = [json.dumps({f"key{i}": i}) for i in range(150)]
    with WsServer(sends(*messages)) as server:
        conn = nbs.connect("keys", server.url, max_columns=50)
        eventually(lambda: conn.stats.messages_in > 155)
        frame = nbs.frame("keys")
        assert len(frame.columns) <= 50 and "extra" in frame.columns
        key_columns = [c for c in frame.columns if c.startswith("key")]
        extras = [e for e in frame["extra"].dropna().tolist() if "after" not in e]
        assert len(key_columns) + len(extras) == 150  # every field kept, in a column or in `extra`
        assert extras[0] == {f"key{len(key_columns)}": len(key_columns)}
        cap_errors = [r for r in conn.errors if r.error == "ColumnCap"]
        assert len(cap_errors) == 1  # reported once
        assert caplog.text.count("cap of 50 columns") == 1
        assert conn.test()


def test_xml_bomb_and_ragged_csv_are_refused_and_recorded() -> None:
    xml_seen, csv_seen = [], []
    with WsServer(sends(BOMB, "<ok>1</ok>")) as xml_server, WsServer(sends("a,b\n1,2\n3\n", "a,b\n5,6\n")) as csv_server:
        nbs.connect("xml", xml_server.url, handler=xml_seen.append, content_type="application/xml")
        nbs.connect("csv", csv_server.url, handler=csv_seen.append, content_type="text/csv")
        eventually(lambda: len(xml_seen) >= 3 and len(csv_seen) >= 3)
    assert xml_seen[0].data is None and "unsafe XML refused" in xml_seen[0].error
    assert xml_seen[1].data.tag == "ok"
    assert csv_seen[0].data is None and "ragged CSV" in csv_seen[0].error
    assert csv_seen[1].data == [{"a": "5", "b": "6"}]
    assert_loop_alive()


class NoPongServer(AiohttpServer):
    """An aiohttp server that does not answer pings (autoping=False) and streams messages."""

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        for n in range(10_000):
            if ws.closed:
                break
            await ws.send_str(json.dumps({"n": n}))
            try:
                msg = await ws.receive(timeout=0.05)
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
            except asyncio.TimeoutError:
                pass
        return ws


def test_a_server_that_never_answers_pings_is_dropped_and_retried() -> None:
    with NoPongServer() as server:
        conn = nbs.connect("nopong", f"ws://127.0.0.1:{server.port}/", ping_interval=0.2, ping_timeout=0.3, reconnect=FAST)
        eventually(lambda: conn.stats.reconnects >= 2, timeout=15)
        assert any("1011" in r.message for r in conn.errors)
        assert conn.stats.messages_in > 0
    assert_loop_alive()
