"""The inference store's layout, declared once for both backends (PostgreSQL and embedded SQLite),
and how it is read.

This is the public face of the ``postgres`` sink's storage, one module per job: the tables and
``system_telemetry``'s columns declared once (``_tables``: which events become rows, each column's
vocabulary key), the rollup measures and how they merge (``_measures``), the DDL per dialect as
migrations (``_ddl``), the read queries (``_queries``), the settings (``_config``:
:class:`InferenceConfig`) and read-only connections (``_readers``: :func:`open_reader`, with
``_sqlite_reader`` and ``_pg_reader``). The query API (:mod:`otel_tele.inference_stats`) reads through
this package only; writing lives in the sink's private modules, pruning in
:mod:`otel_tele.exporters.postgres.maintenance`.

``system_telemetry`` holds the spec 002 rows. Two rollup tables are maintained at write time, in the
same transaction as the rows: 60-second buckets (the spec's aggregation interval; the 24-hour questions
read them) and hourly buckets (the 60-day questions and the exact row count read them). A rollup row
holds, per bucket, event type and component, the measures of :data:`MEASURES`; buckets are epoch
seconds, so both backends store and group them the same way.

Migrations only go forward: ``MIGRATIONS[n]`` upgrades a store at version ``n`` to ``n + 1``.

Example::

    from otel_tele.exporters.postgres import schema

    schema.ROW_COLUMNS                          # ('event_type', 'component', 'value', ...)
    reader = schema.open_reader(None, "telemetry")
    reader.row_count()
"""

from __future__ import annotations

from ._config import InferenceConfig
from ._ddl import MIGRATIONS, ROLLUPS_ADDED_AT, SCHEMA_VERSION, Dialect, Statement
from ._measures import MEASURE_NAMES, MEASURES, TTFT_BOUNDS, Measure, Merge, empty_measures, merge_into
from ._pg_reader import PgReader
from ._queries import ParamStyle, bind, pg_sql, rollup_query, rollup_statement, sqlite_sql
from ._readers import StoreReader, open_reader
from ._sqlite_reader import SqliteReader
from ._tables import (
    BATCH_TABLE,
    DB_FILE,
    KEY_COLUMNS,
    MAX_KEY_CHARS,
    ROLLUP_HOUR,
    ROLLUP_MINUTE,
    ROLLUPS,
    ROW_COLUMNS,
    ROW_EVENTS,
    ROW_TABLE,
    TABLE,
    TABLES,
    VERSION_TABLE,
    Rollup,
    clean_text,
)

__all__ = [
    "BATCH_TABLE",
    "DB_FILE",
    "KEY_COLUMNS",
    "MAX_KEY_CHARS",
    "MEASURES",
    "MEASURE_NAMES",
    "MIGRATIONS",
    "ROLLUPS",
    "ROLLUPS_ADDED_AT",
    "ROLLUP_HOUR",
    "ROLLUP_MINUTE",
    "ROW_COLUMNS",
    "ROW_EVENTS",
    "ROW_TABLE",
    "SCHEMA_VERSION",
    "TABLE",
    "TABLES",
    "TTFT_BOUNDS",
    "VERSION_TABLE",
    "Dialect",
    "InferenceConfig",
    "Measure",
    "Merge",
    "ParamStyle",
    "PgReader",
    "Rollup",
    "SqliteReader",
    "Statement",
    "StoreReader",
    "bind",
    "clean_text",
    "empty_measures",
    "merge_into",
    "open_reader",
    "pg_sql",
    "rollup_query",
    "rollup_statement",
    "sqlite_sql",
]
