"""The robot telemetry database (spec 004): six tables, their indexes, pragmas and forward migrations.

Declared once here; the sink writes through it, ``TelemetryQuery`` reads it, the standalone
collector creates it. The schema version lives in ``PRAGMA user_version`` (no extra table: the spec
says exactly six). A database written by the original th3cl4w code (version 0, same tables) is
adopted as is.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 5_000

#: table name → CREATE TABLE statement, in the spec's order.
TABLES: dict[str, str] = {
    "dds_commands": """CREATE TABLE IF NOT EXISTS dds_commands (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          REAL NOT NULL,
    ts_mono     REAL NOT NULL,
    seq         INTEGER,
    funcode     INTEGER NOT NULL,
    joint_id    INTEGER,
    target_value REAL,
    data_json   TEXT,
    correlation_id TEXT,
    raw_len     INTEGER
)""",
    "dds_feedback": """CREATE TABLE IF NOT EXISTS dds_feedback (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          REAL NOT NULL,
    ts_mono     REAL NOT NULL,
    seq         INTEGER,
    funcode     INTEGER NOT NULL,
    angle0      REAL, angle1 REAL, angle2 REAL, angle3 REAL,
    angle4      REAL, angle5 REAL, angle6 REAL,
    power_status  INTEGER,
    enable_status INTEGER,
    error_status  INTEGER,
    recv_status   INTEGER,
    exec_status   INTEGER
)""",
    "smoother_state": """CREATE TABLE IF NOT EXISTS smoother_state (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          REAL NOT NULL,
    joint_id    INTEGER NOT NULL,
    target      REAL NOT NULL,
    current     REAL NOT NULL,
    sent        REAL NOT NULL,
    step_size   REAL,
    dirty       INTEGER NOT NULL DEFAULT 1
)""",
    "web_requests": """CREATE TABLE IF NOT EXISTS web_requests (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          REAL NOT NULL,
    endpoint    TEXT NOT NULL,
    method      TEXT NOT NULL DEFAULT 'POST',
    params_json TEXT,
    response_ms REAL,
    status_code INTEGER,
    correlation_id TEXT,
    ok          INTEGER
)""",
    "camera_health": """CREATE TABLE IF NOT EXISTS camera_health (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          REAL NOT NULL,
    camera_id   TEXT NOT NULL,
    actual_fps  REAL,
    target_fps  REAL,
    drop_count  INTEGER,
    motion_score REAL,
    connected   INTEGER,
    resolution_w INTEGER,
    resolution_h INTEGER,
    stalled     INTEGER
)""",
    "system_events": """CREATE TABLE IF NOT EXISTS system_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          REAL NOT NULL,
    event_type  TEXT NOT NULL,
    source      TEXT NOT NULL,
    detail      TEXT,
    data_json   TEXT,
    correlation_id TEXT,
    level       TEXT DEFAULT 'info'
)""",
}

#: index name → (table, columns), exactly the spec's.
INDEXES: dict[str, tuple[str, str]] = {
    "idx_dds_commands_ts": ("dds_commands", "ts"),
    "idx_dds_commands_cid": ("dds_commands", "correlation_id"),
    "idx_dds_commands_funcode": ("dds_commands", "funcode"),
    "idx_dds_feedback_ts": ("dds_feedback", "ts"),
    "idx_dds_feedback_funcode": ("dds_feedback", "funcode"),
    "idx_smoother_ts": ("smoother_state", "ts"),
    "idx_smoother_joint": ("smoother_state", "joint_id, ts"),
    "idx_web_requests_ts": ("web_requests", "ts"),
    "idx_web_requests_endpoint": ("web_requests", "endpoint, ts"),
    "idx_camera_health_ts": ("camera_health", "ts"),
    "idx_camera_health_cam": ("camera_health", "camera_id, ts"),
    "idx_system_events_ts": ("system_events", "ts"),
    "idx_system_events_type": ("system_events", "event_type, ts"),
}


def _create_v1(conn: sqlite3.Connection) -> None:
    for ddl in TABLES.values():
        conn.execute(ddl)
    for name, (table, columns) in INDEXES.items():
        conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table}({columns})")


#: Forward migrations: ``MIGRATIONS[n]`` takes a database from version n-1 to n. Append, never edit.
MIGRATIONS: dict[int, object] = {1: _create_v1}


class SchemaTooNew(RuntimeError):
    """The database was written by a newer otel-tele; we neither write nor migrate it."""


def connect(
    db_path: str | Path, *, read_only: bool = False, timeout_ms: int = BUSY_TIMEOUT_MS
) -> sqlite3.Connection:
    """A connection with the spec's pragmas (WAL, ``synchronous=NORMAL``, ``busy_timeout``).

    ``read_only`` opens with ``mode=ro`` (the file must exist) and ``query_only``.
    """
    path = Path(db_path)
    if read_only:
        uri = f"file:{path.resolve().as_posix()}?mode=ro"
        conn = sqlite3.connect(
            uri, uri=True, timeout=timeout_ms / 1000, check_same_thread=False, isolation_level=None
        )
        conn.execute("PRAGMA query_only = ON")
    else:
        conn = sqlite3.connect(
            str(path), timeout=timeout_ms / 1000, check_same_thread=False, isolation_level=None
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
