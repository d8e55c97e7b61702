"""No code change: ``opentelemetry-instrument`` with otel-tele's distro, configurator and exporters."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otel_tele._components import ComponentUnavailable, load_sink_class

from ._otlp_receiver import OtlpReceiver
from ._services import start_rotel

APP = textwrap.dedent("""
    import logging
    from opentelemetry import metrics, trace
    import otel_tele

    tracer = trace.get_tracer("plain.app")
    with tracer.start_as_current_span("nightly-job"):
        metrics.get_meter("plain.app").create_counter("app.jobs").add(1)
        telemetry = otel_tele.get_telemetry()
        assert telemetry is not None, "the configurator did not run setup()"
        telemetry.events.emit("robot.system.event", {"robot.system.event_type": "connect",
                                                     "robot.source": "dds", "robot.system.level": "info"})
    print("app done")
""")


def _instrument(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    app = tmp_path / "app.py"
    app.write_text(APP)
    bindir = Path(sys.executable).parent
    full_env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ.get('PATH', '')}",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        **env,
    }
    return subprocess.run(
        [str(bindir / "opentelemetry-instrument"), sys.executable, str(app)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def test_opentelemetry_instrument_ships_to_the_collector(tmp_path: Path) -> None:
    """An unmodified app run under opentelemetry-instrument exports all three signals via OTLP."""
    receiver = OtlpReceiver()
    service, grpc_port, _http = start_rotel(tmp_path, forward_to=f"http://127.0.0.1:{receiver.port}")
    try:
        done = _instrument(
            tmp_path,
            {
                "OTEL_SERVICE_NAME": "nightly",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{grpc_port}",
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_METRICS_EXPORTER": "otlp",
                "OTEL_LOGS_EXPORTER": "otlp",
            },
        )
        assert done.returncode == 0 and "app done" in done.stdout, done.stderr
        assert receiver.wait_for(lambda: bool(receiver.traces and receiver.logs and receiver.metrics))
    finally:
        service.stop()
        receiver.stop()
    assert [(res["service.name"], span.name) for res, span in receiver.spans()] == [
        ("nightly", "nightly-job")
    ]
    assert [rec.event_name for _res, rec in receiver.log_records()] == ["robot.system.event"]
    assert "app.jobs" in receiver.metric_names()


def test_our_exporter_selected_by_name(tmp_path: Path) -> None:
    """OTEL_LOGS_EXPORTER=otel_tele_sqlite (constructed with no arguments) writes the robot database."""
    try:
        load_sink_class("sqlite")
    except ComponentUnavailable as exc:
        pytest.skip(str(exc))
    data_dir = tmp_path / "data"
    done = _instrument(
        tmp_path,
        {
            "OTEL_TELE_DATA_DIR": str(data_dir),
            "OTEL_TELE_SINKS": "none",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "otel_tele_sqlite",
        },
    )
    assert done.returncode == 0, done.stderr
    [db] = list(data_dir.rglob("telemetry.db"))  # beside it: the digest sidecar, telemetry.digest.db
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT event_type, source FROM system_events").fetchall()
    assert rows == [("connect", "dds")]
