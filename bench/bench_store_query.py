"""Queries on a 10M-span general store (issue 15 §5): one trace by id (target < 50 ms) and the p95
duration by span name over one day (target < 1 s), through the SQL catalog (``open_catalog(...)
.query``, the ``spans`` view), against plain DuckDB ``read_parquet`` of the same files.

The store is built as users get it: ``--rows`` spans (default 10M; 7 UTC day partitions, 10 spans per
trace, 8 services, 1 % errors: :mod:`bench._store_data`) written as the sink flushes them — parts of
``--part-rows`` rows (the sink's ``store_flush_rows``, 50k) — then merged by the store's own
``maintain`` (retention, then compaction, with the sink's defaults: 16 parts at least, 128 MB files),
timed in a fresh process whose peak RSS is reported.

Each of ``--repeats`` fresh processes per reader (catalog and baseline interleaved) opens its reader
(the catalog reads the spans footers then: its open time includes them; plain DuckDB reads them in
its first query), runs the first trace lookup cold (the process's first), then ``ROUNDS`` rounds
of: a trace of each day, an id that is in no file, and the day's p95 by name (``quantile_cont`` and
``approx_quantile``; ``WHERE start_time`` within the UTC day). Per process p50/p99/mean of the wall
time of each query (result fetched as Arrow); reported: min/median/max of the p50s, the median p99
and mean.

.venv/bin/python -m bench.bench_store_query [--rows 10000000] [--repeats 3] [--part-rows 50000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import Report
from bench._store_data import write_spans

ROUNDS = 10
TARGETS_MS = {"trace": 50.0, "p95": 1000.0}
MISSING = "0123456789abcdef0123456789abcdef"

TRACE_SQL = "SELECT * FROM {t} WHERE trace_id = '{trace}'"
P95_SQL = (
    "SELECT name, {fn}(duration_ns, 0.95) AS p95_ns, count(*) AS n FROM {t} "
    "WHERE start_time >= TIMESTAMPTZ '{day} 00:00:00+00' AND start_time < TIMESTAMPTZ '{day} 00:00:00+00' "
    "+ INTERVAL 1 DAY GROUP BY name ORDER BY name"
)

COMPACT = """
import json, resource, sys, time
from pathlib import Path
from otel_tele.exporters.store import maintain
root = Path(sys.argv[1])
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
report = maintain(root, retention_days=30, min_parts=16, target_bytes=128 * 1024 * 1024, datasets=("spans",))
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "report": report, "rss_before_kb": rss0,
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _child(kind: str, data_dir: str, plan_json: str) -> None:
    """One fresh reader process: prints its samples (ms) as JSON."""
    plan = json.loads(plan_json)
    t0 = time.perf_counter()
    if kind == "catalog":
        from otel_tele.sql import open_catalog

        catalog = open_catalog(data_dir)
        table = "spans"

        def run(sql: str) -> int:
            return int(catalog.query(sql).num_rows)

        def explain(sql: str) -> str:
            return "\n".join(str(row[1]) for row in catalog._con.execute("EXPLAIN " + sql).fetchall())
    else:
        import duckdb

        con = duckdb.connect()
        table = f"read_parquet('{data_dir}/store/spans/date=*/*.parquet', hive_partitioning = true)"

        def run(sql: str) -> int:
            return int(con.sql(sql).fetch_arrow_table().num_rows)

        def explain(sql: str) -> str:
            return "\n".join(str(row[1]) for row in con.execute("EXPLAIN " + sql).fetchall())

    opened_ms = (time.perf_counter() - t0) * 1000
    queries = [
        (f"trace {day}", TRACE_SQL.format(t=table, trace=trace)) for day, trace in plan["traces"].items()
    ]
    queries.append(("trace missing", TRACE_SQL.format(t=table, trace=MISSING)))
    for fn in ("quantile_cont", "approx_quantile"):
        queries.append((f"p95 {fn}", P95_SQL.format(t=table, fn=fn, day=plan["day"])))
    samples: dict[str, list[float]] = {}
    rows: dict[str, int] = {}

    def timed(label: str, sql: str) -> float:
        start = time.perf_counter()
        rows[label] = run(sql)
        return (time.perf_counter() - start) * 1000

    first_ms = timed("first", queries[0][1])
    for _ in range(ROUNDS):
        for label, sql in queries:
            samples.setdefault(label, []).append(timed(label, sql))
    plans = {"trace": explain(queries[0][1]), "p95": explain(queries[-1][1])}
    result = {"opened_ms": opened_ms, "first_ms": first_ms, "samples": samples, "rows": rows, "plans": plans}
    print(json.dumps(result))


def _measure(kind: str, data_dir: Path, plan: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_store_query", "--child", kind, str(data_dir), json.dumps(plan)],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _layout(spans: Path, traces: list[str]) -> dict[str, Any]:
    """Files, row groups, and how many row groups each sample trace's lookup reads: those whose
    trace_id statistics admit it, and of those, the ones whose Bloom filter does not rule it out."""
    import duckdb
    import pyarrow.parquet as pq

    files = sorted(spans.glob("date=*/*.parquet"))
    groups = 0
    admitted = dict.fromkeys(traces, 0)
    read = dict.fromkeys(traces, 0)
    sorted_files = 0
    for path in files:
        meta = pq.ParquetFile(path).metadata
        column = meta.schema.to_arrow_schema().get_field_index("trace_id")
        bounds = []
        for index in range(meta.num_row_groups):
            stats = meta.row_group(index).column(column).statistics
            bounds.append((stats.min, stats.max) if stats is not None and stats.has_min_max else None)
        groups += len(bounds)
        for trace in traces:
            inside = {i for i, b in enumerate(bounds) if b is None or b[0] <= trace <= b[1]}
            admitted[trace] += len(inside)
            probed = duckdb.execute(
                "SELECT row_group_id, bloom_filter_excludes FROM parquet_bloom_probe(?, 'trace_id', ?)",
                [str(path), trace],
            ).fetchall()
            excluded = {group for group, excludes in probed if excludes}
            read[trace] += len(inside - excluded)
        known = [b for b in bounds if b is not None]
        ordered = all(a[1] <= b[0] for a, b in itertools.pairwise(known))
        sorted_files += ordered and len(known) == len(bounds)
    return {
        "files": len(files),
        "row_groups": groups,
        "files_sorted_by_trace_id": sorted_files,
        "row_groups_admitted_by_statistics_per_trace": statistics.median(admitted.values()),
        "row_groups_read_per_trace_lookup": statistics.median(read.values()),
        "bytes": sum(p.stat().st_size for p in files),
    }


def _spread(p50s: list[float]) -> dict[str, float]:
    """Min/median/max over the fresh processes of their p50s."""
    return {"p50_min_ms": min(p50s), "p50_median_ms": statistics.median(p50s), "p50_max_ms": max(p50s)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per reader")
    parser.add_argument("--part-rows", type=int, default=50_000, help="rows per flushed part")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return
    report = Report(
        "store_query",
        f"ms per query on {args.rows:,} spans, {ROUNDS} rounds x {args.repeats} fresh processes per reader",
    )
    with tempfile.TemporaryDirectory() as tmp_name:
        data_dir = Path(tmp_name) / "telemetry"
        started = time.perf_counter()
        data = write_spans(data_dir / "store", args.rows, part_rows=args.part_rows, prefix="p")
        built_s = time.perf_counter() - started
        done = subprocess.run(
            [sys.executable, "-c", COMPACT, str(data_dir / "store")],
            capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        compaction = json.loads(done.stdout.strip().splitlines()[-1])
        layout = _layout(data.spans, list(data.by_day.values()))
        days = sorted(data.by_day)
        plan = {"traces": data.by_day, "day": days[len(days) // 2]}
        report.note(
            f"built {args.rows:,} spans as {data.parts} parts in {built_s:.0f} s; compaction (maintain) "
            f"{compaction['seconds']:.1f} s = {args.rows / compaction['seconds']:,.0f} rows/s, peak RSS "
            f"{compaction['peak_rss_kb'] / 1024:.0f} MB (after imports "
            f"{compaction['rss_before_kb'] / 1024:.0f} MB); "
            f"{json.dumps(compaction['report']['spans'])}"
        )
        report.note(f"layout after maintain: {json.dumps(layout)}")
        runs: dict[str, list[dict[str, Any]]] = {"catalog": [], "duckdb": []}
        for _ in range(args.repeats):
            for kind in runs:
                runs[kind].append(_measure(kind, data_dir, plan))
    for kind, results in runs.items():
        reader = "catalog (spans view)" if kind == "catalog" else "duckdb read_parquet"
        report.add(
            reader=reader,
            query="open",
            **_spread([r["opened_ms"] for r in results]),
        )
        report.add(
            reader=reader,
            query="first trace (cold)",
            **_spread([r["first_ms"] for r in results]),
            target_ms=TARGETS_MS["trace"],
            meets=statistics.median(r["first_ms"] for r in results) < TARGETS_MS["trace"],
        )
        days = [k for k in results[0]["samples"] if k.startswith("trace 2")]
        groups = {
            f"trace (a trace of each of the {len(days)} days)": days,
            "trace (id in no file)": ["trace missing"],
            "p95 by name, one day (quantile_cont)": ["p95 quantile_cont"],
            "p95 by name, one day (approx_quantile)": ["p95 approx_quantile"],
        }
        for query, labels in groups.items():
            per_process = []
            for r in results:
                samples = sorted(s for label in labels for s in r["samples"][label])
                per_process.append(
                    {
                        "p50": statistics.median(samples),
                        "p99": samples[min(len(samples) - 1, int(0.99 * len(samples)))],
                        "mean": statistics.fmean(samples),
                    }
                )
            target = TARGETS_MS["trace" if query.startswith("trace") else "p95"]
            p99 = statistics.median(p["p99"] for p in per_process)
            report.add(
                reader=reader,
                query=query,
                **_spread([p["p50"] for p in per_process]),
                p99_median_ms=p99,
                mean_median_ms=statistics.median(p["mean"] for p in per_process),
                target_ms=target,
                meets=p99 < target,
            )
        rows = results[0]["rows"]
        report.note(f"{reader}: rows returned {json.dumps(rows)}")
        for what, plan_text in results[0]["plans"].items():
            filters = " ".join(plan_text.replace("│", " ").split())
            found = filters.partition("Filters:")[2].partition("~")[0].strip()
            report.note(f"{reader}: {what} query, filters in the Parquet scan (EXPLAIN): {found or 'none'}")
    report.finish()


if __name__ == "__main__":
    main()
