"""OTLP ingest by transport and encoding: one real ``otel-tele serve`` process, one client sending the
same log requests over OTLP/gRPC (the baseline, the receiver that existed before), OTLP/HTTP with a
protobuf body, with a gzip'd protobuf body, and with a JSON body. Rounds are interleaved; each
figure is the median round with every round listed. ``serve`` CPU is read from /proc, so the
``records/cpu-s`` column is serve's own cost per record, independent of the client's.

Sinks: ``OTEL_TELE_SINKS`` (default none: the receiver alone; ``sqlite`` adds the realistic sink,
whose backpressure then dominates).

    .venv/bin/python -m bench.bench_otlp_transports [--requests 200] [--records 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import Report, percentiles_ns
from tests._services import Service, free_port


def request(records: int, batch: int) -> logs_service_pb2.ExportLogsServiceRequest:
    message = logs_service_pb2.ExportLogsServiceRequest()
    logs = message.resource_logs.add()
    logs.resource.attributes.add(key="service.name").value.string_value = "bench"
    out = logs.scope_logs.add().log_records
    for i in range(records):
        record = out.add(time_unix_nano=1_700_000_000_000_000_000 + i, severity_number=9)
        record.event_name = "robot.system.event"
        record.trace_id, record.span_id = bytes(range(16)), bytes(range(8))
        for key, value in (("robot.system.event_type", f"B{batch}-{i}"), ("robot.source", "bench")):
            record.attributes.add(key=key).value.string_value = value
    return message


def json_body(message: logs_service_pb2.ExportLogsServiceRequest) -> bytes:
    """OTLP/JSON: json_format's mapping with hex ids (what an OTLP/JSON exporter sends)."""
    document = json_format.MessageToDict(message)
    for resource in document["resourceLogs"]:
        for scope in resource["scopeLogs"]:
            for record in scope["logRecords"]:
                record["traceId"], record["spanId"] = bytes(range(16)).hex(), bytes(range(8)).hex()
    return json.dumps(document).encode()


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    messages = [request(args.records, b) for b in range(20)]
    bodies = {
        "grpc protobuf": [m.SerializeToString() for m in messages],
        "http protobuf": [m.SerializeToString() for m in messages],
        "http protobuf+gzip": [gzip.compress(m.SerializeToString()) for m in messages],
        "http json": [json_body(m) for m in messages],
    }
    with tempfile.TemporaryDirectory() as tmp:
        grpc_port, http_port = free_port(), free_port()
        cli = str(Path(sys.executable).parent / "otel-tele")
        service = Service(
            "serve",
            [cli, "serve", "--otlp-grpc", f"127.0.0.1:{grpc_port}", "--otlp-http", f"127.0.0.1:{http_port}"],
            Path(tmp),
            env={
                "OTEL_TELE_DATA_DIR": str(Path(tmp) / "data"),
                "OTEL_TELE_SINKS": os.environ.get("OTEL_TELE_SINKS", "none"),
                "OTEL_METRICS_EXPORTER": "none",
            },
        )
        service.wait_ready(grpc_port, http_port)
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        grpc_export = channel.unary_unary(
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            response_deserializer=logs_service_pb2.ExportLogsServiceResponse.FromString,
        )
        client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=120)
        headers = {
            "http protobuf": {"content-type": "application/x-protobuf"},
            "http protobuf+gzip": {"content-type": "application/x-protobuf", "content-encoding": "gzip"},
            "http json": {"content-type": "application/json"},
        }

        def sender(kind: str) -> Callable[[bytes], int]:
            if kind == "grpc protobuf":
                return lambda body: int(grpc_export(body, timeout=120).partial_success.rejected_log_records)

            def post(body: bytes) -> int:
                reply = client.post("/v1/logs", content=body, headers=headers[kind])
                if reply.status_code != 200:
                    raise RuntimeError(f"{kind}: HTTP {reply.status_code} {reply.text[:200]}")
                answer: Any = reply.json() if kind == "http json" else None
                if answer is not None:
                    return int(answer.get("partialSuccess", {}).get("rejectedLogRecords", 0))
                response = logs_service_pb2.ExportLogsServiceResponse.FromString(reply.content)
                return int(response.partial_success.rejected_log_records)

            return post

        results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in bodies}
        try:
            for kind in bodies:  # warm-up: imports, connections, tables
                sender(kind)(bodies[kind][0])
            kinds = list(bodies)
            for round_ in range(args.rounds):
                # Rotated order: a kind never always follows the one whose records the sinks still drain.
                for kind in kinds[round_ % len(kinds) :] + kinds[: round_ % len(kinds)]:
                    kind_bodies = bodies[kind]
                    send = sender(kind)
                    latencies: list[int] = []
                    rejected = 0
                    cpu0, t0 = cpu_s(service.process.pid), time.perf_counter()
                    for i in range(args.requests):
                        started = time.perf_counter_ns()
                        rejected += send(kind_bodies[i % len(kind_bodies)])
                        latencies.append(time.perf_counter_ns() - started)
                    seconds, cpu = time.perf_counter() - t0, cpu_s(service.process.pid) - cpu0
                    records = args.requests * args.records
                    results[kind].append(
                        {
                            "records_per_s": records / seconds,
                            "records_per_cpu_s": records / cpu if cpu else float("inf"),
                            "rejected": rejected,
                            "wire_bytes": len(kind_bodies[0]),
                            **percentiles_ns(latencies),
                        }
                    )
        finally:
            client.close()
            channel.close()
            service.stop()

    report = Report("otlp_transports", "log records into otel-tele serve by transport and encoding")

    def median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
        return sorted(rounds, key=lambda r: r["records_per_s"])[len(rounds) // 2]

    base = median_round(results["grpc protobuf"])["records_per_cpu_s"]
    for kind, rounds in results.items():
        median = median_round(rounds)
        report.add(
            transport=kind,
            wire_bytes=median["wire_bytes"],
            records_per_s=round(median["records_per_s"]),
            records_per_serve_cpu_s=round(median["records_per_cpu_s"]),
            cpu_vs_grpc=round(base / median["records_per_cpu_s"], 2),
            request_p50_ms=round(median["p50_ns"] / 1e6, 2),
            request_p99_ms=round(median["p99_ns"] / 1e6, 2),
            request_mean_ms=round(median["mean_ns"] / 1e6, 2),
            rejected=sum(r["rejected"] for r in rounds),
            all_records_per_s=[round(r["records_per_s"]) for r in rounds],
        )
    report.note(
        f"{args.requests} requests x {args.records} records per round, {args.rounds} interleaved rounds, one "
        f"client, sinks={os.environ.get('OTEL_TELE_SINKS', 'none')}; cpu_vs_grpc = serve CPU per record "
        "relative to OTLP/gRPC (1.0 = the same cost)"
    )
    report.print_table()
    report.write()


if __name__ == "__main__":
    main()
