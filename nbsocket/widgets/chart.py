"""Live line charts as plain SVG: a window of points per series, and the markup that draws them.

No plotting library is needed: the chart is an SVG string shown in an
ipywidgets ``HTML`` widget, so it renders in JupyterLab, Notebook 7, static
HTML exports and headless runs alike, and it can be tested as text.
"""

from __future__ import annotations

import bisect
import collections
import datetime as _dt
import math
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..errors import InvalidOptionError
from .render import esc

__all__ = [
    "AUTO",
    "FRAME_COLUMNS",
    "MAX_GROUPS",
    "MAX_SERIES",
    "NEVER_SPLIT",
    "PALETTE",
    "SPLIT_NAMES",
    "ChartBuffer",
    "Gapped",
    "Point",
    "SeriesColors",
    "decimate",
    "is_value_column",
    "line_chart_svg",
    "nice_ticks",
    "pick_split_column",
    "series_colors",
]


PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
"""The series colours (D3's category10, as Plotly's and matplotlib's default cycles)."""


class SeriesColors:
    """One colour per series name for the whole kernel: ``ABC`` keeps its colour in every chart of the notebook.

    A name gets the next colour of :data:`PALETTE` the first time any chart draws it.
    """

    def __init__(self, palette: Sequence[str] = PALETTE) -> None:
        self.palette = tuple(palette)
        self._assigned: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> str:
        """The colour of series ``name``."""
        with self._lock:
            color = self._assigned.get(name)
            if color is None:
                color = self._assigned[name] = self.palette[len(self._assigned) % len(self.palette)]
            return color


series_colors = SeriesColors()
"""The colours shared by every chart of the kernel (panels, ``nbs.plot``, ``%ws_plot``; SVG and Plotly alike)."""
MAX_SERIES = 4
"""Columns followed when ``y`` is not given."""
MAX_GROUPS = 8
"""Lines per chart when splitting by a column (``by=``)."""
AUTO = "auto"
"""``by=AUTO`` (the default): split by a low-cardinality text column (``symbol``, ``topic``, ...) once one shows up."""
SPLIT_NAMES = (
    "symbol",
    "ticker",
    "instrument",
    "pair",
    "topic",
    "channel",
    "type",
    "kind",
    "event",
    "source",
    "device",
    "sensor",
    "name",
)
"""Column names preferred as the split when several text columns qualify (most likely first)."""
NEVER_SPLIT = frozenset({"data", "extra"})
"""Columns never used as a split: raw message bodies and overflow fields."""

FRAME_COLUMNS = frozenset({"timestamp", "socket", "seq", "error"})
_COUNTER_LIKE = re.compile(r"(^|[._])(seq|id|ts|time|timestamp|date|epoch)$|_(id|at|ts)$", re.IGNORECASE)
"""Numeric columns that are counters or times, not values worth a line (skipped when following columns)."""

Point = tuple[float, float]
Gapped = tuple[list[float | None], list[float | None]]
"""A line's x and y values with ``None`` where it breaks (while its socket was down)."""
MAX_BREAKS = 256
"""Disconnects remembered per chart (older ones have left any window)."""


def is_value_column(name: str, dtype: Any) -> bool:
    """True for a numeric column that holds values (not booleans, counters or times)."""
    if name in FRAME_COLUMNS or _COUNTER_LIKE.search(name):
        return False
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def pick_split_column(rows: pd.DataFrame, exclude: Sequence[str] = ()) -> str | None:
    """The text column that splits ``rows`` into a few lines: 2 to :data:`MAX_GROUPS` values, each seen twice on average.

    Columns named in :data:`SPLIT_NAMES` are preferred, then the one with the
    fewest values. ``None`` while no column qualifies (too few rows, or only
    ids and free text).
    """
    candidates: list[tuple[int, int, str]] = []
    skip = set(exclude) | FRAME_COLUMNS | NEVER_SPLIT
    for name in rows.columns:
        column = rows[name]
        if name in skip or not (
            pd.api.types.is_object_dtype(column.dtype)
            or pd.api.types.is_string_dtype(column.dtype)
            or isinstance(column.dtype, pd.CategoricalDtype)
        ):
            continue
        values = column.dropna()
        if not len(values) or not all(isinstance(v, str) for v in values.iloc[:50]):
            continue
        distinct = values.nunique()
        if 2 <= distinct <= MAX_GROUPS and len(values) >= 2 * distinct:
            leaf = str(name).rsplit(".", 1)[-1].lower()
            rank = SPLIT_NAMES.index(leaf) if leaf in SPLIT_NAMES else len(SPLIT_NAMES)
            candidates.append((rank, distinct, str(name)))
    return min(candidates)[2] if candidates else None


def _as_seconds(column: pd.Series) -> Any:
    """Numbers for the x axis: datetimes become seconds since the epoch."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        ts = pd.to_datetime(column, utc=True)
        return ((ts - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(dtype="float64", na_value=math.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=math.nan)


class ChartBuffer:
    """The points of the last ``window`` rows, per followed column, fed with batches of live-frame rows.

    ``y`` names the columns to draw (``None``: follow numeric value columns as
    they appear, up to :data:`MAX_SERIES`); ``x`` is the x-axis column
    (``timestamp`` by default, or ``seq``, or any numeric column); ``by``
    splits each column into one line per value of another column: ``"auto"``
    (the default) picks a low-cardinality text column such as ``symbol`` by
    itself (see :func:`pick_split_column`), ``None`` draws one line per column.
    """

    def __init__(
        self, y: str | Sequence[str] | None = None, x: str = "timestamp", window: int = 500, by: str | None = AUTO
    ) -> None:
        if window < 2:
            raise InvalidOptionError("window must be at least 2 points")
        self.fixed_y = [y] if isinstance(y, str) else (list(y) if y is not None else None)
        self.x = x
        self.window = int(window)
        self.auto_split = by == AUTO
        self.by: str | None = None if self.auto_split else by
        """The column the lines are split by (``None`` while ``"auto"`` has not found one)."""
        self._sample: pd.DataFrame | None = None  # recent rows, kept while "auto" looks for a split column
        self.columns: list[str] = list(self.fixed_y or [])
        self._lines: dict[str, dict[str, collections.deque[tuple[int, float, float, float]]]] = {c: {} for c in self.columns}
        self._rows_seen = 0
        self.breaks: collections.deque[float] = collections.deque(maxlen=MAX_BREAKS)
        """When the socket went down (seconds since the epoch): lines break there instead of joining across the gap."""
        self.x_is_time = x == "timestamp"
        self.version = 0
        """Grows every time points are added (so views know when to redraw)."""

    @property
    def series(self) -> dict[str, dict[str, list[Point]]]:
        """column -> line name -> its ``(x, y)`` points, oldest first."""
        return {c: {k: [(x, y) for _, x, y, _ in v] for k, v in lines.items()} for c, lines in self._lines.items()}

    def add_break(self, when: float) -> None:
        """The socket went down at ``when`` (seconds since the epoch): no line joins points across it."""
        self.breaks.append(when)
        self.version += 1

    def gapped(self, column: str) -> dict[str, Gapped]:
        """line name -> its x and y values, oldest first, with ``None`` between two points a disconnect lies between."""
        breaks = sorted(self.breaks)
        out: dict[str, Gapped] = {}
        for name, points in list(self._lines.get(column, {}).items()):
            xs: list[float | None] = []
            ys: list[float | None] = []
            previous = math.nan
            for _, x, y, when in list(points):
                if breaks and xs and _break_between(breaks, previous, when):
                    xs.append(None)
                    ys.append(None)
                xs.append(x)
                ys.append(y)
                previous = when
            if xs:
                out[name] = (xs, ys)
        return out

    def clear(self) -> None:
        """Forget every point (and, when following columns, which ones were picked)."""
        self.columns = list(self.fixed_y or [])
        self._lines = {c: {} for c in self.columns}
        self.breaks.clear()
        if self.auto_split:
            self.by, self._sample = None, None
        self.version += 1

    def ingest(self, rows: pd.DataFrame) -> bool:
        """Add the points of ``rows`` and drop those older than the last ``window`` rows; True if any was added."""
        if rows is None or not len(rows):
            return False
        if self.auto_split and self.by is None:
            return self._look_for_split(rows)
        return self._add(rows)

    def _look_for_split(self, rows: pd.DataFrame) -> bool:
        """Draw ``rows`` unsplit until a split column shows up, then redraw the kept rows split by it."""
        sample = rows if self._sample is None else pd.concat([self._sample, rows], ignore_index=True)
        self._sample = sample = sample.iloc[-self.window :]
        column = pick_split_column(sample, exclude=[self.x, *(self.fixed_y or [])])
        if column is None:
            return self._add(rows)
        self.by, self._sample = column, None
        self._rows_seen += len(rows) - len(sample)
        self.columns = list(self.fixed_y or [])
        self._lines = {c: {} for c in self.columns}
        self._add(sample)
        self.version += 1
        return True

    def _add(self, rows: pd.DataFrame) -> bool:
        first_row = self._rows_seen
        self._rows_seen += len(rows)
        if self.x not in rows.columns:
            return False
        skipped = max(0, len(rows) - self.window)
        rows = rows.iloc[skipped:]
        first_row += skipped
        if self.fixed_y is None:
            self._follow_new_columns(rows)
        if pd.api.types.is_datetime64_any_dtype(rows[self.x].dtype):
            self.x_is_time = True
        xs = _as_seconds(rows[self.x])
        times = _as_seconds(rows["timestamp"]) if "timestamp" in rows.columns else [math.nan] * len(rows)
        groups = rows[self.by].astype(str).to_numpy() if self.by and self.by in rows.columns else None
        oldest = self._rows_seen - self.window
        added = False
        for column in self.columns:
            lines = self._lines.setdefault(column, {})
            if column in rows.columns:
                ys = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype="float64", na_value=math.nan)
                for i, (x, y, when) in enumerate(zip(xs, ys, times, strict=True)):
                    if not (math.isfinite(x) and math.isfinite(y)):
                        continue
                    key = str(groups[i]) if groups is not None else column
                    line = lines.get(key)
                    if line is None:
                        if len(lines) >= MAX_GROUPS:
                            continue
                        line = lines[key] = collections.deque()
                    line.append((first_row + i, float(x), float(y), float(when)))
                    added = True
            for key, line in list(lines.items()):
                while line and line[0][0] < oldest:
                    line.popleft()
                if not line:  # its series left the window: out of the legend, its slot free for another
                    del lines[key]
        if added:
            self.version += 1
        return added

    def _follow_new_columns(self, rows: pd.DataFrame) -> None:
        if len(self.columns) >= MAX_SERIES:
            return
        for name in rows.columns:
            if name in self._lines or name in (self.x, self.by):
                continue
            if is_value_column(str(name), rows[name].dtype):
                self.columns.append(name)
                self._lines[name] = {}
                if len(self.columns) >= MAX_SERIES:
                    return

    def title(self, column: str) -> str:
        """The title of ``column``'s chart: ``price by symbol``, or the column's name."""
        return f"{column} by {self.by}" if self.by else column

    def render(self, width: int = 900, height: int = 220) -> str:
        """The charts as HTML: one SVG chart per column (as wide as the cell), or a note while there is nothing to draw."""
        charts = [
            line_chart_svg(self.title(column), lines, width=width, height=height, x_is_time=self.x_is_time, x_label=self.x)
            for column in list(self.columns)
            if (lines := self.gapped(column))
        ]
        if not charts:
            wanted = ", ".join(self.fixed_y) if self.fixed_y else "numeric columns"
            return f'<div class="nbsocket-chart-empty" style="opacity:.7;font-size:90%">waiting for {esc(wanted)} to chart</div>'
        return '<div class="nbsocket-chart">' + "".join(charts) + "</div>"


def _break_between(breaks: list[float], earlier: float, later: float) -> bool:
    """True if a disconnect time lies in ``(earlier, later]`` (``breaks`` sorted)."""
    if not (math.isfinite(earlier) and math.isfinite(later)):
        return False
    index = bisect.bisect_right(breaks, earlier)
    return index < len(breaks) and breaks[index] <= later


_SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)
_SVG_LABEL = re.compile(r'aria-label="([^"]*)"')
_SVG_SERIES = re.compile(r"<title>(.*?)</title>")


def svg_as_img(html: str) -> str:
    """``html`` with each inline SVG chart turned into an ``<img>`` of it (a data URI) with a text ``alt``.

    For static snapshots: viewers that sanitize HTML (JupyterLab for an untrusted notebook, some
    hosted viewers) drop inline SVG but keep its labels as a run of text; JupyterLab keeps an
    image, and a viewer that drops its source still shows its ``alt`` ("chart: price by symbol (ABC, QRS, XYZ)").
    """
    import base64

    def to_img(match: re.Match[str]) -> str:
        svg = match.group(0)
        label = _SVG_LABEL.search(svg)
        series = list(dict.fromkeys(_SVG_SERIES.findall(svg)))
        alt = "chart: " + (label.group(1) if label else "line chart") + (f" ({', '.join(series)})" if series else "")
        data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
        return f'<img class="nbsocket-chart-img" src="data:image/svg+xml;base64,{data}" alt="{alt}" style="display:block">'

    return _SVG.sub(to_img, html)


def _fmt_number(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e6 or magnitude < 1e-3:
        return f"{value:.3g}"
    if magnitude >= 100:
        return f"{value:,.1f}"
    return f"{value:.4g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values between ``low`` and ``high`` (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


_TIME_STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def _time_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round times (seconds since the epoch) between ``low`` and ``high``: every 1, 2, 5, 10, 15, 30 s, minutes, hours."""
    if high <= low:
        return [low]
    raw = (high - low) / max(1, count)
    step = next((s for s in _TIME_STEPS if s >= raw), 3600 * math.ceil(raw / 3600))
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _fmt_x(value: float, is_time: bool, span: float) -> str:
    if is_time:
        text = _dt.datetime.fromtimestamp(value, _dt.timezone.utc).strftime("%H:%M:%S.%f")
        return text[:-3] if span < 10 else text[:-7]
    return _fmt_number(value)


def decimate(points: Sequence[Point], max_points: int) -> list[Point]:
    """At most about ``max_points`` points, keeping each stride's lowest and highest so spikes stay visible."""
    n = len(points)
    if n <= max_points:
        return list(points)
    stride = math.ceil(n / (max_points // 2))
    out: list[Point] = []
    for start in range(0, n, stride):
        chunk = points[start : start + stride]
        low = min(chunk, key=lambda p: p[1])
        high = max(chunk, key=lambda p: p[1])
        out.extend(sorted({low, high}, key=lambda p: p[0]))
    return out


def _runs(line: Sequence[Point] | Gapped) -> list[list[Point]]:
    """A line as runs of points: a list of ``(x, y)`` points is one run; a ``Gapped`` tuple breaks at each ``None``."""
    if isinstance(line, tuple):
        runs: list[list[Point]] = [[]]
        for x, y in zip(line[0], line[1], strict=True):
            if x is None or y is None:
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append((x, y))
        return [run for run in runs if run]
    return [list(line)] if line else []


def line_chart_svg(
    title: str,
    lines: Mapping[str, Sequence[Point] | Gapped],
    *,
    width: int = 900,
    height: int = 220,
    x_is_time: bool = False,
    x_label: str = "",
    legend: bool = True,
) -> str:
    """One SVG line chart of ``lines`` (name -> points, or ``Gapped`` x and y values that break at ``None``).

    Round ticks and gridlines on both axes, time of day (UTC) on a time axis, one colour per series
    name for the whole kernel (:data:`series_colors`), a legend of the lines drawn, and breaks where a
    line has a gap. The SVG scales to the width of its cell (its text with it).
    """
    left, right, top, bottom = 64, 12, 26, 26
    plot_w, plot_h = max(10, width - left - right), max(10, height - top - bottom)
    runs = {name: _runs(line) for name, line in lines.items()}
    all_points = [p for name_runs in runs.values() for run in name_runs for p in run]
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="nbsocket-svg" width="100%" '
            f'viewBox="0 0 {width} {height}" preserveAspectRatio="xMinYMin meet" role="img" aria-label="{esc(title)}" '
            f'style="font:12px sans-serif;display:block;max-width:{width * 2}px;color:var(--jp-ui-font-color1,#333)">'
        ),
        f'<text x="{left}" y="15" fill="currentColor" font-weight="bold">{esc(title)}</text>',
    ]
    if all_points:
        x_min = min(p[0] for p in all_points)
        x_max = max(p[0] for p in all_points)
        y_min = min(p[1] for p in all_points)
        y_max = max(p[1] for p in all_points)
        if x_max == x_min:
            x_min, x_max = x_min - 0.5, x_max + 0.5
        if y_max == y_min:
            y_min, y_max = y_min - 0.5, y_max + 0.5
        pad = (y_max - y_min) * 0.05
        y_min, y_max = y_min - pad, y_max + pad
        sx = plot_w / (x_max - x_min)
        sy = plot_h / (y_max - y_min)
        for tick in nice_ticks(y_min, y_max, 4):
            y = top + plot_h - (tick - y_min) * sy
            parts.append(
                f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="currentColor" stroke-opacity="0.12"/>'
                f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="currentColor">{esc(_fmt_number(tick))}</text>'
            )
        x_ticks = _time_ticks(x_min, x_max, 6) if x_is_time else nice_ticks(x_min, x_max, 6)
        for tick in x_ticks:
            x = left + (tick - x_min) * sx
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" stroke="currentColor" stroke-opacity="0.12"/>'
                f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" fill="currentColor">'
                f"{esc(_fmt_x(tick, x_is_time, x_max - x_min))}</text>"
            )
        axis = "time (UTC)" if x_is_time else x_label
        if axis:
            parts.append(
                f'<text x="{left + plot_w}" y="15" text-anchor="end" fill="currentColor" opacity="0.7">x: {esc(axis)}</text>'
            )
        for name, name_runs in runs.items():
            color = series_colors(str(name))
            for run in name_runs:
                coords = " ".join(
                    f"{left + (x - x_min) * sx:.1f},{top + plot_h - (y - y_min) * sy:.1f}" for x, y in decimate(run, 2 * plot_w)
                )
                parts.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{coords}">'
                    f"<title>{esc(name)}</title></polyline>"
                )
        if legend and (len(runs) > 1 or next(iter(runs)) != title):
            x = left + 12 + 8 * min(len(title), 40)
            for name in runs:
                color = series_colors(str(name))
                parts.append(f'<text x="{x}" y="15" fill="{color}" class="nbsocket-legend">&#9632; {esc(name)}</text>')
                x += 18 + 7 * min(len(str(name)), 16)
    parts.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="currentColor" stroke-opacity="0.3"/>'
    )
    parts.append("</svg>")
    return "".join(parts)
