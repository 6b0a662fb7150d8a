"""The views' parts without a browser: how the log reads messages and pairs replies with calls, what Send sends,
the charts' gaps, colours and legend, the table's times, the snapshots and the save hook."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import ipywidgets
import pandas as pd
import pytest

import nbsocket as nbs
from nbsocket.demo.save_hook import WIDGET_STATE, refresh_snapshots
from nbsocket.widgets import SocketPanel
from nbsocket.widgets.chart import ChartBuffer, SeriesColors, line_chart_svg, nice_ticks, series_colors
from nbsocket.widgets.controls import InvalidMessageError, parse_message
from nbsocket.widgets.figure import PlotlyChart, choose_engine
from nbsocket.widgets.message_log import MessageLog, log_entries, log_html
from nbsocket.widgets.render import epoch_seconds, header_html, table_html
from nbsocket.widgets.sending import PROTOCOL_FORMS, plan_protocol_send
from nbsocket.widgets.traffic import LogItem, SocketTraffic
from nbsocket.widgets.wire_view import NO_PAYLOAD, read_message

from ..servers import eventually

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def close_widgets() -> Iterator[None]:
    yield
    ipywidgets.Widget.close_all()


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    return eventually(predicate, timeout, 0.05, what)


# --- how the log reads messages ----------------------------------------------------------------


def test_socketio_packets_read_as_events_calls_and_acks() -> None:
    event = read_message("socketio", '42["chat",{"text":"hi"}]')
    assert (event.topic, event.payload, event.call_id, event.label) == ("chat", {"text": "hi"}, None, "emit")
    call = read_message("socketio", '4217["echo",1,2]')
    assert (call.topic, call.payload, call.call_id, call.label) == ("echo", [1, 2], "17", "call")
    ack = read_message("socketio", '4317[{"x":1}]')
    assert (ack.reply_to, ack.payload) == ("17", {"x": 1})
    assert read_message("socketio", '42/admin,3["stats"]').topic == "/admin stats"
    assert read_message("socketio", "2").housekeeping and read_message("socketio", "40").housekeeping
    assert read_message("socketio", '42["bare"]').payload is NO_PAYLOAD


def test_other_protocols_read_as_their_verbs() -> None:
    call = read_message("jsonrpc", '{"jsonrpc":"2.0","id":4,"method":"add","params":[1,2]}')
    assert (call.topic, call.call_id, call.payload) == ("add", "4", [1, 2])
    error = read_message("jsonrpc", '{"jsonrpc":"2.0","id":4,"error":{"code":-1,"message":"no"}}')
    assert error.reply_to == "4" and error.error
    query = read_message("graphql-ws", '{"id":"1","type":"subscribe","payload":{"query":"query { hello }"}}')
    stream = read_message("graphql-ws", '{"id":"2","type":"subscribe","payload":{"query":"subscription { ticks { n } }"}}')
    assert query.call_id == "1" and stream.call_id is None and stream.label == "subscribe"
    assert read_message("graphql-ws", '{"type":"connection_ack"}').housekeeping
    send = read_message("stomp", 'SEND\ndestination:/topic/p\nreceipt:r-1\ncontent-type:application/json\n\n{"p":1}\x00')
    assert (send.topic, send.call_id, send.payload) == ("/topic/p", "r-1", {"p": 1})
    assert read_message("stomp", "RECEIPT\nreceipt-id:r-1\n\n\x00").reply_to == "r-1"
    assert read_message("stomp", "\n").housekeeping
    assert read_message(None, "not json").payload is NO_PAYLOAD and read_message(None, '{"a":1}').payload == {"a": 1}
    assert read_message("socketio", b"\x00\x01").payload is NO_PAYLOAD  # binary attachments shown as bytes


def item(number: int, direction: str, body: str, ms: int = 0, seq: int | None = None) -> LogItem:
    return LogItem(number, 1_700_000_000_000_000_000 + ms * 1_000_000, direction, seq, body)


def test_the_log_pairs_each_reply_with_its_call_and_filters() -> None:
    items = [
        item(1, "sent", '4211["echo",{"x":1}]'),
        item(2, "received", '42["chat",{"text":"hi"}]', 5, 1),
        item(3, "received", '4311[{"x":1}]', 12),
        item(4, "received", "2", 20),
        item(5, "event", "closed (code 1000)", 30),
    ]
    entries = log_entries(items, "socketio")
    assert [e.item.number for e in entries] == [1, 2, 4, 5]  # the ack is folded into its call
    assert entries[0].reply is not None and entries[0].reply.item.number == 3
    html = log_html(entries)
    assert html.index("closed (code 1000)") < html.index("chat") < html.index("echo")  # newest first
    assert "ack after 12 ms" in html and "&quot;x&quot;: 1" in html  # the reply beside the call, pretty-printed
    assert 'data-direction="received" data-topic=""' not in html  # housekeeping (the ping) is hidden
    assert "ping" in log_html(entries, housekeeping=True)
    sent_only = log_html(entries, direction="sent")
    assert "echo" in sent_only and "chat" not in sent_only and "closed" not in sent_only
    assert "echo" not in log_html(entries, topic="cha") and "chat" in log_html(entries, topic="cha")
    assert "nothing matches" in log_html(entries, text="no such words")
    assert "1 of the last 2 messages match" in log_html(entries, text="echo")  # the ack is inside its call
    # no filter set: housekeeping is not "a message that does not match", it is said to be hidden
    assert "the last 2 messages (1 of the protocol&#x27;s housekeeping hidden" in html
    assert "the last 3 messages<" in log_html(entries, housekeeping=True)
    unanswered = log_entries(items[:1], "socketio")
    assert "no reply yet" in log_html(unanswered)
    assert "no reply yet" in log_html(log_entries(items[:1], "socketio", waiting_calls=["11"]))
    given_up = log_html(log_entries(items[:1], "socketio", waiting_calls=[]))
    assert "no reply (given up)" in given_up and "no reply yet" not in given_up
    assert "given up" not in log_html(log_entries(items, "socketio", waiting_calls=[]))  # answered: not given up
    subscribe = [item(1, "sent", "SUBSCRIBE\nid:1\ndestination:/topic/a\nreceipt:1@1\n\n\x00")]
    assert "given up" not in log_html(log_entries(subscribe, "stomp", waiting_calls=[]))  # no caller waits for that receipt
    send = [item(1, "sent", "SEND\ndestination:/queue/a\nreceipt:rcpt-1\n\nhi\x00")]
    assert "given up" in log_html(log_entries(send, "stomp", waiting_calls=[]))


def test_a_call_that_timed_out_is_shown_as_given_up_once_the_socket_stops_waiting() -> None:
    pytest.importorskip("socketio")
    from nbsocket.demo.protocol_servers import start_socketio_server

    server = start_socketio_server()
    try:
        sio = nbs.connect("slowcall", server.url, protocol="socketio")
        assert isinstance(sio, nbs.ProtocolConnection)
        traffic = SocketTraffic()
        traffic.attach(sio)
        log = MessageLog(traffic, "socketio")
        with pytest.raises(nbs.WaitTimeoutError):
            sio.call("no_such_event_is_answered", 1, timeout=0.3)
        eventually(lambda: sio.waiting_calls == [], 5.0, what="the timed-out call forgotten")
        assert sio.call("echo", 2) == 2 and sio.waiting_calls == []
        html = log_html(log_entries(traffic.items(), "socketio", waiting_calls=traffic.waiting_calls()))
        assert html.count("no reply (given up)") == 1 and "ack after" in html
        log.render()
        assert "no reply (given up)" in log.view.value
    finally:
        nbs.remove("slowcall")
        server.stop()


def test_traffic_keeps_both_directions_and_the_downs() -> None:
    traffic = SocketTraffic(keep=3)
    traffic.on_batch(1, 1, ["a", "b", "c", "d"], [None] * 4)

    class Sent:
        payload = "out"

    traffic.on_sent(Sent(), 2)
    traffic.on_lifecycle("close", {"code": 1006})
    assert [i.body for i in traffic.items()] == ["d", "out", "closed (code 1006)"]
    assert len(traffic.downs()) == 1 and traffic.version == 3


def test_a_panel_shown_late_shows_what_came_before(demo: Any) -> None:
    conn = nbs.connect("views-late", demo.url("/echo"), on_open=lambda c: c.send({"op": "subscribe", "early": True}))
    wait_for(lambda: conn.stats.messages_in >= 1, what="the echo of the subscription")
    panel = nbs.panel("views-late")
    entries = [(i.direction, i.body) for i in panel.traffic.items()]
    assert ("sent", '{"op":"subscribe","early":true}') in entries and ("received", '{"op":"subscribe","early":true}') in entries
    assert "early" in panel.messages.view.value
    conn.send({"op": "later"})
    wait_for(lambda: "later" in panel.messages.view.value, what="a message sent after the panel was shown")
    items = panel.traffic.items()
    assert [i.ts_ns for i in items] == sorted(i.ts_ns for i in items)
    assert len({i.number for i in items}) == len(items)


def test_a_message_whose_hooks_run_while_the_log_attaches_is_listed_once() -> None:
    """The transcript already has it when read, the log's own hook adds it a moment later: merged on the loop, once."""
    from types import SimpleNamespace

    sent = SimpleNamespace(payload='{"n":1}')
    entry = SimpleNamespace(direction="sent", kind="sent", body='{"n":1}', seq=None, error=None, ts_ns=time.time_ns() - 1000)

    class Conn:
        observer: Any = None

        def add_observer(self, observer: Any) -> None:
            self.observer = observer

        def remove_observer(self, observer: Any) -> None:
            self.observer = None

        def transcript_entries(self) -> tuple[list[Any], dict[str, Any]]:
            return [entry], {}

    class Loop:
        """The loop thread: the send's hooks were under way, so the log's hook runs before the merge."""

        def call_here_or_soon(self, fn: Any) -> None:
            conn.observer.on_sent(sent, entry.ts_ns)
            fn()

    conn = Conn()
    traffic = SocketTraffic(loop=Loop())
    traffic.attach(conn)  # type: ignore[arg-type]
    assert [(i.direction, i.body) for i in traffic.items()] == [("sent", '{"n":1}')]


def test_a_panel_shown_again_shows_what_came_meanwhile_once() -> None:
    """Hidden (JupyterLab took its output out of sight) and shown again: the log gains what came meanwhile, nothing twice."""
    from nbsocket.runtime import Manager, ScriptedPeer, ScriptedTransport

    async def echo(peer: ScriptedPeer) -> None:
        while True:
            await peer.send(await peer.recv(timeout=None))

    manager = Manager(transport=ScriptedTransport(echo))
    try:
        conn = manager.connect("views-again", "ws://scripted/echo")
        conn.send({"n": 1})
        wait_for(lambda: conn.stats.messages_in >= 1, what="the first echo")
        panel = SocketPanel("views-again", manager=manager)
        panel._view_count = 1  # shown ...
        wait_for(lambda: '"n": 1' in panel.messages.view.value or "n&quot;: 1" in panel.messages.view.value, what="the log")
        panel._view_count = 0  # ... taken out of sight
        wait_for(lambda: panel.traffic._conn is None, what="the panel to pause")
        conn.send({"n": 2})
        wait_for(lambda: conn.stats.messages_in >= 2, what="the second echo")
        panel._view_count = 1  # ... and shown again
        wait_for(lambda: len(panel.traffic.items()) >= 5, what="the messages sent and received while hidden")
        wait_for(lambda: panel.traffic._conn is conn, what="the panel to follow the socket again")
        conn.send({"n": 3})
        wait_for(lambda: len([i for i in panel.traffic.items() if i.direction != "event"]) >= 6, what="the third echo")
        messages = [(i.direction, i.body) for i in panel.traffic.items() if i.direction != "event"]
        assert messages == [(direction, f'{{"n":{n}}}') for n in (1, 2, 3) for direction in ("sent", "received")]
        events = [i.body for i in panel.traffic.items() if i.direction == "event"]
        assert events == ["open"]
        entries = log_entries(panel.traffic.items(), None)
        assert len({id(e.view) for e in entries}) == len(entries)
        panel.close()
    finally:
        manager.shutdown()


# --- what Send sends ---------------------------------------------------------------------------


def test_a_plain_box_sends_what_it_says_or_nothing() -> None:
    assert parse_message('{"op": "ping"}') == {"op": "ping"}
    assert parse_message("hello there") == "hello there"
    with pytest.raises(InvalidMessageError, match="Invalid JSON"):  # starts like JSON: must be JSON in auto mode
        parse_message('{"op": ping}')
    with pytest.raises(InvalidMessageError):
        parse_message('["chat", {"text": "hi"}')
    assert parse_message('{"op": ping}', "text") == '{"op": ping}'


def test_a_protocol_send_row_reads_the_name_and_the_payload_apart() -> None:
    sio = PROTOCOL_FORMS["socketio"]
    planned = plan_protocol_send(sio, "emit", "chat", '{"text": "hi"}', "json")
    assert (planned.verb, planned.target, planned.args) == ("emit", "chat", ({"text": "hi"},))
    assert plan_protocol_send(sio, "emit", "chat message", "", "json").args == ()  # names may have spaces
    assert plan_protocol_send(sio, "call", "echo", "hi", "text").args == ("hi",)
    with pytest.raises(InvalidMessageError, match="looks like a whole message"):
        plan_protocol_send(sio, "emit", '["chat", {"text": "hi"}]', "", "json")
    with pytest.raises(InvalidMessageError, match="not JSON"):
        plan_protocol_send(sio, "emit", "chat", "hi", "json")
    with pytest.raises(InvalidMessageError, match="type the event"):
        plan_protocol_send(sio, "emit", "  ", "", "json")
    rpc = PROTOCOL_FORMS["jsonrpc"]
    assert plan_protocol_send(rpc, "call", "add", "[1, 2]", "json").args == ([1, 2],)
    with pytest.raises(InvalidMessageError, match="array or object"):
        plan_protocol_send(rpc, "call", "add", "3", "json")
    with pytest.raises(InvalidMessageError, match="must be JSON"):
        plan_protocol_send(rpc, "call", "add", "3", "text")
    with pytest.raises(InvalidMessageError, match="JSON object"):
        plan_protocol_send(PROTOCOL_FORMS["graphql-ws"], "call", "query { hello }", "[1]", "json")
    assert "emit sends the event" in sio.hint() and "call waits for the reply" in sio.hint()


def test_a_calls_late_reply_is_said_in_the_callers_words() -> None:
    from nbsocket.core.hints import in_magic_words, in_widget_words

    said = "no reply to socketio call 'x' (id 2) within 10.0s; the call was forgotten, a late reply is recorded in conn.errors"
    assert in_widget_words(said).endswith("a late reply is recorded in Errors below")  # the panel's Errors list
    assert in_magic_words(said).endswith("a late reply is recorded as an error (see %ws_status)")


def test_a_call_from_the_panel_never_blocks_and_its_reply_is_shown() -> None:
    from tests.protocol_servers.socketio_server import SocketIOServer

    with SocketIOServer() as server:
        nbs.connect("views-sio", server.url, protocol="socketio")
        panel = nbs.panel("views-sio")
        controls = panel.controls
        assert controls.form is not None and controls.verb.options == ("emit", "call")
        controls.verb.value, controls.target.value, controls.message.value = "call", "echo", '{"x": 1}'
        controls.send_button.click()
        assert "waiting for the reply" in controls.feedback.value  # the click returned before the reply
        wait_for(lambda: "reply after" in controls.feedback.value, what="the reply on the feedback line")
        assert "{&quot;x&quot;: 1}" in controls.feedback.value
        wait_for(lambda: "ack after" in panel.messages.view.value, what="the ack beside its call in the log")
        controls.verb.value, controls.target.value, controls.message.value = "emit", '["chat", {"text": "hi"}]', ""
        controls.send_button.click()
        assert 'data-kind="error"' in controls.feedback.value and "looks like a whole message" in controls.feedback.value
        assert [event for _, event, _ in server.received] == ["echo"]


# --- charts ----------------------------------------------------------------------------------------


def ticks(start: float, count: int, step: float = 0.5, symbols: tuple[str, ...] = ("A", "B")) -> pd.DataFrame:
    times = pd.to_datetime([start + i * step for i in range(count)], unit="s", utc=True)
    return pd.DataFrame(
        {
            "timestamp": times,
            "seq": range(count),
            "price": [float(i % 7) for i in range(count)],
            "symbol": (symbols * count)[:count],
        }
    )


def test_a_disconnect_breaks_the_lines_and_gone_series_leave_the_legend() -> None:
    buffer = ChartBuffer(y="price", by="symbol", window=20)
    buffer.ingest(ticks(1000.0, 10))
    buffer.add_break(1005.2)
    buffer.ingest(ticks(1035.0, 10))  # after a 30 s outage
    xs, ys = buffer.gapped("price")["A"]
    assert xs.count(None) == 1 and ys.count(None) == 1
    svg = line_chart_svg("price by symbol", buffer.gapped("price"))
    assert svg.count("<polyline") == 4  # two runs for each symbol: no straight line across the outage
    buffer.ingest(ticks(1050.0, 20, symbols=("C", "D")))  # A and B leave the window
    assert set(buffer.gapped("price")) == {"C", "D"}
    assert ">&#9632; A<" not in buffer.render() and ">&#9632; C<" in buffer.render()


def test_a_series_keeps_its_colour_in_every_chart() -> None:
    colors = SeriesColors()
    first = [colors(name) for name in ("ABC", "XYZ", "QRS")]
    assert [colors(name) for name in ("QRS", "ABC", "XYZ")] == [first[2], first[0], first[1]]
    assert len(set(first)) == 3
    one, other = ChartBuffer(y="price", by="symbol"), ChartBuffer(y="price", by="symbol")
    one.ingest(ticks(0.0, 6, symbols=("QQ1", "QQ2")))
    other.ingest(ticks(0.0, 6, symbols=("QQ2", "QQ1")))
    colour_of = series_colors("QQ2")
    assert f'stroke="{colour_of}"' in one.render() and f'stroke="{colour_of}"' in other.render()
    chart_one, chart_other = PlotlyChart(one), PlotlyChart(other)
    chart_one.draw(), chart_other.draw()
    assert {t.name: t.line.color for t in chart_one.figure.data} == {t.name: t.line.color for t in chart_other.figure.data}


def test_the_svg_chart_has_round_ticks_gridlines_and_fills_the_cell() -> None:
    assert nice_ticks(0.0, 1.0, 5) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    buffer = ChartBuffer(y="price", by="symbol")
    buffer.ingest(ticks(1_796_522_950.0, 40))
    svg = buffer.render()
    assert 'width="100%"' in svg and "time (UTC)" in svg and svg.count("<line ") >= 6
    assert "font:12px" in svg


def test_the_plotly_chart_draws_the_same_lines_with_gaps_and_a_date_axis() -> None:
    buffer = ChartBuffer(y=["price", "seq2"], by="symbol", window=50)
    rows = ticks(1_796_522_950.0, 20)
    rows["seq2"] = rows["price"] * 2
    buffer.ingest(rows)
    buffer.add_break(1_796_522_955.1)
    buffer.ingest(ticks(1_796_522_990.0, 4).assign(seq2=1.0))
    chart = PlotlyChart(buffer)
    assert chart.draw() and not chart.draw()  # nothing new, nothing sent
    layout = chart.figure.layout
    assert layout.xaxis.type == "date" and layout.uirevision == "nbsocket" and layout.hovermode == "x unified"
    assert [t.yaxis for t in chart.figure.data] == ["y", "y", "y2", "y2"]
    assert [t.showlegend for t in chart.figure.data] == [True, True, False, False]  # one legend entry per series
    a_price = chart.figure.data[0]
    assert pd.isna(a_price.y).sum() == 1 and str(a_price.x[0]).startswith("2026-")
    assert choose_engine("svg") == "svg" and choose_engine("auto") == "plotly"
    with pytest.raises(nbs.InvalidOptionError):
        choose_engine("bokeh")


def test_plotlys_script_goes_to_the_browser_once_per_kernel_not_once_per_chart() -> None:
    """A panel and a plot used to carry Plotly's whole front end each (5 MB), into the saved notebook too."""
    from plotly.basewidget import BaseFigureWidget

    from nbsocket.widgets import plotly_script

    assert plotly_script.plotly_front_end() == str(BaseFigureWidget._esm)  # what Plotly's own charts carry

    charts = [PlotlyChart(ChartBuffer(y="price")) for _ in range(3)]
    script = plotly_script.script_widget()
    assert script is plotly_script.script_widget()  # one per kernel
    assert script.script == plotly_script.plotly_front_end() and len(script.script) > 1_000_000
    for chart in charts:
        assert len(chart.figure._esm) < 2_000  # a chart's own script only hands over to the shared one
        assert plotly_script.script_key() in chart.figure._esm and plotly_script.script_key() in script._esm
    script.close()  # closed (ipywidgets' Widget.close_all, say): the next chart brings it back
    assert PlotlyChart(ChartBuffer(y="price")).figure is not None and plotly_script.script_widget() is not script


def test_plotly_charts_take_turns_within_the_kernels_redraw_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each Plotly redraw costs the browser's main thread: more charts redraw less often each, never more in all."""
    from nbsocket.widgets import chart_view
    from nbsocket.widgets.chart_view import ChartView
    from nbsocket.widgets.throttle import RedrawBudget

    budget = RedrawBudget(3.0, active_for=5.0)
    a, b = object(), object()
    assert budget.ready(a, 0.0)
    budget.drew(a, 0.0)
    assert not budget.ready(a, 0.3) and budget.ready(a, 0.34)  # alone: three times a second
    budget.drew(a, 0.34)
    assert budget.ready(b, 0.35)  # a new chart draws at once ...
    budget.drew(b, 0.35)
    assert not budget.ready(a, 0.9) and budget.ready(a, 1.01)  # ... then each of the two every 2/3 s
    assert budget.ready(b, 20.0)  # a chart that stopped drawing (closed, hidden) no longer counts

    plotly_redraws = RedrawBudget(chart_view.PLOTLY_REDRAWS_PER_SECOND)  # the kernel's, without other tests' charts
    monkeypatch.setattr(chart_view, "plotly_redraws", plotly_redraws)
    first, second = (ChartView(ChartBuffer(y="price", by="symbol"), "plotly") for _ in range(2))
    for view in (first, second):
        view.buffer.ingest(ticks(1_796_522_950.0, 10))
        assert view.draw()  # the first lines go out at once
    plotly_redraws.drew(first, time.monotonic())  # both drew just now
    plotly_redraws.drew(second, time.monotonic())
    first.buffer.ingest(ticks(1_796_522_960.0, 10))
    assert not first.draw()  # not its turn yet: the new points wait ...
    time.sleep(2 / plotly_redraws.per_second + 0.05)
    assert first.draw()  # ... for the next refresh after it


def test_the_plotly_chart_measures_nothing_again_on_each_update() -> None:
    """Redraws stay cheap in the browser: fixed margins, no margin pushing, tick labels not measured for overflow."""
    chart = PlotlyChart(ChartBuffer(y=["price", "size"], by="symbol", window=50))
    chart.buffer.ingest(ticks(1_796_522_950.0, 20).assign(size=1.0))
    chart.draw()
    layout = chart.figure.layout
    assert layout.margin.autoexpand is False
    for axis in (layout.xaxis, layout.yaxis, layout.yaxis2):
        assert axis.automargin in (None, False) and axis.ticklabeloverflow == "allow" and axis.showgrid


# --- the table and the header --------------------------------------------------------------------


def test_epoch_fields_show_as_times_and_other_numbers_do_not() -> None:
    rows = pd.DataFrame(
        {
            "timestamp": pd.to_datetime([1], unit="s", utc=True),
            "seq": [1],
            "data.timestamp": [1796522950.339944],
            "sent_at": [1796522950339],
            "price": [1796522950.5],
            "order_id": [1796522950],
        }
    )
    assert epoch_seconds("data.timestamp", rows["data.timestamp"]) == 1.0 and epoch_seconds("sent_at", rows["sent_at"]) == 1e3
    assert epoch_seconds("price", rows["price"]) is None and epoch_seconds("order_id", rows["order_id"]) is None
    html = table_html(rows)
    assert "1796522950.339944" not in html.split("title=")[0]  # shown as a time ...
    assert "1796522950.339944 = 2026-12-05" in html or 'title="1796522950.339944' in html  # ... the number in its tooltip
    assert "1796522950.5" in html  # a price stays a number


def test_no_rows_yet_is_not_frame_false() -> None:
    assert "no messages yet" in table_html(None)
    assert "frame=False" in table_html(None, framed=False)


def test_a_view_without_a_kernel_says_so() -> None:
    header = header_html({"name": "feed", "state": "open", "url": "ws://x"}, 0.0)
    assert ".jupyter-widgets-disconnected .nbsocket-state" in header and "display:none" in header
    assert "no live kernel" in header and 'class="nbsocket-offline-note"' in header


# --- snapshots -----------------------------------------------------------------------------------


def test_the_snapshot_follows_the_panel(demo: Any) -> None:
    conn = nbs.connect("views-snap", demo.url("/ticker?rate=100"))
    panel = nbs.panel("views-snap")
    assert isinstance(panel, SocketPanel)
    first = panel.snapshot_holder.value
    wait_for(lambda: conn.stats.messages_in > 200, what="200 ticks")
    wait_for(lambda: panel.snapshot_holder.value != first, what="a fresh snapshot")
    rows_shown = int(panel.snapshot_holder.value.split("latest ")[1].split(" of ")[1].split(" rows")[0].replace(",", ""))
    assert rows_shown > 100 and "snapshot of socket" in panel.snapshot_holder.value
    assert panel._repr_mimebundle_()["text/html"].count("nbsocket-panel-snapshot") == 1


def test_the_save_hook_puts_the_latest_snapshot_in_the_output() -> None:
    state = {
        "panel": {"state": {"children": ["IPY_MODEL_header", "IPY_MODEL_snap"], "_dom_classes": ["nbsocket-panel"]}},
        "header": {"state": {"value": "old header"}},
        "snap": {"state": {"value": "<div>1,283 rows</div>", "_dom_classes": ["nbsocket-snapshot"]}},
    }
    view = {"model_id": "panel", "version_major": 2, "version_minor": 0}
    output = {
        "output_type": "display_data",
        "data": {"text/html": "<div>85 rows</div>", "application/vnd.jupyter.widget-view+json": view},
    }
    other = {"output_type": "display_data", "data": {"text/html": "<b>mine</b>"}}
    notebook = {
        "cells": [{"cell_type": "code", "outputs": [output, other]}, {"cell_type": "markdown", "source": ""}],
        "metadata": {"widgets": {WIDGET_STATE: {"state": state}}},
    }
    model = {"type": "notebook", "content": copy.deepcopy(notebook)}
    refresh_snapshots(model, path="x.ipynb")
    outputs = model["content"]["cells"][0]["outputs"]
    assert outputs[0]["data"]["text/html"] == "<div>1,283 rows</div>" and outputs[1] == other
    untouched = {"type": "notebook", "content": {**copy.deepcopy(notebook), "metadata": {}}}
    refresh_snapshots(untouched)
    assert untouched["content"]["cells"][0]["outputs"][0]["data"]["text/html"] == "<div>85 rows</div>"
    refresh_snapshots({"type": "file", "content": "text"})  # other files pass through


@pytest.mark.slow
def test_a_notebook_run_headless_keeps_the_latest_snapshot(demo: Any, tmp_path: Any) -> None:
    import nbclient
    import nbformat

    cells = [
        f"import nbsocket as nbs, time\nconn = nbs.connect('headless-snap', {demo.url('/ticker?rate=200')!r})",
        "nbs.panel('headless-snap')",
        "time.sleep(8)\nprint('rows', len(nbs.frame('headless-snap')))",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbclient.NotebookClient(
        notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    snapshot = next(o["data"]["text/html"] for o in notebook.cells[1].outputs if "data" in o)
    shown = int(snapshot.split("latest ")[1].split(" of ")[1].split(" rows")[0].replace(",", ""))
    assert shown > 500, f"the snapshot shows {shown} rows: the panel as first shown, not as the notebook ended"
    assert json.dumps(notebook.cells[1].outputs).count("nbsocket-panel-snapshot") == 1
