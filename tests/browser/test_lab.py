"""The live panel in a real browser: JupyterLab 4 and Notebook 7 in headless Chromium, against the demo server.

Run with ``pytest -m browser tests/browser``. The notebook's kernel connects
to the demo server running in this test process, so what the buttons do is
checked on the server's side (``demo.messages('/echo')``, ``demo.connections``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..servers import eventually
from .conftest import to_docs

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

PANEL = ".nbsocket-panel"
PANEL_OPEN = f'{PANEL} .nbsocket-state[data-state="open"]'
LOG_ENTRY = ".nbsocket-log-box .nbsocket-log-entry"
"""A line of the live log (the panel's hidden snapshot widget holds a copy of the log too)."""
GRAPH = ".nbsocket-chart-box .js-plotly-plot"
SERIES = """(selector) => {
    const graph = document.querySelector(selector);
    return graph && graph.data ? graph.data.map((t) => t.name).sort().join(',') : '';
}"""
UI_TIMEOUT = 60_000  # ms: first page load and kernel start can be slow on a busy machine

NOTEBOOK_READY = """(path) => {
    const app = window.jupyterapp;
    const panel = app && app.shell && app.shell.currentWidget;
    if (!panel || !panel.context || panel.context.path !== path) return false;
    const session = panel.sessionContext && panel.sessionContext.session;
    return !!(session && session.kernel && session.kernel.status === 'idle' && panel.content && panel.content.widgets.length);
}"""
KERNEL_IDLE = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    return panel.sessionContext.session.kernel.status === 'idle';
}"""
ALL_CELLS_RUN = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const cells = panel.content.widgets.filter((cell) => cell.model.type === 'code');
    const done = cells.every((cell) => cell.model.executionCount !== null && cell.model.executionState !== 'running');
    return done && panel.sessionContext.session.kernel.status === 'idle';
}"""
"""Every code cell has run (a run-all goes idle between cells, so idle alone is not the end)."""


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy (a hang guard, not a speed check)."""
    return eventually(predicate, timeout, 0.05, what)


def open_and_run(page: Any, server: Any, notebook: str, ui: str = "lab", ready: str = PANEL_OPEN) -> None:
    """Open a notebook in JupyterLab (a fresh workspace) or Notebook 7, wait for its kernel, run every cell,
    and wait for ``ready`` (by default: the panel shows the socket open)."""
    if ui == "lab":
        url = server.url(f"/lab/workspaces/{notebook.replace('.', '-')}/tree/{notebook}?reset")
    else:
        url = server.url(f"/notebooks/{notebook}")
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function(NOTEBOOK_READY, arg=notebook, timeout=UI_TIMEOUT, polling=200)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_selector(ready, timeout=UI_TIMEOUT)
    page.wait_for_function(ALL_CELLS_RUN, timeout=UI_TIMEOUT, polling=200)
    assert page.locator("text=Error displaying widget").count() == 0


def scroll_to(page: Any, selector: str) -> None:
    """Bring ``selector`` into sight (JupyterLab detaches and re-attaches the outputs of cells out of sight: retry)."""
    for _ in range(10):
        try:
            page.locator(selector).first.scroll_into_view_if_needed(timeout=5_000)
            return
        except Exception:
            page.wait_for_timeout(500)
    page.locator(selector).first.scroll_into_view_if_needed()


def shoot(page: Any, selector: str, path: Path) -> None:
    """A screenshot of ``selector`` (brought into sight; JupyterLab may detach it meanwhile: retry)."""
    for attempt in range(5):
        scroll_to(page, selector)
        try:
            page.locator(selector).first.screenshot(path=str(path), timeout=10_000)
            return
        except Exception:
            if attempt == 4:
                raise
            page.wait_for_timeout(500)


def send_from_panel(page: Any, demo: Any, message: dict[str, Any]) -> None:
    """Type ``message`` as JSON, click Send, and wait until the echo server has it."""
    page.locator(f"{PANEL} .nbsocket-message input").fill(json.dumps(message))
    page.locator(f"{PANEL} button.nbsocket-send").click()
    page.wait_for_selector(f'{PANEL} .nbsocket-feedback[data-kind="ok"]:has-text("queued")')
    wait_for(lambda: message in demo.json_messages("/echo"), what=f"the echo server to receive {message}")


def notebook_source(demo: Any, name: str) -> list[str]:
    return [f"import nbsocket as nbs\nconn = nbs.connect({name!r}, {demo.url('/echo')!r})\nnbs.panel({name!r})"]


def test_panel_in_jupyterlab(jupyter_server: Any, page: Any, demo: Any, artifacts: Path) -> None:
    path = jupyter_server.write_notebook("lab-panel.ipynb", notebook_source(demo, "lab-echo"))
    open_and_run(page, jupyter_server, path)

    send_from_panel(page, demo, {"op": "hello", "from": "browser", "n": 1})
    send_from_panel(page, demo, {"op": "hello", "from": "browser", "n": 2})
    page.wait_for_selector(f"{PANEL} {LOG_ENTRY}[data-direction='sent']:has-text('browser')")
    page.wait_for_selector(f"{PANEL} {LOG_ENTRY}[data-direction='received']:has-text('browser')")

    connections_before = demo.connections
    new_url = demo.url("/echo?room=browser")
    page.locator(f"{PANEL} .nbsocket-reset-url input").fill(new_url)
    page.locator(f"{PANEL} button.nbsocket-reset").click()
    page.wait_for_selector(f'{PANEL} .nbsocket-feedback[data-kind="ok"]:has-text("reconnected")', timeout=UI_TIMEOUT)
    page.wait_for_selector(f"{PANEL} .nbsocket-url:has-text('room=browser')")
    page.wait_for_selector(f'{PANEL} .nbsocket-state[data-state="open"]')
    assert demo.connections > connections_before, "the server saw no new connection after Reset"
    assert page.locator(f"{PANEL} .nbsocket-reset-url input").input_value() == ""
    send_from_panel(page, demo, {"op": "after-reset", "n": 3})
    page.wait_for_selector(f"{PANEL} {LOG_ENTRY}:has-text('after-reset')")
    page.wait_for_selector(f"{PANEL} {GRAPH}")  # the echoed numbers, charted
    page.locator(f"{PANEL} .nbsocket-tabs .lm-TabBar-tab:has-text('Latest rows')").click()
    page.wait_for_selector(f"{PANEL} .nbsocket-table td:has-text('after-reset')")

    shoot(page, PANEL, artifacts / "lab-panel.png")

    page.locator(f"{PANEL} button.nbsocket-disconnect").click()
    page.wait_for_selector(f'{PANEL} .nbsocket-state[data-state="closed"]', timeout=UI_TIMEOUT)
    page.wait_for_selector(f'{PANEL} .nbsocket-feedback[data-kind="ok"]:has-text("disconnected")')
    assert page.locator(f"{PANEL} button.nbsocket-connect").is_enabled()


def test_panel_and_dashboard_in_notebook7(jupyter_server: Any, page: Any, demo: Any, artifacts: Path) -> None:
    cells = [*notebook_source(demo, "nb7-echo"), "nbs.dashboard()"]
    path = jupyter_server.write_notebook("nb7-panel.ipynb", cells)
    open_and_run(page, jupyter_server, path, ui="notebook")
    row = page.locator(".nbsocket-dashboard .nbsocket-row")
    page.wait_for_selector('.nbsocket-dashboard .nbsocket-state[data-state="open"]', timeout=UI_TIMEOUT)
    assert row.count() == 1
    send_from_panel(page, demo, {"op": "hello", "from": "notebook7"})
    page.locator(f"{PANEL} button.nbsocket-disconnect").click()
    page.wait_for_selector(f'{PANEL} .nbsocket-state[data-state="closed"]', timeout=UI_TIMEOUT)
    page.wait_for_selector('.nbsocket-dashboard .nbsocket-state[data-state="closed"]', timeout=UI_TIMEOUT)
    connections_before = demo.connections
    row.locator("button.nbsocket-connect").click()  # the dashboard's own button
    page.wait_for_selector(f'{PANEL} .nbsocket-state[data-state="open"]', timeout=UI_TIMEOUT)
    page.wait_for_selector('.nbsocket-dashboard .nbsocket-state[data-state="open"]', timeout=UI_TIMEOUT)
    assert demo.connections > connections_before
    page.screenshot(path=str(artifacts / "notebook7.png"), full_page=True)


def test_fast_ticker_panel_stays_under_the_iopub_limit(jupyter_server: Any, page: Any, demo: Any, artifacts: Path) -> None:
    source = [
        (
            "import nbsocket as nbs\n"
            f"conn = nbs.connect('lab-ticker', {demo.url('/ticker?rate=max')!r})\n"
            "nbs.panel('lab-ticker', by='symbol')"
        )
    ]
    path = jupyter_server.write_notebook("lab-ticker.ipynb", source)
    open_and_run(page, jupyter_server, path)
    received = f"{PANEL} .nbsocket-counter[data-counter='in'] b"
    page.wait_for_function(
        "(selector) => parseInt(document.querySelector(selector).textContent.replace(/,/g, ''), 10) > 30000",
        arg=received,
        timeout=UI_TIMEOUT,
        polling=200,
    )
    page.wait_for_function(f"(s) => ({SERIES})(s) === 'ABC,QRS,XYZ'", arg=f"{PANEL} {GRAPH}", timeout=UI_TIMEOUT)
    shoot(page, PANEL, artifacts / "ticker-panel.png")
    page.locator(f"{PANEL} button.nbsocket-disconnect").click()
    page.wait_for_selector(f'{PANEL} .nbsocket-state[data-state="closed"]', timeout=UI_TIMEOUT)
    assert page.locator("text=IOPub message rate exceeded").count() == 0
    assert "rate exceeded" not in jupyter_server.log_path.read_text(errors="replace")


def test_quickstart_panel_chart_has_one_line_per_symbol(jupyter_server: Any, page: Any, artifacts: Path) -> None:
    """The quickstart as a newcomer runs it: `%ws_plot prices` and `%ws_panel prices`, no options, one line per symbol."""
    notebooks = Path(__file__).resolve().parents[2] / "notebooks"
    (jupyter_server.root / "quickstart.ipynb").write_bytes((notebooks / "quickstart.ipynb").read_bytes())
    open_and_run(page, jupyter_server, "quickstart.ipynb")
    for view in (PANEL, ".nbsocket-plot"):
        graph = f"{view} {GRAPH}"
        scroll_to(page, view)  # JupyterLab detaches the views of cells out of sight
        page.wait_for_function(f"(s) => ({SERIES})(s) === 'ABC,QRS,XYZ'", arg=graph, timeout=UI_TIMEOUT, polling=200)
        title = page.evaluate("(s) => document.querySelector(s).layout.yaxis.title.text", graph)
        assert title == "price by symbol"
    scroll_to(page, PANEL)
    page.locator(f"{PANEL} .nbsocket-log-direction button:has-text('sent')").click()  # what the notebook sent
    page.wait_for_selector(f"{PANEL} {LOG_ENTRY}[data-direction='sent']:has-text('subscribe')")
    page.locator(f"{PANEL} {LOG_ENTRY}[data-direction='sent'] summary").first.click()
    scroll_to(page, PANEL)
    shoot(page, PANEL, artifacts / "quickstart-panel.png")
    to_docs(artifacts / "quickstart-panel.png", "panel.png")
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
