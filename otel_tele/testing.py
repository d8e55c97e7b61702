"""Test doubles for otel-tele and for the tests of services that use it.

Example::

    from otel_tele import testing

    def test_command_is_recorded():
        with testing.capture() as cap:
            cap.telemetry.events.emit("robot.dds.command", {"robot.dds.funcode": 1})
            cap.flush()
            assert cap.events("robot.dds.command")[0]["robot.dds.funcode"] == 1
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from . import _setup, _sink
from ._internal import raise_internal_errors
from ._pipeline import Pipeline
from ._settings import resolve

__all__ = ["Capture", "capture", "raise_internal_errors", "reset"]


class Capture:
    """A private pipeline that keeps every span, log record and metric in memory."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("traces_exporter", "none")
        options.setdefault("metrics_exporter", "none")
        options.setdefault("logs_exporter", "none")
        options.setdefault("sinks", "none")
        self.span_exporter = InMemorySpanExporter()
        self.log_exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        self.metric_reader = InMemoryMetricReader()
        self.telemetry = Pipeline(
            resolve(options),
            local=True,
            extra_exporters={
                "traces": [self.span_exporter],
                "logs": [self.log_exporter],
                "metrics": [self.metric_reader],
            },
        )

    def flush(self, timeout_millis: float = 10_000) -> None:
        """Wait until everything emitted so far is captured; fails loudly if it is not."""
        if not self.telemetry.force_flush(timeout_millis):
            raise TimeoutError("telemetry was not flushed in time")

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.span_exporter.get_finished_spans() if name is None or s.name == name]

    def logs(self) -> list[ReadableLogRecord]:
        return list(self.log_exporter.get_finished_logs())

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Attributes of captured event log records (``name`` filters by event name)."""
        return [
            dict(r.log_record.attributes or {})
            for r in self.logs()
            if r.log_record.event_name and (name is None or r.log_record.event_name == name)
        ]

    def metric_points(self, name: str) -> list[Any]:
        """The data points of metric ``name`` at a fresh collection."""
        data = self.metric_reader.get_metrics_data()
        if data is None:
            return []
        return [
            point
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def metric_value(self, name: str, **attributes: Any) -> float | None:
        """Sum (or last value) of metric ``name`` over points whose attributes include ``attributes``."""
        values: list[float] = [
            getattr(p, "value", getattr(p, "sum", 0.0))
            for p in self.metric_points(name)
            if all(p.attributes.get(k) == v for k, v in attributes.items())
        ]
        return sum(values) if values else None

    def close(self) -> None:
        self.telemetry.shutdown(timeout_millis=10_000)

    def __enter__(self) -> Capture:
        return self

    def __exit__(
        self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]
    ) -> None:
        self.close()


def capture(**options: Any) -> Capture:
    """A :class:`Capture` (use it as a context manager)."""
    return Capture(**options)


def reset() -> None:
    """Shut down the global pipeline and clear the OTel globals so the next test starts clean."""
    _setup.run_reset_hooks()
    _setup.shutdown(timeout_millis=10_000)
    _setup._forget_global()
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    metrics._internal._METER_PROVIDER_SET_ONCE = Once()
    metrics._internal._METER_PROVIDER = None
    _logs._internal._LOGGER_PROVIDER_SET_ONCE = Once()
    _logs._internal._LOGGER_PROVIDER = None
    with _sink._shared_lock:
        shared = [sink for sink, _users in _sink._shared.values()]
        _sink._shared.clear()
    for sink in shared:
        _sink.close_once(sink)
