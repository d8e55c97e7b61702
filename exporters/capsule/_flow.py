"""Per-flow dev/tuner files: append without rewriting, readable whole at every moment.

Layout of ``flows/<flow_name>/`` (``<f>`` is ``dev_telemetry``, ``dev_events``, ``tuner_telemetry`` or
``tuner_events``)::

    manifest.toml                      schema, flow metadata, layout (rewritten atomically)
    <f>.parquet -> .<f>.g000003        a symlink to the current generation directory
    .<f>.g000003/
        c-000003.parquet               consolidated rows (large row groups)
        p-<run_id>-<pid>-<n>.parquet   appended parts (small row groups), immutable once visible
    .lock, .consolidate.lock           advisory locks (fcntl)
    .tmp-*                             parts being written (not visible to readers)
    .publishing                        the renames of a publication in progress (see ``publish_parts``)

``<f>.parquet`` is a Parquet *dataset* directory: ``pyarrow.parquet.read_table(".../dev_telemetry.parquet")``
and DuckDB's ``read_parquet('.../dev_telemetry.parquet/*.parquet')`` read every visible file. An append
writes one new part beside the flow and renames it into the current generation, so it costs the same
at ten rows or ten million, and a reader only ever sees complete files (dot-files are ignored by
pyarrow and do not match ``*.parquet``). Consolidation writes a new generation (one file, large row
groups, retention applied) and swaps the symlink in one ``rename``: a reader sees the old set or the new
one, never a mix. Retired generations are removed after a grace period, so readers that already listed
one can finish.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .._files import fsync_path
from .._files import locked as locked  # re-exported: the capsule's modules lock through flows.locked
from . import schema
from .schema import file_name

_fsync = fsync_path  # the capsule's modules fsync through flows._fsync
_GEN = re.compile(r"\.(?P<file>[a-z]+_[a-z]+)\.g(?P<n>\d{6})")
RETIRED_MARKER = ".retired"
GRACE_SECONDS = 300.0


class FlowFile:
    """One of a flow's four datasets (``mode`` by ``table``)."""

    def __init__(self, flow_dir: Path, mode: str, table: str) -> None:
        self.flow_dir = flow_dir
        self.mode = mode
        self.table = table
        self.name = file_name(mode, table)
        self.link = flow_dir / f"{self.name}.parquet"

    # -- layout -----------------------------------------------------------------------------------
    def generation(self) -> Path | None:
        """The current generation directory, or None before the first append."""
        try:
            return self.flow_dir / os.readlink(self.link)
        except FileNotFoundError:
            return None

    def generations(self) -> list[Path]:
        return sorted(p for p in self.flow_dir.glob(f".{self.name}.g*") if _GEN.fullmatch(p.name))

    def visible_files(self) -> list[Path]:
        gen = self.generation()
        return sorted(gen.glob("*.parquet")) if gen is not None else []

    def _ensure(self) -> Path:
        """Current generation, creating generation 1 and the link (caller holds the flow lock)."""
        gen = self.generation()
        if gen is not None:
            return gen
        gen = self.flow_dir / f".{self.name}.g{1:06d}"
        gen.mkdir(exist_ok=True)
        _swap_link(self.link, gen.name)
        return gen

    # -- appending --------------------------------------------------------------------------------
    def publish(self, tmp: Path, part_name: str) -> Path:
        """Move a finished part file into the current generation (caller holds the flow lock)."""
        target = self._ensure() / part_name
        os.rename(tmp, target)
        return target

    # -- consolidation ----------------------------------------------------------------------------
    def consolidate(
        self, *, keep: Callable[[pa.Table], pa.Array] | None = None, fsync: bool = True
    ) -> dict[str, int]:
        """Rewrite every visible file into one (``keep`` filters rows) as a new generation and swap it in.

        The caller holds the flow's consolidation lock (not the append lock: appends go on meanwhile
        and are carried over into the new generation).
        """
        with locked(self.flow_dir / ".lock"):
            current = self.generation()
            sources = self.visible_files()
        if current is None:
            return {"files": 0, "rows_in": 0, "rows_out": 0}
        number = max(int(_GEN.fullmatch(p.name)["n"]) for p in self.generations()) + 1  # type: ignore[index]
        new_gen = self.flow_dir / f".{self.name}.g{number:06d}"
        new_gen.mkdir()
        rows_in, rows_out = _merge(sources, new_gen / f"c-{number:06d}.parquet", self.table, keep, fsync)
        with locked(self.flow_dir / ".lock"):
            seen = {p.name for p in sources}
            for late in self.visible_files():  # appended while we merged
                if late.name not in seen:
                    os.link(late, new_gen / late.name)
            _swap_link(self.link, new_gen.name)
            (current / RETIRED_MARKER).touch()
        return {"files": len(sources), "rows_in": rows_in, "rows_out": rows_out}

    def remove_retired(self, grace_seconds: float = GRACE_SECONDS) -> int:
        """Delete generations retired more than ``grace_seconds`` ago; mark unreferenced ones retired."""
        current = self.generation()
        removed = 0
        for gen in self.generations():
            if current is not None and gen.name == current.name:
                continue
            marker = gen / RETIRED_MARKER
            if not marker.exists():
                marker.touch()  # left by an interrupted consolidation: retire it now, remove later
            elif time.time() - marker.stat().st_mtime >= grace_seconds:
                shutil.rmtree(gen, ignore_errors=True)
                removed += 1
        return removed


def publish_parts(flow_dir: Path, parts: list[tuple[FlowFile, Path, str]], *, fsync: bool = True) -> None:
    """Make one run's parts (telemetry and events) visible together; the caller holds the flow lock.

    Two renames cannot be one atomic step, so the renames are written to a journal first (itself
    renamed into place, so it exists whole or not at all). A process killed between two renames
    leaves the journal, and the next writer or consolidation of the flow finishes the job
    (:func:`recover`) before doing anything else: a run's telemetry never stays without its events.
    """
    journal = flow_dir / JOURNAL
    entries = [{"mode": f.mode, "table": f.table, "tmp": tmp.name, "part": name} for f, tmp, name in parts]
    tmp_journal = flow_dir / f".tmp-journal-{os.getpid()}-0"  # pid where temp cleaning looks for it
    tmp_journal.write_text(json.dumps(entries))
    if fsync:
        _fsync(tmp_journal)
    os.rename(tmp_journal, journal)
    for file, tmp, name in parts:
        file.publish(tmp, name)
    journal.unlink()


def recover(flow_dir: Path) -> int:
    """Finish a publication a killed process left half done (caller holds the flow lock); how many
    parts it made visible."""
    journal = flow_dir / JOURNAL
    try:
        entries = json.loads(journal.read_text())
    except FileNotFoundError:
        return 0
    done = 0
    for entry in entries:
        tmp = flow_dir / entry["tmp"]
        if tmp.exists():  # not renamed yet
            FlowFile(flow_dir, entry["mode"], entry["table"]).publish(tmp, entry["part"])
            done += 1
    journal.unlink()
    return done


def journaled_parts(flow_dir: Path) -> set[str]:
    """Temp part names a half-done publication still has to rename (not leftovers to clean)."""
    try:
        return {entry["tmp"] for entry in json.loads((flow_dir / JOURNAL).read_text())}
    except FileNotFoundError:
        return set()


JOURNAL = ".publishing"


def _swap_link(link: Path, target: str) -> None:
    tmp = link.with_name(f".tmp-link-{link.name}-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def merge_temp(out: Path) -> Path:
    """Where a merge into ``out`` is written before its rename: beside ``out`` in the dataset folder,
    under a name no reader's ``*.parquet`` glob matches (DuckDB's globs match dot files too)."""
    return out.with_name(f".tmp-{out.name}.partial")


def _merge(
    sources: list[Path], out: Path, table: str, keep: Callable[[pa.Table], pa.Array] | None, fsync: bool
) -> tuple[int, int]:
    """Stream ``sources`` into ``out`` with large row groups; (rows read, rows written)."""
    tmp = merge_temp(out)
    rows_in = rows_out = 0
    buffered: list[pa.Table] = []
    buffered_rows = 0
    with pq.ParquetWriter(tmp, schema.SCHEMAS[table], **schema.WRITE_OPTIONS) as writer:
        for source in sources:
            pf = pq.ParquetFile(source)
            schema.check_parquet(pf.schema_arrow.metadata, source)
            for batch in pf.iter_batches(batch_size=65_536):
                part = schema.conform(pa.Table.from_batches([batch]), table)
                rows_in += part.num_rows
                if keep is not None:
                    part = part.filter(keep(part))
                buffered.append(part)
                buffered_rows += part.num_rows
                if buffered_rows >= schema.CONSOLIDATED_ROW_GROUP_ROWS:
                    rows_out += _write(writer, buffered)
                    buffered, buffered_rows = [], 0
        rows_out += _write(writer, buffered)
    if fsync:
        _fsync(tmp)
    os.rename(tmp, out)
    return rows_in, rows_out


def _write(writer: Any, tables: list[pa.Table]) -> int:
    if not tables:
        return 0
    table = pa.concat_tables(tables)
    if table.num_rows:
        writer.write_table(table, row_group_size=schema.CONSOLIDATED_ROW_GROUP_ROWS)
    return int(table.num_rows)
