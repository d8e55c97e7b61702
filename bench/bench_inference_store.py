"""Model-serving telemetry at scale (spec 002 targets at 100x volume): PostgreSQL with N rows over 60 days.

Measures, in one run against a fresh database:

- ingest rows/s through the sink (``PostgresSink.write_logs``: record mapping, sanitizing, COPY and
  rollup upserts in one transaction per batch) against a raw ``COPY`` of the same rows into a bare
  copy of the table (ratio);
- the spec's query targets at N rows: 24-hour aggregation (< 50 ms), 60-day statistics (< 200 ms),
  footprint (< 100 ms);
- the log operation on the caller (``log_thought_latency``: < 5 ms p99) against the obvious
  alternative, an INSERT + commit per call.

Usage::

    python -m bench.bench_inference_store                 # 10M rows (a few minutes)
    python -m bench.bench_inference_store --rows 200000   # quick

The server is a private one started for the run (``initdb`` + ``pg_ctl`` in a temp dir), or the one
``OTEL_TELE_TEST_PG_DSN`` names.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import secrets
import statistics
import time
import types
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
from opentelemetry._logs import LogRecord
from otel_tele.exporters.postgres import PostgresSink
from otel_tele.exporters.postgres.schema import InferenceConfig
from otel_tele.instrumentation.inference import TelemetryLogger
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import otel_tele
from otel_tele.inference_stats import InferenceStats
from otel_tele.semconv import inference as inf
from tests._pg_server import PgServer

from ._harness import Report, per_call_ns

MODELS = (
    ("llama3.2:3b", 9.0),
    ("gemma2:9b", 18.0),
    ("qwen2.5:14b", 27.0),
    ("mistral:7b", 14.0),
    ("gemma2:27b", 45.0),
    ("llama3.1:70b", 95.0),
)
SPAN_S = 60 * 86_400


def synthetic_rows(n: int, now: float, seed: int = 7) -> Iterator[tuple[str, dict[str, Any], int]]:
    """(event name, attributes, timestamp ns) in time order over the last 60 days: 90 % inferences,
    5 % loads, 5 % VRAM checks."""
    rng = random.Random(seed)
    start = now - SPAN_S + 60
    step = (SPAN_S - 120) / n
    for i in range(n):
        ts = start + i * step
        model, ms_per_token = MODELS[i % len(MODELS)]
        kind = i % 20
        if kind == 0:
            seconds = rng.uniform(1, 30)
            yield (
                inf.LOAD_LATENCY,
                {
                    inf.EVENT_TYPE: "LOAD_LATENCY",
                    inf.COMPONENT: model,
                    inf.VALUE: seconds,
                    inf.STATUS: "ok",
                    inf.METADATA: f'{{"model":"{model}","load_time_ms":{seconds * 1000:.3f}}}',
                },
                int(ts * 1e9),
            )
        elif kind == 1:
            free = rng.uniform(500, 20_000)
            yield (
                inf.VRAM_CHECK,
                {
                    inf.EVENT_TYPE: "VRAM_CHECK",
                    inf.COMPONENT: "gpu0",
                    inf.VALUE: free,
                    inf.METADATA: f'{{"used":{24000 - free:.1f},"total":24000,'
                    f'"percentage":{(24000 - free) / 240:.2f}}}',
                },
                int(ts * 1e9),
            )
        else:
            tokens, prompt = rng.randint(1, 800), rng.randint(0, 2000)
            ms = tokens * ms_per_token * rng.uniform(0.8, 1.25)
            score = ms / tokens
            yield (
                inf.THOUGHT_LATENCY,
                {
                    inf.EVENT_TYPE: "THOUGHT_LATENCY",
                    inf.COMPONENT: model,
                    inf.VALUE: score,
                    inf.STATUS: "ok",
                    inf.METADATA: f'{{"model":"{model}","inference_time_ms":{ms:.3f},'
                    f'"tokens_generated":{tokens},"prompt_tokens":{prompt},"total_tokens":{tokens + prompt},'
                    f'"latency_per_token_ms":{score:.6f}}}',
                },
                int(ts * 1e9),
            )


def as_records(events: list[tuple[str, dict[str, Any], int]]) -> list[Any]:
    """What the sink receives from the pipeline: objects with ``.log_record``."""
    return [
        types.SimpleNamespace(
            log_record=LogRecord(timestamp=ts, observed_timestamp=ts, event_name=name, attributes=attrs)
        )
        for name, attrs, ts in events
    ]


def timed(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {
        "p50_ms": statistics.median(samples),
        "p99_ms": samples[min(len(samples) - 1, int(0.99 * len(samples)))],
        "max_ms": samples[-1],
    }


def ingest(sink: PostgresSink, rows: int, batch: int, now: float) -> float:
    generator = synthetic_rows(rows, now)
    t0 = time.perf_counter()
    written = 0
    while written < rows:
        chunk = [next(generator) for _ in range(min(batch, rows - written))]
        result = sink.write_logs(as_records(chunk))
        assert not (result.failed or result.not_routed)
        written += len(chunk)
        if written % (batch * 20) == 0:
            print(
                f"  ingested {written:,} rows ({written / (time.perf_counter() - t0):,.0f} rows/s)",
                flush=True,
            )
    return time.perf_counter() - t0


def raw_copy(dsn: str, rows: int, now: float) -> float:
    """COPY the same rows (already as column values) into a bare copy of system_telemetry."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw_copy (LIKE system_telemetry INCLUDING ALL)")
        values = [
            (
                a[inf.EVENT_TYPE],
                a.get(inf.COMPONENT),
                a.get(inf.VALUE),
                a[inf.METADATA],
                a.get(inf.STATUS),
                datetime.fromtimestamp(ts / 1e9, UTC),
            )
            for _, a, ts in synthetic_rows(rows, now)
        ]
        t0 = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(
                "COPY raw_copy (event_type, component, value, metadata, status, timestamp) FROM STDIN"
            ) as copy,
        ):
            for row in values:
                copy.write_row(row)
        seconds = time.perf_counter() - t0
        conn.execute("DROP TABLE raw_copy")
    return seconds


def log_latency(dsn: str, report: Report) -> None:
    """Caller-side cost of log_thought_latency vs an INSERT + commit per call."""
    telemetry = otel_tele.setup(
        local=True,
        sinks=["postgres"],
        postgres_dsn=dsn,
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="none",
    )
    logger = TelemetryLogger(telemetry)

    def log(i: int) -> None:
        coro = logger.log_thought_latency("gemma2:27b", 0.5 + (i % 7) / 10, 100 + i % 50, 20)
        with contextlib.suppress(StopIteration):  # it never awaits: drive it without an event loop
            coro.send(None)

    ours = per_call_ns(log, 20_000)
    assert telemetry.force_flush(60_000)
    telemetry.shutdown(30_000)
    with psycopg.connect(dsn, autocommit=True) as conn:

        def insert(i: int) -> None:
            conn.execute(
                "INSERT INTO system_telemetry (event_type, component, value, metadata) "
                "VALUES ('THOUGHT_LATENCY', 'gemma2:27b', %s, '{}')",
                (i / 100,),
            )

        direct = per_call_ns(insert, 1_000, warmup=50)
    for name, figures in (("log_thought_latency (event queued)", ours), ("INSERT + commit per call", direct)):
        report.add(
            what=f"log op: {name}",
            p50_ms=figures["p50_ns"] / 1e6,
            p99_ms=figures["p99_ns"] / 1e6,
            target="< 5 ms p99",
        )
    report.note(f"log op p99 ratio (INSERT per call / ours): {direct['p99_ns'] / ours['p99_ns']:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="raw rows over 60 days (default 10M)")
    parser.add_argument("--batch", type=int, default=20_000, help="rows per sink batch (one transaction)")
    parser.add_argument("--copy-rows", type=int, default=1_000_000, help="rows for the raw COPY comparison")
    args = parser.parse_args()
    with admin_dsn() as admin_conninfo:
        name = f"otel_tele_bench_{secrets.token_hex(4)}"
        with psycopg.connect(admin_conninfo, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        dsn = make_conninfo(**{**conninfo_to_dict(admin_conninfo), "dbname": name})
        report = Report("inference_store", f"PostgreSQL inference store with {args.rows:,} rows over 60 days")
        try:
            run(dsn, args, report)
        finally:
            with psycopg.connect(admin_conninfo, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        report.finish()


@contextlib.contextmanager
def admin_dsn() -> Iterator[str]:
    """The server named by OTEL_TELE_TEST_PG_DSN, or a private one started for this run."""
    if os.environ.get("OTEL_TELE_TEST_PG_DSN"):
        yield os.environ["OTEL_TELE_TEST_PG_DSN"]
        return
    with PgServer.started() as server:
        yield server.admin_dsn


def run(dsn: str, args: argparse.Namespace, report: Report) -> None:
    now = time.time()
    config = InferenceConfig(inference_prune_interval_s=10**9)
    sink = PostgresSink(dsn=dsn, config=config)
    seconds = ingest(sink, args.rows, args.batch, now)
    sink_rate = args.rows / seconds
    report.add(
        what="ingest through the sink (COPY + rollups, per batch tx)",
        rows=args.rows,
        seconds=seconds,
        rows_per_s=sink_rate,
    )
    copy_rows = min(args.copy_rows, args.rows)
    copy_rate = copy_rows / raw_copy(dsn, copy_rows, now)
    report.add(
        what="raw COPY of the same rows (no rollups, no mapping)", rows=copy_rows, rows_per_s=copy_rate
    )
    report.note(f"ingest ratio sink / raw COPY: {sink_rate / copy_rate:.2f}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    stats = InferenceStats(sink.store, config=config)
    footprint = stats.footprint()
    assert footprint["row_count"] == args.rows, footprint["row_count"]
    for what, fn, target, repeat in (
        ("24-hour aggregation (get_aggregated_efficiency)", stats.aggregated_efficiency, "< 50 ms", 30),
        ("24-hour aggregation, one model", lambda: stats.aggregated_efficiency("gemma2:27b"), "< 50 ms", 30),
        ("60-day statistics (get_60day_statistics)", stats.statistics_60day, "< 200 ms", 15),
        ("footprint (get_telemetry_footprint)", stats.footprint, "< 100 ms", 30),
    ):
        report.add(what=what, rows=args.rows, target=target, **timed(fn, repeat))
    size = footprint["table_sizes"][0]["size_bytes"]
    report.note(
        f"system_telemetry: {args.rows:,} rows, {size / 1e6:,.0f} MB; "
        f"best model over 60 days: {stats.statistics_60day()['model_trends'][0]['model']}"
    )
    sink.close()
    log_latency(dsn, report)


if __name__ == "__main__":
    main()
