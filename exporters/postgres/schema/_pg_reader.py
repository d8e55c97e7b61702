"""Read-only access to the PostgreSQL store, through a lazily opened pool; the sink's store is this
reader with a writable pool."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from otel_tele._internal import abandon_inherited, at_fork_in_child
from otel_tele._scrub import protect_logs
from otel_tele._settings import dsn_secrets, redact_dsn

from ._queries import pg_sql, rollup_statement
from ._tables import ROLLUP_HOUR, TABLE, TABLES, VERSION_TABLE, Rollup

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool


def _psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401  (the pool comes with the same extra)
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"{exc}; the PostgreSQL inference store needs pip install 'otel-tele[postgres]'"
        ) from exc
    return psycopg


class PgReader:
    """Reads the PostgreSQL store through a lazily opened pool whose sessions are read-only
    (``default_transaction_read_only``); the sink's store is this reader with a writable pool."""

    dialect = "postgresql"
    _read_only = True
    _application_name = "otel-tele-reader"
    _pool_name = "otel-tele-inference-reader"

    def __init__(
        self,
        dsn: str,
        *,
        pool_max_size: int = 4,
        connect_timeout_s: float = 5.0,
        getconn_timeout_s: float = 5.0,
    ) -> None:
        _psycopg()
        self.location = redact_dsn(dsn)
        protect_logs(dsn_secrets(dsn))  # psycopg quotes parts of a bad DSN in its errors
        self._dsn = dsn
        self._pool_max_size = pool_max_size
        self._connect_timeout_s = connect_timeout_s
        self._getconn_timeout_s = getconn_timeout_s
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        at_fork_in_child(self._reinit_after_fork)
        self._migrated = False
        self._tables_seen = False

    @property
    def pool(self) -> ConnectionPool:
        from psycopg_pool import ConnectionPool

        with self._lock:
            if self._pool is None:
                # Opened lazily: a service that never logs (or asks) about an inference never connects.
                kwargs: dict[str, Any] = {
                    "autocommit": True,
                    "application_name": self._application_name,
                    "connect_timeout": max(1, int(self._connect_timeout_s)),
                }
                if self._read_only:
                    kwargs["options"] = "-c default_transaction_read_only=on"
                self._pool = ConnectionPool(
                    self._dsn,
                    min_size=1,
                    max_size=self._pool_max_size,
                    open=False,
                    name=self._pool_name,
                    timeout=self._getconn_timeout_s,
                    check=ConnectionPool.check_connection,
                    kwargs=kwargs,
                )
                self._pool.open(wait=False)
            return self._pool

    def _reinit_after_fork(self) -> None:
        # The parent's pool threads did not fork and its sockets are the parent's sessions: a child
        # talking on them would interleave with the parent's protocol. The child opens its own pool.
        self._lock = threading.Lock()
        abandon_inherited(self._pool)
        self._pool = None

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(timeout=2.0)

    def _has_tables(self, conn: Any) -> bool:
        if not (self._migrated or self._tables_seen):
            # Reads never create the schema (the HTTP routes are read-only); no tables, no data.
            found = conn.execute("SELECT to_regclass(%s)", (ROLLUP_HOUR.table,)).fetchone()
            self._tables_seen = found != (None,)
        return self._migrated or self._tables_seen

    def schema_version(self) -> int:
        with self.pool.connection() as conn:
            if conn.execute("SELECT to_regclass(%s)", (VERSION_TABLE,)).fetchone() == (None,):
                return 0
            row = conn.execute(
                pg_sql("SELECT coalesce(max(version), 0) FROM {t}", t=VERSION_TABLE)
            ).fetchone()
            return int(row[0]) if row else 0

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
            "pyformat",
            since=since,
            until=until,
            event_types=event_types,
            component=component,
            step=step,
            by_component=by_component,
        )
        with self.pool.connection() as conn:
            if not self._has_tables(conn):
                return []
            rows: list[tuple[Any, ...]] = conn.execute(pg_sql(template, t=rollup.table), params).fetchall()
            return rows

    def tables(self) -> list[dict[str, Any]]:
        query = (
            "SELECT n.name, pg_total_relation_size(c.oid), pg_relation_size(c.oid), pg_indexes_size(c.oid), "
            "c.reltuples FROM unnest(%s::text[]) WITH ORDINALITY AS n(name, ord) "
            "JOIN pg_class c ON c.oid = to_regclass(quote_ident(n.name)) ORDER BY n.ord"
        )
        with self.pool.connection() as conn:
            rows = conn.execute(query, (list(TABLES),)).fetchall()
        return [
            {
                "table": name,
                "size_bytes": int(total),
                "table_bytes": int(heap),
                "index_bytes": int(index),
                "rows_estimate": max(0, int(tuples)),
            }
            for name, total, heap, index, tuples in rows
        ]

    def time_span(self) -> tuple[float | None, float | None]:
        with self.pool.connection() as conn:
            if not self._has_tables(conn):
                return None, None
            row = conn.execute(pg_sql("SELECT min(timestamp), max(timestamp) FROM {t}", t=TABLE)).fetchone()
        oldest, newest = row or (None, None)
        return (
            None if oldest is None else oldest.timestamp(),
            None if newest is None else newest.timestamp(),
        )

    def row_count(self) -> int:
        with self.pool.connection() as conn:
            if not self._has_tables(conn):
                return 0
            row = conn.execute(
                pg_sql("SELECT coalesce(sum(count), 0) FROM {t}", t=ROLLUP_HOUR.table)
            ).fetchone()
        return int(row[0]) if row else 0
