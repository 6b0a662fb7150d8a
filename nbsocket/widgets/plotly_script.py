"""Plotly's JavaScript sent once per kernel, not once per chart.

Plotly's ``FigureWidget`` carries its whole front end (about 5 MB of JavaScript) in each widget's
state, so every chart sent it to the browser again, and a saved notebook kept one copy per chart
in its widget state (a panel and a plot: 10 MB). Here one hidden widget per kernel carries the
script (:func:`script_widget`); a chart (:func:`live_figure`) is Plotly's ``FigureWidget`` whose own
script is a few lines that wait for that one and hand over to it. Plotly's front end is unchanged:
each chart gets its own view from Plotly's widget factory, as before. A notebook saved with its
widget state holds the script once, and reopened without a kernel the charts draw from it.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["CHART_CSS", "CHART_ESM", "LOADER_ESM", "live_figure", "plotly_front_end", "script_key", "script_widget"]

LOADER_ESM = """
const KEY = %(key)s;
export default {
  initialize({ model }) {
    if (!globalThis[KEY]) {
      const url = URL.createObjectURL(new Blob([model.get("script")], { type: "text/javascript" }));
      globalThis[KEY] = import(url).finally(() => URL.revokeObjectURL(url));
    }
  },
};
"""
"""The hidden widget's module: it imports Plotly's front end from its ``script`` once per page."""

CHART_ESM = """
const KEY = %(key)s;
const WAIT_MS = 60000;
function plotly() {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const look = () => {
      if (globalThis[KEY]) resolve(globalThis[KEY]);
      else if (Date.now() - started > WAIT_MS) reject(new Error("nbsocket: Plotly's script did not arrive (run the cell again)"));
      else setTimeout(look, 50);
    };
    look();
  });
}
export default async () => (await plotly()).default();
"""
"""A chart's module: Plotly's own widget factory, once the hidden widget has loaded it."""

CHART_CSS = ".nbsocket-plotly { contain: layout paint; }"
"""A chart's redraw lays out and paints the chart only, not the whole notebook page around it."""

_lock = threading.Lock()
_script: Any = None
_made: tuple[Any, Any] | None = None


def script_key() -> str:
    """The page-wide name the script is kept under (one per Plotly version, so two kernels' versions never mix)."""
    import plotly

    return f"__nbsocket_plotly_{plotly.__version__}"


def plotly_front_end() -> str:
    """Plotly's front end, the script its own ``FigureWidget`` carries (``package_data/widgetbundle.js``)."""
    from importlib.resources import files

    return (files("plotly") / "package_data" / "widgetbundle.js").read_text(encoding="utf-8")


def _classes() -> tuple[Any, Any]:
    """The hidden script widget's class and the chart's class (made on first use: Plotly is optional)."""
    global _made
    if _made is not None:
        return _made
    import json

    import anywidget
    import plotly.graph_objects as go
    import traitlets

    key = json.dumps(script_key())

    class PlotlyScript(anywidget.AnyWidget):
        """The hidden widget that carries Plotly's front end (one per kernel)."""

        _esm = LOADER_ESM % {"key": key}
        script = traitlets.Unicode(plotly_front_end()).tag(sync=True)

    class LiveFigure(go.FigureWidget):  # type: ignore[misc]  # plotly ships no types
        """Plotly's ``FigureWidget`` whose front end comes from the kernel's one :class:`PlotlyScript`."""

        _esm = CHART_ESM % {"key": key}
        _css = CHART_CSS

    _made = (PlotlyScript, LiveFigure)
    return _made


def script_widget() -> Any:
    """The kernel's hidden widget carrying Plotly's front end, made (again, if it was closed) when needed."""
    global _script
    with _lock:
        if _script is None or getattr(_script, "comm", None) is None:
            script_class, _ = _classes()
            _script = script_class()
        return _script


def live_figure(**kwargs: Any) -> Any:
    """A Plotly ``FigureWidget`` (``kwargs`` as its own) that takes its front end from :func:`script_widget`."""
    script_widget()
    with _lock:
        _, figure_class = _classes()
    return figure_class(**kwargs)
