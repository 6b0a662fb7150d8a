"""An exploration written down as a pytest file: the pure part of ``save_test``.

The runtime gathers an :class:`Exploration` from a socket (its URL, options,
transcript, and for a protocol socket its :class:`ProtocolStep` log). Here it
becomes steps (:func:`plan`: sends, expected replies with a time bound, protocol
verbs, calls with their results) and the steps become the text of a test file
(:func:`render`) that uses the ``ws`` fixture of nbsocket's pytest plugin.

No secret is ever written. The URL is read from an environment variable
(default: the recorded URL, its secret parts as ``${VARIABLE}``), and every secret
the socket knows (URL credentials and token-like query values, secret headers,
``secrets=``, a protocol's secret options) becomes an environment variable the
file names and reads with ``ws.secret("NAME")``, wherever it appears, messages
included. Whatever other secret nbsocket knows is masked (``***``) as a last
resort, and the file says so.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import keyword
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from ..errors import InvalidOptionError
from .codecs import get_codec
from .compare import is_ignored, leaf_fields, leaves, same_value
from .options import ConnectOptions
from .protocols import get_protocol
from .redact import MASK, is_secret_name, redact_url, scrub
from .transcript_entries import EVENT, RECEIVED, SENT, Entry

__all__ = [
    "MAX_EXPECTED_IN_A_ROW",
    "MIN_WITHIN",
    "WITHIN_FACTOR",
    "Call",
    "Expect",
    "Exploration",
    "Note",
    "ProtocolStep",
    "SavedTest",
    "Send",
    "Step",
    "Subscribe",
    "Verb",
    "bound",
    "differing_fields",
    "environment_prefix",
    "ignore_patterns",
    "kept_fields",
    "plan",
    "render",
]

MIN_WITHIN = 2.0
"""The least time bound a saved expectation gets, in seconds (a loaded CI machine is slower than a notebook)."""
MAX_EXPECTED_IN_A_ROW = 100
"""The most messages received one after another (nothing sent between) a saved test expects one by one: of a longer
run (a feed), the first ones and the last are expected, the rest said in a comment."""
WITHIN_FACTOR = 5.0
"""A saved expectation's bound is this many times the round trip observed while exploring (at least :data:`MIN_WITHIN`)."""

WRITTEN_OPTIONS = (
    "content_type",
    "subprotocols",
    "origin",
    "user_agent",
    "insecure",
    "proxy",
    "open_timeout",
    "ping_interval",
    "ping_timeout",
    "close_timeout",
    "max_size",
    "max_queue",
    "compression",
    "secret_headers",
)
"""The ``connect`` options a saved test repeats when they differ from the default (and ``reconnect=False``); ``ssl``,
``record``, a reconnect policy and the live frame's options do not belong in a test."""


class ProtocolStep(NamedTuple):
    """One thing that happened on a protocol socket, as the runtime's protocol log records it.

    ``kind`` is a verb (``emit``, ``notify``, ``publish``, ``call``, ``subscribe``, ``unsubscribe``) with its
    ``args`` and ``kwargs``, or ``event``: a message received, with its ``topic`` in ``name``, its data in
    ``outcome`` and its ``seq``. A call's ``outcome`` is ``("result", value)`` or ``("error", text)`` and
    ``duration`` its round trip in seconds; a subscription's ``outcome`` is its topic, ``name`` its id.
    """

    ts_ns: int
    kind: str
    name: Any = None
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = {}
    outcome: Any = None
    seq: int | None = None
    duration: float | None = None


@dataclasses.dataclass(frozen=True)
class Exploration:
    """What ``save_test`` writes a test from: a socket's name, real URL (never written as is), options and history."""

    socket: str
    url: str = dataclasses.field(repr=False)
    options: ConnectOptions
    entries: list[Entry] = dataclasses.field(repr=False)
    protocol_steps: list[ProtocolStep] | None = dataclasses.field(default=None, repr=False)

    def __repr__(self) -> str:
        steps = "" if self.protocol_steps is None else f", {len(self.protocol_steps)} protocol steps"
        return f"<Exploration {self.socket!r} {redact_url(self.url)}: {len(self.entries)} transcript entries{steps}>"


# --- steps ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Send:
    """Send ``payload`` (as recorded); ``message`` is what it decodes to when re-encoding gives the same text."""

    payload: str | bytes
    message: Any = None
    decoded: bool = False


@dataclasses.dataclass(frozen=True)
class Expect:
    """A message that arrived: its ``data`` (``decoded``), or its ``body`` when it does not decode; a protocol
    message's ``topic`` (``subscription`` names the :class:`Subscribe` it belongs to); ``within`` its time bound."""

    body: str | bytes | None
    data: Any
    decoded: bool
    within: float
    topic: str | None = None
    subscription: str | None = None


@dataclasses.dataclass(frozen=True)
class Verb:
    """A protocol verb without a reply: ``emit``, ``notify``, ``publish``, ``unsubscribe``."""

    kind: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    subscription: str | None = None


@dataclasses.dataclass(frozen=True)
class Call:
    """A protocol call and what it returned (``outcome``: ``("result", value)`` or ``("error", text)``)."""

    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    outcome: Any
    timeout: float


@dataclasses.dataclass(frozen=True)
class Subscribe:
    """A subscription, named ``variable`` in the test; its messages are the :class:`Expect` steps that name it."""

    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    variable: str


@dataclasses.dataclass(frozen=True)
class Note:
    """A line of comment: something the test does not repeat (a reconnect, a close)."""

    text: str


Step = Send | Expect | Verb | Call | Subscribe | Note


def bound(observed_s: float) -> float:
    """A saved expectation's time bound for a round trip of ``observed_s`` seconds: :data:`WITHIN_FACTOR` times it,
    at least :data:`MIN_WITHIN`, rounded up to two significant digits."""
    value = max(MIN_WITHIN, WITHIN_FACTOR * max(0.0, observed_s))
    magnitude: float = 10 ** (math.floor(math.log10(value)) - 1)
    return round(math.ceil(value / magnitude - 1e-9) * magnitude, 6)


def plan(exploration: Exploration) -> list[Step]:
    """The steps of the test: from the protocol log for a protocol socket, from the transcript otherwise; a long run
    of messages received one after another is shortened (:data:`MAX_EXPECTED_IN_A_ROW`)."""
    if exploration.protocol_steps is not None:
        steps = _protocol_plan(exploration.protocol_steps, exploration.entries)
    else:
        steps = _transcript_plan(exploration.entries, exploration.options.content_type)
    return _shorten_runs(steps, MAX_EXPECTED_IN_A_ROW)


def _shorten_runs(steps: list[Step], most: int) -> list[Step]:
    """Each run of more than ``most`` expectations in a row as its first ``most - 1``, a note, and its last (an
    ``expect`` skips what does not match, so the last one still checks that the feed went on to its end)."""
    shortened: list[Step] = []
    run: list[Expect] = []

    def end_run() -> None:
        if len(run) > most:
            shortened.extend(run[: most - 1])
            shortened.append(
                Note(f"{len(run) - most} more message(s) like these arrived while exploring; the test expects the last of them")
            )
            shortened.append(run[-1])
        else:
            shortened.extend(run)
        run.clear()

    for step in steps:
        if isinstance(step, Expect):
            run.append(step)
            continue
        end_run()
        shortened.append(step)
    end_run()
    return shortened


def _transcript_plan(entries: list[Entry], content_type: str) -> list[Step]:
    codec = _codec(content_type)
    if not entries:
        raise InvalidOptionError("the transcript is empty: nothing to save (was it cleared or turned off?)")
    opened = next((i for i, e in enumerate(entries) if e.direction == EVENT and e.kind in ("open", "reconnect")), None)
    steps: list[Step] = []
    if opened is None:  # the bound dropped the opening: start at the first message sent of what is kept
        steps.append(Note("the transcript's oldest entries, the opening among them, were dropped (its bound): it starts here"))
        opened = next((i for i, e in enumerate(entries) if e.direction == SENT), len(entries)) - 1
    reference = entries[max(opened, 0)].ts_ns
    for entry in entries[opened + 1 :]:
        if entry.direction == SENT and entry.body is not None:
            steps.append(_send(entry.body, codec))
            reference = entry.ts_ns
        elif entry.direction == RECEIVED and entry.seq is not None and entry.body is not None:
            data, decoded = _decode(entry.body, codec, entry.error)
            steps.append(Expect(entry.body, data, decoded, bound((entry.ts_ns - reference) / 1e9)))
        elif entry.direction == EVENT and entry.kind in ("reconnect", "reset", "close", "failed"):
            detail = f" ({entry.code}{' ' + repr(entry.reason) if entry.reason else ''})" if entry.code is not None else ""
            steps.append(Note(f"while exploring, the socket's connection had a {entry.kind}{detail} here"))
    return steps


def _protocol_plan(records: list[ProtocolStep], entries: list[Entry]) -> list[Step]:
    opened = next((e.ts_ns for e in entries if e.direction == EVENT and e.kind in ("open", "reconnect")), None)
    reference = opened if opened is not None else (records[0].ts_ns if records else 0)
    steps: list[Step] = []
    subscriptions: dict[Any, str] = {}  # topic -> the variable of its subscription
    by_id: dict[Any, str] = {}
    for record in records:
        if record.kind == "event":
            data = record.outcome
            steps.append(
                Expect(None, data, True, bound((record.ts_ns - reference) / 1e9), record.name, subscriptions.get(record.name))
            )
        elif record.kind == "call":
            reference = record.ts_ns
            steps.append(Call(tuple(record.args), dict(record.kwargs), record.outcome, bound(record.duration or 0.0)))
        elif record.kind == "subscribe":
            reference = record.ts_ns
            variable = f"sub{len(subscriptions) + 1}"
            subscriptions[record.outcome] = variable
            by_id[record.name] = variable
            steps.append(Subscribe(tuple(record.args), dict(record.kwargs), variable))
        elif record.kind == "unsubscribe":
            reference = record.ts_ns
            steps.append(Verb("unsubscribe", (), {}, by_id.get(record.name)))
        else:
            reference = record.ts_ns
            steps.append(Verb(record.kind, tuple(record.args), dict(record.kwargs)))
    return steps


def _codec(content_type: str) -> Any:
    try:
        return get_codec(content_type)
    except ValueError:
        return get_codec("application/json")


def _send(body: str | bytes, codec: Any) -> Send:
    if isinstance(body, str):
        try:
            message = codec.decode(body)
            if isinstance(message, (dict, list)) and codec.encode(message) == body:
                return Send(body, message, True)
        except Exception:
            pass
    return Send(body)


def _decode(body: str | bytes, codec: Any, error: str | None) -> tuple[Any, bool]:
    if error is not None:
        return None, False
    try:
        return codec.decode(body), True
    except Exception:
        return None, False


def kept_fields(data: Any, ignore: tuple[str, ...], *, split: bool = True) -> list[tuple[tuple[Any, ...], Any]]:
    """The fields of ``data`` a check keeps, as ``(path, value)``: whole values where nothing inside is ignored, and
    inside a dict or list only where something is (so ``{"quote": {...}}`` stays one field). ``split`` takes the
    top level apart even when nothing is ignored (an ``expect`` matches fields, not a whole message)."""

    def walk(path: tuple[Any, ...], value: Any) -> list[tuple[tuple[Any, ...], Any]]:
        if path and is_ignored(_dotted(path), ignore):
            return []
        if not isinstance(value, (dict, list)) or not value:
            return [(path, value)]
        inside = any(is_ignored(_dotted((*path, *inner)), ignore) for inner, _ in leaves(value))
        if inside or (split and not path):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            return [found for key, item in items for found in walk((*path, key), item)]
        return [(path, value)]

    return walk((), data)


def differing_fields(recorded: Any, replayed: Any) -> set[str]:
    """The dotted names of the leaf fields whose values differ between two messages (or exist in one only);
    ``data`` when either is not a dict or list."""
    a, b = leaf_fields(recorded), leaf_fields(replayed)
    return {name for name in {**a, **b} if name not in a or name not in b or not same_value(a[name], b[name])}


def ignore_patterns(names: Iterable[str]) -> tuple[str, ...]:
    """Field names as ``ignore`` patterns: where one field differs in several items of a list (``items.0.ts``,
    ``items.1.ts``), one pattern stands for all of them (``items.*.ts``)."""
    names = sorted(set(names))
    groups: dict[str, set[str]] = {}
    for name in names:
        groups.setdefault(re.sub(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.)", "*", name), set()).add(name)
    found: list[str] = []
    for pattern, members in groups.items():
        found.extend([pattern] if len(members) > 1 else members)
    return tuple(sorted(found))


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in path)


# --- secrets as environment variables -----------------------------------------------------------


def environment_prefix(socket: str) -> str:
    """The prefix of a saved test's environment variables: ``NBS_`` and the socket's name, e.g. ``NBS_ECHO``."""
    return "NBS_" + re.sub(r"[^A-Za-z0-9]+", "_", socket).strip("_").upper()


class _Secrets:
    """The socket's secret values and the code that reads each from the environment (longest values first)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.variables: dict[str, str] = {}  # variable -> what it holds, for the file's docstring
        self._code: dict[str, str] = {}  # value -> expression
        self._plain: dict[str, str] = {}  # value -> variable, for values read whole (a URL's ${VARIABLE})

    def variable(self, suffix: str, description: str) -> str:
        name = f"{self.prefix}_{re.sub(r'[^A-Za-z0-9]+', '_', suffix).strip('_').upper()}"
        base, n = name, 1
        while name in self.variables:
            n += 1
            name = f"{base}_{n}"
        self.variables[name] = description
        return name

    def add(self, value: str, suffix: str, description: str) -> str | None:
        """Read ``value`` from a new variable (unless it is known already); returns the variable."""
        if len(value) < 3:
            return None
        if value in self._plain:
            return self._plain[value]
        name = self.variable(suffix, description)
        self._plain[value] = name
        self._code[value] = f"ws.secret({_literal(name)})"
        return name

    def add_expression(self, value: Any, code: str) -> None:
        if isinstance(value, str) and len(value) >= 3 and value not in self._code:
            self._code[value] = code

    def pattern(self) -> re.Pattern[str] | None:
        if not self._code:
            return None
        values = sorted(self._code, key=len, reverse=True)
        return re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(re.escape(v) for v in values) + r")(?![A-Za-z0-9])")

    def string_code(self, text: str) -> str:
        """Python code for ``text``: a literal, or literals and ``ws.secret(...)`` joined with ``+``."""
        pattern = self.pattern()
        if pattern is None or not pattern.search(text):
            return _literal(text)
        pieces: list[str] = []
        position = 0
        for found in pattern.finditer(text):
            if found.start() > position:
                pieces.append(_literal(text[position : found.start()]))
            pieces.append(self._code[found.group(0)])
            position = found.end()
        if position < len(text):
            pieces.append(_literal(text[position:]))
        return " + ".join(pieces)

    def template(self, text: str) -> str:
        """``text`` with each secret read whole as ``${VARIABLE}`` (what ``ws.expand`` reads back)."""
        for value in sorted(self._plain, key=len, reverse=True):
            for form in dict.fromkeys((value, quote(value, safe=""))):
                text = re.sub(r"(?<![A-Za-z0-9])" + re.escape(form) + r"(?![A-Za-z0-9])", f"${{{self._plain[value]}}}", text)
        return text


def _url_template(url: str, secrets: _Secrets) -> str:
    """The URL with its credentials and token-like query values replaced by ``${VARIABLE}`` (registered as secrets)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        user = secrets.add(parts.username or "", "user", "the user name in the URL") if parts.username else None
        password = secrets.add(parts.password, "password", "the password in the URL")
        host = netloc.rsplit("@", 1)[1]
        netloc = f"${{{user}}}:${{{password}}}@{host}" if user else f"{parts.username}:${{{password}}}@{host}"
    query = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if value and is_secret_name(name):
            variable = secrets.add(value, name, f"the secret {name!r} of the URL's query")
            query.append(f"{name}=${{{variable}}}" if variable else f"{name}={value}")
        else:
            query.append(f"{quote(name, safe='')}={quote(value, safe='/:,')}")
    rebuilt = urlunsplit((parts.scheme, netloc, parts.path, "&".join(query) if parts.query else "", parts.fragment))
    return secrets.template(rebuilt)


def _register_secrets(exploration: Exploration, secrets: _Secrets) -> tuple[str, dict[str, str]]:
    """Every secret of the socket registered with ``secrets``; returns the URL template and the code of each secret
    protocol option."""
    options = exploration.options
    url = _url_template(exploration.url, secrets)
    secret_headers = {name.lower() for name in options.secret_headers}
    for name, value in options.headers:
        if not value or not (is_secret_name(name) or name.lower() in secret_headers):
            continue
        scheme, _, token = value.partition(" ")
        if token and scheme.isalpha():
            secrets.add(token.strip(), name, f"the handshake header {name} (after {scheme!r})")
        else:
            secrets.add(value, name, f"the handshake header {name}")
    for n, value in enumerate(options.secrets, start=1):
        secrets.add(value, f"secret_{n}", "a secret of the socket (connect's secrets=)")
    codes: dict[str, str] = {}
    if options.protocol is not None:
        secret_options = set(get_protocol(options.protocol).secret_options)
        for key, value in options.protocol_options:
            if key not in secret_options or value is None:
                continue
            if isinstance(value, str):
                variable = secrets.add(value, key, f"the protocol option {key}")
                codes[key] = f"ws.secret({_literal(variable)})" if variable else secrets.string_code(value)
                continue
            variable = secrets.variable(key, f"the protocol option {key}, as JSON")
            codes[key] = f"json.loads(ws.secret({_literal(variable)}))"
            if isinstance(value, Mapping):
                for inner_key, inner in value.items():
                    secrets.add_expression(inner, f"{codes[key]}[{_literal(inner_key)}]")
    return url, codes


# --- writing the file --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SavedTest:
    """A test file ``save_test`` wrote: where, the environment variables it reads (name -> what it holds), and the
    fields it left out of its expectations."""

    path: str
    environment: dict[str, str]
    ignored: tuple[str, ...]
    steps: int

    def __repr__(self) -> str:
        env = ", ".join(self.environment) or "none"
        return f"<SavedTest {self.path}: {self.steps} steps; environment: {env}>"


class _Writer:
    def __init__(self, secrets: _Secrets, ignore: tuple[str, ...], variable: str) -> None:
        self.secrets = secrets
        self.ignore = ignore
        self.variable = variable
        self.lines: list[str] = []

    def code(self, value: Any, indent: int = 4) -> str:
        if isinstance(value, str):
            return self.secrets.string_code(value)
        if isinstance(value, float) and not math.isfinite(value):
            return f'float("{value}")'
        if value is None or isinstance(value, (bool, int, float, bytes)):
            return _literal(value)
        if isinstance(value, Mapping):
            return self._wrap(
                "{", [f"{self.code(k, indent + 4)}: {self.code(v, indent + 4)}" for k, v in value.items()], "}", indent
            )
        if isinstance(value, tuple):
            items = [self.code(v, indent + 4) for v in value]
            return "(" + items[0] + ",)" if len(items) == 1 else self._wrap("(", items, ")", indent)
        if isinstance(value, list):
            return self._wrap("[", [self.code(v, indent + 4) for v in value], "]", indent)
        return self.secrets.string_code(repr(value))  # not JSON: shown for the reader, compared as its repr

    @staticmethod
    def _wrap(opening: str, items: list[str], closing: str, indent: int) -> str:
        flat = opening + ", ".join(items) + closing
        if len(flat) + indent <= 100 and "\n" not in flat:
            return flat
        inner = " " * (indent + 4)
        return opening + "\n" + "".join(f"{inner}{item},\n" for item in items) + " " * indent + closing

    def add(self, line: str) -> None:
        self.lines.append("    " + line if line else "")

    def call(self, head: str, args: list[str]) -> None:
        """``head(args)`` on one line, or one argument a line (arguments are written for column 8)."""
        flat = f"{head}({', '.join(args)})"
        if len(flat) <= 120 and "\n" not in flat:
            self.add(flat)
            return
        self.add(f"{head}(")
        for arg in args:
            self.lines.append(f"        {arg},")
        self.add(")")

    def expectation(self, step: Expect) -> None:
        conn = self.variable
        within = f"within={step.within:g}"
        topic = f"{step.subscription}.topic" if step.subscription else (_literal(step.topic) if step.topic is not None else None)
        whole = not isinstance(step.data, dict) and kept_fields(step.data, self.ignore, split=False) == [((), step.data)]
        if step.decoded and isinstance(step.data, (dict, list)) and step.data and not whole:
            fields = {
                _dotted(path): value
                for path, value in kept_fields(step.data, self.ignore)
                if not (topic is not None and path == ("topic",))  # the event's topic stands for it
            }
            items = ([f'"topic": {topic}'] if topic is not None else []) + [
                f"{self.code(name, 12)}: {self.code(value, 12)}" for name, value in fields.items()
            ]
            match = self._wrap("{", items, "}", 8) if items else "None"
            self.call(f"{conn}.expect", [match, within])
            return
        if step.decoded and not is_ignored("data", self.ignore):
            test = f"event.data == {self.code(step.data, 8)}"
        elif step.body is not None and not step.decoded:
            test = f"event.request.body == {self.code(step.body, 8)}"
        else:
            test = "True"
        if topic is not None:
            test = f"event.topic == {topic}" + ("" if test == "True" else f" and {test}")
        self.call(f"{conn}.expect", [f"lambda event: {test}", within])

    def send(self, step: Send) -> None:
        value = step.message if step.decoded else step.payload
        self.call(f"{self.variable}.send", [self.code(value, 8)])

    def verb(self, step: Verb) -> None:
        if step.kind == "unsubscribe":
            self.add(f"{step.subscription}.cancel()" if step.subscription else "# a subscription was cancelled here")
            return
        args = [self.code(a, 8) for a in step.args] + [f"{k}={self.code(v, 8)}" for k, v in step.kwargs.items()]
        self.call(f"{self.variable}.{step.kind}", args)

    def subscribe(self, step: Subscribe) -> None:
        args = [self.code(a, 8) for a in step.args] + [f"{k}={self.code(v, 8)}" for k, v in step.kwargs.items()]
        self.call(f"{step.variable} = {self.variable}.subscribe", args)

    def protocol_call(self, step: Call) -> None:
        args = [self.code(a, 8) for a in step.args] + [f"{k}={self.code(v, 8)}" for k, v in step.kwargs.items()]
        args.append(f"timeout={step.timeout:g}")
        kind, value = step.outcome if isinstance(step.outcome, tuple) and len(step.outcome) == 2 else ("result", None)
        if kind == "error":
            self.add("with pytest.raises(nbs.RemoteError) as error:")
            self.lines.append(f"        {self.variable}.call({', '.join(args)})")
            self.add(f"assert str(error.value) == {self.code(value, 4)}")
            return
        self.call("result = " + f"{self.variable}.call", args)
        for path, kept in kept_fields(value, self.ignore, split=False):
            compared = "is None" if kept is None else f"== {self.code(kept, 4)}"
            self.add(f"assert result{''.join(f'[{_literal(p)}]' for p in path)} {compared}")


def render(exploration: Exploration, steps: list[Step], ignore: Iterable[str] = (), *, path: str = "") -> tuple[str, SavedTest]:
    """The text of the test file for ``steps``, and what it reads from the environment.

    ``ignore`` lists fields (names or glob patterns, as :func:`nbsocket.compare`'s; a name also leaves out its nested
    fields) that the expectations leave out: timestamps, ids, whatever changes on every run.
    """
    ignored = (ignore,) if isinstance(ignore, str) else tuple(ignore)
    for pattern in ignored:
        if not isinstance(pattern, str) or not pattern:
            raise InvalidOptionError(f"ignore lists field names or glob patterns (strings), not {pattern!r}")
    prefix = environment_prefix(exploration.socket)
    secrets = _Secrets(prefix)
    url_variable = secrets.variable("url", "the server's URL")
    url, protocol_codes = _register_secrets(exploration, secrets)
    options = exploration.options
    variable = _identifier(exploration.socket)
    writer = _Writer(secrets, ignored, variable)

    connect_args = [_literal(exploration.socket), "ws.expand(URL)"]
    headers = [f"{secrets.string_code(name)}: {secrets.string_code(value)}" for name, value in options.headers]
    if headers:
        connect_args.append("headers=" + writer._wrap("{", headers, "}", 8))
    defaults = ConnectOptions()
    for name in WRITTEN_OPTIONS:
        value = getattr(options, name)
        if value == getattr(defaults, name) or (name == "user_agent" and not isinstance(value, str)):
            continue
        connect_args.append(f"{name}={writer.code(list(value) if isinstance(value, tuple) else value, 8)}")
    if options.reconnect is None:
        connect_args.append("reconnect=False")
    if options.protocol is not None:
        connect_args.append(f"protocol={_literal(options.protocol)}")
        for key, value in options.protocol_options:
            connect_args.append(f"{key}={protocol_codes[key] if key in protocol_codes else writer.code(value, 8)}")
    writer.call(f"{variable} = ws.connect", connect_args)

    uses_pytest = False
    counts = {"sent": 0, "expected": 0, "calls": 0}
    for step in steps:
        if isinstance(step, Send):
            writer.send(step)
            counts["sent"] += 1
        elif isinstance(step, Expect):
            writer.expectation(step)
            counts["expected"] += 1
        elif isinstance(step, Call):
            writer.protocol_call(step)
            uses_pytest |= isinstance(step.outcome, tuple) and step.outcome[:1] == ("error",)
            counts["calls"] += 1
        elif isinstance(step, Subscribe):
            writer.subscribe(step)
        elif isinstance(step, Verb):
            writer.verb(step)
            counts["sent"] += step.kind != "unsubscribe"
        else:
            writer.add(f"# {step.text}")
    uses_json = any("json.loads(" in line for line in writer.lines)

    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    environment = {
        url_variable: f"the server's URL (default: {url})",
        **{k: v for k, v in secrets.variables.items() if k != url_variable},
    }
    width = max(len(name) for name in environment)
    what = [f"{counts['sent']} message(s) sent", f"{counts['expected']} expected"]
    if counts["calls"]:
        what.append(f"{counts['calls']} call(s) checked")
    header = [
        '"""A test saved by nbsocket from an exploration of socket ' + repr(exploration.socket) + f" ({when}).",
        "",
        f"It connects, then replays what was done ({', '.join(what)}). Run it with pytest: the ws",
        "fixture comes with nbsocket. Each expectation must arrive within its bound (seconds after the last send).",
        "",
        "Environment:",
        *[f"    {name:<{width}}  {description}" for name, description in environment.items()],
    ]
    if ignored:
        header += ["", "Fields left out of the expectations: " + ", ".join(ignored)]
    header.append('"""')
    imports = ["import os"]
    if uses_json:
        imports.insert(0, "import json")
    if uses_pytest:
        imports += ["", "import pytest", "", "import nbsocket as nbs"]
    body = [
        *header,
        "",
        *imports,
        "",
        f"URL = os.environ.get({_literal(url_variable)}, {_literal(url)})",
        "",
        "",
        f"def test_{variable.removesuffix('_socket')}(ws):",
        *writer.lines,
        "",
    ]
    text = "\n".join(body)
    masked = scrub(text)
    if masked != text:  # a secret nbsocket knows from elsewhere: masked, and said so
        closing = masked.index('"""\n', 3) + 4
        note = f"# Some values were secrets nbsocket knows from elsewhere: they are masked ({MASK}); edit them in.\n"
        text = masked[:closing] + note + masked[closing:]
    return text, SavedTest(path, environment, ignored, len(steps))


def _literal(value: Any) -> str:
    """``repr(value)``, with double quotes for a string or bytes that has none inside (the project's style)."""
    text = repr(value)
    if isinstance(value, (str, bytes)):
        prefix = "b" if isinstance(value, bytes) else ""
        body = text[len(prefix) + 1 : -1]
        if text[len(prefix)] == "'" and '"' not in body:
            return f'{prefix}"{body.replace(chr(92) + chr(39), chr(39))}"'
    return text


def _identifier(socket: str) -> str:
    name = re.sub(r"\W+", "_", socket).strip("_") or "socket"
    if name[0].isdigit():
        name = "s_" + name
    if keyword.iskeyword(name) or name in ("ws", "os", "json", "pytest", "nbs", "URL", "result", "event"):
        name += "_socket"
    return name
