"""One in-memory DuckDB database a process shares for its read-only queries, fork-safe.

Opening DuckDB costs more than a dashboard page's queries, and Parquet footers read once can be
kept (``parquet_metadata_cache``: an entry is checked against its file's modification time). So
readers keep one database per purpose and take a cursor per call: cursors of one database run side
by side on different threads.

Fork safety: the process forks only between two calls into DuckDB (a
:class:`~otel_tele._internal.ForkGate`), so no DuckDB-internal lock is held by a thread the child
lacks; a child never uses (nor closes) the parent's database — it is abandoned there, and the
child opens its own on its first query.

Example::

    shared = SharedDatabase("the traces page")
    with shared.cursor() as cursor:
        cursor.execute("SELECT 42").fetchall()
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ._internal import ForkGate, abandon_inherited, at_fork_in_child, fork_safe


class SharedDatabase:
    """A lazily opened in-memory DuckDB database; ``prepare(connection)``, if given, runs under the
    lock before every cursor is taken (to (re)define views when their inputs changed)."""

    def __init__(self, what: str, *, fork_wait_s: float = 5.0) -> None:
        self.what = what
        self._lock = fork_safe(threading.Lock())
        self._gate = ForkGate(timeout_s=fork_wait_s, what=what)
        self._con: Any = None
        at_fork_in_child(self._after_fork)

    def _after_fork(self) -> None:
        abandon_inherited(self._con)
        self._con = None

    @contextmanager
    def cursor(self, prepare: Callable[[Any], None] | None = None) -> Iterator[Any]:
        import duckdb  # an optional dependency: only its readers need it

        with self._gate:
            with self._lock:
                if self._con is None:
                    self._con = duckdb.connect()
                    self._con.execute("SET parquet_metadata_cache = true")
                if prepare is not None:
                    prepare(self._con)
                cursor = self._con.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
