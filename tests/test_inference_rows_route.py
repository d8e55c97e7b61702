"""Inference events straight into the inference sink as columns (``otel_tele._event_rows``): the same
calls written through the row path and through ordinary OTel log records give the same
``system_telemetry`` rows, rollups and books, on PostgreSQL and on the embedded store; an event
emitted inside a span reaches the sink as its record, so its row keeps the trace and span ids."""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from opentelemetry.sdk.trace import TracerProvider
from otel_tele.exporters.postgres.schema import ROLLUPS
from otel_tele.instrumentation.inference import TelemetryLogger

import otel_tele
from otel_tele import _events

from ._consumers import Seen, books
from ._pg import fresh_database

COLUMNS = "event_type, component, value, metadata, status, timestamp, trace_id, span_id"


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """The calls' event times made the same in both writes (call it before each write)."""

    # Yesterday, on the hour (inside the retention window: no scheduled prune deletes a row).
    start = (time.time_ns() // 3_600_000_000_000 - 24) * 3_600_000_000_000

    def reset() -> None:
        ns = itertools.count(start, 7_250_000_123)  # crosses minutes and hours
        caller = threading.current_thread()
        monkeypatch.setattr(
            _events, "_time_ns", lambda: next(ns) if threading.current_thread() is caller else 1
        )

    return reset


def workload(logger: TelemetryLogger, n: int = 3000) -> list[tuple[str, str]]:
    """Every kind of inference record, with batches the row path takes and batches the vocabulary
    must type (non-ASCII text), secrets to scrub, a failure, unknown and zero token counts, and
    some calls inside a span (their rows keep its ids: returned, hex, in order). Values are dyadic:
    rollup sums are exact in any batching."""
    tracer = TracerProvider().get_tracer("test")
    spans: list[tuple[str, str]] = []
    for i in range(n):
        model = "gemma2:27b" if i % 3 else "llama3.2:3b"
        if 1000 <= i < 1005:
            model = "mödel-ü"  # non-ASCII: typed by the vocabulary, the record path for its batch
        if i % 97 == 0:
            model = "m token=abc"  # scrubbed, both ways
        tokens: int | None = 2 ** (i % 8) if i % 13 else (None if i % 2 else 0)
        seconds = (1 + i % 40) / 8
        kwargs: dict[str, Any] = {}
        if i % 17 == 0:
            kwargs["error_type"] = "timeout"
        if i % 5 == 0:
            kwargs["time_to_first_token"] = seconds / 2
        if 2000 <= i < 2010:
            with tracer.start_as_current_span("request") as span:
                assert logger.record_thought(model, seconds, tokens, i % 64, **kwargs)
            context = span.get_span_context()
            spans.append((f"{context.trace_id:032x}", f"{context.span_id:016x}"))
        else:
            assert logger.record_thought(model, seconds, tokens, i % 64, **kwargs)
        if i % 50 == 0:
            assert logger.record_vram_check(f"gpu{i % 2}", 1024.5, used_mb=512.25, total_mb=2048.0)
        if i % 200 == 0:
            assert logger.record_load(model, (1 + i % 16) / 8)
    return spans


def _record(
    reset: Callable[[], None], data_dir: Path, dsn: str | None, *, other: bool
) -> tuple[otel_tele.Pipeline, Seen | None, list[tuple[str, str]]]:
    reset()
    telemetry = otel_tele.setup(
        local=True,
        sinks=["postgres"],
        postgres_dsn=dsn,
        data_dir=data_dir,
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="none",
    )
    seen = None
    if other:
        seen = Seen()
        telemetry.logger_provider.add_log_record_processor(seen)
    spans = workload(TelemetryLogger(telemetry))
    assert telemetry.force_flush(60_000)
    return telemetry, seen, spans


def _tables(data_dir: Path, dsn: str | None) -> dict[str, list[tuple[Any, ...]]]:
    order = "ORDER BY bucket, event_type, component"
    queries = {"rows": f"SELECT {COLUMNS} FROM system_telemetry ORDER BY id"} | {
        rollup.table: f"SELECT * FROM {rollup.table} {order}" for rollup in ROLLUPS
    }
    if dsn is None:
        with sqlite3.connect(data_dir / "inference.db") as conn:
            return {name: conn.execute(query).fetchall() for name, query in queries.items()}
    with psycopg.connect(dsn) as conn:
        return {name: conn.execute(query).fetchall() for name, query in queries.items()}


@pytest.mark.parametrize("backend", ["embedded", "postgresql"])
def test_the_row_path_writes_what_the_record_path_writes(
    backend: str, clocks: Callable[[], None], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with contextlib_both(backend, request) as (dsn_rows, dsn_records):
        direct, _, direct_spans = _record(clocks, tmp_path / "rows", dsn_rows, other=False)
        generic, seen, generic_spans = _record(clocks, tmp_path / "records", dsn_records, other=True)
        try:
            assert direct.events.route is not None and direct.events.route._feed is not None  # row path ran
            assert generic.events.route is not None and generic.events.route._feed is None  # it did not
            assert seen is not None and len(seen.records) == 3000 + 60 + 15
            assert books(direct) == books(generic)
            assert books(direct)["postgres/logs"][:4] == (3075, 3075, 0, 0)
        finally:
            direct.shutdown(10_000)
            generic.shutdown(10_000)
        ours = _tables(tmp_path / "rows", dsn_rows)
        theirs = _tables(tmp_path / "records", dsn_records)
    # Each run made its own spans: their ids are the rows' (in order); the rest is equal value for value.
    assert [row[6:] for row in ours["rows"] if row[6] is not None] == direct_spans
    assert [row[6:] for row in theirs["rows"] if row[6] is not None] == generic_spans
    assert len(direct_spans) == 10
    assert _untraced(ours) == _untraced(theirs)
    rows = ours["rows"]
    assert len(rows) == 3075 and all(ours[rollup.table] for rollup in ROLLUPS)
    assert not any("abc" in str(row[1]) + str(row[3]) for row in rows)  # scrubbed
    assert any(row[1] == "mödel-ü" for row in rows)
    metas = [row[3] for row in rows if row[0] == "THOUGHT_LATENCY"]
    thoughts = [meta if isinstance(meta, dict) else json.loads(meta) for meta in metas]  # jsonb: parsed
    assert len(thoughts) == 3000 and all("inference_time_ms" in meta for meta in thoughts)  # encoded once


@contextmanager
def contextlib_both(backend: str, request: pytest.FixtureRequest) -> Iterator[tuple[str | None, str | None]]:
    """Two empty stores of ``backend``: two databases on the test server, or two embedded files."""
    if backend == "embedded":
        yield None, None
        return
    admin = request.getfixturevalue("pg_admin_dsn")
    with fresh_database(admin) as first, fresh_database(admin) as second:
        yield first, second


def _untraced(tables: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return tables | {"rows": [(*row[:6], row[6] is not None, row[7] is not None) for row in tables["rows"]]}
