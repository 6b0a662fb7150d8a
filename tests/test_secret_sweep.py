"""The secret sweep: a secret used in URLs, headers and notebooks never appears in anything the suite produced.

This test runs last (marker ``sweep``). It first drives every surface once more with
the secret (repr, status, errors, logs, widgets), writes what they showed to
test-artifacts/, then searches every file there, including the executed notebooks
and the nbsocket log of the whole session.
"""

from __future__ import annotations

import json
import logging

import pytest

import nbsocket as nbs

from .conftest import ARTIFACTS, SECRET
from .servers import WsServer, eventually


def _widget_states(*roots: object) -> list[dict[str, object]]:
    """The state of every widget under ``roots`` (what the frontend would be sent)."""
    states, stack = [], list(roots)
    while stack:
        widget = stack.pop()
        states.append(widget.get_state())  # type: ignore[attr-defined]
        stack.extend(getattr(widget, "children", ()))
    return states


@pytest.mark.sweep
def test_no_secret_in_anything_the_suite_produced(demo) -> None:
    out = ARTIFACTS / "sweep"
    out.mkdir(parents=True, exist_ok=True)
    logging.getLogger("nbsocket").info("sweep starts")

    def failing(event):
        raise RuntimeError(f"handler failed on {event.request.url}")

    with WsServer() as server:
        url = server.url.replace("ws://", f"ws://user:{SECRET}@") + f"/feed?token={SECRET}"
        conn = nbs.connect(
            "sweep",
            url,
            handler=failing,
            headers={"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET},
            reconnect=nbs.ReconnectPolicy(initial=0.05, maximum=0.1),
        )
        conn.request("hello", timeout=5)
        eventually(lambda: conn.errors)
        panel = nbs.panel("sweep")
        dashboard = nbs.dashboard()
        server.stop()
        eventually(lambda: len(conn.errors) >= 3)
        with pytest.raises(nbs.ConnectError) as failure:
            nbs.connect("sweep2", url, open_timeout=2)
        shown = {
            "repr": repr(conn),
            "options": repr(conn.options),
            "status": nbs.connections().to_string(),
            "errors": [f"{r} {r.traceback}" for r in conn.errors],
            "exception": str(failure.value),
            "transcript": conn.transcript().to_string(),
            "widgets": _widget_states(panel, dashboard),
        }
        panel.close()
        dashboard.close()
    (out / "surfaces.json").write_text(json.dumps(shown, default=str, indent=1), encoding="utf-8")
    assert "***" in (out / "surfaces.json").read_text()

    found = []
    files = [p for p in ARTIFACTS.rglob("*") if p.is_file()]
    for path in files:
        data = path.read_bytes()
        if SECRET.encode() in data or SECRET.encode("utf-16-le") in data:
            found.append(str(path.relative_to(ARTIFACTS)))
    assert files and (ARTIFACTS / "nbsocket.log").exists()
    assert found == [], f"the secret leaked into: {found}"
