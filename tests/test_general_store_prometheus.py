"""Issue 15 §2: metrics another process sends to ``otel-tele serve`` appear on serve's ``/metrics``
(before, they were decoded and kept nowhere unless they were flow metrics). A real serve, the real
OTLP/HTTP metric exporter, and a scrape parsed by prometheus_client's own parser."""

from __future__ import annotations

from pathlib import Path

import httpx
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families

from otel_tele._received_metrics import ReceivedMetrics

from ._robot_helpers import wait_for
from ._serve import serve_process
from ._services import free_port


def _scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    except httpx.HTTPError:  # not listening yet: serve prints its start line once it is
        return {}
    return {
        sample.name: [*[(s.labels, s.value) for s in family.samples if s.name == sample.name]]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_sent_to_serve_are_on_its_prometheus_endpoint(tmp_path: Path) -> None:
    prometheus_port = free_port()
    env = {"OTEL_METRICS_EXPORTER": "", "OTEL_EXPORTER_PROMETHEUS_PORT": str(prometheus_port)}
    with serve_process(tmp_path, sinks="store", env=env) as serve:
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{serve.otlp_http_url}/v1/metrics"), export_interval_millis=3_600_000
        )
        provider = MeterProvider(resource=Resource.create({"service.name": "shop"}), metric_readers=[reader])
        meter = provider.get_meter("shop")
        orders = meter.create_counter("shop.orders")
        orders.add(3, {"region": "eu"})
        meter.create_gauge("shop.queue.depth").set(7, {"queue": "a"})
        meter.create_histogram("shop.latency").record(12.0)
        assert provider.force_flush(10_000)
        orders.add(2, {"region": "eu"})  # cumulative: the next export says 5
        provider.shutdown()
        found = wait_for(
            lambda: (
                (seen := _scrape(prometheus_port)).get("shop_orders_total")
                == [({"service_name": "shop", "region": "eu"}, 5.0)]
                and seen
            ),
            what="the received counter on /metrics",
        )
        assert found["shop_queue_depth"] == [({"service_name": "shop", "queue": "a"}, 7.0)]
        assert found["shop_latency_count"] == [({"service_name": "shop"}, 1.0)]
        assert found["shop_latency_sum"] == [({"service_name": "shop"}, 12.0)]
        buckets = {labels["le"]: value for labels, value in found["shop_latency_bucket"]}
        assert buckets["10.0"] == 0 and buckets["25.0"] == 1 and buckets["+Inf"] == 1
        # serve's own families are still there, untouched
        assert any(name.startswith("otel_tele_sink_") for name in found)


def test_delta_sums_accumulate_and_series_are_bounded() -> None:
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        Metric,
        MetricsData,
        NumberDataPoint,
        ResourceMetrics,
        ScopeMetrics,
        Sum,
    )
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    def export(value: int, label: str, name: str = "jobs.done") -> MetricsData:
        point = NumberDataPoint({"k": label}, 0, 1, value)
        data = Sum([point], AggregationTemporality.DELTA, True)
        scope = ScopeMetrics(InstrumentationScope("x"), [Metric(name, None, None, data)], None)
        return MetricsData([ResourceMetrics(Resource.create({"service.name": "w"}), [scope], None)])

    received = ReceivedMetrics(max_series=2)
    for value in (1, 2, 3):
        received.update(export(value, "a"))
    received.update(export(1, "b"))
    received.update(export(1, "c"))  # a third series: over the bound, counted and left out
    received.update(export(4, "a", "otel_tele.sink.exported"))  # also over the bound
    (family,) = list(received.collect())
    samples = {s.labels["k"]: s.value for s in family.samples if s.name.endswith("_total")}
    assert samples == {"a": 6.0, "b": 1.0}
    assert received.dropped_series == 2
    roomy = ReceivedMetrics()
    roomy.update(export(4, "a", "otel_tele.sink.exported"))
    assert [f.name for f in roomy.collect()] == ["received_otel_tele_sink_exported"]
