"""The ``%ws_*`` magics: every nbsocket verb from a notebook cell, after ``%load_ext nbsocket``.

The magics only read the line, then call :mod:`nbsocket.api` (and so the
default manager). A failure is one ``UsageError`` line that says what to do,
never a traceback; defaults come from the :class:`~nbsocket.magics.config.NbSocket`
configurable (``%config NbSocket.max_rows = 10_000``).
"""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.utils.process import arg_split  # type: ignore[attr-defined]  # imported there per platform, not re-exported
from traitlets import TraitError

from .. import api
from ..core.hints import in_magic_words
from ..core.redact import scrub
from ..errors import NameInUseError, NbSocketError, UnknownSocketError
from ..runtime import ProgressBar, frontend_present, registry
from .arguments import MagicT, ParsedMagic, argument, magic_arguments
from .config import CONFIG_OPTIONS, NbSocket
from .handler import compile_handler, has_body
from .hints import install_magic_suggestions, uninstall_magic_suggestions
from .line_input import (
    expand,
    flag_spec,
    flagged_options,
    lookup_callable,
    optional_number,
    parse_headers,
    send_value,
    split_send_line,
)
from .protocol_magics import ProtocolMagics, protocol_arguments, protocol_options
from .wait import events_frame, wait_for_messages

__all__ = [
    "CELL_KEY",
    "STATUS_COLUMNS",
    "STATUS_TEXT_WIDTHS",
    "NbSocketMagics",
    "load_ipython_extension",
    "status_summary",
    "unload_ipython_extension",
]


log = logging.getLogger("nbsocket")
_D = NbSocket()  # class defaults, for the help texts
CELL_KEY = "cell:"
"""Prefix of the handler key a ``%%ws_handler`` cell registers under (re-running it replaces the handler)."""


def _default(trait: str) -> str:
    return f"default: NbSocket.{trait} = {getattr(_D, trait)!r}"


def _option_arguments(*names: str) -> Callable[[MagicT], MagicT]:
    """``%ws_connect``'s flags for these ``connect`` options, made from their declarations (core.options)."""

    def add(magic: MagicT) -> MagicT:
        for name in reversed(names):
            flags, spec = flag_spec(name, _default(name) if name in CONFIG_OPTIONS else None)
            magic = argument(*flags, **spec)(magic)
        return magic

    return add


STATUS_COLUMNS = ("name", "state", "protocol", "url", "messages_in", "messages_out", "errors", "last_error", "last_message_at")
"""The columns ``%ws_status`` shows (``--all``: every one), with the latency in milliseconds after ``errors``."""
STATUS_TEXT_WIDTHS = {"url": 48, "last_error": 60}
"""Characters of these columns ``%ws_status`` shows, so that its table fits a notebook cell."""


def status_summary(status: pd.DataFrame) -> pd.DataFrame:
    """``nbs.connections()`` narrowed to what fits a cell: :data:`STATUS_COLUMNS` and ``latency_ms``.

    ``protocol`` only when a socket speaks one; a long ``url`` or ``last_error`` is cut (``--all`` shows it whole).
    """
    columns = [c for c in STATUS_COLUMNS if c in status.columns]
    if "protocol" in status.columns and not status["protocol"].notna().any():
        columns.remove("protocol")
    summary = status[columns].copy()
    for column, width in STATUS_TEXT_WIDTHS.items():
        if column in summary.columns:
            summary[column] = summary[column].map(functools.partial(_cut, width=width))
    if "latency_s" in status.columns:
        latency = pd.to_numeric(status["latency_s"], errors="coerce") * 1000
        summary.insert(columns.index("errors") + 1, "latency_ms", latency.round(1))
    return summary


def _cut(text: Any, width: int) -> Any:
    """``text`` cut to ``width`` characters with an ellipsis (anything else as it is)."""
    return text[: width - 1] + "…" if isinstance(text, str) and len(text) > width else text


def _unknown_socket_message(exc: UnknownSocketError) -> str:
    if exc.known:
        return f"no socket named {exc.name!r}; known sockets: {', '.join(exc.known)} (see %ws_status)"
    return f"no socket named {exc.name!r}: no sockets are connected; connect one with %ws_connect NAME URL"


def _one_line(message: str) -> str:
    return " ".join(in_magic_words(scrub(message)).split())


def _one_line_errors(magic: Callable[..., Any]) -> Callable[..., Any]:
    """Turn nbsocket's errors (and Ctrl-C) in a magic into one ``UsageError`` line instead of a traceback."""

    @functools.wraps(magic)
    def run(self: Any, *args: Any) -> Any:
        try:
            return magic(self, *args)
        except UsageError:
            raise
        except UnknownSocketError as exc:
            raise UsageError(_unknown_socket_message(exc)) from None
        except NameInUseError as exc:
            raise UsageError(_one_line(str(exc))) from None
        except NbSocketError as exc:
            raise UsageError(_one_line(str(exc))) from None
        except KeyboardInterrupt:
            raise UsageError(f"%{magic.__name__} interrupted") from None

    return run


def _chart_arguments(magic: Callable[..., Any]) -> Callable[..., Any]:
    """The chart options ``%ws_panel`` and ``%ws_plot`` share: ``--by``, ``--y``, ``--window``, ``--engine``."""
    for decorator in reversed(
        [
            argument(
                "--by",
                default=argparse.SUPPRESS,
                metavar="COLUMN|none",
                help="one line per value of this column, e.g. symbol; none draws one line per column "
                "(default: a text column with a few repeating values, found by itself)",
            ),
            argument(
                "--y",
                action="append",
                metavar="COLUMN",
                help="a numeric column to draw, repeatable (default: the numeric value columns as they appear)",
            ),
            argument(
                "--window",
                type=int,
                default=argparse.SUPPRESS,
                metavar="N",
                help="points kept per line: the last N rows (default: 500)",
            ),
            argument(
                "--engine",
                default=argparse.SUPPRESS,
                metavar="auto|plotly|svg",
                help="plotly: an interactive Plotly chart (hover, zoom, pan); svg: the dependency-free image "
                "(default: auto, Plotly when installed)",
            ),
        ]
    ):
        magic = decorator(magic)
    return magic


def _chart_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords for ``nbs.panel``/``nbs.plot`` from ``--by``, ``--y``, ``--window`` and ``--engine``."""
    options: dict[str, Any] = {}
    if hasattr(args, "by"):
        options["by"] = None if args.by.strip().lower() in ("none", "off") else args.by
    if args.y:
        options["y"] = args.y
    if hasattr(args, "window"):
        if args.window < 2:
            raise UsageError("--window takes a number of points >= 2")
        options["window"] = args.window
    if hasattr(args, "engine"):
        options["engine"] = args.engine.strip().lower()
    return options


def _parse(magic: ParsedMagic, line: str) -> argparse.Namespace:
    """Parse a magic's line with shell quoting: ``-H "Name: value"`` gives ``Name: value`` without the quotes."""
    try:
        argv = arg_split(line, posix=True, strict=True)
    except ValueError as exc:  # unbalanced quotes
        raise UsageError(f"%{magic.__name__}: {exc}") from None
    try:
        return magic.parser.parse_args(argv)
    except UsageError as exc:
        raise UsageError(f"%{magic.__name__}: {exc} (see %{magic.__name__}? for the options)") from None


@magics_class
class NbSocketMagics(Magics):
    """The ``%ws_*`` line magics and the ``%%ws_handler`` cell magic."""

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        try:
            self.settings = NbSocket(parent=shell)
        except TraitError as exc:  # a bad value left in the shell's config by an earlier %config
            log.warning("ignoring the NbSocket configuration (%s); using the defaults", exc)
            self.settings = NbSocket()

    @property
    def namespace(self) -> dict[str, Any]:
        """The notebook's variables."""
        return self.shell.user_ns if self.shell is not None else {}

    # --- connect -----------------------------------------------------------------------------------

    @no_var_expand
    @magic_arguments()
    @argument("name", help="name of the socket, used by every other %%ws_ magic")
    @argument("url", help="ws:// or wss:// URL; {expr} inserts a value from the notebook")
    @_option_arguments("content_type", "headers", "secret_headers", "subprotocols", "origin")
    @argument("--handler", metavar="FUNC", help="a function of the notebook called as FUNC(event) for every message")
    @argument("--on-open", metavar="FUNC", help="a function called as FUNC(conn) each time the socket opens")
    @argument("--on-close", metavar="FUNC", help="a function called as FUNC(conn, code, reason) each time it closes")
    @argument("--on-error", metavar="FUNC", help="a function called as FUNC(conn, exc) on errors")
    @_option_arguments("max_rows", "frame", "reconnect", "insecure")
    @argument(
        "--replace",
        action="store_true",
        help="replace a socket of the same name that has another URL or options (default: refuse)",
    )
    @_option_arguments("record", "open_timeout", "ping_interval", "ping_timeout", "max_size")
    @protocol_arguments
    @line_magic
    @_one_line_errors
    def ws_connect(self, line: str) -> Any:
        """Connect a named WebSocket and return its Connection once it is open.

        Re-running the same line returns the open socket (its --handler is
        replaced); a different URL or options needs --replace. Defaults come
        from %config NbSocket.*. Example::

            %ws_connect prices wss://example.org/feed -H "Authorization: Bearer {token}" --max-rows 10000
        """
        args = _parse(self.ws_connect, line)
        ns = self.namespace
        url, _ = expand(args.url, ns, "url")
        options = self.settings.connect_options()
        options.update(flagged_options(args))
        headers, secret_headers, secrets = parse_headers(options.pop("headers", None), ns)
        if headers:
            options["headers"] = headers
        if secret_headers or "secret_headers" in options:
            options["secret_headers"] = [*secret_headers, *options.get("secret_headers", ())]
        if secrets:
            options["secrets"] = secrets
        options.update(protocol_options(args, ns))
        callbacks = {
            key: lookup_callable(spec, ns, "--" + key.replace("_", "-"))
            for key in ("handler", "on_open", "on_close", "on_error")
            if (spec := getattr(args, key)) is not None
        }
        return api.connect(args.name, url, replace=args.replace, **callbacks, **options)

    # --- send ------------------------------------------------------------------------------------------

    @no_var_expand
    @magic_arguments()
    @argument("name", help="name of the socket")
    @argument(
        "message",
        nargs="+",
        help="the rest of the line: JSON or a Python literal (dict/list: encoded by the socket's content type; "
        "a string: sent as a text frame); {expr} anywhere in it is evaluated in the notebook",
    )
    @argument("--raw", action="store_true", help="send the rest of the line as a text frame, exactly as typed")
    @argument("--binary", action="store_true", help="the rest of the line is hexadecimal bytes, sent as a binary frame")
    @argument("--base64", action="store_true", help="the rest of the line is base64 data, sent as a binary frame")
    @line_magic
    @_one_line_errors
    def ws_send(self, line: str) -> None:
        """Send a message on a named socket (queued; never blocks on the network).

        Examples::

            %ws_send prices {"op": "subscribe", "symbols": ["ABC"]}
            %ws_send prices {request}
            %ws_send prices {"op": "add", "symbols": {wanted}}
            %ws_send chat --raw hello, world
            %ws_send device --binary 01 02 ff
            %ws_send device --base64 AQL/

        Only what you type is evaluated; received data never is.
        """
        mode, name, message = split_send_line(line)
        conn = api.get(name)
        conn.send(send_value(mode, message, self.namespace))

    # --- lifecycle -------------------------------------------------------------------------------------

    @no_var_expand
    @magic_arguments()
    @argument("name", help="name of the socket")
    @argument("url", nargs="?", help="a new ws:// or wss:// URL to move to; {expr} inserts a value (default: the same URL)")
    @line_magic
    @_one_line_errors
    def ws_reset(self, line: str) -> Any:
        """Reconnect a socket, to a new URL if given, keeping its handlers, frame and counters; returns the Connection."""
        args = _parse(self.ws_reset, line)
        url = expand(args.url, self.namespace, "url")[0] if args.url else None
        api.reset(args.name, url)
        return api.get(args.name)

    @magic_arguments()
    @argument("name", nargs="?", help="name of the socket")
    @argument("--all", action="store_true", help="disconnect every socket")
    @argument("--code", type=int, default=1000, help="close code: 1000, 1001 or 3000-4999 (default: 1000)")
    @argument("--reason", default="", help="close reason (default: empty)")
    @line_magic
    @_one_line_errors
    def ws_disconnect(self, line: str) -> None:
        """Close a socket (or --all) and keep its registration, so %ws_reset can reopen it."""
        args = _parse(self.ws_disconnect, line)
        names = self._names(args, "ws_disconnect")
        for name in names:
            try:
                api.disconnect(name, args.code, args.reason)
            except ValueError as exc:
                raise UsageError(f"%ws_disconnect: {exc}") from None

    @magic_arguments()
    @argument("name", nargs="?", help="name of the socket")
    @argument("--all", action="store_true", help="remove every socket")
    @line_magic
    @_one_line_errors
    def ws_remove(self, line: str) -> None:
        """Disconnect a socket (or --all) and forget it."""
        args = _parse(self.ws_remove, line)
        for name in self._names(args, "ws_remove"):
            api.remove(name)

    def _names(self, args: argparse.Namespace, magic: str) -> list[str]:
        if args.all and args.name:
            raise UsageError(f"%{magic}: give a socket name or --all, not both")
        if args.all:
            return registry().names()
        if not args.name:
            raise UsageError(f"%{magic} needs a socket name (or --all)")
        api.get(args.name)
        return [args.name]

    # --- views -----------------------------------------------------------------------------------------

    @magic_arguments()
    @argument("name", nargs="?", help="only this socket (default: every socket)")
    @argument("--all", action="store_true", help="every column of nbs.connections() (default: the ones that fit a cell)")
    @line_magic
    @_one_line_errors
    def ws_status(self, line: str) -> pd.DataFrame:
        """The status table: one row per socket with state, counters, latency and last error (no secrets).

        It shows the columns that fit a notebook cell (name, state, protocol, url, in, out, errors,
        last_error, latency_ms, last_message_at); ``--all`` shows every column of ``nbs.connections()``.
        """
        args = _parse(self.ws_status, line)
        status = api.connections()
        if args.name:
            api.get(args.name)
            status = status[status["name"] == args.name].reset_index(drop=True)
        return status if args.all else status_summary(status)

    @magic_arguments()
    @argument("name", help="name of the socket")
    @line_magic
    @_one_line_errors
    def ws_test(self, line: str) -> bool:
        """Is the socket open right now? Prints ``open`` or ``closed`` (with its state) and returns True or False.

        Pode's ``Test-PodeWebSocket``: ``if %ws_test prices: ...``. An unknown
        name is an error, not False.
        """
        args = _parse(self.ws_test, line)
        conn = api.get(args.name)
        is_open = api.test(args.name)
        shown = "open" if is_open else "closed" if conn.state == "closed" else f"closed ({conn.state})"
        print(f"{args.name}: {shown}")
        return is_open

    @no_var_expand
    @magic_arguments()
    @argument("name", help="name of the socket whose exploration to save")
    @argument("path", help="the test file to write, e.g. tests/test_echo_saved.py; {expr} inserts a value from the notebook")
    @argument(
        "--ignore",
        action="append",
        default=[],
        metavar="FIELD",
        help="a field the expectations leave out: a name (quote.ts) or a glob (items.*.ts); repeatable (default: none)",
    )
    @argument(
        "--propose-ignore",
        action="store_true",
        help="first replay the exploration on a new socket to the same server and leave out the fields that changed too",
    )
    @line_magic
    @_one_line_errors
    def ws_save_test(self, line: str) -> Any:
        """Write a socket's exploration as a pytest file: its connect, each message sent, an expect for each reply.

        The file reads its URL and every secret from environment variables it
        names (printed here); nothing secret is written. Run it with
        ``pytest PATH`` (the ws fixture comes with nbsocket). Example::

            %ws_save_test echo tests/test_echo_saved.py --ignore ts --ignore id
        """
        args = _parse(self.ws_save_test, line)
        path, _ = expand(args.path, self.namespace, "path")
        ignore = list(args.ignore)
        if args.propose_ignore:
            proposed = api.propose_ignore(args.name)
            print("fields that changed when replayed: " + (", ".join(proposed) or "none"))
            ignore += [field for field in proposed if field not in ignore]
        saved = api.save_test(args.name, path, ignore)
        print(f"wrote {saved.path} (run it with: pytest {saved.path}); it reads from the environment:")
        for variable, description in saved.environment.items():
            print(f"  {variable}: {description}")
        return saved

    @magic_arguments()
    @argument("name", nargs="?", help="name of the socket (default: every socket, merged by time)")
    @argument("--tail", type=int, default=None, metavar="N", help="only the last N rows (default: all rows)")
    @line_magic
    @_one_line_errors
    def ws_frame(self, line: str) -> pd.DataFrame:
        """A snapshot of a socket's live DataFrame: ``df = %ws_frame prices``."""
        args = _parse(self.ws_frame, line)
        frame = api.frame(args.name)
        if args.tail is not None:
            if args.tail < 0:
                raise UsageError("%ws_frame: --tail takes a number of rows >= 0")
            frame = frame.tail(args.tail).reset_index(drop=True)
        return frame

    @magic_arguments()
    @argument("name", nargs="?", help="name of the socket (default: a dashboard of every socket)")
    @_chart_arguments
    @line_magic
    @_one_line_errors
    def ws_panel(self, line: str) -> Any:
        """A live widget panel for a socket (or a dashboard of all): state, counters, latest rows, a chart, Send/Reset/Disconnect.

        The chart splits its lines by a column such as ``symbol`` by itself;
        ``--by``, ``--y`` and ``--window`` choose instead::

            %ws_panel prices --by symbol --y price --window 300
            %ws_panel prices --engine svg
        """
        args = _parse(self.ws_panel, line)
        chart = _chart_options(args)
        if not args.name:
            if chart:
                raise UsageError("%ws_panel: --by, --y, --window and --engine need a socket name (the dashboard has no chart)")
            return self._widget("ws_panel", api.dashboard)
        api.get(args.name)
        return self._widget("ws_panel", api.panel, args.name, **chart)

    @magic_arguments()
    @argument("name", help="name of the socket")
    @argument(
        "--x", default="timestamp", metavar="COLUMN", help="the x axis: timestamp, seq or a numeric column (default: timestamp)"
    )
    @_chart_arguments
    @line_magic
    @_one_line_errors
    def ws_plot(self, line: str) -> Any:
        """A live line chart of a socket's numeric columns, one line per value of a column such as ``symbol``.

        Example: ``%ws_plot prices --y price --by symbol --window 300``; ``--x seq``
        puts the message number on the x axis instead of the time of receipt.
        """
        args = _parse(self.ws_plot, line)
        api.get(args.name)
        return self._widget("ws_plot", api.plot, args.name, x=args.x, **_chart_options(args))

    @staticmethod
    def _widget(magic: str, make: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return make(*args, **kwargs)
        except ImportError as exc:
            raise UsageError(f"%{magic} needs nbsocket's widgets, which could not be loaded ({exc})") from None
        except ValueError as exc:
            raise UsageError(f"%{magic}: {exc}") from None

    # --- waiting and handlers ------------------------------------------------------------------------------

    @magic_arguments()
    @argument("name", help="name of the socket")
    @argument("-n", "--count", type=int, default=None, help=f"messages to wait for ({_default('wait_count')})")
    @argument(
        "--timeout",
        type=optional_number(float),
        default=argparse.SUPPRESS,
        metavar="S|none",
        help=f"seconds to wait before giving up; none waits until interrupted ({_default('wait_timeout')})",
    )
    @line_magic
    @_one_line_errors
    def ws_wait(self, line: str) -> pd.DataFrame:
        """Block until COUNT more messages arrive and return them as a DataFrame (timestamp, socket, seq, fields).

        A progress bar counts them in a notebook; Ctrl-C (interrupt the kernel)
        stops waiting and leaves the socket open. ``rows = %ws_wait prices -n 5``.
        """
        args = _parse(self.ws_wait, line)
        count = self.settings.wait_count if args.count is None else args.count
        if count < 1:
            raise UsageError("%ws_wait: -n/--count takes a number of messages >= 1")
        timeout = args.timeout if hasattr(args, "timeout") else self.settings.wait_timeout
        conn = api.get(args.name)
        progress = ProgressBar(count, args.name, enabled=self.settings.progress and frontend_present(self.shell))
        return events_frame(wait_for_messages(conn, count, timeout, progress))

    @magic_arguments()
    @argument("name", help="name of the socket")
    @argument(
        "-k",
        "--key",
        default=None,
        help="name of this handler; a cell with another key adds a second handler (default: the socket's name)",
    )
    @argument("--remove", action="store_true", help="remove the handler instead (as a line magic: %%ws_handler NAME --remove)")
    @line_cell_magic
    @_one_line_errors
    def ws_handler(self, line: str, cell: str | None = None) -> None:
        """Run the cell's body for every message on a socket, with ``event`` bound to the WsEvent.

        The body sees the notebook's variables (``global x`` rebinds one) and
        may ``return`` early; with ``await`` in it, it runs as an async handler.
        Re-running the cell replaces the handler; a cell of only comments, or
        ``%ws_handler NAME --remove``, removes it. A syntax error is reported
        when the cell runs, not once per message; errors raised per message
        land in ``conn.errors``. Example::

            %%ws_handler prices
            if event.data["price"] > limit:
                alerts.append(event.data)
        """
        args = _parse(self.ws_handler, line)
        conn = api.get(args.name)
        key = CELL_KEY + (args.key or args.name)
        if args.remove or (cell is not None and not has_body(cell)):
            conn.remove_handler(key)
            return
        if cell is None:
            raise UsageError(
                f"%ws_handler is a cell magic: put %%ws_handler {args.name} on the first line of a cell and the "
                f"handler's code below it (or use %ws_handler {args.name} --remove)"
            )
        conn.on_message(compile_handler(cell, args.name, self.namespace), key=key)


def load_ipython_extension(ipython: Any) -> None:
    """Register the ``%ws_*`` magics and the ``NbSocket`` configurable on ``ipython``."""
    if NbSocketMagics.__name__ in ipython.magics_manager.registry:
        return
    magics = NbSocketMagics(ipython)
    ipython.register_magics(magics)
    ipython.register_magics(ProtocolMagics(ipython))
    ipython.configurables.append(magics.settings)
    install_magic_suggestions(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Close every socket, stop the loop thread, and take the magics away again."""
    try:
        uninstall_magic_suggestions(ipython)
        registry().shutdown()
    finally:
        for magics in (
            ipython.magics_manager.registry.pop(ProtocolMagics.__name__, None),
            ipython.magics_manager.registry.pop(NbSocketMagics.__name__, None),
        ):
            if magics is None:
                continue
            for kind, names in magics.magics.items():
                table = ipython.magics_manager.magics.get(kind, {})
                for name in names:
                    if getattr(table.get(name), "__self__", None) is magics:
                        del table[name]
            settings = getattr(magics, "settings", None)
            if settings is not None and settings in ipython.configurables:
                ipython.configurables.remove(settings)
