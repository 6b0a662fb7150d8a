"""Waiting for messages from a notebook: ``wait``, ``wait_async``, ``wait_handled`` and ``waiter``."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...core.events import WsEvent
from ...errors import InvalidOptionError, LoopThreadError, WaitTimeoutError
from ..loop import LoopThread, in_handler_of
from .observers import Observers

if TYPE_CHECKING:
    from ..dispatch.dispatcher import Dispatcher
    from ..dispatch.handlers import HandlerList
    from ..session import Session

__all__ = ["MessageWaiter", "Waits"]


class Waits:
    """A connection's waiting part: collects the next messages once their handlers ran."""

    def __init__(
        self,
        session: Session,
        dispatcher: Dispatcher,
        handlers: HandlerList,
        observers: Observers,
        loop_thread: LoopThread,
        owner: object,
    ) -> None:
        self._owner = owner  # the connection, whose handlers run in its handler scope (compared by identity)
        self._session = session
        self._dispatcher = dispatcher
        self._handlers = handlers
        self._observers = observers
        self._loop_thread = loop_thread

    def wait(self, count: int = 1, timeout: float | None = 30.0, match: Callable[[WsEvent], bool] | None = None) -> list[WsEvent]:
        """Block until ``count`` more messages (matching ``match``) arrive and were handled; returns them."""
        self._loop_thread.refuse_blocking("wait")
        self._refuse_in_own_handler("wait()")
        waiter = self.waiter(count, match)
        try:
            return waiter.future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise WaitTimeoutError(waiter.timeout_message(timeout)) from None
        finally:
            waiter.cancel()

    async def wait_async(
        self, count: int = 1, timeout: float | None = 30.0, match: Callable[[WsEvent], bool] | None = None
    ) -> list[WsEvent]:
        """Like :meth:`wait`, for ``await``."""
        waiter = self.waiter(count, match)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(waiter.future), timeout)
        except asyncio.TimeoutError:
            raise WaitTimeoutError(waiter.timeout_message(timeout)) from None
        finally:
            waiter.cancel()

    def wait_handled(self, timeout: float | None = 30.0) -> int:
        """Block until the handlers have run for every message received so far; returns that message's seq."""
        self._loop_thread.refuse_here("conn.wait_handled()", "a sync handler (async handlers run on the loop itself)")
        self._refuse_in_own_handler("wait_handled()")
        target = self._session.seq
        dispatcher = self._dispatcher
        if dispatcher.handled_seq >= target or not self._handlers:
            return target
        waiter = MessageWaiter(self._session, self._observers, 1, lambda event: event.seq >= target)
        waiter.after_seq = dispatcher.handled_seq
        self._observers.add(waiter)
        try:
            if dispatcher.handled_seq < target:
                waiter.future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise WaitTimeoutError(
                f"the handlers of {self._session.name!r} are still busy after {timeout}s "
                f"(handled up to message {dispatcher.handled_seq} of {target})"
            ) from None
        finally:
            waiter.cancel()
        return target

    def _refuse_in_own_handler(self, call: str) -> None:
        """Raise :class:`LoopThreadError` if ``call`` is made inside one of this socket's own handlers or callbacks."""
        if in_handler_of(self._owner):
            name = self._session.name
            raise LoopThreadError(
                f"{call} on {name!r} was called inside a handler of {name!r}, where it can never finish: "
                "the socket's next message is handled only after this handler returns. Do the work in the handler "
                "for each message instead, or wait from the notebook"
            )

    def waiter(self, count: int = 1, match: Callable[[WsEvent], bool] | None = None) -> MessageWaiter:
        """Start collecting the next ``count`` messages; ``waiter.future`` resolves with them."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidOptionError(f"count must be a whole number of messages, at least 1; not {count!r}")
        waiter = MessageWaiter(self._session, self._observers, count, match)
        self._observers.add(waiter)
        return waiter


class MessageWaiter:
    """Collects the next messages of a socket; ``future`` resolves with the list once ``count`` arrived and were handled."""

    def __init__(self, session: Session, observers: Observers, count: int, match: Callable[[WsEvent], bool] | None) -> None:
        self._session = session
        self._observers = observers
        self.count = count
        self.match = match
        self.after_seq = session.seq
        self.events: list[WsEvent] = []
        self.future: concurrent.futures.Future[list[WsEvent]] = concurrent.futures.Future()

    def on_handled(self, event: WsEvent) -> None:
        """Count ``event`` once its handlers ran, so a finished wait means the handlers saw it too."""
        if self.future.done() or event.seq <= self.after_seq:
            return
        if self.match is not None:
            try:
                if not self.match(event):
                    return
            except Exception as exc:
                self.future.set_exception(exc)
                return
        self.events.append(event)
        if len(self.events) >= self.count:
            self._observers.remove(self)
            self.future.set_result(list(self.events))

    def cancel(self) -> None:
        """Stop collecting."""
        self._observers.remove(self)
        self.future.cancel()

    def timeout_message(self, timeout: float | None) -> str:
        session = self._session
        return (
            f"only {len(self.events)} of {self.count} message(s) arrived on {session.name!r} within {timeout}s "
            f"(socket {session.state}, {session.seq} received in all)"
        )
