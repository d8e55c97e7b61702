"""Flow/queue replay (specs 001/003): per-node flow meters -> capture bundles."""

from __future__ import annotations

from typing import Any

from ..plugin import DROP, Domain, Option, OverloadPolicy, SinkSpec, parse_positive_int, parse_str


def _parse_bin_unit(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("minutes", "hours", "days", "weeks"):
        raise ValueError(f"expected minutes, hours, days or weeks, got {raw!r}")
    return value


CAPTURE_BIN_SIZE: Option[int] = Option(
    "capture_bin_size", "OTEL_TELE_CAPTURE_BIN_SIZE", parse_positive_int, 5, "capture sink bin size"
)

CAPTURE_BIN_UNIT: Option[str] = Option(
    "capture_bin_unit",
    "OTEL_TELE_CAPTURE_BIN_UNIT",
    _parse_bin_unit,
    "minutes",
    "capture sink bin unit: minutes, hours, days or weeks",
)

CAPTURE_BINS: Option[int] = Option(
    "capture_bins", "OTEL_TELE_CAPTURE_BINS", parse_positive_int, 288, "bins per capture window"
)

CAPTURE_KEY: Option[str | None] = Option(
    "capture_key",
    "OTEL_TELE_CAPTURE_KEY",
    parse_str,
    None,
    "capture bundle name prefix (default: the service name)",
)

FLOW_CARDINALITY_LIMIT: Option[int] = Option(
    "flow_cardinality_limit",
    "OTEL_TELE_FLOW_CARDINALITY_LIMIT",
    parse_positive_int,
    10_000,
    "node/class series the flow meters keep (the capture grid's rows); more are a bundle warning",
)

#: The domain's options, joined to the option table through ``options`` below.
OPTIONS: tuple[Option[Any], ...] = (
    CAPTURE_BIN_SIZE,
    CAPTURE_BIN_UNIT,
    CAPTURE_BINS,
    CAPTURE_KEY,
    FLOW_CARDINALITY_LIMIT,
)


def metric_views(settings: Any) -> list[Any]:
    """FlowMeters fold series past ``flow_cardinality_limit`` into their own overflow series: the
    SDK's limit on the ``flow.*`` instruments sits one above, so that series is kept rather than
    overflowing again."""
    from opentelemetry.sdk.metrics.view import View

    return [
        View(instrument_name="flow.*", aggregation_cardinality_limit=settings.get(FLOW_CARDINALITY_LIMIT) + 1)
    ]


DOMAIN = Domain(
    name="flow",
    title="Queueing service (specs 001/003) -> capture bundles",
    vocabulary="otel_tele.semconv.flow",
    order=40,
    sinks=(SinkSpec("capture", "otel_tele.exporters.capture:CaptureSink", "capture", "otel_tele_capture"),),
    options="otel_tele.domains.flow:OPTIONS",
    views="otel_tele.domains.flow:metric_views",
    cli="otel_tele.cli._capture",
    router="otel_tele.http_capture:capture_router",
    dashboard="otel_tele.dashboard._flow:page",
    sql_views="otel_tele._flow_sql:sql_views",
    demo="otel_tele.demo._queueing",
    instrumentation=("otel_tele.instrumentation.flow",),
    overload=(
        OverloadPolicy(
            "flow",
            DROP,
            "flow meters aggregate in the metrics SDK and never queue; their bound is the cardinality limit",
        ),
    ),
)
