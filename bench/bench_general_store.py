"""The general store's cost: log records and spans sent to a real ``otel-tele serve`` over OTLP/gRPC
and OTLP/HTTP (protobuf), stored as Parquet parts. Figures are records stored per second of serve's
own CPU (read from /proc), from the first request until every row is on disk (the part files' row
counts), so the flush and its fsync are included.

In the same run, fresh processes, interleaved, ``--repeats`` times each:

- ``store``: ``OTEL_TELE_SINKS=store`` (the receiver plus the store);
- ``receiver only``: ``OTEL_TELE_SINKS=none``, the same requests (what OTLP decoding costs alone);
- ``pyarrow write``: the obvious simple alternative for the storage itself: the same rows as Python
  tuples, turned into one Arrow table and written with ``pyarrow.parquet.write_table`` (zstd), in a
  process of its own (no decode, no books, no durability per part).

``store - receiver`` is what storing costs per record inside serve; compare it with ``pyarrow write``.

    .venv/bin/python -m bench.bench_general_store [--requests 40] [--records 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import Report
from bench.bench_otlp_transports import cpu_s
from tests._services import Service, free_port

SIGNALS = ("logs", "spans")
TRANSPORTS = ("grpc", "http")
_SERVICES = {
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "spans": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
}
_PATHS = {"logs": "/v1/logs", "spans": "/v1/traces"}


def build_requests(signal: str, requests: int, records: int) -> list[bytes]:
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    bodies = []
    for r in range(requests):
        if signal == "logs":
            message: Any = logs_service_pb2.ExportLogsServiceRequest()
            group = message.resource_logs.add()
            group.resource.attributes.add(key="service.name").value.string_value = "bench"
            out = group.scope_logs.add().log_records
            for i in range(records):
                record = out.add(time_unix_nano=1_700_000_000_000_000_000 + i, severity_number=9)
                record.body.string_value = f"request {r} record {i} handled"
                record.trace_id, record.span_id = bytes(range(16)), bytes(range(8))
                for key, value in (("http.route", "/items/{id}"), ("user.id", f"u{i % 97}")):
                    record.attributes.add(key=key).value.string_value = value
                record.attributes.add(key="bytes").value.int_value = i
        else:
            message = trace_service_pb2.ExportTraceServiceRequest()
            group = message.resource_spans.add()
            group.resource.attributes.add(key="service.name").value.string_value = "bench"
            out = group.scope_spans.add().spans
            for i in range(records):
                span = out.add(name="GET /items/{id}", kind=2)
                span.trace_id = (r * records + i).to_bytes(16, "big")
                span.span_id = (i + 1).to_bytes(8, "big")
                span.parent_span_id = (i + 2).to_bytes(8, "big")
                span.start_time_unix_nano = 1_700_000_000_000_000_000 + i
                span.end_time_unix_nano = span.start_time_unix_nano + 1_000_000
                for key, value in (("http.route", "/items/{id}"), ("http.method", "GET")):
                    span.attributes.add(key=key).value.string_value = value
                span.attributes.add(key="http.status_code").value.int_value = 200
                event = span.events.add(name="cache.miss", time_unix_nano=span.start_time_unix_nano + 10)
                event.attributes.add(key="key").value.string_value = f"k{i}"
        bodies.append(message.SerializeToString())
    return bodies


def stored_rows(root: Path, dataset: str) -> int:
    import pyarrow.parquet as pq

    total = 0
    for path in (root / dataset).glob("*/*.parquet"):
        try:
            total += pq.ParquetFile(path).metadata.num_rows
        except OSError:
            continue  # renamed away by a compaction meanwhile
    return total


def serve_round(signal: str, transport: str, sinks: str, bodies: list[bytes], records: int) -> dict[str, Any]:
    """One fresh serve process: send every body, wait until every row is on disk (store)."""
    import grpc
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        grpc_port, http_port = free_port(), free_port()
        cli = str(Path(sys.executable).parent / "otel-tele")
        service = Service(
            "serve",
            [cli, "serve", "--otlp-grpc", f"127.0.0.1:{grpc_port}", "--otlp-http", f"127.0.0.1:{http_port}"],
            Path(tmp),
            env={
                "OTEL_TELE_DATA_DIR": str(data),
                "OTEL_TELE_SINKS": sinks,
                "OTEL_METRICS_EXPORTER": "none",
                "OTEL_TELE_STORE_FLUSH_SECONDS": "0.2",
                "OTEL_BSP_SCHEDULE_DELAY": "200",
            },
        )
        channel = client = None
        try:
            service.wait_ready(grpc_port, http_port)
            if transport == "grpc":
                channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
                call = channel.unary_unary(_SERVICES[signal])

                def send(body: bytes) -> None:
                    call(body, timeout=120)
            else:
                client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=120)

                def send(body: bytes) -> None:
                    reply = client.post(
                        _PATHS[signal], content=body, headers={"content-type": "application/x-protobuf"}
                    )
                    if reply.status_code != 200:
                        raise RuntimeError(f"HTTP {reply.status_code}: {reply.text[:200]}")

            pid = service.process.pid
            cpu0, t0 = cpu_s(pid), time.perf_counter()
            for body in bodies:
                send(body)
            expected = len(bodies) * records
            if sinks == "store":
                deadline = time.monotonic() + 300
                while stored_rows(data / "store", signal) < expected:
                    if time.monotonic() > deadline:
                        raise RuntimeError("rows never reached the store")
                    time.sleep(0.02)
            seconds, cpu = time.perf_counter() - t0, cpu_s(pid) - cpu0
            stored = stored_rows(data / "store", signal) if sinks == "store" else 0
            return {"records": expected, "stored": stored, "wall_s": seconds, "cpu_s": cpu}
        finally:
            if client is not None:
                client.close()
            if channel is not None:
                channel.close()
            service.stop()


_PYARROW_CHILD = r"""
import json, os, sys, tempfile, time
import pyarrow.parquet as pq
from otel_tele.exporters.store import schema
from otel_tele.exporters.store._rows import table_of
signal, n = sys.argv[1], int(sys.argv[2])
resource = json.dumps({"service.name": "bench"})
T = 1_700_000_000_000_000_000
if signal == "logs":
    rows = [
        (T + i, T + i, 9, None, f"request 0 record {i} handled", "string", None,
         "000102030405060708090a0b0c0d0e0f", "0001020304050607", 1,
         json.dumps({"http.route": "/items/{id}", "user.id": f"u{i % 97}", "bytes": i}),
         resource, "bench", None, None, None)
        for i in range(n)
    ]
else:
    rows = [
        (T + i, T + 1_000_000 + i, 1_000_000, format(i, "032x"), format(i + 1, "016x"),
         format(i + 2, "016x"), None, 1, "GET /items/{id}", "SERVER", "UNSET", None,
         json.dumps({"http.route": "/items/{id}", "http.method": "GET", "http.status_code": 200}),
         [{"time": T + 10 + i, "name": "cache.miss", "attributes": json.dumps({"key": f"k{i}"})}],
         [], resource, "bench", None, None, None)
        for i in range(n)
    ]
dataset = schema.SIGNALS["traces" if signal == "spans" else "logs"]
t0 = time.process_time()
table = table_of(dataset, rows)
with tempfile.TemporaryDirectory() as tmp:
    pq.write_table(table, os.path.join(tmp, "x.parquet"), **schema.WRITE_OPTIONS)
print(json.dumps({"cpu_s": time.process_time() - t0}))
"""


def pyarrow_round(signal: str, records: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _PYARROW_CHILD, signal, str(records)],
        capture_output=True,
        text=True,
        check=True,
    )
    return {"records": records, "stored": records, **json.loads(out.stdout)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bodies = {signal: build_requests(signal, args.requests, args.records) for signal in SIGNALS}
    total = args.requests * args.records
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for repeat in range(args.repeats):
        for signal in SIGNALS:
            for transport in TRANSPORTS:
                for sinks in ("store", "none"):
                    key = (f"{signal} {transport}", "store" if sinks == "store" else "receiver only")
                    result = serve_round(signal, transport, sinks, bodies[signal], args.records)
                    results.setdefault(key, []).append(result)
            results.setdefault((signal, "pyarrow write"), []).append(pyarrow_round(signal, total))
        print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)

    report = Report(
        "general_store",
        "log records and spans stored by otel-tele serve (OTLP/gRPC, OTLP/HTTP) per serve CPU-second, "
        "against the receiver alone and a plain pyarrow write of the same rows",
    )

    def per_cpu(rounds: list[dict[str, Any]]) -> list[float]:
        return sorted(r["records"] / r["cpu_s"] for r in rounds if r["cpu_s"] > 0)

    medians: dict[tuple[str, str], float] = {}
    for (what, how), rounds in results.items():
        figures = per_cpu(rounds)
        medians[(what, how)] = figures[len(figures) // 2]
        store_cost = ""
        if how == "store":
            alone = per_cpu(results[(what, "receiver only")])
            extra_us = 1e6 / figures[len(figures) // 2] - 1e6 / alone[len(alone) // 2]
            store_cost = round(extra_us, 1)
        report.add(
            records=what,
            path=how,
            records_per_cpu_s_min=round(figures[0]),
            records_per_cpu_s_median=round(figures[len(figures) // 2]),
            records_per_cpu_s_max=round(figures[-1]),
            store_us_per_record=store_cost,
            stored=sum(r["stored"] for r in rounds),
            wall_s_median=round(sorted(r.get("wall_s", 0.0) for r in rounds)[len(rounds) // 2], 2),
        )
    for signal in SIGNALS:
        pyarrow_us = 1e6 / medians[(signal, "pyarrow write")]
        report.note(f"{signal}: pyarrow write alone costs {pyarrow_us:.1f} us per record (CPU)")
    report.note(
        f"{args.requests} requests x {args.records} records per round; {args.repeats} repeats, each a fresh "
        "serve process per row (min/median/max over repeats); store_us_per_record = serve CPU per record "
        "with the store minus without it (median rounds); OTEL_TELE_STORE_FLUSH_SECONDS=0.2"
    )
    report.finish()


if __name__ == "__main__":
    main()
