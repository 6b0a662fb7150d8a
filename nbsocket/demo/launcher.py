"""``nbsocket demo``: the demo server plus JupyterLab on the quickstart notebook, or a headless run of it."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import DemoServerError
from .server import DEFAULT_HOST, ENV_URL

__all__ = [
    "KERNEL_ARGUMENTS",
    "LAB_SERVER_OPTIONS",
    "PREVIEW_ROWS",
    "QUICKSTART",
    "SAVE_HOOK",
    "SUMMARY_MARK",
    "Stopped",
    "choose_server_port",
    "demo_server",
    "main",
    "notebooks_source",
    "port_free",
    "prepare_workspace",
    "run_headless",
    "run_lab",
    "stop_on_signals",
]


QUICKSTART = "quickstart.ipynb"
SUMMARY_MARK = "NBSOCKET-SUMMARY "
LAB_SETTINGS = ".jupyterlab-settings"
"""The demo JupyterLab's app settings folder, inside the workspace (hidden from its file browser)."""
LAB_DEFAULTS = {"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True}}
"""Setting defaults of the demo JupyterLab: notebooks are saved with their widget state, so a
saved notebook reopened later shows its panels and charts as they were (not "model not found")."""


SAVE_HOOK = "nbsocket.demo.save_hook.refresh_snapshots"
"""The demo JupyterLab's pre-save hook: a saved notebook's snapshots show its views as they were when it was saved."""
LAB_SERVER_OPTIONS = [f"--ContentsManager.pre_save_hook={SAVE_HOOK}"]
"""Server options of the demo JupyterLab (beside its app settings)."""


def notebooks_source() -> Path:
    """Where the example notebooks are: the package's copy, or the repository's ``notebooks/``."""
    packaged = resources.files("nbsocket") / "_notebooks"
    if packaged.is_dir():
        return Path(str(packaged))
    repo = Path(__file__).resolve().parents[2] / "notebooks"
    if repo.is_dir():
        return repo
    raise FileNotFoundError("the example notebooks are missing from this installation; reinstall nbsocket")


def prepare_workspace(target: Path) -> Path:
    """Copy the example notebooks into ``target`` (existing files are kept, so your edits survive)."""
    target.mkdir(parents=True, exist_ok=True)
    for notebook in sorted(notebooks_source().glob("*.ipynb")):
        destination = target / notebook.name
        if not destination.exists():
            shutil.copyfile(notebook, destination)
    return target


def lab_app_settings(workspace: Path, installed: Path | None = None) -> Path:
    """The demo JupyterLab's app settings: a copy of the installed ones plus :data:`LAB_DEFAULTS`.

    The defaults go in ``overrides.d``, so an ``overrides.json`` of the installation and
    anything set in JupyterLab's Settings (user settings) still win.
    """
    if installed is None:
        installed = _installed_lab_settings()
    target = workspace / LAB_SETTINGS
    if target.exists():
        shutil.rmtree(target)
    if installed is not None and installed.is_dir():
        shutil.copytree(installed, target)
    (target / "overrides.d").mkdir(parents=True, exist_ok=True)
    (target / "overrides.d" / "nbsocket-demo.json").write_text(json.dumps(LAB_DEFAULTS, indent=2), encoding="utf-8")
    return target


def _installed_lab_settings() -> Path | None:
    """The app settings folder JupyterLab uses by default (``<app dir>/settings``), if JupyterLab is importable."""
    try:
        from jupyterlab.commands import get_app_dir
    except Exception:
        return None
    return Path(get_app_dir()) / "settings"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def port_free(host: str, port: int) -> bool:
    """True if a server could listen on ``host:port`` now.

    The check binds with ``SO_REUSEADDR``, as the demo server does, so
    connections of a recent run still in TIME_WAIT do not count as taken.
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            s.listen(1)
        except OSError:
            return False
        return True


def choose_server_port(host: str, port: int) -> tuple[int, str | None]:
    """The demo server's port: ``port`` if it is free, else 0 (any free port) and a note saying so."""
    if not port or port_free(host, port):
        return port, None
    return 0, f"nbsocket demo: port {port} on {host} is taken (another demo server?); using a free port instead"


@contextlib.contextmanager
def demo_server(host: str, port: int) -> Iterator[str]:
    """Run the demo server in a child process; yields its base URL (and says so when the port had to change)."""
    port, note = choose_server_port(host, port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbsocket", "demo-server", "--host", host, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # a Ctrl-C in the terminal reaches nbsocket demo only, which stops its children in order
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if "ws://" not in first:
            raise DemoServerError(f"the demo server did not start: {first.strip() or 'no output'}")
        url = first.split("on ", 1)[1].split()[0]
        if note:
            print(f"{note}: {url}", flush=True)
        yield url
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """Stop a child with SIGTERM (JupyterLab then shuts its kernels down), and kill it if it outlasts ``timeout``.

    SIGTERM, not SIGINT: a job started in the background with ``&`` inherits SIGINT ignored, and
    JupyterLab answers SIGINT with a question on the terminal.
    """
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


class Stopped(Exception):
    """``nbsocket demo`` received SIGTERM, SIGINT or SIGHUP: stop everything it started, then exit."""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM, SIGINT and SIGHUP into :class:`Stopped` in the main thread while the demo runs.

    Python's own SIGINT handler is not there when the demo was started in the background (``nbsocket demo &``
    inherits SIGINT ignored), and SIGTERM would end the process without cleaning up: JupyterLab, its kernels
    and the demo server would be left running.
    """
    wanted = [signal.SIGTERM, signal.SIGINT] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])

    def stop(signum: int, _frame: object) -> None:
        for number in wanted:  # a second signal while stopping must not cut the cleanup short
            signal.signal(number, signal.SIG_IGN)
        raise Stopped(signal.Signals(signum).name)

    previous = {number: signal.signal(number, stop) for number in wanted}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


PREVIEW_ROWS = 5
"""Rows of the live frame ``nbsocket demo --headless`` prints."""


KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
"""The headless run's kernel logs only errors: its TCP-without-encryption warning (the kernel listens
on 127.0.0.1 only) would stand above what the notebook received."""


def run_headless(workspace: Path, server_url: str, timeout: float = 300) -> dict[str, Any]:
    """Execute the quickstart notebook with nbclient and return a summary of what it received.

    The summary has ``sockets``, ``messages_in``, ``rows``, ``states`` and
    ``preview`` (the last rows of the live frame, as text).
    """
    import nbformat
    from nbclient import NotebookClient

    path = workspace / QUICKSTART
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            "import json as _json, nbsocket as _nbs\n"
            "_status = _nbs.connections()\n"
            f"_preview = _nbs.frame().tail({PREVIEW_ROWS}).to_string(index=False, max_colwidth=40)\n"
            f"print({SUMMARY_MARK!r} + _json.dumps({{'sockets': int(len(_status)), "
            "'messages_in': int(_status['messages_in'].sum()), 'rows': int(_status['rows'].fillna(0).sum()), "
            "'states': sorted(set(_status['state'])), 'preview': _preview}))"
        )
    )
    os.environ[ENV_URL] = server_url
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        extra_arguments=KERNEL_ARGUMENTS,
        resources={"metadata": {"path": str(workspace)}},
    )
    client.execute()
    for output in notebook.cells[-1].get("outputs", []):
        text = output.get("text", "")
        if SUMMARY_MARK in text:
            summary: dict[str, Any] = json.loads(text.split(SUMMARY_MARK, 1)[1])
            return summary
    raise DemoServerError("the quickstart notebook ran but printed no summary")


def run_lab(workspace: Path, server_url: str, host: str, port: int, open_browser: bool) -> int:
    """Start JupyterLab on the quickstart notebook and wait until Ctrl-C."""
    if shutil.which("jupyter") is None and not _has_module("jupyterlab"):
        print("nbsocket demo needs JupyterLab: pip install 'nbsocket[demo]'", file=sys.stderr)
        return 1
    port = port or _free_port(host)
    token = secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.ip={host}",
        f"--ServerApp.port={port}",
        f"--ServerApp.root_dir={workspace}",
        f"--LabApp.default_url=/lab/tree/{QUICKSTART}",
        f"--IdentityProvider.token={token}",
        f"--LabApp.app_settings_dir={lab_app_settings(workspace)}",
        *LAB_SERVER_OPTIONS,
    ]
    if not open_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers often run as root; the server only listens on this machine
    env = {**os.environ, ENV_URL: server_url}
    lab = subprocess.Popen(command, env=env, start_new_session=True)
    if not _wait_listening(host, port, lab):
        _stop(lab)
        print(f"nbsocket demo: JupyterLab did not start (exit code {lab.returncode}); see its log above", file=sys.stderr)
        return 1
    print(f"nbsocket demo: demo server on {server_url}; notebooks in {workspace}")
    print(f"open http://{host}:{port}/lab/tree/{QUICKSTART}?token={token}")
    print("Ctrl-C (or SIGTERM) stops JupyterLab, its kernels and the demo server.", flush=True)
    try:
        while lab.poll() is None:
            time.sleep(0.5)
    except (KeyboardInterrupt, Stopped):
        print("nbsocket demo: stopping JupyterLab, its kernels and the demo server", flush=True)
    finally:
        _stop(lab)
    return 0


def _wait_listening(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> bool:
    """Wait until ``proc`` accepts connections on ``host:port``; False if it exits or ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def main(
    directory: str,
    host: str = DEFAULT_HOST,
    port: int = 0,
    server_port: int = 8765,
    headless: bool = False,
    open_browser: bool = True,
) -> int:
    """Entry point of ``nbsocket demo``: stops everything it started on Ctrl-C, SIGTERM or SIGHUP, in the foreground or not."""
    workspace = prepare_workspace(Path(directory).expanduser().resolve())
    try:
        with stop_on_signals():
            return _run(workspace, host, port, server_port, headless, open_browser)
    except Stopped:
        return 0


def _run(workspace: Path, host: str, port: int, server_port: int, headless: bool, open_browser: bool) -> int:
    with demo_server(host, server_port) as server_url:
        if headless:
            started = time.monotonic()
            summary = run_headless(workspace, server_url)
            print(
                f"nbsocket demo --headless: ran {QUICKSTART} against the demo server on {server_url} "
                f"in {time.monotonic() - started:.1f} s"
            )
            print(
                f"  sockets: {summary['sockets']}  messages received: {summary['messages_in']}  "
                f"rows in the live frames: {summary['rows']}  states: {', '.join(summary['states'])}"
            )
            print(f"  the last {PREVIEW_ROWS} rows received:")
            print("\n".join("    " + line for line in str(summary.get("preview", "")).splitlines()))
            print(f"  the notebooks are in {workspace}; nbsocket demo opens them in JupyterLab")
            return 0 if int(summary["messages_in"]) > 0 else 1
        return run_lab(workspace, server_url, host, port, open_browser)
