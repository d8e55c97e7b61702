"""Sink-contract sample for ``postgres`` (model-serving events; embedded SQLite without a DSN)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentelemetry._logs import LogRecord
from otel_tele.instrumentation.inference import TelemetryLogger

from otel_tele.semconv import inference as inf


def exercise(telemetry: Any, n: int) -> None:
    """Emit n inference events (THOUGHT_LATENCY rows) through the public TelemetryLogger."""
    logger = TelemetryLogger(telemetry)
    for i in range(n):
        logger.record_thought(f"model-{i % 3}", 0.01 * (i % 50 + 1), 10 + i % 90, prompt_tokens=5)


def stored(data_dir: Path, telemetry: Any) -> int:
    """Rows the sink's store holds."""
    return int(telemetry.sinks["postgres"].store.row_count())


def exercise_with_poison(telemetry: Any, n: int) -> tuple[int, int]:
    """Lone surrogates through the logger and raw records (repaired); metadata nested too deep for any
    JSON parser (rejected alone)."""
    logger = TelemetryLogger(telemetry)
    half = n // 2
    exercise(telemetry, half)
    logger.record("NOTE", "c\ud800", 1.0, {"t": "\udfff"})
    raw = telemetry.logger("poison")
    for metadata in ('{"t": "\ud800"}', "[" * 5_000 + "]" * 5_000):
        attributes = {inf.EVENT_TYPE: "NOTE", inf.METADATA: metadata}
        raw.emit(LogRecord(event_name=inf.GENERIC, attributes=attributes))
    exercise(telemetry, n - half)
    return 2, 1
