"""Read-only access to the embedded store (an SQLite file with the same schema)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from otel_tele._internal import ForkGate

from ._queries import rollup_statement, sqlite_sql
from ._tables import ROLLUP_HOUR, TABLE, TABLES, Rollup


class SqliteReader:
    """Reads the embedded store: one short-lived ``query_only`` connection per question, so readers
    run beside the writer (WAL) and never hold the file open."""

    dialect = "sqlite"

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 5_000, **_postgres_only: Any) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._busy_timeout_s = busy_timeout_ms / 1000
        # Every SQLite call — connect, statement, close — runs inside the gate: the process forks only
        # between them (see ForkGate), so a child never inherits SQLite's mutexes held by a reader's
        # connect. The writer (the sink's store) shares it and takes it before its own lock; a write
        # may wait its whole busy timeout inside, and a fork waits that long too.
        self._gate = ForkGate(self._busy_timeout_s + 1.0, what=f"the inference store {self.path}")

    def _connect(self, *, read_only: bool = True) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        if read_only:
            conn.execute("PRAGMA query_only=ON")
        else:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection | None]:
        """A short-lived connection for one query (None when the database does not exist yet), open
        only inside the fork gate: no read transaction or half-done connect/close crosses a fork."""
        with self._gate:
            if not self.path.exists():
                yield None
                return
            conn = self._connect()
            try:
                yield conn
            finally:
                conn.close()

    @staticmethod
    def _has_tables(conn: sqlite3.Connection) -> bool:
        return bool(conn.execute("PRAGMA user_version").fetchone()[0] >= 2)

    def schema_version(self) -> int:
        with self._reader() as conn:
            return 0 if conn is None else int(conn.execute("PRAGMA user_version").fetchone()[0])

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
            return conn.execute(sqlite_sql(template, t=rollup.table), params).fetchall()

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
                rows = conn.execute(sqlite_sql("SELECT count(*) FROM {t}", t=table)).fetchone()[0]
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
                sqlite_sql("SELECT min(timestamp), max(timestamp) FROM {t}", t=TABLE)
            ).fetchone()
            return oldest, newest

    def row_count(self) -> int:
        with self._reader() as conn:
            if conn is None or not self._has_tables(conn):
                return 0
            query = sqlite_sql("SELECT coalesce(sum(count), 0) FROM {t}", t=ROLLUP_HOUR.table)
            return int(conn.execute(query).fetchone()[0])

    def close(self) -> None:
        """Nothing held between questions."""
