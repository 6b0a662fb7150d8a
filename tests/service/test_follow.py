"""nbs.follow: a live frame, panel and plot fed from a JetStream subject that recorders elsewhere write."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

import nbsocket as nbs
from nbsocket.errors import InvalidOptionError, SocketClosedError

from ..servers import eventually
from .natsserver import NatsServer


def _record(demo: Any, nats_url: str, name: str, count: int) -> Any:
    conn = nbs.connect(name, demo.url(f"/ticker?rate=max&count={count}"), record=nats_url + "/follow.{name}", reconnect=False)
    eventually(lambda: conn.stats.messages_in == count, 30.0, what="every tick")
    assert conn.recorder is not None and conn.recorder.flush(30.0)
    return conn


def test_following_from_the_start_gives_the_recorders_rows_with_their_times_and_seqs(demo: Any, nats_server: NatsServer) -> None:
    _record(demo, nats_server.url, "src", 500)
    recorded = nbs.frame("src")
    view = nbs.follow("view", nats_server.url + "/follow.src", since="start")
    assert view.state == "open"
    eventually(lambda: view.frame is not None and view.frame.total == 500, 30.0, what="the stream's 500 messages")
    followed = nbs.frame("view")
    assert followed["seq"].tolist() == recorded["seq"].tolist()
    assert (followed["timestamp"] == recorded["timestamp"]).all(), "the recorder's receipt times, not the follower's"
    assert (followed["price"] == recorded["price"]).all() and (followed["data.seq"] == recorded["data.seq"]).all()
    status = nbs.connections().set_index("name").loc["view"]
    assert status["state"] == "open" and status["messages_in"] == 500 and status["url"].startswith("nats://")
    with pytest.raises(SocketClosedError, match="read-only"):
        view.send({"op": "x"})


def test_following_new_messages_only_and_from_a_time(demo: Any, nats_server: NatsServer) -> None:
    _record(demo, nats_server.url, "early", 100)
    seen: list[int] = []
    view = nbs.follow("only-new", nats_server.url + "/follow.early", since="new", handler=lambda event: seen.append(event.seq))
    cut = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.05)
    nbs.remove("early")
    _record(demo, nats_server.url, "early", 50)  # the same socket again: seq from 1, a new run
    eventually(lambda: len(seen) == 50, 30.0, what="the 50 new messages")
    assert seen == list(range(1, 51)) and view.frame is not None and view.frame.total == 50
    since = nbs.follow("since-cut", nats_server.url + "/follow.early", since=cut.isoformat())
    eventually(lambda: since.frame is not None and since.frame.total == 50, 30.0, what="what came after the cut")
    assert nbs.frame("since-cut")["seq"].tolist() == list(range(1, 51))


def test_a_panel_and_a_plot_follow_a_stream(demo: Any, nats_server: NatsServer) -> None:
    _record(demo, nats_server.url, "drawn", 200)
    nbs.follow("drawn-view", nats_server.url + "/follow.drawn", since="start")
    eventually(lambda: len(nbs.frame("drawn-view")) == 200, 30.0, what="the stream")
    panel = nbs.panel("drawn-view")
    plot = nbs.plot("drawn-view", y="price")
    assert panel is not None and plot is not None


def test_bad_follow_urls_are_refused_before_any_io(nats_server: NatsServer) -> None:
    with pytest.raises(InvalidOptionError, match="template"):
        nbs.follow("bad", nats_server.url + "/feeds.{name}")
    with pytest.raises(InvalidOptionError, match="since="):
        nbs.follow("bad", nats_server.url + "/feeds.x", since="yesterday")
    assert nbs.connections().empty
