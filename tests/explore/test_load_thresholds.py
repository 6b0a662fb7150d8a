"""Load thresholds as assertions: a burst times its replies' round trips, and report.assert_ok gates on them (k6's way).

The tests use the ws fixture of the plugin nbsocket installs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import nbsocket as nbs
from nbsocket.explore.testing import SocketRegistry
from nbsocket.runtime import BurstReport

from .servers import ReplyServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def replies() -> Iterator[ReplyServer]:
    with ReplyServer() as server:
        yield server


def test_a_burst_times_every_reply_and_latency_stats_counts_them(ws: SocketRegistry, demo: Any) -> None:
    echo = ws.connect("echo", demo.url("/echo"))
    report = ws.burst("echo", ({"n": i} for i in range(1000)), rate="max")
    assert (report.delivered, report.replies, len(report.round_trips)) == (1000, 1000, 1000)
    assert all(rtt > 0 for rtt in report.round_trips)
    assert report.p50_s is not None and report.p95_s is not None and report.p99_s is not None and report.max_s is not None
    assert 0 < report.p50_s <= report.p95_s <= report.p99_s <= report.max_s == max(report.round_trips)
    stats = echo.latency_stats()
    assert stats.loc["burst", "count"] == 1000 and stats.loc["burst", "max_s"] == pytest.approx(report.max_s)
    assert list(echo.latency()["kind"]).count("burst") == 1000
    row = report.to_dict()
    assert row["round_trips"] == 1000 and row["p95_s"] == report.p95_s and row["rate"] is None
    assert "1000 round trips: p50" in repr(report)


def test_rate_max_is_as_fast_as_possible_and_other_words_are_refused(ws: SocketRegistry, demo: Any) -> None:
    ws.connect("echo", demo.url("/echo"))
    assert ws.burst("echo", [{"n": 1}, {"n": 2}], rate="max").rate is None
    with pytest.raises(nbs.InvalidOptionError, match="'max'"):
        ws.burst("echo", [{"n": 1}], rate="fast")


def test_assert_ok_passes_and_chains_or_names_every_threshold_with_its_figure(ws: SocketRegistry, demo: Any) -> None:
    ws.connect("echo", demo.url("/echo"))
    report = ws.burst("echo", ({"n": i} for i in range(300)), rate=1000)
    assert report.assert_ok(p95_s=10, errors=0, min_replies=300) is report  # generous: a loaded CI machine passes
    with pytest.raises(nbs.ExpectationError) as info:
        report.assert_ok(p95_s=1e-9, errors=0)  # no machine answers in a nanosecond
    text = str(info.value)
    assert isinstance(info.value, AssertionError)
    assert "burst on 'echo' broke 1 of 2 threshold(s)" in text
    assert f"p95_s: {report.p95_s:.6g} > 1e-09  BROKEN" in text and "errors: 0 <= 0  ok" in text
    assert "300 of 300 delivered" in text and "300 round trips" in text
    with pytest.raises(nbs.InvalidOptionError, match="at least one threshold"):
        report.assert_ok()
    with pytest.raises(nbs.InvalidOptionError, match="p95_s must be a number"):
        report.assert_ok(p95_s=-1)


def test_a_burst_that_cannot_send_breaks_the_error_threshold_and_has_no_round_trips(ws: SocketRegistry, demo: Any) -> None:
    echo = ws.connect("echo", demo.url("/echo"))
    echo.disconnect()
    report = ws.burst("echo", [{"n": i} for i in range(5)])
    with pytest.raises(nbs.ExpectationError) as info:
        report.assert_ok(errors=0, p99_s=1.0)
    assert "errors: 1 > 0  BROKEN" in str(info.value) and "p99_s: none (no reply was timed) > 1  BROKEN" in str(info.value)


def test_match_pairs_round_trips_by_a_field_when_replies_come_out_of_order(ws: SocketRegistry, replies: ReplyServer) -> None:
    ws.connect("replies", replies.url)
    # message i is written at 0.05 i s and answered 0.1 (10 - i) s after: the replies come back in reverse order
    messages = [{"id": i, "delay": round(0.1 * (10 - i), 2)} for i in range(10)]
    report = ws.burst("replies", messages, rate=20, match="id", settle=0.5)
    assert len(report.round_trips) == 10
    ordered = sorted(report.round_trips)
    for k, rtt in enumerate(ordered):
        assert rtt >= 0.1 * (k + 1) - 0.01  # each answer took at least its delay
    assert ordered[0] < 0.45  # paired in order, the first reply would have been given message 0's write: 0.55 s


def test_the_report_is_the_public_burst_report() -> None:
    assert nbs.BurstReport is BurstReport
