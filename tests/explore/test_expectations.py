"""Expectations that say why they failed: expect(within=, schema=), expect_none, and the text of ExpectationError.

Against an aiohttp server (tests/explore/servers.py) and the demo server (websockets).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

import nbsocket as nbs
from nbsocket.core.expectations import FieldDifference, Schema, closest_messages, field_differences
from nbsocket.core.match import MISSING, compile_match

from ..conftest import SECRET
from .servers import ReplyServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def replies() -> Iterator[ReplyServer]:
    with ReplyServer() as server:
        yield server


class Greeting(pydantic.BaseModel):
    id: int
    text: str


# --- the pure part: closest messages and their differences ------------------------------------------


def _event(seq: int, data: Any) -> nbs.WsEvent:
    import json

    body = json.dumps(data)
    return nbs.WsEvent("s", data, nbs.Request(body, False, "application/json", "ws://h"), seq, time.time_ns(), {})


def test_closest_messages_rank_by_wrong_fields_then_missing_ones_then_recency() -> None:
    matcher = compile_match({"type": "quote", "id": 3})
    events = [
        _event(1, {"type": "noise"}),  # one wrong value, one missing
        _event(2, {"type": "quote", "id": 4}),  # one wrong value
        _event(3, {"type": "quote"}),  # one missing
        _event(4, {"other": 1}),  # both missing
    ]
    ranked = closest_messages(matcher, events)
    assert [event.seq for event, _ in ranked] == [2, 3, 1]
    assert [str(d) for d in ranked[0][1]] == ["id: expected 3, got 4"]
    assert [str(d) for d in ranked[1][1]] == ["id: expected 3, missing"]


def test_a_predicate_match_shows_the_latest_messages_and_a_field_test_its_name() -> None:
    events = [_event(i, {"n": i}) for i in range(1, 6)]
    assert [e.seq for e, diffs in closest_messages(compile_match(lambda e: False), events)] == [5, 4, 3]

    def positive(value: int) -> bool:
        return value > 0

    differences = field_differences((("n", positive),), _event(1, {"n": -2}))
    assert [str(d) for d in differences] == [
        "n: -2 fails test_a_predicate_match_shows_the_latest_messages_and_a_field_test_its_name.<locals>.positive"
    ]
    assert field_differences((("n", positive),), _event(1, {"n": 2})) == []
    assert field_differences((("m", 1),), _event(1, {"n": 2})) == [FieldDifference("m", 1, MISSING)]


def test_schema_violations_name_the_field_path_and_the_rule() -> None:
    schema = Schema(
        {
            "type": "object",
            "required": ["id", "items"],
            "properties": {
                "id": {"type": "integer"},
                "items": {"type": "array", "items": {"type": "object", "required": ["sku"]}},
            },
        }
    )
    found = schema.violations({"id": "7", "items": [{"sku": 1}, {"qty": 2}]})
    assert [(v.path, v.rule) for v in found] == [("id", "type"), ("items.1.sku", "required")]
    assert "'7' is not of type 'integer'" in str(found[0])
    assert schema.violations({"id": 7, "items": []}) == []
    model = Schema(Greeting)
    assert [(v.path, v.rule) for v in model.violations({"id": 1})] == [("text", "missing")]
    assert model.violations(None)[0].path == "(the message)"


@pytest.mark.parametrize("bad", [{"type": "no-such-type"}, "a string", 42, dict])
def test_a_bad_schema_is_refused_before_any_waiting(bad: Any) -> None:
    with pytest.raises(nbs.InvalidOptionError, match="schema"):
        Schema(bad)


# --- within ---------------------------------------------------------------------------------------


def test_within_passes_on_time_and_fails_late_naming_how_late(replies: ReplyServer) -> None:
    conn = nbs.connect("replies", replies.url)
    conn.send({"id": 1})
    assert conn.expect({"id": 1}, within=5.0).data["echo"] == {"id": 1}
    conn.send({"id": 2, "delay": 0.4})
    started = time.monotonic()
    with pytest.raises(nbs.ExpectationTimeoutError) as missing:
        conn.expect({"id": 2}, within=0.1)
    assert time.monotonic() - started < 0.35  # it gave up at the bound, not at the reply or the 5 s timeout
    text = str(missing.value)
    assert "expected a message with id=2 on 'replies' within 0.1 s of the last send" in text
    assert "nothing matching arrived; waited 0.1" in text
    assert "#1 " in text and "id: expected 2, got 1" in text  # the closest message that did arrive, both values
    assert "the window had closed" not in text
    time.sleep(0.5)  # the reply arrives 0.4 s after the send; looking back now finds it, too late
    with pytest.raises(nbs.ExpectationTimeoutError) as late:
        conn.expect({"id": 2}, within=0.1)
    assert "it arrived late: 0.4" in str(late.value) and "s past the bound" in str(late.value)
    assert isinstance(late.value, AssertionError) and isinstance(late.value, nbs.WaitTimeoutError)


def test_an_expectation_whose_window_had_closed_says_so(replies: ReplyServer) -> None:
    conn = nbs.connect("replies", replies.url)
    conn.send({"id": 1})
    time.sleep(0.3)
    with pytest.raises(nbs.ExpectationTimeoutError) as missing:
        conn.expect({"id": 9}, within=0.1)
    assert "the window had closed when expect was called, 0.3" in str(missing.value)


def test_within_counts_from_since_and_waits_no_longer_than_the_bound(replies: ReplyServer) -> None:
    conn = nbs.connect("replies", replies.url)
    first = conn.request({"id": 1, "reply": {"step": "a"}}, match="id")
    conn.send({"id": 2, "delay": 0.3})
    second = conn.expect({"id": 2}, within=2.0, since=first)
    assert second.timestamp_ns - first.event.timestamp_ns < 2e9
    with pytest.raises(nbs.ExpectationTimeoutError, match=r"within 0.05 s of message #1"):
        conn.expect({"id": 2}, within=0.05, since=first.seq)
    with pytest.raises(nbs.InvalidOptionError, match="within must be a positive number"):
        conn.expect({"id": 2}, within=0)


def test_within_counts_from_the_opening_when_nothing_was_sent(demo: Any) -> None:
    conn = nbs.connect("ticks", demo.url("/ticker?rate=20&count=3"))
    tick = conn.expect({"seq": 1}, within=5.0)
    assert tick.data["seq"] == 1
    with pytest.raises(nbs.ExpectationTimeoutError, match="of the connection's opening"):
        conn.expect({"seq": 99}, within=0.3)


# --- schema ---------------------------------------------------------------------------------------


def test_schema_checks_the_matching_reply(replies: ReplyServer) -> None:
    conn = nbs.connect("replies", replies.url)
    schema = {"type": "object", "required": ["id", "text"], "properties": {"text": {"type": "string"}}}
    conn.send({"id": 1, "reply": {"text": "hi"}})
    assert conn.expect({"id": 1}, within=5, schema=schema).data["text"] == "hi"
    conn.send({"id": 2, "reply": {"text": 5}})
    with pytest.raises(nbs.ExpectationError) as info:
        conn.expect({"id": 2}, within=5, schema=schema)
    assert not isinstance(info.value, nbs.WaitTimeoutError)
    text = str(info.value)
    assert "valid under the JSON Schema" in text and "#2 matched but is not valid" in text
    assert "at text: 5 is not of type 'string' (rule: type)" in text
    conn.send({"id": 3})
    with pytest.raises(nbs.ExpectationError, match=r"at text: 'text' is a required property \(rule: required\)"):
        conn.expect({"id": 3}, within=5, schema=schema)
    conn.send({"id": 4, "reply": {"text": ["a"]}})
    with pytest.raises(nbs.ExpectationError) as model:
        conn.expect({"id": 4}, schema=Greeting)
    assert "the pydantic model Greeting" in str(model.value) and "at text: Input should be a valid string" in str(model.value)
    conn.send({"id": 5, "reply": {"text": "ok"}})
    assert conn.expect({"id": 5}, schema=Greeting).data["id"] == 5


# --- expect_none ----------------------------------------------------------------------------------


def test_expect_none_passes_while_other_messages_arrive_and_fails_on_a_match(replies: ReplyServer) -> None:
    conn = nbs.connect("replies", replies.url)
    conn.send({"id": 1, "reply": {"type": "ok"}})
    conn.send({"id": 2, "reply": {"type": "ok"}, "delay": 0.1})
    started = time.monotonic()
    assert conn.expect_none({"type": "error"}, during=0.4) is None
    assert time.monotonic() - started >= 0.4
    assert conn.received == 2  # the others arrived meanwhile
    conn.send({"id": 3, "reply": {"type": "error", "why": "planted"}, "delay": 0.2})
    with pytest.raises(nbs.ExpectationError) as info:
        conn.expect_none({"type": "error"}, during=2.0)
    text = str(info.value)
    assert "expected no message with type='error' on 'replies' during 2 s" in text
    assert "s into the window" in text and '"why": "planted"' in text
    with pytest.raises(nbs.ExpectationError, match="expected no message on"):  # any message, and looked back for it
        conn.expect_none(during=0.1)
    with pytest.raises(nbs.InvalidOptionError, match="during"):
        conn.expect_none(during=-1)


def test_expect_none_looks_back_at_what_arrived_before_the_call(replies: ReplyServer) -> None:
    conn = nbs.connect("replies", replies.url)
    conn.request({"id": 1, "twice": True}, match="id")  # the second copy arrives right after
    time.sleep(0.2)
    with pytest.raises(nbs.ExpectationError, match="before expect_none was called"):
        conn.expect_none({"id": 1}, during=0.1)


def test_async_twins(replies: ReplyServer) -> None:
    conn = nbs.connect("replies", replies.url)

    async def run() -> None:
        conn.send({"id": 1})
        event = await conn.expect_async({"id": 1}, within=5, schema={"type": "object"})
        assert event.data["id"] == 1
        await conn.expect_none_async({"id": 1}, during=0.1)
        conn.send({"id": 2})
        with pytest.raises(nbs.ExpectationError):
            await conn.expect_none_async({"id": 2}, during=2)

    asyncio.run(run())


def test_failure_texts_hide_secrets(replies: ReplyServer) -> None:
    conn = nbs.connect("replies", f"{replies.url}?token={SECRET}", headers={"Authorization": f"Bearer {SECRET}"})
    conn.send({"id": 1, "reply": {"note": SECRET}})
    with pytest.raises(nbs.ExpectationError) as info:
        conn.expect({"id": 2}, within=0.3)
    text = str(info.value)
    assert "note" in text and SECRET not in text
