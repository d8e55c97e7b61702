"""The store's DDL per dialect, as forward-only migrations: ``MIGRATIONS[n](dialect)`` takes a store at
version ``n`` to ``n + 1``. Column types follow the vocabulary's (``_tables.ROW_TABLE``) and the
measures' (``_measures``), spelled per dialect by ``_TYPES``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from otel_tele.semconv import AttrType

from ._measures import MEASURES_V2, MEASURES_V4, Measure
from ._tables import BATCH_TABLE, ROLLUPS, ROW_TABLE, TABLE

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
    measures = ", ".join(_column(m, d) for m in MEASURES_V2)
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
        for m in MEASURES_V4
    ]


#: ``MIGRATIONS[n](dialect)`` → the statements taking version ``n`` to ``n + 1``.
MIGRATIONS: tuple[Callable[[Dialect], list[Statement]], ...] = (_v1, _v2, _v3, _v4)
SCHEMA_VERSION = len(MIGRATIONS)
#: The migration index creating the rollup tables: rows already stored then get their rollups.
ROLLUPS_ADDED_AT = 1
