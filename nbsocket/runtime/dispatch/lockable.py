"""The shared, synchronised mapping every handler of every socket sees (Pode's ``Lockable``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, MutableMapping
from typing import Any

__all__ = ["Lockable"]


class Lockable(MutableMapping[Any, Any]):  # the handlers' shared state: keys and values of any type
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
