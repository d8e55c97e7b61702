"""Storage maintenance as the health page and ``doctor`` see it: each sink's retention state.

A sink that prunes, expires or compacts records each pass with :func:`record_run` — what it did,
when, how many rows went and when the next pass is due — in ``<folder>/.maintenance/<sink>.json``
beside its storage (written whole: temp-then-rename), since the dashboard may run in another
process than the writer (``otel-tele ui``). A sink reports its state through the function its
registry entry names (``SinkSpec.state``: ``"module:function"``, called with the settings, returning
a :class:`StorageState`); the core names no sink.

Example::

    record_run(Path("telemetry"), "sqlite", "prune", removed=120, next_run=time.time() + 3600)
    last_run(Path("telemetry"), "sqlite")   # MaintenanceRun(what='prune', at=..., removed=120, ...)
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

_log = logging.getLogger("otel_tele")

#: The folder, beside a sink's storage, that holds its maintenance record.
RECORD_DIR = ".maintenance"


@dataclass(frozen=True)
class MaintenanceRun:
    """One maintenance pass: ``what`` (``prune``, ``compaction`` …), when it ended (epoch seconds),
    the rows it removed, a short detail, and when the next pass is due (epoch seconds, if scheduled)."""

    what: str
    at: float
    removed: int
    detail: str = ""
    next_run: float | None = None


@dataclass(frozen=True)
class StorageState:
    """A sink's retention state: the configured policy in words, the oldest record it keeps (epoch
    seconds), its last maintenance pass and when the next one is due (epoch seconds)."""

    retention: str
    oldest: float | None = None
    last_run: MaintenanceRun | None = None
    next_run: float | None = None
    note: str = ""


def record_path(folder: Path, sink: str) -> Path:
    return Path(folder) / RECORD_DIR / f"{sink}.json"


def record_run(
    folder: Path,
    sink: str,
    what: str,
    removed: int,
    *,
    detail: str = "",
    next_run: float | None = None,
    at: float | None = None,
) -> None:
    """Keep the pass just made as the sink's last one. Never raises: a record that cannot be written
    is logged (the storage itself is fine)."""
    run = MaintenanceRun(what, time.time() if at is None else at, int(removed), detail, next_run)
    path = record_path(folder, sink)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(asdict(run)), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        _log.warning("%s: could not record its %s pass: %s", sink, what, type(exc).__name__)
        tmp.unlink(missing_ok=True)


def last_run(folder: Path, sink: str) -> MaintenanceRun | None:
    """The sink's last recorded pass; ``None`` when there is none or the record is unreadable."""
    try:
        raw = json.loads(record_path(folder, sink).read_text(encoding="utf-8"))
        run = MaintenanceRun(
            str(raw["what"]),
            float(raw["at"]),
            int(raw["removed"]),
            str(raw.get("detail", "")),
            None if raw.get("next_run") is None else float(raw["next_run"]),
        )
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return run if math.isfinite(run.at) else None


def days_text(days: float | None) -> str:
    """A retention window in words: ``7 days``; 0, negative or none: kept until removed."""
    if days is None or days <= 0:
        return "none: kept until removed"
    return f"{days:g} day" + ("" if days == 1 else "s")
