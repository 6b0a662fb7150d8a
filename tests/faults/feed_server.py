"""A feed server run as its own process, so tests can kill it (SIGKILL) and start it again.

    python -m tests.faults.feed_server PORT LOGFILE

Sends ``{"n": i}`` ten times a second to each client, and appends every message it
receives to LOGFILE (flushed at once), so what reached it survives being killed.
"""

from __future__ import annotations

import asyncio
import itertools
import sys

from websockets.asyncio.server import serve


async def main(port: int, log_path: str) -> None:
    log = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: ASYNC230, SIM115 (open for the process's life)

    async def handler(ws) -> None:  # type: ignore[no-untyped-def]
        async def feed() -> None:
            for i in itertools.count(1):
                await ws.send(f'{{"n": {i}}}')
                await asyncio.sleep(0.1)

        task = asyncio.ensure_future(feed())
        try:
            async for message in ws:
                log.write(message + "\n")
        finally:
            task.cancel()

    async with serve(handler, "127.0.0.1", port):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
