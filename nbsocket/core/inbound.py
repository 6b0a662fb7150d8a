"""The inbound step, pure: the messages of one read -> counters, decoded data and parse errors.

The runtime calls :func:`decode_batch` once per read with the bodies that
read completed; it does the per-message work that needs no I/O (sizes,
decoding with the socket's codec, parse errors) in one tight loop, so a busy
socket pays little per message. The live frame takes the same lists
(``LiveFrame.append_messages``), and the events are built from them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .events import utf8_size
from .state import Stats

__all__ = ["decode_batch", "parse_error_text"]


def parse_error_text(exc: BaseException) -> str:
    """How a parse failure reads in ``event.error`` and the frame's ``error`` column."""
    return str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"


def decode_batch(
    bodies: Sequence[str | bytes],
    decode: Callable[[Any], Any],
    stats: Stats,
) -> tuple[list[Any], list[str | None]]:
    """Decode ``bodies`` in order and count them into ``stats``.

    Returns the decoded data (``None`` where parsing failed) and the errors
    (``None`` where it worked); a failure never stops the batch.
    """
    datas: list[Any] = []
    errors: list[str | None] = []
    size = 0
    failed = 0
    for body in bodies:
        size += utf8_size(body)
        try:
            data = decode(body)
            error = None
        except Exception as exc:
            data = None
            error = parse_error_text(exc)
            failed += 1
        datas.append(data)
        errors.append(error)
    stats.messages_in += len(bodies)
    stats.bytes_in += size
    stats.parse_errors += failed
    return datas, errors
