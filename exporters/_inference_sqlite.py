"""The embedded inference store: the PostgreSQL store's schema and queries on one SQLite file.

Used when no DSN is configured, so a laptop or the demo needs no server. WAL mode lets readers run
while the sink writes; one batch is one ``BEGIN IMMEDIATE`` transaction. Timestamps are epoch seconds
(REAL); metadata is JSON text; a NaN ``value`` is stored as NULL (SQLite has no NaN).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from otel_tele._internal import abandon_inherited, at_fork_in_child, quiesce_for_fork

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
    Rollup,
)
from ._inference_store import PruneResult, rollup_statement, upsert_template
from ._sqlite_wal import close_checkpointed

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (sqlite3.OperationalError,)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _fmt(template: str, **names: str) -> str:
    return template.format(**{key: _q(value) for key, value in names.items()})


class SqliteStore:
    """The :class:`~otel_tele.exporters._inference_store.InferenceStore` on an SQLite file."""

    dialect = "sqlite"

    def __init__(self, path: Path, *, busy_timeout_ms: int = 5_000, **_postgres_only: Any) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._busy_timeout_s = busy_timeout_ms / 1000
        self._writer: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # held while a write transaction is open
        # A write may wait its whole busy timeout for the lock while holding _lock: the fork waits
        # that long too, since a child forked mid-transaction could never write this file.
        quiesce_for_fork(self, "_lock", timeout_s=self._busy_timeout_s + 1.0)
        at_fork_in_child(self._reinit_after_fork)
        self._migrated = False
        self._insert = _fmt(
            f"INSERT INTO {{t}} ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join('?' for _ in ROW_COLUMNS)})",
            t=TABLE,
        )
        upsert = upsert_template("named", least="min", greatest="max")
        # SQLite's two-argument min()/max() return NULL if either side is NULL: fall back to the other.
        for measure in ("value_min", "value_max"):
            fn = "min" if measure == "value_min" else "max"
            upsert = upsert.replace(
                f"{fn}(r.{measure}, excluded.{measure})",
                f"coalesce({fn}(r.{measure}, excluded.{measure}), r.{measure}, excluded.{measure})",
            )
        self._upserts = {r.table: _fmt(upsert, t=r.table) for r in ROLLUPS}

    # -- connections -------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _writer_conn(self) -> sqlite3.Connection:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._connect()
        return self._writer

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection | None]:
        """A short-lived connection for one query (None when the database does not exist yet)."""
        if not self.path.exists():
            yield None
            return
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

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

    def close(self) -> None:
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            close_checkpointed(writer)

    # -- schema ------------------------------------------------------------------------------------
    def schema_version(self) -> int:
        with self._reader() as conn:
            return 0 if conn is None else int(conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> int:
        with self._lock:
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
        with self._lock:
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
            "named",
            since=since,
            until=until,
            event_types=event_types,
            component=component,
            step=step,
            by_component=by_component,
        )
        with self._reader() as conn:
            if conn is None or not self._has_tables(conn):
                return []
            return conn.execute(_fmt(template, t=rollup.table), params).fetchall()

    @staticmethod
    def _has_tables(conn: sqlite3.Connection) -> bool:
        return bool(conn.execute("PRAGMA user_version").fetchone()[0] >= 2)

    def tables(self) -> list[dict[str, Any]]:
        with self._reader() as conn:
            if conn is None:
                return []
            owner = dict(
                conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')")
            )
            heap: dict[str, int] = {}
            index: dict[str, int] = {}
            for name, size in self._page_sizes(conn):
                table = owner.get(name, name)
                (heap if name == table else index)[table] = (heap if name == table else index).get(
                    table, 0
                ) + size
            result = []
            for table in TABLES:
                if table not in owner:
                    continue
                rows = conn.execute(_fmt("SELECT count(*) FROM {t}", t=table)).fetchone()[0]
                result.append(
                    {
                        "table": table,
                        "size_bytes": heap.get(table, 0) + index.get(table, 0),
                        "table_bytes": heap.get(table, 0),
                        "index_bytes": index.get(table, 0),
                        "rows_estimate": int(rows),
                    }
                )
            return result

    @staticmethod
    def _page_sizes(conn: sqlite3.Connection) -> list[tuple[str, int]]:
        try:
            return conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
        except sqlite3.OperationalError:  # SQLite built without dbstat: the whole file, as the main table
            pages, size = (conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "page_size"))
            return [(TABLE, int(pages) * int(size))]

    def time_span(self) -> tuple[float | None, float | None]:
        with self._reader() as conn:
            if conn is None or not self._has_tables(conn):
                return None, None
            oldest, newest = conn.execute(
                _fmt("SELECT min(timestamp), max(timestamp) FROM {t}", t=TABLE)
            ).fetchone()
            return oldest, newest

    def row_count(self) -> int:
        with self._reader() as conn:
            if conn is None or not self._has_tables(conn):
                return 0
            return int(
                conn.execute(_fmt("SELECT coalesce(sum(count), 0) FROM {t}", t=ROLLUP_HOUR.table)).fetchone()[
                    0
                ]
            )

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
        conn = sqlite3.connect(self.path, timeout=lock_timeout_ms / 1000, isolation_level=None)
        try:
            while max_batches is None or batches < max_batches:
                with self._lock, self._transaction(conn):  # _lock: no fork mid-transaction
                    count = conn.execute(delete, (cutoff, batch_rows)).rowcount
                batches += 1
                deleted += count
                if count < batch_rows:
                    complete = True
                    break
            if complete:
                with self._lock, self._transaction(conn):
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
            conn.close()
        return PruneResult(deleted, rollup_deleted, batches, complete)
