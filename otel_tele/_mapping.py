"""Declarative record → row translation, shared by every sink.

A sink declares :class:`Table` entries (which records, which columns from which attributes, what
type); :class:`RowMapper` turns a batch of OTel log records or spans into rows grouped by table.
A new table is a new entry, not new code. The same mapper serves records decoded from OTLP.

Column ``source`` is an attribute key, or one of the record fields:
``@ts`` (event time, epoch seconds), ``@ts_ns``, ``@observed_ts``, ``@event_name``, ``@severity``,
``@body``, ``@trace_id`` / ``@span_id`` (hex), and for spans ``@name``, ``@start``, ``@end``
(epoch seconds), ``@duration_ms``, ``@status``, ``@kind``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .semconv import AttrType
from .semconv._types import COERCERS

Getter = Callable[[Any], Any]


def _log_fields() -> dict[str, Getter]:
    def ts_ns(r: Any) -> Any:
        return r.log_record.timestamp or r.log_record.observed_timestamp

    return {
        "@ts": lambda r: ts_ns(r) / 1e9,
        "@ts_ns": ts_ns,
        "@observed_ts": lambda r: (r.log_record.observed_timestamp or 0) / 1e9,
        "@event_name": lambda r: r.log_record.event_name,
        "@severity": lambda r: r.log_record.severity_number.name if r.log_record.severity_number else None,
        "@body": lambda r: r.log_record.body,
        "@trace_id": lambda r: f"{r.log_record.trace_id:032x}" if r.log_record.trace_id else None,
        "@span_id": lambda r: f"{r.log_record.span_id:016x}" if r.log_record.span_id else None,
    }


def _span_fields() -> dict[str, Getter]:
    return {
        "@name": lambda s: s.name,
        "@ts": lambda s: s.start_time / 1e9,
        "@start": lambda s: s.start_time / 1e9,
        "@end": lambda s: s.end_time / 1e9 if s.end_time else None,
        "@duration_ms": lambda s: (s.end_time - s.start_time) / 1e6 if s.end_time else None,
        "@status": lambda s: s.status.status_code.name,
        "@kind": lambda s: s.kind.name,
        "@trace_id": lambda s: f"{s.context.trace_id:032x}",
        "@span_id": lambda s: f"{s.context.span_id:016x}",
    }


LOG_FIELDS: Mapping[str, Getter] = _log_fields()
SPAN_FIELDS: Mapping[str, Getter] = _span_fields()


@dataclass(frozen=True)
class Column:
    """One storage column: its name, where its value comes from, its type."""

    name: str
    source: str
    type: AttrType
    required: bool = False
    default: Any = None
    convert: Callable[[Any], Any] | None = None  # storage-specific final conversion (e.g. bool → int)


@dataclass(frozen=True)
class Table:
    """Which records feed ``table`` and how: ``event`` matches a log record's event name (or, for
    spans, ``select`` decides); ``where`` filters on the typed attribute dict."""

    table: str
    columns: tuple[Column, ...]
    event: str | None = None
    where: Callable[[Mapping[str, Any]], bool] | None = None
    select: Callable[[Any], bool] | None = None  # for spans

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


@dataclass
class Rows:
    """Mapped rows per table, and what could not be mapped."""

    by_table: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: defaultdict(list))
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(rows) for rows in self.by_table.values())


class RowMapper:
    """Translate records into rows through declared :class:`Table` entries."""

    def __init__(
        self,
        tables: Iterable[Table],
        *,
        log_fields: Mapping[str, Getter] | None = None,
        span_fields: Mapping[str, Getter] | None = None,
    ) -> None:
        """``log_fields``/``span_fields`` add computed ``@sources`` to the standard record fields."""
        self.tables = tuple(tables)
        self._log_fields = {**LOG_FIELDS, **(log_fields or {})}
        self._span_fields = {**SPAN_FIELDS, **(span_fields or {})}
        self._by_event: dict[str, list[Table]] = defaultdict(list)
        self._span_tables = [t for t in self.tables if t.select is not None]
        for table in self.tables:
            if table.event is not None:
                self._by_event[table.event].append(table)

    def map_logs(self, records: Iterable[Any], rows: Rows | None = None) -> Rows:
        rows = rows or Rows()
        for record in records:
            tables = self._by_event.get(record.log_record.event_name or "")
            if tables:
                attrs = record.log_record.attributes or {}
                self._map_one(record, attrs, tables, self._log_fields, rows)
        return rows

    def map_spans(self, spans: Iterable[Any], rows: Rows | None = None) -> Rows:
        rows = rows or Rows()
        for span in spans:
            tables = [t for t in self._span_tables if t.select(span)]  # type: ignore[misc]
            if tables:
                self._map_one(span, span.attributes or {}, tables, self._span_fields, rows)
        return rows

    def _map_one(
        self,
        record: Any,
        attrs: Mapping[str, Any],
        tables: Sequence[Table],
        fields: Mapping[str, Getter],
        rows: Rows,
    ) -> None:
        for table in tables:
            if table.where is not None and not table.where(attrs):
                continue
            try:
                rows.by_table[table.table].append(
                    tuple(_value(c, record, attrs, fields) for c in table.columns)
                )
            except (TypeError, ValueError, OverflowError, KeyError) as exc:
                rows.rejected += 1
                if len(rows.problems) < 20:
                    rows.problems.append(f"{table.table}: {exc}")


def _value(column: Column, record: Any, attrs: Mapping[str, Any], fields: Mapping[str, Getter]) -> Any:
    getter = fields.get(column.source)
    raw = getter(record) if getter is not None else attrs.get(column.source)
    if raw is None:
        if column.required and column.default is None:
            raise ValueError(f"{column.name}: required value {column.source!r} missing")
        raw = column.default
    if raw is not None:
        raw = COERCERS[column.type](raw)
    return column.convert(raw) if column.convert is not None and raw is not None else raw
