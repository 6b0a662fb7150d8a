"""The protocol verbs as magics: ``%ws_emit``, ``%ws_call``, ``%ws_subscribe``, and ``%ws_connect``'s protocol options.

``%ws_connect NAME URL --protocol socketio --namespace /chat --auth '{"token": "{tok}"}'`` connects a
protocol socket; ``--passcode {var}``, ``--auth`` and ``--init-payload`` values are secrets (masked wherever
shown). The verbs act on a protocol socket by name::

    %ws_emit chat message {"text": "hi"}
    %ws_call node add [1, 2] --timeout 5
    %ws_subscribe api "subscription { ticks { n } }"
"""

from __future__ import annotations

import argparse
import io
import re
import shlex
from collections.abc import Mapping
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand

from .. import api
from ..core.redact import add_secrets, scrub
from ..errors import NbSocketError
from .arguments import MagicT, argument, magic_arguments
from .line_input import expand, parse_literal

__all__ = ["PROTOCOL_FLAGS", "ProtocolMagics", "protocol_arguments", "protocol_options"]

PROTOCOL_FLAGS: dict[str, tuple[str, str]] = {
    # connect option: (kind, help)
    "namespace": ("text", "socketio: the namespace to join (default: /)"),
    "auth": ("json", "socketio: the CONNECT auth, JSON; {var} allowed; a secret"),
    "path": ("text", "socketio: the Engine.IO endpoint path (default: /socket.io/)"),
    "init_payload": ("json", "graphql-ws: the connection_init payload, JSON; {var} allowed; a secret"),
    "keepalive": ("float", "graphql-ws: seconds between client pings (legacy: longest wait for the server's ka)"),
    "login": ("text", "stomp: the login header; {var} allowed"),
    "passcode": ("secret", "stomp: the passcode header; use {var}; a secret"),
    "host": ("text", "stomp: the virtual host (default: /)"),
    "heartbeat": ("pair", "stomp: 'CX,CY' heart-beat ms we send, ms we want (default: 10000,10000)"),
    "ack": ("text", "stomp: default ack mode of subscriptions: auto, client, client-individual"),
}
"""The protocol options ``%ws_connect`` takes, each as ``--name-with-dashes`` (checked against core.options by a test)."""


def protocol_arguments(magic: MagicT) -> MagicT:
    """Add ``--protocol`` and every protocol option to a magic's arguments."""
    for name, (kind, help_text) in reversed(list(PROTOCOL_FLAGS.items())):
        magic = argument("--" + name.replace("_", "-"), default=None, metavar=kind.upper(), help=help_text)(magic)
    return argument(
        "--protocol",
        default=None,
        metavar="NAME",
        help="speak an application protocol: socketio, graphql-ws, graphql-ws-legacy, jsonrpc, stomp (default: plain WebSocket)",
    )(magic)


def protocol_options(args: argparse.Namespace, ns: Mapping[str, Any]) -> dict[str, Any]:
    """The ``connect`` keywords for the protocol options given on the line (``{var}`` expanded; secrets noted)."""
    options: dict[str, Any] = {}
    if args.protocol is not None:
        options["protocol"] = args.protocol
    for name, (kind, _) in PROTOCOL_FLAGS.items():
        text = getattr(args, name, None)
        if text is None:
            continue
        if kind == "json":
            value = parse_literal(text, ns)
        elif kind == "float":
            try:
                value = float(text)
            except ValueError:
                raise UsageError(f"--{name.replace('_', '-')} takes a number of seconds, not {text!r}") from None
        elif kind == "pair":
            try:
                value = tuple(int(part) for part in text.split(","))
            except ValueError:
                raise UsageError(f"--{name} takes two integers 'CX,CY', not {text!r}") from None
        else:
            value, substituted = expand(text, ns, "--" + name)
            if kind == "secret" or (substituted and name == "login"):
                add_secrets([value] if kind == "secret" else substituted)
        options[name] = value
    return options


def _payload(words: list[str], ns: Mapping[str, Any]) -> list[Any]:
    text = " ".join(words).strip()
    if not text:
        return []
    return [parse_literal(text, ns)]


@magics_class
class ProtocolMagics(Magics):
    """``%ws_emit``, ``%ws_call`` and ``%ws_subscribe``."""

    @property
    def namespace(self) -> dict[str, Any]:
        return self.shell.user_ns if self.shell is not None else {}

    def _conn(self, name: str, verb: str) -> Any:
        conn = api.get(name)
        if not hasattr(conn, "protocol"):
            raise UsageError(
                f"%ws_{verb}: socket {name!r} speaks plain WebSocket; connect it with --protocol ... (or use %ws_send)"
            )
        return conn

    @no_var_expand
    @magic_arguments()
    @argument("name", help="name of a protocol socket (socketio)")
    @argument("event", help="the event name")
    @argument("data", nargs="*", help="the event's argument: JSON or a Python literal; {var} inserts a value (default: none)")
    @line_magic
    def ws_emit(self, line: str) -> None:
        """Emit a Socket.IO event: ``%ws_emit chat message {"text": "hi"}``."""
        args = self.ws_emit.parser.parse_args(_split(line))
        try:
            self._conn(args.name, "emit").emit(args.event, *_payload(args.data, self.namespace))
        except NbSocketError as exc:
            raise UsageError(scrub(f"%ws_emit: {exc}")) from None

    @no_var_expand
    @magic_arguments()
    @argument("name", help="name of a protocol socket (socketio, graphql-ws, jsonrpc, stomp)")
    @argument("target", help="the event (socketio), query (graphql-ws, quoted) or method (jsonrpc)")
    @argument("data", nargs="*", help="argument(s): JSON or a Python literal (jsonrpc params, graphql variables)")
    @argument("--timeout", type=float, default=10.0, metavar="S", help="seconds to wait for the reply (default: 10)")
    @line_magic
    def ws_call(self, line: str) -> Any:
        """Call and return the reply: ``%ws_call node add [1, 2]``, ``%ws_call api "query { hello }"``."""
        args = self.ws_call.parser.parse_args(_split(line))
        try:
            return self._conn(args.name, "call").call(args.target, *_payload(args.data, self.namespace), timeout=args.timeout)
        except NbSocketError as exc:
            raise UsageError(scrub(f"%ws_call: {type(exc).__name__}: {exc}")) from None

    @no_var_expand
    @magic_arguments()
    @argument("name", help="name of a protocol socket (graphql-ws, stomp)")
    @argument("topic", help="the subscription query (graphql-ws, quoted) or destination (stomp)")
    @argument("data", nargs="*", help="graphql variables as JSON (default: none)")
    @line_magic
    def ws_subscribe(self, line: str) -> Any:
        """Subscribe and return the Subscription: ``%ws_subscribe mq /topic/prices``."""
        args = self.ws_subscribe.parser.parse_args(_split(line))
        try:
            return self._conn(args.name, "subscribe").subscribe(args.topic, *_payload(args.data, self.namespace))
        except NbSocketError as exc:
            raise UsageError(scrub(f"%ws_subscribe: {exc}")) from None


def _split(line: str, head: int = 2) -> list[str]:
    """The first ``head`` words (shell quoting, so a quoted query is one word), then the rest of the line as typed."""
    timeout: list[str] = []
    match = re.search(r"\s--timeout[ =](\S+)\s*$", line)
    if match:
        timeout, line = ["--timeout", match.group(1)], line[: match.start()]
    if re.fullmatch(r"\s*(-h|--help)\s*", line):
        return ["-h"]
    stream = io.StringIO(line)
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    try:
        tokens = [lexer.get_token() for _ in range(head)]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    words = [w for w in tokens if w is not None]
    rest = stream.read().strip()  # what the lexer has not read
    return [*words, *([rest] if rest else []), *timeout]
