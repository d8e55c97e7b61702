"""Model serving (spec 002): inference timers -> PostgreSQL (or the embedded store)."""

from __future__ import annotations

from typing import Any

from ..plugin import (
    DROP,
    Domain,
    Option,
    OverloadPolicy,
    SinkSpec,
    parse_positive_float,
    parse_positive_int,
    parse_str,
)

POSTGRES_DSN: Option[str | None] = Option(
    "postgres_dsn",
    "OTEL_TELE_POSTGRES_DSN",
    parse_str,
    None,
    "PostgreSQL DSN of the inference sink",
    secret=True,
)

INFERENCE_RETENTION_DAYS: Option[int] = Option(
    "inference_retention_days",
    "OTEL_TELE_INFERENCE_RETENTION_DAYS",
    parse_positive_int,
    60,
    "days of inference telemetry kept before pruning",
)

INFERENCE_PRUNE_INTERVAL_S: Option[float] = Option(
    "inference_prune_interval_s",
    "OTEL_TELE_INFERENCE_PRUNE_INTERVAL",
    parse_positive_float,
    3600.0,
    "seconds between the sink's scheduled prunes",
)

INFERENCE_LOCK_TIMEOUT_MS: Option[int] = Option(
    "inference_lock_timeout_ms",
    "OTEL_TELE_INFERENCE_LOCK_TIMEOUT",
    parse_positive_int,
    200,
    "lock_timeout of one prune batch (ms): pruning waits no longer than this for ingest",
)

INFERENCE_ALERT_TABLE_BYTES: Option[int] = Option(
    "inference_alert_table_bytes",
    "OTEL_TELE_INFERENCE_ALERT_TABLE_BYTES",
    parse_positive_int,
    100_000_000,
    "alert when system_telemetry is larger (bytes)",
)

INFERENCE_ALERT_ROWS: Option[int] = Option(
    "inference_alert_rows",
    "OTEL_TELE_INFERENCE_ALERT_ROWS",
    parse_positive_int,
    1_000_000,
    "alert when system_telemetry has more rows (suggests pruning failure)",
)

INFERENCE_ALERT_EFFICIENCY_DROP: Option[float] = Option(
    "inference_alert_efficiency_drop",
    "OTEL_TELE_INFERENCE_ALERT_EFFICIENCY_DROP",
    parse_positive_float,
    0.2,
    "alert when a model's last-24-hour ms/token exceeds its 60-day baseline by this fraction",
)

POSTGRES_POOL_MAX_SIZE: Option[int] = Option(
    "postgres_pool_max_size",
    "OTEL_TELE_POSTGRES_POOL_MAX_SIZE",
    parse_positive_int,
    4,
    "connections in the inference store's pool",
)

#: The domain's options, joined to the option table through ``options`` below.
OPTIONS: tuple[Option[Any], ...] = (
    POSTGRES_DSN,
    INFERENCE_RETENTION_DAYS,
    INFERENCE_PRUNE_INTERVAL_S,
    INFERENCE_LOCK_TIMEOUT_MS,
    INFERENCE_ALERT_TABLE_BYTES,
    INFERENCE_ALERT_ROWS,
    INFERENCE_ALERT_EFFICIENCY_DROP,
    POSTGRES_POOL_MAX_SIZE,
)

DOMAIN = Domain(
    name="inference",
    title="Model serving (spec 002) -> inference store",
    vocabulary="otel_tele.semconv.inference",
    order=30,
    sinks=(
        SinkSpec(
            "postgres",
            "otel_tele.exporters.postgres:PostgresSink",
            "postgres",
            "otel_tele_postgres",
            state="otel_tele.exporters.postgres.maintenance:storage_state",
        ),
    ),
    options="otel_tele.domains.inference:OPTIONS",
    cli="otel_tele.cli._inference",
    router="otel_tele.http_inference:inference_router",
    dashboard="otel_tele.dashboard._inference:page",
    demo="otel_tele.demo._serving",
    reader="otel_tele.inference_stats:for_telemetry",
    sql_views="otel_tele._inference_sql:sql_views",
    instrumentation=("otel_tele.instrumentation.inference",),
    overload=(
        OverloadPolicy(
            "inference", DROP, "a request path never blocks on telemetry; inference=wait for lossless"
        ),
    ),
)
