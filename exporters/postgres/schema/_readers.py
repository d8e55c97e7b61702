"""What the query API reads a store through (:class:`StoreReader`), and :func:`open_reader` choosing
the backend's reader."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ._pg_reader import PgReader
from ._sqlite_reader import SqliteReader
from ._tables import DB_FILE, Rollup


class StoreReader(Protocol):
    """What the query API reads a store through (both readers; the sink's stores are readers too)."""

    dialect: str
    location: str  # printable, password redacted

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
        """Rows ``(bucket or None, event_type, component, *MEASURES)`` merged per (``step`` bucket,
        event type, component); ``step=None`` merges the whole window; ``by_component=False`` merges
        all components (component ``""``)."""

    def tables(self) -> list[dict[str, Any]]:
        """Per owned table: ``table``, ``size_bytes``, ``table_bytes``, ``index_bytes``, ``rows_estimate``."""

    def time_span(self) -> tuple[float | None, float | None]:
        """Oldest and newest raw row timestamp (epoch seconds)."""

    def row_count(self) -> int:
        """Exact raw row count (summed from the hourly rollup)."""

    def schema_version(self) -> int:
        """0 when the store has no tables yet."""

    def close(self) -> None: ...


def open_reader(dsn: str | None, data_dir: Path | str, **options: Any) -> StoreReader:
    """A read-only view of the store: PostgreSQL when ``dsn`` is given, else the embedded database
    ``<data_dir>/inference.db``. Reading never creates a table (nor the file).

    Example::

        reader = open_reader(None, "telemetry")
        reader.row_count()
    """
    if dsn:
        return PgReader(dsn, **options)
    return SqliteReader(Path(data_dir) / DB_FILE, **options)
