"""One SQL over all local telemetry: a DuckDB catalog of views of every store (issue 15 §3).

Every registered domain contributes its views (``Domain.sql_views``): the general store's ``spans``,
``logs`` and ``metrics``, the robot tables (``robot_*``), the FDA capsules (``fda_*``), the inference
store (``inference_*``), the capture bundles (``flow_*``) and any plug-in's. Views that read files
are DuckDB ``read_parquet`` views; stores DuckDB cannot scan without a scanner extension (SQLite,
PostgreSQL) are read by Python into Arrow, only when a query names them. A view with a trace id
has a lowercase-hex ``trace_id`` column, so spans, logs and domain rows join on it.

Read-only unless ``allow_writes=True``: one statement per query and only ``SELECT``; DuckDB's
external access is switched off (only the stores' own folders stay readable), no extension is
installed or loaded automatically, and the configuration is locked, so a query cannot undo any of
it. Nothing is downloaded at run time in either mode.

Example::

    from otel_tele.sql import open_catalog

    with open_catalog("telemetry") as catalog:
        [view.name for view in catalog.views()]          # ['robot_dds_commands', ..., 'spans', ...]
        table = catalog.query("SELECT name, count(*) AS n FROM spans GROUP BY name ORDER BY n DESC")
        table.to_pylist()
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._registry import domains, load
from ._settings import Settings, resolve
from ._sql_view import SQLITE_READER, SqliteSource, SqlView, sqlite_table

try:
    import duckdb
    import pyarrow as pa
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        f"otel-tele sql needs duckdb and pyarrow: pip install 'otel-tele[capsule]' ({exc})"
    ) from exc

__all__ = [
    "SQLITE_READER",
    "Catalog",
    "Result",
    "SqlError",
    "SqlView",
    "SqliteSource",
    "ViewInfo",
    "open_catalog",
    "sqlite_table",
    "to_csv",
    "to_parquet",
    "to_rows",
]

_log = logging.getLogger("otel_tele")

#: DuckDB settings of every catalog connection: no extension is ever fetched or loaded on its own
#: (``allow_unsigned_extensions`` keeps its default, off: signatures stay verified).
_CONNECT_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}
#: Statement types a query may run without ``allow_writes``.
_READ_ONLY_TYPES = frozenset({"SELECT"})
#: Statement types refused even with ``allow_writes``: installing or loading an extension.
_NEVER_TYPES = frozenset({"LOAD"})
_ROWS_PREFIX = "_otel_tele_rows_"


class SqlError(ValueError):
    """A query was refused or failed; the message is one line."""


@dataclass(frozen=True)
class ViewInfo:
    """One view of the catalog as ``otel-tele sql --catalog`` lists it."""

    name: str
    domain: str
    description: str
    reader: str
    columns: tuple[tuple[str, str], ...]  # (column, DuckDB type)


@dataclass(frozen=True)
class Result:
    """A query's rows (at most the cap asked for) and whether more were left out."""

    table: pa.Table
    truncated: bool


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:1000] or type(exc).__name__


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def collect_views(settings: Settings) -> tuple[list[tuple[str, SqlView]], dict[str, str]]:
    """(domain, view) for every registered domain's views, and the domains whose views could not
    be loaded, with the reason (a missing extra: ``otel-tele sql --catalog`` shows it)."""
    found: list[tuple[str, SqlView]] = []
    unavailable: dict[str, str] = {}
    seen: dict[str, str] = {}
    for domain in domains():
        if not domain.sql_views:
            continue
        try:
            views = tuple(load(domain.sql_views)(settings))
        except Exception as exc:  # a plug-in's factory may fail in any way: its views are left out
            unavailable[domain.name] = f"{type(exc).__name__}: {_one_line(exc)}"
            continue
        for view in views:
            if not isinstance(view, SqlView):
                unavailable[domain.name] = f"its factory returned {type(view).__name__}, not SqlView"
                continue
            if view.name in seen:
                unavailable[domain.name] = f"view {view.name!r} is already {seen[view.name]}'s"
                continue
            seen[view.name] = domain.name
            found.append((domain.name, view))
    return found, unavailable


class Catalog:
    """A DuckDB connection holding one view per store; :meth:`query` runs SQL over them.

    File-backed views list their files when the catalog is opened: open a new catalog to see files
    written since. Use it from one thread at a time; close it (or use ``with``) when done.
    """

    def __init__(self, settings: Settings, *, allow_writes: bool = False) -> None:
        self.settings = settings
        self.allow_writes = allow_writes
        pairs, self.unavailable = collect_views(settings)
        self._views = {view.name: view for _, view in pairs}
        self._domains = {view.name: domain for domain, view in pairs}
        #: Python-read views whose rows are registered: None = every column, else the columns read.
        self._loaded: dict[str, frozenset[str] | None] = {}
        self._broken: dict[str, str] = {}
        self._con = duckdb.connect(":memory:", config=dict(_CONNECT_CONFIG))
        try:
            # Parquet footers read once are kept (an entry is checked against its file's modification
            # time): a query of a view skips re-reading every file's metadata, and so does the first
            # one of a view whose footers were read here (defining it, or prefetch).
            self._con.execute("SET parquet_metadata_cache = true")
            self._types = self._duck_types()
            for view in self._views.values():
                try:
                    self._define(view)
                    if view.prefetch:
                        self._prefetch(view)
                except SqlError as exc:  # e.g. a corrupt Parquet file: this view only, the rest answer
                    self._broken[view.name] = str(exc)
                    self.unavailable[view.name] = str(exc)
            self._warm_up()
            self._lock_down()
        except BaseException:
            self._con.close()
            raise

    # -- building ---------------------------------------------------------------------------------
    def _duck_types(self) -> dict[str, tuple[tuple[str, str], ...]]:
        """Each view's columns with their DuckDB types: every declared schema registered as an empty
        table (a Python-read view reads it until a query names it), then one catalog query."""
        for view in self._views.values():
            self._con.register(_ROWS_PREFIX + view.name, view.schema.empty_table())
        found: dict[str, list[tuple[str, str]]] = {name: [] for name in self._views}
        rows = self._con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE starts_with(table_name, ?) ORDER BY table_name, column_index",
            [_ROWS_PREFIX],
        ).fetchall()
        for table_name, column, kind in rows:
            found[table_name.removeprefix(_ROWS_PREFIX)].append((column, kind))
        return {name: tuple(columns) for name, columns in found.items()}

    def _define(self, view: SqlView) -> None:
        name = _quote(view.name)
        if view.rows is not None or view.sqlite is not None:
            # Rows are read when a query names the view (see _load): an empty table until then.
            self._con.execute(f"CREATE VIEW {name} AS SELECT * FROM {_quote(_ROWS_PREFIX + view.name)}")
            return
        assert view.select is not None
        try:
            select = view.select()
        except Exception as exc:
            raise SqlError(f"view {view.name}: {_one_line(exc)}") from None
        if select is None:
            select = f"SELECT * FROM {_quote(_ROWS_PREFIX + view.name)}"
        columns = ", ".join(
            f"CAST({_quote(column)} AS {kind}) AS {_quote(column)}" for column, kind in self._types[view.name]
        )
        try:
            self._con.execute(f"CREATE VIEW {name} AS SELECT {columns} FROM ({select})")
        except duckdb.Error as exc:
            raise SqlError(f"view {view.name}: {_one_line(exc)}") from None

    def _prefetch(self, view: SqlView) -> None:
        """Read the footers of the view's files now (its row count needs every one, and no data)."""
        try:
            self._con.execute(f"SELECT count(*) FROM {_quote(view.name)}").fetchall()
        except duckdb.Error as exc:
            raise SqlError(f"view {view.name}: {_one_line(exc)}") from None

    def _warm_up(self) -> None:
        """Run what every query runs once (parsing to JSON, a result as Arrow), so the first query
        pays no one-time set-up of DuckDB's or Arrow's."""
        self._references(duckdb.extract_statements("SELECT 1"))
        _arrow_reader(self._con.sql("SELECT 1")).read_all()

    def _lock_down(self) -> None:
        if not self.allow_writes:
            folders = sorted(
                {str(path.resolve()) for view in self._views.values() for path in view.paths if path.is_dir()}
            )
            listed = ", ".join(_literal(folder.rstrip("/") + "/") for folder in folders)
            self._con.execute(f"SET allowed_directories = [{listed}]")
            self._con.execute("SET enable_external_access = false")
        self._con.execute("SET lock_configuration = true")

    def _load(self, statements: Sequence[Any]) -> None:
        """Read the rows of every Python-read view the statements name: a SQLite view only the
        columns they need (more on a later query that needs more), any other view once."""
        named, needed = self._references(statements)
        for name in sorted(named & set(self._broken)):
            raise SqlError(f"{self._broken[name]} (the other views still answer)")
        for name in sorted(named & set(self._views)):
            view = self._views[name]
            if view.rows is not None and name not in self._loaded:
                try:
                    table = view.rows().cast(view.schema)
                except Exception as exc:
                    raise SqlError(f"view {name}: could not read its rows: {_one_line(exc)}") from None
                self._con.register(_ROWS_PREFIX + name, table)
                self._loaded[name] = None
            elif view.sqlite is not None:
                self._load_sqlite(view, needed)

    def _references(self, statements: Sequence[Any]) -> tuple[set[str], frozenset[str]]:
        """The tables the statements name, and every name a column reference in them uses
        (over-counting is harmless) — or ``{"*"}``, every column, when they could use any: ``*``,
        ``COLUMNS(…)``, a positional reference, a table name or alias used as a value (a whole-row
        struct), or a statement DuckDB's parser cannot give as JSON (only SELECT is)."""
        tables: set[str] = set()
        names: set[str] = set()
        everything = False
        for statement in statements:
            text = self._con.execute("SELECT json_serialize_sql(?)", [statement.query]).fetchall()
            tree = json.loads(text[0][0]) if text else {"error": True}
            if tree.get("error"):
                everything = True
                try:
                    found = duckdb.get_table_names(statement.query)
                except duckdb.Error:
                    found = set(self._views)
                tables |= {name.lower().rpartition(".")[2] for name in found}
                continue
            here: set[str] = set()
            refs: list[list[str]] = []
            _walk(tree, here, refs, names)
            tables |= here
            everything = everything or "*" in names or any(len(r) == 1 and r[0].lower() in here for r in refs)
            names.update(part.lower() for ref in refs for part in ref)
        return tables, frozenset({"*"}) if everything else frozenset(names)

    def _load_sqlite(self, view: SqlView, needed: frozenset[str]) -> None:
        """Read the columns of ``view`` a query needs that are not loaded yet (all of them with ``*``)."""
        assert view.sqlite is not None
        everything = set(view.schema.names)
        want = everything if "*" in needed else {c for c in view.schema.names if c.lower() in needed}
        have = self._loaded.get(view.name, frozenset())
        if have is None or (view.name in self._loaded and want <= have):
            return
        columns = frozenset(want | (have or frozenset()))
        try:
            table = view.sqlite.read(view.schema, sorted(columns))
        except Exception as exc:
            raise SqlError(f"view {view.name}: could not read its rows: {_one_line(exc)}") from None
        self._con.register(_ROWS_PREFIX + view.name, table)
        self._loaded[view.name] = None if columns >= everything else columns

    # -- reading ----------------------------------------------------------------------------------
    def views(self) -> tuple[ViewInfo, ...]:
        """Every view: name, domain, what a row is, how it is read, columns and DuckDB types.
        :attr:`unavailable` names (by domain, or by view) what could not be set up, and why."""
        return tuple(
            ViewInfo(name, self._domains[name], view.description, view.reader, self._types[name])
            for name, view in self._views.items()
        )

    def _check(self, sql: str) -> list[Any]:
        try:
            sql.encode("utf-8")
        except UnicodeEncodeError:
            raise SqlError("the query is not valid text (a lone surrogate?)") from None
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise SqlError(_one_line(exc)) from None
        if not statements:
            raise SqlError("no SQL statement given")
        for statement in statements:
            kind = statement.type.name
            if kind in _NEVER_TYPES:
                raise SqlError("installing or loading DuckDB extensions is not allowed")
            if not self.allow_writes and kind not in _READ_ONLY_TYPES:
                raise SqlError(f"read-only: only SELECT statements run here (got {kind})")
        if not self.allow_writes and len(statements) > 1:
            raise SqlError(f"read-only: one statement per query (got {len(statements)})")
        return list(statements)

    def query(self, sql: str) -> pa.Table:
        """The rows of ``sql`` as an Arrow table. Raises :class:`SqlError` for a refused or failed
        query (the message is one line)."""
        return self.query_limited(sql, None).table

    def query_limited(self, sql: str, max_rows: int | None, *, timeout_s: float | None = None) -> Result:
        """At most ``max_rows`` rows of ``sql`` (None: all), and whether any were left out; a query
        still running after ``timeout_s`` seconds is interrupted (:class:`SqlError`)."""
        if not isinstance(sql, str):
            raise SqlError("the query must be text")
        statements = self._check(sql)
        self._load(statements)
        if timeout_s is None:
            return self._run(statements, max_rows)
        timer = threading.Timer(timeout_s, self._con.interrupt)
        timer.daemon = True
        timer.start()
        try:
            return self._run(statements, max_rows)
        except SqlError as exc:
            if not timer.is_alive():
                raise SqlError(f"the query was stopped after {timeout_s:g} s") from None
            raise exc from None
        finally:
            timer.cancel()

    def _run(self, statements: Sequence[Any], max_rows: int | None) -> Result:
        try:
            for statement in statements[:-1]:
                self._con.execute(statement)
            relation = self._con.sql(statements[-1])
            if relation is None:  # a statement that returns nothing (allow_writes only)
                return Result(pa.table({}), False)
            reader = _arrow_reader(relation)
            batches: list[pa.RecordBatch] = []
            kept = 0
            truncated = False
            for batch in reader:
                if max_rows is not None and kept + batch.num_rows > max_rows:
                    batches.append(batch.slice(0, max_rows - kept))
                    truncated = True
                    break
                batches.append(batch)
                kept += batch.num_rows
            return Result(pa.Table.from_batches(batches, schema=reader.schema), truncated)
        except duckdb.Error as exc:
            raise SqlError(_one_line(exc)) from None

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _walk(node: Any, tables: set[str], refs: list[list[str]], flags: set[str]) -> None:
    """Collect, from DuckDB's JSON form of a statement, the table names and aliases it reads, its
    column references, and ``*`` in ``flags`` for anything that can reach every column."""
    if isinstance(node, dict):
        kind = node.get("class") or node.get("type")
        if kind in ("STAR", "POSITIONAL_REFERENCE", "COLUMNS"):
            flags.add("*")
        elif kind == "COLUMN_REF":
            refs.append([str(part) for part in node.get("column_names", ())])
        elif kind == "BASE_TABLE":
            tables.update(str(node[key]).lower() for key in ("table_name", "alias") if node.get(key))
        for value in node.values():
            _walk(value, tables, refs, flags)
    elif isinstance(node, list):
        for value in node:
            _walk(value, tables, refs, flags)


def _arrow_reader(relation: Any) -> pa.RecordBatchReader:
    """The relation's rows as a stream of record batches (DuckDB 2 and 1.x spell it differently)."""
    to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
    return to_reader(65_536)


def open_catalog(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    allow_writes: bool = False,
    settings: Settings | None = None,
) -> Catalog:
    """A :class:`Catalog` over the stores under ``data_dir`` (default ``OTEL_TELE_DATA_DIR`` or
    ``./telemetry``); every other location (``OTEL_TELE_POSTGRES_DSN``, ``OTEL_TELE_STORE_DIR`` …) is
    read from the environment, or from ``settings`` when given.

    Example::

        with open_catalog("telemetry") as catalog:
            catalog.query("SELECT count(*) AS spans FROM spans").to_pylist()   # [{'spans': 42}]
    """
    if settings is None:
        settings = resolve({"data_dir": Path(data_dir)} if data_dir is not None else {})
    elif data_dir is not None:
        raise ValueError("give data_dir or settings, not both")
    return Catalog(settings, allow_writes=allow_writes)


def catalog_markdown(views: Sequence[ViewInfo], unavailable: dict[str, str] | None = None) -> str:
    """The catalog as the README's Markdown table: one row per view, its columns with DuckDB types."""
    lines = ["| view | domain | one row per … / read by | columns |", "|---|---|---|---|"]
    for view in views:
        columns = ", ".join(f"`{column}` {kind.replace('|', '/')}" for column, kind in view.columns)
        lines.append(f"| `{view.name}` | {view.domain} | {view.description}; {view.reader} | {columns} |")
    lines += [
        f"| — | {domain} | unavailable: {reason} | |"
        for domain, reason in sorted((unavailable or {}).items())
    ]
    return "\n".join(lines) + "\n"


# -- results as files and rows (the CLI and the dashboard share these) --------------------------------
def _plain_type(kind: pa.DataType) -> pa.DataType:
    """``kind`` with every time type as text (ISO 8601): Python values without pandas, exact ns."""
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind):
        return pa.string()
    if pa.types.is_duration(kind) or pa.types.is_interval(kind):
        return pa.string()
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pa.list_(_plain_type(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _plain_type(f.type)) for f in kind])
    if pa.types.is_map(kind):
        return pa.map_(_plain_type(kind.key_type), _plain_type(kind.item_type))
    return kind


def _plain(table: pa.Table) -> pa.Table:
    wanted = pa.schema([pa.field(f.name, _plain_type(f.type)) for f in table.schema])
    if wanted.equals(table.schema):
        return table
    columns = []
    for column, field in zip(table.columns, wanted, strict=True):
        try:
            columns.append(column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # e.g. an interval: its text, per value
            columns.append(pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string()))
    return pa.table(columns, names=table.column_names)


def to_rows(table: pa.Table) -> list[dict[str, Any]]:
    """The rows as dicts of plain Python values (times as ISO 8601 text; a DECIMAL as an int when
    whole, else a float: ``sum()`` of integers is a HUGEINT, which Arrow carries as a decimal)."""
    rows = _plain(table).to_pylist()
    decimals = [f.name for f in table.schema if pa.types.is_decimal(f.type)]
    for row in rows if decimals else ():
        for name in decimals:
            value = row[name]
            if value is not None:
                row[name] = int(value) if value == value.to_integral_value() else float(value)
    return list(rows)


def _is_nested(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(kind)
        or pa.types.is_large_list(kind)
        or pa.types.is_struct(kind)
        or pa.types.is_map(kind)
    )


def to_csv(table: pa.Table) -> bytes:
    """The rows as CSV (UTF-8, a header line; nested values as JSON text, times as ISO 8601)."""
    import pyarrow.csv as pa_csv

    plain = _plain(table)
    columns = []
    for column in plain.columns:
        if _is_nested(column.type):
            values = [None if v is None else json.dumps(v, default=str) for v in column.to_pylist()]
            columns.append(pa.array(values, pa.string()))
        elif pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            columns.append(
                pa.array([None if v is None else v.hex() for v in column.to_pylist()], pa.string())
            )
        else:
            columns.append(column)
    out = io.BytesIO()
    pa_csv.write_csv(pa.table(columns, names=plain.column_names), out)
    return out.getvalue()


def to_parquet(table: pa.Table) -> bytes:
    """The rows as one Parquet file (zstd; the column types kept)."""
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd")
    return out.getvalue()
