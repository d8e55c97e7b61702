"""The toy domain's one registry entry: every part named by an import string (nothing is imported
by reading the registry), and what its pings do when a queue is full."""

from collections.abc import Mapping
from typing import Any

from otel_tele.plugin import DROP, WAIT, Domain, OverloadPolicy, SinkSpec


def overload_policy(event_name: str, attributes: Any) -> str | None:
    """A failed ping (``toy.ok`` false) is kept under overload; any other ping may be dropped."""
    ok = attributes.get("toy.ok") if isinstance(attributes, Mapping) else None
    return "toy.failed" if ok is False else None


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
    sql_views="toy_tele.query:sql_views",
    instrumentation=("toy_tele.instrumentation",),
    overload=(
        OverloadPolicy("toy", DROP, "pings are cheap: under overload they are dropped and counted"),
        OverloadPolicy("toy.failed", WAIT, "a failed ping is what the toy is for: the caller waits for room"),
    ),
    overload_classifier="toy_tele.domain:overload_policy",
)
