"""Every OTLP shape is stored faithfully (issue 15 §2): exponential histograms and summaries as
metric points (with exemplars), log bodies of every AnyValue kind with their kind, the senders'
dropped-attribute/event/link counts; received metrics on ``/metrics`` named per the OpenTelemetry →
Prometheus compatibility rules (unit suffix, ``_total``), summaries as Prometheus summaries. Sent
over OTLP/HTTP to a real ``otel-tele serve``, read back with pyarrow and DuckDB."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow.dataset as ds
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from otel_tele.exporters.store.schema import dataset_glob, with_int_times
from prometheus_client.parser import text_string_to_metric_families

from otel_tele._received_metrics import family_name

from ._robot_helpers import wait_for
from ._serve import Serve, serve_process
from ._services import free_port

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")
T = 1_700_000_000_000_000_000


def _metrics() -> bytes:
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = "kinds"
    metrics = rm.scope_metrics.add().metrics
    expo = metrics.add(name="rpc.duration", unit="s", description="exponential")
    expo.exponential_histogram.aggregation_temporality = 2
    point = expo.exponential_histogram.data_points.add(
        time_unix_nano=T,
        start_time_unix_nano=T - 1,
        count=7,
        sum=3.5,
        scale=3,
        zero_count=1,
        zero_threshold=0.001,
        min=0.0,
        max=2.0,
    )
    point.positive.offset, point.negative.offset = -2, 1
    point.positive.bucket_counts.extend([1, 2, 3])
    point.negative.bucket_counts.extend([0])
    point.attributes.add(key="rpc.method").value.string_value = "get"
    exemplar = point.exemplars.add(time_unix_nano=T, as_double=1.25, trace_id=TRACE, span_id=SPAN)
    exemplar.filtered_attributes.add(key="user").value.string_value = "u1"
    summary = metrics.add(name="queue.latency", unit="ms")
    quantiles = summary.summary.data_points.add(time_unix_nano=T, count=10, sum=55.0)
    for q, v in ((0.5, 4.0), (0.99, 9.5)):
        quantiles.quantile_values.add(quantile=q, value=v)
    sent = metrics.add(name="net.sent", unit="By")
    sent.sum.aggregation_temporality, sent.sum.is_monotonic = 2, True
    sent.sum.data_points.add(time_unix_nano=T, as_int=2048)
    temperature = metrics.add(name="cpu.temperature_celsius", unit="Cel")  # the suffix is there already
    temperature.gauge.data_points.add(time_unix_nano=T, as_double=51.5)
    return request.SerializeToString()


def _bodies() -> tuple[bytes, list[tuple[str, str, Any]]]:
    """One log record per body kind, and (body_type, body text, what it decodes to) expected."""
    request = logs_service_pb2.ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.add(key="service.name").value.string_value = "kinds"
    records = rl.scope_logs.add().log_records
    expected: list[tuple[str, str, Any]] = []

    def add(set_body: Any, kind: str, text: str, value: Any) -> None:
        record = records.add(time_unix_nano=T + len(expected), dropped_attributes_count=len(expected))
        set_body(record.body)
        expected.append((kind, text, value))

    add(lambda b: setattr(b, "string_value", "plain"), "string", "plain", "plain")
    add(lambda b: setattr(b, "int_value", 42), "int", "42", 42)
    add(lambda b: setattr(b, "double_value", 1.5), "double", "1.5", 1.5)
    add(lambda b: setattr(b, "bool_value", True), "bool", "true", True)
    add(
        lambda b: setattr(b, "bytes_value", b"\x00\xffbin"),
        "bytes",
        base64.b64encode(b"\x00\xffbin").decode(),
        None,
    )

    def kvlist(body: AnyValue) -> None:
        kvs = body.kvlist_value.values
        kvs.add(key="user").value.string_value = "ada"
        kvs.add(key="n").value.int_value = 3
        nested = kvs.add(key="tags").value.array_value.values
        nested.add().string_value = "a"
        nested.add().bytes_value = b"\x01"
        kvs.add(key="inner").value.kvlist_value.values.add(key="ok").value.bool_value = False

    kv = {"user": "ada", "n": 3, "tags": ["a", "AQ=="], "inner": {"ok": False}}
    add(kvlist, "kvlist", json.dumps(kv, separators=(",", ":")), kv)

    def array(body: AnyValue) -> None:
        values = body.array_value.values
        values.add().int_value = 1
        values.add().string_value = "two"
        values.add().kvlist_value.values.add(key="three").value.double_value = 3.0

    add(array, "array", '[1,"two",{"three":3.0}]', [1, "two", {"three": 3.0}])
    return request.SerializeToString(), expected


def _span() -> bytes:
    request = trace_service_pb2.ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "kinds"
    span = rs.scope_spans.add().spans.add(
        name="dropping",
        trace_id=TRACE,
        span_id=SPAN,
        start_time_unix_nano=T,
        end_time_unix_nano=T + 10,
        dropped_attributes_count=3,
        dropped_events_count=4,
        dropped_links_count=5,
    )
    span.events.add(name="e", time_unix_nano=T + 1, dropped_attributes_count=6)
    span.links.add(trace_id=TRACE, span_id=bytes.fromhex("00000000000000aa"), dropped_attributes_count=7)
    return request.SerializeToString()


def _post(serve: Serve, path: str, body: bytes) -> None:
    reply = httpx.post(
        serve.otlp_http_url + path,
        content=body,
        headers={"content-type": "application/x-protobuf"},
        timeout=60,
    )
    assert reply.status_code == 200 and not reply.content, reply.content  # no partial success: all taken


def _rows(root: Path, dataset: str) -> list[dict[str, Any]]:
    table = ds.dataset(root / dataset, format="parquet", partitioning="hive").to_table()
    return [r for r in with_int_times(table).to_pylist() if r["service_name"] == "kinds"]


def _scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def test_every_otlp_shape_is_stored_and_exposed(tmp_path: Path) -> None:
    port = free_port()
    env = {"OTEL_METRICS_EXPORTER": "", "OTEL_EXPORTER_PROMETHEUS_PORT": str(port)}
    bodies, expected = _bodies()
    with serve_process(tmp_path, sinks="store", env=env) as serve:
        _post(serve, "/v1/metrics", _metrics())
        _post(serve, "/v1/logs", bodies)
        _post(serve, "/v1/traces", _span())
        scraped = wait_for(lambda: (seen := _scrape(port)).get("queue_latency_milliseconds_count") and seen)
    root = serve.data_dir / "store"

    # /metrics: unit suffixes and _total per the compatibility rules; the summary with its quantiles.
    assert scraped["net_sent_bytes_total"] == [({"service_name": "kinds"}, 2048.0)]
    assert scraped["cpu_temperature_celsius"] == [({"service_name": "kinds"}, 51.5)]
    assert scraped["queue_latency_milliseconds_sum"] == [({"service_name": "kinds"}, 55.0)]
    assert sorted((labels["quantile"], value) for labels, value in scraped["queue_latency_milliseconds"]) == [
        ("0.5", 4.0),
        ("0.99", 9.5),
    ]
    assert not any(name.startswith("rpc_duration") for name in scraped)  # the general store only

    metrics = {r["name"]: r for r in _rows(root, "metrics")}
    expo = metrics["rpc.duration"]
    assert (expo["type"], expo["temporality"], expo["unit"]) == ("exponential_histogram", "cumulative", "s")
    assert (expo["count"], expo["sum"], expo["min"], expo["max"]) == (7, 3.5, 0.0, 2.0)
    assert (expo["scale"], expo["zero_count"], expo["zero_threshold"]) == (3, 1, 0.001)
    assert (expo["positive_offset"], expo["positive_bucket_counts"]) == (-2, [1, 2, 3])
    assert (expo["negative_offset"], expo["negative_bucket_counts"]) == (1, [0])
    assert json.loads(expo["attributes"]) == {"rpc.method": "get"}
    (exemplar,) = expo["exemplars"]
    assert (exemplar["value"], exemplar["trace_id"], exemplar["span_id"]) == (1.25, TRACE.hex(), SPAN.hex())
    assert json.loads(exemplar["attributes"]) == {"user": "u1"}
    summary = metrics["queue.latency"]
    assert (summary["type"], summary["count"], summary["sum"]) == ("summary", 10, 55.0)
    assert summary["quantile_values"] == [{"quantile": 0.5, "value": 4.0}, {"quantile": 0.99, "value": 9.5}]
    assert metrics["net.sent"]["value_int"] == 2048

    logs = sorted(_rows(root, "logs"), key=lambda r: r["time"])
    assert [(r["body_type"], r["body"]) for r in logs] == [(kind, text) for kind, text, _ in expected]
    assert [r["dropped_attributes_count"] for r in logs] == list(range(len(expected)))
    for row, (kind, _text, value) in zip(logs, expected, strict=True):
        if kind not in ("string", "bytes"):
            assert json.loads(row["body"]) == value
    assert base64.b64decode(logs[4]["body"]) == b"\x00\xffbin"

    (span,) = _rows(root, "spans")
    assert (span["dropped_attributes_count"], span["dropped_events_count"], span["dropped_links_count"]) == (
        3,
        4,
        5,
    )
    assert span["events"][0]["dropped_attributes_count"] == 6
    assert span["links"][0]["dropped_attributes_count"] == 7

    # DuckDB reads it all without otel-tele: a kvlist body's member, the quantiles.
    user = duckdb.sql(
        f"SELECT body->>'$.user' FROM read_parquet('{dataset_glob(root, 'logs')}', hive_partitioning = true,"
        " union_by_name = true) WHERE body_type = 'kvlist'"
    ).fetchall()
    assert user == [("ada",)]
    p99 = duckdb.sql(
        "SELECT q.value FROM (SELECT unnest(quantile_values) AS q FROM read_parquet("
        f"'{dataset_glob(root, 'metrics')}', hive_partitioning = true, union_by_name = true)"
        " WHERE name = 'queue.latency') WHERE q.quantile = 0.99"
    ).fetchall()
    assert p99 == [(9.5,)]


def test_prometheus_names_follow_the_compatibility_rules() -> None:
    assert family_name("http.server.duration", "s") == ("http_server_duration_seconds", "seconds")
    assert family_name("http.server.request.size", "By") == ("http_server_request_size_bytes", "bytes")
    assert family_name("speed", "m/s") == ("speed_meters_per_second", "meters_per_second")
    assert family_name("http.requests", "{request}") == ("http_requests", "")
    assert family_name("cpu.utilization", "1") == ("cpu_utilization", "")
    assert family_name("requests_total", "s", counter=True) == ("requests_seconds", "seconds")
    assert family_name("otel_tele.sink.exported", None) == ("received_otel_tele_sink_exported", "")


def test_scrubbing_keeps_the_received_counts_and_binary_bodies() -> None:
    """The scrubber (before every sink) redacts a secret without losing what a received record
    carries besides: dropped counts, a binary body that holds no secret."""
    from otel_tele import _otlp_decode as decode
    from otel_tele._scrub import Scrubber

    request = trace_service_pb2.ExportTraceServiceRequest.FromString(_span())
    event = request.resource_spans[0].scope_spans[0].spans[0].events[0]
    event.attributes.add(key="password").value.string_value = "hunter2"
    spans, failed = decode.spans(request)
    Scrubber().spans(spans)
    (scrubbed,) = spans[0].events
    assert failed == 0 and scrubbed.attributes["password"] == "[REDACTED]"
    assert scrubbed.dropped_attributes == 6 and spans[0].dropped_links == 5

    logs, _ = decode.log_records(logs_service_pb2.ExportLogsServiceRequest.FromString(_bodies()[0]))
    Scrubber().log_records(logs)
    assert [r.log_record.body for r in logs][4] == b"\x00\xffbin"
    assert [r.dropped_attributes for r in logs] == list(range(len(logs)))
