"""The toy domain's one registry entry: every part named by an import string (nothing is imported
by reading the registry)."""

from otel_tele._registry import Domain, SinkSpec

DOMAIN = Domain(
    name="toy",
    title="Toy pings (test plug-in) -> SQLite table toy_pings",
    vocabulary="toy_tele.semconv",
    order=900,
    # default=False: installing the plug-in attaches nothing until OTEL_TELE_SINKS (or setup(sinks=))
    # names it.
    sinks=(SinkSpec("toy", "toy_tele.exporter:ToySink", default=False),),
    options="toy_tele.exporter.options:OPTIONS",
    cli="toy_tele.cli",
    instrumentation=("toy_tele.instrumentation",),
)
