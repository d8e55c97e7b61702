"""The general store's retention state, as the health page shows it (the passes themselves —
expiry by day partition, then compaction — are :func:`~._parts.maintain`, run by the sink's
background thread every ``store_compact_interval`` seconds)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from otel_tele._maintenance import StorageState, days_text, last_run
from otel_tele.domains import store as options

from . import _parts
from .schema import SCHEMAS, store_root

#: The name its maintenance record is kept under (``<store>/.maintenance/store.json``).
SINK = "store"


def storage_state(settings: Any) -> StorageState:
    """Configured retention, the oldest day partition kept (its midnight, UTC), the last pass the
    sink recorded and the next one."""
    root = store_root(settings)
    days = [day for dataset in SCHEMAS for day, _path in _parts.partitions(root, dataset)]
    oldest = datetime(*min(days).timetuple()[:3], tzinfo=UTC).timestamp() if days else None
    run = last_run(root, SINK)
    return StorageState(
        days_text(settings.get(options.STORE_RETENTION_DAYS)),
        oldest,
        run,
        run.next_run if run is not None else None,
        note=f"expiry and compaction every {settings.get(options.STORE_COMPACT_INTERVAL_S):g} s "
        "while the sink runs",
    )
