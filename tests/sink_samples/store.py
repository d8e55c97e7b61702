"""Sample driver of the general store for the generic sink contract suite."""

from __future__ import annotations

from pathlib import Path

import duckdb
from opentelemetry._logs import LogRecord
from otel_tele.exporters.store import schema
from otel_tele.exporters.store._rows import MAX_RECORD_CHARS

import otel_tele

SCOPE = "store.sample"
EVENT = "robot.system.event"
#: The store keeps every record: nothing a pipeline carries is foreign to it.
STORES_EVERYTHING = True


def exercise(telemetry: otel_tele.Telemetry, n: int) -> None:
    """``n`` domain events (the store keeps them like any log record; a domain's overload policy
    applies to them, which the overload suite relies on)."""
    for i in range(n):
        telemetry.events.emit(EVENT, {"robot.system.event_type": "store-sample", "i": i})


def stored(data_dir: Path, telemetry: otel_tele.Telemetry) -> int:
    """Log rows of the sample (its events, and its records through the logs API) in ``data_dir/store``."""
    root = data_dir / "store"
    if not list((root / "logs").glob("*/*.parquet")):
        return 0
    query = (
        f"SELECT count(*) FROM read_parquet('{schema.dataset_glob(root, 'logs')}') "
        "WHERE event_name = ? OR scope_name = ?"
    )
    # Never the shared default connection: a result left open there breaks others' queries.
    with duckdb.connect() as con:
        return int(con.execute(query, [EVENT, SCOPE]).fetchall()[0][0])


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
