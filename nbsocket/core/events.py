"""What a handler receives: :class:`WsEvent`, its raw :class:`Request`, and the shared :class:`Lockable`."""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..runtime.connection import Connection

_UTC = _dt.timezone.utc


class Lockable(MutableMapping):
    """A dict shared by every handler, guarded by one re-entrant lock.

    ``with event.lockable as state: state["n"] = state.get("n", 0) + 1`` holds
    the lock for the whole block; single item reads and writes lock on their own.
    """

    def __init__(self) -> None:
        self._data: dict[Any, Any] = {}
        self._lock = threading.RLock()

    def __enter__(self) -> dict[Any, Any]:
        self._lock.acquire()
        return self._data

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    @property
    def lock(self) -> threading.RLock:
        """The lock itself, for code that wants to hold it longer."""
        return self._lock

    def __getitem__(self, key: Any) -> Any:
        with self._lock:
            return self._data[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value

    def __delitem__(self, key: Any) -> None:
        with self._lock:
            del self._data[key]

    def __iter__(self) -> Iterator[Any]:
        with self._lock:
            return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        with self._lock:
            return f"Lockable({self._data!r})"


class Request:
    """The raw message as received: ``body``, ``is_binary``, ``size``, ``content_type`` and ``url``."""

    __slots__ = ("body", "is_binary", "content_type", "url")

    def __init__(self, body: str | bytes, is_binary: bool, content_type: str, url: str) -> None:
        self.body = body
        self.is_binary = is_binary
        self.content_type = content_type
        self.url = url

    @property
    def size(self) -> int:
        """Size of the body in bytes (UTF-8 for text frames)."""
        body = self.body
        if isinstance(body, str):
            return len(body) if body.isascii() else len(body.encode("utf-8", "surrogatepass"))
        return len(body)

    def __repr__(self) -> str:
        kind = "binary" if self.is_binary else "text"
        return f"<Request {kind} {self.size} bytes {self.content_type} from {self.url}>"


class WsEvent:
    """One received message, as handlers see it (Pode's ``$WsEvent``).

    ``data`` is the parsed message (``None`` if parsing failed, then ``error``
    says why and ``request.body`` is intact); ``timestamp`` is the UTC time
    of receipt; ``seq`` counts the socket's messages from 1, across reconnects.
    ``send``, ``disconnect`` and ``reset`` act on the event's own socket.
    """

    __slots__ = ("name", "data", "request", "seq", "error", "connection", "lockable", "_ts_ns", "_timestamp")

    def __init__(
        self,
        name: str,
        data: Any,
        request: Request,
        seq: int,
        ts_ns: int,
        lockable: Lockable,
        error: str | None = None,
        connection: Connection | None = None,
    ) -> None:
        self.name = name
        self.data = data
        self.request = request
        self.seq = seq
        self._ts_ns = ts_ns
        self._timestamp: _dt.datetime | None = None
        self.lockable = lockable
        self.error = error
        self.connection = connection

    @property
    def timestamp(self) -> _dt.datetime:
        """Time of receipt, timezone-aware UTC."""
        if self._timestamp is None:
            seconds, ns = divmod(self._ts_ns, 1_000_000_000)
            self._timestamp = _dt.datetime.fromtimestamp(seconds, _UTC).replace(microsecond=ns // 1000)
        return self._timestamp

    @property
    def timestamp_ns(self) -> int:
        """Time of receipt in nanoseconds since the epoch."""
        return self._ts_ns

    @property
    def ok(self) -> bool:
        """True when the message parsed."""
        return self.error is None

    def _conn(self) -> Connection:
        if self.connection is None:
            raise RuntimeError("this event is not attached to a connection")
        return self.connection

    def send(self, message: Any) -> None:
        """Send ``message`` on this event's socket (queued; never blocks the handler)."""
        self._conn().send(message)

    def disconnect(self, code: int = 1000, reason: str = "") -> None:
        """Close this event's socket and keep its registration (scheduled)."""
        self._conn().disconnect(code, reason)

    def reset(self, url: str | None = None) -> None:
        """Reconnect this event's socket, to ``url`` if given (scheduled)."""
        self._conn().reset(url)

    def __repr__(self) -> str:
        state = f"error={self.error!r}" if self.error else f"data={_short(self.data)}"
        return f"<WsEvent {self.name!r} seq={self.seq} {self.timestamp.isoformat()} {state}>"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
