"""The pytest plugin that comes with nbsocket: the ws fixture, failed tests' transcripts, pytest-xdist and JUnit XML.

Each test here runs pytest in a subprocess on test files it writes, against servers on 127.0.0.1 started by this
process (the demo server, the aiohttp server), exactly as a user's CI would run them.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbsocket.explore.testing import SocketRegistry

from ..conftest import SECRET
from ..servers import eventually
from .servers import ReplyServer

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def replies() -> Iterator[ReplyServer]:
    with ReplyServer() as server:
        yield server


def run_pytest(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m pytest`` in ``folder`` (no conftest there: only the plugin nbsocket registers)."""
    import os

    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, **(env or {})},
    )


SUITE = """
import os
import threading

import pytest

ECHO = os.environ["ECHO_URL"]
REPLIES = os.environ["REPLIES_URL"]
SECRET = os.environ["THE_SECRET"]


@pytest.mark.parametrize("n", range(6))
def test_the_same_name_in_every_test(ws, n):
    echo = ws.connect("echo", ECHO)
    echo.send({"op": "hi", "id": n})
    reply = echo.expect({"id": n}, within=5, schema={"type": "object", "required": ["id", "op"]})
    assert reply.data == {"op": "hi", "id": n}
    echo.expect_none({"type": "error"}, during=0.1)
    assert list(ws.connections()["name"]) == ["echo"]
    assert ws.frame("echo")["id"].tolist() == [n]


def test_verbs_of_nbs_on_the_registry(ws):
    ws.connect("ticks", ECHO.replace("/echo", "/ticker?rate=50"))
    assert len(ws.wait("ticks", 3)) == 3
    ws.connect("a", REPLIES)
    ws.send("a", {"id": 1})
    assert ws.get("a").expect({"id": 1}).data["echo"] == {"id": 1}
    assert ws.test("a") and ws.get("a").name == "a"
    report = ws.burst("a", ({"id": i} for i in range(20)), rate=None)
    assert report.delivered == 20
    ws.remove("a")
    assert ws.connections()["name"].tolist() == ["ticks"]


def test_a_failing_expectation(ws):
    ws.connect("secretive", REPLIES + "?token=" + SECRET, headers={"Authorization": "Bearer " + SECRET})
    ws.send("secretive", {"id": 1, "reply": {"state": "ready"}})
    ws.get("secretive").expect({"id": 1, "state": "done"}, within=0.5)
"""


def test_a_suite_with_the_ws_fixture_runs_under_xdist_with_junit_xml(tmp_path: Path, demo: Any, replies: ReplyServer) -> None:
    (tmp_path / "test_suite.py").write_text(SUITE)
    result = run_pytest(
        tmp_path,
        "-n",
        "2",
        "--junitxml=report.xml",
        env={"ECHO_URL": demo.url("/echo"), "REPLIES_URL": replies.url, "THE_SECRET": SECRET},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output  # one planned failure
    assert "created: 2/2 workers" in output, output
    assert "1 failed, 7 passed" in output, output
    # the failure: the expectation, the closest message with the differing field and both values, the time waited
    assert "ExpectationTimeoutError: expected a message with id=1, state='done' on 'secretive' within 0.5 s" in output
    assert "state: expected 'done', got 'ready'" in output and "waited 0.5" in output
    # the report's section: the socket's transcript, redacted
    assert "nbsocket transcript: secretive (last 50 entries)" in output
    assert "token=***" in output and '"state": "ready"' in output
    assert SECRET not in output
    report = ET.parse(tmp_path / "report.xml").getroot()
    cases = report.findall(".//testcase")
    assert len(cases) == 8
    failures = [case for case in cases if case.find("failure") is not None]
    assert [case.get("name") for case in failures] == ["test_a_failing_expectation"]
    failure = failures[0].find("failure")
    assert failure is not None and "ExpectationTimeoutError" in (failure.get("message") or "")
    assert SECRET not in (tmp_path / "report.xml").read_text()


def test_the_plugin_imports_nothing_heavy_until_a_test_uses_ws(tmp_path: Path) -> None:
    (tmp_path / "test_light.py").write_text(
        textwrap.dedent("""
        import sys

        def test_nothing_heavy_was_imported():
            assert "nbsocket.explore.testing" in sys.modules  # the plugin is loaded ...
            heavy = [m for m in ("pandas", "nbsocket.runtime", "nbsocket.api", "websockets", "jsonschema") if m in sys.modules]
            assert heavy == []  # ... and loaded nothing else of nbsocket
        """)
    )
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_nbsocket_error_is_shown_at_the_tests_own_line(tmp_path: Path) -> None:
    (tmp_path / "test_refused.py").write_text(
        textwrap.dedent("""
        def test_refused(ws):
            ws.connect("down", "ws://127.0.0.1:9/nothing-listens")

        def test_not_ours(ws):
            raise RuntimeError("a failure of the test itself")
        """)
    )
    result = run_pytest(tmp_path)
    output = result.stdout
    assert result.returncode == 1 and "cannot connect to ws://127.0.0.1:9/nothing-listens" in output
    refused = output.split("test_refused ___")[1].split("test_not_ours ___")[0]
    assert 'ws.connect("down"' in refused and "nbsocket/runtime" not in refused and "futures" not in refused
    full = run_pytest(tmp_path, "--full-trace").stdout
    assert "nbsocket/runtime" in full.split("test_refused ___")[1]  # --full-trace shows every frame


def test_no_thread_or_socket_outlives_the_registry(demo: Any) -> None:
    before = set(threading.enumerate())
    registry = SocketRegistry()
    received: list[Any] = []
    echo = registry.connect("echo", demo.url("/echo"), handler=received.append)
    registry.connect("ticks", demo.url("/ticker?rate=50"))
    echo.send({"n": 1})
    eventually(lambda: received, what="the handler ran")
    assert set(threading.enumerate()) - before  # the loop thread and a handler worker
    registry.close()
    assert echo.state == "closed" and registry.connections().empty
    eventually(lambda: not (set(threading.enumerate()) - before), timeout=10, what="every thread of the registry ended")


def test_secret_and_expand_read_the_environment_and_mask_what_they_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from nbsocket.core.redact import scrub

    registry = SocketRegistry()
    monkeypatch.setenv("NBS_T_TOKEN", "tok-" + SECRET)
    assert registry.expand("ws://h/x?token=${NBS_T_TOKEN}&n=1") == f"ws://h/x?token=tok-{SECRET}&n=1"
    assert scrub(f"tok-{SECRET}") == "***"
    monkeypatch.delenv("NBS_T_UNSET", raising=False)
    import nbsocket as nbs

    with pytest.raises(nbs.InvalidOptionError, match="NBS_T_UNSET is not set"):
        registry.secret("NBS_T_UNSET")
    registry.close()
