"""IPython's ``@magic_arguments()`` and ``@argument(...)``, typed.

IPython ships types, but leaves these two decorators untyped, so a magic they decorate would lose its type.
These are the same decorators with a type: ``@argument`` keeps the magic as it is, and ``@magic_arguments()``
gives a :class:`ParsedMagic`, the magic with the ``parser`` IPython attaches to it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from IPython.core import magic_arguments as ipython_arguments

__all__ = ["MagicT", "ParsedMagic", "argument", "magic_arguments"]

MagicT = TypeVar("MagicT", bound=Callable[..., Any])


class ParsedMagic(Protocol):
    """A magic whose line is parsed by the ``argparse`` parser built from its ``@argument`` lines."""

    parser: argparse.ArgumentParser
    __name__: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...  # a magic's own arguments: (self, line[, cell])


def argument(*flags: str, **spec: Any) -> Callable[[MagicT], MagicT]:
    """One ``argparse`` argument of a magic: ``flags`` and ``spec`` as for ``ArgumentParser.add_argument``."""
    add: Callable[[MagicT], MagicT] = ipython_arguments.argument(*flags, **spec)
    return add


def magic_arguments() -> Callable[[Callable[..., Any]], ParsedMagic]:
    """Build the magic's parser from its ``@argument`` lines (written above them)."""
    build: Callable[[Callable[..., Any]], ParsedMagic] = ipython_arguments.magic_arguments()
    return build
