"""The process-wide collector behind ``get_collector()`` (the helpers and the FastAPI middleware use it)."""

from __future__ import annotations

import threading

from otel_tele._internal import fork_safe
from otel_tele._setup import get_telemetry, on_reset

from ._collector import TelemetryCollector

_collector: TelemetryCollector | None = None
_lock = fork_safe(threading.Lock())


def get_collector() -> TelemetryCollector:
    """The process-wide collector, created (and started) on first use.

    It emits through the global ``otel_tele.setup()`` pipeline when there is one — also if
    ``setup()`` ran after the collector was first used — and otherwise through a standalone pipeline
    writing ``data/telemetry.db``.

    Example::

        get_collector().log_command(seq=1, funcode=1, joint_id=2, target_value=45.0)
    """
    global _collector
    telemetry = get_telemetry()
    collector = _collector
    if collector is not None and (telemetry is None or collector.telemetry is telemetry):
        return collector
    with _lock:
        if _collector is None:
            _collector = (
                TelemetryCollector(telemetry=telemetry) if telemetry is not None else TelemetryCollector()
            )
            _collector.start()
        elif telemetry is not None and _collector.telemetry is not telemetry:
            _collector.rebind(telemetry)
        return _collector


def current_collector() -> TelemetryCollector | None:
    """The process-wide collector if one was created, without creating it."""
    return _collector


def reset_collector() -> None:
    """Close and forget the process-wide collector (tests; a service re-initialising telemetry)."""
    global _collector
    with _lock:
        collector, _collector = _collector, None
    if collector is not None:
        collector.close()


on_reset(reset_collector)
