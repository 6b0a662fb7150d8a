"""A socket that speaks an application protocol: :class:`ProtocolConnection` adds ``emit``, ``call``, ``notify``,
``subscribe``, ``publish`` and :class:`Subscription` to a :class:`~nbsocket.runtime.connection.Connection`.

``nbs.connect(..., protocol="socketio" | "graphql-ws" | "graphql-ws-legacy" | "jsonrpc" | "stomp")`` returns one.
The protocol object lives on nbsocket's loop thread (see :mod:`nbsocket.runtime.protocols.driver`); every verb
here runs its protocol method there and queues the messages it returns, so ids are generated, never typed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, overload

from ...core.events import WsEvent
from ...core.options import ConnectOptions
from ...core.protocols import make_protocol
from ...core.redact import scrub
from ...core.saved_tests import ProtocolStep
from ...errors import WaitTimeoutError
from ..connection import Connection, HandlerT, Registry
from ..dispatch.handlers import is_async_callable
from ..dispatch.lockable import Lockable
from ..loop import LoopThread
from ..transport import Transport
from .calls import HandlerOutcomes
from .driver import ProtocolDriver
from .log import ProtocolLog

__all__ = ["ProtocolConnection", "Subscription"]

T = TypeVar("T")

VERB_TIMEOUT = 10.0
"""How long a verb may wait for the loop thread to run it (it is usually immediate)."""


class Subscription:
    """One subscription of a protocol socket (GraphQL subscription, STOMP SUBSCRIBE).

    ``id`` is generated; ``topic`` is what its messages carry as ``event.topic``
    (GraphQL: the id; STOMP: the destination); ``active`` is False once it was
    cancelled, or the server completed or ended it with an error. It is
    re-established after every reconnect while active. ``cancel()`` ends it.
    """

    def __init__(self, conn: ProtocolConnection, sub_id: Hashable, topic: str, what: object) -> None:
        self.id = sub_id
        self.topic = topic
        self.what = what
        self._conn = conn

    @property
    def active(self) -> bool:
        """True while the subscription runs (and will be re-established after a reconnect)."""
        return self._conn._subscription_active(self.id)

    def cancel(self) -> None:
        """End the subscription (GraphQL ``complete``/``stop``, STOMP ``UNSUBSCRIBE``); a no-op when it already ended."""
        self._conn.unsubscribe(self.id)

    def __repr__(self) -> str:
        return f"<Subscription {self.id!r} topic={self.topic!r} {'active' if self.active else 'ended'}>"


class ProtocolConnection(Connection):
    """A :class:`Connection` that speaks ``options.protocol``: the verbs of that protocol, plus everything a socket has.

    Messages arrive as events with ``topic``; the live frame gains a ``topic``
    column; protocol housekeeping is answered on the loop thread and shows in
    the transcript only. Which verbs work depends on the protocol (the others
    raise :class:`~nbsocket.errors.ProtocolError`).
    """

    _driver: ProtocolDriver

    def __init__(
        self,
        manager: Registry,
        name: str,
        url: str,
        options: ConnectOptions,
        *,
        lockable: Lockable,
        loop_thread: LoopThread,
        transport: Transport,
    ) -> None:
        self._subscriptions: dict[Hashable, Subscription] = {}  # by id, in the order made (changed on the loop thread)
        super().__init__(manager, name, url, options, lockable=lockable, loop_thread=loop_thread, transport=transport)
        self._verb_lock = threading.Lock()
        self._log = ProtocolLog()  # the verbs and received messages, for save_test
        self.add_observer(self._log)

    def _receiver(self) -> ProtocolDriver:
        """The protocol's driver receives this socket's messages (called once, while the connection is built)."""
        options = self.options
        assert options.protocol is not None
        self._driver = ProtocolDriver(
            self._parts, self._session, self, make_protocol(options.protocol, dict(options.protocol_options))
        )
        return self._driver

    def _protocol_steps(self) -> list[ProtocolStep]:
        """The protocol log: the verbs called and the messages received, in order (what ``save_test`` writes from)."""
        return self._log.steps()

    # --- what it is ------------------------------------------------------------------------

    @property
    def protocol(self) -> str:
        """The application protocol's name (``socketio``, ``graphql-ws``, ``jsonrpc``, ``stomp`` ...)."""
        return self._driver.protocol.name or str(self.options.protocol)

    @property
    def topics(self) -> dict[str, int]:
        """Messages received so far per topic, for the 1,000 most recently seen topics (``TOPICS_KEPT``): a feed whose
        topics never repeat does not grow this without bound."""
        return self._driver.topics.as_dict()

    @property
    def waiting_calls(self) -> list[str]:
        """The ids (as text) of the calls still waiting for their reply: not yet answered, timed out or failed."""
        return self._driver.waiting_calls()

    @property
    def subscriptions(self) -> list[Subscription]:
        """The active subscriptions, in the order made."""
        return [sub for sub in list(self._subscriptions.values()) if sub.active]

    def _subscription_active(self, sub_id: Hashable) -> bool:
        """True while subscription ``sub_id`` was not ended here and the protocol keeps it active; any thread."""
        return sub_id in self._subscriptions and self._driver.is_active(sub_id)

    def status(self) -> dict[str, Any]:
        """This socket's row of :func:`nbsocket.connections`, with its ``protocol``."""
        row = super().status()
        row["protocol"] = self.protocol
        top = self._driver.topics.most_common(5)
        row["topics"] = ", ".join(f"{topic} ({count})" for topic, count in top)
        return row

    def __repr__(self) -> str:
        return super().__repr__().replace("<Connection", f"<ProtocolConnection {self.protocol}", 1)

    # --- handlers: their return value answers a Socket.IO ack / JSON-RPC request -------------

    @overload
    def on_message(
        self, fn: None = None, *, args: tuple[Any, ...] = (), key: str | None = None
    ) -> Callable[[HandlerT], HandlerT]: ...
    @overload
    def on_message(self, fn: HandlerT, *, args: tuple[Any, ...] = (), key: str | None = None) -> HandlerT: ...

    def on_message(
        self, fn: HandlerT | None = None, *, args: tuple[Any, ...] = (), key: str | None = None
    ) -> HandlerT | Callable[[HandlerT], HandlerT]:
        """Add a handler (see :meth:`Connection.on_message`); what it returns answers an event that asked for an ack."""

        def register(func: HandlerT) -> HandlerT:
            Connection.on_message(self, _keep_reply(func, self._driver.outcomes), args=args, key=key)
            return func

        return register if fn is None else register(fn)

    def remove_handler(self, fn_or_key: Callable[..., Any] | str) -> bool:
        """Remove a handler by function or key; True if one was removed."""
        for handler in self._handlers.current:
            if getattr(handler.fn, "__wrapped__", None) is fn_or_key:
                return super().remove_handler(handler.fn)
        return super().remove_handler(fn_or_key)

    @property
    def handlers(self) -> list[Callable[..., Any]]:
        """The registered message handlers, in call order."""
        return [getattr(fn, "__wrapped__", fn) for fn in self._handlers.functions()]

    # --- running a protocol verb on the loop ------------------------------------------------------

    def _verb(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the loop thread (where the protocol object lives) and return its result."""
        if self._loop_thread.in_loop_thread():
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self._loop_thread.call_soon(run)
        return future.result(VERB_TIMEOUT)

    def _send_verb(
        self, verb: str, *args: Any, logged: tuple[tuple[Any, ...], dict[str, Any]], bound: bool = False, **kwargs: Any
    ) -> None:
        """Queue ``verb``'s messages and log it as ``logged`` (args, kwargs) on the loop thread, in one step.

        Logged there, right after it is queued, a verb is in the protocol log before its message is written, so
        before any reply to it (a reply logged by the loop thread first would put the reply before the verb in a
        saved test).
        """
        driver = self._driver

        def send() -> None:
            driver.queue(getattr(driver.protocol, verb)(*args, **kwargs), bound=bound)
            self._log.verb(verb, *logged)

        self._verb(send)

    # --- the verbs -------------------------------------------------------------------------------

    def emit(self, event: str, *args: Any) -> None:
        """Send event ``event`` with ``args`` (Socket.IO ``42["event", ...]``); queued while reconnecting."""
        self._send_verb("emit", event, *args, logged=((event, *args), {}))

    def notify(self, method: str, params: Any = None) -> None:
        """Send a notification: no id, no reply (JSON-RPC)."""
        self._send_verb("notify", method, params, logged=((method, params), {}))

    def publish(
        self,
        destination: str,
        body: Any = None,
        headers: dict[str, Any] | None = None,
        receipt: bool = False,
        *,
        content_type: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Publish ``body`` to ``destination`` (STOMP SEND; dict/list bodies as JSON, str as text, bytes as binary).

        ``receipt=True`` asks the broker to confirm and waits for it (up to
        ``timeout`` seconds; an ERROR about it raises :class:`RemoteError`).
        """
        if receipt:
            self.call(destination, body, headers, content_type, timeout=timeout)
            return
        extra = {k: v for k, v in (("headers", headers), ("content_type", content_type)) if v}
        self._send_verb("publish", destination, body, headers, content_type, logged=((destination, body), extra))

    def call(self, *args: Any, timeout: float | None = 10.0, **kwargs: Any) -> Any:
        """Send a request and return its reply's value: a Socket.IO ack (``call("echo", x)``; a list when acked with
        several values), a GraphQL query/mutation's ``data`` (``call("query { hello }", variables=None)``), a JSON-RPC
        result (``call("add", [1, 2])``) or a STOMP receipt.

        Raises :class:`WaitTimeoutError` after ``timeout`` seconds (the protocol is told to forget the call) and
        :class:`RemoteError` (``code``, ``message``, ``data``) when the server answers with an error.
        """
        self._loop_thread.refuse_here("conn.call()", "`await conn.call_async(...)`")
        call_id, future = self._start_call(args, kwargs)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            self._give_up(call_id)
            raise WaitTimeoutError(self._timeout_message(args, call_id, timeout)) from None
        except KeyboardInterrupt:
            self._give_up(call_id)
            raise

    async def call_async(self, *args: Any, timeout: float | None = 10.0, **kwargs: Any) -> Any:
        """Like :meth:`call`, for ``await`` (in a cell or an async handler)."""
        call_id, future = self._start_call(args, kwargs)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except asyncio.TimeoutError:
            self._give_up(call_id)
            raise WaitTimeoutError(self._timeout_message(args, call_id, timeout)) from None

    def _start_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Hashable, concurrent.futures.Future[Any]]:
        driver = self._driver
        started = time.time_ns()
        call_id, future = self._verb(lambda: driver.start_call(lambda: driver.protocol.call(*args, **kwargs)))
        future.add_done_callback(functools.partial(self._log.call_done, args, kwargs, started))
        return call_id, future

    def _give_up(self, call_id: Hashable) -> None:
        driver = self._driver
        self._loop_thread.call_soon(lambda: _quietly(driver.cancel_call, call_id))

    def _timeout_message(self, args: tuple[Any, ...], call_id: Hashable, timeout: float | None) -> str:
        what = args[0] if args else "?"
        return scrub(
            f"no reply to {self.protocol} call {what!r} (id {call_id!r}) on {self.name!r} within {timeout}s "
            f"(socket {self.state}); the call was forgotten, a late reply is recorded in conn.errors"
        )

    def subscribe(self, *args: Any, **kwargs: Any) -> Subscription:
        """Start a subscription and return it: GraphQL ``subscribe("subscription { ticks { n } }", variables=None)``,
        STOMP ``subscribe("/topic/prices", ack=None, headers=None)``. Its messages arrive with ``event.topic ==
        sub.topic``; it is re-established after every reconnect until ``sub.cancel()``.
        """
        driver = self._driver

        def start() -> Subscription:
            sub_id, topic, messages = driver.protocol.subscribe(*args, **kwargs)
            sub = Subscription(self, sub_id, topic, args[0] if args else None)
            self._subscriptions[sub_id] = sub
            driver.queue(messages, bound=True)
            self._log.verb("subscribe", args, kwargs, name=sub_id, outcome=topic)
            return sub

        return self._verb(start)

    def unsubscribe(self, sub_id: Hashable) -> None:
        """End subscription ``sub_id`` (or pass the :class:`Subscription`)."""
        sub_id = sub_id.id if isinstance(sub_id, Subscription) else sub_id
        driver = self._driver

        def stop() -> None:
            messages = driver.protocol.unsubscribe(sub_id)
            self._subscriptions.pop(sub_id, None)
            driver.queue(messages, bound=True)
            self._log.verb("unsubscribe", name=sub_id)  # before its message is written (see _send_verb)

        self._verb(stop)

    def acknowledge(self, event: WsEvent, value: Any = None, *, positive: bool = True) -> None:
        """ACK (or NACK) a message that asked for one (STOMP ``ack="client"``): scheduled, never blocks."""
        driver, token = self._driver, event.ack_token
        errors = self._errors

        def answer() -> None:
            try:
                driver.queue(driver.protocol.acknowledge(token, value, positive=positive), bound=True)
            except Exception as exc:
                errors.record("acknowledge", type(exc).__name__, str(exc))

        self._loop_thread.call_soon(answer)


def _keep_reply(fn: Callable[..., Any], outcomes: HandlerOutcomes) -> Callable[..., Any]:
    """``fn`` as a handler that keeps its return value on the event (``event.reply``) for the ack/answer, and tells
    ``outcomes`` that it ran and what it raised (the exception still reaches the dispatcher, which records it)."""
    if is_async_callable(fn):

        @functools.wraps(fn)
        async def keep_async(event: WsEvent, *args: Any) -> Any:
            outcomes.ran(event)
            try:
                value = await fn(event, *args)
            except Exception as exc:
                outcomes.raised(event, exc)
                raise
            if value is not None:
                event.reply = value
            return value

        return keep_async

    @functools.wraps(fn)
    def keep(event: WsEvent, *args: Any) -> Any:
        outcomes.ran(event)
        try:
            value = fn(event, *args)
        except Exception as exc:
            outcomes.raised(event, exc)
            raise
        if value is not None and not asyncio.iscoroutine(value):
            event.reply = value
        return value

    return keep


def _quietly(fn: Callable[..., object], *args: object) -> None:
    try:
        fn(*args)
    except Exception:
        pass
