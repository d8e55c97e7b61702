"""Issue 15 §2: every span, log record and metric point that reaches ``otel-tele serve`` is stored in
the general store, and reads back field for field with pyarrow and with DuckDB (no otel-tele needed).

Real clients: the OTLP/gRPC and OTLP/HTTP exporters of opentelemetry-exporter-otlp, under the SDK's
own providers, sending to a real ``otel-tele serve``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.dataset as ds
import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import AlwaysOnExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from otel_tele.exporters.store import schema

from ._robot_helpers import wait_for
from ._serve import Serve, serve_process

LOG_TIME = 1_700_000_000_123_456_789


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    with serve_process(
        tmp_path_factory.mktemp("store"), sinks="store", env={"OTEL_TELE_STORE_FLUSH_SECONDS": "0.05"}
    ) as server:
        yield server


def _exporters(serve: Serve, transport: str) -> tuple[Any, Any, Any]:
    if transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        endpoint = f"127.0.0.1:{serve.grpc_port}"
        return (
            OTLPSpanExporter(endpoint=endpoint, insecure=True),
            OTLPLogExporter(endpoint=endpoint, insecure=True),
            OTLPMetricExporter(endpoint=endpoint, insecure=True),
        )
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetrics
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans

    url = serve.otlp_http_url
    return (
        HttpSpans(endpoint=f"{url}/v1/traces"),
        HttpLogs(endpoint=f"{url}/v1/logs"),
        HttpMetrics(endpoint=f"{url}/v1/metrics"),
    )


def _send(serve: Serve, transport: str) -> dict[str, Any]:
    """One of everything the store keeps, from a client whose service name is unique to the test;
    returns what was sent (ids as hex)."""
    span_exporter, log_exporter, metric_exporter = _exporters(serve, transport)
    resource = Resource.create({"service.name": f"client-{transport}", "deployment.environment": "test"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(
        resource=resource, metric_readers=[reader], exemplar_filter=AlwaysOnExemplarFilter()
    )
    tracer = tracer_provider.get_tracer("store.test", "1.2.3")
    meter = meter_provider.get_meter("store.test", "1.2.3")
    logger = logger_provider.get_logger("store.test", "1.2.3")
    sent: dict[str, Any] = {}
    with tracer.start_as_current_span("linked") as linked:
        pass
    with tracer.start_as_current_span(
        "parent",
        kind=SpanKind.SERVER,
        attributes={"http.route": "/x", "n": 7, "ratio": 0.5, "ok": True, "tags": ["a", "b"]},
        links=[Link(linked.get_span_context(), {"link.why": "follows"})],
    ) as parent:
        parent.add_event("started", {"step": 1})
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.ERROR, "it broke"))
            logger.emit(
                LogRecord(
                    timestamp=LOG_TIME,
                    body="hello store",
                    severity_number=SeverityNumber.WARN,
                    severity_text="WARN",
                    attributes={"user.id": 42, "nan": float("nan")},
                    event_name="store.test.event",
                )
            )
            logger.emit(LogRecord(body=["structured", 2], severity_number=SeverityNumber.INFO))
            meter.create_histogram("store.test.latency", unit="ms").record(12.5, {"route": "/x"})
        sent["child"] = child.get_span_context()
    sent["parent"] = parent.get_span_context()
    sent["linked"] = linked.get_span_context()
    meter.create_counter("store.test.requests", description="requests").add(3, {"route": "/x"})
    meter.create_up_down_counter("store.test.inflight").add(-2)
    meter.create_gauge("store.test.temperature").set(21.5)
    for provider in (tracer_provider, logger_provider):
        assert provider.force_flush(10_000)  # type: ignore[attr-defined]
        provider.shutdown()  # type: ignore[attr-defined]
    meter_provider.shutdown()  # one collection and export (a force_flush before would be a second)
    return sent


def _rows(root: Path, dataset: str, service: str) -> list[dict[str, Any]]:
    """A dataset's rows of one client, read with pyarrow (timestamps as int nanoseconds)."""
    if not list((root / dataset).glob("*/*.parquet")):
        return []
    table = ds.dataset(root / dataset, partitioning="hive").to_table()
    rows: list[dict[str, Any]] = schema.with_int_times(table).to_pylist()
    return [row for row in rows if row["service_name"] == service]


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_every_field_sent_over_otlp_is_stored_and_reads_back_with_pyarrow_and_duckdb(
    serve: Serve, transport: str
) -> None:
    sent = _send(serve, transport)
    service = f"client-{transport}"
    root = serve.data_dir / "store"
    assert wait_for(
        lambda: (
            len(_rows(root, "spans", service)) == 3
            and len(_rows(root, "logs", service)) == 2
            and len(_rows(root, "metrics", service)) == 4
        ),
        what="every record in the store",
    )
    spans = {row["name"]: row for row in _rows(root, "spans", service)}
    parent, child, linked = spans["parent"], spans["child"], spans["linked"]
    assert parent["trace_id"] == _hex(sent["parent"].trace_id, 32) == child["trace_id"]
    assert parent["span_id"] == _hex(sent["parent"].span_id, 16)
    assert child["parent_span_id"] == parent["span_id"] and parent["parent_span_id"] is None
    assert (parent["kind"], child["kind"], linked["kind"]) == ("SERVER", "CLIENT", "INTERNAL")
    assert (child["status_code"], child["status_message"]) == ("ERROR", "it broke")
    assert parent["status_code"] == "UNSET"
    assert parent["end_time"] - parent["start_time"] == parent["duration_ns"] > 0
    assert json.loads(parent["attributes"]) == {
        "http.route": "/x",
        "n": 7,
        "ratio": 0.5,
        "ok": True,
        "tags": ["a", "b"],
    }
    (event,) = parent["events"]
    assert event["name"] == "started" and json.loads(event["attributes"]) == {"step": 1}
    assert parent["start_time"] <= event["time"] <= parent["end_time"]
    (link,) = parent["links"]
    assert link["trace_id"] == _hex(sent["linked"].trace_id, 32)
    assert link["span_id"] == _hex(sent["linked"].span_id, 16)
    assert json.loads(link["attributes"]) == {"link.why": "follows"}
    assert parent["trace_flags"] == 1
    assert json.loads(parent["resource"])["deployment.environment"] == "test"
    assert (parent["scope_name"], parent["scope_version"]) == ("store.test", "1.2.3")
    assert parent["date"] == str(parent["date"])  # the hive partition, a day

    logs = {row["body_type"]: row for row in _rows(root, "logs", service)}
    text, structured = logs["string"], logs["array"]  # the OTLP kind of the body (schema 2)
    assert text["body"] == "hello store" and json.loads(structured["body"]) == ["structured", 2]
    assert (text["severity_number"], text["severity_text"]) == (SeverityNumber.WARN.value, "WARN")
    assert structured["severity_number"] == SeverityNumber.INFO.value
    assert text["event_name"] == "store.test.event"
    assert text["trace_id"] == child["trace_id"] and text["span_id"] == child["span_id"]
    assert text["time"] == LOG_TIME and text["observed_time"] > 0  # nanoseconds, exact
    assert structured["time"] is None  # the sender set none
    attrs = json.loads(text["attributes"])
    assert attrs["user.id"] == 42 and math.isnan(attrs["nan"])
    assert (text["scope_name"], text["scope_version"]) == ("store.test", "1.2.3")

    metrics = {row["name"]: row for row in _rows(root, "metrics", service)}
    requests = metrics["store.test.requests"]
    assert requests["type"] == "sum" and requests["temporality"] == "cumulative"
    assert requests["is_monotonic"] is True
    assert (requests["value_int"], requests["value_double"], requests["description"]) == (3, 3.0, "requests")
    assert json.loads(requests["attributes"]) == {"route": "/x"}
    assert requests["time"] >= requests["start_time"] > 0
    inflight = metrics["store.test.inflight"]
    assert (inflight["is_monotonic"], inflight["value_int"]) == (False, -2)
    gauge = metrics["store.test.temperature"]
    assert gauge["type"] == "gauge" and gauge["temporality"] is None
    assert (gauge["value_double"], gauge["value_int"]) == (21.5, None)
    latency = metrics["store.test.latency"]
    assert (latency["type"], latency["unit"]) == ("histogram", "ms")
    assert (latency["count"], latency["sum"]) == (1, 12.5)
    assert (latency["min"], latency["max"]) == (12.5, 12.5)
    assert len(latency["bucket_counts"]) == len(latency["explicit_bounds"]) + 1
    assert sum(latency["bucket_counts"]) == 1
    assert latency["bucket_counts"][latency["explicit_bounds"].index(25.0)] == 1  # (10, 25]
    (exemplar,) = latency["exemplars"]
    assert exemplar["value"] == 12.5 and exemplar["span_id"] == child["span_id"]
    assert exemplar["trace_id"] == child["trace_id"]

    # DuckDB, straight from the files: the same values, attribute keys with dots quoted. A connection
    # of its own: a result left on the shared default connection would break other tests' queries.
    con = duckdb.connect()
    glob = schema.dataset_glob(root, "spans")
    route, kind, events = con.execute(
        f"""SELECT attributes->>'$."http.route"', kind, len(events)
            FROM read_parquet('{glob}', hive_partitioning = true)
            WHERE service_name = ? AND name = 'parent'""",
        [service],
    ).fetchall()[0]
    assert (route, kind, events) == ("/x", "SERVER", 1)
    (joined,) = con.execute(
        f"""SELECT count(*) FROM read_parquet('{schema.dataset_glob(root, "logs")}') l
            JOIN read_parquet('{glob}') s ON l.span_id = s.span_id
            WHERE s.service_name = ? AND s.name = 'child'""",
        [service],
    ).fetchall()[0]
    assert joined == 2
    bounds, counts = con.execute(
        f"""SELECT explicit_bounds, bucket_counts FROM read_parquet('{schema.dataset_glob(root, "metrics")}')
            WHERE service_name = ? AND type = 'histogram'""",
        [service],
    ).fetchall()[0]
    assert (bounds, counts) == (latency["explicit_bounds"], latency["bucket_counts"])


def test_a_lone_surrogate_and_nan_sent_over_otlp_are_stored(serve: Serve) -> None:
    """The receiver repairs text that is not UTF-8; the store keeps it, its neighbours too; NaN and
    infinite gauge points are stored as such."""
    import httpx
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

    metrics = metrics_service_pb2.ExportMetricsServiceRequest()
    resource_metrics = metrics.resource_metrics.add()
    kv = resource_metrics.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "client-surrogate"
    metric = resource_metrics.scope_metrics.add().metrics.add()
    metric.name = "nan.gauge"
    for value in (float("nan"), float("inf"), 1.0):
        metric.gauge.data_points.add(as_double=value, time_unix_nano=1)
    reply = httpx.post(
        f"{serve.otlp_http_url}/v1/metrics",
        content=metrics.SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
    )
    assert reply.status_code == 200, reply.text
    request = logs_service_pb2.ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    kv = resource_logs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "client-surrogate"
    records = resource_logs.scope_logs.add().log_records
    for body in ("before", "MARK_", "after"):
        records.add().body.string_value = body
    raw = request.SerializeToString().replace(b"MARK_", b"\xed\xa0\x80ok")  # CESU-8 lone surrogate
    reply = httpx.post(
        f"{serve.otlp_http_url}/v1/logs", content=raw, headers={"content-type": "application/x-protobuf"}
    )
    assert reply.status_code == 200, reply.text
    root = serve.data_dir / "store"
    assert wait_for(lambda: len(_rows(root, "logs", "client-surrogate")) == 3, what="three log rows")
    bodies = sorted(row["body"] for row in _rows(root, "logs", "client-surrogate"))
    assert bodies == ["\\ud800ok", "after", "before"]
    assert wait_for(lambda: len(_rows(root, "metrics", "client-surrogate")) == 3, what="three points")
    values = [row["value_double"] for row in _rows(root, "metrics", "client-surrogate")]
    assert sum(math.isnan(v) for v in values) == 1 and sorted(v for v in values if not math.isnan(v)) == [
        1.0,
        math.inf,
    ]
