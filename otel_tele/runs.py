"""Query and maintain FDA runs (spec 000): the one implementation behind ``otel-tele runs``.

Example::

    from otel_tele.runs import Runs

    runs = Runs()                                   # <OTEL_TELE_DATA_DIR>/telematry_cfs
    runs.list(limit=5)                              # newest first
    runs.show("fda_run_20251020_153045")["trajectory"]
    runs.query('SELECT flow_name, min("E") FROM telemetry GROUP BY 1')
    runs.consolidate(archive=["deconv_wavelet_v1"], export="all_telemetry.parquet")

SQL sees two views, ``telemetry`` and ``events``, over every run folder and flow file. ``lambda`` is a
DuckDB keyword: quote it (``"lambda"``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ._settings import resolve
from .exporters import _capsule_artifacts as artifacts
from .exporters import _capsule_consolidate as maint
from .exporters import _capsule_journal as journal
from .exporters import _capsule_schema as schema
from .exporters import _capsule_views as views
from .exporters._capsule_flow import GRACE_SECONDS
from .exporters._capsule_schema import NewerSchemaError
from .semconv import fda as v

__all__ = ["NewerSchemaError", "Runs"]

_END = ", ".join(f"'{name}'" for name in sorted(v.END_EVENTS))
_LIST_SQL = f"""
WITH ev AS (
  SELECT run_id, any_value(flow_name) AS flow_name, any_value(mode) AS mode, any_value(trial_id) AS trial_id,
         min(ts) AS started_at,
         arg_max(event, ts) FILTER (WHERE event IN ({_END})) AS end_event,
         arg_max(payload, ts) FILTER (WHERE event IN ({_END})) AS end_payload
  FROM events GROUP BY run_id),
tm AS (
  SELECT run_id, any_value(flow_name) AS flow_name, any_value(mode) AS mode, any_value(trial_id) AS trial_id,
         min(ts) AS first_ts, count(*) AS rows, max(iter) AS last_iter,
         arg_min("E", t_wall_ms) AS e_first, arg_max("E", t_wall_ms) AS e_last
  FROM telemetry GROUP BY run_id)
SELECT run_id, coalesce(ev.flow_name, tm.flow_name) AS flow_name, coalesce(ev.mode, tm.mode) AS mode,
       coalesce(ev.trial_id, tm.trial_id) AS trial_id, coalesce(ev.started_at, tm.first_ts) AS started_at,
       coalesce(tm.rows, 0) AS rows, tm.last_iter, tm.e_first, tm.e_last, ev.end_event, ev.end_payload
FROM ev FULL OUTER JOIN tm USING (run_id)
WHERE ($flow IS NULL OR coalesce(ev.flow_name, tm.flow_name) = $flow)
  AND ($mode IS NULL OR coalesce(ev.mode, tm.mode) = $mode)
ORDER BY started_at DESC NULLS LAST, run_id DESC LIMIT $limit
"""
_TRAJECTORY_SQL = """
SELECT iter, phase, t_wall_ms, "E", grad_norm, alpha, phi_residual, invariant_drift_max FROM (
  SELECT *, row_number() OVER (ORDER BY t_wall_ms, iter) - 1 AS k, count(*) OVER () AS n
  FROM telemetry WHERE run_id = $run_id)
WHERE k % greatest(1, n // $points) = 0 OR k = n - 1 ORDER BY k
"""


class Runs:
    """Every run under one capsule root (default ``<OTEL_TELE_DATA_DIR>/telematry_cfs``)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else schema.capsule_root(resolve({}))

    def connect(self) -> Any:
        """A fresh in-memory DuckDB connection with the ``telemetry`` and ``events`` views."""
        return views.connect(self.root)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> dict[str, Any]:
        """Run ``sql`` (parameters bound, never spliced); returns ``{"columns": [...], "rows": [...]}``."""
        con = self.connect()
        try:
            # Through Arrow: timestamps with time zone convert without pytz.
            relation = con.sql(sql, params=params) if params is not None else con.sql(sql)
            if relation is None:
                return {"columns": [], "rows": []}
            table = relation.to_arrow_table()
            return {"columns": table.column_names, "rows": [list(row.values()) for row in table.to_pylist()]}
        finally:
            con.close()

    def records(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        result = self.query(sql, params)
        return [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]]

    def list(
        self, *, flow: str | None = None, mode: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Runs newest first (by start time): identity, status, rows, first and last energy."""
        rows = self.records(_LIST_SQL, {"flow": flow, "mode": mode, "limit": int(limit)})
        for row in rows:
            row["status"] = self._status(row)
        return [
            {
                k: row[k]
                for k in (
                    "run_id",
                    "flow_name",
                    "mode",
                    "trial_id",
                    "status",
                    "started_at",
                    "rows",
                    "last_iter",
                    "e_first",
                    "e_last",
                )
            }
            for row in rows
        ]

    def _status(self, row: dict[str, Any]) -> str:
        end, payload = row.pop("end_event"), row.pop("end_payload")
        if end == v.CANCELLED:
            return "cancelled"
        if end is None:
            manifest = self.root / "runs" / row["run_id"] / "manifest.toml"
            return str(schema.read_manifest(manifest).get("status")) if manifest.exists() else "open"
        try:
            return str(json.loads(payload).get("status", "completed"))
        except (TypeError, ValueError, AttributeError):
            return "completed"

    def show(self, run_id: str, *, points: int = 12) -> dict[str, Any]:
        """One run: summary, manifest (production), events and an evenly sampled trajectory."""
        v.check_name("run_id", run_id)
        matches = [
            r
            for r in self.records(
                _LIST_SQL.replace("WHERE (", "WHERE run_id = $run_id AND ("),
                {"run_id": run_id, "flow": None, "mode": None, "limit": 1},
            )
        ]
        if not matches:
            raise KeyError(f"no run {run_id!r} under {self.root}")
        summary = matches[0]
        summary["status"] = self._status(summary)
        folder = self.root / "runs" / run_id
        manifest = (
            schema.read_manifest(folder / "manifest.toml") if (folder / "manifest.toml").exists() else None
        )
        events = self.records(
            "SELECT t_wall_ms, event, payload FROM events WHERE run_id = $run_id ORDER BY ts, t_wall_ms",
            {"run_id": run_id},
        )
        trajectory = self.records(_TRAJECTORY_SQL, {"run_id": run_id, "points": max(1, int(points))})
        listed = self._artifacts(run_id, manifest, summary.get("flow_name"))
        return {
            "run": summary,
            "manifest": manifest,
            "events": events,
            "trajectory": trajectory,
            "artifacts": [{"name": name, **entry} for name, entry in listed.items()],
        }

    def artifact(self, run_id: str, name: str) -> tuple[Path, dict[str, Any]]:
        """The file of one listed artifact of a run and its entry (kind, size, sha256).

        ``KeyError`` if the run has no such artifact; ``ValueError`` for an unsafe id or name.

        Example::

            path, entry = Runs().artifact("fda_run_20251020_153045", "checkpoint_0001.pkl")
        """
        v.check_name("run_id", run_id)
        v.check_artifact_name(name)
        folder = self.root / "runs" / run_id
        manifest_path = folder / "manifest.toml"
        if manifest_path.is_file():
            listed = self._artifacts(run_id, schema.read_manifest(manifest_path), None)
        else:
            matches = sorted(self.root.glob(f"flows/*/artifacts/{run_id}"))
            folder = matches[0] if matches else folder
            listed = artifacts.listing(folder)
        if name not in listed:
            raise KeyError(f"run {run_id!r} has no artifact {name!r}")
        return artifacts.resolve(folder, name), listed[name]

    def _artifacts(
        self, run_id: str, manifest: dict[str, Any] | None, flow_name: Any
    ) -> dict[str, dict[str, Any]]:
        """A run's artifacts: from its manifest (production), else from its flow's artifact folder."""
        if manifest is not None:
            listed = manifest.get("artifacts")
            if not isinstance(listed, dict):
                return {}
            return {str(k): dict(e) for k, e in listed.items() if isinstance(e, dict)}
        if not isinstance(flow_name, str):
            return {}
        try:
            folder = artifacts.flow_folder(self.root, flow_name, run_id)
        except ValueError:
            return {}
        found: dict[str, dict[str, Any]] = artifacts.listing(folder)
        return found

    # -- maintenance ------------------------------------------------------------------------------
    def consolidate(
        self,
        *,
        archive: Iterable[str] = (),
        export: str | os.PathLike[str] | None = None,
        retention_days: float | None = None,
        grace_seconds: float = GRACE_SECONDS,
    ) -> dict[str, Any]:
        """Compact appended parts (retention applied), archive the dev runs of the ``archive`` flows into
        ``runs/``, refresh ``duckdb.db``, and optionally export all telemetry to one Parquet file."""
        archive = [v.check_name("flow_name", name) for name in archive]
        report: dict[str, Any] = {
            "archived": [],
            "files": [],
            "recovered": journal.recover_runs(self.root),
            "removed_temps": maint.clean_temps(self.root),
        }
        for flow_dir in maint.flow_dirs(self.root):
            archived: list[str] = []
            if flow_dir.name in archive:
                archived = maint.archive_flow(self.root, flow_dir, "dev")
                report["archived"] += archived
            report["files"] += maint.consolidate_flow(
                flow_dir,
                retention_days=self._retention(flow_dir, retention_days),
                exclude_runs=frozenset(archived),
                grace_seconds=grace_seconds,
            )
        report["duckdb"] = str(views.refresh_database(self.root))
        if export is not None:
            report["export"] = self.export(export)
        return report

    def _retention(self, flow_dir: Path, override: float | None) -> float:
        if override is not None:
            return override
        manifest = flow_dir / "manifest.toml"
        days = schema.read_manifest(manifest).get("retention_days") if manifest.exists() else None
        return float(days) if isinstance(days, int | float) else maint.DEFAULT_RETENTION_DAYS

    def export(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """All telemetry rows in one Parquet file (zstd, large row groups), written atomically."""
        target = Path(path)
        if target.suffix != ".parquet":
            raise ValueError(f"export target must end in .parquet, got {str(target)!r}")
        tmp = target.with_name(f".tmp-{target.name}-{os.getpid()}")
        con = self.connect()
        try:
            con.execute(
                f"COPY (SELECT * FROM telemetry ORDER BY run_id, t_wall_ms) TO {views._literal(str(tmp))} "
                f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {schema.CONSOLIDATED_ROW_GROUP_ROWS}, "
                f"KV_METADATA {{'otel_tele.schema_version': '{schema.SCHEMA_VERSION}', "
                "'otel_tele.table': 'telemetry'})"
            )
            rows = con.execute(f"SELECT count(*) FROM read_parquet({views._literal(str(tmp))})").fetchone()
        finally:
            con.close()
        os.replace(tmp, target)
        return {"path": str(target), "rows": rows[0] if rows else 0}

    def prune(self, *, dry_run: bool = False, retention_days: float | None = None) -> dict[str, Any]:
        """Apply retention: expired run folders (their manifest's ``retention_days``), dev/tuner rows
        older than the flow's retention (default 90 days), leftovers of dead writers."""
        expired = maint.expired_runs(self.root)
        report: dict[str, Any] = {
            "dry_run": dry_run,
            "runs_removed": [p.name for p in expired],
            "recovered": [] if dry_run else journal.recover_runs(self.root),
            "temps_removed": maint.clean_temps(self.root, dry_run=dry_run),
            "files": [],
        }
        if dry_run:
            return report
        for folder in expired:
            shutil.rmtree(folder)
        for flow_dir in maint.flow_dirs(self.root):
            report["files"] += maint.consolidate_flow(
                flow_dir, retention_days=self._retention(flow_dir, retention_days)
            )
        views.refresh_database(self.root)
        return report
