"""What a protocol socket keeps about its calls and answers: which connection each message was written on, what
its handlers did with the server's requests, and the recent topics.

The :class:`~nbsocket.runtime.protocols.driver.ProtocolDriver` keeps one
:class:`OutgoingLedger`. It is what makes the rule for calls across reconnects
one rule for every protocol:

* a call whose messages were not written yet waits in the outbox and goes out on
  the next connection (its ``QueuedVerb.written_on`` stays ``None``);
* a call written on a connection that is then lost can never be answered: the
  driver fails it at once, naming that connection;
* the messages of one verb go to one connection: when a connection is lost after
  the first of them was written, the rest are dropped from the outbox (a Socket.IO
  attachment must not reach a session that never saw its header);
* ``bound`` messages (subscriptions, acks) belong to the connection they were made
  for: the protocol sends again what still matters after a reconnect, so the unsent
  ones are dropped when a new connection opens.

The ledger runs on the loop thread (the writer reports ``on_sent`` there).
:class:`HandlerOutcomes` tells the driver how to answer a message the server
wants answered; :class:`RecentTopics` counts messages per topic.
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime as _dt
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from ...core.events import WsEvent
from ..outbound.outbox import Outgoing

__all__ = [
    "TOPICS_KEPT",
    "HandlerOutcomes",
    "OutgoingLedger",
    "QueuedVerb",
    "RecentTopics",
    "copied_while_changing",
    "describe_connection",
]

T = TypeVar("T")

TOPICS_KEPT = 1000
"""How many distinct topics ``conn.topics`` counts; past that the least recently seen one is forgotten."""


class QueuedVerb:
    """The outbox items of one verb that must reach one connection together; for a call, its ``call_id`` and
    ``future`` too. ``written_on`` is the connection its first message was written on (``None``: not yet)."""

    __slots__ = ("call_id", "future", "items", "unsent", "written_on")

    def __init__(
        self,
        items: list[Outgoing],
        call_id: Hashable = None,
        future: concurrent.futures.Future[Any] | None = None,  # resolves with the reply's value
    ) -> None:
        self.items = items
        self.unsent = len(items)
        self.call_id = call_id
        self.future = future
        self.written_on: int | None = None


class OutgoingLedger:
    """Calls in flight, multi-message verbs half written, and connection-bound messages (loop thread only)."""

    def __init__(self) -> None:
        self.calls: dict[Hashable, QueuedVerb] = {}
        self._groups: dict[int, QueuedVerb] = {}  # id(item) -> its group, while the item waits in the outbox
        self._bound: dict[int, Outgoing] = {}  # id(item) -> item, messages of one connection still in the outbox

    def add(
        self,
        items: list[Outgoing],
        *,
        bound: bool,
        call_id: Hashable = None,
        future: concurrent.futures.Future[Any] | None = None,
    ) -> None:
        """Keep track of what a verb just queued (only what needs it: calls, several messages, bound ones)."""
        if bound:
            for item in items:
                self._bound[id(item)] = item
        if future is None and len(items) < 2:
            return
        group = QueuedVerb(items, call_id, future)
        if future is not None:
            self.calls[call_id] = group
        for item in items:
            self._groups[id(item)] = group

    def written(self, item: Outgoing, connection: int) -> None:
        """The writer wrote ``item`` on connection number ``connection``."""
        key = id(item)
        if self._bound:
            self._bound.pop(key, None)
        group = self._groups.pop(key, None) if self._groups else None
        if group is not None:
            group.unsent -= 1
            if group.written_on is None:
                group.written_on = connection

    def waiting_calls(self) -> list[str]:
        """The ids of the calls waiting for a reply, as text (any thread: the loop thread may change them meanwhile)."""
        return copied_while_changing(lambda: [str(call_id) for call_id in list(self.calls)], [])

    def take_bound(self) -> set[int]:
        """The ids of the bound items still waiting (to drop from the outbox: a new connection opened)."""
        ids = set(self._bound)
        self._bound.clear()
        for key in ids:
            self._groups.pop(key, None)
        return ids

    def sent_by_protocol(self, connection: int) -> None:
        """The protocol is ready on ``connection``: calls it held back itself (no outbox message) are sent now."""
        for call in self.calls.values():
            if not call.items and call.written_on is None:
                call.written_on = connection

    def pop_call(self, call_id: Hashable) -> tuple[QueuedVerb | None, set[int]]:
        """Stop tracking call ``call_id``: the call (or ``None``) and the ids of its items still in the outbox."""
        call = self.calls.pop(call_id, None)
        return call, (self._forget_unsent(call) if call is not None else set())

    def lost_with(self, connection: int) -> tuple[list[QueuedVerb], set[int]]:
        """Connection ``connection`` was lost: the calls written on it (no longer tracked) and the ids of items of
        half-written verbs still in the outbox (to drop)."""
        lost = [call for call in self.calls.values() if call.written_on == connection]
        for call in lost:
            del self.calls[call.call_id]
        stale: set[int] = set()
        for group in {id(group): group for group in self._groups.values()}.values():
            if group.written_on == connection:
                stale |= self._forget_unsent(group)
        return lost, stale

    def pop_all_calls(self) -> tuple[list[QueuedVerb], set[int]]:
        """Every call (the socket closed for good) and the ids of their items still in the outbox."""
        calls = list(self.calls.values())
        self.calls.clear()
        stale: set[int] = set()
        for call in calls:
            stale |= self._forget_unsent(call)
        return calls, stale

    def _forget_unsent(self, group: QueuedVerb) -> set[int]:
        ids = {id(item) for item in group.items if self._groups.get(id(item)) is group}
        for key in ids:
            del self._groups[key]
            self._bound.pop(key, None)
        group.unsent = 0
        return ids


def copied_while_changing(copy: Callable[[], T], empty: T) -> T:
    """``copy()`` of a container the loop thread may change meanwhile (from any thread): tried again when the change
    broke it (``RuntimeError``), ``empty`` after three tries."""
    for _ in range(3):
        try:
            return copy()
        except RuntimeError:
            continue
    return empty


def describe_connection(number: int, opened_at: _dt.datetime | None) -> str:
    """``"connection 3, opened 12:00:01.234 UTC"``: which of a socket's connections an error is about."""
    if opened_at is None:
        return f"connection {number}"
    return f"connection {number}, opened {opened_at:%H:%M:%S}.{opened_at.microsecond // 1000:03d} UTC"


class RecentTopics:
    """Messages received per topic, for the most recently seen :data:`TOPICS_KEPT` topics (``conn.topics``).

    A feed whose topics never repeat (a JSON-RPC method per request id, a STOMP
    destination per client) would otherwise keep every name it ever saw; here the
    least recently seen topic is forgotten when a new one arrives and ``cap`` are
    kept. Read from any thread (``items`` copies under the GIL).
    """

    def __init__(self, cap: int = TOPICS_KEPT) -> None:
        self.cap = cap
        self._counts: collections.OrderedDict[str, int] = collections.OrderedDict()
        self.forgotten = 0
        """How many topics were dropped to stay within ``cap``."""

    def add(self, topic: str) -> None:
        """One message on ``topic``."""
        counts = self._counts
        count = counts.get(topic)
        if count is None:
            counts[topic] = 1
            if len(counts) > self.cap:
                counts.popitem(last=False)
                self.forgotten += 1
        else:
            counts[topic] = count + 1
            counts.move_to_end(topic)

    def as_dict(self) -> dict[str, int]:
        """The counts kept, least recently seen topic first."""
        return copied_while_changing(lambda: dict(self._counts), {})

    def most_common(self, n: int) -> list[tuple[str, int]]:
        """The ``n`` topics with the most messages (among those kept)."""
        return sorted(self.as_dict().items(), key=lambda item: item[1], reverse=True)[:n]

    def __len__(self) -> int:
        return len(self._counts)


class HandlerOutcomes:
    """What the handlers did with each message that wants an answer: did one run, what did the first failure raise.

    The handler wrapper of :class:`~nbsocket.runtime.protocols.connection.ProtocolConnection` notes it (any thread,
    one event's handlers run one after the other); ``on_handled`` takes it once they all ran.
    """

    def __init__(self) -> None:
        self._seen: dict[WsEvent, BaseException | None] = {}

    def ran(self, event: WsEvent) -> None:
        """A handler is about to run for ``event``."""
        if event.ack_token is not None and event not in self._seen:
            self._seen[event] = None

    def raised(self, event: WsEvent, error: BaseException) -> None:
        """A handler raised ``error`` for ``event`` (the first failure is kept)."""
        if event.ack_token is not None and self._seen.get(event) is None:
            self._seen[event] = error

    def take(self, event: WsEvent) -> tuple[bool, BaseException | None]:
        """``(a handler ran, the first exception raised)`` for ``event``, forgotten from here on."""
        handled = event in self._seen
        return handled, self._seen.pop(event, None)
