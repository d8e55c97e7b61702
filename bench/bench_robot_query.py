"""Every TelemetryQuery method on a database with ``--rows`` (default 1M) rows per table; target ≤ 50 ms.

The database is written with plain SQL (fast), then the sink opens it once, which builds the digest
sidecar (timed). Calls the digest serves are also timed with ``exact=True`` (reading every row), the
obvious alternative, interleaved call by call in the same run.

.venv/bin/python bench/bench_robot_query.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from otel_tele.exporters.sqlite import SqliteSink, init_db

from bench._harness import Report
from otel_tele.robot_query import TelemetryQuery

TARGET_MS = 50.0
ROUNDS = 7
#: The calls the digest answers: also timed on the exact path.
DIGEST_CALLS = ("get_command_count", "get_web_latency_stats", "get_session_summary")


def build(db: Path, rows: int) -> float:
    """``rows`` rows per table over the last ``rows / 200`` seconds (200 Hz), like a long session."""
    rng = random.Random(1)
    conn = init_db(db)
    end = time.time()
    start = end - rows / 200
    step = (end - start) / rows
    chunk = 50_000
    for lo in range(0, rows, chunk):
        ids = range(lo, min(rows, lo + chunk))
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO dds_commands (ts, ts_mono, seq, funcode, joint_id, target_value, "
            "correlation_id, raw_len) VALUES (?,?,?,?,?,?,?,?)",
            [
                (
                    start + i * step,
                    i * step,
                    i,
                    1 if i % 10 else 5,
                    i % 7,
                    rng.uniform(-90, 90),
                    f"{i:012x}",
                    48,
                )
                for i in ids
            ],
        )
        conn.executemany(
            "INSERT INTO dds_feedback (ts, ts_mono, seq, funcode, angle0, angle1, angle2, angle3, "
            "angle4, angle5, angle6) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [(start + i * step, i * step, i, 1 if i % 50 else 3, *(rng.uniform(-90, 90),) * 7) for i in ids],
        )
        conn.executemany(
            "INSERT INTO smoother_state (ts, joint_id, target, current, sent, step_size) "
            "VALUES (?,?,?,?,?,?)",
            [(start + i * step, i % 7, 1.0, 0.5, 0.6, 0.1) for i in ids],
        )
        conn.executemany(
            "INSERT INTO web_requests (ts, endpoint, method, response_ms, status_code, ok) "
            "VALUES (?,?,?,?,?,?)",
            [(start + i * step, f"/api/e{i % 8}", "POST", rng.expovariate(0.2), 200, 1) for i in ids],
        )
        conn.executemany(
            "INSERT INTO camera_health (ts, camera_id, actual_fps) VALUES (?,?,?)",
            [(start + i * step, f"cam{i % 3}", 29.5) for i in ids],
        )
        conn.executemany(
            "INSERT INTO system_events (ts, event_type, source, detail, level) VALUES (?,?,?,?,?)",
            [
                (
                    start + i * step,
                    ("state_update", "cmd_ack", "error")[i % 3],
                    "dds",
                    "x",
                    "error" if i % 3 == 2 else "info",
                )
                for i in ids
            ],
        )
        conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return end


def calls(q: TelemetryQuery, end: float, hour: tuple[float, float]) -> dict[str, Callable[[], Any]]:
    return {
        "get_commands()": lambda: q.get_commands(),
        "get_commands(funcode=5)": lambda: q.get_commands(funcode=5),
        "get_command_rate()": lambda: q.get_command_rate(),
        "get_feedback_rate()": lambda: q.get_feedback_rate(),
        "get_command_count()": lambda: q.get_command_count(),
        "get_command_count(last hour)": lambda: q.get_command_count(start=hour[0]),
        "get_joint_history(2)": lambda: q.get_joint_history(2),
        "get_all_joints_snapshot()": lambda: q.get_all_joints_snapshot(),
        "get_latest_feedback()": lambda: q.get_latest_feedback(),
        "get_gripper_log()": lambda: q.get_gripper_log(),
        "get_tracking_error(2)": lambda: q.get_tracking_error(2),
        "get_smoother_history(3)": lambda: q.get_smoother_history(3),
        "get_smoother_state()": lambda: q.get_smoother_state(),
        "get_web_requests()": lambda: q.get_web_requests(),
        "get_web_requests(endpoint)": lambda: q.get_web_requests(endpoint="/api/e3"),
        "get_web_latency_stats() all": lambda: q.get_web_latency_stats(),
        "get_web_latency_stats(last hour)": lambda: q.get_web_latency_stats(hour),
        "get_web_latency_stats(last 5 min)": lambda: q.get_web_latency_stats((end - 300, end)),
        "get_web_latency_stats(1 min, exact)": lambda: q.get_web_latency_stats((end - 60, end)),
        "get_camera_health('cam1')": lambda: q.get_camera_health("cam1"),
        "get_events(type='error')": lambda: q.get_events("error"),
        "get_system_events(level='error')": lambda: q.get_system_events(level="error"),
        "tail()": lambda: q.tail(),
        "get_session_summary()": lambda: q.get_session_summary(),
        "get_session_summary(last hour)": lambda: q.get_session_summary(start=hour[0]),
        "get_db_stats()": lambda: q.get_db_stats(),
        "rows('system_events', 100)": lambda: q.rows("system_events", 100),
    }


def write_cost(tmp: Path, digest: bool, attempt: int, table: str, batches: int = 40) -> float:
    """µs per row the sink spends writing ``batches`` batches of 512 ``table`` rows."""
    from otel_tele._mapping import Rows

    sink = SqliteSink(Path(tmp) / f"w{attempt}-{digest}-{table}.db", retention_days=0)
    sink.open()
    sink.digest.attached = digest  # off: the rows alone (the DB stays attached, unused)
    rng = random.Random(attempt)
    now = time.time()
    t = 0.0
    for b in range(batches):
        rows = Rows()
        if table == "web_requests":
            rows.by_table[table] = [
                (now + b + i / 512, f"/api/e{i % 8}", "POST", None, rng.expovariate(0.2), 200, None, 1)
                for i in range(512)
            ]
        else:
            rows.by_table[table] = [
                (now + b + i / 512, 0.0, i, 1, i % 7, 1.0, None, None, 48) for i in range(512)
            ]
        start = time.perf_counter()
        sink._write(rows)
        t += time.perf_counter() - start
    sink.close()
    return t / (batches * 512) * 1e6


def timed(call: Callable[[], Any]) -> float:
    t = time.perf_counter()
    call()
    return (time.perf_counter() - t) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    report = Report(
        "robot_query",
        f"TelemetryQuery at {args.rows:,} rows per table ({ROUNDS} calls each), target ≤ 50 ms median",
    )
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "telemetry.db"
        t0 = time.perf_counter()
        end = build(db, args.rows)
        report.note(f"built {6 * args.rows:,} rows in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        sink = SqliteSink(db, retention_days=0)
        sink.open()
        sink.close()
        report.note(f"digest built from the whole database at sink open in {time.perf_counter() - t0:.1f} s")
        hour = (end - 3600, end)
        with TelemetryQuery(db) as q, TelemetryQuery(db, exact=True) as exact:
            for name, call in calls(q, end, hour).items():
                baseline = calls(exact, end, hour)[name] if name.startswith(DIGEST_CALLS) else None
                samples: list[float] = []
                exact_samples: list[float] = []
                for _ in range(ROUNDS):
                    samples.append(timed(call))
                    if baseline is not None:
                        exact_samples.append(timed(baseline))
                median = statistics.median(samples)
                row: dict[str, Any] = {
                    "method": name,
                    "min_ms": min(samples),
                    "median_ms": median,
                    "mean_ms": statistics.fmean(samples),
                    "max_ms": max(samples),
                    "meets_target": "yes" if median <= TARGET_MS else "NO",
                }
                if exact_samples:
                    row["exact_median_ms"] = statistics.median(exact_samples)
                    row["speedup"] = row["exact_median_ms"] / median
                report.add(**row)
        for table in ("dds_commands", "web_requests"):
            pairs = [
                (write_cost(Path(tmp), True, a, table), write_cost(Path(tmp), False, a, table))
                for a in range(3)
            ]
            report.add(
                method=f"sink write, 512-row {table} batches (µs/row)",
                median_ms=None,
                with_digest_us=statistics.median(p[0] for p in pairs),
                without_digest_us=statistics.median(p[1] for p in pairs),
                ratio_rounds=[round(p[0] / p[1], 2) for p in pairs],
            )
    report.finish()


if __name__ == "__main__":
    main()
