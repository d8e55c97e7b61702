"""otel-tele: OpenTelemetry instrumentation and storage exporters, set up in one line.

Example::

    import otel_tele
    telemetry = otel_tele.setup(service_name="arm-server")
    telemetry.events.emit("robot.system.event", {"robot.system.event_type": "connect"})
"""

from __future__ import annotations

from ._events import DomainEvents
from ._pipeline import Pipeline, Telemetry
from ._setup import get_telemetry, setup, shutdown
from ._sink import RetryPolicy, Sink, SinkLogExporter, SinkMetricExporter, SinkSpanExporter, Written
from ._stats import StatsSnapshot
from ._version import __version__

__all__ = [
    "DomainEvents",
    "Pipeline",
    "RetryPolicy",
    "Sink",
    "SinkLogExporter",
    "SinkMetricExporter",
    "SinkSpanExporter",
    "StatsSnapshot",
    "Telemetry",  # deprecated name of Pipeline
    "Written",
    "__version__",
    "get_telemetry",
    "setup",
    "shutdown",
]
