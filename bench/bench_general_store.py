"""The general store's cost: log records and spans sent to a real ``otel-tele serve`` over OTLP/gRPC
and OTLP/HTTP (protobuf) by 1 and by 4 concurrent clients, stored as Parquet parts. Figures are
records stored per second of the receiving process's own CPU (user + sys from /proc, every thread),
from the first request until every row is on disk (the part files' row counts), so the flush and its
fsync are included; beside them the wall rate, the RSS after each half of the round (a settled
receiver holds about the same after the second half as after the first) and the retries after a
"full" reply (the clients retry as a collector does, so nothing is lost).

In the same run, fresh processes, interleaved, ``--repeats`` times each:

- ``store``: ``OTEL_TELE_SINKS=store`` (the receiver plus the store);
- ``rotel blackhole``: the same requests into rotel (a native OTLP collector) exporting to its
  blackhole: the native ceiling of receiving OTLP and doing nothing with it (``vs_rotel``);
- ``pyarrow write``: the obvious simple alternative for the storage itself: the same rows as Python
  tuples, turned into one Arrow table and written with ``pyarrow.parquet.write_table`` (zstd), in a
  process of its own (no decode, no books, no durability per part).

    .venv/bin/python -m bench.bench_general_store [--requests 100] [--records 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import Report
from bench.bench_otlp_transports import cpu_s
from tests._services import Service, free_port, rotel_agent

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


def _rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set of ``pid`` in MB, from /proc."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class _Sender:
    """One client connection (gRPC channel or HTTP client) that sends a body and, like a collector,
    retries it after a "full" reply (RESOURCE_EXHAUSTED / UNAVAILABLE, 429 / 503), counting retries."""

    def __init__(self, signal: str, transport: str, grpc_port: int, http_port: int) -> None:
        import grpc
        import httpx

        self.retries = 0
        self._grpc = grpc
        self._channel = self._client = None
        if transport == "grpc":
            self._channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
            self._call = self._channel.unary_unary(_SERVICES[signal])
        else:
            self._client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=120)
            self._path = _PATHS[signal]

    def send(self, body: bytes) -> None:
        for attempt in range(1000):
            if self._channel is not None:
                try:
                    self._call(body, timeout=120)
                    return
                except self._grpc.RpcError as exc:
                    full = (self._grpc.StatusCode.RESOURCE_EXHAUSTED, self._grpc.StatusCode.UNAVAILABLE)
                    if exc.code() not in full:
                        raise
            else:
                assert self._client is not None
                reply = self._client.post(
                    self._path, content=body, headers={"content-type": "application/x-protobuf"}
                )
                if reply.status_code == 200:
                    return
                if reply.status_code not in (429, 503):
                    raise RuntimeError(f"HTTP {reply.status_code}: {reply.text[:200]}")
            self.retries += 1
            time.sleep(min(0.5, 0.01 * 2**attempt))  # the bench is the client here, backing off
        raise RuntimeError("still refused after 1000 tries")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._channel is not None:
            self._channel.close()


def _start(path: str, tmp: Path) -> tuple[Service, int, int, Path]:
    """The receiving process of ``path``: serve with the store, serve with no sink, or rotel."""
    data = tmp / "data"
    grpc_port, http_port = free_port(), free_port()
    if path == "rotel blackhole":
        argv = [rotel_agent(), "start", "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}"]
        argv += ["--otlp-http-endpoint", f"127.0.0.1:{http_port}", "--exporter", "blackhole"]
        service = Service("rotel", argv, tmp)
    else:
        cli = str(Path(sys.executable).parent / "otel-tele")
        service = Service(
            "serve",
            [cli, "serve", "--otlp-grpc", f"127.0.0.1:{grpc_port}", "--otlp-http", f"127.0.0.1:{http_port}"],
            tmp,
            env={
                "OTEL_TELE_DATA_DIR": str(data),
                "OTEL_TELE_SINKS": "store" if path == "store" else "none",
                "OTEL_METRICS_EXPORTER": "none",
                "OTEL_TELE_STORE_FLUSH_SECONDS": "0.2",
                "OTEL_BSP_SCHEDULE_DELAY": "200",
            },
        )
    service.wait_ready(grpc_port, http_port)
    return service, grpc_port, http_port, data


def _wait_stored(root: Path, signal: str, expected: int) -> None:
    deadline = time.monotonic() + 300
    while stored_rows(root, signal) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError("rows never reached the store")
        time.sleep(0.02)


def serve_round(
    signal: str,
    transport: str,
    path: str,
    bodies: list[bytes],
    records: int,
    clients: int = 1,
    warmup: bytes = b"",
) -> dict[str, Any]:
    """One fresh receiving process: ``clients`` connections send the bodies in two halves (the RSS
    after each half shows whether memory settles; distinct records, as the store drops re-sent
    ones), each half waiting until every row is on disk (store)."""
    with tempfile.TemporaryDirectory() as tmp:
        service, grpc_port, http_port, data = _start(path, Path(tmp))
        senders = [_Sender(signal, transport, grpc_port, http_port) for _ in range(clients)]
        try:
            pid = service.process.pid
            # One request first, stored before the clock starts: the first one pays the lazy
            # imports and first-use setup a long-running receiver pays once (steady state is asked).
            for sender in senders:
                sender.send(warmup)
            expected = records
            if path == "store":
                _wait_stored(data / "store", signal, expected)
            cpu0, t0 = cpu_s(pid), time.perf_counter()
            rss: list[float] = []
            for half in (bodies[: len(bodies) // 2], bodies[len(bodies) // 2 :]):
                with ThreadPoolExecutor(clients) as pool:
                    shares = [(sender, half[i::clients]) for i, sender in enumerate(senders)]
                    list(pool.map(lambda share: [share[0].send(b) for b in share[1]], shares))
                expected += len(half) * records
                if path == "store":
                    _wait_stored(data / "store", signal, expected)
                rss.append(_rss_mb(pid)[0])
            seconds, cpu = time.perf_counter() - t0, cpu_s(pid) - cpu0
            stored = stored_rows(data / "store", signal) - records if path == "store" else 0
            return {
                "records": expected - records,
                "stored": stored,
                "wall_s": seconds,
                "cpu_s": cpu,
                "rss_half_mb": rss[0],
                "rss_end_mb": rss[1],
                "peak_rss_mb": _rss_mb(pid)[1],
                "retries": sum(sender.retries for sender in senders),
            }
        finally:
            for sender in senders:
                sender.close()
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
         json.dumps({"http.route": "/items/{id}", "user.id": f"u{i % 97}", "bytes": i}), 0,
         resource, "bench", None, None, None)
        for i in range(n)
    ]
else:
    rows = [
        (T + i, T + 1_000_000 + i, 1_000_000, format(i, "032x"), format(i + 1, "016x"),
         format(i + 2, "016x"), None, 1, "GET /items/{id}", "SERVER", "UNSET", None,
         json.dumps({"http.route": "/items/{id}", "http.method": "GET", "http.status_code": 200}),
         [{"time": T + 10 + i, "name": "cache.miss", "attributes": json.dumps({"key": f"k{i}"})}],
         [], 0, 0, 0, resource, "bench", None, None, None)
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


#: (path, clients) of every receiving process measured per signal and transport.
CASES = (("store", 1), ("store", 4), ("rotel blackhole", 1), ("rotel blackhole", 4))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100, help="requests per half round")
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bodies = {signal: build_requests(signal, 2 * args.requests + 1, args.records) for signal in SIGNALS}
    results: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for repeat in range(args.repeats):
        for signal in SIGNALS:
            for transport in TRANSPORTS:
                for path, clients in CASES:
                    result = serve_round(
                        signal, transport, path, bodies[signal][1:], args.records, clients, bodies[signal][0]
                    )
                    results.setdefault((f"{signal} {transport}", path, clients), []).append(result)
            total = 2 * args.requests * args.records
            results.setdefault((signal, "pyarrow write", 1), []).append(pyarrow_round(signal, total))
        print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)

    report = Report(
        "general_store",
        "log records and spans stored by otel-tele serve (OTLP/gRPC, OTLP/HTTP) per CPU-second of the "
        "receiving process, 1 and 4 clients, against rotel's blackhole exporter and a "
        "plain pyarrow write of the same rows",
    )

    def per_cpu(rounds: list[dict[str, Any]]) -> list[float]:
        return sorted(r["records"] / r["cpu_s"] for r in rounds if r["cpu_s"] > 0)

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[len(ordered) // 2]

    for (what, path, clients), rounds in results.items():
        figures = per_cpu(rounds)
        if not figures:
            continue  # too short to register a clock tick of CPU
        row: dict[str, Any] = {
            "records": what,
            "path": path,
            "clients": clients,
            "records_per_cpu_s_min": round(figures[0]),
            "records_per_cpu_s_median": round(median(figures)),
            "records_per_cpu_s_max": round(figures[-1]),
        }
        rotel = results.get((what, "rotel blackhole", clients))
        if path == "store" and rotel and per_cpu(rotel):
            row["vs_rotel_median"] = round(median(figures) / median(per_cpu(rotel)), 3)
            row["cpu_us_per_record_median"] = round(1e6 / median(figures), 1)
        if path != "pyarrow write":
            row["records_per_s_wall_median"] = round(median([r["records"] / r["wall_s"] for r in rounds]))
            row["rss_half_mb_max"] = round(max(r["rss_half_mb"] for r in rounds), 1)
            row["rss_end_mb_max"] = round(max(r["rss_end_mb"] for r in rounds), 1)
            row["retries"] = sum(r["retries"] for r in rounds)
        row["stored"] = sum(r["stored"] for r in rounds)
        row["sent"] = sum(r["records"] for r in rounds)
        report.add(**row)
    for signal in SIGNALS:
        pyarrow_us = 1e6 / median(per_cpu(results[(signal, "pyarrow write", 1)]))
        report.note(f"{signal}: pyarrow write alone costs {pyarrow_us:.1f} us per record (CPU)")
    report.note(
        f"a round = 2 x {args.requests} requests x {args.records} records sent by the clients (two "
        f"halves; rss_half/rss_end: the receiver's RSS after each half); {args.repeats} repeats, a fresh "
        "receiving process per round, interleaved (min/median/max over repeats); CPU = the receiving "
        "process's user+sys from /proc, from the first request until every row is on disk (store); "
        "vs_rotel = store "
        "records per CPU-s / rotel blackhole's, same transport and clients; retries = requests refused "
        "as full (429/503, RESOURCE_EXHAUSTED/UNAVAILABLE) and sent again; OTEL_TELE_STORE_FLUSH_SECONDS=0.2"
    )
    report.finish()


if __name__ == "__main__":
    main()
