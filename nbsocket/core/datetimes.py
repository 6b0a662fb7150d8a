"""Epoch numbers in message fields as datetimes: ``nbs.to_datetime(df)``.

Servers often send times as numbers since 1970 (``"timestamp": 1795959659.99``).
The live frame keeps them as sent; this helper turns them into UTC datetimes
for reading, plotting and time arithmetic, guessing the unit from the size.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import pandas as pd

from ..errors import UnknownColumnError

__all__ = ["EPOCH_UNITS", "EpochUnit", "to_datetime"]

EpochUnit = Literal["s", "ms", "us", "ns"]
EPOCH_UNITS: tuple[tuple[EpochUnit, float], ...] = (("s", 1e11), ("ms", 1e14), ("us", 1e17), ("ns", float("inf")))
"""Unit guessed for epoch numbers by magnitude: below 1e11 seconds, below 1e14 milliseconds, and so on."""
_TIME_LIKE = re.compile(r"(^|[._])(timestamp|time|ts|date|datetime|epoch)$|_(at|ts|time)$", re.IGNORECASE)
_OWN = frozenset({"timestamp", "socket", "seq"})


def _guess_unit(values: pd.Series[float]) -> EpochUnit:
    magnitude = values.abs().median()
    return next(unit for unit, below in EPOCH_UNITS if magnitude < below)


def to_datetime(frame: pd.DataFrame, columns: str | Sequence[str] | None = None, unit: EpochUnit | None = None) -> pd.DataFrame:
    """A copy of ``frame`` with epoch-number (or ISO text) ``columns`` turned into UTC datetimes.

    ``columns=None`` picks the message fields named like times (``data.timestamp``,
    ``sent_at``, ``ts``, ...) that hold numbers or text; nbsocket's own
    ``timestamp`` column is a datetime already. ``unit`` is ``"s"``, ``"ms"``,
    ``"us"`` or ``"ns"``; ``None`` guesses it from the size of the numbers.
    Example: ``nbs.to_datetime(nbs.frame("prices"), ["data.timestamp"])``.
    """
    chosen = (
        [columns]
        if isinstance(columns, str)
        else list(columns)
        if columns is not None
        else [
            c
            for c in frame.columns
            if c not in _OWN and _TIME_LIKE.search(str(c)) and not pd.api.types.is_datetime64_any_dtype(frame[c].dtype)
        ]
    )
    missing = [c for c in chosen if c not in frame.columns]
    if missing:
        raise UnknownColumnError(f"no column {missing[0]!r} in the frame; its columns are {', '.join(map(str, frame.columns))}")
    out = frame.copy()
    for column in chosen:
        values = out[column]
        if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
            numbers = values.astype("float64")
            column_unit = unit or (_guess_unit(numbers.dropna()) if numbers.notna().any() else "s")
            out[column] = pd.to_datetime(numbers, unit=column_unit, utc=True)
        elif not pd.api.types.is_datetime64_any_dtype(values.dtype):
            out[column] = pd.to_datetime(values, utc=True, errors="coerce")
    return out
