"""Writers for one run: an immutable production capsule, or parts appended to a flow's dev/tuner files."""

from __future__ import annotations

import itertools
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from otel_tele._version import __version__

from . import _capsule_flow as flows
from . import _capsule_schema as schema

_log = logging.getLogger("otel_tele")
_seq = itertools.count(1)
#: A dev/tuner part is published at run end, or earlier once it holds this many rows.
DEFAULT_PART_ROWS = 1_000_000


class RunInfo:
    """What the sink knows about a run: identity, the RUN_STARTED config, the end payload."""

    def __init__(self, run_id: str, flow_name: str, mode: str, trial_id: str | None) -> None:
        self.run_id = run_id
        self.flow_name = flow_name
        self.mode = mode
        self.trial_id = trial_id
        self.config: dict[str, Any] = {}
        self.summary: dict[str, Any] = {}
        self.started_at = schema.utc_now()

    def manifest(self, **extra: Any) -> dict[str, Any]:
        config = self.config
        return {
            "schema_version": schema.SCHEMA_VERSION,
            "run_id": self.run_id,
            "flow_name": self.flow_name,
            "mode": self.mode,
            "trial_id": self.trial_id,
            "started_at": self.started_at,
            "finished_at": schema.utc_now(),
            "writer": f"otel-tele {__version__}",
            "max_rows": config.get("max_rows"),
            "retention_days": config.get("retention_days"),
            "sampling": config.get("sampling"),
            "summary": self.summary,
            "units": config.get("units") or {},
            "method": config.get("method") or {},
            **extra,
        }


def _tmp_token() -> str:
    return f"{os.getpid()}-{next(_seq)}"


class _TableWriter:
    """A Parquet file written in appended row groups under a temp name.

    Export batches (~2k rows) are held until a row group's worth (``APPEND_ROW_GROUP_ROWS``) is
    there: one ``write_table`` per batch would make a row group per batch, and each write is a trip
    through zstd and the GIL. Nothing held is visible before ``close`` anyway (temp name).
    """

    def __init__(self, path: Path, table: str) -> None:
        self.path = path
        self.table = table
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._held: list[pa.Table] = []
        self._held_rows = 0

    def write(self, data: pa.Table) -> None:
        self._held.append(data)
        self._held_rows += data.num_rows
        self.rows += data.num_rows
        if self._held_rows >= schema.APPEND_ROW_GROUP_ROWS:
            self._write_held()

    def _write_held(self) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, schema.SCHEMAS[self.table], **schema.WRITE_OPTIONS)
        if self._held:
            data = pa.concat_tables(self._held)
            self._held, self._held_rows = [], 0
            self._writer.write_table(data, row_group_size=schema.APPEND_ROW_GROUP_ROWS)

    def close(self, *, fsync: bool) -> None:
        self._write_held()  # an empty table is still a valid, typed file
        assert self._writer is not None
        self._writer.close()
        if fsync:
            flows._fsync(self.path)

    def discard(self) -> None:
        self._held = []
        if self._writer is not None:
            self._writer.close()
        self.path.unlink(missing_ok=True)


class ProductionWriter:
    """``runs/<run_id>/`` built in ``runs/.tmp-<run_id>-…`` and renamed into place when the run ends."""

    def __init__(self, root: Path, info: RunInfo, *, fsync: bool = True) -> None:
        self.info = info
        self.fsync = fsync
        self.runs = root / "runs"
        self.tmp = self.runs / f".tmp-{info.run_id}-{_tmp_token()}"
        self.tmp.mkdir(parents=True)
        self.telemetry = _TableWriter(self.tmp / "telemetry.parquet", "telemetry")
        self.events = _TableWriter(self.tmp / "events.parquet", "events")

    def add(self, table: str, data: pa.Table) -> None:
        (self.telemetry if table == "telemetry" else self.events).write(data)

    def finish(self, status: str, **extra: Any) -> Path:
        self.telemetry.close(fsync=self.fsync)
        self.events.close(fsync=self.fsync)
        manifest = self.info.manifest(
            status=status,
            rows=self.telemetry.rows,
            events=self.events.rows,
            **extra,
            files={"telemetry": "telemetry.parquet", "events": "events.parquet"},
            schema=schema.schema_doc(),
        )
        schema.write_manifest(self.tmp / "manifest.toml", manifest, fsync=self.fsync)
        target = self.runs / self.info.run_id
        try:
            os.rename(self.tmp, target)
        except OSError:
            # Another process published the same id (same second): keep both, visibly.
            target = self.runs / f"{self.info.run_id}_{os.getpid()}"
            _log.warning("run folder %s exists; writing this run to %s", self.info.run_id, target.name)
            os.rename(self.tmp, target)
        if self.fsync:
            flows._fsync(self.runs)
        return target

    def discard(self) -> None:
        self.telemetry.discard()
        self.events.discard()
        shutil.rmtree(self.tmp, ignore_errors=True)


class FlowWriter:
    """Rows of one dev/tuner run, written as parts and appended to ``flows/<flow>/<mode>_*.parquet``."""

    def __init__(
        self, root: Path, info: RunInfo, *, part_rows: int = DEFAULT_PART_ROWS, fsync: bool = True
    ) -> None:
        self.info = info
        self.fsync = fsync
        self.part_rows = part_rows
        self.flow_dir = root / "flows" / info.flow_name
        self.flow_dir.mkdir(parents=True, exist_ok=True)
        manifest = self.flow_dir / "manifest.toml"
        if manifest.exists():
            schema.read_manifest(manifest)  # refuses a flow written by a newer schema
        self.files = {table: flows.FlowFile(self.flow_dir, info.mode, table) for table in schema.TABLES}
        self.open: dict[str, _TableWriter] = {}
        self.rows = {table: 0 for table in schema.TABLES}

    def add(self, table: str, data: pa.Table) -> None:
        writer = self.open.get(table)
        if writer is None:
            writer = self.open[table] = _TableWriter(self.flow_dir / f".tmp-{table}-{_tmp_token()}", table)
        writer.write(data)
        self.rows[table] += data.num_rows
        if table == "telemetry" and writer.rows >= self.part_rows:
            self.publish()

    def publish(self) -> None:
        """Make every row written so far visible (one part per table)."""
        ready = {table: writer for table, writer in self.open.items() if writer.rows}
        for writer in ready.values():
            writer.close(fsync=self.fsync)
        self.open = {table: writer for table, writer in self.open.items() if table not in ready}
        if not ready:
            return
        parts = [
            (self.files[table], writer.path, f"p-{self.info.run_id}-{_tmp_token()}.parquet")
            for table, writer in ready.items()
        ]
        with flows.locked(self.flow_dir / ".lock"):
            flows.recover(self.flow_dir)
            flows.publish_parts(self.flow_dir, parts, fsync=self.fsync)
            self._write_manifest()

    def finish(self, status: str) -> Path:
        self.publish()
        for writer in self.open.values():
            writer.discard()
        return self.files["telemetry"].link

    def discard(self) -> None:
        for writer in self.open.values():
            writer.discard()

    def _write_manifest(self) -> None:
        path = self.flow_dir / "manifest.toml"
        manifest: dict[str, Any] = {}
        if path.exists():
            manifest = schema.read_manifest(path)
        info = self.info
        manifest.update(
            {
                "schema_version": schema.SCHEMA_VERSION,
                "flow_name": info.flow_name,
                "updated_at": schema.utc_now(),
                "writer": f"otel-tele {__version__}",
                "layout": "each <mode>_<table>.parquet is a Parquet dataset directory "
                "(a symlink to the current "
                "generation); read it with pyarrow.parquet.read_table(path) or DuckDB "
                "read_parquet('<path>/*.parquet')",
                "files": {
                    flows.file_name(m, t): f"{flows.file_name(m, t)}.parquet"
                    for m in flows.MODES
                    for t in schema.TABLES
                },
                "units": info.config.get("units") or manifest.get("units", {}),
                "method": info.config.get("method") or manifest.get("method", {}),
                "retention_days": manifest.get("retention_days", 90),
                "schema": schema.schema_doc(),
            }
        )
        manifest.setdefault("created_at", schema.utc_now())
        last = manifest.setdefault("last_run", {})
        last[info.mode] = {"run_id": info.run_id, "trial_id": info.trial_id}
        schema.write_manifest(path, manifest, fsync=False)
