"""A Jupyter server pre-save hook: a saved notebook's nbsocket snapshots show what was on screen when it was saved.

Each panel, chart and dashboard output holds the live widget and a static HTML snapshot (what GitHub,
nbviewer and a notebook opened untrusted show). JupyterLab and Notebook 7 save the output as it was
first shown, and the widget state as it is now; the view keeps its latest snapshot in a hidden
``nbsocket-snapshot`` widget, so this hook copies that widget's saved value into the output. It needs
the widget state in the notebook (Settings > Save Widget State Automatically; ``nbsocket demo`` turns it
on) and changes nothing else. ``nbsocket demo`` installs it; elsewhere::

    jupyter lab --ContentsManager.pre_save_hook=nbsocket.demo.save_hook.refresh_snapshots
"""

from __future__ import annotations

from typing import Any

__all__ = ["SNAPSHOT_CLASS", "WIDGET_STATE", "WIDGET_VIEW", "refresh_snapshots", "snapshots_in_state"]

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
SNAPSHOT_CLASS = "nbsocket-snapshot"
"""The CSS class of a view's hidden snapshot widget (``nbsocket.widgets.live.SNAPSHOT_CLASS``)."""


def _children(model: dict[str, Any]) -> list[str]:
    children = model.get("state", {}).get("children") or []
    return [child[len("IPY_MODEL_") :] for child in children if isinstance(child, str) and child.startswith("IPY_MODEL_")]


def snapshots_in_state(state: dict[str, Any]) -> dict[str, str]:
    """Model id of each view that has a snapshot widget among its children -> the snapshot's saved HTML."""
    found: dict[str, str] = {}
    for model_id, model in state.items():
        for child in _children(model):
            child_state = state.get(child, {}).get("state", {})
            if SNAPSHOT_CLASS in (child_state.get("_dom_classes") or ()) and child_state.get("value"):
                found[model_id] = str(child_state["value"])
    return found


def refresh_snapshots(model: dict[str, Any], **_kwargs: Any) -> None:
    """Replace the ``text/html`` of each nbsocket view's output by the view's latest snapshot (a ContentsManager hook)."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    notebook = model["content"]
    state = notebook.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    if not state:
        return
    snapshots = snapshots_in_state(state)
    if not snapshots:
        return
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data")
            view = data.get(WIDGET_VIEW) if isinstance(data, dict) else None
            model_id = view.get("model_id") if isinstance(view, dict) else None
            if model_id in snapshots and "text/html" in data:
                data["text/html"] = snapshots[model_id]
