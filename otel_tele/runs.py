"""Query FDA runs (spec 000): the one implementation behind ``otel-tele runs list | show | query``.

Example::

    from otel_tele.runs import Runs

    runs = Runs()                                   # <OTEL_TELE_DATA_DIR>/telematry_cfs
    runs.list(limit=5)                              # newest first
    runs.show("fda_run_20251020_153045")["trajectory"]
    runs.query('SELECT flow_name, min("E") FROM telemetry GROUP BY 1')

SQL sees two views, ``telemetry`` and ``events``, over every run folder and flow file. ``lambda`` is a
DuckDB keyword: quote it (``"lambda"``). ``list``, ``show`` and ``iterations`` (our own SQL) share one
in-memory DuckDB catalog per capsule root for the whole process, its views redefined only when the
root's folders changed; ``query`` (any SQL) gets a fresh connection of its own. It only reads,
through the capsule layout (:mod:`otel_tele.exporters.capsule.schema`); compaction, retention,
archive and export are :mod:`otel_tele.exporters.capsule.maintenance`'s (``otel-tele runs
consolidate | prune``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._duckdb import SharedDatabase
from ._internal import fork_safe
from ._settings import resolve
from .exporters.capsule import schema
from .exporters.capsule.schema import NewerSchemaError
from .semconv import fda as v

try:
    import duckdb
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(f"FDA run queries need duckdb: pip install 'otel-tele[capsule]' ({exc})") from exc

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
#: The columns of a run's iteration rows, in file order (``Runs.iterations`` selects among them).
ITERATION_COLUMNS: tuple[str, ...] = schema.TABLES["telemetry"].column_names
#: The most iteration rows one ``Runs.iterations`` call returns.
MAX_ITERATIONS = 10_000
_EXISTS_SQL = (
    "SELECT 1 FROM (SELECT run_id FROM telemetry UNION ALL SELECT run_id FROM events) "
    "WHERE run_id = $run_id LIMIT 1"
)


#: A folder changed less than this long ago may change again within the same file-system clock tick
#: (its mtime would not move): the views are then redefined on every call until it is older.
_SETTLE_S = 2.0


def _signature(root: Path) -> tuple[tuple[str, int, int], ...] | None:
    """What the views depend on, from a few ``stat`` calls: the folders whose entries decide which
    file patterns match (runs/, flows/, each flow and each of its ``*.parquet`` folders), by mtime and
    entry count. ``None`` when one changed too recently to be trusted."""
    folders = [root, root / schema.RUNS_DIR, root / schema.FLOWS_DIR]
    flows = root / schema.FLOWS_DIR
    if flows.is_dir():
        for flow in sorted(flows.iterdir()):
            folders.append(flow)
            if flow.is_dir():
                folders += sorted(flow.glob("*.parquet"))
    signature = []
    settled = time.time() - _SETTLE_S
    for folder in folders:
        try:
            info = folder.stat()
            count = len(os.listdir(folder)) if folder.is_dir() else -1
        except OSError:
            signature.append((str(folder), -1, -1))
            continue
        if info.st_mtime > settled:
            return None
        signature.append((str(folder), info.st_mtime_ns, count))
    return tuple(signature)


class _Catalogs:
    """One shared in-memory DuckDB database per capsule root (at most :attr:`MAX`): opening DuckDB,
    checking the files' schema versions and defining the views cost more than a page's queries, so
    they are paid again only when the root's folders change (:func:`_signature`). Each call gets its
    own cursor (threads query side by side); fork safety is :class:`SharedDatabase`'s."""

    MAX = 8

    def __init__(self) -> None:
        self._lock = fork_safe(threading.Lock())
        self._open: OrderedDict[Path, tuple[SharedDatabase, list[Any]]] = OrderedDict()

    @contextmanager
    def cursor(self, root: Path) -> Iterator[Any]:
        key = root.resolve()
        with self._lock:
            entry = self._open.pop(key, None)
            if entry is None:
                entry = (SharedDatabase(f"runs under {key.name}"), [None, None])
            database, known = entry  # the connection and signature the views were defined for
            self._open[key] = (database, known)
            while len(self._open) > self.MAX:  # the oldest goes; cursors still open keep it alive
                self._open.popitem(last=False)

        def refresh(con: Any) -> None:  # under the database's lock: one redefinition at a time
            signature = _signature(key)
            # A new connection (a forked child's) has no views yet, whatever the folders say.
            if known[0] is not con or signature is None or signature != known[1]:
                schema.define_views(con, key)  # raises NewerSchemaError as a fresh connection does
            known[:] = [con, signature]

        with database.cursor(refresh) as cursor:
            yield cursor


_CATALOGS = _Catalogs()


def _table(relation: Any) -> dict[str, Any]:
    if relation is None:
        return {"columns": [], "rows": []}
    # Through Arrow: timestamps with time zone convert without pytz.
    table = relation.to_arrow_table()
    return {"columns": table.column_names, "rows": [list(row.values()) for row in table.to_pylist()]}


class Runs:
    """Every run under one capsule root (default ``<OTEL_TELE_DATA_DIR>/telematry_cfs``)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else schema.capsule_root(resolve({}))

    def connect(self) -> Any:
        """A fresh in-memory DuckDB connection with the ``telemetry`` and ``events`` views."""
        return schema.define_views(duckdb.connect(), self.root)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> dict[str, Any]:
        """Run ``sql`` (parameters bound, never spliced); returns ``{"columns": [...], "rows": [...]}``."""
        con = self.connect()
        try:
            return _table(con.sql(sql, params=params) if params is not None else con.sql(sql))
        finally:
            con.close()

    def records(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        result = self.query(sql, params)
        return [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]]

    def _ours(self, sql: str, params: dict[str, Any]) -> dict[str, Any]:
        """Our own read-only SQL, on the process's shared catalog of this root."""
        with _CATALOGS.cursor(self.root) as cursor:
            return _table(cursor.sql(sql, params=params))

    def _our_records(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        result = self._ours(sql, params)
        return [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]]

    def list(
        self, *, flow: str | None = None, mode: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Runs newest first (by start time): identity, status, rows, first and last energy."""
        rows = self._our_records(_LIST_SQL, {"flow": flow, "mode": mode, "limit": int(limit)})
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
            manifest = self.root / schema.RUNS_DIR / row["run_id"] / schema.MANIFEST
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
            for r in self._our_records(
                _LIST_SQL.replace("WHERE (", "WHERE run_id = $run_id AND ("),
                {"run_id": run_id, "flow": None, "mode": None, "limit": 1},
            )
        ]
        if not matches:
            raise KeyError(f"no run {run_id!r} under {self.root}")
        summary = matches[0]
        summary["status"] = self._status(summary)
        manifest_path = self.root / schema.RUNS_DIR / run_id / schema.MANIFEST
        manifest = schema.read_manifest(manifest_path) if manifest_path.exists() else None
        events = self._our_records(
            "SELECT t_wall_ms, event, payload FROM events WHERE run_id = $run_id ORDER BY ts, t_wall_ms",
            {"run_id": run_id},
        )
        trajectory = self._our_records(_TRAJECTORY_SQL, {"run_id": run_id, "points": max(1, int(points))})
        listed = self._artifacts(run_id, manifest, summary.get("flow_name"))
        return {
            "run": summary,
            "manifest": manifest,
            "events": events,
            "trajectory": trajectory,
            "artifacts": [{"name": name, **entry} for name, entry in listed.items()],
        }

    def iterations(
        self,
        run_id: str,
        *,
        columns: Sequence[str] | None = None,
        phase: str | None = None,
        from_iter: int | None = None,
        to_iter: int | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> dict[str, Any]:
        """One run's iteration rows in recording order, a page at a time: the read-only query the
        HTTP API offers (no SQL text is taken, so nothing but the capsule's views can be read).

        ``columns`` (default all, see :data:`ITERATION_COLUMNS`), ``phase`` and an ``iter`` range
        (inclusive) select; returns ``{"columns", "rows", "next_offset"}`` (``None`` on the last
        page). ``ValueError`` for an unsafe id, an unknown column or a bad page; ``KeyError`` for an
        unknown run.

        Example::

            page = Runs().iterations("fda_run_20251020_153045", columns=["iter", "E"], phase="RED")
        """
        v.check_name("run_id", run_id)
        chosen = list(columns) if columns else list(ITERATION_COLUMNS)
        unknown = [c for c in chosen if c not in ITERATION_COLUMNS]
        if unknown:
            raise ValueError(f"unknown column(s) {', '.join(repr(c[:40]) for c in unknown[:5])}")
        if not 1 <= limit <= MAX_ITERATIONS:
            raise ValueError(f"limit must be 1-{MAX_ITERATIONS}")
        if offset < 0:
            raise ValueError("offset must be >= 0")
        # Column names come from the schema only (checked above); every value is a bound parameter.
        select = ", ".join(f'"{c}"' for c in chosen)
        result = self._ours(
            f"SELECT {select} FROM telemetry WHERE run_id = $run_id "
            "AND ($phase IS NULL OR phase = $phase) "
            "AND ($from_iter IS NULL OR iter >= $from_iter) AND ($to_iter IS NULL OR iter <= $to_iter) "
            "ORDER BY t_wall_ms, iter LIMIT $limit OFFSET $offset",
            {
                "run_id": run_id,
                "phase": phase,
                "from_iter": from_iter,
                "to_iter": to_iter,
                "limit": limit + 1,  # one more: is there a next page?
                "offset": offset,
            },
        )
        rows = result["rows"]
        if not rows and offset == 0 and not self._ours(_EXISTS_SQL, {"run_id": run_id})["rows"]:
            raise KeyError(f"no run {run_id!r} under {self.root}")
        more = len(rows) > limit
        return {
            "columns": result["columns"] or chosen,
            "rows": rows[:limit],
            "next_offset": offset + limit if more else None,
        }

    def artifact(self, run_id: str, name: str) -> tuple[Path, dict[str, Any]]:
        """The file of one listed artifact of a run and its entry (kind, size, sha256).

        ``KeyError`` if the run has no such artifact; ``ValueError`` for an unsafe id or name.

        Example::

            path, entry = Runs().artifact("fda_run_20251020_153045", "checkpoint_0001.pkl")
        """
        v.check_name("run_id", run_id)
        v.check_artifact_name(name)
        folder = self.root / schema.RUNS_DIR / run_id
        manifest_path = folder / schema.MANIFEST
        if manifest_path.is_file():
            listed = self._artifacts(run_id, schema.read_manifest(manifest_path), None)
        else:
            matches = sorted(self.root.glob(f"{schema.FLOWS_DIR}/*/{schema.ARTIFACTS_DIR}/{run_id}"))
            folder = matches[0] if matches else folder
            listed = schema.artifact_listing(folder)
        if name not in listed:
            raise KeyError(f"run {run_id!r} has no artifact {name!r}")
        return schema.artifact_path(folder, name), listed[name]

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
            folder = schema.artifact_folder(self.root, flow_name, run_id)
        except ValueError:
            return {}
        return schema.artifact_listing(folder)
