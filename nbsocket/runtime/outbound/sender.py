"""Queueing a socket's messages: the outbox, its bound, waiting for room, and waking the writer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...core.state import CLOSED_FOR_GOOD
from ...errors import OutboxFullError, SocketClosedError
from ..loop import LoopThread
from .outbox import DEFAULT_TIMEOUT, Default, Outbox, SendTimeout

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["DEFAULT_TIMEOUT", "Default", "SendTimeout", "Sender"]

log = logging.getLogger("nbsocket")


class Sender:
    """A connection's sending part: puts encoded payloads in the outbox and wakes the writer.

    ``removed`` and ``state`` say whether the socket can take messages now.
    """

    def __init__(
        self,
        name: str,
        outbox: Outbox,
        session: Session,
        loop_thread: LoopThread,
        send_timeout: float | None,
        removed: Callable[[], bool],
    ) -> None:
        self.name = name
        self._outbox = outbox
        self._session = session
        self._loop_thread = loop_thread
        self._send_timeout = send_timeout
        self._removed = removed

    def send(self, payload: str | bytes, timeout: SendTimeout = DEFAULT_TIMEOUT) -> None:
        """Queue ``payload``; see ``Connection.send`` for when it waits and what it raises."""
        state = self._session.shown_state
        if self._removed() or state in CLOSED_FOR_GOOD:
            raise SocketClosedError(self.closed_message("send on"))
        try:
            self._outbox.put(payload, state)
        except OutboxFullError:
            wait = self._send_timeout if timeout is DEFAULT_TIMEOUT else timeout
            if state != "open" or self._loop_thread.in_loop_thread() or wait == 0:
                raise  # down: nothing drains until it reopens; on the loop: waiting would block the writer
            self.wake_writer()
            self._outbox.put(payload, state, wait)
        self.wake_writer()

    def wake_writer(self) -> None:
        """Wake the socket's writer if it sleeps."""
        loop_thread = self._loop_thread
        if loop_thread.running:
            self._session.wake_writer(loop_thread.in_loop_thread(), loop_thread.call_soon)

    def closed_message(self, verb: str) -> str:
        """Why ``verb`` cannot be done on a socket that is removed or closed for good, and what to do."""
        if self._removed():
            return f"cannot {verb} {self.name!r}: it was removed; connect it again with nbs.connect()"
        session = self._session
        code, reason = session.closed_code, session.closed_reason
        why = f" (code {code}{' ' + repr(reason) if reason else ''})" if code else ""
        return (
            f"cannot {verb} {self.name!r}: the socket is {session.shown_state}{why}; call nbs.reset({self.name!r}) to reconnect"
        )

    def clear(self) -> int:
        """Drop the messages waiting to be sent; returns how many were dropped."""
        dropped = self._outbox.clear()
        if dropped:
            log.warning("socket %r: dropped %d queued message(s) on request", self.name, dropped)
        return dropped
