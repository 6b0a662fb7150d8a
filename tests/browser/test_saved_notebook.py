"""A saved notebook reopened once its kernel is gone: what JupyterLab shows for panels and plots.

This module's JupyterLab runs with the app settings ``nbsocket demo`` gives its own
JupyterLab (widget state saved with the notebook). A notebook run and saved there shows
its panels and charts as they were when it is reopened with a new kernel; a notebook
executed headless (nbclient, not trusted in JupyterLab) shows the HTML snapshot.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from nbsocket.demo.launcher import LAB_SERVER_OPTIONS, lab_app_settings

from .conftest import to_docs
from .test_lab import GRAPH, NOTEBOOK_READY, PANEL, SERIES, UI_TIMEOUT, open_and_run, shoot, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

PLOT = ".nbsocket-plot"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
SAVE_STATE = "@jupyter-widgets/jupyterlab-manager:saveWidgetState"


@pytest.fixture(scope="module")
def lab_args(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return [f"--LabApp.app_settings_dir={lab_app_settings(tmp_path_factory.mktemp('demo-workspace'))}", *LAB_SERVER_OPTIONS]


def cells(demo: Any, name: str) -> list[str]:
    return [
        f"import nbsocket as nbs\nconn = nbs.connect({name!r}, {demo.url('/ticker?rate=20')!r})\nnbs.panel({name!r})",
        f"nbs.plot({name!r})",
    ]


def shut_down_kernels(server: Any) -> None:
    for session in server.api("GET", "/api/sessions"):
        server.api("DELETE", f"/api/sessions/{session['id']}")
    wait_for(lambda: server.api("GET", "/api/kernels") == [], what="every kernel to shut down")


def reopen(browser_context: Any, server: Any, notebook: str, workspace: str) -> Any:
    """Open ``notebook`` in a new tab and a fresh workspace, as a reader coming back to it later."""
    tab = browser_context.new_page()
    tab.goto(server.url(f"/lab/workspaces/{workspace}/tree/{notebook}?reset"), wait_until="domcontentloaded")
    tab.wait_for_function(NOTEBOOK_READY, arg=notebook, timeout=UI_TIMEOUT, polling=200)
    return tab


def test_notebook_saved_in_jupyterlab_reopens_with_its_panels(
    jupyter_server: Any,
    page: Any,
    demo: Any,
    browser_context: Any,
    artifacts: Path,
) -> None:
    path = jupyter_server.write_notebook("saved-in-lab.ipynb", cells(demo, "kept"))
    open_and_run(page, jupyter_server, path)
    assert page.evaluate(f"() => window.jupyterapp.commands.isToggled({SAVE_STATE!r})"), (
        "the demo's JupyterLab should save widget state (Settings > Save Widget State Automatically)"
    )
    page.wait_for_function(f"(s) => ({SERIES})(s) === 'ABC,QRS,XYZ'", arg=f"{PANEL} {GRAPH}", timeout=UI_TIMEOUT)
    page.wait_for_selector(f"{PLOT} {GRAPH}", timeout=UI_TIMEOUT)
    conn_rows = page.locator(f"{PANEL} .nbsocket-header-box .nbsocket-counter[data-counter='in'] b")
    wait_for(lambda: int(conn_rows.inner_text().replace(",", "")) > 150, what="150 ticks (more than when the panel was shown)")
    page.wait_for_timeout(4000)  # the snapshot is refreshed every few seconds
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")

    def saved_state() -> dict[str, Any] | None:
        saved = json.loads((jupyter_server.root / path).read_text(encoding="utf-8"))
        return saved["metadata"].get("widgets", {}).get(WIDGET_STATE)

    state = wait_for(saved_state, what="the notebook saved with its widget state")
    assert any("nbsocket-header" in str(model["state"].get("value", "")) for model in state["state"].values())
    saved = json.loads((jupyter_server.root / path).read_text(encoding="utf-8"))
    snapshot = "".join(saved["cells"][0]["outputs"][0]["data"]["text/html"])
    rows = int(snapshot.split("latest ")[1].split(" of ")[1].split(" rows")[0].replace(",", ""))
    assert rows > 150, f"the saved snapshot shows {rows} rows: the panel as first shown, not as saved"
    assert "snapshot of socket" in snapshot
    page.close()
    shut_down_kernels(jupyter_server)

    tab = reopen(browser_context, jupyter_server, path, "reopened")
    try:
        tab.wait_for_selector(f"{PANEL} .nbsocket-header:has-text('kept')", timeout=UI_TIMEOUT)
        tab.wait_for_selector(f"{PANEL} .nbsocket-log-box .nbsocket-log-entry:has-text('ABC')")
        tab.wait_for_function(f"(s) => ({SERIES})(s) === 'ABC,QRS,XYZ'", arg=f"{PANEL} {GRAPH}", timeout=UI_TIMEOUT)
        tab.wait_for_selector(f"{PLOT} {GRAPH}")
        # no live kernel behind it: it says so, shows no "open" badge and no broken-link icon on every part
        tab.wait_for_selector(f"{PANEL} .nbsocket-offline-note:has-text('no live kernel')", timeout=UI_TIMEOUT)
        assert not tab.locator(f"{PANEL} .nbsocket-header-box .nbsocket-state").is_visible()
        icons = tab.evaluate(
            """() => Array.from(document.querySelectorAll('.nbsocket-panel .jupyter-widgets-disconnected, '
                + '.nbsocket-panel.jupyter-widgets-disconnected, .nbsocket-plot .jupyter-widgets-disconnected'))
                .map((e) => getComputedStyle(e, '::before').display)"""
        )
        assert icons and set(icons) == {"none"}, icons  # restored without a kernel, yet no icon is drawn
        tab.locator(PANEL).scroll_into_view_if_needed()
        tab.screenshot(path=str(artifacts / "saved-notebook-reopened.png"), full_page=True)
        shoot(tab, PANEL, artifacts / "saved-panel-no-kernel.png")
        to_docs(artifacts / "saved-panel-no-kernel.png")
        assert tab.locator("text=model not found").count() == 0
        assert tab.locator("text=Error displaying widget").count() == 0
    finally:
        tab.close()
        shut_down_kernels(jupyter_server)


def test_notebook_executed_headless_shows_its_snapshot_in_jupyterlab(
    jupyter_server: Any,
    browser_context: Any,
    demo: Any,
    artifacts: Path,
) -> None:
    import nbclient
    import nbformat

    source = cells(demo, "headless")
    source[0] = source[0].replace("\nnbs.panel", "\nnbs.wait('headless', 12, timeout=20)\nnbs.panel")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(text) for text in source])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbclient.NotebookClient(
        notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(jupyter_server.root)}}
    ).execute()
    nbformat.write(notebook, jupyter_server.root / "executed.ipynb")

    tab = reopen(browser_context, jupyter_server, "executed.ipynb", "executed")
    try:
        snapshot = tab.locator(".nbsocket-panel-snapshot")
        snapshot.locator(".nbsocket-header:has-text('headless')").wait_for(timeout=UI_TIMEOUT)
        assert snapshot.locator(".nbsocket-table td:has-text('ABC')").count() > 0
        # the chart is an image, which JupyterLab's sanitizer keeps (inline SVG it would turn into loose text)
        chart = snapshot.locator("img.nbsocket-chart-img")
        assert "chart: price by symbol" in (chart.get_attribute("alt") or "")
        assert (chart.get_attribute("src") or "").startswith("data:image/svg+xml;base64,")
        wait_for(lambda: chart.evaluate("(img) => img.complete && img.naturalWidth > 0"), what="the chart image to load")
        assert "price by symbol" not in snapshot.inner_text(), "the chart's labels leaked as a run of text"
        time.sleep(1)
        tab.screenshot(path=str(artifacts / "executed-notebook-reopened.png"), full_page=True)
        assert tab.locator("text=model not found").count() == 0
        assert tab.locator("text=Error displaying widget").count() == 0
    finally:
        tab.close()
        shut_down_kernels(jupyter_server)


def test_a_plot_alone_reopened_without_a_kernel_says_so(
    jupyter_server: Any, page: Any, demo: Any, browser_context: Any, artifacts: Path
) -> None:
    """No panel beside it (whose header brings the offline style): the chart itself says it is not live."""
    source = [f"import nbsocket as nbs\nconn = nbs.connect('alone', {demo.url('/ticker?rate=20')!r})\nnbs.plot('alone')"]
    path = jupyter_server.write_notebook("saved-plot.ipynb", source)
    open_and_run(page, jupyter_server, path, ready=f"{PLOT} {GRAPH}")
    note = page.locator(f"{PLOT} .nbsocket-offline-box")
    assert not page.locator(f"{PLOT} .nbsocket-offline-note").is_visible()  # live: no note ...
    assert note.bounding_box()["height"] < 30  # ... and hardly a line of room for it
    page.wait_for_function(f"(s) => ({SERIES})(s) === 'ABC,QRS,XYZ'", arg=f"{PLOT} {GRAPH}", timeout=UI_TIMEOUT)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    wait_for(
        lambda: WIDGET_STATE in (jupyter_server.root / path).read_text(encoding="utf-8"), what="the notebook saved with its state"
    )
    page.close()
    shut_down_kernels(jupyter_server)

    tab = reopen(browser_context, jupyter_server, path, "plot-reopened")
    try:
        tab.wait_for_function(f"(s) => ({SERIES})(s) === 'ABC,QRS,XYZ'", arg=f"{PLOT} {GRAPH}", timeout=UI_TIMEOUT)
        tab.wait_for_selector(f"{PLOT} .nbsocket-offline-note:has-text('no live kernel')", timeout=UI_TIMEOUT)
        icons = tab.evaluate(
            """() => Array.from(document.querySelectorAll('.nbsocket-plot .jupyter-widgets-disconnected, '
                + '.nbsocket-plot.jupyter-widgets-disconnected')).map((e) => getComputedStyle(e, '::before').display)"""
        )
        assert icons and set(icons) == {"none"}, icons
        shoot(tab, PLOT, artifacts / "saved-plot-no-kernel.png")
    finally:
        tab.close()
        shut_down_kernels(jupyter_server)
