"""The plain ``connect`` options are declared once (``core.options.CONNECT_OPTIONS``); every other place follows it.

``ConnectOptions`` and ``build_options`` are derived from the table; the
``%config NbSocket`` traits and the ``%ws_connect`` flags are made from it;
``api.connect``'s docstring and explicit keywords are checked against it here.
Each check fails if an option is dropped from (or added to) one place only.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbsocket as nbs
from nbsocket.core.options import CONNECT_OPTIONS, DEFAULT, PROTOCOL_OPTIONS, ConnectOptions, build_options, option
from nbsocket.errors import InvalidOptionError
from nbsocket.magics.config import CONFIG_OPTIONS, NbSocket
from nbsocket.magics.line_input import flag_spec

PROTOCOL_FIELDS = ("protocol", "protocol_options")
"""``ConnectOptions`` fields that belong to the protocol table, not to the plain one."""

CALLBACK_KEYWORDS = {"name", "url", "handler", "args", "on_open", "on_close", "on_error", "replace", "options"}
"""``api.connect`` parameters that are not connect options."""

CONFIG_ONLY = {"wait_timeout", "wait_count", "progress"}
"""``NbSocket`` traits of other magics than ``%ws_connect``."""

NOT_OPTION_FLAGS = {"name", "url", "handler", "on_open", "on_close", "on_error", "replace", "protocol"}
"""``%ws_connect`` arguments that are not plain connect options."""


@pytest.fixture()
def parser(ip: object) -> argparse.ArgumentParser:
    return ip.find_line_magic("ws_connect").__self__.ws_connect.parser


@pytest.fixture()
def ip() -> Iterator[object]:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbsocket")
    yield shell
    shell.run_line_magic("unload_ext", "nbsocket")


def _option_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    skip = NOT_OPTION_FLAGS | set(PROTOCOL_OPTIONS) | {"help"}
    return {a.dest: a for a in parser._actions if a.option_strings and a.dest not in skip}


def test_names_are_unique_and_described() -> None:
    names = [o.name for o in CONNECT_OPTIONS]
    assert len(names) == len(set(names))
    for opt in CONNECT_OPTIONS:
        assert opt.help and "\n" not in opt.help, opt.name
        assert option(opt.name) is opt
        if opt.config:
            assert opt.flag is not None and opt.kind is not None, f"{opt.name}: a %config trait needs a flag and a kind"


def test_connect_options_fields_follow_the_table() -> None:
    fields = [f.name for f in dataclasses.fields(ConnectOptions)]
    assert fields == [o.name for o in CONNECT_OPTIONS] + list(PROTOCOL_FIELDS)
    built = build_options("ws://localhost/")
    assert built == ConnectOptions(), "build_options with nothing given gives ConnectOptions' defaults"
    for opt in CONNECT_OPTIONS:
        assert getattr(ConnectOptions(), opt.name) == opt.checked(opt.default), opt.name


def test_every_checked_option_refuses_a_bad_value() -> None:
    bad = {
        "content_type": "no/such-type",
        "headers": [("bad name", "x")],
        "ssl": "not a context",
        "compression": "gzip",
        "reconnect": "yes",
        "open_timeout": 0,
        "ping_interval": -1,
        "ping_timeout": "1",
        "close_timeout": True,
        "max_size": 0,
        "max_queue": 0,
        "outbox_size": 1.5,
        "send_timeout": -2,
        "max_rows": 0,
        "max_columns": False,
    }
    checked = {o.name for o in CONNECT_OPTIONS if o.check is not None}
    assert set(bad) <= checked
    for name, value in bad.items():
        with pytest.raises(InvalidOptionError, match=name if name not in ("content_type", "headers") else None):
            build_options("wss://localhost/", **{name: value})


def test_max_queue_is_a_positive_integer_or_none() -> None:
    assert ConnectOptions().max_queue == 64
    assert build_options("ws://localhost/", max_queue=None).max_queue is None  # never stops reading
    assert build_options("ws://localhost/", max_queue=1).max_queue == 1
    for bad in (0, -5, 1.5, "64", True):
        with pytest.raises(InvalidOptionError, match=r"max_queue must be a positive integer or None, not "):
            build_options("ws://localhost/", max_queue=bad)


def test_secret_options_are_never_shown() -> None:
    secret = [o.name for o in CONNECT_OPTIONS if o.secret]
    assert secret == ["secrets"]
    shown = repr(build_options("ws://localhost/", secrets=["hunter2-table"]))
    assert "hunter2-table" not in shown and "secrets=<1 hidden>" in shown


def test_config_traits_follow_the_table() -> None:
    traits = NbSocket.class_traits(config=True)
    assert set(traits) - CONFIG_ONLY == {o.name for o in CONNECT_OPTIONS if o.config} == set(CONFIG_OPTIONS)
    settings = NbSocket()
    for name in CONFIG_OPTIONS:
        opt = option(name)
        assert getattr(settings, name) == opt.default, name
        assert traits[name].help == opt.config_help(), name
        assert traits[name].allow_none == opt.none, name
    assert settings.connect_options() == {name: option(name).default for name in CONFIG_OPTIONS}


def test_config_traits_refuse_what_connect_refuses() -> None:
    for name in CONFIG_OPTIONS:
        opt = option(name)
        if opt.kind in (int, float):
            with pytest.raises(Exception, match=name):
                NbSocket(**{name: 0})


def test_ws_connect_flags_follow_the_table(parser: argparse.ArgumentParser) -> None:
    actions = _option_actions(parser)
    flagged = {o.name for o in CONNECT_OPTIONS if o.flag is not None}
    assert set(actions) == flagged
    for name in flagged:
        opt = option(name)
        action = actions[name]
        assert tuple(s for s in action.option_strings if not s.startswith("--no-")) == opt.flag.names, name
        assert action.help.startswith(opt.flag.help), name
        assert action.default is argparse.SUPPRESS, f"{name}: the default comes from %config or connect, not argparse"
        if opt.config:
            assert action.help.endswith(f"(default: NbSocket.{name} = {opt.default!r})"), name
        assert flag_spec(name)[0] == opt.flag.names


def test_ws_connect_flags_reach_connect(parser: argparse.ArgumentParser) -> None:
    from nbsocket.magics.line_input import flagged_options

    args = parser.parse_args(
        [
            "s",
            "ws://x",
            "--max-rows",
            "none",
            "--no-frame",
            "--open-timeout",
            "3",
            "--max-size",
            "10",
            "-t",
            "text/plain",
            "--record",
            "r.jsonl",
            "--origin",
            "o",
            "-p",
            "a",
            "-p",
            "b",
            "--insecure",
            "--secret-header",
            "X-K",
        ]
    )
    assert flagged_options(args) == {
        "content_type": "text/plain",
        "subprotocols": ["a", "b"],
        "origin": "o",
        "insecure": True,
        "open_timeout": 3.0,
        "max_size": 10,
        "frame": False,
        "max_rows": None,
        "record": "r.jsonl",
        "secret_headers": ["X-K"],
    }
    assert flagged_options(parser.parse_args(["s", "ws://x"])) == {}


def test_api_connect_documents_every_option_and_agrees_on_defaults() -> None:
    doc = inspect.getdoc(nbs.connect) or ""
    for opt in CONNECT_OPTIONS:
        assert f"``{opt.name}``" in doc, f"nbs.connect's docstring does not list {opt.name}"
    params = inspect.signature(nbs.connect).parameters
    explicit = {name: p for name, p in params.items() if name not in CALLBACK_KEYWORDS}
    for name, param in explicit.items():
        opt = option(name)  # KeyError: a keyword that is not a declared option
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert param.default == opt.default or (opt.default is DEFAULT and param.default is DEFAULT), name
    assert params["options"].kind is inspect.Parameter.VAR_KEYWORD, "the other options pass through **options"


def test_manager_connect_takes_every_option() -> None:
    from nbsocket.runtime.manager import Manager

    params = inspect.signature(Manager.connect).parameters
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    assert not {o.name for o in CONNECT_OPTIONS} & set(params), "Manager.connect passes options through, unlisted"
