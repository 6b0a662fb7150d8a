"""The panel's message log, as Postman's: sent and received, newest first, JSON pretty-printed, filtered, replies beside calls.

Each message is one line (time, direction, topic, a preview of its payload) that opens to its
payload as indented JSON. A protocol's replies (a Socket.IO ack, a JSON-RPC result or error, a
GraphQL query's result, a STOMP receipt) are shown inside the call they answer, with the time the
reply took. Filters: direction, text (anywhere in the message), topic, and the protocol's
housekeeping (hidden unless asked for). Pause holds the log still to read it while messages pour in.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import ipywidgets as widgets

from .render import MUTED, esc
from .traffic import LogItem, SocketTraffic
from .wire_view import NO_PAYLOAD, WireView, pretty, read_message

__all__ = ["LOG_ROWS", "MAX_SHOWN_CHARS", "PREVIEW_CHARS", "Entry", "MessageLog", "log_entries", "log_html"]

LOG_ROWS = 40
"""Messages the log shows at once (the newest that match the filters)."""
PREVIEW_CHARS = 120
"""Characters of a payload shown on its line."""
MAX_SHOWN_CHARS = 20_000
"""Characters of a payload shown when a line is opened."""

_ARROWS = {"sent": ("↑", "#1565c0", "sent"), "received": ("↓", "#2e7d32", "received")}


class Entry:
    """One line of the log: a message, how it reads, and the reply paired with it (if it is a call)."""

    __slots__ = ("gave_up", "item", "reply", "view")

    def __init__(self, item: LogItem, view: WireView) -> None:
        self.item = item
        self.view = view
        self.reply: Entry | None = None
        self.gave_up = False
        """A call no longer waited for (timed out, cancelled, its connection lost) that got no reply."""

    def text(self) -> str:
        """The message as text, for the search filter."""
        body = self.item.body
        return body.decode("utf-8", "replace") if isinstance(body, bytes) else body


def log_entries(
    items: list[LogItem],
    protocol: str | None,
    cache: dict[int, WireView] | None = None,
    waiting_calls: list[str] | None = None,
) -> list[Entry]:
    """The log's entries, oldest first, each reply folded into the call it answers (and not listed on its own).

    ``waiting_calls`` are the ids of the calls the socket still waits for: a call sent without a reply
    that is not among them was given up (``None``: not known, every such call shows as waiting)."""
    entries: list[Entry] = []
    open_calls: dict[tuple[str, str], Entry] = {}
    for item in items:
        if item.direction == "event":
            entries.append(Entry(item, WireView(label="event")))
            continue
        view = cache.get(item.number) if cache is not None else None
        if view is None:
            view = read_message(protocol, item.body)
            if cache is not None:
                cache[item.number] = view
        entry = Entry(item, view)
        if view.reply_to is not None:
            call = open_calls.get(("received" if item.direction == "sent" else "sent", view.reply_to))
            if call is not None and call.reply is None:
                call.reply = entry
                continue
        if view.call_id is not None:
            open_calls[(item.direction, view.call_id)] = entry
        entries.append(entry)
    if waiting_calls is not None:
        waiting = set(waiting_calls)
        for (direction, call_id), call in open_calls.items():
            call.gave_up = direction == "sent" and call.reply is None and call.view.awaited and call_id not in waiting
    return entries


def _time(ts_ns: int) -> str:
    return _dt.datetime.fromtimestamp(ts_ns / 1e9, _dt.timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def _size(body: str | bytes) -> str:
    size = len(body.encode("utf-8")) if isinstance(body, str) else len(body)
    return f"{size:,} B" if size < 10_000 else f"{size / 1024:,.1f} KB"


def _shown(entry: Entry, limit: int) -> str:
    view = entry.view
    text = pretty(view.payload, entry.item.body) if view.payload is not NO_PAYLOAD or not view.topic else ""
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit:,} more characters)"


def _preview(entry: Entry) -> str:
    text = " ".join(_shown(entry, PREVIEW_CHARS * 4).split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _entry_html(entry: Entry) -> str:
    item, view = entry.item, entry.view
    if item.direction == "event":
        return (
            f'<div class="nbsocket-log-event" style="{MUTED};padding:1px 0">— {esc(_time(item.ts_ns))} {esc(item.body)} —</div>'
        )
    arrow, color, word = _ARROWS[item.direction]
    bits = [
        f'<span style="{MUTED}">{esc(_time(item.ts_ns))}</span>',
        f'<span title="{word}" style="color:{color};font-weight:bold">{arrow}</span>',
    ]
    if view.topic:
        bits.append(f'<b class="nbsocket-log-topic">{esc(view.topic)}</b>')
    if view.label:
        ident = f" #{view.call_id}" if view.call_id else ""
        bits.append(f'<span style="{MUTED};font-size:90%">{esc(view.label + ident)}</span>')
    if item.error:
        bits.append(f'<span style="color:#c62828">does not parse: {esc(item.error)}</span>')
    bits.append(f'<code class="nbsocket-log-preview" style="white-space:nowrap">{esc(_preview(entry))}</code>')
    reply_html = ""
    if entry.reply is not None:
        reply = entry.reply
        took = (reply.item.ts_ns - item.ts_ns) / 1e6
        kind = reply.view.label or "reply"
        reply_color = "#c62828" if reply.view.error else "#2e7d32"
        bits.append(
            f'<span class="nbsocket-log-reply" style="color:{reply_color}">→ {esc(kind)} after {took:,.0f} ms: '
            f"<code>{esc(_preview(reply))}</code></span>"
        )
        reply_html = (
            f'<div class="nbsocket-log-reply-body" style="margin-left:1.5em">'
            f'<span style="color:{reply_color}">{esc(kind)}</span> <span style="{MUTED}">{esc(_time(reply.item.ts_ns))}, '
            f"after {took:,.1f} ms, {esc(_size(reply.item.body))}</span>"
            f'<pre style="margin:2px 0">{esc(_shown(reply, MAX_SHOWN_CHARS))}</pre></div>'
        )
    elif entry.gave_up:
        bits.append(
            '<span class="nbsocket-log-gave-up" style="color:#c62828" title="the call timed out, was cancelled or its '
            'connection was lost; a late reply is recorded in the errors">→ no reply (given up)</span>'
        )
    elif view.call_id is not None and item.direction == "sent":
        bits.append(f'<span class="nbsocket-log-waiting" style="{MUTED}">→ no reply yet</span>')
    style = "opacity:.6" if view.housekeeping else ""
    return (
        f'<details class="nbsocket-log-entry" data-direction="{item.direction}" data-topic="{esc(view.topic or "")}" '
        f'style="{style}"><summary style="cursor:pointer;white-space:nowrap;overflow:hidden;text-overflow:ellipsis">'
        + " ".join(bits)
        + f'</summary><div style="margin-left:1.5em"><span style="{MUTED}">{esc(_size(item.body))}'
        + (f", message {item.seq}" if item.seq is not None else "")
        + f'</span><pre style="margin:2px 0">{esc(_shown(entry, MAX_SHOWN_CHARS))}</pre></div>{reply_html}</details>'
    )


def log_html(
    entries: list[Entry],
    *,
    direction: str = "all",
    text: str = "",
    topic: str = "",
    housekeeping: bool = False,
    rows: int = LOG_ROWS,
    paused: bool = False,
) -> str:
    """The newest ``rows`` entries that pass the filters, newest first, with a line that counts what is shown."""
    needle, wanted_topic = text.strip().lower(), topic.strip().lower()
    shown: list[Entry] = []
    matching = hidden = 0
    for entry in reversed(entries):
        item, view = entry.item, entry.view
        if view.housekeeping and not housekeeping:
            hidden += 1
            continue
        if item.direction == "event":
            if direction != "all" or needle or wanted_topic:
                continue
        elif direction != "all" and item.direction != direction:
            continue
        if wanted_topic and wanted_topic not in (view.topic or "").lower():
            continue
        if needle and needle not in entry.text().lower() and (entry.reply is None or needle not in entry.reply.text().lower()):
            continue
        matching += item.direction != "event"
        if len(shown) < rows:
            shown.append(entry)
    messages = sum(1 for e in entries if e.item.direction != "event") - hidden  # the protocol's housekeeping aside
    note = f"{matching:,} of the last {messages:,} messages match" if matching != messages else f"the last {messages:,} messages"
    if hidden:
        note += f" ({hidden:,} of the protocol's housekeeping hidden: tick housekeeping to see them)"
    if len(shown) == rows and matching >= rows:
        note += f"; the newest {len(shown)} shown"
    if paused:
        note = "paused (new messages are kept, not shown); " + note
    if not shown:
        empty = "no messages yet" if not entries else "nothing matches the filters"
        body = f'<div style="{MUTED}">{empty}</div>'
    else:
        body = "".join(_entry_html(entry) for entry in shown)
    return (
        f'<div class="nbsocket-log" style="line-height:1.5;font-size:90%;max-height:24em;overflow-y:auto">'
        f'<div class="nbsocket-log-note" style="{MUTED};font-size:90%">{esc(note)}</div>{body}</div>'
    )


class MessageLog:
    """The log's widgets: direction, text and topic filters, housekeeping, Pause, and the entries (``box``).

    :meth:`render` runs on the refresher thread and changes the HTML only when new messages or
    other filters call for it; the filters are only read there, never written.
    """

    def __init__(self, traffic: SocketTraffic, protocol: str | None, rows: int = LOG_ROWS) -> None:
        self.traffic = traffic
        self.protocol = protocol
        self.rows = rows
        self._cache: dict[int, WireView] = {}
        self._shown: tuple[Any, ...] = ()
        self._topics: tuple[str, ...] = ()
        self._entries: list[Entry] | None = None
        self.direction = widgets.ToggleButtons(
            options=[("all", "all"), ("sent ↑", "sent"), ("received ↓", "received")],
            value="all",
            tooltips=["sent and received", "only what this socket sent", "only what it received"],
            style={"button_width": "auto"},
        )
        self.direction.add_class("nbsocket-log-direction")
        self.search = widgets.Text(
            placeholder="search the messages", tooltip="text anywhere in a message", layout=widgets.Layout(width="13em")
        )
        self.search.add_class("nbsocket-log-search")
        self.topic = widgets.Combobox(
            placeholder="topic",
            tooltip="the event, method, subscription or destination (part of it is enough)",
            ensure_option=False,
            layout=widgets.Layout(width="10em"),
        )
        self.topic.add_class("nbsocket-log-topic-filter")
        self.housekeeping = widgets.Checkbox(
            value=False, description="housekeeping", indent=False, layout=widgets.Layout(width="auto")
        )
        self.housekeeping.add_class("nbsocket-log-housekeeping")
        self.pause = widgets.ToggleButton(value=False, description="Pause", icon="pause", tooltip="hold the log still to read it")
        self.pause.add_class("nbsocket-log-pause")
        self.view = widgets.HTML()
        self.view.add_class("nbsocket-log-box")
        filters: list[widgets.Widget] = [self.direction, self.search]
        if protocol:
            filters += [self.topic, self.housekeeping]
        filters.append(self.pause)
        self.box = widgets.VBox(
            [widgets.HBox(filters, layout=widgets.Layout(flex_flow="row wrap", align_items="center")), self.view]
        )
        self.render()

    def render(self) -> bool:
        """Show the newest matching messages if anything changed (refresher thread); True if the HTML changed."""
        paused = bool(self.pause.value)
        waiting = None if paused or not self.protocol else self.traffic.waiting_calls()
        state = (
            None if paused else self.traffic.version,
            waiting,
            self.direction.value,
            self.search.value,
            self.topic.value,
            self.housekeeping.value,
            paused,
        )
        if state == self._shown:
            return False
        self._shown = state
        if not paused or self._entries is None:  # paused: the same messages, still filtered as asked
            items = self.traffic.items()
            self._entries = log_entries(items, self.protocol, self._cache, waiting)
            if len(self._cache) > 4 * self.traffic.keep:  # forget how items that left the log read
                kept = {item.number for item in items}
                self._cache = {number: view for number, view in self._cache.items() if number in kept}
        entries = self._entries
        self.view.value = log_html(
            entries,
            direction=str(self.direction.value),
            text=str(self.search.value),
            topic=str(self.topic.value),
            housekeeping=bool(self.housekeeping.value),
            rows=self.rows,
            paused=paused,
        )
        if self.protocol:
            topics = tuple(sorted({e.view.topic for e in entries if e.view.topic and not e.view.housekeeping}))
            if topics != self._topics:
                self._topics = topics
                self.topic.options = topics
        return True
