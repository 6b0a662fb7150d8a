"""``%ws_wait``: block the cell until more messages arrive, with a progress bar in a notebook."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import pandas as pd
from IPython.core.error import UsageError

from ..runtime.connection import Connection
from ..errors import SocketClosedError, WaitTimeoutError
from ..core.events import WsEvent
from ..core.flatten import message_fields
from ..core.state import CLOSED_FOR_GOOD

POLL_SECONDS = 0.1
"""How often the waiting cell looks at the count, the deadline and the socket's state."""


def events_frame(events: list[WsEvent]) -> pd.DataFrame:
    """Events as rows shaped like the live frame: ``timestamp`` (UTC), ``socket``, ``seq``, then the message's fields."""
    rows = [
        {"timestamp": e.timestamp_ns, "socket": e.name, "seq": e.seq, **message_fields(e.data, e.error, e.request.body)}
        for e in events
    ]
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame({"timestamp": [], "socket": [], "seq": []})
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ns", utc=True)
    return frame


def in_notebook(shell: Any) -> bool:
    """True when ``shell`` belongs to a kernel (so a frontend can show widgets)."""
    return getattr(shell, "kernel", None) is not None


class Progress:
    """An ``IntProgress`` bar showing how many messages arrived; does nothing outside a notebook."""

    def __init__(self, shell: Any, name: str, count: int, enabled: bool) -> None:
        self.name = name
        self.count = count
        self.bar: Any = None
        self.handle: Any = None
        if not (enabled and in_notebook(shell)):
            return
        try:
            import ipywidgets
            from IPython.display import display
        except ImportError:
            return
        self.bar = ipywidgets.IntProgress(value=0, min=0, max=count, description=self._label(0))
        self.handle = display(self.bar, display_id=True)

    def _label(self, n: int) -> str:
        return f"{self.name} {n}/{self.count}"

    def update(self, n: int) -> None:
        """Show ``n`` messages received."""
        bar = self.bar
        if bar is not None and bar.value != n:
            bar.value = min(n, self.count)
            bar.description = self._label(n)

    def close(self) -> None:
        """Take the bar away (its place in the output is left empty)."""
        bar, self.bar = self.bar, None
        if bar is None:
            return
        if self.handle is not None:
            self.handle.update({"text/plain": ""}, raw=True)
        bar.close()


def wait_for_messages(conn: Connection, count: int, timeout: float | None, progress: Progress) -> list[WsEvent]:
    """Block until ``count`` more messages arrive on ``conn``; Ctrl-C stops waiting and leaves the socket as it is.

    Raises :class:`WaitTimeoutError` after ``timeout`` seconds and
    :class:`SocketClosedError` if the socket closes for good meanwhile.
    """
    if conn.state in CLOSED_FOR_GOOD:
        raise SocketClosedError(f"socket {conn.name!r} is {conn.state}; run %ws_reset {conn.name} before waiting on it")
    deadline = None if timeout is None else time.monotonic() + timeout
    waiter = conn.waiter(count)
    try:
        while True:
            step = POLL_SECONDS if deadline is None else max(0.0, min(POLL_SECONDS, deadline - time.monotonic()))
            try:
                return waiter.future.result(step)
            except concurrent.futures.TimeoutError:
                if waiter.future.done():
                    continue
            progress.update(len(waiter.events))
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeoutError(
                    waiter.timeout_message(timeout) + "; raise --timeout or check that the server is sending"
                )
            if conn.state in CLOSED_FOR_GOOD:
                raise SocketClosedError(
                    f"socket {conn.name!r} became {conn.state} while waiting ({len(waiter.events)} of {count} "
                    f"message(s) arrived); run %ws_reset {conn.name} to reconnect"
                )
    except KeyboardInterrupt:
        raise UsageError(
            f"%ws_wait interrupted: {len(waiter.events)} of {count} message(s) arrived on {conn.name!r}; "
            f"the socket is still {conn.state}"
        ) from None
    finally:
        waiter.cancel()
        progress.close()
