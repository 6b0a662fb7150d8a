"""REST and WebSocket in one test (the pre-call pattern): an HTTP call makes the server push a WebSocket message,
expected within a bound. The demo server's /notify pushes to its /notifications subscribers; httpx makes the call."""

from __future__ import annotations

import datetime
from typing import Any

import httpx
import pytest

import nbsocket as nbs
from nbsocket.explore.testing import SocketRegistry

pytestmark = pytest.mark.timeout(60)

NOTIFICATION = {
    "type": "object",
    "required": ["type", "id", "topic", "text", "ts"],
    "properties": {"id": {"type": "integer"}, "text": {"type": "string"}, "ts": {"type": "string"}},
}


def test_a_rest_call_pushes_a_notification_that_arrives_within_a_bound(ws: SocketRegistry, demo: Any) -> None:
    feed = ws.connect("feed", demo.url("/notifications"))
    other = ws.connect("other", demo.url("/notifications"))
    feed.expect({"type": "subscribed"}, within=5)
    other.expect({"type": "subscribed"}, within=5)
    before = datetime.datetime.now(datetime.timezone.utc)
    response = httpx.get(demo.http_url("/notify"), params={"topic": "orders", "text": "order 42 shipped"}, timeout=10)
    assert response.status_code == 200
    pushed = response.json()
    assert pushed["ok"] is True and pushed["delivered"] >= 2
    for conn in (feed, other):
        note = conn.expect({"type": "notification", "id": pushed["id"]}, since=before, within=5.0, schema=NOTIFICATION)
        assert (note.data["topic"], note.data["text"]) == ("orders", "order 42 shipped")
        conn.expect_none({"type": "notification"}, during=0.2)  # exactly one


def test_the_bound_counts_from_the_moment_given_and_a_missing_push_says_so(ws: SocketRegistry, demo: Any) -> None:
    feed = ws.connect("feed", demo.url("/notifications"))
    feed.expect({"type": "subscribed"}, within=5)
    before = datetime.datetime.now(datetime.timezone.utc)
    with pytest.raises(nbs.ExpectationTimeoutError) as info:
        feed.expect({"type": "notification", "topic": "never"}, since=before, within=0.3)
    text = str(info.value)
    assert "within 0.3 s of the time given as since" in text and "waited 0.3" in text
    httpx.get(demo.http_url("/notify"), params={"topic": "late"}, timeout=10)
    with pytest.raises(nbs.ExpectationTimeoutError, match="it arrived late"):  # 0.3 s after `before` has passed
        feed.expect({"type": "notification", "topic": "late"}, since=before, within=0.3)
