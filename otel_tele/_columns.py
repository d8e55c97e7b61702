"""Stored tables, declared once for every sink: which events feed a table, and which vocabulary key
(or record field) each column comes from.

A column's type is the vocabulary's: the :class:`~otel_tele.semconv.AttrType` its key has in the
events that feed the table (a record field such as ``@ts`` has its own, :data:`FIELD_TYPES`). A sink
never restates it; it only says how it stores each type — an SQL type, an Arrow type — and overrides
that for a column with ``storage`` when its layout needs something else (an SQL default, a timestamp).
From one :class:`StoredTable` a sink derives everything: its DDL (:meth:`StoredTable.sql_columns`),
its inserts (:attr:`StoredTable.column_names`), its Arrow schema (:meth:`StoredTable.storage_types`)
and the record → row mapping (:meth:`StoredTable.mapping`, whose rows come from the row functions
:class:`~otel_tele._mapping.RowMapper` generates).

Example::

    from otel_tele._columns import Col, StoredTable
    from otel_tele.semconv import AttrType, robot as r

    table = StoredTable("camera_health", (r.CAMERA_HEALTH,), (Col("ts", "@ts", required=True),
                                                               Col("fps", r.ACTUAL_FPS)))
    table.sql_columns({AttrType.FLOAT: "REAL"})     # ('ts REAL NOT NULL', 'fps REAL')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import semconv
from ._mapping import Column, Table
from .semconv import AttrType

INT, F, S = AttrType.INT, AttrType.FLOAT, AttrType.STR

#: The type of each record field a column may take its value from (see :mod:`otel_tele._mapping`).
FIELD_TYPES: Mapping[str, AttrType] = {
    "@ts": F,
    "@ts_ns": INT,
    "@observed_ts": F,
    "@event_name": S,
    "@severity": S,
    "@body": S,
    "@trace_id": S,
    "@span_id": S,
    "@name": S,
    "@start": F,
    "@end": F,
    "@duration_ms": F,
    "@status": S,
    "@kind": S,
}

#: A hook a sink gives :meth:`StoredTable.mapping`: (column, its row type) → the final conversion of
#: a value into storage shape (e.g. bool → 0/1), or ``None``.
Convert = Callable[["Col", AttrType], Callable[[Any], Any] | None]


@dataclass(frozen=True)
class Col:
    """One stored column: its name and where its value comes from (a vocabulary key, or a record
    field such as ``@ts``).

    ``type`` is left to the vocabulary unless the source has none there; ``required`` columns refuse
    a record without a value (after ``default`` and ``fallback``, a second source); ``storage`` is
    the sink's own spelling of the column's type where the derived one will not do (an SQL type with
    its constraints, an Arrow type); ``span`` the source on a span, for a table spans feed too;
    ``since`` the sink's schema version that added the column.
    """

    name: str
    source: str
    type: AttrType | None = None
    required: bool = False
    default: Any = None
    fallback: str | None = None
    storage: Any = None
    span: str | None = None
    since: int = 1


@dataclass(frozen=True)
class StoredTable:
    """One table (or Parquet dataset) of a sink: its name, the events that feed it, its columns in
    storage order; ``types`` holds each column's resolved type (a declaration whose key no feeding
    event declares, or declares with two types, is refused when the sink's schema is imported)."""

    name: str
    events: tuple[str, ...]
    columns: tuple[Col, ...]
    types: tuple[AttrType, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", tuple(self._type_of(column) for column in self.columns))

    def _type_of(self, column: Col) -> AttrType:
        if column.type is not None:
            return column.type
        if column.source.startswith("@"):
            if column.source not in FIELD_TYPES:
                raise ValueError(f"{self.name}.{column.name}: record field {column.source!r} has no type")
            return FIELD_TYPES[column.source]
        found = set()
        for name in self.events:
            event = semconv.EVENTS.get(name)
            attr = event.attributes_by_key.get(column.source) if event is not None else None
            if attr is not None:
                found.add(attr.type)
        if len(found) != 1:
            why = "no feeding event declares it" if not found else f"its events disagree ({found})"
            raise ValueError(f"{self.name}.{column.name}: no type for {column.source!r}: {why}")
        return found.pop()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def storage_types(self, types: Mapping[AttrType, Any]) -> tuple[Any, ...]:
        """Each column's storage type (an Arrow type, say): its ``storage`` if it has one, else
        ``types`` of its type."""
        return tuple(
            column.storage if column.storage is not None else types[kind]
            for column, kind in zip(self.columns, self.types, strict=True)
        )

    def sql_columns(self, types: Mapping[Any, str], *, since: int | None = None) -> tuple[str, ...]:
        """``name TYPE`` per column, for DDL: TYPE is ``types`` of its type, plus ``NOT NULL`` when it
        is required; a column's ``storage`` spells it whole instead (a key of ``types``, or the SQL
        itself). With ``since``, only the columns that schema version added (for its migration)."""
        out = []
        for column, kind in zip(self.columns, self.types, strict=True):
            if since is not None and column.since != since:
                continue
            if column.storage is not None:
                spelled = types.get(column.storage, column.storage)
            else:
                spelled = types[kind] + (" NOT NULL" if column.required else "")
            out.append(f"{column.name} {spelled}")
        return tuple(out)

    def mapping(
        self,
        event: str | None = None,
        *,
        convert: Convert | None = None,
        defaults: Mapping[str, Any] | None = None,
        spans: Callable[[Any], bool] | None = None,
        span_type: Mapping[AttrType, AttrType] | None = None,
    ) -> Table:
        """The record → row mapping of this table for ``event`` (default: its only event), or, with
        ``spans``, for the spans it selects, each column from its ``span`` source, typed by
        ``span_type`` of its type.

        Rows hold values of each column's row type: its vocabulary type, JSON as its text.
        ``convert`` makes them storage-shaped; ``defaults`` (column name → value) override declared
        defaults for this event.
        """
        columns = []
        for column, kind in zip(self.columns, self.types, strict=True):
            row_type = S if kind is AttrType.JSON else kind
            if spans is not None:
                row_type = (span_type or {}).get(row_type, row_type)
            default = (defaults or {}).get(column.name, column.default)
            columns.append(
                Column(
                    column.name,
                    (column.span or column.source) if spans is not None else column.source,
                    row_type,
                    required=column.required,
                    default=None if spans is not None else default,
                    convert=convert(column, row_type) if convert is not None else None,
                    fallback=None if spans is not None else column.fallback,
                )
            )
        if spans is not None:
            return Table(self.name, tuple(columns), select=spans)
        return Table(self.name, tuple(columns), event=event or self.events[0])
