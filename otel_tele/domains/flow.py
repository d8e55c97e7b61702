"""Flow/queue replay (specs 001/003): per-node flow meters -> capture bundles."""

from .._registry import Domain, SinkSpec

DOMAIN = Domain(
    name="flow",
    title="Queueing service (specs 001/003) -> capture bundles",
    vocabulary="otel_tele.semconv.flow",
    order=40,
    sinks=(SinkSpec("capture", "otel_tele.exporters.capture:CaptureSink", "capture", "otel_tele_capture"),),
    cli="otel_tele.cli._capture",
    router="otel_tele.http_capture:capture_router",
    dashboard="otel_tele.dashboard._flow:page",
    demo="otel_tele.demo._queueing",
    instrumentation=("otel_tele.instrumentation.flow",),
)
