"""Robot-arm telemetry (spec 004): the DDS collector and its hooks (:mod:`.dds`), and the FastAPI
instrumentation of the robot server (:mod:`.fastapi`, needs the ``fastapi`` extra).

Both speak only OpenTelemetry and the robot vocabulary (``otel_tele.semconv.robot``); the SQLite sink
(``otel_tele.exporters.sqlite``) turns what they record into ``telemetry.db`` rows.

Example::

    from otel_tele.instrumentation.robot import EventType, get_collector, instrument_app

    get_collector().log_command(seq=1, funcode=1, joint_id=2, target_value=45.0)
    instrument_app(app)
"""

from __future__ import annotations

from typing import Any

from .dds import (
    DEFAULT_DB_PATH,
    CameraHealthReporter,
    EventType,
    SmootherSampler,
    TelemetryCollector,
    TelemetryEvent,
    current_collector,
    get_collector,
    reset_collector,
)

__all__ = [
    "DEFAULT_DB_PATH",
    "CameraHealthReporter",
    "EventType",
    "SmootherSampler",
    "TelemetryCollector",
    "TelemetryEvent",
    "current_collector",
    "current_correlation_id",
    "get_collector",
    "instrument_app",
    "reset_collector",
    "scrub",
    "uninstrument_app",
]

# The FastAPI part needs the optional extra: imported on first use, so the collector works without it.
_FASTAPI = ("instrument_app", "uninstrument_app", "current_correlation_id", "scrub")


def __getattr__(name: str) -> Any:
    if name in _FASTAPI:
        from . import fastapi

        return getattr(fastapi, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
