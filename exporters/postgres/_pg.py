"""The PostgreSQL inference store: psycopg 3, a connection pool, one statement per batch, write-time
rollups.
Reads are the schema's :class:`~otel_tele.exporters.postgres.schema.PgReader` (on this pool).

One batch is one statement, so one transaction and one round trip: its id goes into
``system_telemetry_batches`` first (a batch retried after an ambiguous commit is skipped, not
duplicated), the rows and the rollup increments (computed in memory per batch, ``_rows``) go in from
arrays the server unnests — the increments with ``INSERT … ON CONFLICT`` in key order (so concurrent
writers cannot deadlock on them). A COPY would take a round trip of its own, plus BEGIN, the batch id
and the COMMIT: under load every round trip is a wait for the GIL on the way back.
Identifiers are composed only with ``psycopg.sql.Identifier``; every value is a bound parameter.
Pruning deletes in small batches, each in its own transaction under a short ``lock_timeout``, so it
never holds ingest up for long.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

try:
    import psycopg
    from psycopg import errors
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"{exc}; the PostgreSQL inference store needs pip install 'otel-tele[postgres]'"
    ) from exc

from ._arrays import Encoded, encode, encode_epoch_timestamps, register
from ._clean import column
from ._rows import Batch, RollupKey, Row, prepare, rollup_rows
from ._store import PruneResult, upsert_template
from .schema import (
    BATCH_TABLE,
    KEY_COLUMNS,
    MEASURES,
    MIGRATIONS,
    ROLLUPS,
    ROLLUPS_ADDED_AT,
    ROW_COLUMNS,
    SCHEMA_VERSION,
    TABLE,
    VERSION_TABLE,
    Measure,
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


#: ``system_telemetry``'s columns as typed arrays for ``unnest`` (metadata arrives as JSON text we
#: already encoded in ``_rows``; the server parses it once, as a COPY of jsonb would).
_ROW_ARRAYS: tuple[str, ...] = ("text", "text", "float8", "text", "text", "timestamptz", "text", "text")
_SQL_TYPES = {"int8": "bigint"}
_CASTS = {"metadata": "::jsonb"}


def _write_statement() -> str:
    """One batch as one statement (its own transaction in autocommit): the batch id first — a batch
    already committed inserts nothing — then the raw rows and both rollups' increments, each from
    arrays unnested on the server (one round trip per batch, no per-row statement). Rollup rows go in
    key order, so concurrent writers lock them in one order and cannot deadlock."""
    row_args = ", ".join(f"%s::{_SQL_TYPES.get(t, t)}[]" for t in _ROW_ARRAYS)
    row_select = ", ".join(f"u.{c}{_CASTS.get(c, '')}" for c in ROW_COLUMNS)
    parts = [
        "WITH b AS (INSERT INTO {batches} (batch_id, row_count) VALUES (%s, %s) "
        "ON CONFLICT DO NOTHING RETURNING 1)",
        f"r AS (INSERT INTO {{t}} ({', '.join(ROW_COLUMNS)}) SELECT {row_select} "
        f"FROM unnest({row_args}) AS u({', '.join(ROW_COLUMNS)}) WHERE EXISTS (SELECT FROM b))",
    ]
    columns = (*KEY_COLUMNS, *(m.name for m in MEASURES))
    types = ("bigint", "text", "text", *("bigint" if m.integer else "float8" for m in MEASURES))
    sets = ", ".join(_merge_set(m) for m in MEASURES)
    for i in range(len(ROLLUPS)):
        parts.append(
            f"r{i} AS (INSERT INTO {{m{i}}} AS x ({', '.join(columns)}) "
            f"SELECT * FROM unnest({', '.join(f'%s::{t}[]' for t in types)}) AS u({', '.join(columns)}) "
            f"WHERE EXISTS (SELECT FROM b) ORDER BY {', '.join(KEY_COLUMNS)} "
            f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET {sets})"
        )
    return ",\n".join(parts) + "\nSELECT count(*) FROM b"


def _merge_set(m: Measure) -> str:
    if m.merge == "sum":
        return f"{m.name} = x.{m.name} + excluded.{m.name}"
    return f"{m.name} = {'LEAST' if m.merge == 'min' else 'GREATEST'}(x.{m.name}, excluded.{m.name})"


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as one list per column (what the statement's arrays are made of)."""
    return [column(rows, i) for i in range(width)]


_MEASURE_ELEMENTS = tuple("int8" if m.integer else "float8" for m in MEASURES)


def _row_arrays(rows: Sequence[Row]) -> list[Encoded]:
    """The raw rows as the statement's arrays, one per column: values as float (what a COPY of the
    float column sends for an int), timestamps as a COPY of ``datetime.fromtimestamp(ts, UTC)`` would
    send them."""
    columns = _columns(rows, len(ROW_COLUMNS))
    values = columns[2]
    if set(map(type, values)) != {float}:
        columns[2] = [None if v is None else float(v) for v in values]
    return [
        encode_epoch_timestamps(column) if element == "timestamptz" else encode(column, element)
        for column, element in zip(columns, _ROW_ARRAYS, strict=True)
    ]


def _rollup_arrays(rollup: Mapping[RollupKey, Sequence[float]]) -> list[Encoded]:
    """A rollup's increments as the statement's arrays: the key columns, then each measure typed by
    its column (an unknown min/max, NaN in memory, is NULL)."""
    keys = sorted(rollup)
    arrays = [
        encode([k[0] for k in keys], "int8"),
        encode([k[1] for k in keys], "text"),
        encode([k[2] for k in keys], "text"),
    ]
    for i, element in enumerate(_MEASURE_ELEMENTS):
        if element == "float8":
            arrays.append(encode([None if (v := rollup[k][i]) != v else float(v) for k in keys], element))
        else:
            arrays.append(encode([int(rollup[k][i]) for k in keys], element))
    return arrays


class PgStore(PgReader):
    # SQLSTATE class 22 (data exception): a value the server will not store (out of range, invalid
    # text representation, …), or one a trigger or constraint refuses with such a code; and a value
    # no array element can hold (an integer beyond bigint: OverflowError or struct.error on encoding).
    refused_errors: tuple[type[Exception], ...] = (
        errors.DataError,
        errors.IntegrityError,
        OverflowError,
        struct.error,
    )

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
        rollups = {f"m{i}": r.table for i, r in enumerate(ROLLUPS)}
        self._write_batch = _ident(_write_statement(), t=TABLE, batches=BATCH_TABLE, **rollups)
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
        params: list[Any] = [batch_id, len(batch.rows), *_row_arrays(batch.rows)]
        for rollup in ROLLUPS:
            params.extend(_rollup_arrays(batch.rollups[rollup.table]))
        with self.pool.connection() as conn, conn.cursor() as cur:
            register(cur.adapters)
            row = cur.execute(self._write_batch, params, binary=True).fetchone()
        if not row or not row[0]:
            _log.info("inference batch %s was already committed; not writing it twice", batch_id)

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
