"""Shutdown with many open sockets: from Python, and a whole kernel shutting down."""

from __future__ import annotations

import textwrap
import threading
import time
from collections.abc import Callable

import pytest
from jupyter_client.manager import start_new_kernel

import nbsocket as nbs
from nbsocket.demo.server import DEFAULT_HOST, DemoServer
from nbsocket.runtime.manager import default_manager

from ..servers import WsServer, eventually


def nbsocket_threads() -> list[threading.Thread]:
    """nbsocket's loop and handler threads still alive."""
    return [t for t in threading.enumerate() if t.name.startswith(("nbsocket-loop", "nbsocket-handler"))]


def assert_100_sockets_close_quickly(open_socket: Callable[[int, str], object], shut_down: Callable[[], object]) -> None:
    """Open 100 sockets with ``open_socket(i, url)``; ``shut_down()`` must close them all with 1001 within 2 s."""
    with WsServer() as server:
        for i in range(100):
            open_socket(i, server.url + "/")
        eventually(lambda: server.connections == 100)
        started = time.monotonic()
        shut_down()
        elapsed = time.monotonic() - started
        eventually(lambda: len(server.close_codes) == 100)
    assert elapsed < 2.0, elapsed
    assert set(server.close_codes) == {1001}
    assert not default_manager.loop_thread.running
    eventually(lambda: not nbsocket_threads())


def test_shutdown_with_100_open_sockets_is_quick_and_leaves_no_thread() -> None:
    assert_100_sockets_close_quickly(lambda i, url: nbs.connect(f"s{i}", url), nbs.shutdown)


@pytest.mark.slow
def test_kernel_shutdown_closes_its_sockets() -> None:
    with WsServer() as server:
        km, kc = start_new_kernel(kernel_name="python3")
        try:
            code = textwrap.dedent(f"""
                import nbsocket as nbs
                for i in range(100):
                    nbs.connect(f"k{{i}}", "{server.url}")
                print(len(nbs.connections()))
            """)
            reply = kc.execute_interactive(code, timeout=60)
            assert reply["content"]["status"] == "ok"
            eventually(lambda: server.connections == 100)
            started = time.monotonic()
            km.shutdown_kernel(now=False)  # returns once the kernel process has exited
            eventually(lambda: len(server.close_codes) == 100, timeout=10)
            assert time.monotonic() - started < 5.0  # includes the kernel process exiting
            assert set(server.close_codes) == {1001}
        finally:
            kc.stop_channels()
            if km.is_alive():
                km.shutdown_kernel(now=True)


def test_unload_ext_with_100_open_sockets_closes_them_within_2s() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbsocket")
    assert_100_sockets_close_quickly(
        lambda i, url: shell.run_line_magic("ws_connect", f"u{i} {url}"),
        lambda: shell.run_line_magic("unload_ext", "nbsocket"),
    )


def test_demo_server_binds_to_loopback_by_default() -> None:
    assert DEFAULT_HOST == "127.0.0.1" and DemoServer().host == "127.0.0.1"
    from nbsocket.cli import build_parser

    args = build_parser().parse_args(["demo-server"])
    assert args.host == "127.0.0.1"


def test_interpreter_exit_closes_sockets_quietly(tmp_path) -> None:
    import subprocess
    import sys

    with WsServer() as server:
        script = textwrap.dedent(f"""
            import nbsocket as nbs
            seen = []
            for i in range(5):
                conn = nbs.connect(f"x{{i}}", "{server.url}/", handler=seen.append, on_close=lambda c, code, reason: None,
                                   record={str(tmp_path / "capture")!r} + f"{{i}}.jsonl")
                conn.request("hello", timeout=5)
            print("connected", len(seen) >= 0)
        """)
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "connected" in result.stdout, result.stderr
        assert "Traceback" not in result.stderr and "never retrieved" not in result.stderr, result.stderr
        eventually(lambda: len(server.close_codes) == 5)
        assert set(server.close_codes) == {1001}
    for i in range(5):
        assert (tmp_path / f"capture{i}.jsonl").read_text().count("\n") == 1  # the one reply, flushed at exit


def test_ctrl_c_during_connect_leaves_nothing_behind() -> None:
    import signal
    import subprocess
    import sys

    from ..servers import SilentTcpServer

    with SilentTcpServer() as silent:
        script = textwrap.dedent(f"""
            import time, nbsocket as nbs
            print("connecting", flush=True)
            started = time.monotonic()
            try:
                nbs.connect("slow", "ws://127.0.0.1:{silent.port}/", open_timeout=60)
            except KeyboardInterrupt:
                print("interrupted after", round(time.monotonic() - started, 1), "sockets:", len(nbs.connections()), flush=True)
        """)
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "connecting"
        eventually(lambda: silent.accepted)  # the TCP connection is open, the handshake hangs
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert "interrupted after" in out and "sockets: 0" in out, out + err
    assert proc.returncode == 0 and "Traceback" not in err, err
