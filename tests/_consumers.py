"""Consumers the row-path tests attach: another log processor (what a user's processor or the
dashboard's live tail is), and a pipeline with a metric reader (without one, the events' metrics
are not kept at all)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_tele._pipeline import Pipeline
from otel_tele._settings import resolve


class Seen(LogRecordProcessor):
    """Another log consumer: keeps every record it is given."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    def on_emit(self, log_record: Any) -> None:
        self.records.append(log_record)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def pipeline_with_reader(
    options: Mapping[str, Any], sink_options: Mapping[str, Mapping[str, Any]] | None = None
) -> Pipeline:
    """A private pipeline of ``options`` (as ``setup`` takes them) with an in-memory metric reader."""
    readers = {"metrics": [InMemoryMetricReader()]}
    return Pipeline(resolve(options), local=True, sink_options=sink_options, extra_exporters=readers)


def books(telemetry: Pipeline) -> dict[str, tuple[int, ...]]:
    """Every sink's books, per signal: (emitted, exported, dropped, failed, pending, not routed,
    queued)."""
    return {
        f"{s.sink}/{s.signal}": (
            s.emitted,
            s.exported,
            s.dropped,
            s.failed,
            s.pending,
            s.not_routed,
            s.queued,
        )
        for s in telemetry.sink_stats()
    }


def capsule_only(data_dir: Path, **more: Any) -> Pipeline:
    """A private pipeline whose only log consumer is the capsule sink (the FDA row path applies),
    with a metric reader; ``more``: options as ``setup`` takes them."""
    options = {"sinks": ["capsule"], "data_dir": data_dir, "traces_exporter": "none"}
    return pipeline_with_reader(options | {"metrics_exporter": "none", "logs_exporter": "none"} | more)
