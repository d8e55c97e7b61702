"""Maintenance of a capsule root: compaction, retention, archiving dev runs, export, clean-up.

Plain functions over a capsule root, the one implementation behind ``otel-tele runs consolidate``
and ``otel-tele runs prune`` (queries are :class:`otel_tele.runs.Runs`'s, and only read).

Example::

    from otel_tele.exporters.capsule import maintenance

    root = "telemetry/telematry_cfs"
    maintenance.consolidate(root, archive=["deconv_wavelet_v1"], export="all_telemetry.parquet")
    maintenance.prune(root, dry_run=True)["runs_removed"]
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from otel_tele._maintenance import StorageState, days_text, last_run, record_run
from otel_tele.semconv import fda as v

from . import _artifacts as artifacts
from . import _flow as flows
from . import schema
from ._flow import GRACE_SECONDS
from ._journal import pid_alive
from ._manifest import utc_now
from ._recovery import recover_runs
from ._writers import ProductionWriter, RunInfo

try:
    import duckdb
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(f"FDA run maintenance needs duckdb: pip install 'otel-tele[capsule]' ({exc})") from exc

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "ConsolidationBusy",
    "archive_flow",
    "clean_temps",
    "consolidate",
    "consolidate_flow",
    "expired_runs",
    "export_telemetry",
    "flow_dirs",
    "prune",
    "recover_runs",
    "refresh_database",
    "storage_state",
]

DEFAULT_RETENTION_DAYS = 90
#: The name its maintenance record is kept under (``<root>/.maintenance/capsule.json``).
SINK = "capsule"
STALE_TEMP_SECONDS = 24 * 3600


class ConsolidationBusy(RuntimeError):
    """Another process is consolidating the same flow."""


def flow_dirs(root: Path) -> list[Path]:
    base = root / schema.FLOWS_DIR
    return (
        sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
        if base.exists()
        else []
    )


@contextlib.contextmanager
def consolidating(flow_dir: Path) -> Iterator[None]:
    try:
        with flows.locked(flow_dir / ".consolidate.lock", blocking=False):
            yield
    except BlockingIOError:
        raise ConsolidationBusy(f"{flow_dir.name}: another consolidation is running") from None


def retention_cutoff(days: float) -> pa.Scalar:
    return pa.scalar(datetime.now(UTC) - timedelta(days=days), schema.TS_TYPE)


def consolidate_flow(
    flow_dir: Path,
    *,
    retention_days: float = DEFAULT_RETENTION_DAYS,
    exclude_runs: frozenset[str] = frozenset(),
    grace_seconds: float = GRACE_SECONDS,
    fsync: bool = True,
) -> list[dict[str, Any]]:
    """Compact each of the flow's files into one, dropping rows older than ``retention_days`` (by ``ts``)
    and rows of ``exclude_runs``. Appends continue meanwhile."""
    manifest = flow_dir / schema.MANIFEST
    if manifest.exists():
        schema.read_manifest(manifest)
    cutoff = retention_cutoff(retention_days)
    excluded = pa.array(sorted(exclude_runs), pa.string())

    def keep(table: pa.Table) -> pa.Array:
        recent = pc.fill_null(pc.greater_equal(table.column("ts"), cutoff), True)
        if not len(excluded):
            return recent
        return pc.and_(recent, pc.invert(pc.is_in(table.column("run_id"), value_set=excluded)))

    report = []
    with consolidating(flow_dir):
        with flows.locked(flow_dir / ".lock"):
            flows.recover(flow_dir)  # a publication a killed writer left half done comes first
        for mode in schema.MODES:
            for table in schema.TABLES:
                file = flows.FlowFile(flow_dir, mode, table)
                if file.generation() is None:
                    continue
                result: dict[str, Any]
                if _already_compact(file, cutoff) and not exclude_runs:
                    result = {"files": 1, "rows_in": None, "rows_out": None, "skipped": True}
                else:
                    result = file.consolidate(keep=keep, fsync=fsync)
                file.remove_retired(grace_seconds)
                report.append({"flow": flow_dir.name, "file": file.name, **result})
        # Artifacts follow their rows: gone with retention, or moved into the archived run folder.
        artifacts.prune_flow(
            flow_dir,
            older_than=time.time() - retention_days * 86400,
            runs=exclude_runs,
            grace_seconds=grace_seconds,
        )
    return report


def _already_compact(file: flows.FlowFile, cutoff: pa.Scalar) -> bool:
    """One consolidated file and nothing in it past retention: rewriting would change nothing."""
    files = file.visible_files()
    if len(files) != 1 or not files[0].name.startswith("c-"):
        return False
    meta = pq.ParquetFile(files[0]).metadata
    index = meta.schema.names.index("ts")
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(index).statistics
        if stats is None or not stats.has_min_max or stats.null_count or stats.min < cutoff.as_py():
            return False
    return True


def archive_flow(root: Path, flow_dir: Path, mode: str = "dev", *, fsync: bool = True) -> list[str]:
    """Move each run of a flow's ``mode`` files into its own ``runs/<run_id>/`` capsule; returns the ids.

    Runs whose folder already exists are left in the flow file (and reported by the caller)."""
    files = {t: flows.FlowFile(flow_dir, mode, t) for t in schema.TABLES}
    data = {t: _read_all(f) for t, f in files.items()}
    archived = []
    run_ids = sorted(
        set(data["telemetry"].column("run_id").to_pylist())
        | set(data["events"].column("run_id").to_pylist()) - {None}
    )
    for run_id in run_ids:
        if (root / schema.RUNS_DIR / run_id).exists():
            continue
        _archive_run(
            root,
            run_id,
            {t: d.filter(pc.equal(d.column("run_id"), run_id)) for t, d in data.items()},
            source=str(files["telemetry"].link.relative_to(root)),
            fsync=fsync,
        )
        archived.append(run_id)
    return archived


def _read_all(file: flows.FlowFile) -> pa.Table:
    tables = []
    for path in file.visible_files():
        pf = pq.ParquetFile(path)
        schema.check_parquet(pf.schema_arrow.metadata, path)
        tables.append(schema.conform(pf.read(), file.table))
    return pa.concat_tables(tables) if tables else schema.SCHEMAS[file.table].empty_table()


def _archive_run(root: Path, run_id: str, tables: dict[str, pa.Table], *, source: str, fsync: bool) -> None:
    import json

    telemetry, events = tables["telemetry"], tables["events"]
    first = (telemetry if telemetry.num_rows else events).slice(0, 1).to_pylist()[0]
    info = RunInfo(v.check_name("run_id", run_id), first["flow_name"], first["mode"], first["trial_id"])
    for row in events.to_pylist():
        payload = json.loads(row["payload"]) if row["payload"] else {}
        if row["event"] == v.RUN_STARTED:
            info.config = payload if isinstance(payload, dict) else {}
        elif row["event"] in v.END_EVENTS:
            info.summary = payload if isinstance(payload, dict) else {}
    writer = ProductionWriter(root, info, fsync=fsync)
    try:
        artifacts.link_into(schema.artifact_folder(root, info.flow_name, run_id), writer.tmp)
        if telemetry.num_rows:
            writer.add("telemetry", telemetry.sort_by([("ts", "ascending")]))
        if events.num_rows:
            writer.add("events", events.sort_by([("ts", "ascending")]))
        writer.finish(
            str(info.summary.get("status") or "incomplete"),
            archived_from=source,
            archived_at=utc_now(),
        )
    except BaseException:
        writer.discard()
        raise


def clean_temps(root: Path, *, dry_run: bool = False) -> list[str]:
    """Remove in-progress flow leftovers of processes that died (dead pid) or are older than a day.

    Production run temp folders are not removed here: :func:`recover_runs` publishes them."""
    removed = []
    candidates: list[Path] = []
    for flow_dir in flow_dirs(root):
        pending = flows.journaled_parts(flow_dir)  # a half-done publication's: recover() finishes it
        candidates += (p for p in flow_dir.glob(".tmp-*") if p.name not in pending)
    for path in candidates:
        if _stale(path):
            removed.append(str(path.relative_to(root)))
            if not dry_run:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return removed


def _stale(path: Path) -> bool:
    """Temp names carry the writer's pid (``.tmp-<name>-<pid>-<n>``)."""
    try:
        age = time.time() - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    if age > STALE_TEMP_SECONDS:
        return True
    parts = path.name.split("-")
    pid = next((int(p) for p in reversed(parts[:-1]) if p.isdigit()), None) if len(parts) > 2 else None
    return pid is not None and not pid_alive(pid)


def expired_runs(root: Path, *, now: datetime | None = None) -> list[Path]:
    """Run folders whose manifest sets ``retention_days`` and is past it (others are kept forever)."""
    now = now or datetime.now(UTC)
    expired = []
    runs = root / schema.RUNS_DIR
    for folder in sorted(runs.glob(schema.RUN_GLOB)) if runs.exists() else []:
        manifest = schema.read_manifest(folder / schema.MANIFEST)
        days = manifest.get("retention_days")
        started = manifest.get("started_at")
        if (
            isinstance(days, int | float)
            and isinstance(started, datetime)
            and started + timedelta(days=days) < now
        ):
            expired.append(folder)
    return expired


# -- the root as a whole (``otel-tele runs consolidate | prune``) -----------------------------------
def consolidate(
    root: str | os.PathLike[str],
    *,
    archive: Iterable[str] = (),
    export: str | os.PathLike[str] | None = None,
    retention_days: float | None = None,
    grace_seconds: float = GRACE_SECONDS,
) -> dict[str, Any]:
    """Compact appended parts (retention applied), archive the dev runs of the ``archive`` flows into
    ``runs/``, refresh ``duckdb.db``, and optionally export all telemetry to one Parquet file.

    Also publishes the runs of dead writers (``recovered``) and removes their flow leftovers."""
    root = Path(root)
    archive = [v.check_name("flow_name", name) for name in archive]
    report: dict[str, Any] = {
        "archived": [],
        "files": [],
        "recovered": recover_runs(root),
        "removed_temps": clean_temps(root),
    }
    for flow_dir in flow_dirs(root):
        archived: list[str] = []
        if flow_dir.name in archive:
            archived = archive_flow(root, flow_dir, "dev")
            report["archived"] += archived
        report["files"] += consolidate_flow(
            flow_dir,
            retention_days=_retention(flow_dir, retention_days),
            exclude_runs=frozenset(archived),
            grace_seconds=grace_seconds,
        )
    report["duckdb"] = str(refresh_database(root))
    if export is not None:
        report["export"] = export_telemetry(root, export)
    _record(root, "consolidation", report)
    return report


def prune(
    root: str | os.PathLike[str], *, dry_run: bool = False, retention_days: float | None = None
) -> dict[str, Any]:
    """Apply retention: expired run folders (their manifest's ``retention_days``), dev/tuner rows
    older than the flow's retention (default 90 days), leftovers of dead writers."""
    root = Path(root)
    expired = expired_runs(root)
    report: dict[str, Any] = {
        "dry_run": dry_run,
        "runs_removed": [p.name for p in expired],
        "recovered": [] if dry_run else recover_runs(root),
        "temps_removed": clean_temps(root, dry_run=dry_run),
        "files": [],
    }
    if dry_run:
        return report
    for folder in expired:
        shutil.rmtree(folder)
    for flow_dir in flow_dirs(root):
        report["files"] += consolidate_flow(flow_dir, retention_days=_retention(flow_dir, retention_days))
    refresh_database(root)
    _record(root, "prune", report)
    return report


def _record(root: Path, what: str, report: dict[str, Any]) -> None:
    """Keep the pass as the root's last (rows dropped by retention, runs removed)."""
    files = report.get("files", [])
    dropped = sum(
        f["rows_in"] - f["rows_out"]
        for f in files
        if isinstance(f.get("rows_in"), int) and isinstance(f.get("rows_out"), int)
    )
    runs = report.get("runs_removed", [])
    record_run(
        root, SINK, what, dropped, detail=f"{len(runs)} expired runs removed, {len(files)} files rewritten"
    )


def storage_state(settings: Any) -> StorageState:
    """The capsule root's retention state: dev/tuner rows expire per flow (the flow manifest's
    ``retention_days``, default 90), production runs per their manifest; passes run on
    ``otel-tele runs consolidate | prune``. The oldest data is the oldest file's time (no file read)."""
    root = schema.capsule_root(settings)
    times = [
        entry.stat().st_mtime
        for base in (root / schema.RUNS_DIR, root / schema.FLOWS_DIR)
        if base.is_dir()
        for entry in base.iterdir()
        if not entry.name.startswith(".")
    ]
    return StorageState(
        f"per flow (default {days_text(DEFAULT_RETENTION_DAYS)}); production runs per their manifest",
        min(times, default=None),
        last_run(root, SINK),
        None,
        note="passes run on otel-tele runs consolidate | prune",
    )


def export_telemetry(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> dict[str, Any]:
    """All telemetry rows in one Parquet file (zstd, large row groups), written atomically."""
    target = Path(path)
    if target.suffix != ".parquet":
        raise ValueError(f"export target must end in .parquet, got {str(target)!r}")
    tmp = target.with_name(f".tmp-{target.name}-{os.getpid()}")
    con = schema.define_views(duckdb.connect(), Path(root))
    try:
        con.execute(
            f"COPY (SELECT * FROM telemetry ORDER BY run_id, t_wall_ms) TO {schema.sql_literal(str(tmp))} "
            f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {schema.CONSOLIDATED_ROW_GROUP_ROWS}, "
            f"KV_METADATA {{'{schema.VERSION_KEY.decode()}': '{schema.SCHEMA_VERSION}', "
            f"'{schema.TABLE_KEY.decode()}': 'telemetry'}})"
        )
        rows = con.execute(f"SELECT count(*) FROM read_parquet({schema.sql_literal(str(tmp))})").fetchone()
    finally:
        con.close()
    os.replace(tmp, target)
    return {"path": str(target), "rows": rows[0] if rows else 0}


def refresh_database(root: str | os.PathLike[str]) -> Path:
    """(Re)define the views inside ``<root>/duckdb.db`` for users of the DuckDB CLI or other tools."""
    root = Path(root)
    path = root / schema.DATABASE
    root.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        schema.define_views(con, root.resolve(), check=False)
    finally:
        con.close()
    return path


def _retention(flow_dir: Path, override: float | None) -> float:
    if override is not None:
        return override
    manifest = flow_dir / schema.MANIFEST
    days = schema.read_manifest(manifest).get("retention_days") if manifest.exists() else None
    return float(days) if isinstance(days, int | float) else DEFAULT_RETENTION_DAYS
