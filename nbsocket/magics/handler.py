"""Turning a ``%%ws_handler`` cell into a message handler.

The cell body becomes the body of a function ``handler(event)`` whose globals
are the notebook's namespace: ``event`` is a local, notebook variables are
visible, ``global x`` rebinds one, ``return`` ends the handler early, and a
body that uses ``await`` becomes an ``async`` handler run on the loop. The
cell is compiled once, when it runs, so a syntax error shows up there and
not once per message.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import linecache
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError

__all__ = ["compile_handler", "has_body"]


_versions = itertools.count(1)
_ASYNC_NODES = (ast.Await, ast.AsyncFor, ast.AsyncWith)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def has_body(cell: str) -> bool:
    """True if the cell holds at least one statement (not only blank lines and comments)."""
    try:
        return bool(ast.parse(cell).body)
    except SyntaxError:
        return True


def _uses_await(tree: ast.AST) -> bool:
    """True if ``await``, ``async for``/``with`` or an async comprehension appear outside nested functions."""
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if isinstance(node, _ASYNC_NODES):
            return True
        if isinstance(node, ast.comprehension) and node.is_async:
            return True
        if isinstance(node, _SCOPES):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False


def compile_handler(cell: str, socket: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    """Compile ``cell`` into ``handler(event)`` running with ``namespace`` as its globals.

    Raises :class:`UsageError` with the line and the reason when the cell does not compile.
    """
    filename = f"<%%ws_handler {socket} #{next(_versions)}>"
    try:
        tree = compile(cell, filename, "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        is_async = _uses_await(tree)
        wrapper = ast.parse(f"{'async ' if is_async else ''}def handler(event):\n    pass\n")
        function = wrapper.body[0]
        assert isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        function.body = tree.body
        code = compile(wrapper, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        line = exc.lineno if exc.lineno is not None else "?"
        text = (exc.text or "").strip()
        where = f": {text}" if text else ""
        raise UsageError(
            f"%%ws_handler {socket}: syntax error on line {line} of the cell ({exc.msg}){where}; the handler was not changed"
        ) from None
    linecache.cache[filename] = (len(cell), None, cell.splitlines(keepends=True), filename)
    scope: dict[str, Any] = {}
    exec(code, namespace, scope)
    handler: Callable[..., Any] = scope["handler"]
    if inspect.isgeneratorfunction(handler) or inspect.isasyncgenfunction(handler):
        raise UsageError(f"%%ws_handler {socket}: the cell uses yield, so it would never run; remove the yield")
    handler.__name__ = handler.__qualname__ = f"%%ws_handler {socket}"
    return handler
