"""Saving an exploration as a test: the file save_test writes, run with pytest (-n 2, --junitxml) against the same
server and against changed ones; no secret in it; protocol sockets saved with their verbs; propose_ignore; the magic.

Servers: the aiohttp ReplyServer (tests/explore/servers.py), the demo server (websockets), and the protocol demo
servers (python-socketio, jsonrpcserver, strawberry).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbsocket as nbs
from nbsocket.core.saved_tests import MAX_EXPECTED_IN_A_ROW, bound, kept_fields
from nbsocket.explore.saved_tests import ProposalWarning

from ..conftest import SECRET
from ..servers import eventually
from .servers import ReplyServer

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def replies() -> Iterator[ReplyServer]:
    with ReplyServer() as server:
        yield server


def run_pytest(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m pytest`` on saved files, in a folder without a conftest (the plugin nbsocket registers only)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=200,
        env={**os.environ, **(env or {})},
    )


def explore(url: str, **options: Any) -> nbs.Connection:
    """A short exploration of a ReplyServer, as a notebook would do it."""
    conn = nbs.connect("replies", url, **options)
    conn.request({"id": 1, "op": "hello", "reply": {"state": "ready", "items": [{"n": 1}, {"n": 2}]}}, match="id")
    conn.send({"id": 2, "reply": {"state": "working"}, "delay": 0.05})
    conn.expect({"id": 2}, within=5)
    conn.send("not json")
    conn.expect(lambda event: event.request.body == "not JSON: not json")
    return conn


# --- the pure part ---------------------------------------------------------------------------------


def test_a_bound_has_a_margin_and_a_floor() -> None:
    assert bound(0.0001) == 2.0
    assert bound(0.5) == 2.5
    assert bound(2.345) == 12.0


def test_kept_fields_keep_whole_values_unless_something_inside_is_ignored() -> None:
    data = {"id": 1, "quote": {"bid": 1.5, "ts": 9}, "items": [{"n": 1, "ts": 2}], "meta": {"a": 1}}
    assert kept_fields(data, ()) == [
        (("id",), 1),
        (("quote",), {"bid": 1.5, "ts": 9}),
        (("items",), [{"n": 1, "ts": 2}]),
        (("meta",), {"a": 1}),
    ]
    assert kept_fields(data, ("quote.ts", "items.*.ts", "meta")) == [
        (("id",), 1),
        (("quote", "bid"), 1.5),
        (("items", 0, "n"), 1),
    ]
    assert kept_fields([1, 2], (), split=False) == [((), [1, 2])]


# --- the same server passes, a changed one fails naming the field -------------------------------------


def test_a_saved_test_passes_ten_runs_in_a_row_and_a_changed_reply_fails_naming_the_field(
    tmp_path: Path, replies: ReplyServer
) -> None:
    conn = explore(replies.url)
    proposed = nbs.propose_ignore("replies")
    assert proposed == ("ts",)  # the one field that changes on every run
    saved = nbs.save_test("replies", tmp_path / "test_replies_saved.py", ignore=proposed)
    text = Path(saved.path).read_text()
    ast.parse(text)
    assert "def test_replies(ws):" in text and 'replies.send({"id": 2, "reply": {"state": "working"}, "delay": 0.05})' in text
    assert '"state": "ready"' in text and '"ts"' not in text.split('"""')[-1]
    assert (
        "within=" in text
        and "NBS_REPLIES_URL" in text
        and saved.environment == {"NBS_REPLIES_URL": f"the server's URL (default: {replies.url})"}
    )
    assert conn.state == "open"  # the exploring socket stays open meanwhile, as in a notebook
    runs = tmp_path / "runs"
    runs.mkdir()
    for n in range(10):
        shutil.copy(saved.path, runs / f"test_run_{n}.py")
    result = run_pytest("-n", "2", "--junitxml=report.xml", ".", cwd=runs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 passed" in result.stdout
    cases = ET.parse(runs / "report.xml").getroot().findall(".//testcase")
    assert len(cases) == 10 and all(case.find("failure") is None for case in cases)

    replies.changed = {"state": "changed by the server"}
    result = run_pytest(saved.path, cwd=tmp_path)
    assert result.returncode == 1
    output = result.stdout
    assert "ExpectationTimeoutError: expected a message with id=1" in output
    assert "state: expected 'ready', got 'changed by the server'" in output
    assert "nbsocket transcript: replies" in output


def test_the_url_comes_from_the_environment(tmp_path: Path, replies: ReplyServer, demo: Any) -> None:
    conn = nbs.connect("echo", demo.url("/echo"))
    conn.request({"id": 1, "text": "hi"}, match="id")
    saved = conn.save_test(tmp_path / "test_echo_saved.py")
    with ReplyServer() as other:  # another server: the echo's replies are not there, so the test must fail
        result = run_pytest(saved.path, cwd=tmp_path, env={"NBS_ECHO_URL": other.url})
        assert result.returncode == 1 and "text: expected 'hi', missing" in result.stdout
        assert other.seen_headers  # it went where the environment said
    assert run_pytest(saved.path, cwd=tmp_path).returncode == 0


# --- secrets -----------------------------------------------------------------------------------------


def test_no_secret_is_written_and_the_test_reads_them_from_the_environment(tmp_path: Path, replies: ReplyServer) -> None:
    api_key = "key-" + SECRET[::-1]
    conn = nbs.connect(
        "vault",
        f"{replies.url}?token={SECRET}&page=1",
        headers={"Authorization": f"Bearer {SECRET}", "X-Api-Key": api_key, "X-Client": "notebook"},
    )
    conn.request({"id": 1, "login": SECRET, "reply": {"note": f"welcome {SECRET}"}}, match="id")
    saved = conn.save_test(tmp_path / "test_vault_saved.py", ignore=("ts",))
    text = Path(saved.path).read_text()
    assert SECRET not in text and SECRET[::-1] not in text and "***" not in text
    assert set(saved.environment) == {"NBS_VAULT_URL", "NBS_VAULT_TOKEN", "NBS_VAULT_X_API_KEY"}
    assert f"ws://127.0.0.1:{replies.port}/ws?token=${{NBS_VAULT_TOKEN}}&page=1" in text
    assert '"Authorization": "Bearer " + ws.secret("NBS_VAULT_TOKEN")' in text
    assert '"login": ws.secret("NBS_VAULT_TOKEN")' in text and '"welcome " + ws.secret("NBS_VAULT_TOKEN")' in text

    replies.seen_headers.clear()
    replies.seen_queries.clear()
    env = {"NBS_VAULT_TOKEN": SECRET, "NBS_VAULT_X_API_KEY": api_key}
    result = run_pytest(saved.path, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout
    assert replies.seen_queries[-1] == {"token": SECRET, "page": "1"}
    assert replies.seen_headers[-1]["Authorization"] == f"Bearer {SECRET}" and replies.seen_headers[-1]["X-Api-Key"] == api_key

    missing = run_pytest(saved.path, cwd=tmp_path)
    assert missing.returncode == 1 and "the environment variable NBS_VAULT_TOKEN is not set" in missing.stdout
    replies.changed = {"note": "changed"}
    failed = run_pytest(saved.path, cwd=tmp_path, env=env)
    assert failed.returncode == 1 and "note: expected" in failed.stdout and SECRET not in failed.stdout + failed.stderr


def test_a_secret_known_from_elsewhere_is_masked_and_said_so(tmp_path: Path, replies: ReplyServer) -> None:
    other = f"other-{SECRET}"
    nbs.connect("holder", replies.url, secrets=[other])  # nbsocket now knows it; this socket does not
    conn = nbs.connect("plain", replies.url)
    conn.request({"id": 1, "note": other}, match="id")
    text = Path(conn.save_test(tmp_path / "test_plain_saved.py", ignore="ts").path).read_text()
    assert other not in text and "***" in text and "they are masked (***)" in text
    ast.parse(text)


# --- protocol sockets ------------------------------------------------------------------------------------


def test_protocol_sockets_are_saved_with_their_verbs(tmp_path: Path) -> None:
    pytest.importorskip("socketio", reason="the protocols-demo extra (installed by the test extra)")
    from nbsocket.demo.protocol_servers import start_graphql_server, start_jsonrpc_server, start_socketio_server

    sio_server, rpc_server, gql_server = start_socketio_server(), start_jsonrpc_server(), start_graphql_server()
    try:
        chat = nbs.connect("chat", sio_server.url, protocol="socketio")
        chat.emit("chat", {"text": "hi"})
        chat.expect({"topic": "chat", "text": "hi"})
        assert chat.call("echo", {"x": 1}, [2]) == [{"x": 1}, [2]]
        rpc = nbs.connect("rpc", rpc_server.url, protocol="jsonrpc")
        assert rpc.call("add", [1, 2]) == 3
        rpc.call("notify_me", {"n": 2})
        rpc.expect({"topic": "tick", "n": 2})
        with pytest.raises(nbs.RemoteError):
            rpc.call("fail")
        gql = nbs.connect("gql", gql_server.url, protocol="graphql-ws", init_payload={"token": "good"})
        assert gql.call("query { hello }") == {"hello": "Hello, world!"}
        sub = gql.subscribe("subscription { ticks(n: 2) { n } }")
        gql.expect({"topic": sub.topic, "ticks.n": 2})
        time.sleep(0.2)

        texts = {
            conn.name: Path(conn.save_test(tmp_path / f"test_{conn.name}_saved.py").path).read_text() for conn in (chat, rpc, gql)
        }
        assert 'chat.emit("chat", {"text": "hi"})' in texts["chat"]
        assert 'chat.expect({"topic": "chat", "text": "hi"}, within=' in texts["chat"]
        emitted = texts["chat"].index('chat.emit("chat"')
        assert emitted < texts["chat"].index('chat.expect({"topic": "chat"'), "the broadcast is expected after the emit"
        assert (
            'result = chat.call("echo", {"x": 1}, [2], timeout=' in texts["chat"]
            and 'assert result == [{"x": 1}, [2]]' in texts["chat"]
        )
        assert "assert result == 3" in texts["rpc"] and 'rpc.expect({"topic": "tick", "n": 1}' in texts["rpc"]
        assert "with pytest.raises(nbs.RemoteError) as error:" in texts["rpc"]
        assert 'sub1 = gql.subscribe("subscription { ticks(n: 2) { n } }")' in texts["gql"]
        assert 'gql.expect({"topic": sub1.topic, "ticks": {"n": 2}}' in texts["gql"]
        assert 'init_payload=json.loads(ws.secret("NBS_GQL_INIT_PAYLOAD"))' in texts["gql"] and '"good"' not in texts["gql"]

        result = run_pytest("-n", "2", ".", cwd=tmp_path, env={"NBS_GQL_INIT_PAYLOAD": '{"token": "good"}'})
        assert result.returncode == 0, result.stdout + result.stderr
        assert "3 passed" in result.stdout
    finally:
        for server in (sio_server, rpc_server, gql_server):
            server.close()


def test_a_changed_call_result_fails_naming_the_field(tmp_path: Path, replies: ReplyServer) -> None:
    rpc = nbs.connect("rpc", replies.url, protocol="jsonrpc")
    assert rpc.call("info", {"x": 1}) == {"method": "info", "params": {"x": 1}}
    saved = rpc.save_test(tmp_path / "test_rpc_saved.py")
    assert 'assert result == {"method": "info", "params": {"x": 1}}' in Path(saved.path).read_text()
    assert run_pytest(saved.path, cwd=tmp_path).returncode == 0
    replies.changed = {"method": "renamed"}
    result = run_pytest(saved.path, cwd=tmp_path)
    assert result.returncode == 1
    assert "Differing items:" in result.stdout and "{'method': 'renamed'} != {'method': 'info'}" in result.stdout


# --- propose_ignore, errors and the magic ----------------------------------------------------------------------


def test_propose_ignore_finds_nothing_on_an_echo_and_warns_when_the_replay_stops(demo: Any, replies: ReplyServer) -> None:
    echo = nbs.connect("echo", demo.url("/echo"))
    echo.request({"id": 1, "items": [{"n": 1}]}, match="id")
    assert nbs.propose_ignore("echo", runs=2) == ()
    assert nbs.connections()["name"].tolist() == ["echo"]  # the replay's sockets are gone

    conn = nbs.connect("replies", replies.url)
    conn.request({"id": 1, "reply": {"items": [{"at": 1}, {"at": 2}]}}, match="id")
    replies.changed = {"items": [{"at": 5}, {"at": 6}]}
    assert nbs.propose_ignore("replies") == ("items.*.at", "ts")
    with pytest.raises(nbs.InvalidOptionError, match="runs"):
        nbs.propose_ignore("replies", runs=0)


def test_propose_ignore_stops_with_a_warning_when_a_reply_does_not_come(replies: ReplyServer) -> None:
    conn = nbs.connect("replies", replies.url)
    conn.request({"id": 1}, match="id")
    conn.request({"id": 2, "reply": {"ok": True}}, match="id")
    replies.silent = True
    with pytest.warns(ProposalWarning, match=r"stopped at step 2 of 4 \(expect\)"):
        assert nbs.propose_ignore("replies", timeout=0.3) == ()


def test_save_test_refusals(tmp_path: Path, demo: Any) -> None:
    conn = nbs.connect("echo", demo.url("/echo"))
    with pytest.raises(nbs.InvalidOptionError, match=r"must end with \.py"):
        conn.save_test(tmp_path / "test_echo.txt")
    with pytest.raises(nbs.InvalidOptionError, match="ignore"):
        conn.save_test(tmp_path / "test_echo.py", ignore=[1])  # type: ignore[list-item]
    conn.keep_transcript(0)
    with pytest.raises(nbs.InvalidOptionError, match="the transcript is empty"):
        conn.save_test(tmp_path / "test_echo.py")
    with pytest.raises(nbs.UnknownSocketError):
        nbs.save_test("nobody", tmp_path / "test_x.py")


def test_a_transcript_that_lost_its_opening_to_its_bound_is_saved_from_what_it_kept(tmp_path: Path, demo: Any) -> None:
    conn = nbs.connect("echo", demo.url("/echo"))
    conn.keep_transcript(max_entries=20)
    for i in range(30):
        conn.request({"id": i}, match="id")
    saved = conn.save_test(tmp_path / "test_echo_saved.py")
    code = Path(saved.path).read_text().split("def test_")[1]
    assert "the opening among them, were dropped" in code and 'echo.expect({"id": 29}, within=2)' in code
    assert run_pytest(saved.path, cwd=tmp_path).returncode == 0


def test_a_feed_is_saved_as_its_first_messages_and_its_last(tmp_path: Path, demo: Any) -> None:
    conn = nbs.connect("feed", demo.url("/ticker?rate=max&count=300&symbols=ABC"))
    eventually(lambda: conn.stats.messages_in == 300, 20.0, what="the whole feed")
    saved = conn.save_test(tmp_path / "test_feed_saved.py", ignore=("price", "timestamp"))
    code = Path(saved.path).read_text().split("def test_")[1]
    assert code.count("feed.expect(") == MAX_EXPECTED_IN_A_ROW
    assert 'feed.expect({"seq": 1, "symbol": "ABC"}' in code and 'feed.expect({"seq": 300, "symbol": "ABC"}' in code
    assert f"# {300 - MAX_EXPECTED_IN_A_ROW} more message(s) like these arrived while exploring" in code
    assert f'"seq": {MAX_EXPECTED_IN_A_ROW},' not in code  # among those said in the comment
    assert run_pytest(saved.path, cwd=tmp_path).returncode == 0


def test_the_magic_saves_with_ignored_and_proposed_fields(
    tmp_path: Path, replies: ReplyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbsocket")
    try:
        explore(replies.url)
        shell.user_ns["folder"] = str(tmp_path)
        saved = shell.run_line_magic("ws_save_test", "replies {folder}/test_magic_saved.py --ignore echo.op --propose-ignore")
        printed = capsys.readouterr().out
        assert "fields that changed when replayed: ts" in printed and "NBS_REPLIES_URL" in printed
        assert saved.ignored == ("echo.op", "ts")
        text = Path(saved.path).read_text()
        assert "Fields left out of the expectations: echo.op, ts" in text
        assert '"echo.id": 1' in text and '"echo.reply": {"state": "ready"' in text and '"echo.op"' not in text
        result = run_pytest(saved.path, cwd=tmp_path)
        assert result.returncode == 0, result.stdout
    finally:
        shell.run_line_magic("unload_ext", "nbsocket")


def test_a_feed_is_saved_with_its_timestamps_proposed_and_its_close_noted(tmp_path: Path, demo: Any) -> None:
    ticks = nbs.connect("ticks", demo.url("/ticker?rate=20&count=3&seed=7&symbols=ABC"), reconnect=False)
    for n in (1, 2, 3):
        ticks.expect({"seq": n}, within=5)
    proposed = nbs.propose_ignore("ticks")
    assert proposed == ("timestamp",)  # the prices follow the seed; the time of each tick does not
    saved = ticks.save_test(tmp_path / "test_ticks_saved.py", ignore=proposed)
    code = Path(saved.path).read_text().split("def test_")[1]
    assert 'ticks = ws.connect("ticks", ws.expand(URL), reconnect=False)' in code
    assert '"timestamp"' not in code and code.count("ticks.expect({") == 3
    assert "# while exploring, the socket's connection had a close (1000 'ticker finished') here" in code
    result = run_pytest(saved.path, cwd=tmp_path)
    assert result.returncode == 0, result.stdout
