"""The PostgreSQL inference store: psycopg 3, a connection pool, COPY batches, write-time rollups.

One batch is one transaction: its id goes into ``system_telemetry_batches`` first (a batch retried
after an ambiguous commit is skipped, not duplicated), the rows go in with ``COPY``, the rollup
increments with ``INSERT … ON CONFLICT`` in key order (so concurrent writers cannot deadlock on them).
Identifiers are composed only with ``psycopg.sql.Identifier``; every value is a bound parameter.
Pruning deletes in small batches, each in its own transaction under a short ``lock_timeout``, so it
never holds ingest up for long.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

try:
    import psycopg
    from psycopg import errors, sql
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"{exc}; the PostgreSQL inference store needs pip install 'otel-tele[postgres]'"
    ) from exc

from otel_tele._internal import abandon_inherited, at_fork_in_child
from otel_tele._scrub import protect_logs
from otel_tele._settings import dsn_secrets, redact_dsn

from ._inference_rows import Batch, prepare, rollup_rows
from ._inference_schema import (
    BATCH_TABLE,
    MIGRATIONS,
    ROLLUP_HOUR,
    ROLLUPS,
    ROLLUPS_ADDED_AT,
    ROW_COLUMNS,
    SCHEMA_VERSION,
    TABLE,
    TABLES,
    VERSION_TABLE,
    Rollup,
)
from ._inference_store import PruneResult, rollup_statement, upsert_template

_log = logging.getLogger("otel_tele")
_MIGRATION_LOCK = 0x07E1_7E1E_0002  # advisory lock key: one migrating process at a time
#: Errors worth a retry: the server restarting, a connection cut, a lock or serialization conflict.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    errors.DeadlockDetected,
    errors.SerializationFailure,
    errors.LockNotAvailable,
)


def _ident(template: str, **names: str) -> sql.Composed:
    return sql.SQL(template).format(**{key: sql.Identifier(value) for key, value in names.items()})


class PgStore:
    """The :class:`~otel_tele.exporters._inference_store.InferenceStore` on PostgreSQL."""

    dialect = "postgresql"

    def __init__(
        self,
        dsn: str,
        *,
        pool_max_size: int = 4,
        connect_timeout_s: float = 5.0,
        getconn_timeout_s: float = 5.0,
    ) -> None:
        self.location = redact_dsn(dsn)
        protect_logs(dsn_secrets(dsn))  # psycopg quotes parts of a bad DSN in its errors
        self._dsn = dsn
        self._pool_max_size = pool_max_size
        self._connect_timeout_s = connect_timeout_s
        self._getconn_timeout_s = getconn_timeout_s
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        at_fork_in_child(self._reinit_after_fork)
        self._migrated = False
        self._tables_seen = False
        self._copy = _ident(f"COPY {{t}} ({', '.join(ROW_COLUMNS)}) FROM STDIN", t=TABLE)
        upsert = upsert_template("pyformat", least="LEAST", greatest="GREATEST")
        self._upserts = {r.table: _ident(upsert, t=r.table) for r in ROLLUPS}

    # -- connections -------------------------------------------------------------------------------
    @property
    def pool(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                # Opened lazily: a service that never logs an inference never connects.
                self._pool = ConnectionPool(
                    self._dsn,
                    min_size=1,
                    max_size=self._pool_max_size,
                    open=False,
                    name="otel-tele-inference",
                    timeout=self._getconn_timeout_s,
                    check=ConnectionPool.check_connection,
                    kwargs={
                        "autocommit": True,
                        "application_name": "otel-tele",
                        "connect_timeout": max(1, int(self._connect_timeout_s)),
                    },
                )
                self._pool.open(wait=False)
            return self._pool

    def reachable(self) -> bool:
        try:
            with psycopg.connect(
                self._dsn,
                connect_timeout=max(1, int(self._connect_timeout_s)),
                application_name="otel-tele-doctor",
            ) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def _reinit_after_fork(self) -> None:
        # The parent's pool threads did not fork and its sockets are the parent's sessions: a child
        # talking on them would interleave with the parent's protocol. The child opens its own pool.
        self._lock = threading.Lock()
        abandon_inherited(self._pool)
        self._pool = None

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(timeout=2.0)

    # -- schema ------------------------------------------------------------------------------------
    def schema_version(self) -> int:
        with self.pool.connection() as conn:
            if conn.execute("SELECT to_regclass(%s)", (VERSION_TABLE,)).fetchone() == (None,):
                return 0
            row = conn.execute(
                _ident("SELECT coalesce(max(version), 0) FROM {t}", t=VERSION_TABLE)
            ).fetchone()
            return int(row[0]) if row else 0

    def migrate(self) -> int:
        """Bring the schema to :data:`SCHEMA_VERSION` (forward only); returns the version found."""
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                _ident(
                    "CREATE TABLE IF NOT EXISTS {t} (version integer PRIMARY KEY, "
                    "applied_at timestamptz NOT NULL DEFAULT now())",
                    t=VERSION_TABLE,
                )
            )
            row = conn.execute(
                _ident("SELECT coalesce(max(version), 0) FROM {t}", t=VERSION_TABLE)
            ).fetchone()
            found = int(row[0]) if row else 0
            for version in range(found, SCHEMA_VERSION):
                for template, names in MIGRATIONS[version]("postgresql"):
                    conn.execute(_ident(template, **names))
                conn.execute(_ident("INSERT INTO {t} (version) VALUES (%s)", t=VERSION_TABLE), (version + 1,))
            if found <= ROLLUPS_ADDED_AT < SCHEMA_VERSION:  # after every step: the rollups' full width
                self._backfill_rollups(conn)
        if found > SCHEMA_VERSION:
            _log.warning(
                "inference store %s has schema version %d, newer than this otel-tele (%d)",
                self.location,
                found,
                SCHEMA_VERSION,
            )
        self._migrated = True
        return found

    def _backfill_rollups(self, conn: psycopg.Connection[Any]) -> None:
        """Rows written before the rollups existed get their rollup increments (same code as ingest)."""
        query = _ident(
            "SELECT event_type, component, value, metadata::text, status, extract(epoch FROM timestamp), "
            "NULL, NULL FROM {t} ORDER BY id",
            t=TABLE,
        )
        with conn.cursor(name="otel_tele_backfill") as cur:
            cur.execute(query)
            while chunk := cur.fetchmany(50_000):
                batch = prepare([(*row[:5], float(row[5]), None, None) for row in chunk])
                with conn.cursor() as writer:
                    for table, deltas in batch.rollups.items():
                        writer.executemany(self._upserts[table], rollup_rows(deltas))

    def _has_tables(self, conn: psycopg.Connection[Any]) -> bool:
        if not (self._migrated or self._tables_seen):
            # Reads never create the schema (the HTTP routes are read-only); no tables, no data.
            self._tables_seen = conn.execute("SELECT to_regclass(%s)", (ROLLUP_HOUR.table,)).fetchone() != (
                None,
            )
        return self._migrated or self._tables_seen

    # -- writes ------------------------------------------------------------------------------------
    def write(self, batch: Batch, batch_id: str) -> None:
        if not self._migrated:
            self.migrate()
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(
                _ident(
                    "INSERT INTO {t} (batch_id, row_count) VALUES (%s, %s) ON CONFLICT DO NOTHING "
                    "RETURNING 1",
                    t=BATCH_TABLE,
                ),
                (batch_id, len(batch.rows)),
            )
            if cur.fetchone() is None:
                _log.info("inference batch %s was already committed; not writing it twice", batch_id)
                return
            with cur.copy(self._copy) as copy:
                for row in batch.rows:
                    copy.write_row((*row[:5], datetime.fromtimestamp(row[5], UTC), row[6], row[7]))
            for table, deltas in batch.rollups.items():
                cur.executemany(self._upserts[table], rollup_rows(deltas))

    # -- reads -------------------------------------------------------------------------------------
    def rollup(
        self,
        rollup: Rollup,
        *,
        since: int,
        until: int | None = None,
        event_types: Sequence[str] | None = None,
        component: str | None = None,
        step: int | None = None,
        by_component: bool = True,
    ) -> list[tuple[Any, ...]]:
        template, params = rollup_statement(
            "pyformat",
            since=since,
            until=until,
            event_types=event_types,
            component=component,
            step=step,
            by_component=by_component,
        )
        with self.pool.connection() as conn:
            if not self._has_tables(conn):
                return []
            return conn.execute(_ident(template, t=rollup.table), params).fetchall()

    def tables(self) -> list[dict[str, Any]]:
        query = (
            "SELECT n.name, pg_total_relation_size(c.oid), pg_relation_size(c.oid), pg_indexes_size(c.oid), "
            "c.reltuples FROM unnest(%s::text[]) WITH ORDINALITY AS n(name, ord) "
            "JOIN pg_class c ON c.oid = to_regclass(quote_ident(n.name)) ORDER BY n.ord"
        )
        with self.pool.connection() as conn:
            rows = conn.execute(query, (list(TABLES),)).fetchall()
        return [
            {
                "table": name,
                "size_bytes": int(total),
                "table_bytes": int(heap),
                "index_bytes": int(index),
                "rows_estimate": max(0, int(tuples)),
            }
            for name, total, heap, index, tuples in rows
        ]

    def time_span(self) -> tuple[float | None, float | None]:
        with self.pool.connection() as conn:
            if not self._has_tables(conn):
                return None, None
            row = conn.execute(_ident("SELECT min(timestamp), max(timestamp) FROM {t}", t=TABLE)).fetchone()
        return tuple(None if v is None else v.timestamp() for v in (row or (None, None)))  # type: ignore[return-value]

    def row_count(self) -> int:
        with self.pool.connection() as conn:
            if not self._has_tables(conn):
                return 0
            row = conn.execute(
                _ident("SELECT coalesce(sum(count), 0) FROM {t}", t=ROLLUP_HOUR.table)
            ).fetchone()
        return int(row[0]) if row else 0

    # -- retention ---------------------------------------------------------------------------------
    def prune(
        self,
        cutoff: int,
        *,
        batch_rows: int = 10_000,
        lock_timeout_ms: int = 200,
        max_batches: int | None = None,
    ) -> PruneResult:
        if self.schema_version() == 0:
            return PruneResult(0, 0, 0, True)
        when = datetime.fromtimestamp(cutoff, UTC)
        delete = _ident(
            "DELETE FROM {t} WHERE id = ANY(ARRAY(SELECT id FROM {t} WHERE timestamp < %s LIMIT %s))", t=TABLE
        )
        deleted = batches = timeouts = 0
        complete = False
        with self.pool.connection() as conn:
            while max_batches is None or batches < max_batches:
                try:
                    with conn.transaction():
                        conn.execute(
                            "SELECT set_config('lock_timeout', %s, true)", (f"{int(lock_timeout_ms)}ms",)
                        )
                        count = conn.execute(delete, (when, batch_rows)).rowcount
                except errors.LockNotAvailable:
                    timeouts += 1
                    break
                batches += 1
                deleted += count
                if count < batch_rows:
                    complete = True
                    break
            rollup_deleted = self._prune_rollups(conn, cutoff, when, lock_timeout_ms) if complete else 0
        if rollup_deleted < 0:
            timeouts, complete, rollup_deleted = timeouts + 1, False, 0
        return PruneResult(deleted, rollup_deleted, batches, complete, timeouts)

    def _prune_rollups(
        self, conn: psycopg.Connection[Any], cutoff: int, when: datetime, lock_timeout_ms: int
    ) -> int:
        # Rollups go after the raw rows, so the row count read from them never undercounts for long.
        try:
            with conn.transaction():
                conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{int(lock_timeout_ms)}ms",))
                total = 0
                for rollup in ROLLUPS:
                    total += conn.execute(
                        _ident("DELETE FROM {t} WHERE bucket < %s", t=rollup.table), (cutoff,)
                    ).rowcount
                conn.execute(_ident("DELETE FROM {t} WHERE written_at < %s", t=BATCH_TABLE), (when,))
                return total
        except errors.LockNotAvailable:
            return -1
