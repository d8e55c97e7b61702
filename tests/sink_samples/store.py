"""Sample driver of the general store for the generic sink contract suite."""

from __future__ import annotations

from pathlib import Path

import duckdb
from opentelemetry._logs import LogRecord, SeverityNumber
from otel_tele.exporters.store import schema
from otel_tele.exporters.store._rows import MAX_RECORD_CHARS

import otel_tele

SCOPE = "store.sample"
#: The store keeps every record: nothing a pipeline carries is foreign to it.
STORES_EVERYTHING = True


def exercise(telemetry: otel_tele.Telemetry, n: int) -> None:
    """``n`` log records through the OTel logs API."""
    logger = telemetry.logger(SCOPE)
    for i in range(n):
        logger.emit(LogRecord(body=f"sample {i}", severity_number=SeverityNumber.INFO, attributes={"i": i}))


def stored(data_dir: Path, telemetry: otel_tele.Telemetry) -> int:
    """Log rows of the sample's scope in ``data_dir/store``."""
    root = data_dir / "store"
    if not list((root / "logs").glob("*/*.parquet")):
        return 0
    query = f"SELECT count(*) FROM read_parquet('{schema.dataset_glob(root, 'logs')}') WHERE scope_name = ?"
    return int(duckdb.execute(query, [SCOPE]).fetchone()[0])  # type: ignore[index]


def exercise_with_poison(telemetry: otel_tele.Telemetry, n: int) -> tuple[int, int]:
    """A body with a lone surrogate (repaired: stored as its escape) and one longer than a record may
    be (rejected alone), among ``n`` good records."""
    half = n // 2
    exercise(telemetry, half)
    logger = telemetry.logger(SCOPE)
    logger.emit(LogRecord(body="bad \ud800 text", attributes={"t": "\udfff", "nan": float("nan")}))
    logger.emit(LogRecord(body="x" * (MAX_RECORD_CHARS + 1)))
    exercise(telemetry, n - half)
    return 1, 1
