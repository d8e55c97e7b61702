"""Storage maintenance of the robot database: retention.

Rows older than ``TELEMETRY_RETENTION_DAYS`` (default 7) go.

Deletion runs on the sink's writer thread between batches (so it never competes with our own
writes), in short transactions of at most ``batch_rows`` rows per table, so a large backlog is worked
off over several passes without holding the write lock for long. A pass runs when the sink opens the
database and then every ``interval_s``; while a backlog remains, passes follow each other quickly.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from otel_tele._maintenance import StorageState, days_text, last_run
from otel_tele._settings import from_environment
from otel_tele.domains.robot import SQLITE_RETENTION_DAYS

from .schema import DB_NAME, TABLE_NAMES, connect_read_only

_log = logging.getLogger("otel_tele")

ENV = SQLITE_RETENTION_DAYS.env
DEFAULT_DAYS = SQLITE_RETENTION_DAYS.default


def retention_days_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``TELEMETRY_RETENTION_DAYS`` (0 or negative disables retention), read through the option
    table (:data:`otel_tele.domains.robot.SQLITE_RETENTION_DAYS`); a bad value is logged."""
    return from_environment(SQLITE_RETENTION_DAYS, environ)


class DeleteObserver(Protocol):
    """Told, inside the deleting transaction, which rows go (the digest keeps its aggregates in step)."""

    def before_delete(self, conn: sqlite3.Connection, table: str, ids: list[int]) -> None: ...

    def after_delete(self, conn: sqlite3.Connection, table: str) -> None: ...


class Retention:
    """Deletes expired rows a small batch at a time."""

    def __init__(
        self,
        days: float,
        *,
        interval_s: float = 3_600.0,
        batch_rows: int = 5_000,
        observer: DeleteObserver | None = None,
    ) -> None:
        self.observer = observer
        self.days = days
        self.interval_s = interval_s
        self.batch_rows = batch_rows
        self._next_run = 0.0  # run at the first opportunity (start-up)
        self.deleted = 0

    @property
    def enabled(self) -> bool:
        return self.days > 0

    def next_run_epoch(self) -> float | None:
        """When the next pass is due, in epoch seconds (``None`` when retention is off)."""
        return time.time() + max(0.0, self._next_run - time.monotonic()) if self.enabled else None

    def due(self, now: float | None = None) -> bool:
        return self.enabled and (now if now is not None else time.monotonic()) >= self._next_run

    def run(self, conn: sqlite3.Connection, *, now_epoch: float | None = None) -> int:
        """One pass: at most ``batch_rows`` expired rows per table. Returns rows deleted."""
        cutoff = (now_epoch if now_epoch is not None else time.time()) - self.days * 86_400
        deleted, backlog = 0, False
        for table in TABLE_NAMES:
            conn.execute("BEGIN IMMEDIATE")
            try:
                expired = [
                    row[0]
                    for row in conn.execute(
                        f"SELECT id FROM {table} WHERE ts < ? ORDER BY ts LIMIT ?", (cutoff, self.batch_rows)
                    )
                ]
                if expired and self.observer is not None:
                    self.observer.before_delete(conn, table, expired)
                conn.execute(
                    f"DELETE FROM {table} WHERE id IN (SELECT value FROM json_each(?))",
                    (json.dumps(expired),),
                )
                if expired and self.observer is not None:
                    self.observer.after_delete(conn, table)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            deleted += len(expired)
            backlog = backlog or len(expired) >= self.batch_rows
        self.deleted += deleted
        self._next_run = time.monotonic() + (0.5 if backlog else self.interval_s)
        if deleted:
            _log.info("telemetry retention: deleted %d rows older than %.3g days", deleted, self.days)
        return deleted


def storage_state(settings: Any) -> StorageState:
    """The robot database's retention state (the health page's row for this sink): the configured
    window, the oldest row kept (read-only), the last pass the sink recorded and the next one."""
    db = Path(settings.data_dir) / DB_NAME
    days = settings.get(SQLITE_RETENTION_DAYS)
    oldest = None
    if db.is_file():
        conn = connect_read_only(db)
        try:
            firsts = [conn.execute(f"SELECT min(ts) FROM {table}").fetchone()[0] for table in TABLE_NAMES]
        finally:
            conn.close()
        oldest = min((ts for ts in firsts if ts is not None), default=None)
    run = last_run(db.parent, "sqlite")
    return StorageState(days_text(days), oldest, run, run.next_run if run is not None and days > 0 else None)
