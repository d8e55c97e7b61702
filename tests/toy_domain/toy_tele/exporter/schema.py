"""The toy sink's storage layout, declared once: file, table, columns, DDL and insert (no writing).

Readers (``toy_tele.query``) use these names; the writer builds its statements from them.
"""

from __future__ import annotations

#: The table the sink writes, in ``<data_dir>/<toy_db_name>`` (default ``toy.db``).
TABLE = "toy_pings"
DEFAULT_DB_NAME = "toy.db"

#: (column, SQLite type) in insert order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("ts_ns", "INTEGER NOT NULL"),
    ("seq", "INTEGER NOT NULL"),
    ("latency_ms", "REAL"),
    ("note", "TEXT"),
    ("ok", "INTEGER"),
    ("service", "TEXT"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _type in COLUMNS)

DDL = f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(f'{n} {t}' for n, t in COLUMNS)})"
INSERT = f"INSERT INTO {TABLE} ({', '.join(COLUMN_NAMES)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
