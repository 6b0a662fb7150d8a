"""Reading what a user typed on a magic's line: ``{expr}`` templates, headers, and the message of ``%ws_send``.

Only text typed into the notebook is ever evaluated here; received data never is.
"""

from __future__ import annotations

import argparse
import ast
import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from IPython.core.error import UsageError

from ..core.options import CONNECT_OPTIONS, option
from ..core.redact import scrub
from ..errors import InvalidOptionError

__all__ = [
    "SEND_MODES",
    "evaluate",
    "expand",
    "flag_spec",
    "flagged_options",
    "lookup_callable",
    "optional_number",
    "parse_headers",
    "parse_literal",
    "send_value",
    "split_send_line",
]


_TOKEN = re.compile(r"\s*(\S+)")
_TEMPLATE_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_JSON_NAMES = {"true": True, "false": False, "null": None}

SEND_MODES = {"--raw": "raw", "--binary": "binary", "--base64": "base64"}
"""``%ws_send`` flags that say how to read the message."""


def evaluate(expression: str, namespace: Mapping[str, Any], where: str) -> Any:
    """Evaluate one Python expression typed in a magic, in the user namespace."""
    try:
        code = compile(expression.strip(), f"<{where}>", "eval")
    except SyntaxError as exc:
        raise UsageError(f"{where}: {{{expression}}} is not a Python expression ({exc.msg})") from None
    try:
        return eval(code, dict(namespace) if not isinstance(namespace, dict) else namespace)
    except Exception as exc:
        raise UsageError(scrub(f"{where}: evaluating {{{expression}}} failed: {type(exc).__name__}: {exc}")) from None


def expand(text: str, namespace: Mapping[str, Any], where: str) -> tuple[str, list[str]]:
    """Replace each ``{expr}`` in ``text`` by its value from the user namespace (``{{``/``}}`` for braces).

    Returns the expanded text and the substituted values (which callers may treat as secrets).
    """
    values: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole in ("{{", "}}"):
            return whole[0]
        expression = match.group(1)
        if not expression.strip():
            raise UsageError(f"{where}: empty {{}} in {scrub(text)!r}; write {{{{}}}} for literal braces")
        value = str(evaluate(expression, namespace, where))
        values.append(value)
        return value

    return _TEMPLATE_FIELD.sub(substitute, text), values


def parse_headers(specs: list[str] | None, namespace: Mapping[str, Any]) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """``-H "Name: value"`` options as ``(headers, secret_header_names, secret_values)``.

    A header whose value takes a ``{var}`` from the namespace counts as secret:
    its value is masked wherever nbsocket shows it.
    """
    headers: list[tuple[str, str]] = []
    secret_names: list[str] = []
    secret_values: list[str] = []
    for spec in specs or ():
        name, sep, raw_value = spec.partition(":")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"-H/--header takes 'Name: value', not {scrub(spec)!r}")
        value, substituted = expand(raw_value.strip(), namespace, f"header {name}")
        if substituted:
            secret_names.append(name)
            secret_values.extend(v for v in substituted if v)
        headers.append((name, value))
    return headers, secret_names, secret_values


def lookup_callable(spec: str, namespace: Mapping[str, Any], option: str) -> Any:
    """The function a ``--handler NAME`` style option names (``name`` or ``module.attr`` in the namespace)."""
    first, *rest = spec.split(".")
    if first not in namespace:
        raise UsageError(f"{option} {spec}: nothing named {first!r} in the notebook; define the function first")
    target = namespace[first]
    for attr in rest:
        try:
            target = getattr(target, attr)
        except AttributeError:
            raise UsageError(f"{option} {spec}: {first!r} has no attribute {attr!r}") from None
    if not callable(target):
        raise UsageError(f"{option} {spec}: {spec!r} is a {type(target).__name__}, not a function")
    return target


def optional_number(kind: type) -> Any:
    """An argparse ``type`` for numbers that also takes ``none`` (meaning no limit)."""

    def convert(text: str) -> Any:
        if text.strip().lower() in ("none", "off", "inf"):
            return None
        try:
            return kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what} or 'none', not {text!r}") from None

    convert.__name__ = kind.__name__
    return convert


_ACTIONS = {"append": "append", "switch": "store_true", "toggle": argparse.BooleanOptionalAction}


def flag_spec(name: str, default_note: str | None = None) -> tuple[tuple[str, ...], dict[str, Any]]:
    """``(flags, add_argument keywords)`` of the ``connect`` option ``name``'s ``%ws_connect`` flag, from its declaration.

    The value lands in ``args.<name>`` only when the flag is given (``default_note``, e.g. where the
    default comes from, ends the help in parentheses).
    """
    opt = option(name)
    if opt.flag is None:
        raise InvalidOptionError(f"{name} has no %ws_connect flag")
    spec: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": opt.flag.help}
    if default_note:
        spec["help"] += f" ({default_note})"
    if opt.flag.action is not None:
        spec["action"] = _ACTIONS[opt.flag.action]
    elif opt.kind in (int, float):
        spec["type"] = optional_number(opt.kind) if opt.none else opt.kind
    if opt.flag.metavar is not None:
        spec["metavar"] = opt.flag.metavar
    return opt.flag.names, spec


def flagged_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``connect`` options given as flags on a magic's line (see :func:`flag_spec`)."""
    return {o.name: getattr(args, o.name) for o in CONNECT_OPTIONS if o.flag is not None and hasattr(args, o.name)}


# --- %ws_send -------------------------------------------------------------------------------


def split_send_line(line: str) -> tuple[str, str, str]:
    """Split ``%ws_send [--raw|--binary|--base64] NAME [--raw|...] MESSAGE`` into ``(mode, name, message)``.

    The message is the rest of the line exactly as typed (not shell-split), so
    JSON keeps its quotes.
    """
    rest = line
    mode: str | None = None
    while True:
        match = _TOKEN.match(rest)
        if match is None:
            raise UsageError("%ws_send needs a socket name and a message: %ws_send NAME MESSAGE")
        token = match.group(1)
        rest = rest[match.end() :]
        if token in SEND_MODES:
            if mode is not None:
                raise UsageError("%ws_send takes only one of --raw, --binary and --base64")
            mode = SEND_MODES[token]
            continue
        if token.startswith("-"):
            raise UsageError(f"%ws_send: unknown option {token!r}; use --raw, --binary or --base64 (see %ws_send?)")
        name = token
        break
    if mode is None:
        match = _TOKEN.match(rest)
        if match is not None and match.group(1) in SEND_MODES:
            mode = SEND_MODES[match.group(1)]
            rest = rest[match.end() :]
    message = rest.lstrip()
    if not message.strip():
        raise UsageError(f"%ws_send {name}: nothing to send; give a message after the name")
    return mode or "literal", name, message


def send_value(mode: str, message: str, namespace: Mapping[str, Any]) -> Any:
    """What ``%ws_send`` sends for ``message`` read in ``mode`` (``literal``, ``raw``, ``binary`` or ``base64``)."""
    if mode == "raw":
        return message
    if mode == "binary":
        text = message.strip()
        if text[:2].lower() == "0x":
            text = text[2:]
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise UsageError("--binary takes hexadecimal bytes, e.g. --binary 'de ad be ef'") from None
    if mode == "base64":
        text = "".join(message.split()).replace("-", "+").replace("_", "/")  # the URL-safe alphabet too
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise UsageError("--base64 takes base64 data, e.g. --base64 aGVsbG8=") from None
    return parse_literal(message, namespace)


def parse_literal(text: str, namespace: Mapping[str, Any]) -> Any:
    """A JSON value or Python literal; ``{expr}`` anywhere in it is evaluated in ``namespace``.

    ``{"op": "subscribe"}`` is a dict, ``{payload}`` is the value of ``payload``,
    ``{"op": "add", "items": {items}}`` mixes both.
    """
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise UsageError(
            f"%ws_send: the message is not JSON or a Python literal ({exc.msg}); "
            "use --raw to send the text as is, or {expression} to send a value from the notebook"
        ) from None
    return _Literal(namespace).value(tree.body)


class _Literal:
    """Evaluates a literal's syntax tree, treating ``{expr}`` (a one-element set) as an expression."""

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        self.namespace = namespace

    def value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Dict):
            if any(key is None for key in node.keys):
                raise UsageError("%ws_send: ** inside a message dict is not supported; use {expression} for the whole message")
            return {self.value(k): self.value(v) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
        if isinstance(node, ast.List):
            return [self.value(item) for item in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(self.value(item) for item in node.elts)
        if isinstance(node, ast.Set):
            if len(node.elts) == 1:
                return self.expression(node.elts[0])
            raise UsageError("%ws_send: {a, b} is a set, which cannot be sent; write a list [a, b], or {(a, b)} for a tuple")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) and isinstance(node.operand, ast.Constant):
            operand = node.operand.value
            if isinstance(operand, (int, float, complex)) and not isinstance(operand, bool):
                return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.Name) and node.id in _JSON_NAMES:
            return _JSON_NAMES[node.id]
        if isinstance(node, ast.JoinedStr):
            return self.expression(node)
        shown = ast.unparse(node)
        raise UsageError(
            f"%ws_send: {shown!r} is not a literal; write {{{shown}}} to send its value from the notebook, "
            "or use --raw to send the text as is"
        )

    def expression(self, node: ast.expr) -> Any:
        tree = ast.Expression(body=node)
        ast.fix_missing_locations(tree)
        source = ast.unparse(node)
        try:
            code = compile(tree, "<%ws_send>", "eval")
        except SyntaxError as exc:
            raise UsageError(f"%ws_send: {{{source}}} is not an expression ({exc.msg})") from None
        namespace = self.namespace if isinstance(self.namespace, dict) else dict(self.namespace)
        try:
            return eval(code, namespace)
        except Exception as exc:
            raise UsageError(scrub(f"%ws_send: evaluating {{{source}}} failed: {type(exc).__name__}: {exc}")) from None
