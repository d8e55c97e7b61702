"""Overload, honestly: bursts of 1M records (past the 262,144-record queues) at full speed, no flushes
in between, for the robot collector, an FDA production run and OTLP ingest into ``otel-tele serve``.

Each case runs under its domain's default overload policy and under the other one, and reports what
was stored, what was dropped (counted), and what the caller paid: per-call p50/p99/mean/max, the
summed time of calls that waited (> 1 ms), and the wall time until the last row was durable.

    .venv/bin/python bench/bench_overload.py [--records 1000000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc
import pyarrow.parquet as pq
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from otel_tele.exporters.capsule import schema
from otel_tele.instrumentation import fda
from otel_tele.instrumentation.robot import TelemetryCollector

import otel_tele
from bench._harness import Report, percentiles_ns
from bench.bench_fda_recorder import CORE  # the same iteration payload as the recorder bench
from otel_tele._receiver import OtlpGrpcReceiver

QUIET = {"traces_exporter": "none", "metrics_exporter": "none", "logs_exporter": "none"}
WAITED_NS = 1_000_000  # a call slower than this waited for room (an unloaded call is ~1-3 µs)


def caller_costs(fn: Callable[[int], Any], n: int) -> dict[str, Any]:
    """Call ``fn(i)`` n times back to back; per-call ns and the time spent in calls that waited."""
    samples = [0] * n
    clock = time.perf_counter_ns
    gc.disable()
    try:
        t0 = clock()
        for i in range(n):
            c0 = clock()
            fn(i)
            samples[i] = clock() - c0
        burst_s = (clock() - t0) / 1e9
    finally:
        gc.enable()
    waited = [s for s in samples if s > WAITED_NS]
    stats = percentiles_ns(samples)
    return {
        "burst_s": round(burst_s, 2),
        "call_p50_ns": stats["p50_ns"],
        "call_p99_ns": stats["p99_ns"],
        "call_mean_ns": round(stats["mean_ns"], 1),
        "call_max_ms": round(max(samples) / 1e6, 1),
        "calls_waited": len(waited),
        "caller_wait_s": round(sum(waited) / 1e9, 2),
    }


def dropped_of(telemetry: otel_tele.Pipeline, sink: str) -> int:
    return sum(s.dropped for s in telemetry.sink_stats() if s.sink in ("events", sink))


def robot(root: Path, n: int, policy: str) -> dict[str, Any]:
    """1M ``log_command`` with a realistic payload (a data dict and a correlation id)."""
    telemetry = otel_tele.setup(local=True, sinks=["sqlite"], data_dir=root, overload=policy or None, **QUIET)
    tc = TelemetryCollector(telemetry=telemetry)
    t0 = time.perf_counter()
    cost = caller_costs(
        lambda i: tc.log_command(
            i, 1, i % 7, float(i), {"id": i % 7, "angle": 45.0, "speed": 30}, f"cid-{i:012d}", 48
        ),
        n,
    )
    assert telemetry.force_flush(600_000), "flush timed out"
    wall = time.perf_counter() - t0
    with sqlite3.connect(root / "telemetry.db") as conn:
        stored = int(conn.execute("SELECT count(*) FROM dds_commands").fetchone()[0])
    dropped = dropped_of(telemetry, "sqlite")
    telemetry.shutdown(60_000)
    assert stored + dropped == n, (stored, dropped)
    return {"rows_stored": stored, "rows_dropped": dropped, "stored_rows_per_s": round(stored / wall), **cost}


def fda_run(root: Path, n: int, policy: str) -> dict[str, Any]:
    """One production run of 1M iterations, capsule sink on."""
    telemetry = otel_tele.setup(
        local=True, sinks=["capsule"], data_dir=root, overload=policy or None, **QUIET
    )
    t0 = time.perf_counter()
    with fda.run("bench", telemetry=telemetry, units={}, method={}, flush_timeout_millis=600_000) as run:
        it = run.iteration
        cost = caller_costs(lambda i: it(iter=i, **CORE), n)
    wall = time.perf_counter() - t0
    (run_dir,) = (root / "telematry_cfs" / "runs").glob("fda_run_*")
    stored = pq.read_metadata(run_dir / "telemetry.parquet").num_rows
    manifest = schema.read_manifest(run_dir / "manifest.toml")
    summary = manifest["summary"]
    assert summary["rows_recorded"] == stored and summary["rows_dropped"] == n - stored, summary
    telemetry.shutdown(60_000)
    return {
        "rows_stored": stored,
        "rows_dropped": n - stored,
        "manifest_status": manifest["status"],
        "stored_rows_per_s": round(stored / wall),
        **cost,
    }


def _requests(total: int, per_request: int) -> list[bytes]:
    """OTLP log requests of robot.dds.command records, encoded once (the sender's own cost aside)."""
    encoded = []
    now = time.time_ns()
    for start in range(0, total, per_request):
        records = [
            logs_pb2.LogRecord(
                time_unix_nano=now + i,
                event_name="robot.dds.command",
                attributes=[
                    common_pb2.KeyValue(key="robot.dds.seq", value=common_pb2.AnyValue(int_value=i)),
                    common_pb2.KeyValue(key="robot.dds.funcode", value=common_pb2.AnyValue(int_value=1)),
                    common_pb2.KeyValue(key="robot.joint.id", value=common_pb2.AnyValue(int_value=i % 7)),
                    common_pb2.KeyValue(
                        key="robot.correlation_id", value=common_pb2.AnyValue(string_value=f"cid-{i:012d}")
                    ),
                ],
            )
            for i in range(start, min(total, start + per_request))
        ]
        request = logs_service_pb2.ExportLogsServiceRequest(
            resource_logs=[logs_pb2.ResourceLogs(scope_logs=[logs_pb2.ScopeLogs(log_records=records)])]
        )
        encoded.append(request.SerializeToString())
    return encoded


def otlp_ingest(root: Path, n: int, policy: str, requests: list[bytes], senders: int = 4) -> dict[str, Any]:
    """``senders`` gRPC clients send 1M records as fast as the receiver answers."""
    telemetry = otel_tele.setup(local=True, sinks=["sqlite"], data_dir=root, overload=policy or None, **QUIET)
    receiver = OtlpGrpcReceiver(telemetry, "127.0.0.1:0", max_workers=senders)
    latencies: list[int] = []
    rejected = [0]
    lock = threading.Lock()

    def send(part: list[bytes]) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
            export = channel.unary_unary(
                "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                request_serializer=lambda raw: raw,
                response_deserializer=logs_service_pb2.ExportLogsServiceResponse.FromString,
            )
            for raw in part:
                c0 = time.perf_counter_ns()
                response = export(raw, timeout=600)
                took = time.perf_counter_ns() - c0
                with lock:
                    latencies.append(took)
                    rejected[0] += response.partial_success.rejected_log_records

    t0 = time.perf_counter()
    threads = [threading.Thread(target=send, args=(requests[k::senders],)) for k in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    burst_s = time.perf_counter() - t0
    assert telemetry.force_flush(600_000), "flush timed out"
    wall = time.perf_counter() - t0
    receiver.stop()
    with sqlite3.connect(root / "telemetry.db") as conn:
        stored = int(conn.execute("SELECT count(*) FROM dds_commands").fetchone()[0])
    dropped = dropped_of(telemetry, "sqlite")
    telemetry.shutdown(60_000)
    stats = percentiles_ns(latencies)
    assert stored + dropped == n, (stored, dropped)
    return {
        "rows_stored": stored,
        "rows_dropped": dropped,
        "rejected_in_responses": rejected[0],
        "stored_rows_per_s": round(stored / wall),
        "burst_s": round(burst_s, 2),
        "request_p50_ms": round(stats["p50_ns"] / 1e6, 1),
        "request_p99_ms": round(stats["p99_ns"] / 1e6, 1),
        "request_mean_ms": round(stats["mean_ns"] / 1e6, 1),
        "request_max_ms": round(max(latencies) / 1e6, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--per-request", type=int, default=2_048, help="records per OTLP request")
    args = parser.parse_args(argv)
    n = args.records
    report = Report(
        "overload", f"bursts of {n:,} records past the 262,144-record queues, per overload policy"
    )
    requests = _requests(n, args.per_request)
    cases: list[tuple[str, str, Callable[[Path, int, str], dict[str, Any]]]] = [
        ("robot log_command", "", robot),
        ("robot log_command", "robot=wait", robot),
        ("fda production run.iteration", "", fda_run),
        ("fda production run.iteration", "fda.production=drop", fda_run),
        ("OTLP ingest (serve), 4 senders", "", lambda r, k, p: otlp_ingest(r, k, p, requests)),
        ("OTLP ingest (serve), 4 senders", "otlp=drop", lambda r, k, p: otlp_ingest(r, k, p, requests)),
    ]
    for name, policy, case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            row = case(Path(tmp), n, policy)
        report.add(case=name, policy=policy or "default", records=n, **row)
        print(report.rows[-1], flush=True)
    report.note(
        "default policies: robot drop (a control loop never blocks), fda.production wait (lossless, "
        "OTEL_TELE_OVERLOAD_MAX_WAIT 30 s), otlp wait (the request is held while the sinks drain); "
        "rows_dropped are the books' dropped counts (event queue + sink queue), and rows_stored + "
        "rows_dropped == records is asserted"
    )
    report.note(
        f"calls_waited / caller_wait_s: calls slower than {WAITED_NS / 1e6:g} ms and their summed time "
        "(backpressure, and GIL hand-offs to the telemetry thread under a drop policy); "
        "stored_rows_per_s: rows stored over the time from the first call to the flush that made the "
        "last one durable"
    )
    report.finish()


if __name__ == "__main__":
    main()
