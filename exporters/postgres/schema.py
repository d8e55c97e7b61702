"""The inference store's layout, declared once for both backends (PostgreSQL and embedded SQLite),
and how it is read.

This is the public face of the ``postgres`` sink's storage: the tables, their DDL per dialect, the
rollup measures and how they merge, the read queries, the settings (:class:`InferenceConfig`) and
read-only connections (:func:`open_reader`). The query API (:mod:`otel_tele.inference_stats`) reads
through this module only; writing lives in the sink's private modules, pruning in
:mod:`otel_tele.exporters.postgres.maintenance`.

``system_telemetry`` holds the spec 002 rows. Two rollup tables are maintained at write time, in the
same transaction as the rows: 60-second buckets (the spec's aggregation interval; the 24-hour questions
read them) and hourly buckets (the 60-day questions and the exact row count read them). A rollup row
holds, per bucket, event type and component, the measures of :data:`MEASURES`; buckets are epoch
seconds, so both backends store and group them the same way.

Migrations only go forward: ``MIGRATIONS[n]`` upgrades a store at version ``n`` to ``n + 1``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from otel_tele._columns import Col, StoredTable
from otel_tele._internal import ForkGate, abandon_inherited, at_fork_in_child, encodable
from otel_tele._scrub import protect_logs
from otel_tele._settings import Settings, dsn_secrets, redact_dsn, resolve
from otel_tele.domains import inference as options
from otel_tele.semconv import AttrType
from otel_tele.semconv import inference as inf

if TYPE_CHECKING:
    from psycopg import sql
    from psycopg_pool import ConnectionPool

_log = logging.getLogger("otel_tele")

#: The embedded store's file, under the data folder (used when no DSN is configured).
DB_FILE = "inference.db"

TABLE = "system_telemetry"
VERSION_TABLE = "system_telemetry_schema"
BATCH_TABLE = "system_telemetry_batches"  # ids of committed batches: a retried batch is written once


@dataclass(frozen=True)
class Rollup:
    table: str
    seconds: int


ROLLUP_MINUTE = Rollup("system_telemetry_rollup_1m", 60)
ROLLUP_HOUR = Rollup("system_telemetry_rollup_1h", 3600)
ROLLUPS: tuple[Rollup, ...] = (ROLLUP_MINUTE, ROLLUP_HOUR)
#: Every table the store owns, ``system_telemetry`` first (the footprint lists them in this order).
TABLES: tuple[str, ...] = (TABLE, *(r.table for r in ROLLUPS), BATCH_TABLE, VERSION_TABLE)

Merge = Literal["sum", "min", "max"]


@dataclass(frozen=True)
class Measure:
    name: str
    integer: bool
    merge: Merge
    doc: str


_MEASURES_V2: tuple[Measure, ...] = (
    Measure("count", True, "sum", "rows"),
    Measure("value_count", True, "sum", "rows with a finite value"),
    Measure("value_sum", False, "sum", "sum of finite values"),
    Measure("value_min", False, "min", "smallest finite value"),
    Measure("value_max", False, "max", "largest finite value"),
    Measure("tokens_sum", True, "sum", "tokens generated (THOUGHT_LATENCY)"),
    Measure("prompt_tokens_sum", True, "sum", "prompt tokens (THOUGHT_LATENCY)"),
    Measure("weight_sum", True, "sum", "tokens of rows with a finite efficiency score: the weights"),
    Measure("weighted_sum", False, "sum", "sum of efficiency score x tokens generated"),
    Measure("latency_ms_sum", False, "sum", "inference time of rows with tokens (ms)"),
    Measure("zero_tokens", True, "sum", "inferences that generated no token"),
    Measure("failures", True, "sum", "rows whose status is a failure"),
)
#: Time to first token (the conventions' bucket boundaries, seconds) per rollup bucket: percentiles
#: per model come from these counts (version 4).
TTFT_BOUNDS: tuple[float, ...] = inf.TIME_TO_FIRST_TOKEN_BUCKETS_S
_MEASURES_V4: tuple[Measure, ...] = (
    Measure("ttft_count", True, "sum", "inferences with a time to first token"),
    Measure("ttft_sum", False, "sum", "sum of times to first token (s)"),
    Measure("ttft_max", False, "max", "largest time to first token (s)"),
    *(
        Measure(f"ttft_le_{i:02d}", True, "sum", f"times to first token in bucket {i} (upper bound {b} s)")
        for i, b in enumerate((*TTFT_BOUNDS, math.inf))
    ),
)
MEASURES: tuple[Measure, ...] = (*_MEASURES_V2, *_MEASURES_V4)
MEASURE_NAMES: tuple[str, ...] = tuple(m.name for m in MEASURES)
KEY_COLUMNS: tuple[str, ...] = ("bucket", "event_type", "component")
#: Events that become ``system_telemetry`` rows: every spec event, with the event type a record
#: lacking one gets.
ROW_EVENTS: Mapping[str, str | None] = inf.SPEC_EVENT_TYPES
#: ``system_telemetry``, declared once: columns in write order (types from the vocabulary; timestamp:
#: epoch seconds in SQLite, timestamptz in PostgreSQL; ``since``: the schema version adding it).
ROW_TABLE = StoredTable(
    TABLE,
    tuple(ROW_EVENTS),
    (
        Col("event_type", inf.EVENT_TYPE, required=True),
        Col("component", inf.COMPONENT),
        Col("value", inf.VALUE),
        Col("metadata", inf.METADATA, default="{}"),  # JSON text already (AttrType.JSON on the wire)
        Col("status", inf.STATUS),
        Col("timestamp", "@ts", required=True, storage="ts"),
        Col("trace_id", "@trace_id", since=3),
        Col("span_id", "@span_id", since=3),
    ),
)
ROW_COLUMNS: tuple[str, ...] = ROW_TABLE.column_names
#: Longest event_type/component/status kept in the column; the full text goes to metadata.
MAX_KEY_CHARS = 256

Dialect = Literal["postgresql", "sqlite"]
_TYPES: dict[Dialect, dict[str, str]] = {
    "postgresql": {
        "id": "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "int": "bigint",
        "float": "double precision",
        "text": "text",
        "json": "jsonb NOT NULL DEFAULT '{{}}'",
        "ts": "timestamptz NOT NULL DEFAULT now()",
        "bucket": "bigint",
    },
    "sqlite": {
        "id": "INTEGER PRIMARY KEY",
        "int": "INTEGER",
        "float": "REAL",
        "text": "TEXT",
        "json": "TEXT NOT NULL DEFAULT '{{}}'",
        "ts": "REAL NOT NULL",
        "bucket": "INTEGER",
    },
}


#: A DDL statement: a template whose ``{placeholders}`` are identifiers, and the names they stand for.
#: Each store composes it in its dialect (``psycopg.sql.Identifier`` for PostgreSQL).
Statement = tuple[str, dict[str, str]]


def _row_types(d: Dialect) -> dict[Any, str]:
    """How ``dialect`` stores each vocabulary type of :data:`ROW_TABLE` (and its ``ts`` column)."""
    t = _TYPES[d]
    return {
        AttrType.INT: t["int"],
        AttrType.FLOAT: t["float"],
        AttrType.STR: t["text"],
        AttrType.JSON: t["json"],
        "ts": t["ts"],
    }


def _v1(d: Dialect) -> list[Statement]:
    t = _TYPES[d]
    columns = ", ".join(ROW_TABLE.sql_columns(_row_types(d), since=1))
    return [
        (f"CREATE TABLE {{t}} (id {t['id']}, {columns})", {"t": TABLE}),
        ("CREATE INDEX {i} ON {t} (timestamp)", {"t": TABLE, "i": TABLE + "_timestamp_idx"}),
    ]


def _column(m: Measure, d: Dialect) -> str:
    t = _TYPES[d]
    return f"{m.name} {t['int'] if m.integer else t['float']}" + (
        " NOT NULL DEFAULT 0" if m.merge == "sum" else ""
    )


def _v2(d: Dialect) -> list[Statement]:
    t = _TYPES[d]
    measures = ", ".join(_column(m, d) for m in _MEASURES_V2)
    statements: list[Statement] = [
        (
            f"CREATE TABLE {{t}} (bucket {t['bucket']} NOT NULL, event_type {t['text']} NOT NULL, "
            f"component {t['text']} NOT NULL, {measures}, PRIMARY KEY (bucket, event_type, component))",
            {"t": r.table},
        )
        for r in ROLLUPS
    ]
    batch_ts = "timestamptz NOT NULL DEFAULT now()" if d == "postgresql" else "REAL NOT NULL"
    statements.append(
        (
            f"CREATE TABLE {{t}} (batch_id {t['text']} PRIMARY KEY, row_count {t['int']} NOT NULL, "
            f"written_at {batch_ts})",
            {"t": BATCH_TABLE},
        )
    )
    statements.append(
        ("CREATE INDEX {i} ON {t} (written_at)", {"t": BATCH_TABLE, "i": BATCH_TABLE + "_written_idx"})
    )
    return statements


def _v3(d: Dialect) -> list[Statement]:
    return [
        (f"ALTER TABLE {{t}} ADD COLUMN {column}", {"t": TABLE})
        for column in ROW_TABLE.sql_columns(_row_types(d), since=3)
    ]


def _v4(d: Dialect) -> list[Statement]:
    return [
        (f"ALTER TABLE {{t}} ADD COLUMN {_column(m, d)}", {"t": r.table})
        for r in ROLLUPS
        for m in _MEASURES_V4
    ]


#: ``MIGRATIONS[n](dialect)`` → the statements taking version ``n`` to ``n + 1``.
MIGRATIONS: tuple[Callable[[Dialect], list[Statement]], ...] = (_v1, _v2, _v3, _v4)
SCHEMA_VERSION = len(MIGRATIONS)
#: The migration index creating the rollup tables: rows already stored then get their rollups.
ROLLUPS_ADDED_AT = 1


# -- rollup measures: how two rows of a bucket merge ---------------------------------------------
def empty_measures() -> list[float]:
    """The measures of an empty bucket (sums 0, min/max unknown: NaN)."""
    return [math.nan if m.merge != "sum" else 0 for m in MEASURES]


def merge_into(target: list[float], source: Sequence[float]) -> None:
    """Merge ``source`` measures into ``target``, each by its rule (sum, min, max)."""
    for i, measure in enumerate(MEASURES):
        a, b = target[i], source[i]
        if measure.merge == "sum":
            target[i] = a + b
        elif not math.isnan(b):
            target[i] = b if math.isnan(a) else (min(a, b) if measure.merge == "min" else max(a, b))


def clean_text(text: str) -> str:
    """Text as the store keeps it: NUL made visible; a lone surrogate (not encodable as UTF-8) kept
    as its escape."""
    if "\x00" in text:
        text = text.replace("\x00", "\\u0000")
    return encodable(text)


# -- read queries ----------------------------------------------------------------------------------
#: Queries are written once as templates: ``{t}`` stands for a table identifier (composed with
#: ``psycopg.sql.Identifier`` for PostgreSQL), ``{p:name}`` for a bound parameter (``%(name)s`` or
#: ``:name``). Every value a caller supplies is a bound parameter.
ParamStyle = Literal["pyformat", "named"]


def rollup_query(
    style: ParamStyle,
    *,
    has_until: bool,
    n_types: int,
    has_component: bool,
    step: int | None,
    by_component: bool = True,
) -> tuple[str, list[str]]:
    """The rollup SELECT template and the names of its parameters, in order (integer sums cast back
    to bigint: PostgreSQL's SUM(bigint) is numeric, slow to convert in Python)."""
    aggregate = {"sum": "SUM", "min": "MIN", "max": "MAX"}
    bucket = "(bucket / {p:step}) * {p:step}" if step else "NULL"
    where = ["bucket >= {p:since}"]
    if has_until:
        where.append("bucket < {p:until}")
    if n_types:
        where.append("event_type IN (" + ", ".join(f"{{p:type{i}}}" for i in range(n_types)) + ")")
    if has_component:
        where.append("component = {p:component}")
    cast = "::bigint" if style == "pyformat" else ""
    select = ", ".join(
        f"{aggregate[m.merge]}({m.name}){cast if m.integer and m.merge == 'sum' else ''}" for m in MEASURES
    )
    component = "component" if by_component else "''"
    template = (
        f"SELECT {bucket} AS b, event_type, {component} AS c, {select} FROM {{t}} WHERE "
        + " AND ".join(where)
        + " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )
    return bind(template, style)


_PARAM = re.compile(r"\{p:(\w+)\}")


def bind(template: str, style: ParamStyle) -> tuple[str, list[str]]:
    """Replace ``{p:name}`` markers by the driver's named placeholders."""
    names: list[str] = []

    def repl(match: re.Match[str]) -> str:
        names.append(match.group(1))
        return f"%({match.group(1)})s" if style == "pyformat" else f":{match.group(1)}"

    return _PARAM.sub(repl, template), names


def rollup_statement(
    style: ParamStyle,
    *,
    since: int,
    until: int | None,
    event_types: Sequence[str] | None,
    component: str | None,
    step: int | None,
    by_component: bool,
) -> tuple[str, dict[str, Any]]:
    """:func:`rollup_query` with its parameters bound by name: what both readers' ``rollup`` run."""
    types = list(event_types or ())
    template, names = rollup_query(
        style,
        has_until=until is not None,
        n_types=len(types),
        has_component=component is not None,
        step=step,
        by_component=by_component,
    )
    values: dict[str, Any] = {"since": since, "until": until, "component": component, "step": step}
    values.update({f"type{i}": t for i, t in enumerate(types)})
    return template, {name: values[name] for name in names}


# -- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InferenceConfig:
    """Resolved inference-store settings: retention, pruning, pool size and the spec 9.2 alert
    thresholds (declared, with their defaults and variables, in ``otel_tele.domains.inference``).

    Example::

        config = InferenceConfig(inference_retention_days=30)
        config.retention_seconds  # 2592000
    """

    inference_retention_days: int = options.INFERENCE_RETENTION_DAYS.default
    inference_prune_interval_s: float = options.INFERENCE_PRUNE_INTERVAL_S.default
    inference_lock_timeout_ms: int = options.INFERENCE_LOCK_TIMEOUT_MS.default
    inference_alert_table_bytes: int = options.INFERENCE_ALERT_TABLE_BYTES.default
    inference_alert_rows: int = options.INFERENCE_ALERT_ROWS.default
    inference_alert_efficiency_drop: float = options.INFERENCE_ALERT_EFFICIENCY_DROP.default
    postgres_pool_max_size: int = options.POSTGRES_POOL_MAX_SIZE.default

    @property
    def retention_seconds(self) -> int:
        return self.inference_retention_days * 86_400

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> InferenceConfig:
        """The options of resolved ``settings`` (none: resolved from ``environ``, default the process
        environment); ``overrides`` that are not None win."""
        if settings is None:
            settings = resolve({}, environ)
        by_name = {option.name: option for option in options.OPTIONS}
        values = {f.name: settings.get(by_name[f.name]) for f in fields(cls)}
        values.update({k: v for k, v in overrides.items() if v is not None and k in values})
        return cls(**values)


# -- reading ---------------------------------------------------------------------------------------
class StoreReader(Protocol):
    """What the query API reads a store through (both readers; the sink's stores are readers too)."""

    dialect: str
    location: str  # printable, password redacted

    def rollup(
        self,
        rollup: Rollup,
        *,
        since: int,
        until: int | None = None,
        event_types: Sequence[str] | None = None,
        component: str | None = None,
        step: int | None = None,
        by_component: bool = True,
    ) -> list[tuple[Any, ...]]:
        """Rows ``(bucket or None, event_type, component, *MEASURES)`` merged per (``step`` bucket,
        event type, component); ``step=None`` merges the whole window; ``by_component=False`` merges
        all components (component ``""``)."""

    def tables(self) -> list[dict[str, Any]]:
        """Per owned table: ``table``, ``size_bytes``, ``table_bytes``, ``index_bytes``, ``rows_estimate``."""

    def time_span(self) -> tuple[float | None, float | None]:
        """Oldest and newest raw row timestamp (epoch seconds)."""

    def row_count(self) -> int:
        """Exact raw row count (summed from the hourly rollup)."""

    def schema_version(self) -> int:
        """0 when the store has no tables yet."""

    def close(self) -> None: ...


def open_reader(dsn: str | None, data_dir: Path | str, **options: Any) -> StoreReader:
    """A read-only view of the store: PostgreSQL when ``dsn`` is given, else the embedded database
    ``<data_dir>/inference.db``. Reading never creates a table (nor the file).

    Example::

        reader = open_reader(None, "telemetry")
        reader.row_count()
    """
    if dsn:
        return PgReader(dsn, **options)
    return SqliteReader(Path(data_dir) / DB_FILE, **options)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sqlite_sql(template: str, **names: str) -> str:
    """A template with its ``{placeholders}`` replaced by quoted SQLite identifiers."""
    return template.format(**{key: _q(value) for key, value in names.items()})


class SqliteReader:
    """Reads the embedded store: one short-lived ``query_only`` connection per question, so readers
    run beside the writer (WAL) and never hold the file open."""

    dialect = "sqlite"

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 5_000, **_postgres_only: Any) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._busy_timeout_s = busy_timeout_ms / 1000
        # Every SQLite call — connect, statement, close — runs inside the gate: the process forks only
        # between them (see ForkGate), so a child never inherits SQLite's mutexes held by a reader's
        # connect. The writer (the sink's store) shares it and takes it before its own lock; a write
        # may wait its whole busy timeout inside, and a fork waits that long too.
        self._gate = ForkGate(self._busy_timeout_s + 1.0, what=f"the inference store {self.path}")

    def _connect(self, *, read_only: bool = True) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        if read_only:
            conn.execute("PRAGMA query_only=ON")
        else:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection | None]:
        """A short-lived connection for one query (None when the database does not exist yet), open
        only inside the fork gate: no read transaction or half-done connect/close crosses a fork."""
        with self._gate:
            if not self.path.exists():
                yield None
                return
            conn = self._connect()
            try:
                yield conn
            finally:
                conn.close()

    @staticmethod
    def _has_tables(conn: sqlite3.Connection) -> bool:
        return bool(conn.execute("PRAGMA user_version").fetchone()[0] >= 2)

    def schema_version(self) -> int:
        with self._reader() as conn:
            return 0 if conn is None else int(conn.execute("PRAGMA user_version").fetchone()[0])

    def rollup(
        self,
        rollup: Rollup,
        *,
        since: int,
        until: int | None = None,
        event_types: Sequence[str] | None = None,
        component: str | None = None,
        step: int | None = None,
        by_component: bool = True,
    ) -> list[tuple[Any, ...]]:
        template, params = rollup_statement(
            "named",
            since=since,
            until=until,
            event_types=event_types,
            component=component,
            step=step,
            by_component=by_component,
        )
        with self._reader() as conn:
            if conn is None or not self._has_tables(conn):
                return []
            return conn.execute(sqlite_sql(template, t=rollup.table), params).fetchall()

    def tables(self) -> list[dict[str, Any]]:
        with self._reader() as conn:
            if conn is None:
                return []
            owner = dict(
                conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')")
            )
            heap: dict[str, int] = {}
            index: dict[str, int] = {}
            for name, size in self._page_sizes(conn):
                table = owner.get(name, name)
                (heap if name == table else index)[table] = (heap if name == table else index).get(
                    table, 0
                ) + size
            result = []
            for table in TABLES:
                if table not in owner:
                    continue
                rows = conn.execute(sqlite_sql("SELECT count(*) FROM {t}", t=table)).fetchone()[0]
                result.append(
                    {
                        "table": table,
                        "size_bytes": heap.get(table, 0) + index.get(table, 0),
                        "table_bytes": heap.get(table, 0),
                        "index_bytes": index.get(table, 0),
                        "rows_estimate": int(rows),
                    }
                )
            return result

    @staticmethod
    def _page_sizes(conn: sqlite3.Connection) -> list[tuple[str, int]]:
        try:
            return conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
        except sqlite3.OperationalError:  # SQLite built without dbstat: the whole file, as the main table
            pages, size = (conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "page_size"))
            return [(TABLE, int(pages) * int(size))]

    def time_span(self) -> tuple[float | None, float | None]:
        with self._reader() as conn:
            if conn is None or not self._has_tables(conn):
                return None, None
            oldest, newest = conn.execute(
                sqlite_sql("SELECT min(timestamp), max(timestamp) FROM {t}", t=TABLE)
            ).fetchone()
            return oldest, newest

    def row_count(self) -> int:
        with self._reader() as conn:
            if conn is None or not self._has_tables(conn):
                return 0
            query = sqlite_sql("SELECT coalesce(sum(count), 0) FROM {t}", t=ROLLUP_HOUR.table)
            return int(conn.execute(query).fetchone()[0])

    def close(self) -> None:
        """Nothing held between questions."""


def _psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401  (the pool comes with the same extra)
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"{exc}; the PostgreSQL inference store needs pip install 'otel-tele[postgres]'"
        ) from exc
    return psycopg


def pg_sql(template: str, **names: str) -> sql.Composed:
    """A template with its ``{placeholders}`` composed as PostgreSQL identifiers (never spliced)."""
    from psycopg import sql

    return sql.SQL(template).format(**{key: sql.Identifier(value) for key, value in names.items()})


class PgReader:
    """Reads the PostgreSQL store through a lazily opened pool whose sessions are read-only
    (``default_transaction_read_only``); the sink's store is this reader with a writable pool."""

    dialect = "postgresql"
    _read_only = True
    _application_name = "otel-tele-reader"
    _pool_name = "otel-tele-inference-reader"

    def __init__(
        self,
        dsn: str,
        *,
        pool_max_size: int = 4,
        connect_timeout_s: float = 5.0,
        getconn_timeout_s: float = 5.0,
    ) -> None:
        _psycopg()
        self.location = redact_dsn(dsn)
        protect_logs(dsn_secrets(dsn))  # psycopg quotes parts of a bad DSN in its errors
        self._dsn = dsn
        self._pool_max_size = pool_max_size
        self._connect_timeout_s = connect_timeout_s
        self._getconn_timeout_s = getconn_timeout_s
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        at_fork_in_child(self._reinit_after_fork)
        self._migrated = False
        self._tables_seen = False

    @property
    def pool(self) -> ConnectionPool:
        from psycopg_pool import ConnectionPool

        with self._lock:
            if self._pool is None:
                # Opened lazily: a service that never logs (or asks) about an inference never connects.
                kwargs: dict[str, Any] = {
                    "autocommit": True,
                    "application_name": self._application_name,
                    "connect_timeout": max(1, int(self._connect_timeout_s)),
                }
                if self._read_only:
                    kwargs["options"] = "-c default_transaction_read_only=on"
                self._pool = ConnectionPool(
                    self._dsn,
                    min_size=1,
                    max_size=self._pool_max_size,
                    open=False,
                    name=self._pool_name,
                    timeout=self._getconn_timeout_s,
                    check=ConnectionPool.check_connection,
                    kwargs=kwargs,
                )
                self._pool.open(wait=False)
            return self._pool

    def _reinit_after_fork(self) -> None:
        # The parent's pool threads did not fork and its sockets are the parent's sessions: a child
        # talking on them would interleave with the parent's protocol. The child opens its own pool.
        self._lock = threading.Lock()
        abandon_inherited(self._pool)
        self._pool = None

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(timeout=2.0)

    def _has_tables(self, conn: Any) -> bool:
        if not (self._migrated or self._tables_seen):
            # Reads never create the schema (the HTTP routes are read-only); no tables, no data.
            found = conn.execute("SELECT to_regclass(%s)", (ROLLUP_HOUR.table,)).fetchone()
            self._tables_seen = found != (None,)
        return self._migrated or self._tables_seen

    def schema_version(self) -> int:
        with self.pool.connection() as conn:
            if conn.execute("SELECT to_regclass(%s)", (VERSION_TABLE,)).fetchone() == (None,):
                return 0
            row = conn.execute(
                pg_sql("SELECT coalesce(max(version), 0) FROM {t}", t=VERSION_TABLE)
            ).fetchone()
            return int(row[0]) if row else 0

    def rollup(
        self,
        rollup: Rollup,
        *,
        since: int,
        until: int | None = None,
        event_types: Sequence[str] | None = None,
        component: str | None = None,
        step: int | None = None,
        by_component: bool = True,
    ) -> list[tuple[Any, ...]]:
        template, params = rollup_statement(
            "pyformat",
            since=since,
            until=until,
            event_types=event_types,
            component=component,
            step=step,
            by_component=by_component,
        )
        with self.pool.connection() as conn:
            if not self._has_tables(conn):
                return []
            rows: list[tuple[Any, ...]] = conn.execute(pg_sql(template, t=rollup.table), params).fetchall()
            return rows

    def tables(self) -> list[dict[str, Any]]:
        query = (
            "SELECT n.name, pg_total_relation_size(c.oid), pg_relation_size(c.oid), pg_indexes_size(c.oid), "
            "c.reltuples FROM unnest(%s::text[]) WITH ORDINALITY AS n(name, ord) "
            "JOIN pg_class c ON c.oid = to_regclass(quote_ident(n.name)) ORDER BY n.ord"
        )
        with self.pool.connection() as conn:
            rows = conn.execute(query, (list(TABLES),)).fetchall()
        return [
            {
                "table": name,
                "size_bytes": int(total),
                "table_bytes": int(heap),
                "index_bytes": int(index),
                "rows_estimate": max(0, int(tuples)),
            }
            for name, total, heap, index, tuples in rows
        ]

    def time_span(self) -> tuple[float | None, float | None]:
        with self.pool.connection() as conn:
            if not self._has_tables(conn):
                return None, None
            row = conn.execute(pg_sql("SELECT min(timestamp), max(timestamp) FROM {t}", t=TABLE)).fetchone()
        oldest, newest = row or (None, None)
        return (
            None if oldest is None else oldest.timestamp(),
            None if newest is None else newest.timestamp(),
        )

    def row_count(self) -> int:
        with self.pool.connection() as conn:
            if not self._has_tables(conn):
                return 0
            row = conn.execute(
                pg_sql("SELECT coalesce(sum(count), 0) FROM {t}", t=ROLLUP_HOUR.table)
            ).fetchone()
        return int(row[0]) if row else 0
