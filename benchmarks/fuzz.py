"""Long runs of the differential and property tests: many more generated inputs than the suite's fixed set.

    python benchmarks/fuzz.py [TARGET ...] [--examples N] [--fixed]

Targets (default: all of them):

* ``wire``: byte streams played to nbsocket's wire and to websockets' own parser
  (``tests/runtime/transport/test_differential.py``);
* ``socketio``: the Socket.IO/Engine.IO codec against python-socketio's and python-engineio's packet classes;
* ``jsonrpc``, ``graphql``, ``stomp``: each codec's properties, against json-rpc-2.0's and graphql-ws's validators
  and stomp.py's frame parser.

Each run draws new random inputs (``NBSOCKET_FUZZ_RANDOM=1``) unless ``--fixed`` asks for the suite's derandomized
sequence, longer; ``--examples`` sets the examples per test (``NBSOCKET_FUZZ_EXAMPLES``). A failure prints the
smallest input Hypothesis found. The exit status is pytest's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["TARGETS", "main"]

ROOT = Path(__file__).resolve().parents[1]

TARGETS = {
    "wire": ["tests/runtime/transport/test_differential.py", "-k", "any_stream or without_the_short_path"],
    "socketio": ["tests/protocols/socketio/test_differential.py"],
    "jsonrpc": ["tests/protocols/jsonrpc/test_properties.py"],
    "graphql": ["tests/protocols/graphql/test_properties.py"],
    "stomp": ["tests/protocols/stomp/test_properties.py"],
}
"""What each target runs (pytest arguments)."""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET", help="any of: " + ", ".join(TARGETS))
    parser.add_argument("--examples", type=int, default=None, help="examples per test (default: 2000; wire: 500)")
    parser.add_argument("--fixed", action="store_true", help="the suite's derandomized inputs, only more of them")
    args = parser.parse_args(argv)
    unknown = [target for target in args.targets if target not in TARGETS]
    if unknown:
        parser.error(f"unknown target {unknown[0]!r} (choose from {', '.join(TARGETS)})")
    status = 0
    for target in args.targets or list(TARGETS):
        examples = args.examples or (500 if target == "wire" else 2000)
        env = {**os.environ, "NBSOCKET_FUZZ_EXAMPLES": str(examples)}
        if not args.fixed:
            env["NBSOCKET_FUZZ_RANDOM"] = "1"
        print(f"=== {target}: {examples} examples per test", flush=True)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout=0", *TARGETS[target]]
        status = subprocess.call(command, cwd=ROOT, env=env) or status
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
