"""The magics in a real Jupyter kernel: a notebook built in memory, run with nbclient against the demo server."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

import nbsocket

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PROJECT_ROOT = Path(nbsocket.__file__).resolve().parent.parent


def text_of(cell) -> str:
    """Everything a cell showed, as text: streams, plain-text results and error lines."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", ""))
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
    return "".join(parts)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_notebook_drives_sockets_through_the_magics(demo, tmp_path) -> None:
    ticker = demo.url("/ticker?rate=50&symbols=ABC")
    echo = demo.url("/echo")
    sources = {
        "load": "%load_ext nbsocket\n%config NbSocket.max_rows = 500",
        "connect": f"seen = []\nticker = %ws_connect ticker {ticker}\nprint(ticker.state, ticker.options.max_rows)",
        "handler": "%%ws_handler ticker\nseen.append(event.data['symbol'])",
        "wait": "rows = %ws_wait ticker -n 3 --timeout 20\nrows[['socket', 'symbol']]",
        "send": f'%ws_connect echo {echo}\nnote = \'from-the-kernel\'\n%ws_send echo {{"note": {{note}}, "n": 7}}',
        "error": "%ws_send nowhere 1",
        "status": "status = %ws_status\nprint(sorted(status['name']), 'ABC' in seen)",
        "unload": "%unload_ext nbsocket\nprint('loop running:', nbsocket_manager.loop_thread.running, ticker.state)",
    }
    nb = new_notebook(cells=[new_code_cell(source) for source in sources.values()])
    nb.cells[list(sources).index("error")].metadata["tags"] = ["raises-exception"]
    nb.cells[-1].source = "from nbsocket.runtime.manager import default_manager as nbsocket_manager\n" + nb.cells[-1].source
    client = NotebookClient(nb, timeout=30, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    client.execute(env={**os.environ, "PYTHONPATH": pythonpath})
    cells = dict(zip(sources, nb.cells, strict=True))

    assert text_of(cells["connect"]).strip() == "open 500"
    wait = cells["wait"]
    result = [o for o in wait.outputs if o.output_type == "execute_result"]
    assert len(result) == 1 and "text/html" in result[0].data
    table = result[0].data["text/plain"]
    assert table.count("ticker") == 3 and table.count("ABC") == 3
    progress = [o for o in wait.outputs if o.output_type == "display_data"]
    assert len(progress) == 1  # the progress bar's place, emptied when the wait ended
    assert progress[0].data.get("text/plain", "") == "" and WIDGET_VIEW not in progress[0].data
    assert '{"note":"from-the-kernel","n":7}' in demo.messages("/echo")
    error = text_of(cells["error"])
    assert error.strip().count("\n") == 0 and "no socket named 'nowhere'" in error and "known sockets" in error
    assert "Traceback" not in error
    assert text_of(cells["status"]).strip() == "['echo', 'ticker'] True"
    assert text_of(cells["unload"]).strip() == "loop running: False closed"
    nbformat.validate(nb)
