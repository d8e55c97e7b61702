"""The robot digest sidecar: fast answers equal exact ones (percentiles within ALPHA), it follows
inserts from any writer and retention, survives restarts and a kill, and is rebuilt when missing,
stale or corrupt — while telemetry.db keeps exactly the spec's six tables and indexes."""

from __future__ import annotations

import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from otel_tele.exporters.sqlite import SqliteSink, init_db
from otel_tele.exporters.sqlite.maintenance import Retention
from otel_tele.exporters.sqlite.schema import ALPHA, INDEXES, TABLES, digest_path

import otel_tele._robot_digest as fast
from otel_tele.robot_query import TelemetryQuery
from otel_tele.semconv import robot as r
from tests._robot_helpers import sqlite_pipeline

NOW = time.time()
ENDPOINTS = ("/api/a", "/api/b", "/api/c")


def insert_random(db: Path, rng: random.Random, n: int, *, start: float, span: float) -> None:
    """Requests and events written by a foreign writer (plain SQL), latencies over 6 decades."""
    conn = init_db(db)
    requests = []
    for _ in range(n):
        value: float | None = rng.lognormvariate(1.0, 1.5)
        pick = rng.random()
        if pick < 0.01:
            value = 0.0
        elif pick < 0.02:
            value = None
        elif pick < 0.03:
            value = rng.uniform(1e-4, 1e-2)
        requests.append((start + rng.uniform(0, span), rng.choice(ENDPOINTS), value))
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO web_requests (ts, endpoint, response_ms) VALUES (?, ?, ?)", requests)
    conn.executemany(
        "INSERT INTO system_events (ts, event_type, source, level) VALUES (?, 'e', 's', ?)",
        [(start + rng.uniform(0, span), rng.choice(("info", "error", "warning"))) for _ in range(n)],
    )
    conn.executemany(
        "INSERT INTO dds_commands (ts, ts_mono, funcode) VALUES (?, 0, 1)",
        [(start + rng.uniform(0, span),) for _ in range(n)],
    )
    conn.execute("COMMIT")
    conn.close()


def exact_latency(db: Path, lo: float | None, hi: float | None) -> dict[str, Any]:
    """An independent exact computation: every value, nearest rank."""
    conn = sqlite3.connect(db)
    sql = "SELECT endpoint, response_ms FROM web_requests WHERE response_ms IS NOT NULL"
    params: list[float] = []
    if lo is not None:
        sql, params = sql + " AND ts >= ?", [*params, lo]
    if hi is not None:
        sql, params = sql + " AND ts <= ?", [*params, hi]
    by: dict[str, list[float]] = {}
    for endpoint, value in conn.execute(sql, params):
        by.setdefault(endpoint, []).append(value)
    conn.close()

    def block(values: list[float]) -> dict[str, Any]:
        if not values:
            return {"count": 0}
        values = sorted(values)
        at = {q: values[max(1, math.ceil(q * len(values))) - 1] for q in (0.5, 0.95, 0.99)}
        return {"count": len(values), "mean": sum(values) / len(values), "max": values[-1], "q": at}

    return {"all": block([v for vs in by.values() for v in vs]), **{e: block(v) for e, v in by.items()}}


def assert_close(got: dict[str, Any], want: dict[str, Any], rel: float) -> None:
    assert got["count"] == want["count"]
    if not want["count"]:
        assert got["p50_ms"] is None and got["max_ms"] is None
        return
    assert got["max_ms"] == want["max"]
    assert got["mean_ms"] == pytest.approx(want["mean"], rel=1e-9)
    for q, key in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
        exact = want["q"][q]
        assert abs(got[key] - exact) <= rel * abs(exact) + 1e-12, (key, got[key], exact)


def check_windows(db: Path, windows: list[tuple[float | None, float | None]], *, approx: bool = True) -> None:
    with TelemetryQuery(db) as q:
        for lo, hi in windows:
            got = q.get_web_latency_stats(start=lo, end=hi)
            want = exact_latency(db, lo, hi)
            if approx and want["all"]["count"]:  # the fast path really answered
                assert got["percentile_rel_error"] == ALPHA
            assert_close(got, want["all"], got["percentile_rel_error"])
            assert set(got["by_endpoint"]) == set(want) - {"all"}
            for endpoint, block in got["by_endpoint"].items():
                assert_close(block, want[endpoint], got["percentile_rel_error"])


def check_counts(db: Path, windows: list[tuple[float | None, float | None]]) -> None:
    conn = sqlite3.connect(db)
    with TelemetryQuery(db) as q:
        for lo, hi in windows:
            clause = (
                " AND ".join(c for c, v in (("ts >= :lo", lo), ("ts <= :hi", hi)) if v is not None) or "1"
            )
            window = {"lo": lo, "hi": hi}
            summary = q.get_session_summary(start=lo, end=hi)
            assert (
                summary["total_commands"]
                == conn.execute(f"SELECT count(*) FROM dds_commands WHERE {clause}", window).fetchone()[0]
            )
            assert (
                summary["total_events"]
                == conn.execute(f"SELECT count(*) FROM system_events WHERE {clause}", window).fetchone()[0]
            )
            assert (
                summary["error_count"]
                == conn.execute(
                    f"SELECT count(*) FROM system_events WHERE level = 'error' AND {clause}", window
                ).fetchone()[0]
            )
            assert q.get_command_count(start=lo, end=hi) == summary["total_commands"]
    conn.close()


@pytest.fixture
def no_exact_shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small test windows would otherwise be answered exactly (as they should be in production)."""
    monkeypatch.setattr(fast, "EXACT_LIMIT", 0)


def random_windows(rng: random.Random, start: float, span: float, k: int) -> list[tuple[Any, Any]]:
    windows: list[tuple[Any, Any]] = [(None, None), (start + span / 2, None), (None, start + span / 3)]
    for _ in range(k):
        a, b = sorted(rng.uniform(start - 100, start + span + 100) for _ in range(2))
        windows.append((a, b))
    return windows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_path_equals_exact_on_random_data(tmp_path: Path, seed: int, no_exact_shortcut: None) -> None:
    db = tmp_path / "telemetry.db"
    rng = random.Random(seed)
    start = NOW - 3 * 86400
    insert_random(db, rng, 6000, start=start, span=3 * 86400)
    sink = SqliteSink(db, retention_days=0)
    sink.open()  # builds the digest from what is there
    assert sink.digest.rebuilds == 1
    windows = random_windows(rng, start, 3 * 86400, 25)
    check_windows(db, windows)
    check_counts(db, windows)
    sink.close()


def test_small_windows_are_exact(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    insert_random(db, random.Random(5), 3000, start=NOW - 7200, span=7200)
    SqliteSink(db, retention_days=0).open()
    with TelemetryQuery(db) as q:
        assert q.get_web_latency_stats()["percentile_rel_error"] == 0.0
    check_windows(db, [(None, None), (NOW - 3600, NOW)], approx=False)


def test_follows_sink_writes_foreign_rows_and_retention(tmp_path: Path, no_exact_shortcut: None) -> None:
    """Rows through the real pipeline, rows a foreign writer adds (read raw above the watermark,
    then folded in by the sink's next batch), and retention passes that delete the largest latency."""
    db = tmp_path / "telemetry.db"
    rng = random.Random(9)
    insert_random(db, rng, 3000, start=NOW - 10 * 86400, span=9 * 86400)
    conn = init_db(db)
    conn.execute(
        "INSERT INTO web_requests (ts, endpoint, response_ms) VALUES (?, '/api/a', 1e9)", (NOW - 9.5 * 86400,)
    )
    conn.close()
    telemetry = sqlite_pipeline(tmp_path, blrp_schedule_delay_millis=50)
    for i in range(300):
        telemetry.events.emit(
            r.WEB_REQUEST, {r.ENDPOINT: ENDPOINTS[i % 3], r.METHOD: "GET", r.RESPONSE_MS: 0.5 + i}
        )
    telemetry.force_flush(10_000)
    windows = [*random_windows(rng, NOW - 10 * 86400, 10 * 86400, 10), (NOW - 60, None)]
    check_windows(db, windows)
    insert_random(db, rng, 500, start=NOW - 86400, span=86400)  # not yet in the digest
    check_windows(db, windows)
    check_counts(db, windows)
    telemetry.events.emit(r.WEB_REQUEST, {r.ENDPOINT: "/api/a", r.RESPONSE_MS: 3.0})
    telemetry.force_flush(10_000)
    digest = sqlite3.connect(digest_path(db))
    main = sqlite3.connect(db)
    assert (
        digest.execute("SELECT max_id FROM watermark WHERE tbl = 'web_requests'").fetchone()
        == main.execute("SELECT max(id) FROM web_requests").fetchone()
    )
    telemetry.shutdown(10_000)
    sink = SqliteSink(db, retention_days=7)
    sink.retention = Retention(7, batch_rows=200, observer=sink)
    sink.open()  # the first retention pass runs here, in batches of 200
    conn = sink.open()
    while sink.retention.run(conn):
        pass
    assert main.execute("SELECT count(*) FROM web_requests WHERE response_ms = 1e9").fetchone()[0] == 0
    assert sink.digest.rebuilds == 0
    check_windows(db, windows)
    check_counts(db, windows)
    sink.close()
    # reopened: in step, so no rebuild
    again = SqliteSink(db, retention_days=0)
    again.open()
    assert again.digest.rebuilds == 0
    again.close()
    main.close()
    digest.close()


def reopen_and_check(db: Path, windows: list[tuple[Any, Any]]) -> int:
    """Open the sink (which checks the digest), then compare fast and exact; returns rebuilds."""
    sink = SqliteSink(db, retention_days=0)
    sink.open()
    sink.close()
    check_windows(db, windows)
    check_counts(db, windows)
    return sink.digest.rebuilds


def test_rebuilt_when_missing_stale_or_corrupt(tmp_path: Path, no_exact_shortcut: None) -> None:
    db = tmp_path / "telemetry.db"
    insert_random(db, random.Random(4), 2000, start=NOW - 86400, span=86400)
    windows = [(None, None), (NOW - 40000, NOW - 1000)]
    SqliteSink(db, retention_days=0).open()
    side = digest_path(db)
    assert side.is_file() and side.name == "telemetry.digest.db"

    # stale: rows deleted behind the sink's back, in the middle (the watermark does not see it)
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM web_requests WHERE id % 7 = 0 AND id > 10")
    conn.execute("DELETE FROM system_events WHERE id % 5 = 0 AND id > 10")
    conn.commit()
    assert reopen_and_check(db, windows) == 1

    # newest rows gone (a digest ahead of its database): readers answer exactly meanwhile
    conn.execute("DELETE FROM web_requests WHERE id > (SELECT max(id) - 50 FROM web_requests)")
    conn.commit()
    with TelemetryQuery(db) as q:
        assert q.get_web_latency_stats()["percentile_rel_error"] == 0.0
    check_windows(db, windows, approx=False)
    conn.close()

    for damage in ("missing", "garbage"):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{side}{suffix}").unlink(missing_ok=True)
        if damage == "garbage":
            side.write_bytes(b"not a database" * 500)
        with TelemetryQuery(db) as q:  # no usable digest: exact, no error
            assert q.get_web_latency_stats()["percentile_rel_error"] == 0.0
        assert reopen_and_check(db, windows) == 1


def test_telemetry_db_keeps_exactly_the_spec_schema(tmp_path: Path) -> None:
    telemetry = sqlite_pipeline(tmp_path)
    telemetry.events.emit(r.WEB_REQUEST, {r.ENDPOINT: "/api/a", r.RESPONSE_MS: 3.0})
    telemetry.force_flush(10_000)
    telemetry.shutdown(10_000)
    conn = sqlite3.connect(tmp_path / "telemetry.db")
    names = dict(
        conn.execute("SELECT name, type FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
    )
    assert names == {**dict.fromkeys(TABLES, "table"), **dict.fromkeys(INDEXES, "index")}
    conn.close()
    assert digest_path(tmp_path / "telemetry.db").is_file()


_WRITER = """
import sys, time, random
from otel_tele.exporters.sqlite import SqliteSink
from otel_tele._mapping import Rows
sink = SqliteSink(sys.argv[1], retention_days=0)
rng = random.Random(1)
i = 0
print("ready", flush=True)
while True:
    values = [(time.time() - rng.uniform(0, 3600), "/api/k", "GET", None, rng.expovariate(0.1), 200, None, 1)
              for _ in range(50)]
    rows = Rows()
    rows.by_table["web_requests"] = values
    sink._write(rows)
    i += 1
"""


def test_kill_during_writes_leaves_a_usable_digest(tmp_path: Path, no_exact_shortcut: None) -> None:
    """SIGKILL a process writing batches; afterwards readers are exact or fast-and-right, and the
    next sink open leaves the digest in step."""
    db = tmp_path / "telemetry.db"
    init_db(db).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db)], stdout=subprocess.PIPE, env={**os.environ}, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    conn = sqlite3.connect(db)
    deadline = time.monotonic() + 60
    while conn.execute("SELECT count(*) FROM web_requests").fetchone()[0] < 3000:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)  # waiting on the writer's progress, not asserting a duration
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    conn.close()
    with TelemetryQuery(db) as q:
        stats = q.get_web_latency_stats()
    want = exact_latency(db, None, None)
    assert_close(stats, want["all"], stats["percentile_rel_error"])
    sink = SqliteSink(db, retention_days=0)
    sink.open()
    sink.close()
    check_windows(db, [(None, None), (NOW - 1800, NOW)])


def test_counts_from_written_rows_equal_a_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sink counts ``dds_*`` rows from the rows it wrote (no read-back) only when they are the
    rows above the watermark: with foreign rows in between, odd times (NaN, ±inf, negative, -0.0,
    past the last unit, integers) and a refused row, the counts equal those rebuilt from the table."""
    from otel_tele.exporters.sqlite import _digest

    from otel_tele._mapping import Rows

    counted_from_rows = []
    units = _digest._units
    monkeypatch.setattr(_digest, "_units", lambda *a: counted_from_rows.append(1) or units(*a))

    db = tmp_path / "telemetry.db"
    sink = SqliteSink(db, retention_days=0)
    sink.open()
    rng = random.Random(3)
    odd = [math.nan, math.inf, -math.inf, -5.0, -0.0, 0.0, 16.0 * 2.0**42, 16.0 * 2.0**42 - 1, 15.999, 16]

    def command(ts: Any) -> tuple[Any, ...]:
        return (ts, 1.0, 1, 1, 1, 0.5, None, None, 3)

    def feedback(ts: Any) -> tuple[Any, ...]:
        return (ts, 1.0, 1, 1, *([0.5] * 7), None, None, None, None, None)

    for batch in range(40):
        rows = Rows()
        times = [NOW - rng.uniform(0, 86400) for _ in range(rng.randint(1, 60))]
        if batch % 5 == 0:
            times += odd
        rows.by_table["dds_commands"] = [command(ts) for ts in times]
        rows.by_table["dds_feedback"] = [feedback(ts) for ts in times[:7]]
        if batch % 7 == 3:
            rows.by_table["dds_commands"].append(command(None))  # NOT NULL: refused alone
        if batch % 4 == 1:  # a foreign writer's rows between two batches
            conn = init_db(db)
            conn.executemany(INSERT_COMMAND, [command(NOW - i) for i in range(3)])
            conn.close()
        sink._write(rows)
    sink.close()
    counts = "SELECT series, unit, n FROM counts WHERE n != 0 ORDER BY series, unit"
    with sqlite3.connect(digest_path(db)) as conn:
        incremental = conn.execute(counts).fetchall()
    digest_path(db).unlink()
    rebuilt = SqliteSink(db, retention_days=0)
    rebuilt.open()
    rebuilt.close()
    assert rebuilt.digest.rebuilds == 1
    with sqlite3.connect(digest_path(db)) as conn:
        assert conn.execute(counts).fetchall() == incremental
    assert {series for series, _, _ in incremental} == {"dds_commands", "dds_feedback"}
    assert 40 < len(counted_from_rows) < 80  # taken for most batches, not where foreign rows came


INSERT_COMMAND = (
    "INSERT INTO dds_commands (ts, ts_mono, seq, funcode, joint_id, target_value, data_json, "
    "correlation_id, raw_len) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def test_a_burst_folds_in_later_transactions_and_before_retention(tmp_path: Path) -> None:
    """Rows written while more wait behind them (``fold=False``) are folded in by a later
    transaction — with every table they were left in — or before a retention pass deletes some of
    them: the counts then equal those rebuilt from the table, and the watermarks its marks."""
    from otel_tele.exporters.sqlite.schema import COVERED, main_mark

    from otel_tele._mapping import Rows

    db = tmp_path / "telemetry.db"
    sink = SqliteSink(db, retention_days=1)
    conn = sink.open()

    def command(ts: float) -> tuple[Any, ...]:
        return (ts, 1.0, 1, 1, 1, 0.5, None, None, 3)

    def system(ts: float) -> tuple[Any, ...]:
        return (ts, "estop", "arm", None, None, None, "error")

    for batch in range(30):
        rows = Rows()
        rows.by_table["dds_commands"] = [command(NOW - 2 * 86400 * (i % 2) - batch) for i in range(50)]
        if batch % 10 == 0:
            rows.by_table["system_events"] = [system(NOW - batch)]
        sink._write(rows, fold=batch % 12 == 11)
        if batch == 20:  # unfolded rows, some of them old enough to go
            assert sink.digest.unfolded_tables == {"dds_commands", "system_events"}
            sink._retain(conn)
    assert sink.digest.folds == 3 and sink.digest.unfolded == 6 * 50
    sink._write(Rows(by_table={"dds_commands": [command(NOW)]}))  # the burst's last transaction
    assert not sink.digest.unfolded_tables
    sink.close()
    counts = "SELECT series, unit, n FROM counts WHERE n != 0 ORDER BY series, unit"
    with sqlite3.connect(digest_path(db)) as digest, sqlite3.connect(db) as main:
        incremental = digest.execute(counts).fetchall()
        marks = {row[0]: tuple(row[1:]) for row in digest.execute("SELECT * FROM watermark")}
        assert marks == {table: main_mark(main, table) for table in COVERED}
    digest_path(db).unlink()
    rebuilt = SqliteSink(db, retention_days=0)
    rebuilt.open()
    rebuilt.close()
    with sqlite3.connect(digest_path(db)) as digest:
        assert digest.execute(counts).fetchall() == incremental
