"""Domain events handed over as columns (``otel_tele._event_rows``) → the rows their records make.

When a row sink (the SQLite sink, the inference sink) is the only log consumer, the telemetry thread
hands it a batch of one event's attribute dicts as columns (typed and scrubbed exactly as the record
path would, see ``exact_columns``) instead of OTel log records. Here each column of the event's table
is taken from those columns as the generated row function of ``_mapping`` takes it from a record's
attributes — ``@ts`` from the timestamps, fallbacks, defaults, ``convert`` hooks — so the rows are
the record path's, value for value; a row the record path would reject (a required value missing, a
NaN in a ``NOT NULL`` column) is rejected here too, alone, and counted the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import repeat
from typing import Any

from ._internal import safe_str
from ._mapping import Rows, Table


def json_values(key: str) -> str:
    """Where a batch of columns keeps the values of ``key``, an attribute declared JSON, as the
    caller handed them over (the column under ``key`` holds their JSON text), for a sink that would
    otherwise parse the texts back: ``None`` where the value was absent or its text was scrubbed.
    No attribute key starts with ``@`` (that names a record field), so it never meets one.

    Example: ``columns.get(json_values("otel_tele.inference.metadata"))``."""
    return f"@json:{key}"


#: Record fields an untraced batch (no event carrying a span: ``RowSink.keeps_trace_context``)
#: gives every row as absent, as the record path does for a record without a span.
UNTRACED_SOURCES = frozenset({"@trace_id", "@span_id"})


class EventColumns:
    """Rows of one table from one event's columns (see the module docs)."""

    def __init__(self, table: Table, event: str, *, nan_only: Callable[[Any], Any] | None = None) -> None:
        self.table = table.table
        self.columns = table.columns
        self.event = event
        #: A ``convert`` hook that gives back every number but NaN unchanged (and refuses NaN):
        #: skipped, with one check in C, for a column holding no NaN.
        self.nan_only = nan_only

    def rows(self, timestamps: list[int], columns: Mapping[str, list[Any]]) -> Rows:
        """The table's rows of a batch (``timestamps`` in ns, ``columns`` by attribute key), in
        column order, with the rows the record path would reject left out and counted."""
        bad: dict[int, str] = {}  # row → why it is rejected (the first reason)
        rows = list(zip(*self._values(timestamps, columns, bad), strict=True))
        out: Rows = Rows()
        if bad:
            for _index, why in sorted(bad.items()):
                out.reject(self.table, why)
            rows = [row for index, row in enumerate(rows) if index not in bad]
        if rows:
            out.by_table[self.table] = rows
        return out

    def built(self, timestamps: list[int], columns: Mapping[str, list[Any]]) -> list[tuple[Any, ...]] | None:
        """Every row of a batch led by the event's name (how the route's queue holds it: see
        ``otel_tele._event_rows._kind``), or ``None`` if the record path would reject one (then
        :meth:`rows` at write time rejects it)."""
        bad: dict[int, str] = {}
        values = self._values(timestamps, columns, bad)
        return None if bad else list(zip(repeat(self.event, len(timestamps)), *values, strict=True))

    def _values(
        self, timestamps: list[int], columns: Mapping[str, list[Any]], bad: dict[int, str]
    ) -> list[list[Any]]:
        """Each column's values, as the row function takes them; rows to reject noted in ``bad``."""
        count = len(timestamps)
        ts = [stamp / 1e9 for stamp in timestamps]  # as the record path: ns / 1e9
        values_by_column: list[list[Any]] = []
        for column in self.columns:
            values = self._source(column.source, ts, columns, count)
            if column.fallback is not None and None in values:
                other = self._source(column.fallback, ts, columns, count)
                values = [b if a is None else a for a, b in zip(values, other, strict=True)]
            if column.default is not None:
                if None in values:
                    default = column.default
                    values = [default if value is None else value for value in values]
            elif column.required and None in values:
                why = f"{column.name}: required value {column.source!r} missing"
                for index, value in enumerate(values):
                    if value is None:
                        bad.setdefault(index, why)
            if column.convert is not None:
                if column.convert is self.nan_only and _no_nan(values):
                    pass  # what the hook gives back of every value: itself
                else:
                    values = _converted(column.convert, values, bad)
            values_by_column.append(values)
        return values_by_column

    @staticmethod
    def _source(source: str, ts: list[float], columns: Mapping[str, list[Any]], count: int) -> list[Any]:
        if source == "@ts":
            return ts
        if source in UNTRACED_SOURCES:
            return list(repeat(None, count))
        found = columns.get(source)
        return found if found is not None else list(repeat(None, count))


def _converted(convert: Callable[[Any], Any], values: list[Any], bad: dict[int, str]) -> list[Any]:
    """``convert`` of every value but ``None``; a value it refuses rejects its row (its reason kept)."""
    try:
        return [None if value is None else convert(value) for value in values]
    except (TypeError, ValueError, OverflowError):
        pass
    out: list[Any] = []
    for index, value in enumerate(values):
        try:
            out.append(None if value is None else convert(value))
        except (TypeError, ValueError, OverflowError) as exc:
            bad.setdefault(index, safe_str(exc, 120))
            out.append(None)
    return out


def _no_nan(values: list[Any]) -> bool:
    """Whether ``values`` are numbers none of which is NaN, found by one sum in C (a NaN makes the
    sum NaN; so do infinities of both signs, which then take the value-by-value way)."""
    try:
        total = sum(values)
    except TypeError:  # a None (a row rejected already) or not a number
        return False
    return bool(total == total)


def supported(table: Table, *, untraced: bool = False) -> bool:
    """Whether every column's source is an attribute or ``@ts`` (the record fields a batch of
    columns carries) — or, for a sink handed only untraced batches, ``@trace_id``/``@span_id``."""
    fields = {"@ts"} | (UNTRACED_SOURCES if untraced else set())
    sources = [c.source for c in table.columns] + [c.fallback for c in table.columns if c.fallback]
    return all(source in fields or not source.startswith("@") for source in sources)
