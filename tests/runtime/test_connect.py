"""Opening sockets: results, handshake options, registry rules and the real causes of failures."""

from __future__ import annotations

import ssl
import traceback
import warnings
from pathlib import Path

import pytest
import trustme

import nbsocket as nbs
from nbsocket.runtime.manager import default_manager
from nbsocket.runtime.transport import PROXIES

from ..servers import ConnectProxy, SilentTcpServer, WsServer, eventually


def test_connect_returns_an_open_connection(demo) -> None:
    conn = nbs.connect("echo", demo.url("/echo"))
    assert conn.state == "open" and conn.test() and nbs.test("echo")
    assert nbs.get("echo") is conn
    assert "echo" in repr(conn) and "open" in repr(conn)
    assert not nbs.test("nope")


def test_server_that_speaks_first_loses_nothing(demo) -> None:
    seen: list[int] = []
    nbs.connect("t", demo.url("/ticker?rate=max&count=500"), handler=lambda e: seen.append(e.data["seq"]), reconnect=False)
    conn = nbs.get("t")
    eventually(lambda: len(seen) >= 500, timeout=20)
    assert seen == list(range(1, 501))
    assert conn.frame is not None and conn.frame.snapshot()["data.seq"].tolist()[:3] == [1, 2, 3]


def test_same_name_same_url_returns_the_existing_connection(demo) -> None:
    first = nbs.connect("e", demo.url("/echo"))
    with WsServer() as server:  # nothing may reach a second server either
        again = nbs.connect("e", demo.url("/echo"))
        assert again is first and server.connections == 0
    assert len(nbs.connections()) == 1


def test_rerunning_connect_replaces_the_handler_instead_of_adding_one(demo) -> None:
    def old(event):
        pass

    def new(event):
        pass

    conn = nbs.connect("e", demo.url("/echo"), handler=old)
    conn.on_message(lambda e: None)
    nbs.connect("e", demo.url("/echo"), handler=new)
    assert conn.handlers[0] is new and len(conn.handlers) == 2


def test_same_name_other_url_raises_unless_replace(demo) -> None:
    first = nbs.connect("e", demo.url("/echo"))
    with pytest.raises(nbs.NameInUseError, match="replace=True"):
        nbs.connect("e", demo.url("/chat"))
    with pytest.raises(nbs.NameInUseError, match=r"other options .*max_rows"):
        nbs.connect("e", demo.url("/echo"), max_rows=10)
    second = nbs.connect("e", demo.url("/chat"), replace=True)
    assert second is not first and first.state == "closed" and second.url.endswith("/chat")


def test_invalid_url_is_refused_before_any_io() -> None:
    with WsServer() as server:
        http_url = server.url.replace("ws://", "http://") + "/feed"
        with pytest.raises(nbs.InvalidURLError, match="did you mean"):
            nbs.connect("x", http_url)
        assert server.connections == 0
    assert "x" not in default_manager
    assert not default_manager.loop_thread.running  # not even the loop thread was started


def test_bad_options_are_refused_before_any_io(demo) -> None:
    with pytest.raises(nbs.InvalidOptionError, match="unknown option"):
        nbs.connect("x", demo.url("/echo"), max_rowz=5)
    with pytest.raises(nbs.InvalidOptionError, match="valid socket name"):
        nbs.connect("bad name", demo.url("/echo"))
    with pytest.raises(nbs.InvalidOptionError, match="wss:// URLs only"):
        nbs.connect("x", demo.url("/echo"), insecure=True)
    with pytest.raises(nbs.InvalidOptionError, match="no codec"):
        nbs.connect("x", demo.url("/echo"), content_type="application/x-nothing")
    assert len(nbs.connections()) == 0


@pytest.mark.parametrize(
    "path, status, fragment",
    [
        ("/status/401", 401, "wants credentials"),
        ("/status/403", 403, "refused access"),
        ("/status/404", 404, "no WebSocket endpoint"),
        ("/status/500", 500, "HTTP 500"),
    ],
)
def test_http_status_failures_say_so_and_leave_no_entry(demo, path: str, status: int, fragment: str) -> None:
    with pytest.raises(nbs.HandshakeStatusError, match=fragment) as info:
        nbs.connect("x", demo.url(path))
    assert info.value.status == status and info.value.kind == "http"
    assert "x" not in default_manager and len(nbs.connections()) == 0


def shown_files(shown: str) -> set[str]:
    """The file names of the frames a rendered traceback shows (IPython's ``File path:line`` or Python's ``File "path"``)."""
    import re

    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown)  # IPython colours the traceback when a shell with colours exists
    return {Path(path).name for path in re.findall(r'^\s*File "?([^",:]+)', plain, re.MULTILINE)}


def test_a_refused_connect_has_a_short_traceback_and_keeps_its_cause(unused_port) -> None:
    try:
        nbs.connect("short", f"ws://127.0.0.1:{unused_port}/")
    except nbs.ConnectError as exc:
        error = exc
    else:
        pytest.fail("connect to a closed port succeeded")
    frames = traceback.extract_tb(error.__traceback__)
    assert [f.name for f in frames][:2] == ["test_a_refused_connect_has_a_short_traceback_and_keeps_its_cause", "connect"]
    assert len(frames) > 2  # nbsocket's own frames stay in the traceback, for %debug and logging
    assert error.__cause__ is None and error.__suppress_context__  # no chain printed under the message
    assert isinstance(error.cause, OSError)  # the underlying ConnectionRefusedError stays available
    shown = "\n".join(error._render_traceback_())  # what a notebook shows: the caller's frames and the message
    assert "test_a_refused_connect" in shown and "connection refused" in shown
    assert shown_files(shown) == {"test_connect.py"}
    with pytest.raises(nbs.UnknownSocketError) as info:
        nbs.send("short", "x")
    shown = "\n".join(info.value._render_traceback_())
    assert "no socket named 'short'" in shown and shown_files(shown) == {"test_connect.py"}


def test_refused_connection(unused_port) -> None:
    with pytest.raises(nbs.ConnectError, match="connection refused") as info:
        nbs.connect("x", f"ws://127.0.0.1:{unused_port}/")
    assert info.value.kind == "refused" and "x" not in default_manager


def test_unresolvable_host() -> None:
    with pytest.raises(nbs.ConnectError, match="could not be resolved") as info:
        nbs.connect("x", "ws://no-such-host.invalid/feed", open_timeout=5)
    assert info.value.kind == "dns"


def test_handshake_timeout() -> None:
    with SilentTcpServer() as silent, pytest.raises(nbs.ConnectTimeoutError, match=r"open_timeout=0.3") as info:
        nbs.connect("x", f"ws://127.0.0.1:{silent.port}/", open_timeout=0.3)
    assert info.value.kind == "timeout" and "x" not in default_manager


def test_not_a_websocket_server(demo) -> None:
    with pytest.raises(nbs.ConnectError):
        nbs.connect("x", demo.url("/health"))


@pytest.fixture(scope="module")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(tls_ca):
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("localhost").configure_cert(server_context)
    with WsServer(ssl_context=server_context) as server:
        yield server


def test_tls_self_signed_fails_by_default_with_a_certificate_error(tls_server) -> None:
    with pytest.raises(nbs.TLSError, match="certificate verification failed") as info:
        nbs.connect("x", tls_server.url + "/")
    assert "insecure=True" in str(info.value) and info.value.kind == "tls"


def test_tls_works_with_a_context_trusting_the_ca(tls_server, tls_ca) -> None:
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    conn = nbs.connect("x", tls_server.url + "/", ssl=context, reconnect=False)
    waiter = conn.waiter(1)
    conn.send("over tls")
    assert waiter.future.result(5)[0].request.body == "over tls"


def test_insecure_opt_out_warns_once(tls_server) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        conn = nbs.connect("x", tls_server.url + "/?token=hide-me-123", insecure=True)
        conn.reset()
    insecure = [w for w in caught if issubclass(w.category, nbs.InsecureConnectionWarning)]
    assert len(insecure) == 1 and "hide-me-123" not in str(insecure[0].message)


def test_handshake_options_reach_the_server() -> None:
    async def choose(ws):
        await ws.send(ws.subprotocol or "none")
        async for _ in ws:
            pass

    with WsServer(choose, subprotocols=["v2", "v1"]) as server:
        conn = nbs.connect(
            "x",
            server.url + "/path?q=1",
            headers={"X-Trace": "abc", "Authorization": "Bearer zzz-secret-1"},
            subprotocols=["v1"],
            origin="http://notebook.test",
            user_agent="nbsocket-test/1",
            compression=None,
        )
        assert conn.subprotocol == "v1"
        path, headers = eventually(lambda: server.requests)[0]
        lowered = {k.lower(): v for k, v in headers.items()}
        assert path == "/path?q=1"
        assert lowered["x-trace"] == "abc" and lowered["authorization"] == "Bearer zzz-secret-1"
        assert lowered["origin"] == "http://notebook.test" and lowered["user-agent"] == "nbsocket-test/1"
        assert "sec-websocket-extensions" not in lowered
        assert "zzz-secret-1" not in repr(conn) and "zzz-secret-1" not in nbs.connections().to_string()
        assert conn.options.shown_headers()["Authorization"] == "***"


def test_connect_from_the_loop_thread_is_refused_not_deadlocked(demo) -> None:
    results: list[BaseException] = []

    async def handler(event):
        try:
            nbs.connect("y", demo.url("/echo"))
        except BaseException as exc:
            results.append(exc)

    conn = nbs.connect("x", demo.url("/echo"), handler=handler)
    waiter = conn.waiter(1)
    conn.send("go")
    waiter.future.result(5)
    eventually(lambda: results)
    assert isinstance(results[0], nbs.LoopThreadError)


def test_connecting_through_an_http_proxy(demo) -> None:
    with ConnectProxy() as proxy:
        if not PROXIES:  # websockets 14: a proxy URL is refused up front, and no socket is left behind
            with pytest.raises(nbs.InvalidOptionError, match="proxy URL needs websockets 15"):
                nbs.connect("via-proxy", demo.url("/echo"), proxy=proxy.url)
            assert "via-proxy" not in nbs.connections()["name"].tolist() and proxy.targets == []
            return
        conn = nbs.connect("via-proxy", demo.url("/echo"), proxy=proxy.url)
        assert conn.request({"through": "proxy"}, timeout=5).data == {"through": "proxy"}
        assert proxy.targets == [f"127.0.0.1:{demo.port}"]
        direct = nbs.connect("direct", demo.url("/echo"), proxy=None)
        assert direct.test() and len(proxy.targets) == 1
        nbs.remove("via-proxy")
