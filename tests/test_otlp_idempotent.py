"""Re-sent OTLP requests are acknowledged, not stored again (issue 15 §1: collectors retry after
timeouts). The same protobuf bytes over OTLP/HTTP and OTLP/gRPC, a gzip twin, a real OTLP/HTTP
exporter whose first reply a proxy throws away (it retries), and a re-send after a clean restart of
``otel-tele serve``: every row exists once in the robot SQLite tables and in the general store, and
the books stay exact."""

from __future__ import annotations

import gzip
import sqlite3
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pyarrow.dataset as ds
import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from otel_tele.exporters.store.schema import with_int_times
from prometheus_client.parser import text_string_to_metric_families

import otel_tele
from otel_tele._otlp_dedup import RecentRequests, digest
from otel_tele._receiver import OtlpIngest

from ._lossy_proxy import LossyProxy
from ._serve import Serve, serve_process
from ._services import free_port
from .test_sink_contract import stats_of

PROTOBUF = {"content-type": "application/x-protobuf"}
GRPC_PATHS = {
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}
#: Now-ish (the robot tables' retention would remove rows from years ago at the next start).
T0 = time.time_ns()
HTTP_PATHS = {"logs": "/v1/logs", "traces": "/v1/traces", "metrics": "/v1/metrics"}


def _commands(seqs: range) -> bytes:
    """robot.dds.command event records (one ``dds_commands`` row each), as protobuf bytes."""
    request = logs_service_pb2.ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.add(key="service.name").value.string_value = "arm"
    records = rl.scope_logs.add().log_records
    for seq in seqs:
        record = records.add(time_unix_nano=T0 + seq, event_name="robot.dds.command")
        for key, value in (("robot.dds.seq", seq), ("robot.dds.funcode", 1), ("robot.joint.id", 2)):
            record.attributes.add(key=key).value.int_value = value
    return request.SerializeToString()


def _span(name: str) -> bytes:
    request = trace_service_pb2.ExportTraceServiceRequest()
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(
            name=name,
            start_time_unix_nano=1_700_000_000_000_000_000,
            end_time_unix_nano=1_700_000_001_000_000_000,
        )
    )
    span.trace_id = bytes.fromhex("5b8efff798038103d269b633813fc60c")
    span.span_id = bytes.fromhex("eee19b7ec3c1b174")
    return request.SerializeToString()


def _sum(name: str) -> bytes:
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name=name, unit="1")
    metric.sum.aggregation_temporality = 2
    metric.sum.is_monotonic = True
    metric.sum.data_points.add(time_unix_nano=1_700_000_000_000_000_000, as_int=5)
    return request.SerializeToString()


def _post(serve: Serve, signal: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    reply = httpx.post(
        serve.otlp_http_url + HTTP_PATHS[signal],
        content=body,
        headers={**PROTOBUF, **(headers or {})},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    return reply


def _grpc(serve: Serve, signal: str, body: bytes) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{serve.grpc_port}") as channel:
        call = channel.unary_unary(GRPC_PATHS[signal])  # raw bytes in, raw bytes out
        call(body, timeout=60)


def _seqs(data_dir: Path) -> list[int]:
    with sqlite3.connect(data_dir / "telemetry.db") as conn:
        return [row[0] for row in conn.execute("SELECT seq FROM dds_commands ORDER BY seq")]


def _store(data_dir: Path, dataset: str) -> list[dict[str, Any]]:
    folder = data_dir / "store" / dataset
    if not folder.exists():
        return []
    return with_int_times(ds.dataset(folder, format="parquet", partitioning="hive").to_table()).to_pylist()


def _ours(data_dir: Path, dataset: str) -> list[dict[str, Any]]:
    """The rows the test sent (serve keeps its own telemetry in the store too)."""
    rows = _store(data_dir, dataset)
    if dataset == "logs":
        return [r for r in rows if r["event_name"] == "robot.dds.command"]
    return [r for r in rows if r["name"].startswith("arm.")]


def test_re_sent_requests_are_stored_once_across_transports_and_restarts(tmp_path: Path) -> None:
    logs_a, logs_b = _commands(range(0, 3)), _commands(range(3, 5))
    span, point = _span("arm.move"), _sum("arm.moves")
    prometheus = free_port()
    env = {"OTEL_METRICS_EXPORTER": "", "OTEL_EXPORTER_PROMETHEUS_PORT": str(prometheus)}
    with serve_process(tmp_path, sinks="sqlite,store", env=env) as serve:
        for _ in range(2):  # the same bytes twice over each transport, and across transports
            _post(serve, "logs", logs_a)
            _grpc(serve, "logs", logs_a)
            _post(serve, "traces", span)
            _grpc(serve, "traces", span)
            _grpc(serve, "metrics", point)
            _post(serve, "metrics", point)
        # A gzip twin: the identity is the inflated body, whatever the compressor made of it.
        _post(serve, "logs", logs_b)
        _post(serve, "logs", gzip.compress(logs_b, mtime=int(time.time())), {"content-encoding": "gzip"})
        # A real exporter whose first reply is lost after serve took the request: it sends again.
        with LossyProxy(serve.otlp_http_port, drop=1) as proxy:
            provider = LoggerProvider()
            exporter = OTLPLogExporter(endpoint=f"http://127.0.0.1:{proxy.port}/v1/logs", timeout=30)
            provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
            otel_tele_logger = provider.get_logger("arm")
            from opentelemetry._logs import LogRecord

            otel_tele_logger.emit(
                LogRecord(
                    event_name="robot.dds.command",
                    attributes={"robot.dds.seq": 9, "robot.dds.funcode": 1, "robot.joint.id": 1},
                )
            )
            provider.shutdown()
            assert (proxy.forwarded, proxy.dropped) == (2, 1), "the exporter re-sent the request"
        scraped = httpx.get(f"http://127.0.0.1:{prometheus}/metrics", timeout=10).text
        duplicates = {
            sample.labels["otel_tele_signal"]: sample.value
            for family in text_string_to_metric_families(scraped)
            for sample in family.samples
            if sample.name == "otel_tele_receiver_duplicates_total"
        }
        assert duplicates == {"logs": 5.0, "traces": 3.0, "metrics": 3.0}
    assert serve.service.process.returncode == 0, serve.service.log_text()
    assert _seqs(serve.data_dir) == [0, 1, 2, 3, 4, 9]
    assert [r["name"] for r in _ours(serve.data_dir, "spans")] == ["arm.move"]
    assert [(r["name"], r["value_int"]) for r in _ours(serve.data_dir, "metrics")] == [("arm.moves", 5)]
    assert len(_ours(serve.data_dir, "logs")) == 6
    assert (serve.data_dir / "otlp-recent-requests.jsonl").exists()

    # A clean restart keeps the window: a retry arriving after it is still recognised.
    with serve_process(tmp_path, sinks="sqlite,store") as serve:
        _post(serve, "logs", logs_a)
        _grpc(serve, "traces", span)
        _post(serve, "logs", _commands(range(5, 6)))  # new: stored
    assert _seqs(serve.data_dir) == [0, 1, 2, 3, 4, 5, 9]
    assert len(_ours(serve.data_dir, "spans")) == 1
    assert len(_ours(serve.data_dir, "logs")) == 7

    # Off: the same bytes are a new request.
    with serve_process(tmp_path, "--otlp-dedup-window", "0", sinks="sqlite,store") as serve:
        _post(serve, "logs", _commands(range(5, 6)))
    assert _seqs(serve.data_dir) == [0, 1, 2, 3, 4, 5, 5, 9]


def test_books_stay_exact_when_a_request_is_re_sent(tmp_path: Path) -> None:
    telemetry = otel_tele.setup(
        local=True,
        sinks=["sqlite", "store"],
        data_dir=tmp_path,
        traces_exporter="none",
        logs_exporter="none",
        metrics_exporter="none",
    )
    try:
        ingest = OtlpIngest(telemetry, recent=RecentRequests(60))
        body = _commands(range(4))
        request = logs_service_pb2.ExportLogsServiceRequest.FromString(body)
        first = ingest.ingest("logs", request, key=ingest.key("logs", body))
        again = ingest.ingest("logs", request, key=ingest.key("logs", body))
        assert first == again and first.rejected == 0
        assert telemetry.force_flush(10_000)
        assert ingest.recent is not None and ingest.recent.duplicates == {"logs": 1}
        assert ingest._observe_duplicates(None)[0].value == 1  # type: ignore[arg-type]  # on /metrics
        for sink in ("otlp-receiver", "sqlite", "store"):
            books = stats_of(telemetry, sink, "logs")
            assert books.emitted == books.exported == 4, books
    finally:
        telemetry.shutdown(10_000)
    assert _seqs(tmp_path) == [0, 1, 2, 3]


def test_window_expiry_bounds_persistence_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "recent.jsonl"
    recent = RecentRequests(60, max_entries=3, path=path)
    keys = [digest("logs", bytes([i])) for i in range(5)]
    for key in keys:
        assert recent.begin(key) is None
        recent.finish(key, 1, "one refused")
    assert len(recent) == 3  # the oldest forgotten first
    assert recent.begin(keys[0]) is None  # forgotten: taken again
    recent.forget(keys[0])  # … and refused as a whole (e.g. queues full): its retry must be taken
    assert recent.begin(keys[0]) is None
    recent.forget(keys[0])
    twin = recent.begin(keys[4], "logs")
    assert twin is not None and (twin.rejected, twin.message) == (1, "one refused")
    recent.save()
    path.write_text(path.read_text() + 'not json\n{"d": "zz"}\n')  # damage is skipped
    reloaded = RecentRequests(60, path=path)
    assert len(reloaded) == 3 and reloaded.begin(keys[4]) is not None
    assert len(RecentRequests(60, path=tmp_path / "missing.jsonl")) == 0
    # Past the window, an entry is gone (loaded or live).
    aged = RecentRequests(0.0, path=path)
    assert len(aged) == 0


@pytest.mark.parametrize("window", ["-1", "nan"])
def test_a_bad_window_is_refused(tmp_path: Path, window: str) -> None:
    import subprocess
    import sys

    cli = str(Path(sys.executable).parent / "otel-tele")
    done = subprocess.run(
        [cli, "serve", "--otlp-grpc", "127.0.0.1:0", "--otlp-dedup-window", window],
        capture_output=True,
        text=True,
        timeout=60,
        env={"OTEL_TELE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2 and "--otlp-dedup-window" in done.stderr


@pytest.mark.parametrize("taken", [True, False])
def test_a_twin_in_flight_waits_for_the_first(taken: bool) -> None:
    """A retry that arrives while the first copy is still being ingested gets the first's answer
    (taken), or is ingested itself when the first was refused as a whole."""
    import threading

    recent = RecentRequests(60)
    key = digest("traces", b"request")
    assert recent.begin(key, "traces") is None  # the first copy, in flight
    got: list[object] = []
    twin = threading.Thread(target=lambda: got.append(recent.begin(key, "traces")))
    twin.start()
    if taken:
        recent.finish(key, 2, "two refused")
    else:
        recent.forget(key)
    twin.join(60)
    (answer,) = got
    if taken:
        assert answer is not None and (answer.rejected, answer.message) == (2, "two refused")  # type: ignore[attr-defined]
        assert recent.duplicates == {"traces": 1}
    else:
        assert answer is None and recent.duplicates == {}


def test_compaction_keeps_one_copy_of_a_span_stored_twice(tmp_path: Path) -> None:
    """The crash case the window cannot cover (a retry after kill -9 is stored again): spans carry an
    identity (trace_id, span_id), and a compaction keeps the first row of each."""
    from otel_tele.exporters.store import _parts, _rows, maintain
    from otel_tele.exporters.store.schema import SCHEMAS

    from otel_tele import _otlp_decode as decode

    def part(*names: str) -> None:
        request = trace_service_pb2.ExportTraceServiceRequest()
        spans = request.resource_spans.add().scope_spans.add().spans
        for name in names:
            span = spans.add(name=name, start_time_unix_nano=T0, end_time_unix_nano=T0 + 1)
            span.trace_id = bytes.fromhex("5b8efff798038103d269b633813fc60c")
            span.span_id = (int(name.rsplit("-", 1)[1]) + 1).to_bytes(8, "big")
        decoded, failed = decode.spans(request)
        rows, failed_rows = _rows.convert(decoded, _rows.span_row, "span")
        assert failed == failed_rows == 0
        _parts.publish(root, "spans", [_rows.table_of("spans", rows)], fsync=False)

    root = tmp_path / "store"
    part("a-0", "a-1")
    part("a-1", "a-2")  # a-1 again: the re-sent request, after the window was lost
    part("a-2", "a-3")
    report = maintain(root, retention_days=30, min_parts=2, target_bytes=1 << 30, fsync=False)
    assert report["spans"]["duplicates"] == 2 and report["spans"]["rows"] == 4
    table = ds.dataset(
        root / "spans", format="parquet", partitioning="hive", schema=SCHEMAS["spans"]
    ).to_table()
    assert sorted(table.column("name").to_pylist()) == ["a-0", "a-1", "a-2", "a-3"]
