"""Which store a configuration selects: the one place that imports both backends (so neither
backend, nor the protocol they implement, imports the other)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._store import InferenceStore
from .schema import DB_FILE


def open_store(dsn: str | None, data_dir: Path | str, **options: Any) -> InferenceStore:
    """PostgreSQL when ``dsn`` is given, else the embedded SQLite database ``<data_dir>/inference.db``.

    Example::

        store = open_store(None, "telemetry")   # the embedded store
    """
    if dsn:
        from ._pg import PgStore

        return PgStore(dsn, **options)
    from ._embedded import SqliteStore

    return SqliteStore(Path(data_dir) / DB_FILE, **options)
