"""Creating and migrating the robot telemetry database (spec 004) declared in :mod:`.schema`.

The sink writes through these connections (WAL, ``synchronous=NORMAL``, ``busy_timeout``). The
schema version lives in ``PRAGMA user_version`` (no extra table: the spec says exactly six). A
database written by the original th3cl4w code (version 0, same tables) is adopted as is.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from .schema import BUSY_TIMEOUT_MS, DDL, INDEXES, SCHEMA_VERSION, connect_read_only

__all__ = ["BUSY_TIMEOUT_MS", "SCHEMA_VERSION", "SchemaTooNew", "connect", "init_db", "migrate"]


def _create_v1(conn: sqlite3.Connection) -> None:
    for ddl in DDL.values():
        conn.execute(ddl)
    for name, (table, columns) in INDEXES.items():
        conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table}({columns})")


#: Forward migrations: ``MIGRATIONS[n]`` takes a database from version n-1 to n. Append, never edit:
#: version 1 creates the tables as :mod:`.schema` declares them, so a changed declaration needs a new
#: version (and migration) too.
MIGRATIONS: dict[int, object] = {1: _create_v1}


class SchemaTooNew(RuntimeError):
    """The database was written by a newer otel-tele; we neither write nor migrate it."""


def connect(
    db_path: str | Path, *, read_only: bool = False, timeout_ms: int = BUSY_TIMEOUT_MS
) -> sqlite3.Connection:
    """A connection with the spec's pragmas (WAL, ``synchronous=NORMAL``, ``busy_timeout``).

    ``read_only`` opens with ``mode=ro`` (the file must exist) and ``query_only``.
    """
    if read_only:
        return connect_read_only(db_path, timeout_ms=timeout_ms)
    conn = sqlite3.connect(
        str(Path(db_path)), timeout=timeout_ms / 1000, check_same_thread=False, isolation_level=None
    )
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION` in one transaction; returns the version found."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"telemetry database schema version {found} is newer than this otel-tele "
            f"understands ({SCHEMA_VERSION}); upgrade otel-tele"
        )
    if found == SCHEMA_VERSION:
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](conn)  # type: ignore[operator]
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def init_db(db_path: str | Path) -> sqlite3.Connection:
    """Create the folder, the database, the six tables and their indexes; return a write connection.

    Example::

        conn = init_db("data/telemetry.db")
        conn.close()
    """
    path = Path(db_path)
    if path.parent and not path.parent.exists():
        os.makedirs(path.parent, exist_ok=True)
    conn = connect(path)
    try:
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn
