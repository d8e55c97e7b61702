"""Robot arm control (spec 004): DDS command/feedback hooks, FastAPI middleware -> SQLite."""

from .._registry import Domain, SinkSpec

DOMAIN = Domain(
    name="robot",
    title="Robot arm (spec 004) -> SQLite",
    vocabulary="otel_tele.semconv.robot",
    order=10,
    sinks=(SinkSpec("sqlite", "otel_tele.exporters.sqlite:SqliteSink", "", "otel_tele_sqlite"),),
    cli="otel_tele.cli._query",
    router="otel_tele.http_robot:debug_router",
    dashboard="otel_tele.dashboard._robot:page",
    demo="otel_tele.demo._robot",
    instrumentation=("otel_tele.instrumentation.robot.dds", "otel_tele.instrumentation.robot.fastapi"),
    reader="otel_tele._robot_legacy:for_telemetry",
)
