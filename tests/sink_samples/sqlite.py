"""Sample driver of the SQLite sink for the generic sink contract suite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from otel_tele.instrumentation.dds import TelemetryCollector

import otel_tele


def exercise(telemetry: otel_tele.Telemetry, n: int) -> None:
    """``n`` DDS commands through the robot collector bound to ``telemetry``."""
    collector = TelemetryCollector(telemetry=telemetry)
    for i in range(n):
        collector.log_command(seq=i, funcode=1, joint_id=i % 7, target_value=float(i), data={"i": i})


def stored(data_dir: Path, telemetry: otel_tele.Telemetry) -> int:
    """Rows in ``dds_commands`` of ``data_dir/telemetry.db``."""
    path = data_dir / "telemetry.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM dds_commands").fetchone()[0])
