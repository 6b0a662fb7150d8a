"""The protocol magics (``%ws_connect --protocol``, ``%ws_emit``, ``%ws_call``, ``%ws_subscribe``) and the one option table."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

pytest.importorskip("jsonrpcserver")

from IPython.core.interactiveshell import InteractiveShell

import nbsocket as nbs
from nbsocket.core.options import PROTOCOL_OPTIONS, ConnectOptions
from nbsocket.magics.protocol_magics import PROTOCOL_FLAGS
from tests.protocol_servers.jsonrpc_server import JSONRPCServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture()
def ip() -> Iterator[object]:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbsocket")
    yield shell
    shell.run_line_magic("unload_ext", "nbsocket")


def test_connect_call_and_emit_by_magic(ip: object) -> None:
    with JSONRPCServer() as server:
        ip.user_ns["url"] = server.url
        conn = ip.run_line_magic("ws_connect", "rpc {url} --protocol jsonrpc")
        assert conn.protocol == "jsonrpc"
        assert ip.run_line_magic("ws_call", "rpc add [1, 2] --timeout 5") == 3
        assert "protocol" in nbs.connections().columns
        with pytest.raises(Exception, match="RemoteError"):
            ip.run_line_magic("ws_call", "rpc fail")
        with pytest.raises(Exception, match="no emit"):
            ip.run_line_magic("ws_emit", 'rpc chat {"a": 1}')


def test_one_option_table(ip: object) -> None:
    """The protocol options are declared once (core.options.PROTOCOL_OPTIONS); the magics and docs follow it."""
    assert set(PROTOCOL_FLAGS) == set(PROTOCOL_OPTIONS)
    fields = set(ConnectOptions.__dataclass_fields__)
    assert "protocol" in fields
    doc = inspect.getdoc(nbs.connect) or ""
    for name in PROTOCOL_OPTIONS:
        assert f"``{name}``" in doc, name
    usage = ip.find_line_magic("ws_connect").__self__.ws_connect.parser.format_help()
    for name in ("protocol", *PROTOCOL_OPTIONS):
        assert "--" + name.replace("_", "-") in usage, name
