"""The views a Plotly or Postman user compares nbsocket with, in JupyterLab in headless Chromium.

The interactive chart (Plotly's FigureWidget): hover values, a zoom kept across updates, the width of
the cell, one colour per series in every chart. The panel's two-way message log and its filters, and
protocol-aware sending: a Socket.IO emit and a call from the panel, the ack shown beside its call, a
whole packet typed into the event box refused. Screenshots go to ``test-artifacts/`` (and to ``docs/``, which the
README shows, with ``NBSOCKET_UPDATE_DOCS=1``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.protocol_servers.socketio_server import SocketIOServer

from .conftest import to_docs
from .test_lab import LOG_ENTRY, PANEL, UI_TIMEOUT, open_and_run, scroll_to, shoot, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

PLOT = ".nbsocket-plot"
GRAPH = ".js-plotly-plot"
TRACES = """(selector) => {
    const graph = document.querySelector(selector);
    return graph && graph.data ? graph.data.map((t) => [t.name, t.line && t.line.color, (t.x || []).length]) : null;
}"""
X_RANGE = """(selector) => {
    const graph = document.querySelector(selector);
    const axis = graph && graph._fullLayout && graph._fullLayout.xaxis;
    return axis ? {range: axis.range.map(String), autorange: axis.autorange} : null;
}"""
LAST_X = """(selector) => {
    const graph = document.querySelector(selector);
    return graph && graph.data && graph.data[0] ? String(graph.data[0].x[graph.data[0].x.length - 1]) : null;
}"""


@pytest.fixture()
def sio_server() -> Iterator[SocketIOServer]:
    with SocketIOServer() as server:
        yield server


def test_chart_hover_zoom_width_and_colours(jupyter_server: Any, page: Any, demo: Any, artifacts: Path) -> None:
    source = [
        (
            "import nbsocket as nbs\n"
            f"conn = nbs.connect('hover-ticks', {demo.url('/ticker?rate=20')!r})\n"
            "nbs.panel('hover-ticks', by='symbol')"
        ),
        "nbs.plot('hover-ticks', y='price', by='symbol')",
    ]
    path = jupyter_server.write_notebook("chart-hover.ipynb", source)
    open_and_run(page, jupyter_server, path)
    plot_graph = f"{PLOT} {GRAPH}"
    page.wait_for_selector(plot_graph, timeout=UI_TIMEOUT)
    page.wait_for_function(f"(s) => ({TRACES})(s) && ({TRACES})(s).length === 3", arg=plot_graph, timeout=UI_TIMEOUT)

    # one colour per symbol, the same in the panel's chart and in nbs.plot's
    scroll_to(page, f"{PANEL} {GRAPH}")  # JupyterLab detaches outputs out of sight
    panel_traces = wait_for(lambda: page.evaluate(TRACES, f"{PANEL} {GRAPH}"), what="the panel's chart")
    scroll_to(page, plot_graph)
    plot_traces = wait_for(lambda: page.evaluate(TRACES, plot_graph), what="the plot")
    assert {name: color for name, color, _ in plot_traces} == {name: color for name, color, _ in panel_traces if name}
    assert len({color for _, color, _ in plot_traces}) == 3

    # the chart is as wide as the cell's output
    def widths() -> tuple[float, float] | None:
        graph = page.locator(plot_graph).bounding_box()
        output = page.locator(f".jp-OutputArea-output:has({PLOT})").bounding_box()
        return (graph["width"], output["width"]) if graph and output else None

    graph_width, output_width = wait_for(widths, what="the plot in sight")
    assert graph_width > 0.85 * output_width, (graph_width, output_width)

    def plot_area() -> dict[str, float] | None:
        """Where the plot area is now (the panel above it may still be growing: measured anew each time)."""
        scroll_to(page, plot_graph)
        box: dict[str, float] | None = page.locator(f"{plot_graph} .nsewdrag").first.bounding_box()
        return box

    # hover: one tooltip with the value of every line at that time
    assert page.evaluate("(s) => document.querySelector(s)._fullLayout.xaxis.type", plot_graph) == "date"
    hover = page.locator(f"{plot_graph} .hoverlayer")
    nudge = iter(range(1_000_000))

    def tooltip() -> str | None:
        """Point at the chart (again: a redraw takes the tooltip away until the mouse moves) and read the tooltip."""
        box = plot_area()
        if box is None:
            return None
        page.mouse.move(box["x"] + box["width"] * 0.7 + next(nudge) % 2, box["y"] + box["height"] * 0.5)
        text = hover.text_content() or ""
        return text if any(ch.isdigit() for ch in text) and sum(s in text for s in ("ABC", "XYZ", "QRS")) >= 2 else None

    wait_for(tooltip, what="a hover tooltip with the values of two or more lines")
    shoot(page, PLOT, artifacts / "chart-hover.png")  # with the tooltip, unless a redraw took it away meanwhile
    to_docs(artifacts / "chart-hover.png")

    # zoom into the middle of the chart: the range stays while new points arrive
    box = wait_for(plot_area, what="the plot area in sight")
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, steps=8)
    page.mouse.up()
    zoomed = wait_for(lambda: (r := page.evaluate(X_RANGE, plot_graph)) and not r["autorange"] and r, what="the zoom")
    last_before = page.evaluate(LAST_X, plot_graph)
    wait_for(lambda: page.evaluate(LAST_X, plot_graph) != last_before, what="an update with new points")
    assert page.evaluate(X_RANGE, plot_graph) == zoomed, "the zoom was lost when the chart updated"
    page.locator(f"{PANEL} button.nbsocket-disconnect").click()
    page.wait_for_selector(f'{PANEL} .nbsocket-state[data-state="closed"]', timeout=UI_TIMEOUT)


def _log_entries(page: Any) -> list[dict[str, str]]:
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('.nbsocket-panel .nbsocket-log-box .nbsocket-log-entry')).map((e) => ({
            direction: e.dataset.direction, topic: e.dataset.topic, text: e.textContent}))"""
    )


def test_socketio_emit_and_call_from_the_panel_and_the_log_filters(
    jupyter_server: Any, page: Any, sio_server: SocketIOServer, artifacts: Path
) -> None:
    source = [
        f"import nbsocket as nbs\nsio = nbs.connect('sio-panel', {sio_server.url!r}, protocol='socketio')\nnbs.panel('sio-panel')"
    ]
    path = jupyter_server.write_notebook("sio-panel.ipynb", source)
    open_and_run(page, jupyter_server, path)
    verb, target = page.locator(f"{PANEL} .nbsocket-verb select"), page.locator(f"{PANEL} .nbsocket-target input")
    payload, send = page.locator(f"{PANEL} .nbsocket-message input"), page.locator(f"{PANEL} button.nbsocket-send")
    assert "Event in the first box" in page.locator(f"{PANEL} .nbsocket-send-hint").inner_text()

    # the packet the old box misread: refused, with what to do instead, and nothing sent
    target.fill('["chat", {"text": "hi"}]')
    send.click()
    page.wait_for_selector(f'{PANEL} .nbsocket-feedback[data-kind="error"]:has-text("looks like a whole message")')
    assert sio_server.received == []

    verb.select_option("emit")
    target.fill("chat")
    payload.fill('{"text": "hi from the panel"}')
    send.click()
    page.wait_for_selector(f'{PANEL} .nbsocket-feedback[data-kind="ok"]:has-text("emit chat")')
    wait_for(lambda: ("/", "chat", [{"text": "hi from the panel"}]) in sio_server.received, what="the server to get the event")
    page.wait_for_selector(f'{PANEL} {LOG_ENTRY}[data-direction="received"][data-topic="chat"]', timeout=UI_TIMEOUT)

    verb.select_option("call")
    target.fill("echo")
    payload.fill('{"x": 1}')
    send.click()
    page.wait_for_selector(f'{PANEL} .nbsocket-feedback[data-kind="ok"]:has-text("reply after")', timeout=UI_TIMEOUT)
    assert '{"x": 1}' in page.locator(f"{PANEL} .nbsocket-feedback").inner_text()
    call = page.locator(f'{PANEL} {LOG_ENTRY}[data-direction="sent"][data-topic="echo"]')  # not the hidden snapshot's copy
    call.wait_for(timeout=UI_TIMEOUT)
    wait_for(lambda: "ack after" in call.inner_text(), what="the ack shown beside its call")
    call.locator("summary").click()  # open it: the payload and the reply, pretty-printed
    page.wait_for_selector(f"{PANEL} {LOG_ENTRY}[open] .nbsocket-log-reply-body")
    assert '"x": 1' in call.inner_text()
    shoot(page, PANEL, artifacts / "panel-socketio.png")
    to_docs(artifacts / "panel-socketio.png")

    # the log's filters: direction, then text
    page.locator(f"{PANEL} .nbsocket-log-direction button:has-text('sent')").click()
    wait_for(lambda: {e["direction"] for e in _log_entries(page)} == {"sent"}, what="only sent messages in the log")
    page.locator(f"{PANEL} .nbsocket-log-direction button:has-text('all')").click()
    page.locator(f"{PANEL} .nbsocket-log-search input").fill("hi from the panel")
    wait_for(
        lambda: (entries := _log_entries(page)) and all("hi from the panel" in e["text"] for e in entries) and len(entries) == 2,
        what="the search to leave the emitted chat and its broadcast",
    )
    assert json.loads(json.dumps(sio_server.received[-1][2])) == [{"x": 1}]
