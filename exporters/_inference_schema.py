"""The inference store's schema, declared once for both backends (PostgreSQL and embedded SQLite).

``system_telemetry`` holds the spec 002 rows. Two rollup tables are maintained at write time, in the
same transaction as the rows: 60-second buckets (the spec's aggregation interval; the 24-hour questions
read them) and hourly buckets (the 60-day questions and the exact row count read them). A rollup row
holds, per bucket, event type and component, the measures of :data:`MEASURES`; buckets are epoch
seconds, so both backends store and group them the same way.

Migrations only go forward: ``MIGRATIONS[n]`` upgrades a store at version ``n`` to ``n + 1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from otel_tele.semconv.inference import TIME_TO_FIRST_TOKEN_BUCKETS_S

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
TTFT_BOUNDS: tuple[float, ...] = TIME_TO_FIRST_TOKEN_BUCKETS_S
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
#: Raw columns in write order (timestamp: epoch seconds in SQLite, timestamptz in PostgreSQL).
ROW_COLUMNS: tuple[str, ...] = (
    "event_type",
    "component",
    "value",
    "metadata",
    "status",
    "timestamp",
    "trace_id",
    "span_id",
)
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


def _v1(d: Dialect) -> list[Statement]:
    t = _TYPES[d]
    return [
        (
            f"CREATE TABLE {{t}} (id {t['id']}, event_type {t['text']} NOT NULL, component {t['text']}, "
            f"value {t['float']}, metadata {t['json']}, status {t['text']}, timestamp {t['ts']})",
            {"t": TABLE},
        ),
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
    t = _TYPES[d]
    return [
        (f"ALTER TABLE {{t}} ADD COLUMN trace_id {t['text']}", {"t": TABLE}),
        (f"ALTER TABLE {{t}} ADD COLUMN span_id {t['text']}", {"t": TABLE}),
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
