"""One view of the SQL catalog (``otel-tele sql``), as a domain declares it (public as ``otel_tele.sql``).

A domain names a factory in ``Domain.sql_views`` (``"module:factory"``, called with the resolved
:class:`~otel_tele._settings.Settings`) returning its :class:`SqlView` s. A view declares its columns
once, as an Arrow schema taken from the domain's storage declaration (so the catalog, its README
section and the rows cannot disagree), and how its rows are read: a DuckDB ``SELECT`` over files
(read lazily by DuckDB at query time), a SQLite table (:class:`SqliteSource`: Python's sqlite3 reads
the columns a query uses), or a Python function returning an Arrow table (any other store DuckDB
cannot scan offline, e.g. PostgreSQL without a pinned scanner extension).

A view with a trace id names the column ``trace_id`` and holds lowercase hex (32 characters), so any
two views join on it.

Example (a plug-in's query module)::

    import pyarrow as pa
    from otel_tele.sql import SqliteSource, SqlView

    SCHEMA = pa.schema([("ts_ns", pa.int64()), ("seq", pa.int64())])

    def sql_views(settings):
        source = SqliteSource(settings.data_dir / "beacons.db", "beacons")
        return (SqlView("beacons", SCHEMA, "one row per beacon", "Python sqlite3 -> Arrow", sqlite=source),)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: How a view reading SQLite through Python says so (``otel-tele sql --catalog``, the README).
SQLITE_READER = "Python sqlite3 -> Arrow (not DuckDB's sqlite_scanner)"


@dataclass(frozen=True)
class SqliteSource:
    """A view's rows are table ``table`` of the SQLite file ``path``: the catalog reads only the
    columns a query uses. ``expressions`` spells a column that is not stored as is (column -> SQLite
    expression); ``read_types`` gives the Arrow type it is read as when that is not the view's (the
    catalog casts it to the view's type, e.g. epoch microseconds to a timestamp)."""

    path: Path
    table: str
    expressions: Mapping[str, str] = field(default_factory=dict)
    read_types: Mapping[str, Any] = field(default_factory=dict)

    def read(self, schema: Any, columns: Sequence[str]) -> Any:
        """Every row as an Arrow table of ``schema``: the ``columns`` read, every other column null
        (a query that names none of them, ``count(*)``, reads only the number of rows)."""
        import pyarrow as pa

        wanted = [f for f in schema if f.name in set(columns)]
        if wanted:
            read = pa.schema([pa.field(f.name, self.read_types.get(f.name, f.type)) for f in wanted])
            parts = [self.expressions.get(f.name, _quote(f.name)) for f in wanted]
            got = sqlite_table(self.path, f"SELECT {', '.join(parts)} FROM {_quote(self.table)}", read)
            got = got.cast(pa.schema(wanted))
            rows = got.num_rows
        else:
            counted = sqlite_table(
                self.path, f"SELECT count(*) FROM {_quote(self.table)}", pa.schema([("n", pa.int64())])
            )
            rows = counted.column(0)[0].as_py() if counted.num_rows else 0
        arrays = [got.column(f.name) if f in wanted else pa.nulls(rows, f.type) for f in schema]
        return pa.table(arrays, schema=schema)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class SqlView:
    """One catalog view: its name, columns (an Arrow schema), what a row is, and how rows are read.

    Exactly one of ``select`` (returns a DuckDB ``SELECT`` over files under ``paths``, or None when
    there is no file yet), ``sqlite`` (a SQLite table, read column by column as queries need) and
    ``rows`` (returns the rows as an Arrow table) is given. The catalog casts what it reads to
    ``schema``. ``prefetch`` (``select`` views): the catalog reads the files' Parquet footers when it
    opens (DuckDB keeps them), so the first query of the view does not pay for them — for a view
    queried for single rows (a trace by id), whose files are few.
    """

    name: str
    schema: Any  # pyarrow.Schema
    description: str
    reader: str
    select: Callable[[], str | None] | None = None
    rows: Callable[[], Any] | None = None  # () -> pyarrow.Table
    sqlite: SqliteSource | None = None
    paths: tuple[Path, ...] = ()
    prefetch: bool = False

    def __post_init__(self) -> None:
        if sum(part is not None for part in (self.select, self.rows, self.sqlite)) != 1:
            raise ValueError(f"view {self.name!r}: give exactly one of select=, sqlite= and rows=")
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"view {self.name!r}: a view name is a lowercase SQL identifier")


def sqlite_table(db_path: str | Path, select: str, schema: Any, params: tuple[Any, ...] = ()) -> Any:
    """The rows of ``select`` on the SQLite file ``db_path`` (opened read-only, never created) as an
    Arrow table of ``schema`` (its columns in ``select`` order); empty when the file or table is
    not there yet."""
    import pyarrow as pa

    path = Path(db_path)
    if not path.is_file():
        return schema.empty_table()
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    try:
        conn.execute("PRAGMA query_only = ON")
        try:
            cursor = conn.execute(select, params)
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # the sink has created the file but not yet this table
                return schema.empty_table()
            raise
        batches = []
        while chunk := cursor.fetchmany(65_536):
            columns = list(zip(*chunk, strict=True))
            batches.append(
                pa.record_batch(
                    [_array(pa, values, field.type) for values, field in zip(columns, schema, strict=True)],
                    schema=schema,
                )
            )
        return pa.Table.from_batches(batches, schema=schema)
    finally:
        conn.close()


def _array(pa: Any, values: tuple[Any, ...], kind: Any) -> Any:
    """An Arrow array of ``kind`` from SQLite values (SQLite is loosely typed: a stray text in a
    number column becomes null rather than failing the whole view)."""
    try:
        return pa.array(values, kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([_coerce(v, kind, pa) for v in values], kind)


def _coerce(value: Any, kind: Any, pa: Any) -> Any:
    try:
        return pa.scalar(value, kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
        if pa.types.is_string(kind) and isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return None
