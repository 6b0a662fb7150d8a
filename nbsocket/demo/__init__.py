"""The embedded demo server: echo, ticker, chat and a Slack-RTM-like feed on 127.0.0.1."""

from .server import DemoServer, ensure_demo_server

__all__ = ["DemoServer", "ensure_demo_server"]
