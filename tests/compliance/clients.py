"""The two Autobahn|Testsuite clients: nbsocket through its public API, and bare websockets as the baseline.

Both do what Autobahn's own test client does: for each case, open
``/runCase?case=N&agent=AGENT``, echo every message back with the same type and bytes until the
server closes, then ask ``/updateReports?agent=AGENT`` for the reports. ``/getCaseCount`` says how
many cases the server runs.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import connect as websockets_connect
from websockets.exceptions import WebSocketException

import nbsocket as nbs

__all__ = [
    "MAX_SIZE",
    "CaseRun",
    "run_nbsocket_cases",
    "run_websockets_cases",
]

MAX_SIZE = 2**25
"""Largest message either client accepts: above Autobahn's largest (16 MiB, in section 9)."""
CASE_TIMEOUT = 120.0
"""The longest one case may take before the client gives up on it (section 9's slowest take seconds)."""
REPORT_TIMEOUT = 300.0
"""The fuzzing server writes every report before it answers ``/updateReports``."""
ENDED = frozenset({"closed", "failed"})

Progress = Callable[[int, int], None]


@dataclass
class CaseRun:
    """What the client saw of one case (the verdict is the fuzzing server's, in its report)."""

    number: int
    state: str
    close_code: int | None
    seconds: float
    error: str = ""


def _nbsocket_options() -> dict[str, Any]:
    return {
        "content_type": "application/octet-stream",  # data is the body as received; nothing parsed
        "max_size": MAX_SIZE,
        "compression": "deflate",
        "reconnect": False,
    }


def _wait_ended(conn: nbs.Connection, closed: threading.Event, timeout: float) -> None:
    """Until the socket is closed or failed and ``on_close`` ran (after the handlers of every message before it)."""
    deadline = time.monotonic() + timeout
    while conn.state not in ENDED or not closed.is_set():
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"still {conn.state} after {timeout:.0f} s (on_close {'ran' if closed.is_set() else 'did not run'})"
            )
        closed.wait(0.01)


def _nbsocket_session(name: str, url: str, handler: Callable[[nbs.WsEvent], None], timeout: float, **extra: Any) -> CaseRun:
    """Connect ``name`` to ``url`` with ``handler``, wait until the server has closed it, and forget it."""
    started = time.monotonic()
    closed = threading.Event()
    try:
        conn = nbs.connect(
            name, url, handler=handler, on_close=lambda conn, code, reason: closed.set(), **{**_nbsocket_options(), **extra}
        )
    except nbs.ConnectError as exc:
        return CaseRun(0, "refused", getattr(exc, "code", None), time.monotonic() - started, f"{type(exc).__name__}: {exc}")
    try:
        _wait_ended(conn, closed, timeout)
        errors = "; ".join(f"{record.where}: {record.error}: {record.message}" for record in conn.errors)
        return CaseRun(0, conn.state, conn.close_code, time.monotonic() - started, errors)
    except TimeoutError as exc:
        return CaseRun(0, conn.state, conn.close_code, time.monotonic() - started, str(exc))
    finally:
        nbs.remove(name)


def _echo(event: nbs.WsEvent) -> None:
    """Send the message back as it came: text as text, binary as binary."""
    event.send(event.request.body)


def _nbsocket_case_count(base_url: str) -> int:
    counts: list[int] = []
    _nbsocket_session(
        "autobahn-case-count",
        f"{base_url}/getCaseCount",
        lambda event: counts.append(int(event.data)),
        30.0,
        content_type="text/plain",
    )
    if not counts:
        raise RuntimeError(f"{base_url}/getCaseCount sent no count")
    return counts[0]


def run_nbsocket_cases(base_url: str, agent: str = "nbsocket", progress: Progress | None = None) -> list[CaseRun]:
    """Run every case the fuzzing server at ``base_url`` has through ``nbs.connect``, then update its reports."""
    count = _nbsocket_case_count(base_url)
    runs = []
    for number in range(1, count + 1):
        run = _nbsocket_session(f"autobahn-{number}", f"{base_url}/runCase?case={number}&agent={agent}", _echo, CASE_TIMEOUT)
        run.number = number
        runs.append(run)
        if progress is not None:
            progress(number, count)
    report = _nbsocket_session(
        "autobahn-reports",
        f"{base_url}/updateReports?agent={agent}",
        lambda event: None,
        REPORT_TIMEOUT,
        open_timeout=REPORT_TIMEOUT,
    )
    if report.state not in ENDED or report.error.startswith("ConnectError"):
        raise RuntimeError(f"updateReports failed: {report}")
    return runs


async def _websockets_case(base_url: str, number: int, agent: str) -> CaseRun:
    started = time.monotonic()
    async with websockets_connect(f"{base_url}/runCase?case={number}&agent={agent}", max_size=MAX_SIZE) as ws:
        error = ""
        try:
            async for message in ws:
                await ws.send(message)
        except WebSocketException as exc:
            error = f"{type(exc).__name__}: {exc}"
    code = ws.close_code
    return CaseRun(number, "closed", code, time.monotonic() - started, error)


async def _websockets_cases(base_url: str, agent: str, progress: Progress | None) -> list[CaseRun]:
    async with websockets_connect(f"{base_url}/getCaseCount") as ws:
        count = json.loads(await ws.recv())
    runs = []
    for number in range(1, count + 1):
        try:
            run = await asyncio.wait_for(_websockets_case(base_url, number, agent), CASE_TIMEOUT)
        except (WebSocketException, OSError, asyncio.TimeoutError) as exc:
            run = CaseRun(number, "failed", None, 0.0, f"{type(exc).__name__}: {exc}")
        runs.append(run)
        if progress is not None:
            progress(number, count)
    async with websockets_connect(f"{base_url}/updateReports?agent={agent}", open_timeout=REPORT_TIMEOUT) as ws:
        await ws.wait_closed()
    return runs


def run_websockets_cases(base_url: str, agent: str = "websockets", progress: Progress | None = None) -> list[CaseRun]:
    """The baseline: every case through a bare ``websockets`` asyncio client, as websockets' own compliance client."""
    return asyncio.run(_websockets_cases(base_url, agent, progress))
