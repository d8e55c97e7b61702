"""The demo's simulated arm: realistic traffic in, meaningful query output out."""

from __future__ import annotations

from pathlib import Path

import httpx
from otel_tele.instrumentation.robot.fastapi import instrument_app

from otel_tele.demo import _robot

from ._robot_helpers import UvicornThread, count, sqlite_pipeline, wait_rows
from ._services import free_port


def test_demo_arm_fills_every_table_and_reports(tmp_path: Path) -> None:
    """A short run writes all six tables and the summary/tracking/latency outputs are filled in."""
    from otel_tele.demo.app import create_app

    telemetry = sqlite_pipeline(tmp_path)
    app = create_app()
    instrument_app(app, telemetry=telemetry)
    db = tmp_path / "telemetry.db"
    with UvicornThread(app, free_port()) as server:
        for joint in range(8):
            httpx.post(server.url + "/api/command/set-joint", json={"joint": joint, "angle": 10.0})
        lines = _robot.run(telemetry, tmp_path, seconds=2.0)
        wait_rows(telemetry, db, "web_requests", 8)
    text = "\n".join(lines)
    for table in ("dds_commands", "dds_feedback", "smoother_state", "camera_health", "system_events"):
        assert count(db, table) > 0, table
    assert count(db, "dds_feedback") >= 50  # 50 Hz for ~2 s (+ status frames)
    assert "Session Summary" in text and "Errors:         1" in text
    assert "tracking error (" in text and "Mean:" in text
    assert "/api/command/set-joint" in text or "(all)" in text
    telemetry.shutdown(10_000)
