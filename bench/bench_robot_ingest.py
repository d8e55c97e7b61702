"""End-to-end rows/s into telemetry.db through OTel vs raw ``executemany`` into the same schema.

Every row carries a realistic payload: a data dict (stored as JSON) and a correlation id.
Ours: ``TelemetryCollector.log_command`` → domain-event thread → OTel log record → batching
processor → SQLite sink (declarative mapping, one transaction per batch) — counted only once
``flush()`` says every row is committed. Raw: tuples built per batch (``json.dumps`` of the data
included), ``executemany`` in 2,048-row transactions (and in 50-row ones, the spec's default batch),
with the spec's indexes and without the secondary ones.

    .venv/bin/python bench/bench_robot_ingest.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from otel_tele.exporters.sqlite import init_db
from otel_tele.exporters.sqlite.schema import INDEXES, INSERTS
from otel_tele.instrumentation.robot import TelemetryCollector

from bench._harness import Report, repeated_throughput, throughput

CHUNK = 100_000


def payload(i: int) -> dict[str, object]:
    """A realistic command payload (the spec's joint command: id, angle, speed)."""
    return {"id": i % 7, "angle": 45.0 + i % 90, "speed": 30}


def cid(i: int) -> str:
    return f"cmd-{i:012d}"


def raw(db: Path, rows: int, *, secondary_indexes: bool, batch: int = 2048) -> int:
    conn = init_db(db)
    if not secondary_indexes:
        for name in INDEXES:
            conn.execute(f"DROP INDEX {name}")
    now = time.time()
    for start in range(0, rows, batch):
        values = [
            (now + i * 1e-4, float(i), i, 1, i % 7, float(i), json.dumps(payload(i)), cid(i), 32)
            for i in range(start, min(rows, start + batch))
        ]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERTS["dds_commands"], values)
        conn.execute("COMMIT")
    conn.close()
    return rows


def ours(db: Path, rows: int, batch_size: int) -> int:
    tc = TelemetryCollector(db_path=db, batch_size=batch_size, flush_interval_s=1.0)
    seq = 0
    while seq < rows:
        for _ in range(min(CHUNK, rows - seq)):
            tc.log_command(seq, 1, seq % 7, float(seq), payload(seq), cid(seq), 32)
            seq += 1
        assert tc.flush(300_000), "flush timed out"
    stats = next(s for s in tc.telemetry.sink_stats() if s.sink == "sqlite" and s.signal == "logs")
    tc.close()
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT count(*) FROM dds_commands").fetchone()[0]
    assert stored == rows and stats.dropped == stats.failed == 0, (stored, stats)
    return int(stored)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    report = Report("robot_ingest", "rows/s into telemetry.db (dds_commands), nothing lost")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = throughput(lambda: raw(root / "raw_noidx.db", args.rows, secondary_indexes=False))
        report.add(
            path="raw executemany, no secondary indexes", rows=args.rows, rows_per_s=base["per_second"]
        )
        indexed = throughput(lambda: raw(root / "raw_idx.db", args.rows, secondary_indexes=True))
        report.add(path="raw executemany, spec indexes", rows=args.rows, rows_per_s=indexed["per_second"])
        small = throughput(lambda: raw(root / "raw_50.db", args.rows, secondary_indexes=True, batch=50))
        report.add(
            path="raw executemany, spec indexes, 50-row transactions",
            rows=args.rows,
            rows_per_s=small["per_second"],
        )
        for batch_size in (50, 2048):
            same = small if batch_size == 50 else indexed  # raw with the same transaction size
            got = repeated_throughput(
                lambda attempt, size=batch_size: ours(root / f"ours_{size}_{attempt}.db", args.rows, size),
                args.repeats,
            )
            report.add(
                path=f"TelemetryCollector via OTel, batch_size={batch_size}",
                rows=args.rows,
                rows_per_s=got["per_second"],
                vs_raw_indexed=got["per_second"] / indexed["per_second"],
                vs_raw_same_transactions=got["per_second"] / same["per_second"],
                vs_raw_no_index=got["per_second"] / base["per_second"],
                runs=got["all_per_second"],
            )
    report.note(
        "ours counts from the first call to the flush that confirms every row committed; "
        "spec default batch_size is 50 (one transaction per 50 rows); ours: median of --repeats runs "
        "(all in 'runs'), raw: one run"
    )
    report.finish()


if __name__ == "__main__":
    main()
