"""The ``nbsocket`` command: ``nbsocket demo``, ``nbsocket demo-server`` and ``nbsocket run FILE``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from . import __version__
from .demo.server import DEFAULT_HOST, DEFAULT_PORT, DemoServer

__all__ = ["MAIN_COMMAND", "build_parser", "main"]


def _demo_server(args: argparse.Namespace) -> int:
    server = DemoServer(args.host, args.port)

    async def run() -> None:
        await server.start()
        print(f"nbsocket demo server on {server.base_url} (Ctrl-C to stop)", flush=True)
        print(f"  {server.url('/echo')}  {server.url('/ticker?rate=10')}  {server.url('/chat')}", flush=True)
        print(f"  {server.http_url('/rtm.connect')} -> a fresh {server.url('/rtm')} URL", flush=True)
        await server.wait_stopped()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"nbsocket demo-server: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo.launcher import main as launch

    try:
        return launch(
            args.dir,
            host=args.host,
            port=args.port,
            server_port=args.server_port,
            headless=args.headless,
            open_browser=not args.no_browser,
        )
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    from .core.sharding import parse_shard
    from .errors import InvalidOptionError
    from .service import RunSettings, run
    from .service.logs import install
    from .service.metrics import parse_address

    install(logging.DEBUG if args.verbose else logging.INFO)
    try:
        shard = parse_shard(args.shard) if args.shard else None
        metrics = parse_address(args.metrics) if args.metrics else None
    except InvalidOptionError as exc:
        print(f"nbsocket run: {exc}", file=sys.stderr)
        return 2
    return run(RunSettings(args.file, shard, metrics, args.stop_timeout))


MAIN_COMMAND = (
    "Start here: nbsocket demo  (JupyterLab on the quickstart notebook, against the embedded demo server;\n"
    "            the example notebooks are copied into ./nbsocket-demo, and your edits are kept there)"
)
"""What a bare ``nbsocket`` prints under its help."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="nbsocket",
        description="Named connections to WebSocket servers from Jupyter: the demo, its server, feed files run headless.",
    )
    parser.add_argument("--version", action="version", version=f"nbsocket {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="the demo server plus JupyterLab on the quickstart notebook")
    demo.add_argument("--dir", default="nbsocket-demo", help="folder for the example notebooks (default ./nbsocket-demo)")
    demo.add_argument("--host", default=DEFAULT_HOST, help=f"address for JupyterLab and the demo server (default {DEFAULT_HOST})")
    demo.add_argument("--port", type=int, default=0, help="JupyterLab's port (default: a free one)")
    demo.add_argument("--server-port", type=int, default=DEFAULT_PORT, help=f"the demo server's port (default {DEFAULT_PORT})")
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser (for machines without a screen)")
    demo.add_argument(
        "--headless", action="store_true", help="run the quickstart notebook end to end without JupyterLab and print a summary"
    )
    demo.set_defaults(func=_demo)
    server = sub.add_parser("demo-server", help="run the embedded demo server")
    server.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}; only this machine)")
    server.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    server.set_defaults(func=_demo_server)
    runner = sub.add_parser(
        "run",
        help="run a feed file (ordinary nbsocket API calls) as a service, with no Jupyter",
        description="Run FILE, a Python file that uses the nbsocket API, until SIGTERM or SIGINT; then close every "
        "socket with 1001, flush every sink and exit 0. Logs are JSON lines on stderr. Exit codes: 0 stopped, "
        "1 the file raised, 2 bad usage, 3 every socket ended and one failed, 4 a sink could not be flushed, "
        "130 or 143 a second SIGINT or SIGTERM ended it at once.",
    )
    runner.add_argument("file", help="the feed file")
    runner.add_argument(
        "--shard",
        metavar="I/N",
        help="hold only the sockets whose names fall to shard I of N (a stable hash of the name; I from 1 to N)",
    )
    runner.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus metrics at http://HOST:PORT/metrics")
    runner.add_argument(
        "--stop-timeout", type=float, default=30.0, metavar="S", help="seconds the graceful stop may take (default 30)"
    )
    runner.set_defaults(func=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nbsocket`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        print(f"\n{MAIN_COMMAND}")
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
