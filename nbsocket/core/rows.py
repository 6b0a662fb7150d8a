"""Rows waiting to become the next chunk of a live frame, kept in the cheapest form their shape allows.

Most feeds send messages of one shape (the same keys in the same order). While
they do, a row is kept as the tuple of its values under one *key plan* (the
keys and their column names), and the chunk's columns are cut straight from
those tuples: no dict per row, no per-row work in pandas. A message of
another shape, a nested object or a parse failure turns the rest of the chunk
into dict rows (``message_fields``), exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from .flatten import field_name, message_fields

__all__ = ["PendingRows"]


class PendingRows:
    """The receipt times, sequence numbers and fields of the rows not yet in a chunk.

    ``admit(fields)`` registers a dict row's new columns with the frame (and
    moves fields past the column cap into ``extra``); ``register(names)``
    registers a plan's column names and says whether they all fit.
    """

    def __init__(self, admit: Callable[[dict[str, Any]], dict[str, Any]], register: Callable[[tuple[str, ...]], bool]) -> None:
        self._admit = admit
        self._register = register
        self.ts: list[int] = []
        self.seq: list[int] = []
        self.rows: list[Any] = []  # value tuples while ``planned``, else dicts
        self.planned = False
        self._plan_keys: tuple[Any, ...] = ()
        self._plan_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.rows)

    def add_fields(self, ts_ns: int, seq: int, fields: dict[str, Any]) -> None:
        """One row given as its fields (a dict nobody changes afterwards)."""
        if self.planned:
            self._unplan()
        self.ts.append(ts_ns)
        self.seq.append(seq)
        self.rows.append(self._admit(fields))

    def add_messages(
        self, ts_ns: int, first_seq: int, datas: Sequence[Any], errors: Sequence[str | None], bodies: Sequence[str | bytes],
    ) -> None:
        """The messages of one read: decoded data, parse errors and raw bodies, numbered from ``first_seq``."""
        rows = self.rows
        for i, data in enumerate(datas):
            if data.__class__ is dict and errors[i] is None and (self.planned or not rows):
                values = tuple(data.values())
                for value in values:
                    if value.__class__ is dict:
                        break
                else:
                    keys = tuple(data)
                    if keys == self._plan_keys and self.planned:
                        rows.append(values)
                        continue
                    if not rows and self._start_plan(keys):
                        rows.append(values)
                        continue
            if self.planned:
                self._unplan()
                rows = self.rows
            rows.append(self._admit(message_fields(data, errors[i], bodies[i])))
        count = len(datas)
        self.ts.extend([ts_ns] * count)
        self.seq.extend(range(first_seq, first_seq + count))

    def _start_plan(self, keys: tuple[Any, ...]) -> bool:
        if keys != self._plan_keys:
            names = tuple(field_name(k) for k in keys)
            if len(set(names)) != len(names):
                return False
            self._plan_keys, self._plan_names = keys, names
        if not self._register(self._plan_names):
            return False
        self.planned = True
        return True

    def _unplan(self) -> None:
        names = self._plan_names
        self.rows = [dict(zip(names, values)) for values in self.rows]
        self.planned = False

    def take(self) -> tuple[list[int], list[int], dict[str, Any]]:
        """Empty the rows; returns their times, sequence numbers and message columns (name -> values)."""
        ts, seqs, rows, planned = self.ts, self.seq, self.rows, self.planned
        self.ts, self.seq, self.rows, self.planned = [], [], [], False
        if not rows:
            return ts, seqs, {}
        names = list(self._plan_names)
        body = pd.DataFrame.from_records(rows, columns=names) if planned else pd.DataFrame.from_records(rows)
        if len(body) != len(rows):  # (only empty dicts give no rows)
            return ts, seqs, {}
        columns = {}
        for name in body.columns:
            column = body[name]
            if column.dtype.kind == "f" and column.hasnans:  # integers with gaps: from_records made them float
                values = [row[names.index(name)] for row in rows] if planned else [row.get(name) for row in rows]
                column = _integers_kept(column, values)
            columns[name] = column.array
        return ts, seqs, columns


def _integers_kept(column: pd.Series, values: list[Any]) -> pd.Series:
    """A float column that only holds integers and gaps, as nullable ``Int64`` (else as it is)."""
    if all(v is None or (type(v) is int and -(2**63) <= v < 2**63) for v in values):
        return pd.Series(pd.array(values, dtype="Int64"), index=column.index)
    return column
