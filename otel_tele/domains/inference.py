"""Model serving (spec 002): inference timers -> PostgreSQL (or the embedded store)."""

from .._registry import Domain, SinkSpec

DOMAIN = Domain(
    name="inference",
    title="Model serving (spec 002) -> inference store",
    vocabulary="otel_tele.semconv.inference",
    order=30,
    sinks=(
        SinkSpec("postgres", "otel_tele.exporters.postgres:PostgresSink", "postgres", "otel_tele_postgres"),
    ),
    cli="otel_tele.cli._inference",
    router="otel_tele.http_inference:inference_router",
    dashboard="otel_tele.dashboard._inference:page",
    demo="otel_tele.demo._serving",
    reader="otel_tele.inference_stats:for_telemetry",
    instrumentation=("otel_tele.instrumentation.inference",),
)
