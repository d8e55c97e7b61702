"""SQLite sink: mapping, transactions, migrations, retention, failures counted, no-argument exporters."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from otel_tele.exporters.sqlite import SchemaTooNew, SqliteLogExporter, SqliteSink, init_db
from otel_tele.exporters.sqlite.maintenance import Retention, retention_days_from_env
from otel_tele.exporters.sqlite.schema import SCHEMA_VERSION

from otel_tele import testing
from otel_tele.semconv import robot as r

from ._robot_helpers import TABLES, count, rows, sqlite_pipeline


def test_setup_pipeline_writes_data_dir_db(tmp_path: Path) -> None:
    """setup(sinks=["sqlite"]) maps robot events to rows; storage is created lazily."""
    telemetry = sqlite_pipeline(tmp_path)
    telemetry.events.emit("unrelated.event", {"x": 1})
    telemetry.force_flush(10_000)
    assert not (tmp_path / "telemetry.db").exists()  # nothing for us: no database
    telemetry.events.emit(r.SYSTEM_EVENT, {r.SYSTEM_EVENT_TYPE: "power_on", r.SOURCE: "dds"})
    telemetry.force_flush(10_000)
    assert rows(tmp_path / "telemetry.db", "system_events", "event_type, source, level") == [
        ("power_on", "dds", "info")
    ]
    description = telemetry.sinks["sqlite"].describe()
    assert description["reachable"] and description["location"].endswith("telemetry.db")
    telemetry.shutdown(10_000)


def test_init_db_adopts_original_database_and_refuses_newer(tmp_path: Path) -> None:
    """A version-0 database with the original tables is adopted; a newer schema is refused, counted."""
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE system_events (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, "
            "event_type TEXT NOT NULL, source TEXT NOT NULL, detail TEXT, data_json TEXT, "
            "correlation_id TEXT, level TEXT DEFAULT 'info')"
        )
        conn.execute("INSERT INTO system_events (ts, event_type, source) VALUES (1, 'old', 'dds')")
    init_db(db).close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert {t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")} >= set(
            TABLES
        )
        assert conn.execute("SELECT event_type FROM system_events").fetchall() == [("old",)]
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNew):
        init_db(db)
    sink = SqliteSink(db, retention_days=0)
    with testing.capture() as cap:
        from otel_tele import SinkLogExporter

        exporter = SinkLogExporter(sink)
        cap.telemetry.events.emit(r.SYSTEM_EVENT, {r.SYSTEM_EVENT_TYPE: "x", r.SOURCE: "y"})
        cap.flush()
        assert exporter.export(cap.logs()).name != "SUCCESS"
        assert sink.stats["logs"].snapshot().failed == 1


def test_corrupt_file_fails_without_raising(tmp_path: Path) -> None:
    """A file that is not a database: records counted failed, nothing raised, file untouched."""
    (tmp_path / "telemetry.db").write_bytes(b"this is not sqlite" * 100)
    telemetry = sqlite_pipeline(tmp_path)
    telemetry.events.emit(r.DDS_COMMAND, {r.FUNCODE: 1})
    telemetry.force_flush(10_000)
    stats = next(s for s in telemetry.sink_stats() if s.sink == "sqlite" and s.signal == "logs")
    assert stats.failed == 1 and stats.reconciles
    assert (tmp_path / "telemetry.db").read_bytes().startswith(b"this is not sqlite")
    telemetry.shutdown(10_000)


def test_rejected_row_does_not_sink_its_batch(tmp_path: Path) -> None:
    """One row a NOT NULL column refuses is counted; the rest of its batch is stored."""
    telemetry = sqlite_pipeline(tmp_path)
    for i in range(10):
        telemetry.events.emit(
            r.SMOOTHER_TICK,
            {
                r.JOINT_ID: i % 7,
                r.SMOOTHER_TARGET: float("nan") if i == 3 else 1.0,
                r.SMOOTHER_CURRENT: 0.0,
                r.SMOOTHER_SENT: 0.5,
            },
        )
    telemetry.events.emit(r.SMOOTHER_TICK, {r.SMOOTHER_TARGET: 1.0})  # joint_id missing
    telemetry.force_flush(10_000)
    assert count(tmp_path / "telemetry.db", "smoother_state") == 9
    stats = next(s for s in telemetry.sink_stats() if s.sink == "sqlite" and s.signal == "logs")
    assert stats.failed == 2 and stats.exported == 9 and stats.reconciles
    telemetry.shutdown(10_000)


def test_retention_deletes_old_rows_in_batches(tmp_path: Path) -> None:
    """Rows older than the retention are deleted in small batches; recent rows stay."""
    db = tmp_path / "telemetry.db"
    now = time.time()
    with init_db(db) as conn:
        conn.executemany(
            "INSERT INTO system_events (ts, event_type, source) VALUES (?, 'old', 's')",
            [(now - 10 * 86400 - i,) for i in range(250)],
        )
        conn.execute("INSERT INTO system_events (ts, event_type, source) VALUES (?, 'new', 's')", (now,))
    conn.close()
    retention = Retention(7, batch_rows=100)
    with sqlite3.connect(db, isolation_level=None) as conn:
        assert retention.run(conn) == 100
        assert retention.due(time.monotonic() + 1)  # backlog: next pass soon
        while retention.run(conn):
            pass
    assert rows(db, "system_events", "event_type") == [("new",)]
    assert retention.deleted == 250


def test_retention_runs_at_startup_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TELEMETRY_RETENTION_DAYS is read by the sink; a bad value falls back to 7."""
    db = tmp_path / "telemetry.db"
    conn = init_db(db)
    conn.execute(
        "INSERT INTO dds_commands (ts, ts_mono, funcode) VALUES (?, 0, 1)", (time.time() - 3 * 86400,)
    )
    conn.close()
    monkeypatch.setenv("TELEMETRY_RETENTION_DAYS", "2")
    SqliteSink(db).open()
    assert count(db, "dds_commands") == 0
    monkeypatch.setenv("TELEMETRY_RETENTION_DAYS", "soon")
    assert retention_days_from_env() == 7


def test_no_argument_exporter_reads_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_LOGS_EXPORTER=otel_tele_sqlite: the exporter is built with no arguments under a plain SDK."""
    monkeypatch.setenv("OTEL_TELE_DATA_DIR", str(tmp_path))
    exporter = SqliteLogExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    from opentelemetry._logs import LogRecord

    provider.get_logger("arm").emit(
        LogRecord(event_name=r.DDS_FEEDBACK, attributes={r.SEQ: 5, r.FUNCODE: 1, r.ANGLES[2]: 33.0})
    )
    provider.shutdown()
    assert rows(tmp_path / "telemetry.db", "dds_feedback", "seq, funcode, angle2") == [(5, 1, 33.0)]
    ts, ts_mono = rows(tmp_path / "telemetry.db", "dds_feedback", "ts, ts_mono")[0]
    assert ts_mono == ts  # no monotonic time from a plain record: its wall time stands in


def test_bulk_insert_stores_exactly_what_executemany_stores(tmp_path: Path) -> None:
    """Batches go in as multi-row INSERT statements; every value must come back as ``executemany``
    stores it: floats bit-exact, ±inf, NaN (as NULL), NUL and non-ASCII text, big integers, booleans."""
    import math
    import random
    import struct

    from otel_tele.exporters.sqlite._writer import ROWS_PER_STATEMENT
    from otel_tele.exporters.sqlite.schema import INSERTS

    rng = random.Random(7)
    floats = [struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(3000)]
    floats = [f for f in floats if math.isfinite(f)]
    floats += [5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.1, 1 / 3, -0.0, 1e23]
    text = 'é😀\u2028"\\'
    plain = [(f, f / 3, i, i % 8, 2**63 - 1 - i, f / 7, text, None, True) for i, f in enumerate(floats)]
    special = [
        (1.0, 2.0, 1, 1, 1, math.inf, "a\x00b", "x", 3),
        (1.0, 2.0, 2, 1, 1, -math.inf, None, None, 3),
        (1.0, 2.0, 3, 1, 1, math.nan, None, None, 3),
    ]
    stored = {}
    for name, insert in (("bulk", SqliteSink._insert), ("many", None)):
        conn = init_db(tmp_path / f"{name}.db")
        inserts: list[str] = []
        conn.set_trace_callback(lambda sql: inserts.append(sql) if sql.startswith("INSERT") else None)  # noqa: B023
        for batch in (plain, special):
            conn.execute("BEGIN IMMEDIATE")
            if insert is None:
                conn.executemany(INSERTS["dds_commands"], batch)
            else:
                assert insert(conn, "dds_commands", batch) == 0
            conn.execute("COMMIT")
        if insert is not None:  # the bulk path really is taken: one statement per ROWS_PER_STATEMENT rows
            assert len(inserts) == -(-len(plain) // ROWS_PER_STATEMENT) + 1
        stored[name] = conn.execute(
            "SELECT ts, ts_mono, seq, funcode, joint_id, target_value, data_json, correlation_id, raw_len,"
            " typeof(target_value), typeof(raw_len) FROM dds_commands ORDER BY id"
        ).fetchall()
        conn.close()
    assert len(stored["bulk"]) == len(plain) + len(special)
    pack = lambda row: tuple(struct.pack("<d", v) if isinstance(v, float) else v for v in row)  # noqa: E731
    assert [pack(row) for row in stored["bulk"]] == [pack(row) for row in stored["many"]]


def test_bulk_insert_refused_row_is_isolated(tmp_path: Path) -> None:
    """A row the schema refuses fails the one bulk statement; the batch is then written row by row."""
    conn = init_db(tmp_path / "t.db")
    good = (1.0, 2.0, 1, 1, 1, 0.5, None, None, 3)
    conn.execute("BEGIN IMMEDIATE")
    rejected = SqliteSink._insert(
        conn, "dds_commands", [good, (None, 2.0, 2, 1, 1, 0.5, None, None, 3), good]
    )
    conn.execute("COMMIT")
    assert rejected == 1
    assert conn.execute("SELECT count(*) FROM dds_commands").fetchone()[0] == 2
    # A batch of several statements: the refused row is in the last one; none of the earlier
    # statements' rows may stay twice.
    from otel_tele.exporters.sqlite._writer import ROWS_PER_STATEMENT

    bad = (None, 2.0, 2, 1, 1, 0.5, None, None, 3)
    conn.execute("BEGIN IMMEDIATE")
    rejected = SqliteSink._insert(conn, "dds_commands", [good] * (ROWS_PER_STATEMENT + 5) + [bad])
    conn.execute("COMMIT")
    assert rejected == 1
    assert conn.execute("SELECT count(*) FROM dds_commands").fetchone()[0] == 2 + ROWS_PER_STATEMENT + 5
    conn.close()
