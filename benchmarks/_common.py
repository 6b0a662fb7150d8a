"""Shared pieces of the benchmarks: a demo server in its own process, and timing helpers."""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def demo_server_process() -> Iterator[str]:
    """Run ``nbsocket demo-server`` on a free port in a child process; yields its ``ws://host:port``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbsocket", "demo-server", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = re.search(r"(ws://[\d.]+:\d+)", line)
            if match:
                yield match.group(1)
                break
        else:
            raise RuntimeError("the demo server did not start")
    finally:
        proc.terminate()
        proc.wait(10)


def median(values: list[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)
