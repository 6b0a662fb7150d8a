"""The live views at 10,000 msgs/s: what the kernel sends on iopub, and how responsive the browser stays.

    python benchmarks/views.py [--rate 10000] [--seconds 20] [--no-browser]

The paced frame server (``_frameserver.py``, its own process, nothing per message) streams small JSON
ticks (three symbols) at ``--rate`` messages per second. Both parts run the same notebook cell: connect,
then ``nbs.panel`` and ``nbs.plot`` of that socket (Plotly's FigureWidget when installed).

1. **Kernel.** A kernel (jupyter_client, no frontend) runs the cell; once it has run, a client records
   every iopub message for ``--seconds``: messages per second (the most in any 1 s window, and in
   the 3 s window jupyter_server averages over, whose limit is 1000 msgs/s; status, comm_open and
   execute_input are not counted, as jupyter_server does not count them), their bytes per second (all
   of them, and stream output, the only kind jupyter_server's 1 MB/s data limit counts), the kernel
   process's CPU, the messages the socket received meanwhile (the kernel keeps up), and the round
   trip of a trivial execute request sent every second (the kernel stays responsive). The baseline is
   the same socket in a kernel of its own without the views (``nbs.connect`` only), measured the same way.
2. **Browser.** JupyterLab (a private config) in headless Chromium (``$CHROMIUM_PATH`` or ``chromium``)
   runs the cell; for ``--seconds`` the page records the lag of a 50 ms timer, its long tasks
   (PerformanceObserver: the share of its main thread they took) and its frames per second, while a
   key is pressed in the panel's message box every 250 ms (the Event Timing API: from each key press
   to the frame that shows it). Then the time from typing into the log's search box to the filtered
   log. The baseline is the same page after the panel's Disconnect (the views shown, nothing
   arriving). The server's log is checked for "rate exceeded".

Nothing is asserted: it prints the figures (the README quotes them).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import FrameServer

CONNECT = """
import nbsocket as nbs
conn = nbs.connect("fast", {url!r}, max_rows=100_000)
"""
VIEWS = """
display(nbs.panel("fast", by="symbol"))
display(nbs.plot("fast", y="price", by="symbol"))
"""
CELL = os.environ.get("NBSOCKET_VIEWS_CELL") or CONNECT + VIEWS
NOT_COUNTED = ("status", "comm_open", "execute_input")
"""iopub messages jupyter_server's rate limit leaves out."""


def _windows(times: list[float], span: float) -> float:
    """The most events in any window of ``span`` seconds, per second."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= span:
            start += 1
        best = max(best, end - start + 1)
    return best / span


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _size(msg: dict[str, Any]) -> int:
    return len(json.dumps(msg["content"], default=str)) + sum(len(b) for b in msg.get("buffers", []))


def kernel_part(url: str, seconds: float, cell: str) -> dict[str, Any]:
    """Run ``cell`` in a kernel, wait until it has run, then record the kernel's iopub traffic for ``seconds``."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    shown: list[int] = []
    records: list[tuple[float, str, int, int]] = []
    round_trips: list[float] = []
    received: list[tuple[float, int]] = []
    try:
        cell_id = kc.execute(cell.format(url=url))
        while True:  # the cell's own output (the widgets' models) until the kernel is idle after it
            msg = kc.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != cell_id:
                continue
            if msg["msg_type"] == "error":
                raise RuntimeError(f"the cell failed: {msg['content'].get('evalue')}")
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            shown.append(_size(msg))
        pid = km.provisioner.process.pid  # type: ignore[union-attr]  # the local provisioner's child
        cpu_start, start = _cpu_seconds(pid), time.monotonic()
        next_probe = start
        probe: tuple[str, float] | None = None
        while time.monotonic() - start < seconds:
            now = time.monotonic()
            if probe is None and now >= next_probe:
                expression = {"n": "nbs.get('fast').status()['messages_in']"}
                probe = (kc.execute("pass", silent=True, user_expressions=expression), now)
            try:
                msg = kc.get_iopub_msg(timeout=0.02)
            except queue.Empty:
                msg = None
            if msg is not None:
                size = _size(msg)
                stream = size if msg["msg_type"] == "stream" else 0
                records.append((time.monotonic(), msg["msg_type"], size, stream))
            if probe is not None:
                try:
                    reply = kc.get_shell_msg(timeout=0)
                except queue.Empty:
                    reply = None
                if reply is not None and reply["parent_header"].get("msg_id") == probe[0]:
                    done = time.monotonic()
                    round_trips.append(done - probe[1])
                    count = reply["content"]["user_expressions"]["n"]["data"]["text/plain"]
                    received.append((done, int(count)))
                    probe, next_probe = None, probe[1] + 1.0
        cpu = _cpu_seconds(pid) - cpu_start
        elapsed = time.monotonic() - start
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    counted = [r for r in records if r[1] not in NOT_COUNTED]
    times = [r[0] for r in counted]
    (t0, n0), (t1, n1) = received[0], received[-1]
    return {
        "at show: iopub messages, MB": (len(shown), sum(shown) / 1e6),
        "received by the socket (msgs/s)": (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0,
        "kernel CPU (% of a core)": 100 * cpu / elapsed,
        "counted iopub msgs/s (mean)": len(counted) / elapsed,
        "counted iopub msgs/s (max in 1 s)": _windows(times, 1.0) if times else 0.0,
        "counted iopub msgs/s (max in 3 s, jupyter_server's window; limit 1000)": _windows(times, 3.0) if times else 0.0,
        "iopub KB/s (all)": sum(r[2] for r in records) / elapsed / 1e3,
        "stream KB/s (the data limit's; limit 1000)": sum(r[3] for r in records) / elapsed / 1e3,
        "largest message (KB)": max((r[2] for r in records), default=0) / 1e3,
        "execute round trip p50/max (ms)": (1e3 * statistics.median(round_trips), 1e3 * max(round_trips))
        if round_trips
        else None,
        "by type": {t: sum(1 for r in records if r[1] == t) for t in sorted({r[1] for r in records})},
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PROBE_START = """() => {
    const probe = window.__nbsocketProbe = {lags: [], frames: [], longTasks: [], keys: [], running: true};
    probe.tasks = new PerformanceObserver((list) => list.getEntries().forEach((e) => probe.longTasks.push(e.duration)));
    probe.tasks.observe({type: 'longtask'});
    probe.events = new PerformanceObserver((list) => list.getEntries().forEach((e) => {
        if (e.name === 'keydown') probe.keys.push(e.duration);  // from the key press to the next frame painted
    }));
    probe.events.observe({type: 'event', durationThreshold: 16});
    let last = performance.now();
    probe.timer = setInterval(() => { const now = performance.now(); probe.lags.push(now - last - 50); last = now; }, 50);
    probe.started = performance.now();
    const frame = (t) => { probe.frames.push(t); if (probe.running) requestAnimationFrame(frame); };
    requestAnimationFrame(frame);
}"""
"""Starts recording: the lag of a 50 ms timer, long tasks, frames, and how long each key press took to reach the screen."""

PROBE_STOP = """(presses) => {
    const probe = window.__nbsocketProbe;
    probe.running = false; clearInterval(probe.timer); probe.tasks.disconnect(); probe.events.disconnect();
    const seconds = (performance.now() - probe.started) / 1000;
    const pick = (values, q) => {
        const v = [...values].sort((a, b) => a - b);
        return v.length ? v[Math.min(v.length - 1, Math.floor(q * v.length))] : 0;
    };
    const keys = [...probe.keys, ...Array(Math.max(0, presses - probe.keys.length)).fill(16)];  // the rest were under 16 ms
    return {timer_lag_p50_ms: pick(probe.lags, 0.5), timer_lag_p99_ms: pick(probe.lags, 0.99),
            timer_lag_max_ms: pick(probe.lags, 1),
            long_tasks_per_s: probe.longTasks.length / seconds,
            main_thread_in_long_tasks_pct: 100 * probe.longTasks.reduce((a, b) => a + b, 0) / (seconds * 1000),
            fps: probe.frames.length / seconds,
            key_to_screen_p50_ms: pick(keys, 0.5), key_to_screen_p95_ms: pick(keys, 0.95), key_to_screen_max_ms: pick(keys, 1),
            key_presses: presses};
}"""
"""Stops recording and returns the figures (a key press under 16 ms is not reported by the browser: counted as 16 ms)."""

TYPED_INTO = ".nbsocket-panel .nbsocket-message input"
"""Where the probe types (the Send row's message box: typing there sends nothing)."""


def _measure(page: Any, seconds: float) -> dict[str, Any]:
    """Record the page for ``seconds`` while a key is pressed in the panel's message box every 250 ms."""
    box = page.locator(TYPED_INTO)
    box.dispatch_event("focus")
    box.focus()
    page.evaluate(PROBE_START)
    presses, ends = 0, time.monotonic() + seconds
    while time.monotonic() < ends:
        page.keyboard.press("x")
        presses += 1
        page.wait_for_timeout(250)
    figures: dict[str, Any] = page.evaluate(PROBE_STOP, presses)
    box.fill("")
    return figures


RECEIVED = ".nbsocket-panel .nbsocket-header-box .nbsocket-counter[data-counter='in'] b"
SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False}}


def _received(page: Any) -> int:
    return int(page.locator(RECEIVED).inner_text().replace(",", ""))


def browser_part(url: str, seconds: float) -> dict[str, Any]:
    """Run the cell in JupyterLab in headless Chromium and measure the page while the feed streams, then idle."""
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return {"skipped": "no Chromium (set CHROMIUM_PATH)"}
    home = Path(tempfile.mkdtemp(prefix="nbsocket-views-"))
    root = home / "notebooks"
    root.mkdir()
    for name, values in SETTINGS.items():
        path = home / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "id": "c0",
        "metadata": {},
        "outputs": [],
        "source": CELL.format(url=url),
    }
    notebook = {
        "cells": [cell],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / "views.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
    }
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--ServerApp.allow_root=True")
    log_path = home / "server.log"
    with open(log_path, "wb") as log:
        lab = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {}
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                page.goto(f"{base}/lab/tree/views.ipynb?reset&token={token}", wait_until="domcontentloaded")
                page.wait_for_function(
                    "() => { const p = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                    " const s = p && p.sessionContext && p.sessionContext.session;"
                    " return !!(s && s.kernel && s.kernel.status === 'idle'); }",
                    timeout=120_000,
                    polling=200,
                )
                page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                page.wait_for_selector('.nbsocket-panel .nbsocket-state[data-state="open"]', timeout=120_000)
                if "nbs.plot" in CELL:
                    page.wait_for_selector(".nbsocket-plot .js-plotly-plot, .nbsocket-plot .nbsocket-svg", timeout=120_000)
                page.wait_for_timeout(3000)
                first, started = _received(page), time.monotonic()
                streaming = _measure(page, seconds)
                streaming["received by the socket (msgs/s, as the panel counts)"] = (_received(page) - first) / (
                    time.monotonic() - started
                )
                search = page.locator(".nbsocket-panel .nbsocket-log-search input")
                started = time.monotonic()
                search.fill("QRS")
                page.wait_for_function(
                    "() => { const n = document.querySelector('.nbsocket-panel .nbsocket-log-box .nbsocket-log-note');"
                    " return n && n.textContent.includes('match'); }",
                    timeout=60_000,
                    polling=50,
                )
                streaming["search to filtered log (s)"] = time.monotonic() - started
                result["streaming"] = streaming
                page.locator(".nbsocket-panel button.nbsocket-disconnect").dispatch_event("click")  # wherever it is scrolled
                page.wait_for_selector('.nbsocket-panel .nbsocket-state[data-state="closed"]', timeout=60_000)
                page.wait_for_timeout(3000)
                result["baseline (disconnected)"] = _measure(page, min(seconds, 10.0))
            finally:
                browser.close()
    finally:
        lab.terminate()
        try:
            lab.wait(30)
        except subprocess.TimeoutExpired:
            lab.kill()
    server_log = log_path.read_text(errors="replace")
    result["iopub rate exceeded in the server log"] = "rate exceeded" in server_log
    shutil.rmtree(home, ignore_errors=True)
    return result


def _print(title: str, figures: dict[str, Any], indent: str = "  ") -> None:
    print(f"{indent[:-2]}{title}:")
    for key, value in figures.items():
        if isinstance(value, dict) and key != "by type":
            _print(key, value, indent + "  ")
        elif isinstance(value, float):
            print(f"{indent}{key}: {value:,.1f}")
        elif isinstance(value, tuple):
            print(f"{indent}{key}: " + " / ".join(f"{v:,.1f}" if isinstance(v, float) else f"{v:,}" for v in value))
        else:
            print(f"{indent}{key}: {value}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=10_000, help="messages per second offered (default 10000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each part measures (default 20)")
    parser.add_argument("--no-browser", action="store_true", help="only the kernel part")
    args = parser.parse_args()
    with FrameServer() as server:
        url = f"{server.url}/paced?rate={args.rate}&count=0"
        print(f"offered: {args.rate:,} msgs/s of {server.frame_size}-byte ticks from {server.url}", flush=True)
        _print("kernel, nbs.connect only (the baseline)", kernel_part(url, args.seconds, CONNECT))
        _print("kernel, with nbs.panel and nbs.plot shown (iopub as sent, no frontend)", kernel_part(url, args.seconds, CELL))
        if not args.no_browser:
            _print("browser (JupyterLab, headless Chromium)", browser_part(url, args.seconds))


if __name__ == "__main__":
    main()
