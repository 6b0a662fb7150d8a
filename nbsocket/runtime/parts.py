"""The parts one socket is made of, and the small ports through which parts see the socket they belong to.

A :class:`~nbsocket.runtime.connection.Connection` builds its parts once and hands them, as one
:class:`SocketParts`, to the session, the receiver and the protocol driver; receivers see the session through a
:class:`SessionPort`. Parts that need to see the socket itself (requests, pacing, the status row, a protocol's
driver) get it as a :class:`SocketView`: the few public things they use, never the ``Connection`` class (so no
part imports the facade that holds it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from ..core.codecs import Codec
from ..core.frame import LiveFrame
from ..core.options import ConnectOptions
from ..core.state import Stats
from .dispatch.dispatcher import Dispatcher
from .dispatch.handlers import HandlerList
from .dispatch.lockable import Lockable
from .loop import LoopThread
from .observe.errorlog import ErrorLog
from .observe.observers import Observers
from .observe.recording import Recording
from .outbound.outbox import Outbox, SendTimeout

__all__ = ["SessionPort", "SocketParts", "SocketView"]


@dataclasses.dataclass(frozen=True)
class SocketParts:
    """One socket's parts, shared by everything that works on it (see the module)."""

    name: str
    options: ConnectOptions
    loop_thread: LoopThread
    stats: Stats
    codec: Codec
    lockable: Lockable
    handlers: HandlerList
    outbox: Outbox
    observers: Observers
    errors: ErrorLog
    dispatcher: Dispatcher
    frame: LiveFrame | None
    recorder: Recording | None


class SessionPort(Protocol):
    """What a receiver needs of its session: the numbering of received messages, the URL, the writer."""

    seq: int
    last_ts_ns: int

    @property
    def url(self) -> str: ...

    @property
    def real_url(self) -> str: ...

    def wake_writer(self, in_loop_thread: bool, call_soon: Callable[[Callable[[], object]], None]) -> None: ...


class SocketView(Protocol):
    """What a part may see of the socket it works for: its public face (a ``Connection`` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def content_type(self) -> str: ...

    @property
    def options(self) -> ConnectOptions: ...

    @property
    def stats(self) -> Stats: ...

    @property
    def received(self) -> int: ...

    @property
    def removed(self) -> bool: ...

    @property
    def close_code(self) -> int | None: ...

    @property
    def close_reason(self) -> str: ...

    def encode(self, message: Any) -> str | bytes: ...  # a user's message: any value its codec encodes

    def send(self, message: Any, *, timeout: SendTimeout = ...) -> None: ...

    def disconnect(self, code: int = 1000, reason: str = "") -> None: ...

    def reset(self, url: str | None = None) -> None: ...

    def add_observer(self, observer: object) -> None: ...  # (its hooks are found by name: see observe.observers)

    def remove_observer(self, observer: object) -> None: ...

    def closed_message(self, verb: str) -> str: ...

    def note_round_trips(self, kind: str, samples: list[tuple[int, float]]) -> None: ...
