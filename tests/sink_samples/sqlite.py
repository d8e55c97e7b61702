"""Sample driver of the SQLite sink for the generic sink contract suite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from opentelemetry._logs import LogRecord
from otel_tele.instrumentation.robot import TelemetryCollector

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


def exercise_with_poison(telemetry: otel_tele.Telemetry, n: int) -> tuple[int, int]:
    """Lone surrogates through the collector and through the OTel logs API (repaired), and a
    funcode no 64-bit column holds (rejected)."""
    collector = TelemetryCollector(telemetry=telemetry)
    half = n // 2
    exercise(telemetry, half)
    collector.log_command(seq=-1, funcode=1, data={"t": "\ud800"}, correlation_id="c\udfff")
    raw = telemetry.logger("poison")
    for attributes in ({"robot.dds.funcode": 1, "robot.data_json": "\udfff"}, {"robot.dds.funcode": 2**70}):
        raw.emit(LogRecord(event_name="robot.dds.command", attributes=attributes))
    exercise(telemetry, n - half)
    return 2, 1
