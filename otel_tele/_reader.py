"""The SDK's periodic metric reader, with a ``force_flush`` that tells the truth and a clean fork.

The SDK's ``PeriodicExportingMetricReader.force_flush`` returns True whatever the export returned, so
a flush to a dead collector would look successful; and a child forked while the parent's reader
thread was exporting inherits its export lock held, forever.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData, PeriodicExportingMetricReader

from ._internal import suppress_instrumentation

_log = logging.getLogger("otel_tele")


class PushMetricReader(PeriodicExportingMetricReader):
    """A periodic reader whose ``force_flush`` is False when the export it triggered failed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._outcome = threading.local()  # per flushing thread: the ticker exports concurrently
        super().__init__(*args, **kwargs)

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        ok = False
        with suppress_instrumentation(), self._export_lock:
            try:
                ok = self._exporter.export(metrics_data, timeout_millis=timeout_millis) is (
                    MetricExportResult.SUCCESS
                )
            except Exception:
                _log.exception("metric exporter %s raised", type(self._exporter).__name__)
        if not ok:
            self._outcome.ok = False

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        self._outcome.ok = True
        super().force_flush(timeout_millis=timeout_millis)
        return bool(self._outcome.ok)

    def _at_fork_reinit(self) -> None:
        # The parent's ticker may have held the lock mid-export when the process forked.
        self._export_lock = threading.Lock()
        self._outcome = threading.local()
        super()._at_fork_reinit()  # type: ignore[no-untyped-call]
