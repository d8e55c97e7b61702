"""The inference domain's views of the SQL catalog (``otel-tele sql``), from the store's declaration
(:mod:`otel_tele.exporters.postgres.schema`).

``inference_events`` is ``system_telemetry`` (one row per inference event; ``timestamp`` as a UTC
timestamp in both backends, ``metadata`` as JSON text, ``trace_id``/``span_id`` lowercase hex);
``inference_rollup_1m`` / ``_1h`` are the write-time rollups (``bucket``: epoch seconds of the
bucket's start). Rows come from PostgreSQL when ``OTEL_TELE_POSTGRES_DSN`` is set (psycopg, a
read-only session), else from the embedded ``inference.db`` (Python sqlite3, read-only).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pyarrow as pa

from otel_tele._settings import Settings
from otel_tele._sql_view import SQLITE_READER, SqliteSource, SqlView
from otel_tele.domains.inference import POSTGRES_DSN
from otel_tele.exporters.postgres import schema
from otel_tele.semconv import AttrType

_TS = pa.timestamp("us", tz="UTC")
_ARROW: dict[AttrType, pa.DataType] = {
    AttrType.INT: pa.int64(),
    AttrType.FLOAT: pa.float64(),
    AttrType.STR: pa.string(),
    AttrType.JSON: pa.string(),
    AttrType.BOOL: pa.bool_(),
}
#: ``system_telemetry``'s columns (``id`` + :data:`schema.ROW_TABLE`), typed from the vocabulary;
#: ``timestamp`` (epoch seconds in SQLite, timestamptz in PostgreSQL) as a UTC timestamp.
_EVENT_TYPES: dict[str, pa.DataType] = {
    "id": pa.int64(),
    **{
        c.name: _TS if c.name == "timestamp" else _ARROW[kind]
        for c, kind in zip(schema.ROW_TABLE.columns, schema.ROW_TABLE.types, strict=True)
    },
}

EVENTS_SCHEMA = pa.schema(list(_EVENT_TYPES.items()))
ROLLUP_SCHEMA = pa.schema(
    [
        ("bucket", pa.int64()),
        ("event_type", pa.string()),
        ("component", pa.string()),
        *((m.name, pa.int64() if m.integer else pa.float64()) for m in schema.MEASURES),
    ]
)
#: What each backend selects for ``timestamp`` (microseconds since the epoch) and ``metadata``.
_EXPRESSIONS = {
    "sqlite": {"timestamp": 'CAST(round("timestamp" * 1000000) AS INTEGER)', "metadata": "metadata"},
    "postgresql": {
        "timestamp": 'CAST(round(extract(epoch FROM "timestamp") * 1000000) AS bigint)',
        "metadata": "CAST(metadata AS text)",
    },
}
_LOWER = ("trace_id", "span_id")


def _events_select(dialect: str) -> str:
    parts = []
    for name in EVENTS_SCHEMA.names:
        expression = _EXPRESSIONS[dialect].get(name, f'"{name}"')
        parts.append(f'lower("{name}")' if name in _LOWER else expression)
    return f'SELECT {", ".join(parts)} FROM "{schema.TABLE}"'


def _rollup_select(table: str) -> str:
    return f'SELECT {", ".join(f"{chr(34)}{n}{chr(34)}" for n in ROLLUP_SCHEMA.names)} FROM "{table}"'


_READ_SCHEMA = EVENTS_SCHEMA.set(
    EVENTS_SCHEMA.get_field_index("timestamp"), pa.field("timestamp", pa.int64())
)


def _sqlite_source(db: Path, table: str) -> SqliteSource:
    """The embedded table, read column by column; ``system_telemetry``'s timestamp (epoch seconds)
    and ids (lowercase) spelled as the view has them."""
    if table != schema.TABLE:
        return SqliteSource(db, table)
    expressions = {name: f'lower("{name}")' for name in _LOWER}
    expressions["timestamp"] = _EXPRESSIONS["sqlite"]["timestamp"]
    return SqliteSource(db, table, expressions, {"timestamp": pa.int64()})


def _pg_rows(dsn: str, table: str, select: str, read: pa.Schema, final: pa.Schema) -> pa.Table:
    import psycopg

    with psycopg.connect(
        dsn,
        autocommit=True,
        connect_timeout=5,
        options="-c default_transaction_read_only=on",
        application_name="otel-tele-sql",
    ) as conn:
        if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (None,):
            return final.empty_table()
        cursor = conn.execute(select)  # identifiers are the schema's constants, never user text
        batches = []
        while chunk := cursor.fetchmany(65_536):
            columns = list(zip(*chunk, strict=True))
            arrays = [pa.array(values, field.type) for values, field in zip(columns, read, strict=True)]
            batches.append(pa.record_batch(arrays, schema=read))
        return pa.Table.from_batches(batches, schema=read).cast(final)


def sql_views(settings: Settings) -> tuple[SqlView, ...]:
    """``inference_events``, ``inference_rollup_1m``, ``inference_rollup_1h``."""
    dsn = settings.get(POSTGRES_DSN)
    db = settings.data_dir / schema.DB_FILE
    reader = (
        "psycopg -> Arrow (a read-only session; not DuckDB's postgres_scanner): OTEL_TELE_POSTGRES_DSN"
        if dsn
        else f"{SQLITE_READER}: {schema.DB_FILE} (PostgreSQL when OTEL_TELE_POSTGRES_DSN is set)"
    )
    tables: list[tuple[str, str, str, pa.Schema, pa.Schema, str]] = [
        ("inference_events", schema.TABLE, "one row per inference event", _READ_SCHEMA, EVENTS_SCHEMA, "")
    ]
    for rollup in schema.ROLLUPS:
        tables.append(
            (
                "inference_" + rollup.table.removeprefix(schema.TABLE + "_"),  # inference_rollup_1m
                rollup.table,
                f"write-time rollup: one row per {rollup.seconds} s bucket, event type and component",
                ROLLUP_SCHEMA,
                ROLLUP_SCHEMA,
                _rollup_select(rollup.table),
            )
        )
    views = []
    for name, table, description, read, final, select in tables:
        if dsn:
            rows = partial(_pg_rows, dsn, table, select or _events_select("postgresql"), read, final)
            views.append(SqlView(name, final, description, reader, rows=rows))
        else:
            views.append(SqlView(name, final, description, reader, sqlite=_sqlite_source(db, table)))
    return tuple(views)
