"""Iterative solvers (FDA, spec 000): iteration recorder and run events -> Parquet run capsules."""

from .._registry import Domain, SinkSpec

DOMAIN = Domain(
    name="fda",
    title="Iterative solver (spec 000) -> Parquet run capsules",
    vocabulary="otel_tele.semconv.fda",
    order=20,
    sinks=(SinkSpec("capsule", "otel_tele.exporters.capsule:CapsuleSink", "capsule", "otel_tele_capsule"),),
    cli="otel_tele.cli._runs",
    router="otel_tele.http_fda:runs_router",
    dashboard="otel_tele.dashboard._fda:page",
    demo="otel_tele.demo._solver",
    instrumentation=("otel_tele.instrumentation.fda",),
)
