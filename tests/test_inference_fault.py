"""Fault test: PostgreSQL connections killed and the server restarted mid-ingest — the app never sees
an exception, and afterwards every record is accounted for (rows stored == exported, nothing failed).

The server killed and restarted is the test's own (``initdb`` + ``pg_ctl`` in a temp dir), never the
machine's: its postmaster PID is checked unchanged."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from otel_tele.instrumentation.inference import TelemetryLogger
from psycopg import sql

import otel_tele

from ._pg_server import PgServer

# Where Debian (and a stock source build) keep the postmaster PID of the machine's own clusters.
MACHINE_PID_FILES = ("/run/postgresql/*.pid", "/var/lib/postgresql/*/*/postmaster.pid")


def _machine_postmasters() -> dict[str, str]:
    found: dict[str, str] = {}
    for pattern in MACHINE_PID_FILES:
        for path in Path("/").glob(pattern.lstrip("/")):
            try:
                found[str(path)] = path.read_text().split("\n", 1)[0]
            except OSError:
                continue
    return found


@pytest.fixture
def owned_pg(pg_server: PgServer | None) -> Iterator[tuple[PgServer, str]]:
    """A server this test may kill (the session's own; a private one when the session uses an
    existing server named by OTEL_TELE_TEST_PG_DSN) and a fresh database on it."""
    with PgServer.started() if pg_server is None else _reuse(pg_server) as server:
        name = f"otel_tele_fault_{secrets.token_hex(4)}"
        with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield server, server.admin_dsn.rsplit("/", 1)[0] + f"/{name}"
        finally:
            if server.pid is None:
                server.start()
            with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def _reuse(server: PgServer) -> Iterator[PgServer]:
    yield server


def _rows(dsn: str) -> int:
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM system_telemetry").fetchone()
            return int(row[0]) if row else 0
    except psycopg.Error:
        return -1


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 90.0) -> None:
    """Poll until ``condition`` holds (waiting on an observable event, not on a guessed duration)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_terminated_connections_and_restart_mid_ingest(owned_pg: tuple[PgServer, str]) -> None:
    """pg_terminate_backend + server stop/start while logging: no app exception, counts reconcile."""
    server, clean_pg = owned_pg
    machine_before = _machine_postmasters()
    telemetry = otel_tele.setup(
        local=True,
        sinks=["postgres"],
        postgres_dsn=clean_pg,
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="none",
        blrp_schedule_delay_millis=50,
        blrp_max_export_batch_size=500,
    )
    logger = TelemetryLogger(telemetry)
    stop, errors, sent = threading.Event(), [], [0]

    def ingest() -> None:
        try:
            while not stop.is_set():
                for i in range(20):
                    if not logger.record_thought(f"m{i % 3}", 0.05, 10 + i):
                        errors.append(AssertionError("log refused"))
                    sent[0] += 1
                time.sleep(0.01)  # pacing of the simulated app, not a wait for a result
        except BaseException as exc:  # the app must never see one
            errors.append(exc)

    thread = threading.Thread(target=ingest, name="test-ingest", daemon=True)
    thread.start()
    try:
        _wait(lambda: _rows(clean_pg) > 200, "first rows")
        with psycopg.connect(clean_pg, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'otel-tele' AND datname = current_database()"
            ).fetchone()
        assert killed is not None and killed[0] >= 1
        after_kill = _rows(clean_pg)
        _wait(lambda: _rows(clean_pg) > after_kill + 200, "ingest after pg_terminate_backend")
        server.stop()
        assert _rows(clean_pg) == -1
        during = sent[0]
        _wait(lambda: sent[0] > during + 1000, "the app logging on while the server is down")
        before_restart = sent[0]
        server.start()
        _wait(lambda: _rows(clean_pg) >= before_restart - 1000, "ingest after the restart")
    finally:
        stop.set()
        thread.join(30)
        if server.pid is None:
            server.start()
    try:
        assert errors == []
        assert telemetry.force_flush(120_000)
        snapshot = next(s for s in telemetry.sink_stats() if s.sink == "postgres")
        events = next(s for s in telemetry.sink_stats() if s.sink == "events")
        assert snapshot.reconciles and events.reconciles, (snapshot, events)
        assert snapshot.queued == 0 and snapshot.failed == 0, snapshot
        assert events.emitted == sent[0] and events.exported + events.dropped == sent[0]
        assert snapshot.exported + snapshot.dropped == snapshot.emitted == events.exported
        assert _rows(clean_pg) == snapshot.exported  # written once each, none lost, none duplicated
    finally:
        telemetry.shutdown(30_000)
    assert _machine_postmasters() == machine_before  # the machine's own server was never touched
