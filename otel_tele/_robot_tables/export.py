"""Any one of the six tables by name: newest rows, every row streamed, its columns."""

from __future__ import annotations

from collections.abc import Iterator

from .._robot_query import TimeArg, filters, where
from ._base import Row, TableReader, table_name


class ExportReads(TableReader):
    """Any one of the six tables by name: newest rows, every row streamed, its columns."""

    def rows(self, table: str, limit: int = 100, *, start: TimeArg = None, end: TimeArg = None) -> list[Row]:
        """Newest rows of one of the six tables (the debug endpoint); ``ValueError`` for any other name."""
        clauses, params = filters(None, start, end)
        return self._rows(table_name(table), "*", clauses, params, limit)

    def iter_rows(self, table: str, *, start: TimeArg = None, end: TimeArg = None) -> Iterator[Row]:
        """Every row of one table, oldest first, streamed (export). Bad arguments raise at the call."""
        clauses, params = filters(None, start, end)
        return iter(
            self._conn.execute(f"SELECT * FROM {table_name(table)}{where(clauses)} ORDER BY id", params)
        )

    def columns(self, table: str) -> list[str]:
        """The column names of one table, in order."""
        return [row["name"] for row in self._all(f"PRAGMA table_info({table_name(table)})")]
