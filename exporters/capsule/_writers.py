"""Writers for one run: an immutable production capsule, or parts appended to a flow's dev/tuner files."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from otel_tele._version import __version__
from otel_tele.domains.fda import CAPSULE_FLUSH_ROWS, CAPSULE_FLUSH_SECONDS
from otel_tele.semconv import fda as v

from . import _artifacts as artifacts
from . import _flow as flows
from . import schema
from ._journal import JOURNAL_SUFFIX, Journal, abandon, lock_path
from ._manifest import utc_now, write_manifest

_log = logging.getLogger("otel_tele")
_seq = itertools.count(1)
#: A dev/tuner part is published at run end, or earlier once it holds this many rows.
DEFAULT_PART_ROWS = 1_000_000
#: A production run's rows reach its journal at least every this many rows or seconds.
DEFAULT_FLUSH_ROWS: int = CAPSULE_FLUSH_ROWS.default
DEFAULT_FLUSH_SECONDS: float = CAPSULE_FLUSH_SECONDS.default


class RunInfo:
    """What the sink knows about a run: identity, the RUN_STARTED config, the end payload."""

    def __init__(self, run_id: str, flow_name: str, mode: str, trial_id: str | None) -> None:
        self.run_id = run_id
        self.flow_name = flow_name
        self.mode = mode
        self.trial_id = trial_id
        self.config: dict[str, Any] = {}
        self.summary: dict[str, Any] = {}
        self.started_at = utc_now()

    def manifest(self, **extra: Any) -> dict[str, Any]:
        config = self.config
        return {
            "schema_version": schema.SCHEMA_VERSION,
            "run_id": self.run_id,
            "flow_name": self.flow_name,
            "mode": self.mode,
            "trial_id": self.trial_id,
            "started_at": self.started_at,
            "finished_at": utc_now(),
            "writer": f"otel-tele {__version__}",
            "max_rows": config.get("max_rows"),
            "retention_days": config.get("retention_days"),
            "sampling": config.get("sampling"),
            "summary": self.summary,
            "units": config.get("units") or {},
            "method": config.get("method") or {},
            **extra,
        }


def run_info(run_id: str, tables: dict[str, pa.Table]) -> RunInfo:
    """A run's :class:`RunInfo` rebuilt from its rows (identity from the first row, config and
    summary from its RUN_STARTED and end events, start from its first timestamp)."""
    telemetry, events = tables["telemetry"], tables["events"]
    first = (telemetry if telemetry.num_rows else events).slice(0, 1).to_pylist()[0]
    info = RunInfo(v.check_name("run_id", run_id), first["flow_name"], first["mode"], first["trial_id"])
    for row in events.select(["event", "payload"]).to_pylist():
        try:
            payload = json.loads(row["payload"]) if row["payload"] else {}
        except ValueError:
            payload = {}
        if row["event"] == v.RUN_STARTED:
            info.config = payload if isinstance(payload, dict) else {}
        elif row["event"] in v.END_EVENTS:
            info.summary = payload if isinstance(payload, dict) else {}
    starts = [t.column("ts").drop_null() for t in (telemetry, events) if t.num_rows]
    earliest = min((pc.min(s).as_py() for s in starts if len(s)), default=None)
    if earliest is not None:
        info.started_at = earliest
    return info


def publish_folder(tmp: Path, runs: Path, run_id: str, *, fsync: bool) -> Path:
    """Rename a finished temp folder to ``runs/<run_id>`` (``<run_id>_<pid>`` if that exists)."""
    target = runs / run_id
    try:
        os.rename(tmp, target)
    except OSError:
        # Another process published the same id (same second): keep both, visibly.
        target = runs / f"{run_id}_{os.getpid()}"
        _log.warning("run folder %s exists; writing this run to %s", run_id, target.name)
        os.rename(tmp, target)
    if fsync:
        flows._fsync(runs)
    return target


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

    def release(self) -> None:
        """Let go of the file without finishing it (what is on disk stays)."""
        self._held = []
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception as exc:  # a full disk: the footer cannot be written either
                _log.debug("capsule: closing %s failed: %s", self.path, exc)

    def discard(self) -> None:
        self.release()
        self.path.unlink(missing_ok=True)


class ProductionWriter:
    """``runs/<run_id>/`` built in ``runs/.tmp-<run_id>-…`` and renamed into place when the run ends.

    Rows added are *pending* (in memory) until :meth:`flush_journal` puts them in the run's
    journals (see :mod:`._journal`) or :meth:`finish` publishes the run: only then are they
    durable. ``flush_due`` says when the sink must flush: ``flush_rows`` rows or ``flush_seconds``
    seconds after the oldest pending row.
    """

    def __init__(
        self,
        root: Path,
        info: RunInfo,
        *,
        fsync: bool = True,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
    ) -> None:
        self.info = info
        self.fsync = fsync
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.runs = root / schema.RUNS_DIR
        self.tmp = self.runs / f".tmp-{info.run_id}-{_tmp_token()}"
        self.runs.mkdir(parents=True, exist_ok=True)
        self._lock = contextlib.ExitStack()  # held while the run is open: recovery leaves it alone
        self._lock_path = lock_path(self.tmp)
        self._lock.enter_context(flows.locked(self._lock_path))
        self.tmp.mkdir()
        self.telemetry = _TableWriter(self.tmp / schema.RUN_FILES["telemetry"], "telemetry")
        self.events = _TableWriter(self.tmp / schema.RUN_FILES["events"], "events")
        self.journals = {t: Journal(self.tmp / f"{t}{JOURNAL_SUFFIX}", t) for t in schema.TABLES}
        self._unjournaled: dict[str, list[pa.Table]] = {t: [] for t in schema.TABLES}
        self.pending_rows = 0  # added, not yet durable
        self.journaled_rows = 0  # durable in the journals (booked exported), not yet published
        self._pending_since = 0.0

    def add(self, table: str, data: pa.Table) -> None:
        (self.telemetry if table == "telemetry" else self.events).write(data)
        if not self.pending_rows:
            self._pending_since = time.monotonic()
        self._unjournaled[table].append(data)
        self.pending_rows += data.num_rows

    def attach(self, attrs: Any) -> dict[str, Any]:
        """Stream an artifact into the temp folder: it is published with the run, never before."""
        return artifacts.store(self.tmp, attrs, fsync=self.fsync)

    def flush_due(self, now: float) -> bool:
        return self.pending_rows > 0 and (
            self.pending_rows >= self.flush_rows or now - self._pending_since >= self.flush_seconds
        )

    def flush_journal(self) -> int:
        """Make every pending row durable in the journals; returns how many became durable."""
        for table, held in self._unjournaled.items():
            if held:
                self.journals[table].append(held, fsync=self.fsync)
                self._unjournaled[table] = []
        made, self.pending_rows = self.pending_rows, 0
        self.journaled_rows += made
        return made

    def abandon(self) -> None:
        """Give the run up (its publication failed): keep its journals for recovery, now."""
        self.telemetry.release()
        self.events.release()
        for journal in self.journals.values():
            journal.close()
        self.tmp = abandon(self.tmp)
        self._unlock()

    def _unlock(self) -> None:
        self._lock_path.unlink(missing_ok=True)
        self._lock.close()

    def finish(self, status: str, **extra: Any) -> Path:
        self.telemetry.close(fsync=self.fsync)
        self.events.close(fsync=self.fsync)
        manifest = self.info.manifest(
            status=status,
            rows=self.telemetry.rows,
            events=self.events.rows,
            **extra,
            files=dict(schema.RUN_FILES),
            artifacts=schema.artifact_listing(self.tmp),
            schema=schema.schema_doc(),
        )
        write_manifest(self.tmp / schema.MANIFEST, manifest, fsync=self.fsync)
        for journal in self.journals.values():  # the capsule is whole: recovery would publish it as is
            journal.remove()
        artifacts.clean(self.tmp)
        target = publish_folder(self.tmp, self.runs, self.info.run_id, fsync=self.fsync)
        self._unlock()
        self.pending_rows = self.journaled_rows = 0
        return target

    def discard(self) -> None:
        self.telemetry.discard()
        self.events.discard()
        for journal in self.journals.values():
            journal.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._unlock()


class FlowWriter:
    """Rows of one dev/tuner run, written as parts and appended to ``flows/<flow>/<mode>_*.parquet``.

    Rows are pending until their part is published (run end, or ``part_rows``): a flow file holds
    whole runs, so there is no journal to recover a part of a run from."""

    journaled_rows = 0

    def __init__(
        self, root: Path, info: RunInfo, *, part_rows: int = DEFAULT_PART_ROWS, fsync: bool = True
    ) -> None:
        self.info = info
        self.fsync = fsync
        self.part_rows = part_rows
        self.flow_dir = root / schema.FLOWS_DIR / info.flow_name
        self.flow_dir.mkdir(parents=True, exist_ok=True)
        manifest = self.flow_dir / schema.MANIFEST
        if manifest.exists():
            schema.read_manifest(manifest)  # refuses a flow written by a newer schema
        self.files = {table: flows.FlowFile(self.flow_dir, info.mode, table) for table in schema.TABLES}
        self.open: dict[str, _TableWriter] = {}
        self.rows = {table: 0 for table in schema.TABLES}
        self.pending_rows = 0

    def flush_due(self, now: float) -> bool:
        return False

    def attach(self, attrs: Any) -> dict[str, Any]:
        """Stream an artifact into ``flows/<flow>/artifacts/<run_id>/`` (visible once whole)."""
        folder = schema.artifact_folder(self.flow_dir.parent.parent, self.info.flow_name, self.info.run_id)
        return artifacts.store(folder, attrs, fsync=self.fsync)

    def flush_journal(self) -> int:
        return 0

    def abandon(self) -> None:
        self.discard()

    def add(self, table: str, data: pa.Table) -> None:
        writer = self.open.get(table)
        if writer is None:
            writer = self.open[table] = _TableWriter(self.flow_dir / f".tmp-{table}-{_tmp_token()}", table)
        writer.write(data)
        self.rows[table] += data.num_rows
        self.pending_rows += data.num_rows
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
        self.pending_rows = sum(writer.rows for writer in self.open.values())

    def finish(self, status: str) -> Path:
        self.publish()
        for writer in self.open.values():
            writer.discard()
        return self.files["telemetry"].link

    def discard(self) -> None:
        for writer in self.open.values():
            writer.discard()

    def _write_manifest(self) -> None:
        path = self.flow_dir / schema.MANIFEST
        manifest: dict[str, Any] = {}
        if path.exists():
            manifest = schema.read_manifest(path)
        info = self.info
        manifest.update(
            {
                "schema_version": schema.SCHEMA_VERSION,
                "flow_name": info.flow_name,
                "updated_at": utc_now(),
                "writer": f"otel-tele {__version__}",
                "layout": "each <mode>_<table>.parquet is a Parquet dataset directory "
                "(a symlink to the current "
                "generation); read it with pyarrow.parquet.read_table(path) or DuckDB "
                "read_parquet('<path>/*.parquet')",
                "files": {
                    schema.file_name(m, t): f"{schema.file_name(m, t)}.parquet"
                    for m in schema.MODES
                    for t in schema.TABLES
                },
                "units": info.config.get("units") or manifest.get("units", {}),
                "method": info.config.get("method") or manifest.get("method", {}),
                "retention_days": manifest.get("retention_days", 90),
                "schema": schema.schema_doc(),
            }
        )
        manifest.setdefault("created_at", utc_now())
        last = manifest.setdefault("last_run", {})
        last[info.mode] = {"run_id": info.run_id, "trial_id": info.trial_id}
        write_manifest(path, manifest, fsync=False)
