"""What every robot table reader shares: the read-only connection, the digest and the row helpers."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from otel_tele.exporters.sqlite.schema import connect_read_only

from .._robot_digest import DigestReader
from .._robot_query import ROBOT_TABLES, check_limit, where

Row = dict[str, Any]


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


def open_telemetry_db(db_path: Path) -> sqlite3.Connection:
    """A read-only (``mode=ro``) connection to a robot ``telemetry.db``, rows as dicts.

    Raises ``IsADirectoryError``/``FileNotFoundError`` for a wrong path and ``sqlite3.DatabaseError``
    for a file that is not a telemetry database."""
    if db_path.is_dir():
        raise IsADirectoryError(
            f"{db_path} is a folder, not a telemetry database (the file is usually "
            f"{db_path / 'telemetry.db'})"
        )
    if not db_path.is_file():
        raise FileNotFoundError(f"telemetry database not found: {db_path}")
    conn = connect_read_only(db_path)
    try:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise sqlite3.DatabaseError(f"{db_path} is not a readable telemetry database: {exc}") from exc
    missing = [table for table in ROBOT_TABLES if table not in names]
    if missing:
        conn.close()
        raise sqlite3.DatabaseError(f"{db_path} is not a telemetry database (missing {', '.join(missing)})")
    conn.row_factory = _dict_row
    return conn


class TableReader:
    """The connection (``_conn``), the digest sidecar's reader (``_digest``) and the database path,
    set by the façade; the queries every reader runs through."""

    db_path: Path
    _conn: sqlite3.Connection
    _digest: DigestReader

    def _all(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[Row]:
        rows: list[Row] = self._conn.execute(sql, params).fetchall()
        return rows

    def _one(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> Any:
        row = self._conn.execute(sql, params).fetchone()
        return next(iter(row.values())) if row else None

    def _rows(self, table: str, columns: str, clauses: list[str], params: list[Any], limit: int) -> list[Row]:
        sql = f"SELECT {columns} FROM {table}{where(clauses)} ORDER BY ts DESC LIMIT ?"
        return self._all(sql, [*params, check_limit(limit)])


def positive_seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        raise ValueError(f"{what}: expected a positive number of seconds, got {value!r}")
    return float(value)


def text(value: Any) -> str | None:
    return None if value is None else str(value)


def table_name(name: Any) -> str:
    if name not in ROBOT_TABLES:
        raise ValueError(f"unknown table {name!r}; expected one of {', '.join(ROBOT_TABLES)}")
    return str(name)
