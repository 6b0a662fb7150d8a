"""``nbsocket run`` in a subprocess, as an operator starts it, and its JSON log lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["Run"]


class Run:
    """``nbsocket run FILE ARGS`` in a process of its own; its JSON log lines go to a file we read."""

    def __init__(self, file: Path, *args: str, env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.log_path = log or file.with_suffix(f".{time.monotonic_ns()}.log")
        self._log = open(self.log_path, "w")  # noqa: SIM115 (open while the process runs)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nbsocket", "run", str(file), *args],
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def lines(self) -> list[dict[str, Any]]:
        """The log lines so far (each a JSON object; anything else fails the test)."""
        text = self.log_path.read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def wait_for(self, event: str, timeout: float = 30.0, count: int = 1) -> list[dict[str, Any]]:
        """Wait until ``count`` lines of ``event`` were logged (or the process ended); returns them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.lines() if line.get("event") == event]
            if len(found) >= count:
                return found
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"no {count} {event!r} line(s) in the log (exit {self.process.poll()}):\n{self.log_path.read_text()}"
                )
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``sig`` and return the exit code."""
        self.process.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self._log.close()
