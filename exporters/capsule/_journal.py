"""What makes a production run's rows durable before its capsule is published.

A production run is built in ``runs/.tmp-<run_id>-<pid>-<n>/`` and renamed into place when it ends.
Its Parquet files there have no footer until then, so a killed writer would leave nothing readable:
the rows also go, every ``flush_rows`` rows or ``flush_seconds`` seconds, to one Arrow IPC *stream*
per table (``telemetry.arrows``, ``events.arrows``). A stream is readable up to its last whole
batch however it was cut off, which is what makes a row durable — and only then is it booked
``exported``.

Also here: the temp folder's protocol (its lock, the writer's pid in its name, giving it up), which
tells :mod:`._recovery` whose folder it may publish.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import IO

import pyarrow as pa

from .._files import pid_alive as pid_alive  # re-exported: maintenance finds dead writers with it
from . import _flow as flows
from . import schema
from .schema import JOURNAL_SUFFIX as JOURNAL_SUFFIX  # re-exported: the writers name journals with it

_log = logging.getLogger("otel_tele")
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
        # One call for all: the same stream (a batch per chunk), one release of the GIL.
        self._writer.write_table(tables[0] if len(tables) == 1 else pa.concat_tables(tables))
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


# -- the temp folder's protocol --------------------------------------------------------------------
def writer_pid(path: Path) -> int | None:
    """The pid in a temp name ``.tmp-<name>-<pid>-<n>`` (``None`` if there is none)."""
    parts = path.name.split("-")
    if len(parts) < 4 or not parts[-2].isdigit():
        return None
    return int(parts[-2])


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
