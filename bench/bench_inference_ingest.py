"""End-to-end rows/s into PostgreSQL's ``system_telemetry`` through OTel vs the spec's simple design.

Every row is one inference as spec 002 logs it (``log_thought_latency``: model, seconds, tokens
generated, prompt tokens → value = ms per token, metadata JSON with the five token-aware figures).

- ours: ``TelemetryLogger.record_thought`` (the synchronous form of ``log_thought_latency``) on a
  pipeline with the PostgreSQL sink: the call checks its arguments, records the GenAI histograms
  and makes the GenAI span when something receives them, and queues the domain event; the sink
  writes rows, rollups and its batch ledger in one transaction per batch. Counted until
  ``force_flush`` says every row is committed (0 dropped, 0 failed asserted, every row counted in
  the table). With only the PostgreSQL sink nothing receives spans or metric points, so none are
  built; with the general store beside it (every signal stored) they are built and stored.
- simple: the caller builds the row (``json.dumps`` of the metadata) and puts it on a
  ``queue.Queue``; one writer thread ``COPY``-s up to 2,048 rows per transaction into a table made
  ``LIKE system_telemetry INCLUDING ALL`` (same columns, defaults and indexes; no rollups).

Each case in a fresh database on a private server (``initdb`` + ``pg_ctl``) and a fresh process,
``--repeats`` times, interleaved; rows/s min/median/max, the ratio to the simple design in the same
repeat, and CPU seconds per 1M rows of this process (every thread; the server's own CPU is not
counted for either).

    .venv/bin/python -m bench.bench_inference_ingest [--rows 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from otel_tele.exporters.postgres import PostgresSink
from otel_tele.instrumentation.inference import TelemetryLogger
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import otel_tele

from ._harness import Report, in_fresh_process, queue_writer, versus_simple
from .bench_inference_store import admin_dsn

MODEL = "gemma2:27b"
BATCH = 2_048


def inference(i: int) -> tuple[float, int, int]:
    """(seconds, tokens generated, prompt tokens) of the ``i``-th call: varied, never zero tokens."""
    return 0.5 + (i % 7) / 10, 100 + i % 50, 20 + i % 30


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def fresh_database(admin: str) -> Iterator[str]:
    name = f"otel_tele_ingest_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(**{**conninfo_to_dict(admin), "dbname": name})
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def ours(dsn: str, rows: int, *, sinks: list[str]) -> tuple[float, float]:
    data = tempfile.mkdtemp(prefix="otel-tele-bench-")
    telemetry = otel_tele.setup(
        local=True,
        sinks=sinks,
        postgres_dsn=dsn,
        data_dir=data,
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="none",
    )
    logger = TelemetryLogger(telemetry)
    logger.record_thought("warm-up", 0.5, 10, 2)  # the schema, the pool, the first-use imports
    assert telemetry.force_flush(60_000)
    record = logger.record_thought
    cpu0, t0 = _cpu_s(), time.perf_counter()
    for i in range(rows):
        seconds, tokens, prompt = inference(i)
        record(MODEL, seconds, tokens, prompt)
    assert telemetry.force_flush(600_000), "flush timed out"
    wall, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    stats = next(s for s in telemetry.sink_stats() if s.sink == "postgres" and s.signal == "logs")
    telemetry.shutdown(60_000)
    shutil.rmtree(data, ignore_errors=True)
    stored = _count(dsn, "system_telemetry") - 1
    assert stored == rows and stats.dropped == stats.failed == 0, (stored, stats)
    return wall, cpu


def simple(dsn: str, rows: int) -> tuple[float, float]:
    sink = PostgresSink(dsn=dsn)  # the schema only: the simple design writes into a copy of its table
    sink.store.migrate()
    sink.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE simple_copy (LIKE system_telemetry INCLUDING ALL)")
    conn = psycopg.connect(dsn)

    def write_batch(batch: list[tuple[Any, ...]]) -> None:
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy("COPY simple_copy (event_type, component, value, metadata, status) FROM STDIN") as copy,
        ):
            for row in batch:
                copy.write_row(row)

    cpu0, t0 = _cpu_s(), time.perf_counter()
    put, close = queue_writer(write_batch, BATCH)
    dumps = json.dumps
    for i in range(rows):
        seconds, tokens, prompt = inference(i)
        ms = seconds * 1000
        metadata = {
            "model": MODEL,
            "inference_time_ms": ms,
            "tokens_generated": tokens,
            "prompt_tokens": prompt,
            "total_tokens": tokens + prompt,
            "latency_per_token_ms": ms / tokens,
        }
        put(("THOUGHT_LATENCY", MODEL, ms / tokens, dumps(metadata), "ok"))
    close()
    conn.close()
    wall, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    stored = _count(dsn, "simple_copy")
    assert stored == rows, (stored, rows)
    return wall, cpu


SIMPLE = f"simple design: queue.Queue + writer thread + COPY, {BATCH} rows per transaction"
CASES: dict[str, Callable[[str, int], tuple[float, float]]] = {
    SIMPLE: simple,
    "record_thought via OTel -> PostgreSQL sink (nothing takes spans or metric points: none built)": (
        lambda dsn, rows: ours(dsn, rows, sinks=["postgres"])
    ),
    "record_thought via OTel -> PostgreSQL sink + general store (GenAI span and 5 points stored too)": (
        lambda dsn, rows: ours(dsn, rows, sinks=["postgres", "store"])
    ),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000, help="inferences per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case, interleaved")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # CASES' index: one run, as JSON
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(list(CASES.values())[args.child](args.dsn, args.rows)))
        return
    report = Report("inference_ingest", "inferences/s into system_telemetry end to end, nothing lost")
    taken: dict[str, list[tuple[float, float]]] = {case: [] for case in CASES}
    with admin_dsn() as admin:
        for _ in range(args.repeats):  # interleaved: the machine's drift falls on every case alike
            for index, case in enumerate(CASES):
                with fresh_database(admin) as dsn:  # each run in a fresh process, on a fresh database
                    argv = ["--child", str(index), "--dsn", dsn, "--rows", str(args.rows)]
                    wall, cpu = in_fresh_process("bench.bench_inference_ingest", argv)
                    taken[case].append((wall, cpu))
    for case, runs in taken.items():
        report.add(path=case, **versus_simple(args.rows, runs, None if case == SIMPLE else taken[SIMPLE]))
    report.note(
        "payload per row: event_type THOUGHT_LATENCY, component (model), value = ms per token, status "
        "ok, metadata {model, inference_time_ms, tokens_generated, prompt_tokens, total_tokens, "
        "latency_per_token_ms}; ours also writes the minute/hour rollups and the batch ledger in the "
        "same transaction, and with the general store five GenAI histogram points and a GenAI span per call; "
        "ratio = our rows/s / the simple design's in the same repeat (min/median/max); cpu_x_simple = "
        "our CPU-s / the simple design's (this process, every thread; the server's CPU not counted); "
        "every run in a fresh process"
    )
    report.finish()


if __name__ == "__main__":
    main()
