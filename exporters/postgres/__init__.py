"""The model-serving sink (spec 002): inference events → ``system_telemetry`` + write-time rollups.

With ``OTEL_TELE_POSTGRES_DSN`` set the rows go to PostgreSQL; without it, to the embedded SQLite
database ``<OTEL_TELE_DATA_DIR>/inference.db`` with the same schema and the same query API.

Usage::

    telemetry = otel_tele.setup(service_name="llm-gateway", sinks=["postgres"],
                                postgres_dsn="postgresql://app@db/telemetry")
    # every inference.* event record becomes one system_telemetry row
    # (see otel_tele.instrumentation.inference for the helpers that emit them)

Layout: ``schema`` (public: tables, DDL, measures, settings, read-only readers), ``maintenance``
(public: retention and pruning), and the writer's private modules (``_rows`` records → rows and
rollup increments, with ``_clean`` (rows kept as they came) and ``_rollup`` (measures per column),
``_store`` the store protocol, ``_pg`` / ``_embedded`` the two backends, ``_backends`` which one a
DSN selects).

Failures: a restarting server, a terminated connection or a lock conflict is retried with bounded
backoff (the batching processor in front of the sink buffers meanwhile, boundedly); a batch is
committed with its id, so a retry after an ambiguous commit does not write it twice. Retention:
after a successful write, at most every ``OTEL_TELE_INFERENCE_PRUNE_INTERVAL`` seconds, the sink
deletes a bounded number of rows older than the retention window.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

from otel_tele._event_columns import json_values
from otel_tele._internal import bad_input_log, describe_error, guard
from otel_tele._mapping import Rows
from otel_tele._settings import Settings
from otel_tele._sink import RetryPolicy, Sink, SinkLogExporter, Written
from otel_tele.domains.inference import POSTGRES_DSN
from otel_tele.semconv import inference as inf

from ._backends import open_store
from ._rows import BY_EVENT, MAPPER, prepare
from ._store import InferenceStore
from .maintenance import prune_store, record_prune
from .schema import TABLE, InferenceConfig

_log = logging.getLogger("otel_tele")


def _transient_errors() -> tuple[type[BaseException], ...]:
    from ._embedded import TRANSIENT_ERRORS as sqlite_errors

    try:
        from ._pg import TRANSIENT_ERRORS as pg_errors
    except ImportError:  # psycopg not installed: the embedded store still works
        pg_errors = ()
    return pg_errors + sqlite_errors


class PostgresSink(Sink):
    """Writes inference event records to ``system_telemetry`` (PostgreSQL, or embedded SQLite)."""

    name = "postgres"
    signals = frozenset({"logs"})
    #: Events this sink takes as columns when it is the only log consumer (``otel_tele._event_rows``).
    event_rows: ClassVar[frozenset[str]] = frozenset(BY_EVENT)
    #: Rows keep their record's trace and span ids: an event emitted inside a span comes as a record.
    keeps_trace_context = True
    transient_errors = _transient_errors()
    # A server restart takes seconds: back off up to ~15 s per batch before counting it as failed.
    retry = RetryPolicy(max_attempts=10, initial_backoff_s=0.1, max_backoff_s=3.0)
    #: Batches a scheduled prune deletes at most (the rest waits for the next interval).
    scheduled_prune_batches = 20

    def __init__(
        self,
        *,
        dsn: str | None = None,
        data_dir: Path | str = "telemetry",
        config: InferenceConfig | None = None,
        store: InferenceStore | None = None,
    ) -> None:
        super().__init__()
        self.config = config or InferenceConfig.from_settings()
        self.store = store or open_store(
            dsn, Path(data_dir), pool_max_size=self.config.postgres_pool_max_size
        )
        self.data_dir = Path(data_dir)  # where the last prune is recorded (``maintenance.last_prune``)
        self._retry_records: object = None  # the batch being written (records, or an event's columns)
        self._retry_id = ""
        self._next_prune = 0.0  # first scheduled prune right after the first write

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            dsn=settings.get(POSTGRES_DSN),
            data_dir=settings.data_dir,
            config=InferenceConfig.from_settings(settings),
        )

    def write_logs(self, records: Sequence[Any]) -> Written:
        return self._write_batch(records, len(records), MAPPER.map_logs(records))

    def write_event_rows(self, name: str, timestamps: list[int], columns: dict[str, list[Any]]) -> Written:
        """Inference events handed over as columns (typed and scrubbed; see
        ``otel_tele._event_rows``): the same rows, rollups and books as ``write_logs`` of their
        records."""
        rows = BY_EVENT[name].rows(timestamps, columns)
        # The metadata dicts whose texts the rows hold, one per row (none rejected): the rollups
        # read them instead of parsing the texts back.
        metas = None if rows.rejected else columns.get(json_values(inf.METADATA))
        return self._write_batch(columns, len(timestamps), rows, metas)

    def _write_batch(self, batch: object, count: int, rows: Rows, metas: list[Any] | None = None) -> Written:
        """Write the ``count`` records or events of ``batch``, mapped to ``rows`` (``metas``: see
        :func:`~._rows.prepare`)."""
        # The adapter retries with the same batch: keep its id, so a batch whose commit reached the
        # server before the connection died is recognised and not written twice.
        if batch is not self._retry_records:
            self._retry_records, self._retry_id = batch, uuid.uuid4().hex
        failed = self._write(rows.by_table.get(TABLE, []), self._retry_id, metas) + rows.rejected
        if failed + rows.not_routed < count:  # something was written
            self._maybe_prune()
        self._retry_records = None
        return Written(failed=failed, not_routed=rows.not_routed)

    def _write(self, rows: list[Any], batch_id: str, metas: list[Any] | None = None) -> int:
        """Write mapped ``rows`` as one batch; if the database refuses it for a value, write each
        half on its own (ids derived from ``batch_id``, so a retried batch still skips what
        committed) until the refused rows stand alone and fail alone. Returns the rows failed."""
        batch = prepare(rows, metas=metas)
        if not batch.rows:
            return batch.rejected
        try:
            self.store.write(batch, batch_id)
        except self.store.refused_errors as exc:
            if len(rows) == 1:
                bad_input_log.warning(
                    "postgres sink", "inference sink: the database refused a row (%s)", describe_error(exc)
                )
                return 1
            half = len(rows) // 2
            first, second = (None, None) if metas is None else (metas[:half], metas[half:])
            return self._write(rows[:half], batch_id + "a", first) + self._write(
                rows[half:], batch_id + "b", second
            )
        return batch.rejected

    def _maybe_prune(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + self.config.inference_prune_interval_s
        with guard("scheduled inference prune"):
            result = prune_store(self.store, self.config, max_batches=self.scheduled_prune_batches)
            record_prune(
                self.data_dir,
                self.config,
                result,
                next_run=time.time() + self.config.inference_prune_interval_s,
            )
            if result.deleted_rows:
                _log.info(
                    "inference retention: pruned %d rows (%s)",
                    result.deleted_rows,
                    "complete" if result.complete else "continuing next interval",
                )

    def after_fork(self) -> None:
        self._retry_records = None  # the parent's batch in flight; the store renews its own connections

    def close(self) -> None:
        self.store.close()

    def location(self) -> str:
        return self.store.location

    def describe(self) -> dict[str, Any]:
        info = {
            "location": self.location(),
            "backend": self.store.dialect,
            "reachable": self.store.reachable(),
        }
        path = getattr(self.store, "path", None)  # the embedded store's database file
        if path is not None:
            info["folder"] = str(path.parent)
        return info


class PostgresLogExporter(SinkLogExporter):
    """``OTEL_LOGS_EXPORTER=otel_tele_postgres``: the sink as an OTel log record exporter."""

    sink_class = PostgresSink


__all__ = ["InferenceConfig", "PostgresLogExporter", "PostgresSink", "open_store", "prune_store"]
