"""TelemetryQuery: the spec's and the original API's semantics, read-only, and bad input."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from otel_tele.exporters.sqlite import init_db

from otel_tele.robot_query import TelemetryQuery, parse_time

T0 = 1_700_000_000.0


def build(db: Path) -> Path:
    """Joint 2 follows its commands with a 0.2 s lag; the gripper too; requests with known latencies."""
    conn = init_db(db)
    commands: list[tuple[Any, ...]] = []
    feedback: list[tuple[Any, ...]] = []
    for i in range(10):
        ts = T0 + i
        commands.append((ts, 0.0, i, 1, 2, 10.0 * i, None, f"c{i}", 8))
        commands.append((ts + 0.5, 0.0, 100 + i, 1, 6, 30.0 + i, None, None, 8))
    commands.append((T0 + 20, 0.0, 999, 5, None, None, '{"enable":true}', None, 8))
    for k in range(200):  # feedback every 50 ms; joint 2 reaches the target 0.2 s after each command
        ts = T0 + k * 0.05
        second = int((ts - T0 - 0.2) // 1)
        angle2 = 10.0 * second + (1.0 if second % 2 else 0.0) if second >= 0 else 0.0
        feedback.append((ts, 0.0, k, 1, 0.0, 0.0, angle2, 0.0, 0.0, 0.0, 29.0, None, None, None, None, None))
    feedback.append((T0 + 5.01, 0.0, 999, 3, None, None, None, None, None, None, None, 1, 1, 0, 1, 1))
    conn.executemany(
        "INSERT INTO dds_commands (ts, ts_mono, seq, funcode, joint_id, target_value, data_json, "
        "correlation_id, raw_len) VALUES (?,?,?,?,?,?,?,?,?)",
        commands,
    )
    conn.executemany(
        "INSERT INTO dds_feedback (ts, ts_mono, seq, funcode, angle0, angle1, angle2, angle3, angle4, "
        "angle5, angle6, power_status, enable_status, error_status, recv_status, exec_status) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        feedback,
    )
    conn.executemany(
        "INSERT INTO web_requests (ts, endpoint, method, response_ms, status_code, ok) VALUES (?,?,?,?,?,?)",
        [(T0 + i, "/api/a" if i < 100 else "/api/b", "GET", float(i + 1), 200, 1) for i in range(120)],
    )
    conn.executemany(
        "INSERT INTO smoother_state (ts, joint_id, target, current, sent, step_size) VALUES (?,?,?,?,?,?)",
        [(T0 + i, i % 2, 1.0, 0.5, 0.6, 0.1) for i in range(10)],
    )
    conn.executemany(
        "INSERT INTO camera_health (ts, camera_id, actual_fps) VALUES (?,?,?)",
        [(T0 + i, f"cam{i % 2}", 30.0 - i) for i in range(6)],
    )
    conn.executemany(
        "INSERT INTO system_events (ts, event_type, source, detail, level) VALUES (?,?,?,?,?)",
        [
            (T0, "connect", "dds", "up", "info"),
            (T0 + 30, "error", "dds", "fault", "error"),
            (T0 + 31, "estop", "web", "pressed", "warning"),
        ],
    )
    conn.close()
    return db


@pytest.fixture
def q(tmp_path: Path) -> TelemetryQuery:
    """A query object over the fixture database."""
    return TelemetryQuery(build(tmp_path / "telemetry.db"))


def test_tracking_error_pairs_closest_feedback(q: TelemetryQuery) -> None:
    """Each command meets the feedback closest to ts + delay: odd seconds overshoot by exactly 1 deg."""
    result = q.get_tracking_error(2, delay_s=0.2)
    assert result["samples"] == 10
    assert [e["error"] for e in result["errors"]] == pytest.approx([0.0, 1.0] * 5)
    assert result["mean_error_deg"] == pytest.approx(0.5) and result["max_error_deg"] == pytest.approx(1.0)
    assert all(abs(e["feedback_ts"] - e["ts"] - 0.2) < 0.026 for e in result["errors"])
    narrowed = q.get_tracking_error(2, (T0 + 2, T0 + 4), 0.2)
    assert narrowed["samples"] == 3
    assert q.get_tracking_error(2, start=T0 + 2, end=T0 + 4)["samples"] == 3
    assert q.get_tracking_error(3)["samples"] == 0


def test_gripper_log_unions_commands_and_feedback(q: TelemetryQuery) -> None:
    """Gripper commands (joint 6) and angle6 feedback, newest first, tagged by source."""
    log = q.get_gripper_log(limit=1000)
    assert {row["source"] for row in log} == {"command", "feedback"}
    assert sum(row["source"] == "command" for row in log) == 10 and len(log) == 210
    assert [row["ts"] for row in log] == sorted((row["ts"] for row in log), reverse=True)
    assert len(q.get_gripper_log(limit=5)) == 5


def test_latency_stats_percentiles(q: TelemetryQuery) -> None:
    """Nearest-rank percentiles overall and by endpoint."""
    stats = q.get_web_latency_stats()
    assert stats["count"] == 120 and stats["p50_ms"] == 60.0 and stats["p95_ms"] == 114.0
    assert stats["p99_ms"] == 119.0 and stats["mean_ms"] == pytest.approx(60.5)
    assert stats["by_endpoint"]["/api/a"]["p50_ms"] == 50.0 and stats["by_endpoint"]["/api/b"]["count"] == 20
    assert q.get_web_latency_stats((T0 + 100, T0 + 200))["count"] == 20


def test_summary_counts_and_rates(q: TelemetryQuery) -> None:
    """Session summary across tables; the original summary() and db stats agree."""
    summary = q.get_session_summary()
    assert summary == q.summary()
    assert summary["total_commands"] == 21 and summary["total_feedback"] == 201
    assert summary["total_events"] == 3 and summary["error_count"] == 1
    assert summary["first_event_ts"] == T0 and summary["last_event_ts"] == T0 + 119
    assert summary["command_rate_hz"] == pytest.approx(21 / 119)
    stats = q.get_db_stats()
    assert stats["dds_commands"] == 21 and stats["web_requests"] == 120 and stats["db_size_bytes"] > 0


def test_original_api_spellings(q: TelemetryQuery) -> None:
    """start=/end= as epoch or ISO, get_system_events, get_command_count, tail, latest feedback."""
    iso = datetime.fromtimestamp(T0 + 5, tz=UTC).isoformat()
    assert q.get_command_count() == 21
    assert q.get_command_count(start=iso) == q.get_command_count(start=T0 + 5) == 11
    assert q.get_command_count(start=iso.replace("+00:00", "")) == 11  # naive ISO = UTC
    assert [e["event_type"] for e in q.get_system_events(level="error")] == ["error"]
    assert [e["event_type"] for e in q.tail(limit=2)] == ["estop", "error"]
    assert [e["event_type"] for e in q.tail(event_types=["connect"])] == ["connect"]
    latest = q.get_latest_feedback()
    assert latest is not None and latest["seq"] == 199
    history = q.get_joint_history(2, start=T0, end=T0 + 1, limit=5)
    assert len(history) == 5 and set(history[0]) == {"ts", "angle"}
    assert q.get_joint_history(2, (T0, T0 + 1))[0]["ts"] <= T0 + 1
    assert len(q.get_all_joints_snapshot(limit=3)) == 3
    assert [r["joint_id"] for r in q.get_smoother_state(joint=1)] == [1] * 5
    assert set(q.get_smoother_history(0)[0]) == {"ts", "target", "current", "sent", "step_size"}
    assert {r["camera_id"] for r in q.get_camera_health("cam1")} == {"cam1"}
    assert len(q.get_web_request_latency(endpoint="/api/b")) == 20
    assert [r["funcode"] for r in q.get_commands(funcode=5)] == [5]
    assert q.get_command_rate(window_seconds=10)["total_commands"] == 0  # historic data: nothing recent
    assert q.get_feedback_rate(10.0)["rate_hz"] == 0.0


def test_read_only_and_errors(tmp_path: Path, q: TelemetryQuery) -> None:
    """mode=ro; missing file, corrupt file, bad names and SQL-looking parameters are clear errors."""
    with pytest.raises(sqlite3.OperationalError):
        q._conn.execute("DELETE FROM dds_commands")
    with pytest.raises(FileNotFoundError):
        TelemetryQuery(tmp_path / "missing.db")
    (tmp_path / "junk.db").write_bytes(b"\x00junk" * 1000)
    with pytest.raises(sqlite3.DatabaseError):
        TelemetryQuery(tmp_path / "junk.db")
    with pytest.raises(ValueError):
        q.rows("sqlite_master")
    with pytest.raises(ValueError):
        q.get_joint_history(7)
    with pytest.raises(ValueError):
        q.get_commands(start="yesterday-ish")
    with pytest.raises(ValueError):
        q.get_commands(limit=-1)
    assert q.get_web_requests(endpoint="x' OR '1'='1") == []
    assert q.get_events(event_type="error'; DROP TABLE system_events; --") == []
    assert q.get_db_stats()["system_events"] == 3
    with TelemetryQuery(q.db_path) as again:
        assert again.rows("system_events", 1)[0]["event_type"] == "estop"


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_parse_time_round_trips(seconds: float) -> None:
    """Epoch numbers, numeric strings and ISO strings of the same instant agree."""
    iso = datetime.fromtimestamp(seconds, tz=UTC).isoformat()
    assert parse_time(seconds) == seconds
    assert parse_time(repr(seconds)) == seconds
    assert parse_time(iso) == pytest.approx(seconds, abs=1e-6)


@given(st.text())
def test_parse_time_never_crashes(text: str) -> None:
    """Any string is a time or a ValueError, nothing else."""
    try:
        value = parse_time(text)
    except ValueError:
        return
    assert isinstance(value, float)


def test_live_database_is_readable_while_written(tmp_path: Path) -> None:
    """WAL: a reader opened while a writer holds a transaction still answers."""
    db = build(tmp_path / "telemetry.db")
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO system_events (ts, event_type, source) VALUES (?, 'pending', 'x')", (time.time(),)
    )
    with TelemetryQuery(db) as q:
        assert q.get_db_stats()["system_events"] == 3
    writer.execute("COMMIT")
    writer.close()
