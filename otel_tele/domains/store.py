"""The general telemetry store (issue 15 §2): every span, log record and metric point -> Parquet.

Not a domain of its own vocabulary: it keeps every record as it comes, beside the domain sinks.
``setup()`` does not attach it by default (``default=False``: in a host process it would double the
cost of every span and log record); ``otel-tele serve``, where everything arrives, does.
"""

from .._registry import Domain, SinkSpec

DOMAIN = Domain(
    name="store",
    title="Every span, log record and metric point -> Parquet general store",
    vocabulary="otel_tele.semconv.store",
    order=90,
    dashboard="otel_tele.dashboard._traces:page",
    sinks=(
        SinkSpec("store", "otel_tele.exporters.store:StoreSink", "capsule", "otel_tele_store", default=False),
    ),
)
