"""``%ws_wait``: block the cell until more messages arrive, with a progress bar in a notebook."""

from __future__ import annotations

import concurrent.futures
import time

import pandas as pd
from IPython.core.error import UsageError

from ..core.events import WsEvent
from ..core.flatten import message_fields
from ..core.state import CLOSED_FOR_GOOD
from ..errors import SocketClosedError, WaitTimeoutError
from ..runtime import Connection, ProgressBar

__all__ = ["POLL_SECONDS", "events_frame", "wait_for_messages"]


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


def wait_for_messages(conn: Connection, count: int, timeout: float | None, progress: ProgressBar) -> list[WsEvent]:
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
                raise WaitTimeoutError(waiter.timeout_message(timeout) + "; raise --timeout or check that the server is sending")
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
