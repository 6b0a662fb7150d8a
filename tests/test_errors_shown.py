"""How nbsocket's errors read in a notebook: the caller's frames and the message, nbsocket's own frames left out
(while the traceback keeps them for %debug and logging); conn.errors as a table; advice in the caller's words."""

from __future__ import annotations

import datetime as _dt
import sys
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbsocket as nbs
from nbsocket.core.hints import in_magic_words, in_widget_words
from nbsocket.core.state import ErrorList, ErrorRecord

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_cell("%colors nocolor")
    yield ip
    ip.user_ns.pop("conn", None)


def shown_traceback(ip: InteractiveShell, source: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    result = ip.run_cell(source)
    assert result.error_in_exec is not None, "the cell should have raised"
    return capsys.readouterr().out


def test_a_python_api_error_shows_the_callers_frame_and_the_message_only(
    shell: InteractiveShell, demo: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.user_ns["url"] = demo.url("/echo")
    shell.run_cell("import nbsocket as nbs\nconn = nbs.connect('shown-echo', url)")
    shown = shown_traceback(shell, "conn.request({'id': 1}, match={'id': 2}, timeout=0.2)", capsys)
    assert "conn.request({'id': 1}, match={'id': 2}, timeout=0.2)" in shown  # the caller's line
    assert "within 0.2" in shown and "Error" in shown
    assert "nbsocket/" not in shown and "nbsocket\\" not in shown, shown  # no frame of nbsocket's own code
    assert len(shown.strip().splitlines()) < 15, shown
    # %debug and logging keep every frame: the traceback IPython stored still runs through nbsocket
    kept = traceback.extract_tb(sys.last_traceback)
    assert any("nbsocket" in frame.filename for frame in kept)
    nbs.remove("shown-echo")


def test_an_api_function_error_keeps_its_frames_for_debugging(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = shown_traceback(shell, "import nbsocket as nbs\nnbs.get('no-such-socket')", capsys)
    assert "no socket named 'no-such-socket'" in shown and "nbsocket/" not in shown
    try:
        nbs.get("no-such-socket")
    except nbs.UnknownSocketError as exc:
        frames = traceback.extract_tb(exc.__traceback__)
    assert any(frame.filename.endswith("api.py") for frame in frames)  # not cut away (logging prints them)


def test_error_records_print_and_render_as_a_table() -> None:
    when = _dt.datetime(2026, 1, 2, 12, 0, 1, tzinfo=_dt.timezone.utc)
    records = ErrorList(
        [
            ErrorRecord(when, "handler on_tick", "ValueError", "bad <price>", "Traceback (most recent call last):\n ...", 7),
            ErrorRecord(when, "connect", "ConnectError", "refused"),
        ]
    )
    text = repr(records)
    assert text.splitlines()[1] == "  0: 12:00:01 handler on_tick: ValueError: bad <price> (message 7)"
    assert "Traceback" not in text and "datetime.datetime" not in text
    html = records._repr_html_()
    assert html.count("<tr>") == 4 and "<th" in html  # header, two records, one folded traceback
    assert "bad &lt;price&gt;" in html and "<details>" in html
    assert "datetime.datetime" not in repr(records[0]) and "12:00:01 connect" in repr(records[1])
    assert repr(ErrorList()) == "ErrorList([]): no errors"


def test_conn_errors_is_such_a_list(demo: Any) -> None:
    def broken(event: Any) -> None:
        raise RuntimeError("cannot handle it")

    conn = nbs.connect("shown-errors", demo.url("/echo"), handler=broken)
    try:
        conn.send({"n": 1})
        conn.wait(1, timeout=10)
        from .servers import eventually

        eventually(lambda: conn.errors, 10, 0.05, "the handler's error")
        assert isinstance(conn.errors, ErrorList) and "RuntimeError: cannot handle it (message 1)" in repr(conn.errors)
        assert "<table" in conn.errors._repr_html_()
    finally:
        nbs.remove("shown-errors")


def test_advice_speaks_the_callers_language() -> None:
    hint = (
        "socketio URL path '/chat' is not a Socket.IO endpoint: pass the namespace as namespace=... "
        "and a non-standard endpoint as path=... (default '/socket.io/')"
    )
    assert "--namespace ..." in in_magic_words(hint) and "--path ..." in in_magic_words(hint)
    assert "namespace=" not in in_magic_words(hint)
    assert "namespace=..." in hint  # Python users keep the keywords
    assert in_magic_words("see nbs.get('feed').errors") == "see %ws_status feed"
    assert "conn.errors" not in in_magic_words("late reply (see conn.errors)")
    assert "see Errors below" in in_widget_words("see conn.errors")
