"""The widgets: panel, dashboard and live chart, against the demo server (no frontend; comm messages counted)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets
import pandas as pd
import pytest

import nbsocket as nbs
from nbsocket.core.redact import scrub
from nbsocket.runtime.manager import default_manager
from nbsocket.widgets import Dashboard, LiveChart, SocketPanel, parse_message
from nbsocket.widgets.chart import ChartBuffer, line_chart_svg, pick_split_column
from nbsocket.widgets.controls import InvalidMessageError
from nbsocket.widgets.live import descendants
from nbsocket.widgets.render import errors_html, table_html
from nbsocket.widgets.throttle import RateGate, RateMeter, refresher

from ..servers import eventually

pytestmark = pytest.mark.timeout(60)


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy (a hang guard, not a speed check)."""
    return eventually(predicate, timeout, 0.05, what)


@pytest.fixture(autouse=True)
def close_widgets() -> Iterator[None]:
    yield
    ipywidgets.Widget.close_all()


class SendCounter:
    """Counts the comm messages widgets send (``Widget._send``), with their time and model id."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[tuple[float, str]] = []
        original = ipywidgets.Widget._send

        def counting_send(widget: ipywidgets.Widget, msg: Any, buffers: Any = None) -> None:
            comm = widget.comm  # Plotly's FigureWidget may send before its comm is open: nothing goes out then
            self.sent.append((time.monotonic(), comm.comm_id if comm is not None else ""))
            original(widget, msg, buffers)

        monkeypatch.setattr(ipywidgets.Widget, "_send", counting_send)

    @staticmethod
    def ids(root: ipywidgets.Widget) -> set[str]:
        """The model ids of ``root`` and every widget inside it (take them before closing it)."""
        return {root.model_id, *(w.model_id for w in descendants(root))}

    def of(self, root: ipywidgets.Widget | set[str], since: float = float("-inf")) -> list[float]:
        ids = root if isinstance(root, set) else self.ids(root)
        return [t for t, model_id in list(self.sent) if model_id in ids and t >= since]


def max_per_second(times: list[float]) -> int:
    """The most messages in any one-second window."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def widget_text(root: ipywidgets.Widget) -> str:
    """Every synced value of ``root`` and the widgets inside it, as one string."""
    states = [w.get_state() for w in [root, *descendants(root)]]
    return json.dumps(states, default=str)


# --- pure parts ------------------------------------------------------------------------------


def test_parse_message_modes() -> None:
    assert parse_message('{"op": "ping"}') == {"op": "ping"}
    assert parse_message("[1, 2]", "json") == [1, 2]
    assert parse_message("hello there") == "hello there"
    assert parse_message("42") == "42"  # JSON scalars go as typed
    assert parse_message('{"op": ', "text") == '{"op": '
    with pytest.raises(InvalidMessageError, match="Invalid JSON"):
        parse_message('{"op": ', "json")
    with pytest.raises(InvalidMessageError):
        parse_message("   ", "auto")


def test_rate_gate_and_meter() -> None:
    gate = RateGate(2.0, clock=lambda: 0.0)
    assert gate.try_pass(10.0)
    assert not gate.try_pass(10.4)
    assert gate.try_pass(10.5)
    meter = RateMeter(span=2.0)
    meter.update(0.0, 0)
    assert meter.update(1.0, 100) == pytest.approx(100.0)
    assert meter.update(4.0, 100) == pytest.approx(0.0, abs=1e-9)
    assert meter.update(5.0, 3) == 0.0  # a counter that went back starts over


def test_chart_buffer_follows_numeric_columns_and_escapes() -> None:
    buffer = ChartBuffer(window=5)
    ts = pd.to_datetime([1, 2, 3], unit="s", utc=True)
    buffer.ingest(
        pd.DataFrame({"timestamp": ts, "socket": "s", "seq": [1, 2, 3], "price": [1.0, 2.0, 3.0], "name": ["a", "b", "c"]})
    )
    assert buffer.columns == ["price"]
    rows = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(range(4, 12), unit="s", utc=True),
            "seq": range(4, 12),
            "price": range(8),
            "<b>qty": range(8),
            "order_id": range(8),
        }
    )
    assert buffer.ingest(rows)
    assert buffer.columns == ["price", "<b>qty"]  # order_id looks like a counter: not charted
    assert len(buffer.series["price"]["price"]) == 5  # the window
    html = buffer.render()
    assert html.count("<svg") == 2 and html.count("<polyline") == 2
    assert "<b>qty" not in html and "&lt;b&gt;qty" in html
    by = ChartBuffer(y="price", x="seq", by="symbol")
    by.ingest(pd.DataFrame({"seq": [1, 2, 3, 4], "price": [1, 2, 3, 4], "symbol": ["A", "B", "A", "B"]}))
    assert set(by.series["price"]) == {"A", "B"}
    assert by.render().count("<polyline") == 2
    assert "waiting for" in ChartBuffer(y=["missing"]).render()
    svg = line_chart_svg("t", {"a": [(0.0, 1.0), (1.0, float(2))]}, width=200, height=80)
    assert svg.startswith("<svg") and svg.endswith("</svg>")


def test_chart_splits_by_a_low_cardinality_text_column_by_itself() -> None:
    ticks = pd.DataFrame(
        {
            "seq": range(1, 13),
            "price": [float(i) for i in range(12)],
            "socket": "s",
            "symbol": ["ABC", "XYZ", "QRS"] * 4,
            "note": [f"n{i}" for i in range(12)],
            "side": ["b", "s"] * 6,
        }
    )
    assert pick_split_column(ticks) == "symbol"  # a preferred name wins over the fewest values (side)
    assert pick_split_column(ticks.drop(columns="symbol")) == "side"
    assert pick_split_column(ticks.drop(columns=["symbol", "side"])) is None  # socket is nbsocket's; note is free text
    assert pick_split_column(ticks.iloc[:3]) is None  # three symbols in three rows could be ids: wait for more
    buffer = ChartBuffer(x="seq", window=50)
    buffer.ingest(ticks.iloc[:3])
    assert buffer.by is None and list(buffer.series["price"]) == ["price"]  # drawn unsplit meanwhile
    buffer.ingest(ticks.iloc[3:])
    assert buffer.by == "symbol" and set(buffer.series["price"]) == {"ABC", "XYZ", "QRS"}
    assert sum(len(points) for points in buffer.series["price"].values()) == 12  # the early rows redrawn, split
    assert 'aria-label="price by symbol"' in buffer.render() and buffer.render().count("<polyline") == 3
    buffer.clear()
    assert buffer.by is None  # attached to another frame: looks again
    unsplit = ChartBuffer(x="seq", by=None)
    unsplit.ingest(ticks)
    assert unsplit.by is None and list(unsplit.series["price"]) == ["price"]


def test_table_and_errors_html_escape() -> None:
    rows = pd.DataFrame(
        {"timestamp": pd.to_datetime([1], unit="s", utc=True), "socket": "s", "seq": [1], "text": ["<script>x</script>"]}
    )
    html = table_html(rows, total=1)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "no messages yet" in table_html(rows.iloc[:0])
    assert "no errors" in errors_html([])


# --- buttons reach the manager -------------------------------------------------------------


def test_send_button_queues_json_and_text(demo: Any) -> None:
    nbs.connect("w-send", demo.url("/echo"))
    panel = nbs.panel("w-send")
    assert isinstance(panel, SocketPanel)
    controls = panel.controls
    controls.message.value = '{"op": "hello", "n": 1}'
    controls.send_button.click()
    assert "queued" in controls.feedback.value
    wait_for(lambda: {"op": "hello", "n": 1} in demo.json_messages("/echo"), what="the echo server to get the JSON message")
    controls.message.value = "plain words, not JSON"
    controls.send_button.click()
    wait_for(lambda: "plain words, not JSON" in demo.messages("/echo"), what="the text message")


def test_invalid_json_shows_inline_error_and_sends_nothing(demo: Any) -> None:
    conn = nbs.connect("w-badjson", demo.url("/echo"))
    panel = nbs.panel("w-badjson")
    controls = panel.controls
    controls.mode.value = "json"
    controls.message.value = '{"op": "broken",'
    controls.send_button.click()
    assert 'data-kind="error"' in controls.feedback.value and "Invalid JSON" in controls.feedback.value
    assert conn.queued == 0 and conn.stats.messages_out == 0
    controls.mode.value = "text"
    controls.message.value = "marker-after-bad-json"
    controls.send_button.click()
    wait_for(lambda: "marker-after-bad-json" in demo.messages("/echo"), what="the marker message")
    assert '{"op": "broken",' not in demo.messages("/echo")  # sent in order: the bad one would have come first
    wait_for(lambda: conn.stats.messages_out == 1, what="the count of sent messages")  # one, not two


def test_reset_button_moves_socket_to_new_url(demo: Any) -> None:
    conn = nbs.connect("w-reset", demo.url("/echo"))
    panel = nbs.panel("w-reset")
    controls = panel.controls
    before = demo.connections
    new_url = demo.url("/echo?room=2")
    controls.url.value = new_url
    controls.reset_button.click()
    assert controls.url.value == ""  # the box is cleared at once
    wait_for(lambda: "reconnected" in controls.feedback.value, what="the reset outcome in the panel")
    assert conn.url == new_url and conn.state == "open"
    assert demo.connections > before
    wait_for(
        lambda: "room=2" in panel.header.value and 'data-state="open"' in panel.header.value, what="the new URL in the header"
    )
    controls.message.value = "after reset"
    controls.send_button.click()
    wait_for(lambda: "after reset" in demo.messages("/echo"), what="a message on the moved socket")


def test_reset_with_a_bad_url_is_refused_inline(demo: Any) -> None:
    conn = nbs.connect("w-badurl", demo.url("/echo"))
    panel = nbs.panel("w-badurl")
    panel.controls.url.value = "http://example.org/feed"
    panel.controls.reset_button.click()
    assert 'data-kind="error"' in panel.controls.feedback.value and "not reset" in panel.controls.feedback.value
    assert conn.url == demo.url("/echo") and panel.controls.busy is None


def test_reset_to_an_unreachable_url_reports_the_cause(demo: Any) -> None:
    conn = nbs.connect("w-refused", demo.url("/echo"))
    panel = nbs.panel("w-refused")
    panel.controls.url.value = demo.url("/status/403")
    panel.controls.reset_button.click()
    wait_for(lambda: 'data-kind="error"' in panel.controls.feedback.value, what="the failure in the panel")
    assert "reset failed" in panel.controls.feedback.value and "403" in panel.controls.feedback.value
    assert conn.state == "failed"
    wait_for(lambda: 'data-state="failed"' in panel.header.value, what="the failed state in the header")
    wait_for(lambda: not panel.controls.connect_button.disabled, what="Connect to be offered")


def test_disconnect_and_connect_buttons(demo: Any) -> None:
    conn = nbs.connect("w-disc", demo.url("/echo"))
    panel = nbs.panel("w-disc")
    panel.controls.disconnect_button.click()
    wait_for(lambda: conn.state == "closed", what="the socket to close")
    wait_for(lambda: 'data-state="closed"' in panel.header.value, what="the panel to show closed")
    wait_for(lambda: not panel.controls.connect_button.disabled, what="Connect to be enabled")
    assert panel.controls.disconnect_button.disabled
    panel.controls.connect_button.click()
    wait_for(lambda: conn.state == "open", what="the socket to open again")
    wait_for(lambda: 'data-state="open"' in panel.header.value, what="the panel to show open")
    wait_for(lambda: "connected to" in panel.controls.feedback.value, what="the connect outcome")


def test_panel_advice_names_its_buttons_not_python_calls(demo: Any) -> None:
    conn = nbs.connect("w-words", demo.url("/echo"))
    panel = nbs.panel("w-words")
    conn.disconnect()
    panel.controls.message.value = '{"x": 1}'
    panel.controls.send_button.click()
    shown = panel.controls.feedback.value
    assert "not sent" in shown and "click Connect" in shown and "nbs." not in shown


def test_button_callbacks_do_not_wait_for_the_loop(demo: Any) -> None:
    conn = nbs.connect("w-noblock", demo.url("/echo"))
    panel = nbs.panel("w-noblock")
    release = threading.Event()
    loop_blocked = threading.Event()

    def block_loop() -> None:
        loop_blocked.set()
        release.wait(20)

    default_manager.loop_thread.call_soon(block_loop)
    assert loop_blocked.wait(5)
    try:
        clicker = threading.Thread(target=panel.controls.disconnect_button.click)
        clicker.start()
        clicker.join(10)  # a hang guard: the click must not wait for the (blocked) loop
        assert not clicker.is_alive()
        assert panel.controls.busy == "disconnect" and conn.state == "open"
    finally:
        release.set()
    wait_for(lambda: conn.state == "closed", what="the scheduled disconnect to run")


# --- throttling and stopping ------------------------------------------------------------------


def test_updates_are_bounded_at_ticker_max_rate(demo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = nbs.connect("w-fast", demo.url("/ticker?rate=max"))
    counter = SendCounter(monkeypatch)
    panel = nbs.panel("w-fast", by="symbol")
    start, t0 = conn.stats.messages_in, time.monotonic()
    wait_for(lambda: conn.stats.messages_in - start >= 30_000, timeout=45, what="30,000 ticks")
    elapsed = time.monotonic() - t0
    sent = counter.of(panel, since=t0)
    incoming = (conn.stats.messages_in - start) / elapsed
    print(
        f"\n{incoming:,.0f} messages/s in; {len(sent)} widget messages in {elapsed:.1f}s; "
        f"at most {max_per_second(sent)} in one second"
    )
    assert sent, "the panel never updated"
    # each refresh (2 a second) sends the header, the message log and the chart (a Plotly update is two messages),
    # and the snapshot every few seconds: a few dozen a second at most, far under jupyter_server's 1000
    assert max_per_second(sent) <= 20
    assert len(sent) <= 20 * (elapsed + 1)
    assert panel.feed.chart is not None and panel.feed.chart.series["price"]  # the chart followed the ticks


def test_close_stops_updates(demo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = nbs.connect("w-close", demo.url("/ticker?rate=2000"))
    counter = SendCounter(monkeypatch)
    panel = nbs.panel("w-close")
    wait_for(lambda: counter.of(panel), what="a first update")
    ids = counter.ids(panel)
    panel.close()
    assert panel not in refresher and not conn.frame.has_subscribers
    closed_at = time.monotonic()
    seen = conn.stats.messages_in
    wait_for(lambda: conn.stats.messages_in > seen + 2000, what="more ticks")
    assert counter.of(ids, since=closed_at) == []


def test_panel_pauses_while_no_view_is_shown(demo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = nbs.connect("w-hidden", demo.url("/ticker?rate=2000"))
    counter = SendCounter(monkeypatch)
    panel = nbs.panel("w-hidden")
    panel._view_count = 1  # what the frontend reports when it shows the panel
    panel._view_count = 0  # ... and when the output is cleared
    wait_for(lambda: not conn.frame.has_subscribers, what="the panel to let go of the frame")
    hidden_at = time.monotonic()
    seen = conn.stats.messages_in
    wait_for(lambda: conn.stats.messages_in > seen + 2000, what="more ticks")
    assert counter.of(panel, since=hidden_at) == []
    panel._view_count = 1
    wait_for(lambda: conn.frame.has_subscribers, what="the panel to follow the frame again")
    wait_for(lambda: counter.of(panel, since=time.monotonic() - 0.01), what="updates to resume")


def test_panel_stops_when_socket_is_removed(demo: Any) -> None:
    conn = nbs.connect("w-removed", demo.url("/ticker?rate=100"))
    panel = nbs.panel("w-removed")
    nbs.remove("w-removed")
    wait_for(lambda: not panel.live, what="the panel to stop")
    assert 'data-state="removed"' in panel.header.value
    assert panel not in refresher and not conn.frame.has_subscribers
    assert panel.controls.reset_button.disabled
    panel.controls.send_button.click()
    assert "removed" in panel.controls.feedback.value


def test_panel_shows_handler_errors_with_tracebacks(demo: Any) -> None:
    def broken(event: Any) -> None:
        raise RuntimeError(f"cannot handle {event.data!r}")

    nbs.connect("w-errors", demo.url("/echo"), handler=broken)
    panel = nbs.panel("w-errors")
    assert panel.errors_box.selected_index is None  # collapsed
    nbs.send("w-errors", {"n": 7})
    wait_for(lambda: "RuntimeError" in panel.errors.value, what="the error in the panel")
    assert "<details>" in panel.errors.value and "Traceback" in panel.errors.value
    wait_for(lambda: "last error" in panel.header.value, what="the last error in the header")


# --- secrets, dashboard, chart ------------------------------------------------------------------


def test_secrets_never_reach_the_widgets(demo: Any) -> None:
    secret_url = demo.url("/echo?token=tok-SUPERSECRET-1").replace("ws://", "ws://alice:pw-HUNTER2@")

    def leaky(event: Any) -> None:
        raise ValueError(f"failed for {secret_url}")

    conn = nbs.connect("w-secret", secret_url, handler=leaky)
    panel = nbs.panel("w-secret")
    board = nbs.dashboard()
    chart = nbs.plot("w-secret")
    nbs.send("w-secret", {"echoed": "tok-SUPERSECRET-1", "v": 1})
    panel.tabs.selected_index = 1  # the latest rows (the message log is the first tab)
    wait_for(
        lambda: "ValueError" in panel.errors.value and "echoed" in panel.table.value, what="the message and error in the panel"
    )
    panel.tabs.selected_index = 0
    wait_for(lambda: "echoed" in panel.messages.view.value, what="the message in the log")
    panel.controls.url.value = demo.url("/echo?token=tok-OTHERSECRET-2")
    panel.controls.reset_button.click()
    wait_for(lambda: "reconnected" in panel.controls.feedback.value, what="the reset")
    wait_for(lambda: "w-secret" in board.rows and "***" in board.rows["w-secret"].summary.value, what="the dashboard row")
    shown = widget_text(panel) + widget_text(board) + widget_text(chart) + panel.snapshot_html() + repr(panel)
    for secret in ("tok-SUPERSECRET-1", "pw-HUNTER2", "tok-OTHERSECRET-2"):
        assert secret not in shown
    assert "***" in panel.header.value and conn.state == "open"


def test_dashboard_follows_sockets_and_has_the_buttons(demo: Any) -> None:
    board = nbs.dashboard()
    assert isinstance(board, Dashboard) and "no sockets yet" in board.title.value
    nbs.connect("w-dash-a", demo.url("/echo"))
    conn_b = nbs.connect("w-dash-b", demo.url("/echo"))
    wait_for(lambda: list(board.rows) == ["w-dash-a", "w-dash-b"], what="two rows")
    assert len(board.rows_box.children) == 2 and "2 sockets" in board.title.value
    row_b = board.rows["w-dash-b"]
    row_b.controls.message.value = '{"from": "dashboard"}'
    row_b.controls.send_button.click()
    wait_for(lambda: '{"from":"dashboard"}' in demo.messages("/echo"), what="the dashboard's message")
    row_b.controls.disconnect_button.click()
    wait_for(lambda: conn_b.state == "closed" and 'data-state="closed"' in row_b.summary.value, what="row b to show closed")
    nbs.remove("w-dash-a")
    wait_for(lambda: list(board.rows) == ["w-dash-b"] and len(board.rows_box.children) == 1, what="row a to go")
    board.close()
    assert board not in refresher


def test_plot_follows_ticks(demo: Any) -> None:
    nbs.connect("w-plot", demo.url("/ticker?rate=200&symbols=AAA,BBB"))
    chart = nbs.plot("w-plot", y=["price"], x="timestamp", window=50, by="symbol", engine="svg")
    assert isinstance(chart, LiveChart) and chart.engine == "svg" and chart.figure is None
    assert chart.view.html is not None
    wait_for(lambda: chart.view.html.value.count("<polyline") == 2, what="one line per symbol")
    wait_for(lambda: sum(map(len, chart.buffer.series["price"].values())) == 50, what="a full window of rows")
    auto = nbs.plot("w-plot")
    assert auto.engine == "plotly" and auto.figure is not None  # the views extra is installed for the tests
    wait_for(lambda: auto.buffer.columns == ["price"] and len(auto.figure.data) == 2, what="the auto chart, a line per symbol")
    assert "text/html" in chart._repr_mimebundle_()


def test_panel_of_unknown_socket_says_so() -> None:
    with pytest.raises(nbs.UnknownSocketError, match="nope"):
        nbs.panel("nope")


# --- headless execution ---------------------------------------------------------------------------


@pytest.mark.slow
def test_headless_notebook_renders_a_static_snapshot(demo: Any, tmp_path: Any) -> None:
    import nbclient
    import nbformat

    source = (
        "import nbsocket as nbs\n"
        f"conn = nbs.connect('headless', {demo.url('/echo')!r})\n"
        "echoed = conn.waiter(1); conn.send({'price': 1.5}); echoed.future.result(20)\n"
        "nbs.panel('headless')"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbclient.NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    data = next(o["data"] for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {}))
    assert "application/vnd.jupyter.widget-view+json" in data
    snapshot = data["text/html"]
    assert 'data-state="open"' in snapshot and "price" in snapshot and "<svg" not in snapshot
    assert 'class="nbsocket-chart-img" src="data:image/svg+xml;base64,' in snapshot and 'alt="chart: price' in snapshot
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert any("nbsocket-header" in str(model["state"].get("value", "")) for model in state.values())


def test_scrub_is_applied_to_feedback(demo: Any) -> None:
    nbs.connect("w-feedback", demo.url("/echo?token=tok-FEEDBACK-3"))
    panel = nbs.panel("w-feedback")
    panel.controls.show(f"something about {demo.url('/echo?token=tok-FEEDBACK-3')}", ok=False)
    assert "tok-FEEDBACK-3" not in panel.controls.feedback.value
    assert scrub("tok-FEEDBACK-3") == "***"
