"""Where nbsocket's CPU per message goes: py-spy on the nbsocket client of ``cpu_per_message.py``.

    python benchmarks/profile_receive.py [--rate 20000] [--messages 200000] [--top 30] [--svg profile.svg] [--quick]

Needs ``py-spy`` (``pip install py-spy``, in the ``bench`` extra). The same paced, pre-framed
feed as ``cpu_per_message.py`` goes to ``nbs.connect`` with its defaults (plain no-op handler,
live frame, transcript). One unprofiled run gives the CPU per message; a second run under
``py-spy record --gil --nonblocking`` (only samples that hold the GIL, i.e. Python work; the
process is not paused) gives the shares. Each sample is charged to a category by its innermost
frame that matches one (so pandas under the live frame counts as the live frame, ``json`` under
the codec as decoding); start-up (imports, connect) is left out. The table shows each
category's share and its microseconds per message (share x measured CPU per message), then the
functions with the most self time. ``--svg`` also writes a flame graph of the same run.
Uses only nbsocket's public API; the categories match file names, so they survive a refactor
as long as the files keep roughly their roles (unknown nbsocket files show as "nbsocket: other").
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import HERE, FrameServer, run_client

# (category, regex on "function (path:line)"), checked from the innermost frame outwards; first match wins
RULES: list[tuple[str, str]] = [
    ("handler (the user's no-op)", r"\(_clients\.py"),
    ("json decode (stdlib)", r"\((json/|nbsocket/codecs\.py|nbsocket/core/codecs)"),
    ("live frame: flatten / row dict", r"\(nbsocket/(core/)?flatten"),
    (
        "live frame: append + chunk build (pandas)",
        r"\((nbsocket/(core/)?frame\.py|nbsocket/(core/)?live|pandas/|numpy/|pyarrow/)",
    ),
    ("transcript", r"\(nbsocket/(core/)?transcript|\(nbsocket/runtime/record"),
    ("observers / stats", r"\(nbsocket/(runtime/)?observers"),
    ("WsEvent / Request objects", r"\(nbsocket/(core/)?events\.py"),
    (
        "dispatch + lane hand-off (threads, futures)",
        r"\(nbsocket/(runtime/)?(dispatch|lane)|\(concurrent/futures|\(threading\.py|\(queue\.py",
    ),
    ("nbsocket session: _receive etc. (own lines)", r"\(nbsocket/(runtime/)?session"),
    ("websockets: frame parsing, assembler, recv", r"\(websockets/"),
    ("asyncio: event loop, transport", r"\(asyncio/|\(selectors\.py"),
    ("nbsocket: other", r"\(nbsocket/"),
]
STARTUP = re.compile(r"_find_and_load|\bconnect \(nbsocket/api|Manager\.connect|_open_first|\(importlib")


def categorise(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, pattern in RULES:
            if re.search(pattern, frame):
                return name
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--top", type=int, default=30, help="functions to list by self time")
    parser.add_argument("--svg", help="also write a flame graph here")
    parser.add_argument("--sample-rate", type=int, default=1000, help="py-spy samples per second")
    parser.add_argument(
        "--client",
        default="nbsocket",
        choices=["nbsocket", "websockets", "picows"],
        help="profile this client instead (the same categories, for comparison)",
    )
    parser.add_argument("--quick", action="store_true", help="40,000 messages")
    args = parser.parse_args()
    if args.quick:
        args.messages = min(args.messages, 40_000)
    pyspy = shutil.which("py-spy")
    if pyspy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy (or the 'bench' extra)")
    with FrameServer() as server, tempfile.TemporaryDirectory() as tmp:
        url = f"{server.url}/paced?rate={args.rate:g}&count={args.messages}"
        client = [os.path.join(HERE, "_clients.py"), "receive", args.client, url, "--count", str(args.messages)]
        plain = run_client(*client[1:])
        us = (plain["cpu1"] - plain["cpu0"]) / (plain["count"] - plain["skip"]) * 1e6
        rate = (plain["count"] - plain["skip"]) / (plain["t1"] - plain["t0"])
        raw = os.path.join(tmp, "profile.txt")
        subprocess.run(
            [
                pyspy,
                "record",
                "--gil",
                "--nonblocking",
                "--threads",
                "--rate",
                str(args.sample_rate),
                "--format",
                "raw",
                "-o",
                raw,
                "--",
                sys.executable,
                *client,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        if args.svg:
            subprocess.run(
                [
                    pyspy,
                    "record",
                    "--gil",
                    "--nonblocking",
                    "--rate",
                    str(args.sample_rate),
                    "-o",
                    args.svg,
                    "--",
                    sys.executable,
                    *client,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
        categories: collections.Counter[str] = collections.Counter()
        self_time: collections.Counter[str] = collections.Counter()
        threads: collections.Counter[str] = collections.Counter()
        total = 0
        with open(raw) as f:
            for line in f:
                if not line.strip():
                    continue
                stack, count_text = line.rstrip().rsplit(" ", 1)
                frames = stack.split(";")
                thread, frames = frames[0], frames[1:]
                if not frames or any(STARTUP.search(fr) for fr in frames):
                    continue
                n = int(count_text)
                total += n
                threads[re.sub(r"thread \(\d+\):? ?", "", thread) or "unnamed"] += n
                categories[categorise(frames)] += n
                self_time[re.sub(r":\d+\)", ")", frames[-1])] += n
    print(
        f"{args.client} at {args.rate:,.0f} msgs/s paced, {args.messages:,} messages: "
        f"{us:.1f} us CPU per message unprofiled, handled {rate:,.0f} msgs/s"
    )
    print(
        f"{total:,} samples holding the GIL (start-up left out); by thread: "
        + ", ".join(f"{k} {v / total:.0%}" for k, v in threads.most_common())
    )
    print()
    print(f"{'category':<48}{'share':>7}{'us/msg':>8}")
    for name, n in categories.most_common():
        print(f"{name:<48}{n / total:>7.1%}{n / total * us:>8.2f}")
    print()
    print(f"top {args.top} functions by self time")
    print(f"{'share':>7}{'us/msg':>8}  function (file)")
    for name, n in self_time.most_common(args.top):
        print(f"{n / total:>7.1%}{n / total * us:>8.2f}  {name}")
    if args.svg:
        print(f"\nflame graph: {args.svg}")


if __name__ == "__main__":
    main()
