"""Capsule throughput and scale: end-to-end rows/s, append cost vs flow size, DuckDB over 10M rows.

End to end, against the spec's own simple writer in the same run (a list of dicts, then
``pa.Table.from_pylist`` and one ``pq.write_table``): rows/s min/median/max over interleaved repeats,
each run in a fresh process, the ratio to the simple design, and CPU seconds per 1M rows of the whole
process (every thread).

python -m bench.bench_fda_capsule [--rows 10000000] [--e2e-rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from otel_tele.exporters.capsule import _flow as flows
from otel_tele.exporters.capsule import schema
from otel_tele.instrumentation import fda

import otel_tele
from otel_tele.runs import Runs

from ._harness import Report, in_fresh_process, versus_simple
from .bench_fda_recorder import CORE


def pipeline(data_dir: Path, **options: Any) -> otel_tele.Pipeline:
    return otel_tele.setup(
        local=True,
        sinks=["capsule"],
        data_dir=data_dir,
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="none",
        **options,
    )


#: The journal's bound on what a kill -9 loses (defaults: 65,536 rows / 1 s), and the same run with
#: the journal out of the way (flushes never due: rows durable only when the capsule is published).
JOURNAL_CASES = {
    "recorder -> OTel logs -> capsule (production run)": {},
    "  same, journal never due (no kill -9 bound)": {
        "capsule_flush_rows": 10**12,
        "capsule_flush_seconds": 1e9,
    },
}


def synthetic(rows: int, run_id: str, mode: str = "production") -> pa.Table:
    """A telemetry table of ``rows`` rows in the capsule schema."""
    rng = np.random.default_rng(0)
    cols: dict[str, pa.Array] = {}
    for field in schema.SCHEMAS["telemetry"]:
        if field.name == "run_id":
            cols[field.name] = pa.array([run_id] * rows)
        elif field.name in ("flow_name", "mode", "phase"):
            value = {"flow_name": "bench", "mode": mode, "phase": "GREEN"}[field.name]
            cols[field.name] = pa.array([value] * rows)
        elif field.name == "iter":
            cols[field.name] = pa.array(np.arange(rows, dtype=np.int64))
        elif field.name == "ts":
            cols[field.name] = pa.array(np.full(rows, int(time.time() * 1e6)), pa.int64()).cast(
                schema.TS_TYPE
            )
        elif pa.types.is_floating(field.type):
            cols[field.name] = pa.array(rng.random(rows))
        else:
            cols[field.name] = pa.nulls(rows, field.type)
    return pa.Table.from_pydict(cols, schema=schema.SCHEMAS["telemetry"])


def _cpu_s() -> float:
    """CPU seconds of this whole process, every thread included (the telemetry and sink threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


SIMPLE = "simple design: list of dicts -> pa.Table.from_pylist -> pq.write_table at the end"


def simple_design(rows: int, data_dir: Path) -> int:
    """The spec's own simple writer: one dict per iteration appended to a list on the caller, one
    ``from_pylist`` + ``write_table`` (zstd) when the run ends. Same payload as the recorder's rows."""
    out: list[dict[str, object]] = []
    append = out.append
    start = time.perf_counter_ns()
    for i in range(rows):
        append(
            {
                "run_id": "fda_run_x",
                "flow_name": "bench",
                "mode": "production",
                "iter": i,
                "t_wall_ms": (time.perf_counter_ns() - start) / 1e6,
                **CORE,
            }
        )
    pq.write_table(pa.Table.from_pylist(out), data_dir / "telemetry.parquet", compression="zstd")
    return pq.read_metadata(data_dir / "telemetry.parquet").num_rows


def run_case(case: str, rows: int) -> tuple[float, float, int]:
    """One end-to-end run of ``case`` (this process: the parent starts a fresh one per run): wall
    time from the first iteration until the capsule is published, the CPU seconds of the whole
    process over the same span, and the rows dropped; every run must store every row (production
    runs are lossless: policy wait)."""
    with tempfile.TemporaryDirectory() as tmp:
        if case == SIMPLE:
            cpu0, t0 = _cpu_s(), time.perf_counter()
            written = simple_design(rows, Path(tmp))
            seconds, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
            assert written == rows, (written, rows)
            return seconds, cpu, 0
        telemetry = pipeline(Path(tmp), **JOURNAL_CASES[case])
        cpu0, t0 = _cpu_s(), time.perf_counter()
        # leaving the block waits for the capsule
        with fda.run("bench", telemetry=telemetry, units={}, method={}) as run:
            it = run.iteration
            for i in range(rows):
                it(iter=i, **CORE)
        seconds, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
        stats = {s.sink: s for s in telemetry.sink_stats()}
        dropped = stats["capsule"].dropped + stats["events"].dropped
        telemetry.shutdown(60_000)
        capsule = next(Path(tmp).glob("**/runs/fda_run_*/telemetry.parquet"))
        written = pq.ParquetFile(capsule).metadata.num_rows
        assert written == rows, (written, rows)
    return seconds, cpu, dropped


def end_to_end(report: Report, rows: int, repeats: int) -> None:
    """Each case ``repeats`` times, interleaved (the machine's drift falls on all alike), each run in
    a fresh process (:func:`run_case`)."""
    dropped = {case: 0 for case in JOURNAL_CASES}

    def record(case: str) -> tuple[float, float]:
        seconds, cpu, lost = in_fresh_process(
            "bench.bench_fda_capsule", ["--child", case, "--e2e-rows", str(rows)]
        )
        if case != SIMPLE:
            dropped[case] += lost
        return seconds, cpu

    cases = [SIMPLE, *JOURNAL_CASES]
    taken: dict[str, list[tuple[float, float]]] = {case: [] for case in cases}
    for _ in range(repeats):
        for case in cases:
            taken[case].append(record(case))
    for case in cases:
        row = versus_simple(rows, taken[case], None if case == SIMPLE else taken[SIMPLE])
        if case != SIMPLE:
            row["dropped"] = dropped[case]
        report.add(case=case, **row)
    report.note(
        f"payload per row: run_id, flow_name, mode, iter, t_wall_ms and the 8 core fields {sorted(CORE)}; "
        "ratio = our rows/s / the simple design's in the same repeat (min/median/max over the repeats); "
        "cpu_x_simple = our CPU-s / the simple design's (process CPU incl. every thread); every run "
        "in a fresh process"
    )


def append_cost(report: Report, big_rows: int) -> None:
    for existing in (1_000, big_rows):
        with tempfile.TemporaryDirectory() as tmp:
            flow_dir = Path(tmp) / "telematry_cfs" / "flows" / "bench"
            flow_dir.mkdir(parents=True)
            file = flows.FlowFile(flow_dir, "dev", "telemetry")
            gen = file._ensure()
            with pq.ParquetWriter(
                gen / "c-000001.parquet", schema.SCHEMAS["telemetry"], compression="zstd"
            ) as w:
                chunk = synthetic(min(existing, 1_000_000), "fda_run_old", "dev")
                for start in range(0, existing, chunk.num_rows):
                    w.write_table(chunk.slice(0, min(chunk.num_rows, existing - start)))
            telemetry = pipeline(Path(tmp))
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                with fda.run("bench", mode="dev", telemetry=telemetry, units={}, method={}) as run:
                    for i in range(1_000):
                        run.iteration(iter=i, **CORE)
                times.append(time.perf_counter() - t0)
            telemetry.shutdown(30_000)
            total = pq.ParquetFile(gen / "c-000001.parquet").metadata.num_rows
            report.add(
                case=f"append a 1k-row dev run to a flow holding {total:,} rows",
                median_ms=sorted(times)[2] * 1000,
            )


def duckdb_aggregate(report: Report, rows: int, runs: int = 100) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "telematry_cfs"
        per_run = rows // runs
        base = synthetic(per_run, "x")
        t0 = time.perf_counter()
        for k in range(runs):
            folder = root / "runs" / f"fda_run_20250101_000000_{k:06x}"
            folder.mkdir(parents=True)
            table = base.set_column(0, "run_id", pa.array([folder.name] * per_run))
            pq.write_table(table, folder / "telemetry.parquet", compression="zstd", row_group_size=512 * 1024)
        report.note(f"generated {rows:,} rows in {runs} run folders in {time.perf_counter() - t0:.1f}s")
        api = Runs(root)
        sql = (
            'SELECT run_id, count(*) AS n, min("E") AS e_min, avg(phi_residual) AS r, '
            "max(invariant_drift_max) AS d FROM telemetry GROUP BY run_id"
        )
        timings = []
        for _ in range(3):
            t0 = time.perf_counter()
            result = api.query(sql)
            timings.append(time.perf_counter() - t0)
        assert len(result["rows"]) == runs and sum(r[1] for r in result["rows"]) == per_run * runs
        report.add(
            case=f"DuckDB GROUP BY run over {per_run * runs:,} rows in {runs} runs",
            median_ms=sorted(timings)[1] * 1000,
            rows_per_s=per_run * runs / sorted(timings)[1],
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows for the append and DuckDB cases")
    parser.add_argument(
        "--e2e-rows", type=int, default=1_000_000, help="iterations per end-to-end run (a 1M burst)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="end-to-end runs per case, interleaved")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one end-to-end run (run_case), as JSON
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.e2e_rows)))
        return
    report = Report("fda_capsule", "FDA capsules: end-to-end throughput, append cost, DuckDB at scale")
    end_to_end(report, args.e2e_rows, args.repeats)
    append_cost(report, args.rows)
    duckdb_aggregate(report, args.rows)
    report.finish()


if __name__ == "__main__":
    main()
