"""The embedded inference store: the PostgreSQL store's schema and queries on one SQLite file.

Used when no DSN is configured, so a laptop or the demo needs no server. WAL mode lets readers run
while the sink writes; one batch is one ``BEGIN IMMEDIATE`` transaction. Timestamps are epoch seconds
(REAL); metadata is JSON text; a NaN ``value`` is stored as NULL (SQLite has no NaN). Reads are the
schema's :class:`~otel_tele.exporters.postgres.schema.SqliteReader`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from otel_tele._internal import abandon_inherited, at_fork_in_child

from .._sqlite_wal import close_checkpointed
from ._rows import Batch, prepare, rollup_rows
from ._store import PruneResult, upsert_template
from .schema import (
    BATCH_TABLE,
    MEASURES,
    MIGRATIONS,
    ROLLUPS,
    ROLLUPS_ADDED_AT,
    ROW_COLUMNS,
    SCHEMA_VERSION,
    TABLE,
    SqliteReader,
)
from .schema import sqlite_sql as _fmt

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (sqlite3.OperationalError,)


class SqliteStore(SqliteReader):
    # A value SQLite will not store (a constraint or trigger refusing it, an integer beyond 64 bits:
    # OverflowError on binding): the sink isolates the row.
    refused_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError, sqlite3.DataError, OverflowError)

    """The :class:`~otel_tele.exporters.postgres._store.InferenceStore` on an SQLite file."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = 5_000, **_postgres_only: Any) -> None:
        super().__init__(path, busy_timeout_ms=busy_timeout_ms)
        self._writer: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # held while a write transaction is open
        # Every SQLite call of this store — connect, statement, close — runs inside the reader's fork
        # gate (self._gate), taken before _lock: the process forks only between them (see ForkGate).
        # A child forked inside a connect or close would hang in its own; one forked mid-transaction
        # could never write this file. A write may wait its whole busy timeout inside: the fork too.
        at_fork_in_child(self._reinit_after_fork)
        self._migrated = False
        self._insert = _fmt(
            f"INSERT INTO {{t}} ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join('?' for _ in ROW_COLUMNS)})",
            t=TABLE,
        )
        upsert = upsert_template("named", least="min", greatest="max")
        # SQLite's two-argument min()/max() return NULL if either side is NULL: fall back to the other
        # (every min/max measure: ttft_max was once left out and kept NULL after a bucket's first row).
        for measure in MEASURES:
            if measure.merge == "sum":
                continue
            name, fn = measure.name, measure.merge
            upsert = upsert.replace(
                f"{fn}(r.{name}, excluded.{name})",
                f"coalesce({fn}(r.{name}, excluded.{name}), r.{name}, excluded.{name})",
            )
        self._upserts = {r.table: _fmt(upsert, t=r.table) for r in ROLLUPS}

    # -- connections -------------------------------------------------------------------------------
    def _writer_conn(self) -> sqlite3.Connection:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._connect(read_only=False)
        return self._writer

    @contextlib.contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def reachable(self) -> bool:
        """The file exists, or the nearest existing folder above it is writable."""
        if self.path.exists():
            return os.access(self.path, os.R_OK | os.W_OK)
        folder = self.path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        return folder.is_dir() and os.access(folder, os.W_OK)

    def _reinit_after_fork(self) -> None:
        # SQLite forbids carrying a connection across fork(): the child opens its own.
        abandon_inherited(self._writer)
        self._writer = None
        self._lock = threading.Lock()  # a parent thread may have held it at the fork

    def close(self) -> None:
        with self._gate:
            with self._lock:
                writer, self._writer = self._writer, None
            if writer is not None:
                close_checkpointed(writer)

    # -- schema ------------------------------------------------------------------------------------
    def migrate(self) -> int:
        with self._gate, self._lock:
            conn = self._writer_conn()
            with self._transaction(conn):
                found = int(conn.execute("PRAGMA user_version").fetchone()[0])
                for version in range(found, SCHEMA_VERSION):
                    for template, names in MIGRATIONS[version]("sqlite"):
                        conn.execute(_fmt(template, **names))
                if found <= ROLLUPS_ADDED_AT < SCHEMA_VERSION:  # after every step: the rollups' full width
                    self._backfill_rollups(conn)
                conn.execute(f"PRAGMA user_version = {max(found, SCHEMA_VERSION):d}")
            self._migrated = True
            return found

    def _backfill_rollups(self, conn: sqlite3.Connection) -> None:
        """Rows written before the rollups existed get their rollup increments (same code as ingest)."""
        cur = conn.execute(
            _fmt(
                "SELECT event_type, component, value, metadata, status, timestamp, NULL, NULL "
                "FROM {t} ORDER BY id",
                t=TABLE,
            )
        )
        while chunk := cur.fetchmany(50_000):
            batch = prepare(chunk)
            for table, deltas in batch.rollups.items():
                conn.executemany(self._upserts[table], rollup_rows(deltas))

    # -- writes ------------------------------------------------------------------------------------
    def write(self, batch: Batch, batch_id: str) -> None:
        if not self._migrated:
            self.migrate()
        with self._gate, self._lock:
            conn = self._writer_conn()
            with self._transaction(conn):
                inserted = conn.execute(
                    _fmt(
                        "INSERT OR IGNORE INTO {t} (batch_id, row_count, written_at) VALUES (?, ?, ?)",
                        t=BATCH_TABLE,
                    ),
                    (batch_id, len(batch.rows), time.time()),
                ).rowcount
                if not inserted:
                    return
                conn.executemany(self._insert, batch.rows)
                for table, deltas in batch.rollups.items():
                    conn.executemany(self._upserts[table], rollup_rows(deltas))

    # -- retention ---------------------------------------------------------------------------------
    def prune(
        self,
        cutoff: int,
        *,
        batch_rows: int = 10_000,
        lock_timeout_ms: int = 200,
        max_batches: int | None = None,
    ) -> PruneResult:
        if self.schema_version() < 2:
            return PruneResult(0, 0, 0, True)
        delete = _fmt("DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE timestamp < ? LIMIT ?)", t=TABLE)
        deleted = batches = rollup_deleted = 0
        complete = False
        with self._gate:
            conn = sqlite3.connect(self.path, timeout=lock_timeout_ms / 1000, isolation_level=None)
        try:
            while max_batches is None or batches < max_batches:
                # The gate per batch, not around the whole prune: a fork waits for one batch at most.
                with self._gate, self._lock, self._transaction(conn):
                    count = conn.execute(delete, (cutoff, batch_rows)).rowcount
                batches += 1
                deleted += count
                if count < batch_rows:
                    complete = True
                    break
            if complete:
                with self._gate, self._lock, self._transaction(conn):
                    for rollup in ROLLUPS:
                        rollup_deleted += conn.execute(
                            _fmt("DELETE FROM {t} WHERE bucket < ?", t=rollup.table), (cutoff,)
                        ).rowcount
                    conn.execute(_fmt("DELETE FROM {t} WHERE written_at < ?", t=BATCH_TABLE), (cutoff,))
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            return PruneResult(deleted, rollup_deleted, batches, False, 1)
        finally:
            with self._gate:
                conn.close()
        return PruneResult(deleted, rollup_deleted, batches, complete)
