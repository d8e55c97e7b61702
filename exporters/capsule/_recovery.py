"""Bringing back the production runs whose writer is gone (killed, or it gave up on a failed publication).

:func:`recover_runs` publishes such a run's temp folder as a run with ``status = "interrupted"``,
its rows read back from the journals (:mod:`._journal`): the next production writer and
``otel-tele runs consolidate`` call it. A folder whose manifest was already written (the writer
died just before its rename) is published as it is.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from . import _artifacts as artifacts
from . import _flow as flows
from . import schema
from ._journal import JOURNAL_SUFFIX, lock_path, read_journal, writer_gone
from ._manifest import utc_now, write_manifest
from ._writers import publish_folder, run_info

_log = logging.getLogger("otel_tele")


def recover_runs(root: Path, *, fsync: bool = True) -> list[str]:
    """Publish every production temp folder whose writer is gone; returns the run folders made."""
    runs = root / schema.RUNS_DIR
    if not runs.is_dir():
        return []
    published: list[str] = []
    with flows.locked(runs / ".recover.lock"):
        for lock in runs.glob(".tmp-*.lock"):  # a writer killed between its rename and this clean-up
            if not lock.with_suffix("").exists() and writer_gone(lock.with_suffix("")):
                lock.unlink(missing_ok=True)
        for tmp in sorted(p for p in runs.glob(".tmp-*") if p.is_dir() and writer_gone(p)):
            try:
                target = _recover(root, tmp, fsync=fsync)
            except Exception:
                _log.exception("capsule: could not recover the interrupted run in %s (kept)", tmp.name)
                continue
            lock_path(tmp).unlink(missing_ok=True)
            if target is not None:
                published.append(target.name)
                _log.warning("capsule: run %s recovered from a writer that stopped", target.name)
    return published


def _recover(root: Path, tmp: Path, *, fsync: bool) -> Path | None:
    journals = [tmp / f"{table}{JOURNAL_SUFFIX}" for table in schema.TABLES]
    manifest_path = tmp / schema.MANIFEST
    # A manifest the kill cut off before its rename (``write_manifest``'s temp file): never published.
    for partial in tmp.glob(f".tmp-{schema.MANIFEST}-*"):
        partial.unlink(missing_ok=True)
    if manifest_path.exists():  # whole: the writer died between its manifest and its rename
        run_id = str(schema.read_manifest(manifest_path)["run_id"])
        for journal in journals:
            journal.unlink(missing_ok=True)
        artifacts.clean(tmp)
        return publish_folder(tmp, root / schema.RUNS_DIR, run_id, fsync=fsync)
    tables = {table: read_journal(tmp / f"{table}{JOURNAL_SUFFIX}", table) for table in schema.TABLES}
    if not any(t.num_rows for t in tables.values()):
        shutil.rmtree(tmp, ignore_errors=True)  # nothing of it was ever durable (or booked exported)
        return None
    first = tables["telemetry"] if tables["telemetry"].num_rows else tables["events"]
    info = run_info(str(first.column("run_id")[0].as_py()), tables)
    for table, data in tables.items():
        path = tmp / schema.RUN_FILES[table]
        pq.write_table(data, path, row_group_size=schema.APPEND_ROW_GROUP_ROWS, **schema.WRITE_OPTIONS)
        if fsync:
            flows._fsync(path)
    manifest: dict[str, Any] = info.manifest(
        status="interrupted",
        rows=tables["telemetry"].num_rows,
        events=tables["events"].num_rows,
        recovered_at=utc_now(),
        files=dict(schema.RUN_FILES),
        # Whole copies only: one cut off by the kill is a ``.part-`` file, removed here.
        artifacts=schema.artifact_listing(tmp),
        schema=schema.schema_doc(),
    )
    write_manifest(manifest_path, manifest, fsync=fsync)
    for journal in journals:
        journal.unlink(missing_ok=True)
    artifacts.clean(tmp, drop_unlisted=True)
    return publish_folder(tmp, root / schema.RUNS_DIR, info.run_id, fsync=fsync)
