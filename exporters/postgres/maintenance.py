"""Maintenance of the inference store: the retention policy (``inference_retention_days``, 60 by
default) and pruning, as plain functions the sink (on a schedule) and the CLI
(``otel-tele inference prune``) call.

Pruning deletes raw rows older than the window in short batches, each its own transaction under a
short lock timeout so ingest is never held up for long, then the rollup buckets and batch ids older
than the window (the cutoff is aligned to the hour, as the rollups are).

Example::

    from otel_tele.exporters.postgres import maintenance

    report = maintenance.prune_location(data_dir="telemetry", retention_days=30)
    report["deleted_rows"], report["complete"]
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from otel_tele._maintenance import MaintenanceRun, StorageState, days_text, last_run, record_run
from otel_tele._settings import resolve
from otel_tele.domains.inference import POSTGRES_DSN

from ._backends import open_store
from ._store import InferenceStore, PruneResult
from .schema import InferenceConfig, open_reader

#: The name its maintenance record is kept under (``<data_dir>/.maintenance/postgres.json``).
SINK = "postgres"


def retention_cutoff(days: int, now: float | None = None) -> int:
    """Epoch seconds (hour aligned) before which a retention window of ``days`` deletes."""
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        raise ValueError(f"retention_days must be a non-negative integer, got {days!r}")
    return int(((time.time() if now is None else now) - days * 86_400) // 3600 * 3600)


def prune_store(
    store: InferenceStore,
    config: InferenceConfig,
    *,
    now: float | None = None,
    retention_days: int | None = None,
    max_batches: int | None = None,
    batch_rows: int = 10_000,
) -> PruneResult:
    """Delete what is older than the retention window (``retention_days``, default the config's)."""
    days = config.inference_retention_days if retention_days is None else retention_days
    return store.prune(
        retention_cutoff(days, now),
        batch_rows=batch_rows,
        lock_timeout_ms=config.inference_lock_timeout_ms,
        max_batches=max_batches,
    )


def prune(
    store: InferenceStore,
    config: InferenceConfig,
    *,
    now: float | None = None,
    retention_days: int | None = None,
    max_batches: int | None = None,
    batch_rows: int = 10_000,
) -> dict[str, Any]:
    """:func:`prune_store` as a report: ``retention_days``, ``deleted_rows``, ``deleted_rollup_rows``,
    ``batches``, ``complete``, ``lock_timeouts``."""
    result = prune_store(
        store, config, now=now, retention_days=retention_days, max_batches=max_batches, batch_rows=batch_rows
    )
    days = config.inference_retention_days if retention_days is None else retention_days
    return {"retention_days": days, **asdict(result)}


def prune_location(
    *,
    dsn: str | None = None,
    data_dir: str | Path | None = None,
    retention_days: int | None = None,
    max_batches: int | None = None,
    batch_rows: int = 10_000,
) -> dict[str, Any]:
    """:func:`prune` on the store ``dsn`` names (else ``OTEL_TELE_POSTGRES_DSN``, else the embedded one
    under ``data_dir``), with the settings' retention and lock timeout; the store is closed after."""
    settings = resolve({"postgres_dsn": dsn, "data_dir": data_dir})
    config = InferenceConfig.from_settings(settings)
    store = open_store(
        settings.get(POSTGRES_DSN), settings.data_dir, pool_max_size=config.postgres_pool_max_size
    )
    try:
        days = config.inference_retention_days if retention_days is None else retention_days
        result = prune_store(
            store, config, retention_days=days, max_batches=max_batches, batch_rows=batch_rows
        )
    finally:
        store.close()
    record_prune(Path(settings.data_dir), config, result, retention_days=days)
    return {"retention_days": days, **asdict(result)}


def record_prune(
    data_dir: Path,
    config: InferenceConfig,
    result: PruneResult,
    *,
    retention_days: int | None = None,
    next_run: float | None = None,
) -> None:
    """Keep ``result`` as the store's last prune (``<data_dir>/.maintenance/postgres.json``)."""
    days = config.inference_retention_days if retention_days is None else retention_days
    detail = f"rows older than {days_text(days)}; {result.deleted_rollup_rows} rollup rows"
    if not result.complete:
        detail += "; more left for the next pass"
    record_run(data_dir, SINK, "prune", result.deleted_rows, detail=detail, next_run=next_run)


def last_prune(data_dir: str | Path) -> MaintenanceRun | None:
    """The store's last recorded prune (by the sink's schedule or ``otel-tele inference prune``)."""
    return last_run(Path(data_dir), SINK)


def storage_state(settings: Any) -> StorageState:
    """The inference store's retention state (the health page's row): the configured window, the
    oldest raw row (read-only), the last prune and when the sink's schedule runs the next one."""
    config = InferenceConfig.from_settings(settings)
    reader = open_reader(settings.get(POSTGRES_DSN), settings.data_dir)
    try:
        oldest, _newest = reader.time_span()
    finally:
        reader.close()
    run = last_prune(settings.data_dir)
    return StorageState(
        days_text(config.inference_retention_days),
        oldest,
        run,
        run.next_run if run is not None else None,
        note=f"pruned every {config.inference_prune_interval_s:g} s while the sink writes",
    )
