"""``otel-tele serve``: OTLP from a foreign SDK (OpenTelemetry JS) and from our own exporter lands
in the sinks through the same mapping."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import otel_tele
from otel_tele._components import ComponentUnavailable, load_sink_class
from otel_tele._receiver import OtlpGrpcReceiver

from ._services import NODE, NODE_DIR, Service, free_port, needs_node, node_clients


@pytest.fixture
def sqlite_sink_available() -> None:
    try:
        load_sink_class("sqlite")
    except ComponentUnavailable as exc:
        pytest.skip(str(exc))


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_python_otlp_into_receiver_reaches_sqlite(tmp_path: Path, sqlite_sink_available: None) -> None:
    """Events exported over OTLP by another pipeline are written by the receiver's sqlite sink."""
    server = otel_tele.setup(
        local=True,
        sinks=["sqlite"],
        data_dir=tmp_path,
        traces_exporter="none",
        logs_exporter="none",
        metrics_exporter="none",
    )
    receiver = OtlpGrpcReceiver(server, "127.0.0.1:0")
    client = otel_tele.setup(
        local=True,
        service_name="remote",
        otlp_endpoint=f"http://127.0.0.1:{receiver.port}",
        traces_exporter="otlp",
        logs_exporter="otlp",
        metrics_exporter="none",
        sinks="none",
    )
    try:
        for seq in range(100):
            client.events.emit(
                "robot.dds.command",
                {
                    "robot.dds.seq": seq,
                    "robot.dds.funcode": 1,
                    "robot.joint.id": seq % 7,
                    "robot.target_value": seq / 2,
                },
            )
        assert client.force_flush(10_000)
        assert server.force_flush(10_000)
    finally:
        client.shutdown(5_000)
        receiver.stop()
        server.shutdown(5_000)
    rows = _rows(
        tmp_path / "telemetry.db",
        "SELECT seq, funcode, joint_id, target_value FROM dds_commands ORDER BY seq",
    )
    assert rows == [(seq, 1, seq % 7, seq / 2) for seq in range(100)]


@needs_node
def test_foreign_js_sdk_through_otel_tele_serve(tmp_path: Path, sqlite_sink_available: None) -> None:
    """The OpenTelemetry JS SDK sends to `otel-tele serve`; its event records become sqlite rows."""
    node_clients()
    port = free_port()
    cli = str(Path(sys.executable).parent / "otel-tele")
    serve = Service(
        "serve",
        [cli, "serve", "--otlp-grpc", f"127.0.0.1:{port}"],
        tmp_path,
        env={
            "OTEL_TELE_DATA_DIR": str(tmp_path / "data"),
            "OTEL_TELE_SINKS": "sqlite",
            "OTEL_METRICS_EXPORTER": "none",
        },
    )
    try:
        serve.wait_ready(port)
        done = subprocess.run(
            [NODE or "node", "client.js"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"},
        )
        assert done.returncode == 0, done.stderr
    finally:
        serve.stop()  # SIGTERM: serve flushes its sinks before exiting
    assert serve.process.returncode == 0, serve.log_text()
    db = tmp_path / "data" / "telemetry.db"
    assert _rows(db, "SELECT event_type, source, detail, level FROM system_events") == [
        ("estop", "web", "operator pressed stop", "warning")
    ]
    # JavaScript numbers arrive as doubles; the vocabulary types them back to integers.
    assert _rows(db, "SELECT seq, funcode, joint_id, target_value FROM dds_commands") == [(7, 1, 6, 12.5)]


def test_serve_mounts_every_query_router(tmp_path: Path) -> None:
    """`otel-tele serve --http` answers the robot, inference and capture routes."""
    import httpx

    grpc_port, http_port = free_port(), free_port()
    cli = str(Path(sys.executable).parent / "otel-tele")
    serve = Service(
        "serve",
        [cli, "serve", "--otlp-grpc", f"127.0.0.1:{grpc_port}", "--http", f"127.0.0.1:{http_port}"],
        tmp_path,
        env={
            "OTEL_TELE_DATA_DIR": str(tmp_path / "data"),
            "OTEL_TELE_SINKS": "none",
            "OTEL_METRICS_EXPORTER": "none",
        },
    )
    try:
        serve.wait_ready(grpc_port, http_port)
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=30) as client:
            assert client.get("/api/debug/query", params={"table": "sqlite_master"}).status_code == 400
            footprint = client.get("/telemetry/footprint")
            assert footprint.status_code == 200 and "table_sizes" in footprint.json()
            runs = client.get("/v1/runs")
            assert runs.status_code == 200
    finally:
        serve.stop()
    assert serve.process.returncode == 0, serve.log_text()
