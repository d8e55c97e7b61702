"""Sink-contract sample for ``postgres`` (model-serving events; embedded SQLite without a DSN)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from otel_tele.instrumentation.inference import TelemetryLogger


def exercise(telemetry: Any, n: int) -> None:
    """Emit n inference events (THOUGHT_LATENCY rows) through the public TelemetryLogger."""
    logger = TelemetryLogger(telemetry)
    for i in range(n):
        logger.record_thought(f"model-{i % 3}", 0.01 * (i % 50 + 1), 10 + i % 90, prompt_tokens=5)


def stored(data_dir: Path, telemetry: Any) -> int:
    """Rows the sink's store holds."""
    return int(telemetry.sinks["postgres"].store.row_count())
