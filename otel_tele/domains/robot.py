"""Robot arm control (spec 004): DDS command/feedback hooks, FastAPI middleware -> SQLite."""

from __future__ import annotations

import math
from typing import Any

from ..plugin import DROP, Domain, Option, OverloadPolicy, SinkSpec


def _parse_days(raw: str) -> float:
    """A number of days; 0 or negative disables retention (so any finite number or infinity)."""
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError(f"expected a number of days, got {raw!r}") from None
    if math.isnan(value):
        raise ValueError(f"expected a number of days, got {raw!r}")
    return value


SQLITE_RETENTION_DAYS: Option[float] = Option(
    "sqlite_retention_days",
    "TELEMETRY_RETENTION_DAYS",
    _parse_days,
    7.0,
    "days of robot telemetry kept in telemetry.db (0 or negative: kept forever)",
)

#: The domain's options, joined to the option table through ``options`` below.
OPTIONS: tuple[Option[Any], ...] = (SQLITE_RETENTION_DAYS,)

DOMAIN = Domain(
    name="robot",
    title="Robot arm (spec 004) -> SQLite",
    vocabulary="otel_tele.semconv.robot",
    order=10,
    sinks=(
        SinkSpec(
            "sqlite",
            "otel_tele.exporters.sqlite:SqliteSink",
            "",
            "otel_tele_sqlite",
            state="otel_tele.exporters.sqlite.maintenance:storage_state",
        ),
    ),
    options="otel_tele.domains.robot:OPTIONS",
    cli="otel_tele.cli._query",
    router="otel_tele.http_robot:debug_router",
    dashboard="otel_tele.dashboard._robot:page",
    demo="otel_tele.demo._robot",
    instrumentation=("otel_tele.instrumentation.robot.dds", "otel_tele.instrumentation.robot.fastapi"),
    reader="otel_tele._robot_legacy:for_telemetry",
    overload=(
        OverloadPolicy("robot", DROP, "a control loop never blocks; robot=wait makes the log lossless"),
    ),
    sql_views="otel_tele._robot_sql:sql_views",
)
