"""The %ws_* magics, driven through a real IPython InteractiveShell against real WebSocket servers."""

from __future__ import annotations

import _thread
import base64
import ssl
import threading
import warnings
from collections.abc import Iterator

import pandas as pd
import pytest
import trustme
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import nbsocket as nbs
from nbsocket import api
from nbsocket.core.options import ConnectOptions
from nbsocket.core.redact import scrub
from nbsocket.magics.commands import STATUS_TEXT_WIDTHS, NbSocketMagics
from nbsocket.magics.config import NbSocket
from nbsocket.runtime.connection import MessageWaiter
from nbsocket.runtime.manager import default_manager
from nbsocket.runtime.progress import ProgressBar, frontend_present

from ..servers import WsServer, eventually

MAGICS = [
    "ws_connect",
    "ws_send",
    "ws_reset",
    "ws_disconnect",
    "ws_remove",
    "ws_status",
    "ws_frame",
    "ws_panel",
    "ws_wait",
    "ws_plot",
    "ws_test",
]


@pytest.fixture
def ip() -> Iterator[InteractiveShell]:
    """A real InteractiveShell with ``%load_ext nbsocket`` done; unloaded afterwards."""
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbsocket")
    yield shell
    shell.run_line_magic("unload_ext", "nbsocket")
    forget_config(shell)


def forget_config(shell: InteractiveShell) -> None:
    """Drop what ``%config NbSocket.*`` left in the shell's configuration, so tests stay independent."""
    for configurable in [shell, *shell.configurables]:
        configurable.config.pop("NbSocket", None)


def magic(ip: InteractiveShell, line: str):
    """Run one line magic (``"ws_send echo 1"``) and return its value; errors propagate."""
    name, _, rest = line.partition(" ")
    return ip.run_line_magic(name, rest)


def cell(ip: InteractiveShell, source: str):
    """Run a cell as a notebook would; returns IPython's ExecutionResult."""
    return ip.run_cell(source, store_history=False)


def waiting(conn: nbs.Connection) -> bool:
    """True while a %ws_wait is collecting messages on ``conn``."""
    return any(isinstance(o, MessageWaiter) for o in conn._observers)


# --- loading, help and configuration ----------------------------------------------------------------------


def test_load_ext_registers_every_magic_and_the_configurable(ip) -> None:
    for name in MAGICS:
        assert ip.find_line_magic(name) is not None, name
    assert ip.find_cell_magic("ws_handler") is not None and ip.find_line_magic("ws_handler") is not None
    assert any(isinstance(c, NbSocket) for c in ip.configurables)
    assert ip.extension_manager.load_extension("nbsocket") == "already loaded"


def test_every_option_is_documented_with_its_default(ip, capsys) -> None:
    for name in [*MAGICS, "ws_handler"]:
        fn = ip.find_line_magic(name) or ip.find_cell_magic(name)
        doc = fn.__doc__
        for action in fn.parser._actions:
            for option in action.option_strings:
                assert option in doc, (name, option)
            assert action.help, (name, action.dest)
    connect_doc = ip.find_line_magic("ws_connect").__doc__
    for fragment in (
        "NbSocket.max_rows = 100000",
        "NbSocket.content_type = 'application/json'",
        "NbSocket.open_timeout = 10.0",
        "NbSocket.ping_interval = 20.0",
        "--no-frame",
        "--no-reconnect",
    ):
        assert fragment in connect_doc
    assert "NbSocket.wait_timeout = 30.0" in ip.find_line_magic("ws_wait").__doc__
    cell(ip, "%ws_connect?")
    shown = capsys.readouterr().out
    assert "--max-rows" in shown and "--subprotocol" in shown and "--insecure" in shown


def test_config_defaults_match_the_core_and_config_changes_them(ip, demo) -> None:
    core = ConnectOptions()
    settings = NbSocket()
    for trait in ("content_type", "max_rows", "frame", "open_timeout", "ping_interval", "ping_timeout", "max_size"):
        assert getattr(settings, trait) == getattr(core, trait), trait
    cell(ip, "%config NbSocket.max_rows = 10_000")
    cell(ip, "%config NbSocket.ping_interval = 5")
    conn = magic(ip, f"ws_connect cfg {demo.url('/echo')}")
    assert conn.options.max_rows == 10_000 and conn.frame.max_rows == 10_000
    assert conn.options.ping_interval == 5
    assert magic(ip, "config NbSocket.max_rows") == 10_000


def test_config_refuses_values_that_cannot_work(ip, caplog) -> None:
    cell(ip, "%config NbSocket.max_rows = 0")
    cell(ip, "%config NbSocket.content_type = 'application/nonsense'")
    err = caplog.text  # %config logs what it refused
    assert "max_rows must be a positive integer" in err and "nonsense" in err
    settings = next(c for c in ip.configurables if isinstance(c, NbSocket))
    assert settings.max_rows == 100_000 and settings.content_type == "application/json"


# --- %ws_connect -------------------------------------------------------------------------------------------


def test_connect_returns_the_open_connection_and_rerunning_reuses_it(ip, demo) -> None:
    ip.user_ns["demo_url"] = demo.url("/echo")
    conn = magic(ip, "ws_connect echo {demo_url}")
    assert conn.state == "open" and conn.url == demo.url("/echo")
    assert magic(ip, "ws_connect echo {demo_url}") is conn
    assert default_manager.names() == ["echo"]


def test_connect_options_reach_the_connection(ip, demo, tmp_path) -> None:
    record = tmp_path / "echo.jsonl"
    conn = magic(
        ip,
        f"ws_connect opts {demo.url('/echo')} -t text/plain --max-rows 5 --no-reconnect --open-timeout 3 "
        f"--ping-interval none --ping-timeout 7 --max-size 4096 --record {record} --origin http://nb.test",
    )
    opts = conn.options
    assert opts.content_type == "text/plain" and conn.content_type == "text/plain"
    assert opts.max_rows == 5 and opts.reconnect is None and opts.open_timeout == 3
    assert opts.ping_interval is None and opts.ping_timeout == 7 and opts.max_size == 4096
    assert opts.record == str(record) and opts.origin == "http://nb.test"


def test_headers_subprotocols_and_secret_header_values(ip) -> None:
    async def choose(ws):
        await ws.send(ws.subprotocol or "none")
        async for _ in ws:
            pass

    ip.user_ns["api_token"] = "tok-7f3a9c51e2"
    with WsServer(choose, subprotocols=["v2", "v1"]) as server:
        conn = magic(
            ip,
            f'ws_connect h {server.url}/feed -H "X-Trace: abc" -H "X-Api: Bearer {{api_token}}" '
            f"-H 'X-Plain: {{{{literal}}}}' --secret-header X-Trace -p v1 -p v2",
        )
        assert conn.subprotocol == "v2"  # the server's preference among those offered
        _, headers = eventually(lambda: server.requests)[0]
        lowered = {k.lower(): v for k, v in headers.items()}
        assert lowered["x-trace"] == "abc" and lowered["x-api"] == "Bearer tok-7f3a9c51e2"
        assert lowered["x-plain"] == "{literal}"
        assert lowered["sec-websocket-protocol"] == "v1, v2"
        shown = conn.options.shown_headers()
        assert shown == {"X-Trace": "***", "X-Api": "***", "X-Plain": "{literal}"}
        status = magic(ip, "ws_status")
        assert "tok-7f3a9c51e2" not in status.to_string() and "tok-7f3a9c51e2" not in repr(conn)
        assert scrub("the token is tok-7f3a9c51e2") == "the token is ***"
        rerun = magic(
            ip,
            f'ws_connect h {server.url}/feed -H "X-Trace: abc" -H "X-Api: Bearer {{api_token}}" '
            f"-H 'X-Plain: {{{{literal}}}}' --secret-header X-Trace -p v1 -p v2",
        )
        assert rerun is conn and server.connections == 1


def test_handler_and_callbacks_name_notebook_functions(ip, demo) -> None:
    cell(ip, "got = []\nopened = []\ndef on_msg(event):\n    got.append(event.data)")
    cell(ip, "def on_open(conn):\n    opened.append(conn.name)")
    conn = magic(ip, f"ws_connect hnd {demo.url('/echo')} --handler on_msg --on-open on_open")
    waiter = conn.waiter(1)
    magic(ip, 'ws_send hnd {"n": 1}')
    waiter.future.result(5)
    assert eventually(lambda: ip.user_ns["got"]) == [{"n": 1}]
    assert ip.user_ns["opened"] == ["hnd"]
    with pytest.raises(UsageError, match="nothing named 'missing_fn'"):
        magic(ip, f"ws_connect hnd2 {demo.url('/echo')} --handler missing_fn")
    ip.user_ns["not_fn"] = 3
    with pytest.raises(UsageError, match="not a function"):
        magic(ip, f"ws_connect hnd2 {demo.url('/echo')} --handler not_fn")
    assert "hnd2" not in default_manager.names()


def test_no_frame_and_max_rows(ip, demo) -> None:
    conn = magic(ip, f"ws_connect nf {demo.url('/echo')} --no-frame")
    assert conn.frame is None
    with pytest.raises(UsageError, match="frame=False"):
        magic(ip, "ws_frame nf")
    capped = magic(ip, f"ws_connect cap {demo.url('/echo')} --max-rows 3")
    waiter = capped.waiter(5)
    for i in range(5):
        magic(ip, f'ws_send cap {{"i": {i}}}')
    waiter.future.result(5)
    frame = magic(ip, "ws_frame cap")
    assert list(frame["seq"]) == [3, 4, 5] and list(frame["i"]) == [2, 3, 4]


def test_replace_is_needed_for_another_url(ip, demo) -> None:
    first = magic(ip, f"ws_connect r {demo.url('/echo')}")
    with pytest.raises(UsageError, match="--replace"):
        magic(ip, f"ws_connect r {demo.url('/chat')}")
    second = magic(ip, f"ws_connect r {demo.url('/chat')} --replace")
    assert second is not first and second.url == demo.url("/chat") and first.state == "closed"


def test_insecure_connects_to_a_self_signed_server_and_needs_wss(ip, demo) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    with WsServer(ssl_context=context) as server:
        with pytest.raises(UsageError, match="certificate verification failed"):
            magic(ip, f"ws_connect tls {server.url}/")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            conn = magic(ip, f"ws_connect tls {server.url}/ --insecure")
        assert conn.state == "open" and conn.options.insecure
        assert any(issubclass(w.category, nbs.InsecureConnectionWarning) for w in caught)
    with pytest.raises(UsageError, match="wss:// URLs only"):
        magic(ip, f"ws_connect plain {demo.url('/echo')} --insecure")


def test_connect_errors_are_one_line_with_the_cause(ip, capsys, unused_port) -> None:
    cases = {
        f"%ws_connect bad ws://127.0.0.1:{unused_port}/": "connection refused",
        "%ws_connect bad http://127.0.0.1:1/": "did you mean 'ws://127.0.0.1:1/'",
        "%ws_connect bad ws://127.0.0.1:1/ --max-rows lots": "argument --max-rows",
        "%ws_connect bad ws://127.0.0.1:1/ -H NoColon": "'Name: value'",
        "%ws_connect 'bad name' ws://127.0.0.1:1/": "not a valid socket name",
        "%ws_connect bad {undefined_url}": "NameError",
        '%ws_connect bad "ws://127.0.0.1:1/': "No closing quotation",
    }
    for source, fragment in cases.items():
        result = cell(ip, source)
        assert not result.success
        err = capsys.readouterr().err
        assert err.startswith("UsageError: ") and err.count("\n") == 1 and "Traceback" not in err, (source, err)
        assert fragment in err, (source, err)
    assert default_manager.names() == []


# --- %ws_send -------------------------------------------------------------------------------------------------


def test_sends_reach_the_server_as_typed(ip, demo) -> None:
    conn = magic(ip, f"ws_connect s {demo.url('/echo')}")
    ip.user_ns.update(request={"op": "subscribe", "symbols": ["ABC"]}, wanted=["X", "Y"])
    sent = {
        's {"op": "subscribe", "symbols": ["ABC"]}': '{"op":"subscribe","symbols":["ABC"]}',
        "s {'op': 'py', 'ok': True, 'none': None}": '{"op":"py","ok":true,"none":null}',
        "s {\"json_names\": [true, false, null], 'n': -1.5}": '{"json_names":[true,false,null],"n":-1.5}',
        "s {request}": '{"op":"subscribe","symbols":["ABC"]}',
        's {"op": "add", "symbols": {wanted}, "n": {len(wanted) * 2}}': '{"op":"add","symbols":["X","Y"],"n":4}',
        's "a string literal"': "a string literal",
        "s --raw hello {not evaluated} 'quotes kept'": "hello {not evaluated} 'quotes kept'",
        '--raw s {"not": "parsed"}': '{"not": "parsed"}',
        's f"{len(wanted)} wanted"': "2 wanted",
        "s 42": "42",
    }
    waiter = conn.waiter(len(sent))
    for line in sent:
        magic(ip, "ws_send " + line)
    events = waiter.future.result(5)
    assert demo.messages("/echo")[-len(sent) :] == list(sent.values())
    assert not any(e.request.is_binary for e in events)


def test_binary_sends_reach_the_server_as_bytes(ip) -> None:
    ip.user_ns["blob"] = b"\x00\x01"
    payload = bytes(range(256))
    sent = {
        "bin --binary de ad be ef": b"\xde\xad\xbe\xef",
        "bin --binary 0x0102": b"\x01\x02",
        "--base64 bin aGVsbG8=": b"hello",
        "bin --base64 " + base64.b64encode(payload).decode(): payload,
        "bin --base64 _-8": b"\xff\xef",
        "bin {blob}": b"\x00\x01",
    }
    with WsServer() as server:
        conn = magic(ip, f"ws_connect bin {server.url}/ -t application/octet-stream")
        waiter = conn.waiter(len(sent))
        for line in sent:
            magic(ip, "ws_send " + line)
        events = waiter.future.result(5)
        assert server.received == list(sent.values())
    assert [e.request.body for e in events] == list(sent.values()) and all(e.request.is_binary for e in events)


def test_send_errors_say_what_to_do(ip, demo) -> None:
    magic(ip, f"ws_connect s {demo.url('/echo')}")
    cases = {
        "ws_send s hello world": "use --raw",
        "ws_send s hello": "{hello}",
        "ws_send s {1, 2}": "is a set",
        "ws_send s {nothing_here}": "NameError",
        "ws_send s --binary xyz": "hexadecimal",
        "ws_send s --base64 !!!": "base64",
        "ws_send s": "nothing to send",
        "ws_send": "needs a socket name",
        "ws_send --raw --binary s 00": "only one of",
        "ws_send --bogus s 1": "unknown option",
        "ws_send nope 1": "known sockets: s",
    }
    for line, fragment in cases.items():
        with pytest.raises(UsageError) as info:
            magic(ip, line)
        assert fragment in str(info.value), (line, str(info.value))
    magic(ip, "ws_disconnect s")
    with pytest.raises(UsageError, match=r"ws_reset|reset"):
        magic(ip, "ws_send s 1")


def test_received_data_is_never_evaluated(ip, demo) -> None:
    cell(ip, "evaluated = []\ndef boom():\n    evaluated.append(1)\n    return 'boom'")
    cell(ip, "%%ws_handler s\nseen_body = event.data")  # fails: no socket yet, nothing registered
    conn = magic(ip, f"ws_connect s {demo.url('/echo')} -t text/plain")
    waiter = conn.waiter(1)
    magic(ip, "ws_send s --raw call {boom()}")
    waiter.future.result(5)
    rows = magic(ip, "ws_frame s")
    assert list(rows["data"]) == ["call {boom()}"] and ip.user_ns["evaluated"] == []


# --- lifecycle ---------------------------------------------------------------------------------------------------


def test_reset_disconnect_remove(ip, demo) -> None:
    conn = magic(ip, f"ws_connect a {demo.url('/echo')}")
    magic(ip, f"ws_connect b {demo.url('/echo')}")
    assert magic(ip, "ws_reset a") is conn and conn.stats.resets == 1 and conn.state == "open"
    ip.user_ns["chat_url"] = demo.url("/chat")
    magic(ip, "ws_reset a {chat_url}")
    assert conn.url == demo.url("/chat") and conn.state == "open"
    magic(ip, "ws_disconnect a")
    assert conn.state == "closed" and "a" in default_manager.names()
    with pytest.raises(UsageError, match="close code"):
        magic(ip, "ws_disconnect b --code 999")
    magic(ip, "ws_disconnect --all")
    assert api.get("b").state == "closed"
    magic(ip, "ws_reset b")
    assert api.test("b")
    magic(ip, "ws_remove a")
    assert default_manager.names() == ["b"]
    with pytest.raises(UsageError, match="known sockets: b"):
        magic(ip, "ws_reset a")
    with pytest.raises(UsageError, match="name or --all"):
        magic(ip, "ws_remove b --all")
    with pytest.raises(UsageError, match="needs a socket name"):
        magic(ip, "ws_disconnect")
    magic(ip, "ws_remove --all")
    assert default_manager.names() == []
    with pytest.raises(UsageError, match="no sockets are connected; connect one with %ws_connect"):
        magic(ip, "ws_status a")


def test_status_and_frame_return_dataframes(ip, demo) -> None:
    conn = magic(ip, f"ws_connect st {demo.url('/echo')}")
    magic(ip, f"ws_connect st2 {demo.url('/echo')}")
    waiter = conn.waiter(3)
    for i in range(3):
        magic(ip, f'ws_send st {{"i": {i}, "q": {{"bid": {i}}}}}')
    waiter.future.result(5)
    status = magic(ip, "ws_status")
    assert isinstance(status, pd.DataFrame) and list(status["name"]) == ["st", "st2"]
    one = magic(ip, "ws_status st")
    assert list(one["name"]) == ["st"] and int(one["messages_in"][0]) == 3
    assert len(status.columns) <= 10 and "latency_ms" in status.columns and "protocol" not in status.columns  # fits a cell
    assert list(magic(ip, "ws_status --all").columns) == list(nbs.connections().columns)
    long_url = demo.url("/echo?" + "padding=" + "x" * 80)
    magic(ip, f"ws_connect st3 {long_url}")
    shown = magic(ip, "ws_status st3")["url"][0]
    assert len(shown) == STATUS_TEXT_WIDTHS["url"] and shown.endswith("…") and long_url.startswith(shown[:-1])
    assert magic(ip, "ws_status --all").set_index("name").loc["st3", "url"] == long_url  # --all shows it whole
    cell(ip, "df = %ws_frame st")
    df = ip.user_ns["df"]
    assert list(df.columns[:3]) == ["timestamp", "socket", "seq"] and list(df["q.bid"]) == [0, 1, 2]
    assert list(magic(ip, "ws_frame st --tail 1")["i"]) == [2]
    assert len(magic(ip, "ws_frame")) == 3


def test_panel_calls_the_widgets(ip, demo, monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(api, "panel", lambda name, **kw: calls.append(("panel", name)) or "PANEL")
    monkeypatch.setattr(api, "dashboard", lambda **kw: calls.append(("dashboard", None)) or "DASHBOARD")
    magic(ip, f"ws_connect p {demo.url('/echo')}")
    assert magic(ip, "ws_panel p") == "PANEL" and magic(ip, "ws_panel") == "DASHBOARD"
    assert calls == [("panel", "p"), ("dashboard", None)]
    with pytest.raises(UsageError, match="known sockets: p"):
        magic(ip, "ws_panel q")


def test_panel_and_plot_take_chart_options(ip, demo, monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(api, "panel", lambda name, **kw: calls.append(("panel", name, kw)) or "PANEL")
    monkeypatch.setattr(api, "plot", lambda name, **kw: calls.append(("plot", name, kw)) or "PLOT")
    magic(ip, f"ws_connect p {demo.url('/echo')}")
    assert magic(ip, "ws_panel p --by symbol --y price --y qty --window 300") == "PANEL"
    assert magic(ip, "ws_plot p --by none") == "PLOT"
    assert magic(ip, "ws_plot p --x seq --window 50") == "PLOT"
    assert calls == [
        ("panel", "p", {"by": "symbol", "y": ["price", "qty"], "window": 300}),
        ("plot", "p", {"x": "timestamp", "by": None}),
        ("plot", "p", {"x": "seq", "window": 50}),
    ]
    with pytest.raises(UsageError, match="--window takes a number of points >= 2"):
        magic(ip, "ws_plot p --window 1")
    with pytest.raises(UsageError, match="need a socket name"):
        magic(ip, "ws_panel --by symbol")
    with pytest.raises(UsageError, match="known sockets: p"):
        magic(ip, "ws_plot q")


def test_plot_magic_splits_the_ticker_by_symbol_by_itself(ip, demo) -> None:
    magic(ip, f"ws_connect tick {demo.url('/ticker?rate=200&symbols=ABC,XYZ,QRS')}")
    chart = magic(ip, "ws_plot tick")
    try:
        eventually(
            lambda: chart.feed.drain() or set(chart.buffer.series.get("price", {})) == {"ABC", "XYZ", "QRS"},
            10,
            0.05,
            "one line per symbol",
        )
        assert chart.buffer.by == "symbol" and 'aria-label="price by symbol"' in chart.buffer.render()
    finally:
        chart.close()


def test_plot_and_panel_magics_take_the_chart_engine(ip, demo) -> None:
    magic(ip, f"ws_connect eng {demo.url('/ticker?rate=50')}")
    chart = magic(ip, "ws_plot eng --engine svg")
    try:
        assert chart.engine == "svg"
    finally:
        chart.close()
    panel = magic(ip, "ws_panel eng --engine SVG")
    try:
        assert panel.chart_view is not None and panel.chart_view.engine == "svg"
    finally:
        panel.close()
    with pytest.raises(UsageError, match="engine must be one of auto, plotly, svg, not 'bogus'"):
        magic(ip, "ws_plot eng --engine bogus")
    with pytest.raises(UsageError, match="need a socket name"):
        magic(ip, "ws_panel --engine svg")


def test_test_magic_prints_open_or_closed_and_returns_the_bool(ip, demo, capsys) -> None:
    magic(ip, f"ws_connect tt {demo.url('/echo')}")
    assert magic(ip, "ws_test tt") is True
    assert capsys.readouterr().out == "tt: open\n"
    magic(ip, "ws_disconnect tt")
    assert magic(ip, "ws_test tt") is False
    assert capsys.readouterr().out == "tt: closed\n"
    with pytest.raises(UsageError, match="known sockets: tt"):
        magic(ip, "ws_test nope")


def test_errors_point_to_magics_not_to_python_calls(ip, demo, capsys) -> None:
    magic(ip, f"ws_connect hint {demo.url('/echo')}")
    with pytest.raises(UsageError) as in_use:
        magic(ip, f"ws_connect hint {demo.url('/chat')}")
    assert "--replace" in str(in_use.value) and "%ws_reset hint URL" in str(in_use.value)
    magic(ip, "ws_disconnect hint")
    with pytest.raises(UsageError) as closed:
        magic(ip, 'ws_send hint {"x": 1}')
    assert "run %ws_reset hint to reconnect" in str(closed.value)
    for error in (in_use.value, closed.value):
        assert "nbs." not in str(error) and "conn." not in str(error) and "replace=True" not in str(error)


def test_a_mistyped_magic_suggests_the_right_one(ip, capsys) -> None:
    assert not cell(ip, "%ws_conect prices ws://127.0.0.1:1/").success
    assert "`%ws_conect` not found. Did you mean %ws_connect?" in capsys.readouterr().err
    assert not cell(ip, "%%ws_handlr prices\npass").success
    assert "Did you mean %%ws_handler?" in capsys.readouterr().err
    cell(ip, "%ws_stauts")
    assert "Did you mean %ws_status?" in capsys.readouterr().err
    cell(ip, "%nonsense_magic")
    err = capsys.readouterr().err
    assert "`%nonsense_magic` not found" in err and "Did you mean" not in err  # only nbsocket's own are suggested
    with pytest.raises(UsageError, match="no socket named"):  # other usage errors are as before
        magic(ip, "ws_status nope")


def test_the_suggestion_hook_leaves_another_handler_alone_and_goes_on_unload() -> None:
    shell = InteractiveShell.instance()
    assert shell.custom_exceptions == ()
    shell.run_line_magic("load_ext", "nbsocket")
    assert shell.custom_exceptions == (UsageError,)
    shell.run_line_magic("unload_ext", "nbsocket")
    assert shell.custom_exceptions == ()

    def theirs(shell, etype, value, tb, tb_offset=None) -> None:
        return None

    shell.set_custom_exc((ValueError,), theirs)
    try:
        shell.run_line_magic("load_ext", "nbsocket")
        assert shell.custom_exceptions == (ValueError,)  # not replaced
        shell.run_line_magic("unload_ext", "nbsocket")
        assert shell.custom_exceptions == (ValueError,)
    finally:
        shell.set_custom_exc((), None)
        forget_config(shell)


# --- %ws_wait ------------------------------------------------------------------------------------------------------


def test_wait_returns_the_next_messages_as_a_frame(ip, demo) -> None:
    conn = magic(ip, f"ws_connect t {demo.url('/ticker?rate=100&symbols=ABC')}")
    first = magic(ip, "ws_wait t -n 3 --timeout 10")
    assert len(first) == 3 and list(first.columns[:3]) == ["timestamp", "socket", "seq"]
    assert str(first["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert set(first["symbol"]) == {"ABC"} and (first["socket"] == "t").all()
    seqs = list(first["seq"])
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    second = magic(ip, "ws_wait t")
    assert len(second) == 1 and second["seq"][0] > seqs[-1]
    assert not waiting(conn)


def test_wait_timeout_and_closed_socket_are_clear_errors(ip, demo, capsys) -> None:
    magic(ip, f"ws_connect quiet {demo.url('/echo')}")
    result = cell(ip, "%ws_wait quiet -n 2 --timeout 0.2")
    err = capsys.readouterr().err
    assert not result.success and err.count("\n") == 1
    assert "only 0 of 2 message(s) arrived on 'quiet' within 0.2s" in err and "--timeout" in err
    assert not waiting(api.get("quiet"))
    magic(ip, "ws_disconnect quiet")
    with pytest.raises(UsageError, match="ws_reset quiet"):
        magic(ip, "ws_wait quiet")
    with pytest.raises(UsageError, match="count"):
        magic(ip, "ws_wait quiet -n 0")


def test_wait_uses_the_configured_count_and_timeout(ip, demo) -> None:
    magic(ip, f"ws_connect quiet {demo.url('/echo')}")
    cell(ip, "%config NbSocket.wait_timeout = 0.1")
    cell(ip, "%config NbSocket.wait_count = 4")
    with pytest.raises(UsageError, match=r"only 0 of 4 message.* within 0.1s"):
        magic(ip, "ws_wait quiet")


def test_wait_is_interrupted_cleanly_by_ctrl_c(ip, demo) -> None:
    conn = magic(ip, f"ws_connect quiet {demo.url('/echo')}")

    def interrupt_once_waiting() -> None:
        eventually(lambda: waiting(conn))
        _thread.interrupt_main()

    thread = threading.Thread(target=interrupt_once_waiting, daemon=True)
    thread.start()
    with pytest.raises(UsageError, match=r"interrupted: 0 of 1 message.*still open"):
        magic(ip, "ws_wait quiet --timeout none")
    thread.join(5)
    assert not waiting(conn) and conn.state == "open"


def test_no_progress_bar_in_a_plain_shell(ip) -> None:
    assert not frontend_present(ip)
    progress = ProgressBar(3, "x", enabled=frontend_present(ip))
    assert progress.bar is None
    progress.update(2)
    progress.close()


# --- %%ws_handler ----------------------------------------------------------------------------------------------------


def test_cell_handler_runs_per_message_and_rerunning_replaces_it(ip, demo) -> None:
    conn = magic(ip, f"ws_connect hc {demo.url('/echo')}")
    cell(ip, "seen = []\nlimit = 1")
    cell(ip, "%%ws_handler hc\nif event.data['n'] > limit:\n    seen.append(('old', event.seq))")
    waiter = conn.waiter(2)
    magic(ip, 'ws_send hc {"n": 1}')
    magic(ip, 'ws_send hc {"n": 2}')
    waiter.future.result(5)
    assert eventually(lambda: ip.user_ns["seen"]) == [("old", 2)]
    cell(ip, "%%ws_handler hc\nglobal total\ntotal = total + event.data['n']\nseen.append(('new', [x for x in [event.seq]]))")
    cell(ip, "total = 0")
    assert len(conn.handlers) == 1
    waiter = conn.waiter(1)
    magic(ip, 'ws_send hc {"n": 5}')
    waiter.future.result(5)
    eventually(lambda: len(ip.user_ns["seen"]) == 2)
    assert ip.user_ns["seen"] == [("old", 2), ("new", [3])] and ip.user_ns["total"] == 5
    assert "event" not in ip.user_ns
    cell(ip, "%%ws_handler hc -k second\nseen.append('second')")
    assert len(conn.handlers) == 2
    cell(ip, "%%ws_handler hc\n# nothing: removes the handler\n")
    assert len(conn.handlers) == 1
    cell(ip, "%ws_handler hc -k second --remove")
    assert conn.handlers == []
    with pytest.raises(UsageError, match="cell magic"):
        magic(ip, "ws_handler hc")


def test_cell_handler_syntax_error_is_reported_once_when_the_cell_runs(ip, demo, capsys) -> None:
    conn = magic(ip, f"ws_connect hs {demo.url('/echo')}")
    cell(ip, "%%ws_handler hs\npass")
    before = conn.handlers
    result = cell(ip, "%%ws_handler hs\nx = 1\nif x\n    pass")
    err = capsys.readouterr().err
    assert not result.success
    assert err.startswith("UsageError: %%ws_handler hs: syntax error on line 2 of the cell (expected ':'): if x")
    assert err.count("\n") == 1 and conn.handlers == before
    result = cell(ip, "%%ws_handler nowhere\npass")
    assert not result.success and "no socket named 'nowhere'" in capsys.readouterr().err


def test_cell_handler_errors_are_recorded_per_message(ip, demo) -> None:
    conn = magic(ip, f"ws_connect he {demo.url('/echo')}")
    cell(ip, "%%ws_handler he\nraise ValueError('bad ' + str(event.seq))")
    waiter = conn.waiter(1)
    magic(ip, "ws_send he 1")
    waiter.future.result(5)
    record = eventually(lambda: conn.last_error)
    assert record.where == "handler %%ws_handler he" and record.message == "bad 1"
    assert "raise ValueError" in record.traceback and conn.state == "open"


def test_cell_handler_with_await_runs_as_an_async_handler(ip, demo) -> None:
    conn = magic(ip, f"ws_connect ha {demo.url('/echo')}")
    cell(ip, "import asyncio\nasync_seen = []")
    cell(ip, "%%ws_handler ha\nawait asyncio.sleep(0)\nasync_seen.append(event.data)")
    assert conn._handlers.current[0].is_async
    waiter = conn.waiter(1)
    magic(ip, "ws_send ha [1]")
    waiter.future.result(5)
    assert eventually(lambda: ip.user_ns["async_seen"]) == [[1]]


# --- unloading ------------------------------------------------------------------------------------------------------------


def test_unload_ext_closes_every_socket_and_stops_the_loop(demo) -> None:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbsocket")
    with WsServer() as server:
        conn = magic(shell, f"ws_connect u1 {server.url}/")
        other = magic(shell, f"ws_connect u2 {demo.url('/echo')}")
        shell.run_line_magic("unload_ext", "nbsocket")
        assert eventually(lambda: server.close_codes) == [1001]
    assert conn.state == "closed" and other.state == "closed"
    assert not default_manager.loop_thread.running and default_manager.names() == []
    assert shell.find_line_magic("ws_status") is None
    assert not any(isinstance(c, NbSocket) for c in shell.configurables)
    assert NbSocketMagics.__name__ not in shell.magics_manager.registry
    shell.run_line_magic("load_ext", "nbsocket")
    try:
        assert magic(shell, f"ws_connect again {demo.url('/echo')}").state == "open"
    finally:
        shell.run_line_magic("unload_ext", "nbsocket")
