"""The general telemetry store (issue 15 §2): every span, log record and metric point -> Parquet.

Not a domain of its own vocabulary: it keeps every record as it comes, beside the domain sinks.
``setup()`` does not attach it by default (``default=False``: in a host process it would double the
cost of every span and log record); ``otel-tele serve``, where everything arrives, does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..plugin import Domain, Option, SinkSpec, parse_path, parse_positive_float, parse_positive_int

STORE_DIR: Option[Path | None] = Option(
    "store_dir", "OTEL_TELE_STORE_DIR", parse_path, None, "general store root (default <data_dir>/store)"
)
STORE_RETENTION_DAYS: Option[float] = Option(
    "store_retention_days",
    "OTEL_TELE_STORE_RETENTION_DAYS",
    parse_positive_float,
    30.0,
    "days the general store keeps a day's partition (by the day it was written)",
)
STORE_FLUSH_ROWS: Option[int] = Option(
    "store_flush_rows",
    "OTEL_TELE_STORE_FLUSH_ROWS",
    parse_positive_int,
    50_000,
    "the general store writes a part (durable) once this many rows of a signal are held",
)
STORE_FLUSH_BYTES: Option[int] = Option(
    "store_flush_bytes",
    "OTEL_TELE_STORE_FLUSH_BYTES",
    parse_positive_int,
    32 * 1024 * 1024,
    "... or this many bytes (Arrow, in memory)",
)
STORE_FLUSH_SECONDS: Option[float] = Option(
    "store_flush_seconds",
    "OTEL_TELE_STORE_FLUSH_SECONDS",
    parse_positive_float,
    2.0,
    "... or this many seconds after the oldest row not yet durable",
)
STORE_COMPACT_INTERVAL_S: Option[float] = Option(
    "store_compact_interval_s",
    "OTEL_TELE_STORE_COMPACT_INTERVAL",
    parse_positive_float,
    300.0,
    "seconds between the general store's retention and compaction passes",
)
STORE_PART_BYTES: Option[int] = Option(
    "store_part_bytes",
    "OTEL_TELE_STORE_PART_BYTES",
    parse_positive_int,
    128 * 1024 * 1024,
    "size a compaction merges small parts into (bytes of Parquet)",
)

#: The domain's options, joined to the option table through ``options`` below.
OPTIONS: tuple[Option[Any], ...] = (
    STORE_DIR,
    STORE_RETENTION_DAYS,
    STORE_FLUSH_ROWS,
    STORE_FLUSH_BYTES,
    STORE_FLUSH_SECONDS,
    STORE_COMPACT_INTERVAL_S,
    STORE_PART_BYTES,
)

DOMAIN = Domain(
    name="store",
    title="Every span, log record and metric point -> Parquet general store",
    vocabulary="otel_tele.semconv.store",
    order=90,
    dashboard="otel_tele.dashboard._traces:page",
    sinks=(
        SinkSpec(
            "store",
            "otel_tele.exporters.store:StoreSink",
            "capsule",
            "otel_tele_store",
            default=False,
            state="otel_tele.exporters.store.maintenance:storage_state",
        ),
    ),
    options="otel_tele.domains.store:OPTIONS",
    sql_views="otel_tele.exporters.store.schema:sql_views",
)
