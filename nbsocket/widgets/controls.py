"""The buttons of a socket: Send (a protocol's verbs on a protocol socket), Reset (to an optional new URL), Disconnect, Connect.

Button callbacks run on the kernel's main thread and must never wait for the
background loop: Send only queues the message (a protocol verb and a call are
scheduled on the loop thread), and Reset, Disconnect and Connect schedule the
connection's coroutine on the loop thread and return at once. The outcome is
kept when the future completes and shown by the view's next refresh (on the
refresher thread, never from the loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import json
import threading
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..core.hints import in_widget_words
from ..core.redact import redact_url, scrub, url_secrets
from ..errors import EncodeError, InvalidMessageError, NbSocketError
from ..runtime import ProtocolConnection
from .render import feedback_html
from .sending import CALL_TIMEOUT, PlannedSend, ProtocolForm, form_for, plan_protocol_send
from .throttle import Refresher
from .throttle import refresher as default_refresher

if TYPE_CHECKING:
    from ..runtime import Connection, Manager

__all__ = ["MODES", "PLAIN_HINT", "PROTOCOL_MODES", "InvalidMessageError", "SocketControls", "describe_payload", "parse_message"]


MODES = (("auto", "auto"), ("JSON", "json"), ("text", "text"))
"""How Send reads the message box: ``auto`` sends a JSON object or array as JSON and other text as text."""
PROTOCOL_MODES = (("JSON", "json"), ("text", "text"))
"""How a protocol socket's payload box is read."""
PLAIN_HINT = (
    "auto: a JSON object or array is sent as JSON, anything else as a text message; text that starts like JSON "
    "but does not parse is refused (choose text to send it as typed). JSON: must parse. text: sent as typed."
)
"""What a plain socket's Send row accepts (shown under it)."""


def parse_message(text: str, mode: str = "auto") -> Any:
    """What Send sends for ``text``: a dict or list for JSON objects and arrays, else the text itself.

    ``mode`` is ``auto`` (JSON when it parses, text otherwise), ``json`` (must
    parse: raises :class:`InvalidMessageError`) or ``text`` (as typed).
    """
    if mode == "text":
        return text
    if not text.strip():
        raise InvalidMessageError(
            "nothing to send: type a message first" if mode == "auto" else "Invalid JSON: the message is empty"
        )
    try:
        value = json.loads(text)
    except ValueError as exc:
        if mode == "json" or text.lstrip()[:1] in ("{", "["):  # auto: what starts like JSON must be JSON
            reason = getattr(exc, "msg", str(exc))
            where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise InvalidMessageError(
                f"Invalid JSON: {reason}{where}; nothing was sent (choose 'text' to send it as it is)"
            ) from None
        return text
    return value if isinstance(value, (dict, list)) else text


def describe_payload(message: Any) -> str:
    """A short description of what was queued, for the feedback line."""
    if isinstance(message, (dict, list)):
        kind = "JSON object" if isinstance(message, dict) else "JSON array"
        return f"{kind} with {len(message)} item(s)"
    return f"text message ({len(message)} characters)"


def _hint_html(text: str) -> str:
    return f'<div class="nbsocket-hint" style="opacity:.7;font-size:85%;line-height:1.3">{html.escape(text)}</div>'


def _button(description: str, icon: str, css: str, tooltip: str, style: str = "") -> widgets.Button:
    button = widgets.Button(
        description=description, icon=icon, tooltip=tooltip, button_style=style, layout=widgets.Layout(width="auto")
    )
    button.add_class(css)
    return button


class SocketControls:
    """The message box, mode, Send, the new-URL box, Reset, Disconnect, Connect and the feedback line of one socket.

    Each action looks the socket up by name in ``manager``, so it acts on the
    connection registered now; ``compact`` (a dashboard row) leaves out the line that says what Send accepts.
    """

    def __init__(
        self,
        manager: Manager,
        name: str,
        *,
        compact: bool = False,
        refresher: Refresher | None = None,
    ) -> None:
        self.manager = manager
        self.name = name
        self._refresher = refresher or default_refresher
        self._lock = threading.Lock()
        self._busy: str | None = None
        self._outcome: tuple[str, bool] | None = None
        conn = manager.find(name)
        self.protocol: str | None = conn.protocol if isinstance(conn, ProtocolConnection) else None
        self.form: ProtocolForm | None = form_for(self.protocol)
        form = self.form
        self.verb = widgets.Dropdown(
            options=form.verbs if form else ("send",),
            value=form.verbs[0] if form else "send",
            tooltip="what Send does",
            layout=widgets.Layout(width="8em", display="flex" if form else "none"),
        )
        self.verb.add_class("nbsocket-verb")
        self.target = widgets.Text(
            placeholder=f"{form.target}, e.g. {form.target_example}" if form else "",
            layout=widgets.Layout(flex="0 1 14em", width="auto", min_width="8em", display="flex" if form else "none"),
        )
        self.target.add_class("nbsocket-target")
        self.message = widgets.Text(
            placeholder=f"{form.payload}: JSON, e.g. {form.payload_example} (empty: none)"
            if form
            else 'message: a JSON object or array, e.g. {"op": "ping"}, or text',
            continuous_update=True,
            layout=widgets.Layout(flex="1 1 auto", width="auto", min_width="12em"),
        )
        self.message.add_class("nbsocket-message")
        self.mode = widgets.Dropdown(
            options=PROTOCOL_MODES if form else MODES,
            value="json" if form else "auto",
            tooltip="how the message box is read (see the line below)",
            layout=widgets.Layout(width="7em"),
        )
        self.mode.add_class("nbsocket-mode")
        self.hint = widgets.HTML(value=_hint_html(form.hint() if form else PLAIN_HINT))
        self.hint.add_class("nbsocket-send-hint")
        self.send_button = _button("Send", "paper-plane", "nbsocket-send", "queue the message on the socket", "primary")
        self.url = widgets.Text(
            placeholder="new URL (optional): ws://... or wss://...",
            layout=widgets.Layout(flex="1 1 auto", width="auto", min_width="12em"),
        )
        self.url.add_class("nbsocket-reset-url")
        self.reset_button = _button("Reset", "refresh", "nbsocket-reset", "reconnect, to the new URL if one is given", "warning")
        self.disconnect_button = _button("Disconnect", "plug", "nbsocket-disconnect", "close the socket, keep it registered")
        self.connect_button = _button("Connect", "bolt", "nbsocket-connect", "open the socket again")
        self.feedback = widgets.HTML(value="")
        self.feedback.add_class("nbsocket-feedback-line")
        self.send_button.on_click(self._on_send)
        self.reset_button.on_click(self._on_reset)
        self.disconnect_button.on_click(self._on_disconnect)
        self.connect_button.on_click(self._on_connect)
        self.buttons = (self.send_button, self.reset_button, self.disconnect_button, self.connect_button)
        send_row = widgets.HBox([self.verb, self.target, self.message, self.mode, self.send_button])
        reset_row = widgets.HBox([self.url, self.reset_button, self.disconnect_button, self.connect_button])
        self.box = widgets.VBox(
            [send_row, reset_row, self.feedback] if compact else [send_row, self.hint, reset_row, self.feedback]
        )

    @property
    def all_widgets(self) -> list[widgets.Widget]:
        """Every widget of the controls (for closing them)."""
        found: list[widgets.Widget] = []

        def walk(w: widgets.Widget) -> None:
            found.append(w)
            for child in getattr(w, "children", ()):
                walk(child)

        walk(self.box)
        return found

    @property
    def busy(self) -> str | None:
        """The verb of the action under way (``reset``, ``disconnect``, ``connect``), or ``None``."""
        return self._busy

    # --- showing (main thread on click, refresher thread for outcomes) -----------------

    def show(self, text: str, ok: bool = True) -> None:
        """Put a message on the feedback line (advice said as the panel's buttons, not as Python calls)."""
        with self._lock:
            self.feedback.value = feedback_html(in_widget_words(scrub(text)), ok)

    def sync(self, state: str) -> None:
        """Show a finished action's outcome and enable the buttons that make sense in ``state`` (refresher thread)."""
        with self._lock:
            outcome, self._outcome = self._outcome, None
            if outcome is not None:
                self.feedback.value = feedback_html(outcome[0], outcome[1])
            busy = self._busy is not None
            gone = state == "removed"
            self.send_button.disabled = gone
            self.reset_button.disabled = busy or gone
            self.disconnect_button.disabled = busy or gone or state in ("closed", "failed")
            self.connect_button.disabled = busy or gone or state == "open"

    def has_news(self) -> bool:
        """True when an outcome waits to be shown."""
        return self._outcome is not None

    # --- button callbacks (main thread) ----------------------------------------------

    def _connection(self, action: bool = False) -> Connection | None:
        if action and self._busy is not None:
            self.show(f"still busy with {self._busy}; wait for it to finish", ok=False)
            return None
        conn = self.manager.find(self.name)
        if conn is None:
            self.show(f"socket {self.name!r} was removed; connect it again with %ws_connect NAME URL (or nbs.connect)", ok=False)
            return None
        return conn

    def _on_send(self, _button: Any = None) -> None:
        conn = self._connection()
        if conn is None:
            return
        text = self.message.value
        if self.form is not None and isinstance(conn, ProtocolConnection):
            try:
                planned = plan_protocol_send(self.form, str(self.verb.value), self.target.value, text, str(self.mode.value))
            except InvalidMessageError as exc:
                self.show(str(exc), ok=False)
                return
            self._run_verb(conn, planned)
            return
        try:
            message = parse_message(text, self.mode.value)
        except InvalidMessageError as exc:
            self.show(str(exc), ok=False)
            return
        try:
            try:
                conn.send(message, timeout=0)  # a button never waits for room in the outbox
            except EncodeError:
                if not isinstance(message, (dict, list)):
                    raise
                message = text  # JSON typed on a socket whose content type is not JSON: send it as typed
                conn.send(message, timeout=0)
        except NbSocketError as exc:
            self.show(f"not sent: {exc}", ok=False)
            return
        self.show(f"queued {describe_payload(message)}")

    def _run_verb(self, conn: ProtocolConnection, planned: PlannedSend) -> None:
        """Run a protocol verb on the loop thread (where it never waits); a call's reply is shown when it arrives."""
        verb, target, args = planned.verb, planned.target, planned.args

        async def run() -> Any:
            if verb == "call":
                return await conn.call_async(target, *args, timeout=CALL_TIMEOUT)
            method: Callable[..., Any] = getattr(conn, verb)
            return method(target, *args)  # on the loop thread a verb runs at once, without waiting

        started = time.monotonic()
        try:
            future = self.manager.loop_thread.submit(run())
        except Exception as exc:
            self.show(f"not sent: {exc}", ok=False)
            return
        self.show(f"{planned.describe()}: waiting for the reply…" if verb == "call" else f"{planned.describe()}: queued")
        future.add_done_callback(lambda f: self._verb_done(planned, started, f))

    def _verb_done(self, planned: PlannedSend, started: float, future: concurrent.futures.Future[Any]) -> None:
        """Runs on the loop thread when the verb finished: its outcome is shown by the next refresh."""
        took = (time.monotonic() - started) * 1000
        if future.cancelled():
            self._finish(f"{planned.describe()} was cancelled", False)
            return
        exc = future.exception()
        if exc is not None:
            self._finish(
                f"not sent: {exc}" if planned.verb != "call" else f"{planned.describe()} failed: {type(exc).__name__}: {exc}",
                False,
            )
        elif planned.verb == "call":
            reply = json.dumps(future.result(), default=str, ensure_ascii=False)
            shown = reply if len(reply) <= 200 else reply[:199] + "…"
            self._finish(f"{planned.describe()}: reply after {took:,.0f} ms: {shown}", True, keep_busy=True)
        elif planned.verb == "subscribe":
            self._finish(f"subscribed to {planned.target} (its messages arrive as rows and in the log)", True, keep_busy=True)
        else:
            self._finish(f"{planned.describe()}: sent", True, keep_busy=True)

    def _on_reset(self, _button: Any = None) -> None:
        conn = self._connection(action=True)
        if conn is None:
            return
        raw = self.url.value.strip()
        new_url = None
        if raw:
            try:
                new_url = self.manager.validate_url_for(conn, raw)
            except NbSocketError as exc:
                if url_secrets(raw):
                    self.url.value = ""  # never leave a password or token in a widget
                self.show(f"not reset: {exc}", ok=False)
                return
            self.url.value = ""
        where = f" to {conn.url if new_url is None else redact_url(new_url)}"
        limit = conn.open_timeout_total
        timeout = None if limit is None else limit + conn.stop_timeout
        self._start("reset", conn, conn.reset_async(new_url), timeout, f"reconnected{where}")

    def _on_disconnect(self, _button: Any = None) -> None:
        conn = self._connection(action=True)
        if conn is None:
            return
        self._start("disconnect", conn, conn.disconnect_async(), conn.stop_timeout, "disconnected")

    def _on_connect(self, _button: Any = None) -> None:
        conn = self._connection(action=True)
        if conn is None:
            return
        if conn.state == "open":
            self.show("already open")
            return
        limit = conn.open_timeout_total
        timeout = None if limit is None else limit + conn.stop_timeout
        self._start("connect", conn, conn.connect_async(), timeout, f"connected to {conn.url}")

    def _start(self, verb: str, conn: Connection, coro: Coroutine[Any, Any, Any], timeout: float | None, done: str) -> None:
        """Schedule ``coro`` on the loop thread; its outcome is shown when it completes."""
        if self._busy is not None:
            coro.close()
            self.show(f"still busy with {self._busy}; wait for it to finish", ok=False)
            return
        self._busy = verb
        with self._lock:
            self.feedback.value = feedback_html(f"{verb}…")
            for button in self.buttons[1:]:
                button.disabled = True
        try:
            future = self.manager.loop_thread.submit(coro)  # the verb bounds itself by its timeout
        except Exception as exc:
            coro.close()
            self._finish(f"{verb} failed: {exc}", False)
            return
        future.add_done_callback(lambda f: self._done(verb, done, timeout, f))

    def _done(self, verb: str, done: str, timeout: float | None, future: concurrent.futures.Future[Any]) -> None:
        """Runs on the loop thread when the action completes: remember the outcome, wake the refresher."""
        if future.cancelled():
            self._finish(f"{verb} was cancelled", False)
            return
        exc = future.exception()
        if exc is None:
            self._finish(done, True)
        elif isinstance(exc, asyncio.TimeoutError):
            self._finish(f"{verb} did not finish within {timeout}s", False)
        else:
            self._finish(f"{verb} failed: {type(exc).__name__}: {exc}", False)

    def _finish(self, text: str, ok: bool, keep_busy: bool = False) -> None:
        self._outcome = (in_widget_words(scrub(text)), ok)
        if not keep_busy:  # a send's outcome leaves a Reset, Disconnect or Connect under way alone
            self._busy = None
        self._refresher.poke()
