"""Closing a WAL-mode SQLite writer so that the database file alone holds the data afterwards."""

from __future__ import annotations

import contextlib
import sqlite3


def close_checkpointed(conn: sqlite3.Connection) -> None:
    """Fold the write-ahead log into the database (``wal_checkpoint(TRUNCATE)``), then close.

    SQLite checkpoints when its last connection closes, but only if that close runs: a reader still
    open elsewhere, or an exit that skips it, leaves the data in ``-wal``. TRUNCATE also empties the
    ``-wal`` file, so a copied or inspected ``telemetry.db`` is complete. A busy reader makes the
    checkpoint partial, never an error.
    """
    with contextlib.suppress(sqlite3.Error):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
