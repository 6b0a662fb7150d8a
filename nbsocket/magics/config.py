"""The magics' defaults as traitlets, so ``%config NbSocket.max_rows = 10_000`` changes them.

They can also be set for every session in ``ipython_config.py``::

    c.NbSocket.ping_interval = 10
"""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Float, Integer, TraitError, Unicode, validate
from traitlets.config import Configurable

from ..core.codecs import get_codec
from ..core.options import ConnectOptions

__all__ = ["NbSocket"]


_CORE = ConnectOptions()


class NbSocket(Configurable):
    """Defaults of the ``%ws_*`` magics; an option given on the magic's line wins over these."""

    content_type = Unicode(
        _CORE.content_type,
        help="Content type used to parse received messages and encode sent data (-t/--content-type).",
    ).tag(config=True)
    max_rows = Integer(
        _CORE.max_rows,
        allow_none=True,
        help="Rows kept in each socket's live DataFrame, oldest dropped first; None keeps every row (--max-rows).",
    ).tag(config=True)
    frame = Bool(_CORE.frame, help="Keep a live DataFrame of received messages (--no-frame turns it off).").tag(config=True)
    reconnect = Bool(
        True, help="Reconnect with backoff after the connection drops (--no-reconnect turns it off)."
    ).tag(config=True)
    open_timeout = Float(
        _CORE.open_timeout, allow_none=True, help="Seconds to wait for a socket to open; None waits forever (--open-timeout)."
    ).tag(config=True)
    ping_interval = Float(
        _CORE.ping_interval, allow_none=True, help="Seconds between keepalive pings; None turns keepalive off (--ping-interval)."
    ).tag(config=True)
    ping_timeout = Float(
        _CORE.ping_timeout, allow_none=True,
        help="Seconds to wait for a pong before the connection counts as lost; None waits forever (--ping-timeout).",
    ).tag(config=True)
    max_size = Integer(
        _CORE.max_size, allow_none=True, help="Largest message accepted, in bytes; None accepts any size (--max-size)."
    ).tag(config=True)
    wait_timeout = Float(
        30.0, allow_none=True, help="Seconds %ws_wait waits before it gives up; None waits until interrupted (--timeout)."
    ).tag(config=True)
    wait_count = Integer(1, help="Messages %ws_wait waits for when -n is not given.").tag(config=True)
    progress = Bool(True, help="Show a progress bar while %ws_wait waits (in a notebook only).").tag(config=True)

    @validate("content_type")
    def _valid_content_type(self, proposal: Any) -> str:
        try:
            get_codec(proposal["value"])
        except ValueError as exc:
            raise TraitError(str(exc)) from None
        return proposal["value"]

    @validate("max_rows", "max_size", "wait_count")
    def _positive_int(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None and value < 1:
            raise TraitError(f"NbSocket.{proposal['trait'].name} must be a positive integer or None, not {value!r}")
        return value

    @validate("open_timeout", "ping_interval", "ping_timeout", "wait_timeout")
    def _positive_seconds(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None and value <= 0:
            raise TraitError(f"NbSocket.{proposal['trait'].name} must be a positive number of seconds or None, not {value!r}")
        return value

    def connect_options(self) -> dict[str, Any]:
        """The ``connect`` keywords these defaults stand for."""
        return {
            "content_type": self.content_type,
            "max_rows": self.max_rows,
            "frame": self.frame,
            "reconnect": self.reconnect,
            "open_timeout": self.open_timeout,
            "ping_interval": self.ping_interval,
            "ping_timeout": self.ping_timeout,
            "max_size": self.max_size,
        }
