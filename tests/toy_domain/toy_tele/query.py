"""Reading the toy table (read-only; through ``exporter.schema`` only, never the writer).

Example::

    from toy_tele.query import pings, summary
    summary("telemetry/toy.db")     # {'pings': 3, 'failed_pings': 0, 'mean_latency_ms': 2.5}

``sql_views`` puts the table in ``otel-tele sql``'s catalog (``otel-tele sql "SELECT * FROM toy_pings"``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from otel_tele.settings import Settings
from otel_tele.sql import SQLITE_READER, SqliteSource, SqlView

from .exporter.options import TOY_DB_NAME
from .exporter.schema import COLUMN_NAMES, COLUMNS, TABLE


def _connect(db_path: str | Path) -> sqlite3.Connection | None:
    path = Path(db_path)
    if not path.exists():
        return None  # nothing recorded yet: an empty answer, and no file created by a reader
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)


def pings(db_path: str | Path, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The stored pings in sequence order (at most ``limit``)."""
    conn = _connect(db_path)
    if conn is None:
        return []
    try:
        sql = f"SELECT {', '.join(COLUMN_NAMES)} FROM {TABLE} ORDER BY seq, ts_ns"
        rows = conn.execute(sql) if limit is None else conn.execute(sql + " LIMIT ?", (limit,))
        return [dict(zip(COLUMN_NAMES, row, strict=True)) for row in rows]
    finally:
        conn.close()


def summary(db_path: str | Path) -> dict[str, Any]:
    """How many pings, how many not ok, and their mean latency (None without any)."""
    conn = _connect(db_path)
    if conn is None:
        return {"pings": 0, "failed_pings": 0, "mean_latency_ms": None}
    try:
        count, failed, mean = conn.execute(
            f"SELECT count(*), coalesce(sum(ok = 0), 0), avg(latency_ms) FROM {TABLE}"
        ).fetchone()
        return {"pings": count, "failed_pings": failed, "mean_latency_ms": mean}
    finally:
        conn.close()


def sql_views(settings: Settings) -> tuple[SqlView, ...]:
    """The toy table in ``otel-tele sql``'s catalog as ``toy_pings`` (``Domain.sql_views``)."""
    import pyarrow as pa

    arrow = {"INTEGER": pa.int64(), "REAL": pa.float64(), "TEXT": pa.string()}
    columns = pa.schema([(name, arrow[kind.split()[0]]) for name, kind in COLUMNS])
    db = settings.data_dir / settings.get(TOY_DB_NAME)
    return (
        SqlView(
            "toy_pings",
            columns,
            "one row per toy ping",
            f"{SQLITE_READER}: {settings.get(TOY_DB_NAME)}",
            sqlite=SqliteSource(db, TABLE),
        ),
    )
