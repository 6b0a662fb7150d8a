"""JupyterLab on 127.0.0.1 and headless Chromium (through Playwright), for the browser tests.

The browser is the system's Chromium (``$CHROMIUM_PATH`` or ``chromium`` on
PATH): Playwright is only the driver. JupyterLab runs from this interpreter
with its config, settings, workspaces and runtime files in a temporary folder.
Screenshots and a copy of the server log go to ``test-artifacts/`` (never committed). The
screenshots the README shows are copied over ``docs/`` only when ``NBSOCKET_UPDATE_DOCS=1``,
so a test run leaves the repository as it was.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(os.environ.get("NBSOCKET_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS = Path(__file__).resolve().parents[2] / "docs"
SERVER_START_TIMEOUT = 60.0
FAILED = pytest.StashKey[bool]()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path() -> str | None:
    """The Chromium to drive: ``$CHROMIUM_PATH``, else ``chromium`` (or ``chromium-browser``) on PATH."""
    env = os.environ.get("CHROMIUM_PATH")
    if env:
        return env
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class JupyterServer:
    """A running JupyterLab: its base URL, token and root folder."""

    base_url: str
    token: str
    root: Path
    log_path: Path

    def url(self, path: str) -> str:
        """A page of the server, with the token for the first visit."""
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}{path}{sep}token={self.token}"

    def api(self, method: str, path: str) -> Any:
        """Call the REST API (token in the header, so no XSRF cookie is needed)."""
        request = urllib.request.Request(
            f"{self.base_url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def write_notebook(self, name: str, cells: list[str]) -> str:
        """Write a notebook of code cells into the root folder; returns its file name."""
        notebook = {
            "cells": [
                {"cell_type": "code", "execution_count": None, "id": f"cell{i}", "metadata": {}, "outputs": [], "source": source}
                for i, source in enumerate(cells)
            ],
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        (self.root / name).write_text(json.dumps(notebook), encoding="utf-8")
        return name


def _write_lab_settings(settings_dir: Path) -> None:
    """No news or update checks: nothing pops up over the notebook."""
    notification = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8")


def _wait_until_up(server: JupyterServer, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}; see {server.log_path}")
        try:
            server.api("GET", "/api/status")
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"JupyterLab did not answer within {SERVER_START_TIMEOUT:.0f}s; see {server.log_path}")


def _stop(server: JupyterServer, proc: subprocess.Popen[bytes]) -> None:
    """Shut down through the API (which stops the kernels too), then make sure the process is gone."""
    if proc.poll() is None:
        try:
            server.api("POST", "/api/shutdown")
        except Exception:
            pass
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture(scope="module")
def lab_args() -> list[str]:
    """Extra command-line options of the module's JupyterLab (a test module may override this fixture)."""
    return []


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory, lab_args: list[str]) -> Iterator[JupyterServer]:
    """JupyterLab (with Notebook 7's pages) on a free port of 127.0.0.1, for this module."""
    home = tmp_path_factory.mktemp("jupyter")
    root = home / "notebooks"
    root.mkdir()
    for sub in ("config", "settings", "workspaces", "runtime"):
        (home / sub).mkdir()
    _write_lab_settings(home / "settings")
    log_path = home / "jupyter-server.log"
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("NBSOCKET_DEMO_URL", None)
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
        "--JupyterNotebookApp.expose_app_in_browser=True",
        "--ServerApp.terminals_enabled=False",
        *lab_args,
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers often run tests as root
        command.append("--ServerApp.allow_root=True")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = JupyterServer(f"http://127.0.0.1:{port}", token, root, log_path)
    try:
        _wait_until_up(server, proc)
        yield server
    finally:
        _stop(server, proc)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        log_text = log_path.read_text(encoding="utf-8", errors="replace").replace(token, "***")
        (ARTIFACTS / "jupyter-server.log").write_text(log_text, encoding="utf-8")


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium context with a fresh profile."""
    executable = chromium_path()
    if executable is None:
        pytest.fail("no Chromium found: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH")
    from playwright import sync_api

    playwright = sync_api.sync_playwright().start()
    try:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1000},
        )
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()
    finally:
        playwright.stop()


def to_docs(shot: Path, name: str | None = None) -> None:
    """Copy screenshot ``shot`` over ``docs/`` (as ``name``) when ``NBSOCKET_UPDATE_DOCS=1``."""
    if os.environ.get("NBSOCKET_UPDATE_DOCS") == "1":
        shutil.copyfile(shot, DOCS / (name or shot.name))


@pytest.fixture
def artifacts() -> Path:
    """The folder for screenshots (created if needed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Remember whether a browser test's body failed, for the ``page`` fixture's failure screenshot."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        item.stash[FAILED] = True


@pytest.fixture
def page(browser_context: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh tab; when the test fails, a screenshot of it is saved to test-artifacts/."""
    tab = browser_context.new_page()
    try:
        yield tab
    finally:
        if request.node.stash.get(FAILED, False):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            try:
                tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failure.png"), full_page=True)
            except Exception:
                pass
        tab.close()
