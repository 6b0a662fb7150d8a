"""A socket's message handlers: each with its extra arguments and an optional key that replaces it."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, overload

from ...errors import InvalidOptionError

__all__ = ["CallbackSlot", "Handler", "HandlerList", "describe", "is_async_callable"]


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """True for ``async def`` functions, partials of them and objects with an async ``__call__``."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004 (is its __call__ async?)


def describe(fn: Callable[..., Any]) -> str:
    """A short name for a handler, for error records."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


class Handler:
    """A registered message handler with its extra positional ``args`` (Pode's ``-ArgumentList``)."""

    __slots__ = ("args", "fn", "is_async", "key", "name")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...] = (), key: str | None = None) -> None:
        if not callable(fn):
            raise InvalidOptionError(f"a handler must be callable, not {type(fn).__name__}")
        self.fn = fn
        self.args = tuple(args)
        self.is_async = is_async_callable(fn)
        self.name = describe(fn)
        self.key = key

    def __repr__(self) -> str:
        return f"<Handler {self.name}{' async' if self.is_async else ''}>"


class HandlerList:
    """The handlers of one socket, in call order.

    ``current`` is a tuple replaced on every change (never changed in place),
    so the dispatcher can iterate it on a worker thread while a cell adds one.
    """

    def __init__(self) -> None:
        self.current: tuple[Handler, ...] = ()
        self.all_sync = True
        """True while no handler is async (read by the dispatcher on every message)."""

    def add(self, handler: Handler) -> None:
        """Append ``handler``, or replace the one registered with the same key."""
        handlers = list(self.current)
        if handler.key is not None:
            for i, existing in enumerate(handlers):
                if existing.key == handler.key:
                    handlers[i] = handler
                    self._set(tuple(handlers))
                    return
        self._set((*handlers, handler))

    def remove(self, fn_or_key: Callable[..., Any] | str) -> bool:
        """Remove the handlers registered as function ``fn_or_key`` or under that key; True if one was."""
        kept = tuple(h for h in self.current if h.fn is not fn_or_key and (h.key is None or h.key != fn_or_key))
        removed = len(kept) != len(self.current)
        self._set(kept)
        return removed

    def _set(self, handlers: tuple[Handler, ...]) -> None:
        self.all_sync = not any(h.is_async for h in handlers)
        self.current = handlers

    def functions(self) -> list[Callable[..., Any]]:
        """The handler functions, in call order."""
        return [h.fn for h in self.current]

    def __len__(self) -> int:
        return len(self.current)

    def __bool__(self) -> bool:
        return bool(self.current)


class CallbackSlot:
    """A connection's lifecycle callback attribute (``conn.on_open = fn``): setting it tells the dispatcher,
    which keeps track of whether every callback and handler is synchronous (so messages take the fast lane)."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = f"Called as {doc} (``None``: not set)."
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = "_" + name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> CallbackSlot: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> Callable[..., Any] | None: ...

    def __get__(self, obj: object, owner: type | None = None) -> CallbackSlot | Callable[..., Any] | None:
        if obj is None:
            return self
        callback: Callable[..., Any] | None = obj.__dict__.get(self.name)
        return callback

    def __set__(self, obj: object, callback: Callable[..., Any] | None) -> None:
        obj.__dict__[self.name] = callback
        dispatcher = obj.__dict__.get("_dispatcher")
        if dispatcher is not None:
            dispatcher.callbacks_changed()
