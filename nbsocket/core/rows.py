"""Rows waiting to become the next chunk of a live frame, kept in the cheapest form their shape allows.

Most feeds send messages of one shape (the same keys in the same order). While
they do, the rows are kept as one list of values per key under one *key plan*
(the keys and their column names): no dict and no tuple per row, so keeping
thousands of rows on many sockets allocates nothing the garbage collector has
to count or scan (a kept container per message would set off ever more
collections). A message of another shape, a nested object or a parse failure
turns the rest of the chunk into dict rows (``message_fields``), exactly as
before.
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
        self.rows: list[dict[str, Any]] = []  # dict rows, once the plan is given up
        self.columns: list[list[Any]] = []  # one list of values per key while ``planned``
        self.planned = False
        self._count = 0
        self._plan_keys: tuple[Any, ...] = ()
        self._plan_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self._count

    def add_fields(self, ts_ns: int, seq: int, fields: dict[str, Any]) -> None:
        """One row given as its fields (a dict nobody changes afterwards)."""
        if self.planned:
            self._unplan()
        self.ts.append(ts_ns)
        self.seq.append(seq)
        self.rows.append(self._admit(fields))
        self._count += 1

    def add_messages(
        self,
        ts_ns: int,
        first_seq: int,
        datas: Sequence[Any],
        errors: Sequence[str | None],
        bodies: Sequence[str | bytes],
    ) -> None:
        """The messages of one read: decoded data, parse errors and raw bodies, numbered from ``first_seq``."""
        if not (self.planned and self._add_planned(datas, errors)):
            self._add_one_by_one(datas, errors, bodies)
        if len(datas) == 1:
            self.ts.append(ts_ns)
            self.seq.append(first_seq)
        else:
            self.ts.extend([ts_ns] * len(datas))
            self.seq.extend(range(first_seq, first_seq + len(datas)))

    def _add_planned(self, datas: Sequence[Any], errors: Sequence[str | None]) -> bool:
        """Add a read whose messages all fit the plan, column by column; False (nothing added) if one does not."""
        plan = self._plan_keys
        if len(datas) == 1:  # a quiet socket's read
            data = datas[0]
            if data.__class__ is not dict or errors[0] is not None or tuple(data) != plan:
                return False
            values = data.values()
            if dict in map(type, values):
                return False
            for column, value in zip(self.columns, values, strict=True):
                column.append(value)
            self._count += 1
            return True
        rows = []
        for i, data in enumerate(datas):
            if data.__class__ is not dict or errors[i] is not None:
                return False
            row = tuple(data.values())
            if dict in map(type, row) or tuple(data) != plan:
                return False
            rows.append(row)
        for column, column_values in zip(self.columns, zip(*rows, strict=True), strict=True):
            column.extend(column_values)
        self._count += len(rows)
        return True

    def _add_one_by_one(self, datas: Sequence[Any], errors: Sequence[str | None], bodies: Sequence[str | bytes]) -> None:
        count = self._count
        for i, data in enumerate(datas):
            if data.__class__ is dict and errors[i] is None and (self.planned or not count):
                values = tuple(data.values())
                for value in values:
                    if value.__class__ is dict:
                        break
                else:
                    keys = tuple(data)
                    if (self.planned and keys == self._plan_keys) or (not count and self._start_plan(keys)):
                        for column, value in zip(self.columns, values, strict=True):
                            column.append(value)
                        count += 1
                        continue
            if self.planned:
                self._unplan(count)
            self.rows.append(self._admit(message_fields(data, errors[i], bodies[i])))
            count += 1
        self._count = count

    def _start_plan(self, keys: tuple[Any, ...]) -> bool:
        if keys != self._plan_keys:
            names = tuple(field_name(k) for k in keys)
            if len(set(names)) != len(names):
                return False
            self._plan_keys, self._plan_names = keys, names
        if not self._register(self._plan_names):
            return False
        self.planned = True
        self.columns = [[] for _ in keys]
        return True

    def _value_rows(self, count: int) -> list[tuple[Any, ...]]:
        """The planned rows as value tuples (``count`` of them: a plan of no keys has no columns to count)."""
        return list(zip(*self.columns, strict=True)) if self.columns else [()] * count

    def _unplan(self, count: int | None = None) -> None:
        names = self._plan_names
        self.rows = [
            dict(zip(names, values, strict=True)) for values in self._value_rows(self._count if count is None else count)
        ]
        self.columns = []
        self.planned = False

    def take(self) -> tuple[list[int], list[int], dict[str, Any]]:
        """Empty the rows; returns their times, sequence numbers and message columns (name -> values)."""
        ts, seqs, planned, rows, value_columns = self.ts, self.seq, self.planned, self.rows, self.columns
        self.ts, self.seq, self.rows, self.columns, self.planned, self._count = [], [], [], [], False, 0
        names = list(self._plan_names)
        if planned:
            if not value_columns or not ts:
                return ts, seqs, {}
            body = pd.DataFrame(dict(zip(names, value_columns, strict=True)))  # the same dtypes as from_records on the rows
        else:
            if not rows:
                return ts, seqs, {}
            body = pd.DataFrame.from_records(rows)
            if len(body) != len(rows):  # (only empty dicts give no rows)
                return ts, seqs, {}
        columns = {}
        for name in body.columns:
            column = body[name]
            if column.dtype.kind == "f" and column.hasnans:  # integers with gaps: made float
                values = value_columns[names.index(name)] if planned else [row.get(name) for row in rows]
                column = _integers_kept(column, values)
            columns[name] = column.array
        return ts, seqs, columns


def _integers_kept(column: pd.Series, values: list[Any]) -> pd.Series:
    """A float column that only holds integers and gaps, as nullable ``Int64`` (else as it is)."""
    if all(v is None or (type(v) is int and -(2**63) <= v < 2**63) for v in values):
        return pd.Series(pd.array(values, dtype="Int64"), index=column.index)
    return column
