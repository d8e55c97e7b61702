"""Parts of the store: rows held in memory, flushed as whole Parquet files; compaction; retention.

A part is written under a temp name (``.tmp-p-….parquet.tmp``: skipped by pyarrow's dataset and by
DuckDB's ``*.parquet`` glob), fsynced, renamed into its ``date=`` folder and the folder fsynced: only
then are its rows durable (booked *exported*). A kill -9 leaves at most a temp file, removed by the
next compaction.

Compaction merges a partition's small parts into one ``c-`` file. Before the merged file is renamed
into place an intent (``.compacting-<c-name>.json``: the inputs) is written; whoever compacts next
finishes an interrupted one: inputs of a renamed output are removed, an intent without its output is
dropped (inputs untouched). So a row is never lost, and never kept twice once a compaction ends.
A span stored twice (re-sent after a crash took the receiver's memory of it) is kept once in the
merged file: the first row of each (trace_id, span_id) among the merged parts.

A merged spans file is ordered by (trace_id, start_time) (``schema.SORT_KEYS``), in row groups of
``SORTED_ROW_GROUP_ROWS`` with a Bloom filter of trace_id each: a lookup of one trace reads at most one
row group of the file. Memory stays bounded: the key columns of every input are read and sorted; the
rows themselves are written in passes of about ``MERGE_MEMORY_BYTES``, each reading every input again
and keeping its own rows. Logs and metrics keep the order their parts were written in.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._files import fsync_path as _fsync
from .._files import locked, pid_alive
from .schema import (
    BLOOM_FPP,
    BLOOM_KEYS,
    COMPACTED_ROW_GROUP_ROWS,
    PARTITION,
    SCHEMAS,
    SORT_KEYS,
    SORTED_ROW_GROUP_ROWS,
    WRITE_OPTIONS,
)

_log = logging.getLogger("otel_tele")
_seq = itertools.count(1)
INTENT_PREFIX = ".compacting-"
#: Temp files older than this are removed even if their writer's pid looks alive (pid reuse).
STALE_TEMP_SECONDS = 24 * 3600


@dataclass
class Held:
    """Rows of one dataset in memory, not yet durable."""

    tables: list[pa.Table] = field(default_factory=list)
    rows: int = 0
    nbytes: int = 0
    since: float = 0.0  # monotonic time of the oldest row held

    def add(self, table: pa.Table) -> None:
        if not self.rows:
            self.since = time.monotonic()
        self.tables.append(table)
        self.rows += table.num_rows
        self.nbytes += table.nbytes

    def take(self) -> list[pa.Table]:
        tables, self.tables, self.rows, self.nbytes = self.tables, [], 0, 0
        return tables


def _token() -> str:
    return f"{time.time_ns()}-{os.getpid()}-{next(_seq)}"


def _temp_name(name: str) -> str:
    """A file being written: a dot name (pyarrow's dataset skips it) that does not end in
    ``.parquet`` (DuckDB's ``*.parquet`` glob matches dot files too)."""
    return f".tmp-{name}.tmp"


def partition_dir(root: Path, dataset: str, day: date | None = None) -> Path:
    day = day or datetime.now(UTC).date()
    return root / dataset / f"{PARTITION}={day.isoformat()}"


def _mkdirs(path: Path, *, fsync: bool) -> None:
    """Create ``path`` and its missing parents; with ``fsync`` each new entry is made durable too."""
    if path.is_dir():
        return
    _mkdirs(path.parent, fsync=fsync)
    with contextlib.suppress(FileExistsError):
        path.mkdir()
        if fsync:
            _fsync(path.parent)


def publish(root: Path, dataset: str, tables: list[pa.Table], *, fsync: bool = True) -> Path:
    """Write ``tables`` as one part of ``dataset`` and make it visible and durable; raises on failure
    (nothing is left visible then)."""
    folder = partition_dir(root, dataset)
    _mkdirs(folder, fsync=fsync)
    name = f"p-{_token()}.parquet"
    tmp = folder / _temp_name(name)
    try:
        data = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        pq.write_table(data, tmp, row_group_size=COMPACTED_ROW_GROUP_ROWS, **part_options(dataset))
        if fsync:
            _fsync(tmp)
        os.rename(tmp, folder / name)
        if fsync:
            _fsync(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return folder / name


# -- maintenance --------------------------------------------------------------------------------
def partitions(root: Path, dataset: str) -> list[tuple[date, Path]]:
    base = root / dataset
    found = []
    for path in sorted(base.glob(f"{PARTITION}=*")) if base.is_dir() else []:
        try:
            found.append((date.fromisoformat(path.name.partition("=")[2]), path))
        except ValueError:
            continue  # not ours
    return found


def apply_retention(root: Path, dataset: str, retention_days: float, *, now: datetime | None = None) -> int:
    """Remove the partitions written more than ``retention_days`` days ago; how many rows went."""
    today = (now or datetime.now(UTC)).date()
    cutoff = today - timedelta(days=max(0, int(retention_days)))
    removed = 0
    for day, path in partitions(root, dataset):
        if day < cutoff:
            removed += sum(_rows(p) for p in path.glob("*.parquet"))
            shutil.rmtree(path, ignore_errors=True)
    return removed


def _rows(path: Path) -> int:
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception:
        return 0


def recover(folder: Path) -> None:
    """Finish or undo interrupted compactions and remove temp files of writers that are gone."""
    for intent in folder.glob(f"{INTENT_PREFIX}*.json"):
        try:
            plan = json.loads(intent.read_text())
        except (OSError, ValueError):
            plan = None  # cut off before its rename: impossible (written whole), but never trust it
        if plan is not None and (folder / plan["output"]).exists():
            for name in plan["inputs"]:
                (folder / name).unlink(missing_ok=True)
        intent.unlink(missing_ok=True)
    for tmp in folder.glob(".tmp-*"):
        if _stale(tmp):
            tmp.unlink(missing_ok=True)


def _stale(path: Path) -> bool:
    """``.tmp-<p|c>-<ns>-<pid>-<n>.parquet.tmp``: its writer's pid is dead, or older than a day."""
    try:
        if time.time() - path.stat().st_mtime > STALE_TEMP_SECONDS:
            return True
    except FileNotFoundError:
        return False
    parts = path.name.split("-")
    return len(parts) >= 5 and parts[-2].isdigit() and not pid_alive(int(parts[-2]))


def compact_partition(
    folder: Path, dataset: str, *, min_parts: int, target_bytes: int, fsync: bool = True
) -> dict[str, int]:
    """Merge the partition's ``p-`` parts into ``c-`` files of about ``target_bytes`` each (only
    when at least ``min_parts`` are there). The caller holds the dataset's compaction lock."""
    recover(folder)
    parts = sorted(folder.glob("p-*.parquet"))
    report = {"parts_in": 0, "files_out": 0, "rows": 0, "duplicates": 0}
    if len(parts) < max(2, min_parts):
        return report
    group: list[Path] = []
    size = 0
    for part in parts:
        group.append(part)
        size += part.stat().st_size
        if size >= target_bytes:
            _merge(folder, dataset, group, fsync=fsync, report=report)
            group, size = [], 0
    if len(group) >= 2:
        _merge(folder, dataset, group, fsync=fsync, report=report)
    return report


#: Per dataset, the columns that identify a record: a row repeating an earlier row's identity in the
#: same merge is the same record stored twice (a span re-sent after a crash lost the receiver's
#: window) and is left out. Spans only: log records and metric points carry no identity of their own.
IDENTITY: dict[str, tuple[str, ...]] = {"spans": ("trace_id", "span_id")}
#: Arrow bytes of rows a sorted merge holds at once (estimated from its largest input read whole): a
#: merge of more is written in passes, each pass reading every input again and keeping only its rows.
MERGE_MEMORY_BYTES = 256 * 1024 * 1024


def _keys(inputs: list[Path], columns: list[str]) -> tuple[pa.Table, list[int]]:
    """The ``columns`` of every input, one table (``__row``: the row's place among all inputs), and
    where each input's rows start in it."""
    tables = [pq.read_table(path, columns=columns) for path in inputs]
    starts = list(itertools.accumulate((t.num_rows for t in tables), initial=0))
    keys = pa.concat_tables(tables).combine_chunks()
    return keys.append_column("__row", pa.array(range(keys.num_rows), pa.int64())), starts


def _repeated(keys: pa.Table, columns: tuple[str, ...]) -> pa.Array | None:
    """The ``__row`` of each row whose identity (every column set) an earlier row of ``keys`` has;
    None when nothing repeats (the common case: nothing to filter)."""
    valid = pc.is_valid(keys[columns[0]])
    for column in columns[1:]:
        valid = pc.and_(valid, pc.is_valid(keys[column]))
    identified = keys.filter(valid)
    first = identified.group_by(list(columns), use_threads=False).aggregate([("__row", "min")])
    if first.num_rows == identified.num_rows:
        return None
    repeated = pc.invert(pc.is_in(identified["__row"], value_set=first["__row_min"]))
    return pc.filter(identified["__row"], repeated).combine_chunks()


def _first_of_each(inputs: list[Path], columns: tuple[str, ...]) -> list[pa.ChunkedArray | pa.Array] | None:
    """Per input, a keep-mask: False for a row whose identity an earlier row of the inputs has.
    None when nothing repeats."""
    keys, starts = _keys(inputs, list(columns))
    dropped = _repeated(keys, columns)
    if dropped is None:
        return None
    keep = pc.invert(pc.is_in(keys["__row"], value_set=dropped))
    return [keep.slice(start, end - start) for start, end in itertools.pairwise(starts)]


def _arrow_bytes_per_row(inputs: list[Path]) -> float:
    """Bytes a row of the inputs takes in Arrow, by reading the largest input (a flushed part is
    small): Parquet's own sizes undercount dictionary-encoded text, which Arrow holds expanded."""
    largest = max(inputs, key=lambda path: path.stat().st_size)
    table = pq.read_table(largest)
    return float(table.nbytes) / max(1, int(table.num_rows))


def part_options(dataset: str) -> dict[str, Any]:
    """Writer options of a flushed part (``p-``): ``WRITE_OPTIONS`` and, for spans, a Bloom filter of
    ``trace_id`` (``schema.BLOOM_KEYS``). A part's rows are in arrival order, so its ``trace_id``
    statistics span about every id: without the filter a lookup of one trace reads every part of
    today's partition whole (a part that does not hold the trace is skipped by its filter)."""
    return {**WRITE_OPTIONS, **_bloom_options(dataset, COMPACTED_ROW_GROUP_ROWS)}


def _bloom_options(dataset: str, group_rows: int) -> dict[str, Any]:
    """The Bloom filter of ``schema.BLOOM_KEYS[dataset]`` per row group, where pyarrow writes them
    (>= 21): for up to ``group_rows // 2`` distinct values (a trace has several spans; pyarrow sizes
    each filter down to the values its row group holds, and more only raise its false positives)."""
    key = BLOOM_KEYS.get(dataset)
    if key is None or not _WRITES_BLOOM_FILTERS:
        return {}
    return {"bloom_filter_options": {key: {"ndv": max(1, group_rows // 2), "fpp": BLOOM_FPP}}}


def _sorted_options(dataset: str) -> dict[str, Any]:
    """Writer options of a sorted dataset's merged file: the order declared in its metadata, and a
    Bloom filter of ``trace_id`` per row group, so a lookup of a key in no row group of a file reads
    no data of it either."""
    keys = SORT_KEYS.get(dataset)
    if not keys:
        return {}
    return {
        "sorting_columns": [pq.SortingColumn(SCHEMAS[dataset].get_field_index(key)) for key in keys],
        **_bloom_options(dataset, SORTED_ROW_GROUP_ROWS),
    }


_WRITES_BLOOM_FILTERS = "bloom_filter_options" in inspect.signature(pq.ParquetWriter.__init__).parameters


def _write_sorted(writer: pq.ParquetWriter, dataset: str, inputs: list[Path], report: dict[str, int]) -> int:
    """Write the rows of ``inputs`` ordered by ``SORT_KEYS[dataset]`` (ties: in the inputs' order),
    a repeated identity left out; at most about ``MERGE_MEMORY_BYTES`` of rows held at once (plus
    the key columns of every row). Returns the rows written."""
    sort_keys = SORT_KEYS[dataset]
    identity = IDENTITY.get(dataset, ())
    keys, starts = _keys(inputs, list(dict.fromkeys((*sort_keys, *identity))))
    total = keys.num_rows
    dropped = _repeated(keys, identity) if identity else None
    if dropped is not None:
        keys = keys.filter(pc.invert(pc.is_in(keys["__row"], value_set=dropped)))
        report["duplicates"] += total - keys.num_rows
    order = [(column, "ascending") for column in sort_keys] + [("__row", "ascending")]
    ordered = pc.take(keys["__row"], pc.sort_indices(keys, sort_keys=order))
    del keys
    rows = len(ordered)
    group_rows = SORTED_ROW_GROUP_ROWS
    per_row = _arrow_bytes_per_row(inputs)
    pass_rows = max(group_rows, int(MERGE_MEMORY_BYTES / max(per_row, 1.0)) // group_rows * group_rows)
    for first in range(0, rows, pass_rows):
        wanted = ordered.slice(first, pass_rows)  # this pass's rows, in output order
        picked = []
        for path, (start, end) in zip(inputs, itertools.pairwise(starts), strict=True):
            mine = pc.filter(wanted, pc.and_(pc.greater_equal(wanted, start), pc.less(wanted, end)))
            if len(mine):  # this input's rows of the pass, in output order
                picked.append(pq.read_table(path, schema=SCHEMAS[dataset]).take(pc.subtract(mine, start)))
        # Input by input, each in output order: a stable sort by the keys gives the output order
        # (rows of equal keys stay in the inputs' order, as in the whole merge's order).
        held = pa.concat_tables(picked)
        del picked
        order_of_held = pc.sort_indices(held, sort_keys=[(c, "ascending") for c in sort_keys])
        for offset in range(0, held.num_rows, group_rows):  # a row group's copy at a time
            writer.write_table(held.take(order_of_held.slice(offset, group_rows)), row_group_size=group_rows)
        del held
    return rows


def _write_in_order(
    writer: pq.ParquetWriter, dataset: str, inputs: list[Path], report: dict[str, int]
) -> int:
    """Write the rows of ``inputs`` as they are, a repeated identity left out, a row group at a time."""
    identity = IDENTITY.get(dataset)
    masks = _first_of_each(inputs, identity) if identity else None
    rows = 0
    held: list[pa.Table] = []
    held_rows = 0
    for index, path in enumerate(inputs):
        data = pq.read_table(path, schema=SCHEMAS[dataset])
        if masks is not None:
            before = data.num_rows
            data = data.filter(masks[index])
            report["duplicates"] += before - data.num_rows
        held.append(data)
        held_rows += data.num_rows
        if held_rows >= COMPACTED_ROW_GROUP_ROWS:
            writer.write_table(pa.concat_tables(held), row_group_size=COMPACTED_ROW_GROUP_ROWS)
            rows += held_rows
            held, held_rows = [], 0
    if held:
        writer.write_table(pa.concat_tables(held), row_group_size=COMPACTED_ROW_GROUP_ROWS)
        rows += held_rows
    return rows


def _merge(folder: Path, dataset: str, inputs: list[Path], *, fsync: bool, report: dict[str, int]) -> None:
    if len(inputs) < 2:
        return
    name = f"c-{_token()}.parquet"
    tmp = folder / _temp_name(name)
    try:
        with pq.ParquetWriter(tmp, SCHEMAS[dataset], **WRITE_OPTIONS, **_sorted_options(dataset)) as writer:
            if dataset in SORT_KEYS:
                rows = _write_sorted(writer, dataset, inputs, report)
            else:
                rows = _write_in_order(writer, dataset, inputs, report)
        if fsync:
            _fsync(tmp)
        intent = folder / f"{INTENT_PREFIX}{name}.json"
        intent_tmp = folder / f".tmp-intent-{_token()}.json"
        intent_tmp.write_text(json.dumps({"output": name, "inputs": [p.name for p in inputs]}))
        if fsync:
            _fsync(intent_tmp)
        os.rename(intent_tmp, intent)
        os.rename(tmp, folder / name)
        if fsync:
            _fsync(folder)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    for path in inputs:
        path.unlink(missing_ok=True)
    if fsync:
        _fsync(folder)
    intent.unlink(missing_ok=True)
    report["parts_in"] += len(inputs)
    report["files_out"] += 1
    report["rows"] += rows


def maintain(
    root: Path,
    *,
    retention_days: float,
    min_parts: int,
    target_bytes: int,
    fsync: bool = True,
    datasets: tuple[str, ...] = tuple(SCHEMAS),
) -> dict[str, Any]:
    """Retention, then compaction, of every dataset; a dataset another process maintains is skipped."""
    report: dict[str, Any] = {}
    for dataset in datasets:
        base = root / dataset
        if not base.is_dir():
            continue
        try:
            with locked(base / ".compact.lock", blocking=False):
                expired = apply_retention(root, dataset, retention_days)
                merged = {"parts_in": 0, "files_out": 0, "rows": 0, "duplicates": 0}
                for _day, folder in partitions(root, dataset):
                    result = compact_partition(
                        folder, dataset, min_parts=min_parts, target_bytes=target_bytes, fsync=fsync
                    )
                    for key, value in result.items():
                        merged[key] += value
                report[dataset] = {"expired_rows": expired, **merged}
        except BlockingIOError:
            report[dataset] = {"skipped": "another process is compacting"}
    return report
