"""The PostgreSQL inference store: psycopg 3, a connection pool, COPY batches, write-time rollups.
Reads are the schema's :class:`~otel_tele.exporters.postgres.schema.PgReader` (on this pool).

One batch is one transaction: its id goes into ``system_telemetry_batches`` first (a batch retried
after an ambiguous commit is skipped, not duplicated), the rows go in with a binary ``COPY``, the rollup
increments with ``INSERT … ON CONFLICT`` in key order (so concurrent writers cannot deadlock on them).
Identifiers are composed only with ``psycopg.sql.Identifier``; every value is a bound parameter.
Pruning deletes in small batches, each in its own transaction under a short ``lock_timeout``, so it
never holds ingest up for long.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

try:
    import psycopg
    from psycopg import errors, postgres
    from psycopg.adapt import Dumper
    from psycopg.pq import Format
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"{exc}; the PostgreSQL inference store needs pip install 'otel-tele[postgres]'"
    ) from exc

from ._rows import Batch, prepare, rollup_rows
from ._store import PruneResult, upsert_template
from .schema import (
    BATCH_TABLE,
    MIGRATIONS,
    ROLLUPS,
    ROLLUPS_ADDED_AT,
    ROW_COLUMNS,
    SCHEMA_VERSION,
    TABLE,
    VERSION_TABLE,
    PgReader,
)
from .schema import pg_sql as _ident

_log = logging.getLogger("otel_tele")
_MIGRATION_LOCK = 0x07E1_7E1E_0002  # advisory lock key: one migrating process at a time
#: Errors worth a retry: the server restarting, a connection cut, a lock or serialization conflict.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    errors.DeadlockDetected,
    errors.SerializationFailure,
    errors.LockNotAvailable,
)


#: The raw row's column types, in ``ROW_COLUMNS`` order, for a binary ``COPY``: no value is
#: formatted as text on our side nor parsed on the server's.
_COPY_TYPES: tuple[str, ...] = ("text", "text", "float8", "jsonb", "text", "timestamptz", "text", "text")


class _JsonTextBinaryDumper(Dumper):
    """``metadata`` in a binary ``COPY``: JSON text we already encoded (``_rows``), sent as jsonb's
    binary form (version byte 1, then the text), so it is neither decoded nor encoded again."""

    format = Format.BINARY
    oid = postgres.types["jsonb"].oid

    def dump(self, obj: Any) -> bytes:
        text: bytes = obj.encode()
        return b"\x01" + text


class PgStore(PgReader):
    # SQLSTATE class 22 (data exception): a value the server will not store (out of range, invalid
    # text representation, …), or one a trigger or constraint refuses with such a code.
    refused_errors: tuple[type[Exception], ...] = (errors.DataError, errors.IntegrityError)

    """The :class:`~otel_tele.exporters.postgres._store.InferenceStore` on PostgreSQL."""

    _read_only = False
    _application_name = "otel-tele"
    _pool_name = "otel-tele-inference"

    def __init__(
        self,
        dsn: str,
        *,
        pool_max_size: int = 4,
        connect_timeout_s: float = 5.0,
        getconn_timeout_s: float = 5.0,
    ) -> None:
        super().__init__(
            dsn,
            pool_max_size=pool_max_size,
            connect_timeout_s=connect_timeout_s,
            getconn_timeout_s=getconn_timeout_s,
        )
        self._copy = _ident(f"COPY {{t}} ({', '.join(ROW_COLUMNS)}) FROM STDIN (FORMAT BINARY)", t=TABLE)
        upsert = upsert_template("pyformat", least="LEAST", greatest="GREATEST")
        self._upserts = {r.table: _ident(upsert, t=r.table) for r in ROLLUPS}

    # -- connections -------------------------------------------------------------------------------
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

    # -- schema ------------------------------------------------------------------------------------
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
            cur.adapters.register_dumper(None, _JsonTextBinaryDumper)
            with cur.copy(self._copy) as copy:
                copy.set_types(_COPY_TYPES)
                write_row, when = copy.write_row, datetime.fromtimestamp
                for row in batch.rows:
                    write_row((*row[:5], when(row[5], UTC), row[6], row[7]))
            for table, deltas in batch.rollups.items():
                cur.executemany(self._upserts[table], rollup_rows(deltas))

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
