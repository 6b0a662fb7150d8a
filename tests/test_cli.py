"""The ``nbsocket`` command and the demo launcher's choice of ports."""

from __future__ import annotations

import errno
import socket
import subprocess
import sys

import pytest

from nbsocket.cli import main
from nbsocket.demo.launcher import LAB_DEFAULTS, choose_server_port, demo_server, lab_app_settings, port_free


def test_bare_nbsocket_prints_the_help_and_the_main_command(capsys) -> None:
    assert main([]) == 0
    shown = capsys.readouterr().out
    assert "usage: nbsocket" in shown and "demo-server" in shown
    assert "Start here: nbsocket demo" in shown and "./nbsocket-demo" in shown


def test_bare_nbsocket_command_exits_0() -> None:
    result = subprocess.run([sys.executable, "-m", "nbsocket"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "nbsocket demo" in result.stdout and result.stderr == ""


def _leave_time_wait(port_holder: socket.socket) -> int:
    """Accept one connection on ``port_holder`` and close it from the server's side first, so its port has a
    connection in TIME_WAIT; then stop listening. Returns the port."""
    port = port_holder.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = port_holder.accept()
    accepted.close()  # the side that closes first keeps TIME_WAIT
    client.recv(1)
    client.close()
    port_holder.close()
    return port


def test_a_port_in_time_wait_counts_as_free() -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = _leave_time_wait(listener)
    with socket.socket() as plain:  # what the launcher used to do
        try:
            plain.bind(("127.0.0.1", port))
        except OSError as exc:
            assert exc.errno == errno.EADDRINUSE
        else:
            pytest.skip("this system does not keep the port in TIME_WAIT")
    assert port_free("127.0.0.1", port)
    assert choose_server_port("127.0.0.1", port) == (port, None)


def test_a_taken_port_is_said_and_another_is_used(capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert not port_free("127.0.0.1", port)
        chosen, note = choose_server_port("127.0.0.1", port)
        assert chosen == 0 and note is not None and f"port {port}" in note and "taken" in note
        with demo_server("127.0.0.1", port) as url:
            other = int(url.rsplit(":", 1)[1])
            assert other != port
        shown = capsys.readouterr().out
        assert f"port {port} on 127.0.0.1 is taken" in shown and url in shown


def test_demo_lab_saves_widget_state_and_keeps_the_installed_settings(tmp_path) -> None:
    import json

    installed = tmp_path / "installed"
    (installed / "overrides.d").mkdir(parents=True)
    (installed / "page_config.json").write_text('{"disabledExtensions": {"x": true}}', encoding="utf-8")
    (installed / "overrides.json").write_text(
        '{"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}', encoding="utf-8"
    )
    workspace = tmp_path / "nbsocket-demo"
    workspace.mkdir()
    for _ in range(2):  # a second run starts from the installed settings again
        settings = lab_app_settings(workspace, installed)
        assert settings.parent == workspace and settings.name.startswith(".")
        assert (settings / "page_config.json").read_text(encoding="utf-8") == '{"disabledExtensions": {"x": true}}'
        assert (settings / "overrides.json").exists()
        ours = json.loads((settings / "overrides.d" / "nbsocket-demo.json").read_text(encoding="utf-8"))
        assert ours == LAB_DEFAULTS == {"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True}}
    assert lab_app_settings(tmp_path / "other", tmp_path / "missing").is_dir()
