"""Robot-arm telemetry (spec 004): DDS commands and feedback, smoother, cameras, system events.

Usage::

    from otel_tele.instrumentation.robot import EventType, get_collector

    tc = get_collector()                       # the process-wide collector
    tc.log_command(seq, funcode, joint_id, target_value, data, correlation_id, raw_len)
    tc.log_feedback(seq, 1, {"angle0": 10.5, ...}, None)
    tc.enable()                                # emit() is off until enabled, as in the original
    tc.emit("dds", EventType.DDS_PUBLISH, {"seq": 7, "funcode": 1, "data": {...}}, cid)

Everything recorded becomes OTel data from the robot vocabulary (``otel_tele.semconv.robot``): one
log record per row-worthy event, counters for command/feedback/request rates, gauges for camera fps
and drops. The SQLite sink turns the log records into the spec's ``telemetry.db`` rows.

Configuration:

- After ``otel_tele.setup(...)``, ``get_collector()`` emits through that pipeline (its ``sqlite`` sink
  writes ``$OTEL_TELE_DATA_DIR/telemetry.db``).
- Without ``setup()``, ``get_collector()`` builds a standalone collector: its own private pipeline
  with an SQLite sink writing the spec's ``data/telemetry.db`` (relative to the working directory).
- ``TelemetryCollector(db_path=..., batch_size=50, flush_interval_s=0.1)`` is always standalone.

Hooks: :class:`SmootherSampler` (log every 5th smoother tick) and :class:`CameraHealthReporter`
(a camera health snapshot every 5 s).
"""

from __future__ import annotations

from ._collector import DEFAULT_DB_PATH, TelemetryCollector
from ._default import current_collector, get_collector, reset_collector
from ._events import EventType, TelemetryEvent
from ._helpers import CameraHealthReporter, SmootherSampler

__all__ = [
    "DEFAULT_DB_PATH",
    "CameraHealthReporter",
    "EventType",
    "SmootherSampler",
    "TelemetryCollector",
    "TelemetryEvent",
    "current_collector",
    "get_collector",
    "reset_collector",
]
