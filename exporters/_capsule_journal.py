"""What makes a production run's rows durable before its capsule is published, and brings them back.

A production run is built in ``runs/.tmp-<run_id>-<pid>-<n>/`` and renamed into place when it ends.
Its Parquet files there have no footer until then, so a killed writer would leave nothing readable:
the rows also go, every ``flush_rows`` rows or ``flush_seconds`` seconds, to one Arrow IPC *stream*
per table (``telemetry.arrows``, ``events.arrows``). A stream is readable up to its last whole
batch however it was cut off, which is what makes a row durable — and only then is it booked
``exported``.

:func:`recover_runs` publishes the temp folder of a writer that is gone (its pid is dead, or it
gave up on a failed publication) as a run with ``status = "interrupted"``: the next production
writer and ``otel-tele runs consolidate`` call it. A folder whose manifest was already written
(the writer died just before its rename) is published as it is.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import _capsule_artifacts as artifacts
from . import _capsule_flow as flows
from . import _capsule_schema as schema

_log = logging.getLogger("otel_tele")
JOURNAL_SUFFIX = ".arrows"
#: In a temp folder's name instead of the pid: its writer gave up on it (a failed publication).
ABANDONED = "abandoned"
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


class Journal:
    """One table's rows appended as Arrow IPC stream batches."""

    def __init__(self, path: Path, table: str) -> None:
        self.path = path
        self.table = table
        self._file: IO[bytes] | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None

    def append(self, tables: list[pa.Table], *, fsync: bool) -> None:
        """Append ``tables`` and make them durable (written to the OS; on disk with ``fsync``)."""
        if self._writer is None:
            self._file = open(self.path, "wb")  # noqa: SIM115 - kept open for the run's appends
            self._writer = pa.ipc.new_stream(self._file, schema.SCHEMAS[self.table], options=_IPC_OPTIONS)
        for data in tables:
            self._writer.write_table(data)
        assert self._file is not None
        self._file.flush()
        if fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
        finally:
            if self._file is not None:
                self._file.close()
            self._writer = self._file = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def read_journal(path: Path, table: str) -> pa.Table:
    """Every whole batch of a journal; a batch cut off by a kill (or a full disk) is left out."""
    batches: list[pa.RecordBatch] = []
    try:
        with pa.OSFile(str(path)) as source:
            reader = pa.ipc.open_stream(source)
            while True:
                batches.append(reader.read_next_batch())
    except StopIteration:
        pass
    except (OSError, pa.ArrowException, ValueError) as exc:
        if path.exists() and path.stat().st_size:
            _log.info("capsule journal %s ends in a partial batch (%s); whole batches kept", path, exc)
    return pa.Table.from_batches(batches, schema.SCHEMAS[table])


# -- recovery ---------------------------------------------------------------------------------------
def writer_pid(path: Path) -> int | None:
    """The pid in a temp name ``.tmp-<name>-<pid>-<n>`` (``None`` if there is none)."""
    parts = path.name.split("-")
    if len(parts) < 4 or not parts[-2].isdigit():
        return None
    return int(parts[-2])


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_path(tmp: Path) -> Path:
    """The lock its writer holds on a temp folder for as long as the run is open (beside it, so the
    published folder holds only the capsule)."""
    return tmp.with_name(f"{tmp.name}.lock")


def writer_gone(path: Path) -> bool:
    """The writer of a production temp folder is dead or gave up on it.

    The writer's lock says so even across pid namespaces (a container writing to a shared volume);
    the pid in the name is the fallback for a folder without one."""
    if path.name.split("-")[-2:-1] == [ABANDONED]:
        return True
    lock = lock_path(path)
    if lock.exists():
        try:
            with flows.locked(lock, blocking=False):
                return True
        except BlockingIOError:
            return False
    pid = writer_pid(path)
    return pid is not None and not pid_alive(pid)


def abandon(tmp: Path) -> Path:
    """Mark ``tmp`` as given up by its (living) writer, so recovery takes it now; best effort."""
    parts = tmp.name.split("-")
    target = tmp.with_name("-".join([*parts[:-2], ABANDONED, parts[-1]]))
    try:
        os.rename(tmp, target)
    except OSError as exc:
        _log.warning("capsule: could not mark %s for recovery (%s); done once this process ends", tmp, exc)
        return tmp
    return target


def recover_runs(root: Path, *, fsync: bool = True) -> list[str]:
    """Publish every production temp folder whose writer is gone; returns the run folders made."""
    runs = root / "runs"
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
    from ._capsule_writers import publish_folder, run_info

    journals = [tmp / f"{table}{JOURNAL_SUFFIX}" for table in schema.TABLES]
    manifest_path = tmp / "manifest.toml"
    if manifest_path.exists():  # whole: the writer died between its manifest and its rename
        run_id = str(schema.read_manifest(manifest_path)["run_id"])
        for journal in journals:
            journal.unlink(missing_ok=True)
        artifacts.clean(tmp)
        return publish_folder(tmp, root / "runs", run_id, fsync=fsync)
    tables = {table: read_journal(tmp / f"{table}{JOURNAL_SUFFIX}", table) for table in schema.TABLES}
    if not any(t.num_rows for t in tables.values()):
        shutil.rmtree(tmp, ignore_errors=True)  # nothing of it was ever durable (or booked exported)
        return None
    first = tables["telemetry"] if tables["telemetry"].num_rows else tables["events"]
    info = run_info(str(first.column("run_id")[0].as_py()), tables)
    for table, data in tables.items():
        path = tmp / f"{table}.parquet"
        pq.write_table(data, path, row_group_size=schema.APPEND_ROW_GROUP_ROWS, **schema.WRITE_OPTIONS)
        if fsync:
            flows._fsync(path)
    manifest: dict[str, Any] = info.manifest(
        status="interrupted",
        rows=tables["telemetry"].num_rows,
        events=tables["events"].num_rows,
        recovered_at=schema.utc_now(),
        files={"telemetry": "telemetry.parquet", "events": "events.parquet"},
        # Whole copies only: one cut off by the kill is a ``.part-`` file, removed here.
        artifacts=artifacts.listing(tmp),
        schema=schema.schema_doc(),
    )
    schema.write_manifest(manifest_path, manifest, fsync=fsync)
    for journal in journals:
        journal.unlink(missing_ok=True)
    artifacts.clean(tmp, drop_unlisted=True)
    return publish_folder(tmp, root / "runs", info.run_id, fsync=fsync)
