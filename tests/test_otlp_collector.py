"""Traces, metrics and logs reach a real OTLP collector (rotel), over gRPC and HTTP; a dead
collector neither delays startup nor hangs shutdown."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import otel_tele
from otel_tele import Telemetry

from ._otlp_receiver import OtlpReceiver
from ._services import Service, free_port, start_rotel


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[OtlpReceiver, int, int]]:
    """rotel on free ports, forwarding to an in-test OTLP receiver: (receiver, grpc port, http port)."""
    receiver = OtlpReceiver()
    service, grpc_port, http_port = start_rotel(tmp_path, forward_to=f"http://127.0.0.1:{receiver.port}")
    try:
        yield receiver, grpc_port, http_port
    finally:
        service.stop()
        receiver.stop()


def _drive(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer("tests.collector")
    with tracer.start_as_current_span("arm.move") as span:
        span.set_attribute("robot.joint.id", 3)
        telemetry.events.emit("robot.dds.command", {"robot.dds.funcode": 1, "robot.joint.id": 3})
    telemetry.meter("tests.collector").create_counter("demo.requests", unit="{request}").add(
        2, {"route": "/x"}
    )
    assert telemetry.force_flush(20_000)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_all_three_signals_reach_the_collector(
    collector: tuple[OtlpReceiver, int, int], protocol: str
) -> None:
    """Spans, event log records and metrics arrive with their names, attributes and resource."""
    receiver, grpc_port, http_port = collector
    port = grpc_port if protocol == "grpc" else http_port
    telemetry = otel_tele.setup(
        local=True,
        service_name="arm-server",
        service_version="9.9",
        otlp_endpoint=f"http://127.0.0.1:{port}",
        otlp_protocol=protocol,
        traces_exporter="otlp",
        metrics_exporter="otlp",
        logs_exporter="otlp",
    )
    try:
        _drive(telemetry)
        assert receiver.wait_for(lambda: bool(receiver.traces and receiver.logs and receiver.metrics))
    finally:
        telemetry.shutdown(10_000)
    [(resource, span)] = list(receiver.spans())
    assert span.name == "arm.move"
    assert resource["service.name"] == "arm-server" and resource["service.version"] == "9.9"
    assert resource["process.pid"] > 0 and resource["host.name"]
    assert any(kv.key == "robot.joint.id" and kv.value.int_value == 3 for kv in span.attributes)
    [(log_resource, record)] = list(receiver.log_records())
    assert record.event_name == "robot.dds.command" and log_resource["service.name"] == "arm-server"
    assert record.trace_id == span.trace_id and record.span_id == span.span_id
    assert {"demo.requests", "robot.dds.commands", "otel_tele.sink.exported"} <= receiver.metric_names()
    assert all(r["service.name"] == "arm-server" for r in receiver.metric_resources())


def _bounded(fn, limit_s: float):  # type: ignore[no-untyped-def]
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    thread.join(limit_s)
    assert not thread.is_alive(), "hung past its timeout"
    return out[0]


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_unreachable_collector_neither_delays_startup_nor_hangs_shutdown(protocol: str) -> None:
    """With nothing listening, setup() returns at once and shutdown() returns by its deadline."""
    dead = f"http://127.0.0.1:{free_port()}"
    telemetry = _bounded(
        lambda: otel_tele.setup(
            local=True,
            otlp_endpoint=dead,
            otlp_protocol=protocol,
            traces_exporter="otlp",
            metrics_exporter="otlp",
            logs_exporter="otlp",
            otlp_timeout_millis=30_000,
        ),
        10,
    )
    tracer = telemetry.tracer("t")
    for _ in range(100):
        with tracer.start_as_current_span("lost"):
            telemetry.events.emit("robot.system.event", {"robot.system.event_type": "estop"})
    _bounded(lambda: telemetry.force_flush(500), 10)
    _bounded(lambda: telemetry.shutdown(1_000), 10)
    for snap in telemetry.sink_stats():
        assert snap.reconciles, snap


def test_collector_outage_is_counted_not_hidden(tmp_path: Path) -> None:
    """Records sent while the collector is down show up as failed or dropped in the self-metrics."""
    dead_port = free_port()
    telemetry = otel_tele.setup(
        local=True,
        otlp_endpoint=f"http://127.0.0.1:{dead_port}",
        traces_exporter="otlp",
        otlp_timeout_millis=500,
    )
    try:
        with telemetry.tracer("t").start_as_current_span("lost"):
            pass
        telemetry.force_flush(5_000)
        otlp = next(s for s in telemetry.sink_stats() if s.sink == "otlp" and s.signal == "traces")
        assert otlp.emitted == 1 and otlp.exported == 0 and otlp.failed + otlp.dropped + otlp.queued == 1
    finally:
        telemetry.shutdown(1_000)


def test_service_helper_stops_by_pid(tmp_path: Path) -> None:
    """The collector process is really gone after stop()."""
    receiver = OtlpReceiver()
    service, _grpc, _http = start_rotel(tmp_path, forward_to=f"http://127.0.0.1:{receiver.port}")
    pid = service.pid
    service.stop()
    receiver.stop()
    assert isinstance(service, Service) and service.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)


def test_signal_specific_variables_take_precedence(
    collector: tuple[OtlpReceiver, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_EXPORTER_OTLP_TRACES_* beat the generic variables: with the generic endpoint dead, traces
    still arrive over HTTP at their own endpoint."""
    receiver, _grpc_port, http_port = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{http_port}/v1/traces")
    telemetry = otel_tele.setup(
        local=True, traces_exporter="otlp", logs_exporter="none", metrics_exporter="none"
    )
    try:
        with telemetry.tracer("t").start_as_current_span("routed"):
            pass
        assert telemetry.force_flush(10_000)
        assert receiver.wait_for(lambda: bool(receiver.traces))
    finally:
        telemetry.shutdown(5_000)
    assert [span.name for _res, span in receiver.spans()] == ["routed"]
