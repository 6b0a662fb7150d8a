"""A long run of the Socket.IO differential tests: many more generated packets than the suite's fixed set.

    python benchmarks/fuzz_socketio.py [EXAMPLES]     # default 20000 per test, new random examples each run

It runs ``tests/test_protocol_socketio_differential.py`` with ``NBSOCKET_FUZZ_EXAMPLES`` and
``NBSOCKET_FUZZ_RANDOM=1``; a failure prints the smallest packet Hypothesis found and how to replay it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    """Run the differential tests with ``argv[0]`` examples each (default 20000); the exit status is pytest's."""
    examples = argv[0] if argv else "20000"
    env = {**os.environ, "NBSOCKET_FUZZ_EXAMPLES": examples, "NBSOCKET_FUZZ_RANDOM": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout=0",
               "tests/test_protocol_socketio_differential.py"]
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
