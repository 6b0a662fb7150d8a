"""The run id of this process's recordings: new at every process start (the ``<run>`` of a JetStream ``Nats-Msg-Id``
and of a Parquet part's name), so a restarted recorder's messages and parts never collide with the last run's."""

from __future__ import annotations

import secrets
import threading

from ....core.streams import run_id

__all__ = ["process_run", "run_for"]

_process_run = run_id(entropy=secrets.token_hex(3))
_lock = threading.Lock()
_used: dict[str, int] = {}


def process_run() -> str:
    """This process's run id: the start time in base 36 and six random hex digits."""
    return _process_run


def run_for(socket: str) -> str:
    """The run id of a new recording of ``socket``: the process's, with ``-2``, ``-3``... when this process recorded the
    name before (a removed and reconnected socket counts from seq 1 again)."""
    with _lock:
        used = _used.get(socket, 0) + 1
        _used[socket] = used
    return _process_run if used == 1 else f"{_process_run}-{used}"
