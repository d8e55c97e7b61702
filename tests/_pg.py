"""PostgreSQL for tests: a fresh database per test session, dropped afterwards; and ``env``, the
same inference pipeline over PostgreSQL and over the embedded SQLite store.

The server is the test session's own (``pg_admin_dsn`` in ``conftest.py``: ``initdb`` + ``pg_ctl`` in a
temporary directory), or the one ``OTEL_TELE_TEST_PG_DSN`` names.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from otel_tele.exporters.postgres import PostgresSink
from otel_tele.exporters.postgres._rows import prepare
from otel_tele.instrumentation.inference import TelemetryLogger
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from otel_tele import testing

OUR_TABLES = (
    "system_telemetry",
    "system_telemetry_rollup_1m",
    "system_telemetry_rollup_1h",
    "system_telemetry_batches",
    "system_telemetry_schema",
)


@contextmanager
def fresh_database(admin_dsn: str) -> Iterator[str]:
    """DSN of a new database (``otel_tele_test_<random>``) on the server of ``admin_dsn``, dropped
    afterwards."""
    name = f"otel_tele_test_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(**{**conninfo_to_dict(admin_dsn), "dbname": name})
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def pg_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """DSN of a database created for this test session."""
    with fresh_database(pg_admin_dsn) as dsn:
        yield dsn


@pytest.fixture
def clean_pg(pg_dsn: str) -> str:
    """The session database with none of our tables (each test starts from an empty store)."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for table in OUR_TABLES:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(table)))
    return pg_dsn


INJECTION = "x'); DROP TABLE system_telemetry; --"


class Env:
    """A capture pipeline whose ``postgres`` sink writes to the store under test."""

    def __init__(self, backend: str, dsn: str | None, data_dir: Path) -> None:
        self.backend = backend
        self.dsn = dsn
        self.data_dir = data_dir
        self.cap = testing.capture(sinks="postgres", postgres_dsn=dsn, data_dir=data_dir)
        self.logger = TelemetryLogger(self.cap.telemetry)
        self.sink: PostgresSink = self.cap.telemetry.sinks["postgres"]  # type: ignore[assignment]

    def run(self, coro: Any) -> Any:
        return asyncio.run(coro)

    def backfill(self, rows: list[tuple[Any, ...]]) -> None:
        """Write rows with chosen timestamps straight through the sink's store (history)."""
        self.sink.store.write(prepare(rows), f"backfill-{time.monotonic_ns()}")

    def raw_count(self) -> int:
        if self.dsn:
            with psycopg.connect(self.dsn) as conn:
                return int(conn.execute("SELECT count(*) FROM system_telemetry").fetchone()[0])  # type: ignore[index]
        with sqlite3.connect(self.data_dir / "inference.db") as conn:
            return int(conn.execute("SELECT count(*) FROM system_telemetry").fetchone()[0])

    def schema(self) -> list[tuple[Any, ...]]:
        """Tables and columns of the store (to prove nothing was altered)."""
        if self.dsn:
            with psycopg.connect(self.dsn) as conn:
                return conn.execute(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'public' ORDER BY 1, 2"
                ).fetchall()
        with sqlite3.connect(self.data_dir / "inference.db") as conn:
            return conn.execute(
                "SELECT m.name, p.name, p.type FROM sqlite_master m, pragma_table_info(m.name) p "
                "WHERE m.type = 'table' ORDER BY 1, 2"
            ).fetchall()


@pytest.fixture(params=["postgresql", "sqlite"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """The same pipeline over PostgreSQL (a fresh schema) and over the embedded store."""
    dsn = request.getfixturevalue("clean_pg") if request.param == "postgresql" else None
    environment = Env(request.param, dsn, tmp_path / "telemetry")
    yield environment
    environment.logger.close()
    environment.cap.close()


def log_into_unreachable_store(dsn: str) -> Any:
    """One inference record through a pipeline whose PostgreSQL DSN cannot connect (one attempt):
    the postgres sink's books afterwards (what the failure logged is the caller's to inspect)."""
    import otel_tele

    telemetry = otel_tele.setup(
        local=True,
        sinks=["postgres"],
        postgres_dsn=dsn,
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="none",
    )
    telemetry.sinks["postgres"].retry = otel_tele.RetryPolicy(max_attempts=1)  # type: ignore[attr-defined]
    assert TelemetryLogger(telemetry).record_thought("m", 0.1, 10)
    telemetry.force_flush(15_000)
    stats = next(s for s in telemetry.sink_stats() if s.sink == "postgres")
    telemetry.shutdown(5_000)
    return stats
