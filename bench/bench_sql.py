"""What one ``otel-tele sql`` query costs, against the obvious alternative reading the same store.

Two stores of ``--rows`` rows each: ``telemetry.db`` (``dds_feedback``, written with plain SQL) and
the general store's ``spans`` (Parquet parts written by the store's own schema). Each query runs in a
fresh process, interleaved with its baseline, ``--repeats`` times:

- catalog: ``open_catalog(data_dir).query(sql)`` — the SQLite view is read whole into Arrow by Python
  (no DuckDB sqlite_scanner: see README), the Parquet view by DuckDB;
- baseline: the same aggregate with ``sqlite3`` on the file, or DuckDB ``read_parquet`` on the files.

Reported: wall time of open + query inside the process (ms), p50/p99/mean and min/median/max.

.venv/bin/python bench/bench_sql.py [--rows 200000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa
import pyarrow.parquet as pq
from otel_tele.exporters.sqlite import init_db
from otel_tele.exporters.store import schema as store_schema

from bench._harness import Report, percentiles_ns

SQLITE_QUERY = "SELECT funcode, count(*) AS n, avg(angle0) AS a FROM {t} GROUP BY funcode ORDER BY funcode"
PARQUET_QUERY = "SELECT name, count(*) AS n, avg(duration_ns) AS d FROM {t} GROUP BY name ORDER BY name"

CHILD = """
import json, sys, time
t0 = time.perf_counter()
kind, data_dir, sqlite_query, parquet_query = sys.argv[1:5]
if kind == "catalog-sqlite":
    from otel_tele.sql import open_catalog
    with open_catalog(data_dir) as c:
        t1 = time.perf_counter()
        rows = c.query(sqlite_query.format(t="robot_dds_feedback")).num_rows
elif kind == "sqlite3":
    import sqlite3
    conn = sqlite3.connect(f"file:{data_dir}/telemetry.db?mode=ro", uri=True)
    t1 = time.perf_counter()
    rows = len(conn.execute(sqlite_query.format(t="dds_feedback")).fetchall())
elif kind == "catalog-parquet":
    from otel_tele.sql import open_catalog
    with open_catalog(data_dir) as c:
        t1 = time.perf_counter()
        rows = c.query(parquet_query.format(t="spans")).num_rows
else:
    import duckdb
    con = duckdb.connect()
    t1 = time.perf_counter()
    source = f"read_parquet('{data_dir}/store/spans/date=*/*.parquet', hive_partitioning = true)"
    rows = len(con.sql(parquet_query.format(t=source)).fetchall())
t2 = time.perf_counter()
print(json.dumps({"ns": int((t2 - t0) * 1e9), "query_ns": int((t2 - t1) * 1e9), "rows": rows}))
"""


def build(data_dir: Path, rows: int) -> None:
    rng = random.Random(1)
    conn = init_db(data_dir / "telemetry.db")
    now = time.time()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO dds_feedback (ts, ts_mono, seq, funcode, angle0, angle1) VALUES (?,?,?,?,?,?)",
        (
            (now + i / 200, i / 200, i, 1 if i % 50 else 3, rng.uniform(-90, 90), rng.uniform(-90, 90))
            for i in range(rows)
        ),
    )
    conn.execute("COMMIT")
    conn.close()
    folder = data_dir / "store" / "spans" / "date=2026-12-01"
    folder.mkdir(parents=True)
    names = [f"GET /api/item/{k}" for k in range(20)]
    start = pa.array([1_700_000_000_000_000_000 + i * 1000 for i in range(rows)], store_schema.TS)
    duration = pa.array([rng.randrange(1_000, 5_000_000) for _ in range(rows)], pa.int64())
    columns = {f.name: pa.nulls(rows, f.type) for f in store_schema.COLUMNS["spans"]}
    columns |= {
        "start_time": start,
        "end_time": start,
        "duration_ns": duration,
        "name": pa.array([names[i % 20] for i in range(rows)]),
        "trace_id": pa.array([f"{i:032x}" for i in range(rows)]),
    }
    table = pa.table(columns, schema=store_schema.SCHEMAS["spans"])
    pq.write_table(table, folder / "c-0-0-0.parquet", **store_schema.WRITE_OPTIONS)


def run_child(kind: str, data_dir: Path) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(data_dir), SQLITE_QUERY, PARQUET_QUERY],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, int] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    report = Report(
        "sql", f"one otel-tele sql query vs the store read directly, {args.rows:,} rows per store"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        build(data_dir, args.rows)
        pairs = (("catalog-sqlite", "sqlite3"), ("catalog-parquet", "duckdb-parquet"))
        samples: dict[str, list[int]] = {kind: [] for pair in pairs for kind in pair}
        query_only: dict[str, list[int]] = {kind: [] for pair in pairs for kind in pair}
        answers: dict[str, int] = {}
        for _ in range(args.repeats):
            for pair in pairs:
                for kind in pair:  # interleaved: ours, then its baseline, each in a fresh process
                    got = run_child(kind, data_dir)
                    samples[kind].append(got["ns"])
                    query_only[kind].append(got["query_ns"])
                    answers[kind] = got["rows"]
        for ours, base in pairs:
            assert answers[ours] == answers[base], (ours, answers)
            for kind in (ours, base):
                stats = percentiles_ns(samples[kind])
                ms = [s / 1e6 for s in samples[kind]]
                report.add(
                    path=kind,
                    p50_ms=stats["p50_ns"] / 1e6,
                    p99_ms=stats["p99_ns"] / 1e6,
                    mean_ms=stats["mean_ns"] / 1e6,
                    min_ms=min(ms),
                    median_ms=statistics.median(ms),
                    max_ms=max(ms),
                    vs_baseline=statistics.median(samples[kind]) / statistics.median(samples[base]),
                    query_p50_ms=statistics.median(query_only[kind]) / 1e6,
                    query_vs_baseline=statistics.median(query_only[kind])
                    / statistics.median(query_only[base]),
                )
    report.note("p50..max: wall time inside a fresh process: imports + open + query + fetch (ms)")
    report.note("query_p50_ms: the query and fetch alone, after the catalog (or connection) is open")
    report.note(f"queries: {SQLITE_QUERY.format(t='<dds_feedback>')}; {PARQUET_QUERY.format(t='<spans>')}")
    report.note(f"{args.repeats} repeats, interleaved; p99 of {args.repeats} samples is their max")
    report.finish()


if __name__ == "__main__":
    main()
