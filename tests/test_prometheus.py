"""Live rates on /metrics, scraped by a real Prometheus server and queried with rate()."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import otel_tele
from otel_tele import Telemetry

from ._services import Service, free_port, prometheus_binary

# In CI a missing binary is a failure (.ci/run installs it), never a silent skip.
pytestmark = pytest.mark.skipif(
    prometheus_binary() is None and not os.environ.get("CI"), reason="Debian package prometheus not installed"
)


@pytest.fixture
def emitting_service() -> Iterator[Telemetry]:
    """A pipeline serving /metrics on a free port while a thread emits robot commands."""
    telemetry = otel_tele.setup(
        local=True, service_name="arm", metrics_exporter="prometheus", prometheus_port=free_port()
    )
    stop = threading.Event()

    def emit() -> None:
        seq = 0
        while not stop.wait(0.01):  # a 100 Hz controller
            telemetry.events.emit("robot.dds.command", {"robot.dds.funcode": 1, "robot.dds.seq": seq})
            seq += 1

    thread = threading.Thread(target=emit, daemon=True)
    thread.start()
    try:
        yield telemetry
    finally:
        stop.set()
        thread.join()
        telemetry.shutdown(5_000)


def _wait_until_ready(port: int, timeout_s: float = 60) -> None:
    """Prometheus answers 503 until its storage is open; /-/ready says when it is."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)  # polling a readiness endpoint


def _query(port: int, promql: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


def test_prometheus_computes_a_positive_rate(emitting_service: Telemetry, tmp_path: Path) -> None:
    """Prometheus scrapes our endpoint and rate(robot_dds_commands_total[..]) is positive."""
    assert emitting_service.prometheus_address is not None
    target = f"127.0.0.1:{emitting_service.prometheus_address[1]}"
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: arm\n    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    server = Service(
        "prometheus",
        [
            prometheus_binary() or "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp_path,
    )
    try:
        server.wait_ready(port)
        _wait_until_ready(port)
        deadline = time.monotonic() + 60
        rate = 0.0
        while time.monotonic() < deadline:
            result = _query(port, 'rate(robot_dds_commands_total{job="arm"}[5s])')
            if result:
                rate = float(result[0]["value"][1])  # type: ignore[index]
                if rate > 0:
                    break
            time.sleep(0.5)  # waiting for Prometheus' next scrape; the loop ends on the condition
        assert rate > 0, server.log_text()[-2000:]
        [up] = _query(port, 'up{job="arm"}')
        assert up["value"][1] == "1"  # type: ignore[index]
        dropped = _query(port, 'otel_tele_sink_dropped_total{otel_tele_sink="events"}')
        assert dropped and float(dropped[0]["value"][1]) == 0  # type: ignore[index]
    finally:
        server.stop()


def test_metrics_endpoint_serves_event_fed_counters(emitting_service: Telemetry) -> None:
    """/metrics exposes the vocabulary's counters and the self-metrics in Prometheus text format."""
    assert emitting_service.prometheus_address is not None
    host, port = emitting_service.prometheus_address
    emitting_service.events.emit("robot.dds.command", {"robot.dds.funcode": 5})
    assert emitting_service.events.force_flush(5_000)
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert "robot_dds_commands_total{" in text and 'robot_dds_funcode="5"' in text
    assert "otel_tele_sink_exported_total{" in text and 'otel_tele_sink="events"' in text


def test_port_in_use_is_a_clear_logged_error(caplog: pytest.LogCaptureFixture) -> None:
    """A taken port logs which port and how to fix it; setup() still succeeds."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="otel_tele"):
            telemetry = otel_tele.setup(local=True, metrics_exporter="prometheus", prometheus_port=port)
        try:
            assert telemetry.prometheus_address is None
            assert f"127.0.0.1:{port}" in caplog.text and "OTEL_EXPORTER_PROMETHEUS_PORT" in caplog.text
            telemetry.events.emit("robot.dds.command", {"robot.dds.funcode": 1})
            assert telemetry.force_flush(5_000)
        finally:
            telemetry.shutdown(5_000)
