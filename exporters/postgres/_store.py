"""What the sink's inference store does beyond reading, and the write SQL both backends share.

:class:`InferenceStore` is implemented by the PostgreSQL store (``_pg``) and the embedded SQLite store
(``_embedded``), each the schema's reader of its backend plus writing, migrating and pruning;
``_backends.open_store`` chooses one. This module imports neither backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ._rows import Batch
from .schema import KEY_COLUMNS, MEASURES, ParamStyle, StoreReader


@dataclass(frozen=True)
class PruneResult:
    deleted_rows: int
    deleted_rollup_rows: int
    batches: int
    complete: bool  # False: stopped at max_batches or by a lock timeout; the rest goes next time
    lock_timeouts: int = 0


class InferenceStore(StoreReader, Protocol):
    """The storage primitives behind the sink: the reads of :class:`~.schema.StoreReader`, and writes."""

    #: Errors by which the database refuses a batch for its *data* (a value it will not take), as
    #: opposed to a failure of the connection or the server: the sink then looks for the bad rows.
    refused_errors: tuple[type[Exception], ...]

    def write(self, batch: Batch, batch_id: str) -> None:
        """Rows and rollup increments in one transaction; a batch id already written is skipped."""

    def migrate(self) -> int:
        """Bring the schema to the current version (forward only); returns the version found."""

    def prune(
        self, cutoff: int, *, batch_rows: int, lock_timeout_ms: int, max_batches: int | None
    ) -> PruneResult:
        """Delete raw rows and rollup buckets older than ``cutoff`` (epoch s, hour aligned)."""

    def reachable(self) -> bool: ...


def upsert_template(style: ParamStyle, *, least: str, greatest: str) -> str:
    """INSERT … ON CONFLICT merging each measure by its rule (sum, min, max)."""
    columns = (*KEY_COLUMNS, *(m.name for m in MEASURES))
    sets = []
    for m in MEASURES:
        if m.merge == "sum":
            sets.append(f"{m.name} = r.{m.name} + excluded.{m.name}")
        else:
            fn = least if m.merge == "min" else greatest
            sets.append(f"{m.name} = {fn}(r.{m.name}, excluded.{m.name})")
    marker = "%s" if style == "pyformat" else "?"
    return (
        f"INSERT INTO {{t}} AS r ({', '.join(columns)}) VALUES ({', '.join(marker for _ in columns)}) "
        f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET {', '.join(sets)}"
    )
