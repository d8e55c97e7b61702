"""The capsule sink: routes each run's records to its writer, books them, and completes runs (see the
package docs)."""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import pyarrow as pa

from otel_tele import Sink, SinkLogExporter, Written
from otel_tele._internal import abandon_inherited, bad_input_log, describe_error, quiesce_for_fork
from otel_tele._settings import Settings
from otel_tele.domains.fda import CAPSULE_FLUSH_ROWS, CAPSULE_FLUSH_SECONDS, CAPSULE_MAX_OPEN_RUNS
from otel_tele.semconv import fda as v

from . import schema
from ._batch import ARTIFACTS, split, to_arrow_alone
from ._books import Ledger, Writer, payload, rows_written, with_row_books
from ._recovery import recover_runs
from ._writers import (
    DEFAULT_FLUSH_ROWS,
    DEFAULT_FLUSH_SECONDS,
    DEFAULT_PART_ROWS,
    FlowWriter,
    ProductionWriter,
    RunInfo,
)

_log = logging.getLogger("otel_tele")
#: Runs open at once (a production run holds two Parquet files and up to a row group of rows).
DEFAULT_MAX_OPEN_RUNS: int = CAPSULE_MAX_OPEN_RUNS.default
_MAX_REFUSED_KEPT = 10_000


class CapsuleSink(Sink):
    """Writes FDA log records into run capsules and per-flow files (see the package docs).

    A record is booked ``exported`` once durable: a production run's rows when they reach the run's
    journal (at least every ``flush_rows`` rows or ``flush_seconds`` seconds) or its published
    capsule; a dev/tuner run's rows when their part is published. Until then they are ``pending``.
    """

    name = "capsule"
    signals: ClassVar[frozenset[str]] = frozenset({"logs"})
    #: Events this sink takes as columns when it is the only log consumer (``otel_tele._event_rows``):
    #: the solver's iterations, the bulk of a run.
    event_rows: ClassVar[frozenset[str]] = frozenset({v.ITERATION})

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        part_rows: int = DEFAULT_PART_ROWS,
        fsync: bool = True,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        max_open_runs: int = DEFAULT_MAX_OPEN_RUNS,
    ) -> None:
        super().__init__()
        # No fork in the middle of a write: the worker may be inside pyarrow then, and a child that
        # inherits pyarrow's internal locks held by a thread it does not have hangs in its own first
        # conversion (seen under load with a busy parent forking children).
        quiesce_for_fork(self, "write_lock")
        self.root = Path(root)
        self.part_rows = part_rows
        self.fsync = fsync
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._open: dict[str, Writer] = {}
        self.max_open_runs = max_open_runs
        # run_id → why its records are rejected; bounded like the open runs (oldest forgotten first)
        self._refused: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.runs_refused = 0  # runs turned away because max_open_runs were open
        self._pending = 0  # rows booked pending: held by open writers, not yet durable
        self._recovered_in: int | None = None  # pid that ran recovery of dead writers' runs
        self._ticker: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            schema.capsule_root(settings),
            flush_rows=settings.get(CAPSULE_FLUSH_ROWS),
            flush_seconds=settings.get(CAPSULE_FLUSH_SECONDS),
            max_open_runs=settings.get(CAPSULE_MAX_OPEN_RUNS),
        )

    # -- writing ----------------------------------------------------------------------------------
    def write_logs(self, records: Sequence[Any]) -> Written:
        batch = split(records)
        ledger = Ledger()
        for run_id, tables in batch.runs.items():
            first = next(iter(tables.values()))[0][1]
            batch.rejected += self._write_run(run_id, tables, batch.ends.get(run_id), ledger, first)
        return self._settle_write(ledger, batch.rejected, batch.not_routed)

    def write_event_rows(self, name: str, timestamps: list[int], columns: dict[str, list[Any]]) -> Written:
        """Iterations handed over as columns (attribute key → values, typed and scrubbed; see
        ``otel_tele._event_rows``): the same rows, books and files as ``write_logs`` of their records."""
        ledger = Ledger()
        rejected = 0
        count = len(timestamps)
        runs = columns.get(v.RUN_ID) or [None] * count
        first_run = runs[0]
        if runs.count(first_run) == count:
            groups: dict[Any, list[int] | None] = {first_run: None}  # None: every row
        else:
            groups = {}
            for index, run_id in enumerate(runs):
                rows = groups.setdefault(run_id, [])
                assert rows is not None
                rows.append(index)
        for run_id, rows in groups.items():
            if not isinstance(run_id, str):
                rejected += count if rows is None else len(rows)
                continue
            if rows is None:
                stamps, cols = timestamps, columns
            else:
                stamps = [timestamps[i] for i in rows]
                cols = {key: [column[i] for i in rows] for key, column in columns.items()}
            first = {key: cols[key][0] for key in (v.FLOW_NAME, v.MODE, v.TRIAL_ID) if key in cols}
            try:
                data: pa.Table | list[tuple[int, Mapping[str, Any]]] = schema.from_columns(
                    "telemetry", stamps, cols
                )
            except Exception:  # the record path decides row by row (never expected: values are typed)
                keys = list(cols)
                data = [
                    (stamp, dict(zip(keys, values, strict=True)))
                    for stamp, *values in zip(stamps, *cols.values(), strict=True)
                ]
            rejected += self._write_run(run_id, {"telemetry": data}, None, ledger, first)
        return self._settle_write(ledger, rejected, 0)

    def _settle_write(self, ledger: Ledger, rejected: int, not_routed: int) -> Written:
        self._flush_due(ledger)
        # This batch's rows settle after the rows already pending (oldest first): those are re-booked
        # now, the rest of what became durable or was lost is this batch's.
        held = sum(writer.pending_rows for writer in self._open.values())
        resolved = self._pending + ledger.accepted - held  # durable + lost during this call
        durable = resolved - ledger.lost
        old_durable = min(self._pending, durable)
        old_lost = min(self._pending - old_durable, ledger.lost)
        self.stats["logs"].settled(exported=old_durable, failed=old_lost)
        self._pending = held
        return Written(
            failed=rejected + ledger.lost - old_lost,
            pending=ledger.accepted - (durable - old_durable) - (ledger.lost - old_lost),
            not_routed=not_routed,
        )

    def _write_run(
        self,
        run_id: str,
        tables: Mapping[str, list[tuple[int, Mapping[str, Any]]] | pa.Table],
        end: str | None,
        ledger: Ledger,
        first: Mapping[str, Any],
    ) -> int:
        """Write one run's records of this batch (or rows already made Arrow: ``write_event_rows``);
        returns how many were rejected. ``first``: a record's attributes (the run's identity)."""
        count = sum(len(records) for records in tables.values())
        writer = self._open.get(run_id)
        if writer is None:
            writer = self._start(run_id, first)
            if writer is None:
                return count
        added = rejected = 0
        if end is not None and "events" in tables:
            # Rows and artifacts first, so the end event can say how many the file holds and the
            # artifacts are in the folder the end publishes.
            tables = {
                "telemetry": tables.get("telemetry", []),
                ARTIFACTS: tables.get(ARTIFACTS, []),
                "events": tables["events"],
            }
        try:
            for table, records in tables.items():
                if not len(records):
                    continue
                if table == ARTIFACTS:
                    stored = self._attach(run_id, writer, records)
                    rejected += len(records) - stored
                    ledger.accepted += stored  # durable once stored: never pending
                    continue
                kept: list[tuple[int, Mapping[str, Any]]] = []
                if isinstance(records, pa.Table):
                    data = records
                else:
                    if table == "events" and end is not None:
                        records = [with_row_books(item, rows_written(writer)) for item in records]
                    data, kept = to_arrow_alone(table, records)
                    rejected += len(records) - len(kept)
                if data is not None:
                    writer.add(table, data)
                    added += data.num_rows
                    ledger.accepted += data.num_rows
                if table == "events":
                    self._note_lifecycle(writer.info, kept)
            if end is not None:
                del self._open[run_id]
                writer.finish(
                    writer.info.summary.get("status") or ("cancelled" if end == v.CANCELLED else "completed")
                )
        except Exception as exc:
            self._give_up(run_id, writer, exc, ledger)
            return count - added  # the rows added are booked with the run (ledger.lost)
        return rejected

    @staticmethod
    def _attach(run_id: str, writer: Writer, records: list[tuple[int, Mapping[str, Any]]]) -> int:
        """Store a batch's artifacts of one run; one that cannot be stored fails alone (the run goes
        on). Returns how many were stored."""
        stored = 0
        for _ts, attrs in records:
            try:
                writer.attach(attrs)
            except (ValueError, OSError) as exc:
                bad_input_log.warning(
                    "capsule artifact",
                    "capsule sink: an artifact of run %s not stored (%s)",
                    run_id[:80],
                    describe_error(exc) if isinstance(exc, OSError) else str(exc)[:300],
                )
            else:
                stored += 1
        return stored

    def _give_up(self, run_id: str, writer: Writer, exc: Exception, ledger: Ledger) -> None:
        """A run that cannot be written or published: every row of it is booked failed (those
        already booked exported re-booked), and what reached its journal is kept for recovery."""
        self._open.pop(run_id, None)
        self._refused[run_id] = f"given up: {exc}"  # its later records would make a second, partial run
        ledger.lost += writer.pending_rows
        self.stats["logs"].revoked(writer.journaled_rows)
        kept = writer.journaled_rows
        try:
            writer.abandon()
        except Exception:
            _log.exception("capsule sink: could not set run %s aside", run_id)
        _log.error(
            "capsule sink: run %s could not be written or published (%s): its rows are booked failed; "
            'the %d rows in its journal are published with status = "interrupted" by the next '
            "production run or `otel-tele runs consolidate`",
            run_id,
            exc,
            kept,
        )

    def _start(self, run_id: str, first: Mapping[str, Any]) -> Writer | None:
        if run_id in self._refused:
            return None
        if len(self._open) >= self.max_open_runs:
            # Each open run holds files and buffered rows: memory and descriptors stay bounded.
            self.runs_refused += 1
            self._refuse(run_id, f"{self.max_open_runs} runs already open (OTEL_TELE_CAPSULE_MAX_OPEN_RUNS)")
            return None
        try:
            info = RunInfo(
                v.check_name("run_id", run_id),
                v.check_name("flow_name", first.get(v.FLOW_NAME)),
                str(first.get(v.MODE) or "production"),
                first.get(v.TRIAL_ID),
            )
            if info.trial_id is not None:
                v.check_name("trial_id", info.trial_id)
            if info.mode not in v.MODES:
                raise ValueError(f"unknown mode {info.mode!r}")
            writer: Writer
            if info.mode == "production":
                self._recover_once()
                writer = ProductionWriter(
                    self.root,
                    info,
                    fsync=self.fsync,
                    flush_rows=self.flush_rows,
                    flush_seconds=self.flush_seconds,
                )
                self._start_ticker()
            else:
                writer = FlowWriter(self.root, info, part_rows=self.part_rows, fsync=self.fsync)
        except (ValueError, OSError) as exc:  # bad names from a foreign producer, a newer flow schema
            self._refuse(run_id, str(exc))
            return None
        self._open[run_id] = writer
        return writer

    def _recover_once(self) -> None:
        """The first production run of this process publishes the runs dead writers left behind."""
        if self._recovered_in == os.getpid():
            return
        self._recovered_in = os.getpid()
        try:
            recover_runs(self.root, fsync=self.fsync)
        except Exception:
            _log.exception("capsule sink: recovery of interrupted runs failed")

    def _refuse(self, run_id: str, why: str) -> None:
        self._refused[run_id] = why
        while len(self._refused) > _MAX_REFUSED_KEPT:
            self._refused.popitem(last=False)
        _log.error("capsule sink: records of run %r rejected: %s", run_id[:80], why)

    @staticmethod
    def _note_lifecycle(info: RunInfo, records: list[tuple[int, Mapping[str, Any]]]) -> None:
        for _ts, attrs in records:
            event = attrs.get(v.EVENT)
            if event == v.RUN_STARTED:
                info.config = payload(attrs)
            elif event in v.END_EVENTS:
                info.summary = payload(attrs)

    # -- durability -------------------------------------------------------------------------------
    def _flush_due(self, ledger: Ledger, *, force: bool = False) -> None:
        now = time.monotonic()
        for run_id, writer in list(self._open.items()):
            if force or writer.flush_due(now):
                try:
                    writer.flush_journal()
                except Exception as exc:
                    self._give_up(run_id, writer, exc, ledger)

    def _settle_idle(self, *, force: bool = False) -> None:
        """Between batches (a quiet run, a flush): make due rows durable and book them. Holds the
        write lock, so it never interleaves with a write."""
        with self.write_lock:
            if getattr(self, "_closed", False):
                return
            ledger = Ledger()
            self._flush_due(ledger, force=force)
            held = sum(writer.pending_rows for writer in self._open.values())
            durable = self._pending - held - ledger.lost
            self.stats["logs"].settled(exported=durable, failed=ledger.lost)
            self._pending = held

    def _start_ticker(self) -> None:
        ticker = self._ticker
        if ticker is not None and ticker.is_alive():
            return
        self._ticker = threading.Thread(target=self._tick, name="otel-tele-capsule-journal", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        period = max(0.01, self.flush_seconds / 2)
        while not self.closing.wait(period):
            try:
                self._settle_idle()
            except Exception:
                _log.exception("capsule sink: journal flush failed")

    def flush(self, timeout_millis: float) -> bool:
        """Make every row received so far durable (journals of open runs)."""
        self._settle_idle(force=True)
        return True

    # -- lifecycle --------------------------------------------------------------------------------
    def after_fork(self) -> None:
        # The open runs are the parent's: their temp files are written and published by the parent.
        # Finishing (or finalising) a writer here would write into the parent's files.
        for writer in self._open.values():
            abandon_inherited(writer)
        self._open = {}
        self._pending = 0  # the parent's rows, booked in the parent
        self._ticker = None  # the parent's journal thread did not fork

    def close(self) -> None:
        """Complete every run still open (``status = "incomplete"``): nothing received is kept back."""
        ledger = Ledger()
        for run_id, writer in list(self._open.items()):
            try:
                writer.finish("incomplete")
            except Exception as exc:
                self._give_up(run_id, writer, exc, ledger)
        self._open.clear()
        self.stats["logs"].settled(exported=self._pending - ledger.lost, failed=ledger.lost)
        self._pending = 0

    def location(self) -> str:
        return str(self.root)

    def describe(self) -> dict[str, Any]:
        probe = self.root if self.root.exists() else self.root.parent
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        return {
            "location": self.location(),
            "folder": str(self.root),
            "reachable": os.access(probe, os.W_OK),
            "open_runs": len(self._open),
            "runs_refused": self.runs_refused,
        }


class CapsuleLogExporter(SinkLogExporter):
    """``OTEL_LOGS_EXPORTER=otel_tele_capsule``: the capsule sink as an OTel log record exporter."""

    sink_class = CapsuleSink
