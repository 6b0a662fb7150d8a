"""Every notebook in notebooks/ is executed against the demo server, and its results are checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import ARTIFACTS, SECRET
from .protocol_servers.rabbitmq import RabbitMQ, rabbitmq  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

CHECKS = {
    "quickstart.ipynb": """
assert len(df) >= 20 and {"symbol", "price", "seq", "timestamp"} <= set(df.columns)
assert list(latest["seq"]) == sorted(latest["seq"]) and len(latest) == 20
assert "QRS" in set(more["symbol"])  # the subscription sent with %ws_send took effect
assert nbs.get("prices").state == "open" and nbs.get("prices").stats.errors == 0
assert all(price > 100.2 for _, _, price in alerts)
print("CHECKED", len(nbs.frame("prices")))
""",
    "dashboard.ipynb": """
assert set(everything["socket"]) >= {"slow", "fast", "chat"}
assert reply.data == "hello, dashboard"
assert counts.get("fast", 0) >= 200 and counts.get("slow", 0) >= 1
assert nbs.get("slow").state == "open" and nbs.get("slow").stats.resets == 1
print("CHECKED")
""",
    "slack-style-reset.ipynb": """
assert rtm.state == "open" and len(moves) >= 2 and rtm.stats.resets >= 2
assert stubborn.state == "failed" and stubborn.close_code == 4001
assert frame["seq"].is_monotonic_increasing and (frame["type"] == "reconnect_url").sum() >= 2
assert "ticket=***" in rtm.url
print("CHECKED")
""",
    "testing-a-server.ipynb": """
assert reply.data == {"id": 1, "op": "hello"} and reply.rtt > 0 and reply2.data["id"] == 2
assert tick.data["symbol"] == "XYZ" and "within" in timeout_message
assert {"sent", "received"} <= set(transcript["direction"])
assert "close" in set(transcript["direction"]) | set(transcript.get("kind", []))
assert len(same) == 0 and len(diff) >= 1 and "value" in " ".join(map(str, diff["field"]))
assert "ping" in echo.latency_stats().index and report.delivered == 500 and report.failed == 0
assert quote.data["symbol"] == "ABC" and "symbol: expected 'XYZ', got 'ABC'" in expectation_message
assert len(report.round_trips) == 500 and report.p50_s <= report.p95_s <= report.max_s
assert note.data["text"] == "order 42 shipped" and pushed["delivered"] >= 1
assert volatile == ("timestamp",) and result.returncode == 0 and "2 passed" in result.stdout, result.stdout
assert token not in Path(saved_orders.path).read_text() and "NBS_ORDERS_AUTHORIZATION" in saved_orders.environment
assert '"timestamp"' not in Path(saved_ticks.path).read_text().split("def test_")[1]
print("CHECKED")
""",
    "pode-to-nbsocket.ipynb": """
assert broken.data is None and broken.error and broken.request.body == "{not json"
assert conn.lockable["total"] >= 5 and seen and seen[0].startswith("echo #")
assert "echo" not in nbs.connections()["name"].tolist()
print("CHECKED")
""",
    "protocols.ipynb": """
assert echoed == {"x": 1} and ("chat", {"text": "hello", "room": "lobby"}) in seen
assert ("question", "the meaning of life") in seen and ("/", "question", ["answer to the meaning of life"]) in SIO.acks
assert chat_frame["topic"].tolist().count("chat") == 2 and "lobby" in set(chat_frame["room"])
assert hello == {"hello": "Hello, notebook!"} and total == {"add": 42}
assert third.data == {"ticks": {"n": 3}} and not ticks.active and gql.subscriptions == []
assert set(gql_frame["topic"]) == {ticks.topic} and gql_frame["ticks.n"].tolist()[:3] == [1, 2, 3]
assert added == 3 and RPC.logged == [{"msg": "hello from a notebook"}]
assert remote_error.code == -32001 and "not enough credit" in str(remote_error) and remote_error.data == {"balance": 0}
assert [(e.topic, e.data) for e in notes] == [("tick", {"n": n}) for n in (1, 2, 3)]
if os.environ.get("NBSOCKET_STOMP_URL"):
    assert job.topic == queue and job.data == {"job": 1, "task": "resize"}
    assert job2.data == {"job": 2, "task": "thumbnail"} and not jobs.active
    stomp_frame = nbs.frame("mq")
    assert stomp_frame["job"].tolist() == [1, 2] and set(stomp_frame["topic"]) == {queue}
    print("STOMP CHECKED")
else:
    assert mq is None
print("CHECKED")
""",
}


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_every_notebook_has_checks_and_no_outputs_in_git() -> None:
    names = {p.name for p in notebook_paths()}
    assert names == set(CHECKS), "add checks for every notebook"
    for path in notebook_paths():
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs saved"


def _extra_closure(extras: dict[str, list[str]], name: str) -> set[str]:
    """The distribution names an extra brings, following ``nbsocket[other]`` references."""
    import re

    names: set[str] = set()
    for requirement in extras[name]:
        project = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()
        if project == "nbsocket":
            for inner in requirement.split("[", 1)[1].split("]", 1)[0].split(","):
                names |= _extra_closure(extras, inner.strip())
        else:
            names.add(project)
    return names


def test_the_demo_extra_brings_what_every_copied_notebook_needs() -> None:
    """README's first command (pip install -e ".[demo]" && nbsocket demo) runs every notebook nbsocket demo copies:
    protocols.ipynb's servers (the protocols-demo libraries) and the interactive charts (views) included."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    demo = _extra_closure(extras, "demo")
    assert _extra_closure(extras, "protocols-demo") <= demo
    assert {"plotly", "anywidget", "jupyterlab", "nbclient"} <= demo
    assert {"pytest", "jsonschema", "httpx"} <= demo  # testing-a-server.ipynb runs its saved tests, calls /notify
    notebooks = " ".join((NOTEBOOKS / name).read_text(encoding="utf-8") for name in CHECKS)
    assert "protocol_servers" in notebooks  # protocols.ipynb starts the servers those libraries serve


def _outputs_text(notebook: nbformat.NotebookNode) -> str:
    return json.dumps([cell.get("outputs", []) for cell in notebook.cells])


def _run(name: str, saved_as: str | None = None) -> nbformat.NotebookNode:
    """Execute notebook ``name`` with its checks appended; fail on a missing CHECKED or any error output (a red box)."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(CHECKS[name]))
    client = NotebookClient(notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute()
    finally:
        out = ARTIFACTS / "notebooks"
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, out / (saved_as or name))
    assert "CHECKED" in _outputs_text(notebook)
    shown_as_errors = [
        (index, output.get("text") or output.get("evalue"))
        for index, cell in enumerate(notebook.cells)
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error" or (output.get("output_type") == "stream" and output.get("name") == "stderr")
    ]
    assert not shown_as_errors, f"{name} shows error output (a red box) in cells: {shown_as_errors}"
    return notebook


@pytest.mark.slow
def test_protocols_notebook_without_a_broker_skips_stomp_quietly(monkeypatch) -> None:
    for variable in ("NBSOCKET_STOMP_URL", "NBSOCKET_STOMP_LOGIN", "NBSOCKET_STOMP_PASSCODE"):
        monkeypatch.delenv(variable, raising=False)
    notebook = _run("protocols.ipynb", saved_as="protocols-no-broker.ipynb")
    text = _outputs_text(notebook)
    assert "no broker configured" in text and "STOMP CHECKED" not in text


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_notebook_runs_and_its_results_hold(name: str, demo, monkeypatch, request) -> None:
    monkeypatch.setenv("NBSOCKET_DEMO_URL", demo.base_url)
    monkeypatch.setenv("DEMO_API_TOKEN", SECRET)
    if name == "protocols.ipynb":  # its STOMP part really runs, against the private RabbitMQ
        broker: RabbitMQ = request.getfixturevalue("rabbitmq")
        monkeypatch.setenv("NBSOCKET_STOMP_URL", broker.ws_url)
        monkeypatch.setenv("NBSOCKET_STOMP_LOGIN", broker.login)
        monkeypatch.setenv("NBSOCKET_STOMP_PASSCODE", broker.passcode)
    notebook = _run(name)
    if name == "protocols.ipynb":
        assert "STOMP CHECKED" in _outputs_text(notebook)
    widget_views = [
        o for c in notebook.cells for o in c.get("outputs", []) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    if name in ("quickstart.ipynb", "dashboard.ipynb"):
        assert widget_views, "the panel, plot or dashboard did not render"
    if name == "quickstart.ipynb":
        assert any('"op": "subscribe"' in m or '"op":"subscribe"' in m for m in demo.messages("/ticker") if isinstance(m, str))
    if name == "pode-to-nbsocket.ipynb":
        assert "Bearer ***" in _outputs_text(notebook) or "***" in _outputs_text(notebook)
        assert "echo: open" in _outputs_text(notebook)  # %ws_test, Pode's Test-PodeWebSocket


@pytest.mark.slow
def test_nbsocket_demo_headless_prints_a_summary(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NBSOCKET_DEMO_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "nbsocket", "demo", "--headless", "--dir", str(tmp_path / "ws"), "--server-port", "0"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout
    assert "messages received:" in summary
    received = int(summary.split("messages received:")[1].split()[0])
    rows = int(summary.split("rows in the live frames:")[1].split()[0])
    assert received >= 30 and rows >= 30
    assert (tmp_path / "ws" / "quickstart.ipynb").exists()
    preview = summary.split("the last 5 rows received:")[1]
    assert "symbol" in preview and "price" in preview and len(preview.strip().splitlines()) >= 6  # header + 5 rows
    assert "TCP" not in result.stderr and "WARNING" not in result.stderr, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("signal_name, background", [("SIGINT", False), ("SIGTERM", False), ("SIGINT", True), ("SIGTERM", True)])
def test_nbsocket_demo_ends_all_it_started_on_a_signal(tmp_path: Path, signal_name: str, background: bool) -> None:
    """Foreground (Ctrl-C) or background (``nbsocket demo &``, which inherits SIGINT ignored): JupyterLab, its kernels
    and the demo server all stop, and nbsocket demo exits 0."""
    import json as _json
    import signal
    import time
    import urllib.request

    import psutil

    def ignore_sigint() -> None:  # what a shell does to a job it starts with &
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen(
        [sys.executable, "-m", "nbsocket", "demo", "--no-browser", "--dir", str(tmp_path / "ws"), "--server-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=ignore_sigint if background else None,
    )
    started: list[psutil.Process] = []
    try:
        assert proc.stdout is not None
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("open http"):
                url = line.split()[1]
        assert url is not None, "nbsocket demo printed no URL"
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200 and b"JupyterLab" in response.read()
        base, token = url.split("/lab/")[0], url.split("token=")[1]
        request = urllib.request.Request(
            f"{base}/api/kernels", data=b"{}", method="POST", headers={"Authorization": f"token {token}"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert _json.loads(response.read())["id"]
        started = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in started)
        assert "demo-server" in names and "jupyterlab" in names and "ipykernel" in names, names
        proc.send_signal(getattr(signal, signal_name))
        assert proc.wait(60) == 0
        _gone, alive = psutil.wait_procs(started, timeout=30)
        assert not alive, f"still running after {signal_name}: {[p.cmdline() for p in alive]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for child in started:
            if child.is_running():
                child.kill()
