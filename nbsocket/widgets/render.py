"""The HTML the widgets show: a socket's state and counters, its latest rows, its errors.

Pure functions of plain data (a status dict, a DataFrame, error records), so
they are easy to test and can also produce the static snapshot of a panel.
Every piece of text goes through :func:`nbsocket.core.redact.scrub` and is escaped.
"""

from __future__ import annotations

import datetime as _dt
import html
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..core.redact import scrub
from ..core.state import ErrorRecord

__all__ = [
    "CELL_CHARS",
    "MUTED",
    "OFFLINE_STYLE",
    "OWN_COLUMN_TITLES",
    "STATE_COLORS",
    "TABLE_COLUMNS",
    "counters",
    "epoch_seconds",
    "errors_html",
    "esc",
    "feedback_html",
    "header_html",
    "human_bytes",
    "human_rate",
    "latency_text",
    "offline_note",
    "snapshot_note",
    "state_badge",
    "summary_html",
    "table_html",
]


STATE_COLORS = {
    "open": "#2e7d32",
    "connecting": "#ef6c00",
    "closing": "#ef6c00",
    "reconnecting": "#ef6c00",
    "closed": "#616161",
    "failed": "#c62828",
    "removed": "#424242",
}
CELL_CHARS = 40
TABLE_COLUMNS = 8
MUTED = "opacity:.7"
OFFLINE_STYLE = (
    "<style>"
    ".nbsocket-offline-note{display:none}"
    # restored from a saved notebook with no live kernel behind it: ipywidgets marks every part disconnected
    ".jupyter-widgets-disconnected .nbsocket-offline-note,.jupyter-widgets-disconnected.nbsocket-header-box "
    ".nbsocket-offline-note{display:block}"
    ".jupyter-widgets-disconnected .nbsocket-state,.jupyter-widgets-disconnected.nbsocket-header-box .nbsocket-state"
    "{display:none}"
    ".nbsocket-panel .jupyter-widgets-disconnected::before,.nbsocket-panel.jupyter-widgets-disconnected::before,"
    ".nbsocket-plot .jupyter-widgets-disconnected::before,.nbsocket-plot.jupyter-widgets-disconnected::before,"
    ".nbsocket-dashboard .jupyter-widgets-disconnected::before,.nbsocket-dashboard.jupyter-widgets-disconnected::before"
    "{display:none!important}"
    "</style>"
)
"""What a view looks like without a live kernel (a saved notebook reopened): no state badge, no broken-link
icons on every part, and a note that says so (shown only then, by CSS)."""


def esc(text: object) -> str:
    """Text made safe to show: secrets scrubbed, HTML escaped."""
    return html.escape(scrub(text), quote=True)


def state_badge(state: str) -> str:
    """The colour-coded state label."""
    color = STATE_COLORS.get(state, "#616161")
    return (
        f'<span class="nbsocket-state" data-state="{esc(state)}" style="background:{color};color:#fff;'
        f'border-radius:3px;padding:1px 6px;font-weight:bold">{esc(state)}</span>'
    )


def human_bytes(n: float | None) -> str:
    """1536 -> '1.5 KB'."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def human_rate(rate: float) -> str:
    """Messages per second, short."""
    if rate >= 1000:
        return f"{rate / 1000:.1f}k/s"
    if rate >= 10 or rate == 0:
        return f"{rate:.0f}/s"
    return f"{rate:.1f}/s"


def latency_text(latency: float | None) -> str:
    """Ping round trip shown in milliseconds (labelled ``ms``; ``connections()`` has it in seconds), or '-'."""
    return "-" if latency is None else f"{latency * 1000:.1f} ms"


def counters(status: dict[str, Any], rate: float) -> list[tuple[str, str]]:
    """The (label, value) pairs shown for a socket."""
    return [
        ("in", f"{status.get('messages_in', 0):,}"),
        ("out", f"{status.get('messages_out', 0):,}"),
        ("rate", human_rate(rate)),
        ("bytes in", human_bytes(status.get("bytes_in"))),
        ("bytes out", human_bytes(status.get("bytes_out"))),
        ("queued", f"{status.get('queued', 0):,}"),
        ("reconnects", f"{status.get('reconnects', 0):,}"),
        ("errors", f"{status.get('errors', 0):,}"),
        ("latency", latency_text(status.get("latency"))),
    ]


def header_html(status: dict[str, Any], rate: float) -> str:
    """Name, state, redacted URL and counters of one socket (the panel's top line)."""
    items = "".join(
        f'<span class="nbsocket-counter" data-counter="{esc(label)}" style="margin-right:12px">'
        f'<span style="{MUTED}">{esc(label)}</span> <b>{esc(value)}</b></span>'
        for label, value in counters(status, rate)
    )
    last = status.get("last_error")
    last_line = f'<div style="{MUTED};font-size:90%">last error: {esc(last)}</div>' if last else ""
    if status.get("protocol"):
        topics = status.get("topics") or ""
        last_line = (
            f'<div class="nbsocket-protocol"><span style="{MUTED}">protocol</span> <b>{esc(status["protocol"])}</b>'
            f"{f' <span style={chr(34)}{MUTED}{chr(34)}>topics</span> {esc(topics)}' if topics else ''}</div>"
        ) + last_line
    offline = offline_note("this is the socket as it was when the notebook was saved")
    return (
        f'{OFFLINE_STYLE}<div class="nbsocket-header" style="line-height:1.7">'
        f'<b style="font-size:110%">{esc(status.get("name", ""))}</b> {state_badge(str(status.get("state", "")))} '
        f'<code class="nbsocket-url">{esc(status.get("url", ""))}</code>'
        f"{offline}<div>{items}</div>{last_line}</div>"
    )


def offline_note(what: str) -> str:
    """A note shown only when the view has no live kernel behind it (a saved notebook reopened): see :data:`OFFLINE_STYLE`."""
    return (
        '<div class="nbsocket-offline-note" style="color:#8a6d00;font-weight:bold">'
        f"no live kernel: {esc(what)}; run the cell again to connect</div>"
    )


def snapshot_note(what: str, taken: _dt.datetime | None = None) -> str:
    """The line a static snapshot starts with: what it is and when it shows it (it is never live)."""
    when = (taken or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f'<div class="nbsocket-snapshot-note" style="{MUTED};font-size:85%">snapshot of {esc(what)} taken {when} '
        "(not live: run the notebook to connect)</div>"
    )


def summary_html(status: dict[str, Any], rate: float) -> str:
    """One compact line for a socket (a dashboard row)."""
    values = dict(counters(status, rate))
    return (
        f'<div class="nbsocket-summary" data-socket="{esc(status.get("name", ""))}" style="line-height:1.5">'
        f"<b>{esc(status.get('name', ''))}</b> {state_badge(str(status.get('state', '')))} "
        f'<code class="nbsocket-url" style="font-size:85%">{esc(status.get("url", ""))}</code><br>'
        f'<span style="{MUTED}">in</span> {esc(values["in"])} · <span style="{MUTED}">out</span> {esc(values["out"])} · '
        f'{esc(values["rate"])} · <span style="{MUTED}">reconnects</span> {esc(values["reconnects"])} · '
        f'<span style="{MUTED}">errors</span> {esc(values["errors"])} · '
        f'<span style="{MUTED}">latency</span> {esc(values["latency"])}'
        "</div>"
    )


_EPOCH_NAMES = re.compile(r"(^|[._])(ts|time|timestamp|date|epoch|datetime|created|updated|sent|received)$|_(at|ts|time)$", re.I)
_EPOCH_RANGES = ((1e9, 4.2e9, 1.0), (1e12, 4.2e12, 1e3), (1e15, 4.2e15, 1e6), (1e18, 4.2e18, 1e9))
"""Numbers that read as 2001-2103 in seconds, milliseconds, microseconds or nanoseconds since 1970."""


def epoch_seconds(name: str, values: pd.Series) -> float | None:
    """The divisor that turns column ``name``'s numbers into seconds when they are times since 1970, else ``None``.

    Only a column named like a time (``ts``, ``timestamp``, ``sent_at``, ...) whose values all fall in one
    plausible range counts, so prices and counters are never shown as dates.
    """
    if not _EPOCH_NAMES.search(name) or not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values):
        return None
    numbers = values.dropna()
    if not len(numbers):
        return None
    low, high = float(numbers.min()), float(numbers.max())
    for start, end, divisor in _EPOCH_RANGES:
        if start <= low and high < end:
            return divisor
    return None


def _epoch_cell(value: Any, divisor: float) -> str:
    try:
        moment = _dt.datetime.fromtimestamp(float(value) / divisor, _dt.timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return _cell(value)
    shown = moment.strftime("%H:%M:%S.%f")[:-3]
    return f'<span title="{esc(value)} = {esc(moment.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))}">{esc(shown)}</span>'


def _cell(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        text = value.strftime("%H:%M:%S.%f")[:-3]
    elif (isinstance(value, float) and value != value) or value is None or value is pd.NA:  # NaN: no such field in this row
        text = ""
    elif isinstance(value, bytes):
        text = f"<{len(value)} bytes>"
    else:
        text = str(value)
    if len(text) > CELL_CHARS:
        text = text[: CELL_CHARS - 1] + "…"
    return esc(text)


OWN_COLUMN_TITLES = {
    "timestamp": "nbsocket's column: time of receipt (UTC)",
    "seq": "nbsocket's column: message number on this socket, from 1",
    "error": "nbsocket's column: why the message could not be parsed",
    "topic": "nbsocket's column: the protocol's event name or destination",
}
"""Header tooltips of nbsocket's own columns in the latest-rows table (shown in italics, apart from message fields)."""


def _header_cell(column: str) -> str:
    style = "text-align:left;padding:1px 8px 1px 0"
    if column in OWN_COLUMN_TITLES:
        title = esc(OWN_COLUMN_TITLES[column])
        return f'<th class="nbsocket-own-column" title="{title}" style="{style};font-style:italic">{esc(column)}</th>'
    if column.startswith("data.") and column[5:] in ("timestamp", "socket", "seq", "error", "topic"):
        title = f"the message's own field {column[5:]!r} (prefixed: nbsocket has a column of that name)"
        return f'<th title="{esc(title)}" style="{style}">{esc(column)}</th>'
    return f'<th style="{style}">{esc(column)}</th>'


def table_html(
    rows: pd.DataFrame | None, total: int | None = None, max_columns: int = TABLE_COLUMNS, *, framed: bool = True
) -> str:
    """The latest rows as a small table (newest last), or a note when there are none.

    ``framed`` is False for a socket connected with ``frame=False`` (it has no rows to show). Numbers in a
    column named like a time (``ts``, ``sent_at``, ...) that read as a time since 1970 show as a time of day
    (UTC), the number in their tooltip.
    """
    if not framed:
        return f'<div class="nbsocket-table" style="{MUTED}">no live frame (connected with frame=False)</div>'
    if rows is None or not len(rows):
        return f'<div class="nbsocket-table" style="{MUTED}">no messages yet</div>'
    columns = [c for c in rows.columns if c != "socket" and rows[c].notna().any()]
    hidden = max(0, len(columns) - max_columns)
    columns = columns[:max_columns]
    th = "".join(_header_cell(str(c)) for c in columns)
    divisors = [epoch_seconds(str(c), rows[c]) for c in columns]
    cell = 'style="padding:1px 8px 1px 0;white-space:nowrap"'
    body = "".join(
        "<tr>"
        + "".join(
            f"<td {cell}>{_cell(v) if divisor is None else _epoch_cell(v, divisor)}</td>"
            for v, divisor in zip(values, divisors, strict=True)
        )
        + "</tr>"
        for values in rows[columns].itertuples(index=False, name=None)
    )
    note = []
    if total is not None:
        note.append(f"latest {len(rows)} of {total:,} rows")
    if hidden:
        note.append(f"{hidden} more column(s): %ws_frame NAME or nbs.frame(NAME) has them all")
    caption = f'<div style="{MUTED};font-size:85%">{esc("; ".join(note))}</div>' if note else ""
    return (
        '<div class="nbsocket-table" style="overflow-x:auto;line-height:1.4">'
        f'<table style="border-collapse:collapse;font-size:90%;font-family:var(--jp-code-font-family,monospace)">'
        f"<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>{caption}</div>"
    )


def _time(value: _dt.datetime) -> str:
    return value.strftime("%H:%M:%S")


def errors_html(records: Sequence[ErrorRecord], limit: int = 5) -> str:
    """The most recent errors, newest first, each with its traceback folded away."""
    if not records:
        return f'<div class="nbsocket-errors" style="{MUTED}">no errors</div>'
    items = []
    for record in list(records)[-limit:][::-1]:
        seq = f" (message {record.seq})" if getattr(record, "seq", None) else ""
        summary = f"{_time(record.time)} {record.where}: {record.error}: {record.message}{seq}"
        tb = record.traceback
        if tb:
            items.append(
                f'<details><summary style="cursor:pointer">{esc(summary)}</summary>'
                f'<pre style="font-size:85%;white-space:pre-wrap">{esc(tb)}</pre></details>'
            )
        else:
            items.append(f"<div>{esc(summary)}</div>")
    more = len(records) - limit
    tail = f'<div style="{MUTED}">and {more} earlier, not shown (%ws_status counts them all)</div>' if more > 0 else ""
    return '<div class="nbsocket-errors" style="line-height:1.4">' + "".join(items) + tail + "</div>"


def feedback_html(text: str, ok: bool = True) -> str:
    """The outcome of a button (green when it worked, red when it did not)."""
    if not text:
        return ""
    color = "#2e7d32" if ok else "#c62828"
    kind = "ok" if ok else "error"
    return f'<div class="nbsocket-feedback" data-kind="{kind}" style="color:{color};line-height:1.4">{esc(text)}</div>'
