"""``nbsocket run FILE``: a feed file (ordinary nbsocket API calls) run as a plain process, with no Jupyter.

The file runs as ``__main__`` in the main thread, as ``python FILE`` would run it. What it connects
stays open after its last line, until SIGTERM or SIGINT; then every socket closes with 1001, every
message received so far goes to the sinks (the live frame's pending rows, the JetStream queue, the
current Parquet part) and is flushed, and the process exits. With ``--shard I/N`` it holds only the
sockets whose names fall to shard ``I`` (:mod:`nbsocket.core.sharding`); ``connect`` returns a stand-in
that does nothing for the others. The exit codes are :data:`EXIT_CODES`.
"""

from __future__ import annotations

import logging
import os
import runpy
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from ..core.sharding import Shard
from ..core.state import CLOSED_FOR_GOOD
from ..runtime import Connection, Manager, process_run, registry, stop_stream_publishers
from .logs import StateLogger, log

__all__ = ["EXIT_CODES", "RunSettings", "run"]

EXIT_CODES = {
    0: "stopped by SIGTERM or SIGINT after a graceful stop (or the file connected nothing and finished)",
    1: "the feed file raised an exception (the sockets it opened were still closed and flushed)",
    2: "bad usage: an unknown option, a bad --shard or --metrics, a file that does not exist",
    3: "every socket this process held ended for good, and at least one failed",
    4: "stopped, but messages could not be flushed to a sink in time (counted in the log)",
    130: "a second SIGINT during the graceful stop: ended at once by the signal (143 for a second SIGTERM)",
    143: "a second SIGTERM during the graceful stop: ended at once by the signal",
}
"""What each exit code of ``nbsocket run`` means."""


@dataclass
class RunSettings:
    """What ``nbsocket run`` was asked to do."""

    file: str
    shard: Shard | None = None
    metrics: tuple[str, int] | None = None
    stop_timeout: float = 30.0
    """Seconds the graceful stop may take to close the sockets and flush the sinks."""
    args: list[str] = field(default_factory=list)
    """Arguments after the file: the file's ``sys.argv[1:]``."""


class _Stop(BaseException):
    """Raised into the feed file's code by SIGTERM/SIGINT (a BaseException: ``except Exception`` does not stop it)."""


@dataclass
class _Signals:
    """The stop signals received so far and whether the feed file is still running."""

    stop: threading.Event = field(default_factory=threading.Event)
    received: list[int] = field(default_factory=list)
    file_running: bool = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: the first asks for a graceful stop, the second stops at once."""
        self.received.append(signum)
        name = signal.Signals(signum).name
        if len(self.received) > 1:
            log.error("second %s: stopping at once", name, extra={"event": "exit", "exit_code": 128 + signum})
            logging.shutdown()
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)  # ends the process by the signal itself: status 128 + N
            return
        log.info("%s: stopping gracefully", name, extra={"event": "signal"})
        self.stop.set()
        if self.file_running:
            raise _Stop()


def run(settings: RunSettings, manager: Manager | None = None) -> int:
    """Run ``settings.file`` until SIGTERM/SIGINT (see the module); returns the exit code."""
    manager = manager if manager is not None else registry()
    path = os.path.abspath(settings.file)
    if not os.path.isfile(path):
        log.error("no such feed file: %s", settings.file, extra={"event": "exit", "exit_code": 2})
        return 2
    shard = str(settings.shard) if settings.shard is not None else None
    log.info(
        "running %s%s (run %s, pid %d)",
        settings.file,
        f" as shard {shard}" if shard else "",
        process_run(),
        os.getpid(),
        extra={"event": "start", "shard": shard, "run": process_run()},
    )
    if settings.shard is not None:
        manager.hold_only(settings.shard.holds, shard or "")
    manager.add_connect_listener(_log_states)
    signals = _Signals()
    previous = {sig: signal.signal(sig, signals.handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    server = None
    try:
        if settings.metrics is not None:
            from .metrics import serve

            server = serve(settings.metrics, manager, shard)
        code = _run_file(path, settings.args, signals)
        if code is None and not signals.stop.is_set():
            code = _hold(manager, signals)
        lost = _graceful_stop(manager, settings.stop_timeout)
        if code is None or (code == 0 and lost):
            code = 4 if lost else 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if server is not None:
            server.shutdown()
    log.info("exit %d: %s", code, EXIT_CODES.get(code, ""), extra={"event": "exit", "exit_code": code})
    return code


def _log_states(conn: Connection) -> None:
    conn.add_observer(StateLogger(conn.name))


def _run_file(path: str, args: list[str], signals: _Signals) -> int | None:
    """Run the feed file as ``__main__``; ``None`` when it finished (or a signal stopped it), 1 when it raised."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(path))
    signals.file_running = True
    try:
        runpy.run_path(path, run_name="__main__")
        return None
    except _Stop:
        return None
    except SystemExit as exc:
        if exc.code in (None, 0):
            return None
        log.error("the feed file called sys.exit(%r)", exc.code, extra={"event": "error", "where": "file"})
        return 1
    except BaseException as exc:
        log.error(
            "the feed file raised %s: %s", type(exc).__name__, exc, exc_info=True, extra={"event": "error", "where": "file"}
        )
        return 1
    finally:
        signals.file_running = False
        sys.argv = saved_argv
        sys.path[:] = saved_path


def _hold(manager: Manager, signals: _Signals) -> int | None:
    """Keep the sockets until a signal (``None``), or until every held socket ended for good (0, or 3 if one failed).

    A file that connected nothing at all (in any shard) has nothing to hold: 0 at once.
    """
    if not manager.names() and not manager.held_elsewhere():
        log.info("the feed file connected nothing; nothing to hold", extra={"event": "idle"})
        return 0
    held = len(manager.names())
    log.info("holding %d socket(s) (%d held by other shards)", held, len(manager.held_elsewhere()), extra={"event": "holding"})
    while not signals.stop.wait(0.5):
        states = [_state(manager, name) for name in manager.names()]
        if states and all(state in CLOSED_FOR_GOOD for state in states):
            failed = sum(state == "failed" for state in states)
            log.warning("every socket ended (%d failed)", failed, extra={"event": "ended"})
            return 3 if failed else 0
    return None


def _state(manager: Manager, name: str) -> str:
    conn = manager.find(name)
    return conn.state if conn is not None else "closed"


def _graceful_stop(manager: Manager, timeout: float) -> int:
    """Close every socket with 1001, flush every sink; returns how many messages could not be flushed."""
    deadline = time.monotonic() + timeout
    conns = [conn for conn in (manager.find(name) for name in manager.names()) if conn is not None]
    recordings = [conn.recorder for conn in conns if conn.recorder is not None]
    dropped_before = sum(int(recording.sink_stats()["dropped"]) for recording in recordings)
    log.info("closing %d socket(s) with 1001 and flushing %d sink(s)", len(conns), len(recordings), extra={"event": "stopping"})
    manager.shutdown(timeout=min(10.0, timeout / 2))
    for recording in recordings:
        _safely(recording.close, max(0.1, deadline - time.monotonic()))
    stop_stream_publishers(max(0.1, deadline - time.monotonic()))
    stats = [recording.sink_stats() for recording in recordings]
    lost = sum(int(s["pending"]) for s in stats) + sum(int(s["dropped"]) for s in stats) - dropped_before
    written = sum(int(s["written"]) for s in stats)
    if lost:
        log.error("%d message(s) could not be flushed to their sinks", lost, extra={"event": "flushed"})
    else:
        log.info("every sink flushed (%d message(s) written in all)", written, extra={"event": "flushed"})
    return lost


def _safely(close: Callable[[float], Any], timeout: float) -> None:
    try:
        close(timeout)
    except Exception as exc:
        log.error("closing a sink failed: %s: %s", type(exc).__name__, exc, extra={"event": "error", "where": "sink"})
