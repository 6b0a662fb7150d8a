"""The magics' defaults as traitlets, so ``%config NbSocket.max_rows = 10_000`` changes them.

They can also be set for every session in ``ipython_config.py``::

    c.NbSocket.ping_interval = 10

The ``connect`` options among them take their default, type and help from
:data:`nbsocket.core.options.CONNECT_OPTIONS` (the ones marked ``config``).
"""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Float, Integer, TraitError, TraitType, Unicode, validate
from traitlets.config import Configurable

from ..core.codecs import get_codec
from ..core.options import CONNECT_OPTIONS, option

__all__ = ["CONFIG_OPTIONS", "NbSocket"]


CONFIG_OPTIONS = tuple(o.name for o in CONNECT_OPTIONS if o.config)
"""The ``connect`` options that have a ``%config NbSocket.<name>`` trait."""

_TRAITS: dict[type | None, type[TraitType[Any, Any]]] = {str: Unicode, int: Integer, float: Float, bool: Bool}


def _trait(name: str) -> TraitType[Any, Any]:
    """The ``%config`` trait of the ``connect`` option ``name``, from its declaration."""
    opt = option(name)
    extra = {"allow_none": True} if opt.none else {}
    trait: TraitType[Any, Any] = _TRAITS[opt.kind](opt.default, help=opt.config_help(), **extra).tag(config=True)
    return trait


def _names(kind: type, *more: str) -> tuple[str, ...]:
    return (*(o.name for o in CONNECT_OPTIONS if o.config and o.kind is kind), *more)


class NbSocket(Configurable):
    """Defaults of the ``%ws_*`` magics; an option given on the magic's line wins over these."""

    content_type = _trait("content_type")
    max_rows = _trait("max_rows")
    frame = _trait("frame")
    reconnect = _trait("reconnect")
    open_timeout = _trait("open_timeout")
    ping_interval = _trait("ping_interval")
    ping_timeout = _trait("ping_timeout")
    max_size = _trait("max_size")
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
        content_type: str = proposal["value"]
        return content_type

    @validate(*_names(int, "wait_count"))
    def _positive_int(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None and value < 1:
            raise TraitError(f"NbSocket.{proposal['trait'].name} must be a positive integer or None, not {value!r}")
        return value

    @validate(*_names(float, "wait_timeout"))
    def _positive_seconds(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None and value <= 0:
            raise TraitError(f"NbSocket.{proposal['trait'].name} must be a positive number of seconds or None, not {value!r}")
        return value

    def connect_options(self) -> dict[str, Any]:
        """The ``connect`` keywords these defaults stand for."""
        return {name: getattr(self, name) for name in CONFIG_OPTIONS}
