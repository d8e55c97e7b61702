"""A configured collector that is down is an expected condition, not an error to shout about.

The SDK's OTLP exporters log every retry ("Transient error … retrying in 3.87s") and every failed
batch, some with a traceback. otel-tele wraps each OTLP exporter it attaches so that the user sees one
WARNING when that exporter stops delivering to its collector and one when it delivers again (at most one
outage warning per exporter per :data:`OUTAGE_WARNING_INTERVAL_S`); the records lost meanwhile are in
the exporter's books (``sink_stats()``, ``otel_tele_sink_failed_total``). The SDK's per-retry lines are
filtered out of its exporter loggers once otel-tele attaches an OTLP exporter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from ._internal import fork_safe
from ._sink import count_points

_log = logging.getLogger("otel_tele")

#: Loggers of the OTLP exporters' retry loops (gRPC, and HTTP through its per-signal loggers).
SDK_EXPORTER_LOGGERS: tuple[str, ...] = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.common.http",
)
#: Messages of an unreachable collector, which :class:`ExportHealth` reports once instead.
_RETRY_NOISE: tuple[str, ...] = ("Transient error", "Failed to export", "Shutdown in progress")
OUTAGE_WARNING_INTERVAL_S = 60.0


class _DropRetryNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(_RETRY_NOISE))


_filter = _DropRetryNoise()


def quiet_sdk_retry_logs() -> None:
    """Drop the SDK exporters' per-retry and per-batch failure lines (idempotent)."""
    for name in SDK_EXPORTER_LOGGERS:
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)


class ExportHealth:
    """Tracks one exporter's reachability; warns on the transitions, rate-limited.

    Example::

        health = ExportHealth("OTLP traces", "http://localhost:4317")
        health.record(ok=False, count=10)   # WARNING: cannot deliver
        health.record(ok=False, count=10)   # silent: still down, counted
        health.record(ok=True, count=5)     # WARNING: delivers again, 20 records were not delivered
    """

    def __init__(
        self,
        what: str,
        where: str,
        *,
        min_interval_s: float = OUTAGE_WARNING_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.where = where
        self.down = False
        self.quiet = False  # set at shutdown: its one summary line reports what was not delivered
        self.lost_while_down = 0
        self._warned_down = False
        self._last_warning = -float("inf")
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._lock = fork_safe(threading.Lock())

    def record(self, *, ok: bool, count: int) -> None:
        with self._lock:
            if not ok:
                self.lost_while_down += count
                if self.down:
                    return
                self.down = True
                now = self._clock()
                if self.quiet or now - self._last_warning < self._min_interval_s:
                    return  # a flapping collector: at most one outage warning per interval
                self._last_warning, self._warned_down = now, True
                _log.warning(
                    "%s exporter cannot deliver to %s (unreachable or refusing); its records are "
                    "counted as failed (sink_stats(), otel_tele_sink_failed_total) until it recovers",
                    self.what,
                    self.where,
                )
                return
            if self.down:
                lost, self.lost_while_down, self.down = self.lost_while_down, 0, False
                if self._warned_down:
                    self._warned_down = False
                    _log.warning(
                        "%s exporter delivers to %s again; %d records were not delivered meanwhile",
                        self.what,
                        self.where,
                        lost,
                    )
            else:
                self.lost_while_down = 0


class HealthMetricExporter(MetricExporter):
    """A metric exporter that reports its reachability through :class:`ExportHealth`."""

    def __init__(self, inner: MetricExporter, health: ExportHealth) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.health = health

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception as exc:
            _log.debug("%s exporter raised: %r", self.health.what, exc)
            result = MetricExportResult.FAILURE
        self.health.record(ok=result == MetricExportResult.SUCCESS, count=count_points(metrics_data))
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
