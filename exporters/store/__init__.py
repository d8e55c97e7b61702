"""The general telemetry store: every span, log record and metric point, as plain Parquet.

Beside the domain sinks (which keep only the records of their vocabulary), the ``store`` sink keeps
everything that reaches the pipeline: spans with ids, parent, kind, status, timing, attributes,
events, links, resource and scope; log records with body, severity, event name, attributes and trace
context; metric points (sums, gauges, histograms with bucket counts and bounds, exponential
histograms, summaries, exemplars). The layout
and columns are declared in :mod:`otel_tele.exporters.store.schema`; read it with DuckDB or pyarrow,
no otel-tele needed.

Rows are held in memory (booked *pending*) until a part is due — ``store_flush_rows`` rows,
``store_flush_bytes`` bytes or ``store_flush_seconds`` seconds after the oldest — then written,
fsynced and renamed into place (booked *exported*). A background thread applies retention
(``store_retention_days``) and compacts small parts (``store_compact_interval``).

Usage::

    telemetry = otel_tele.setup(service_name="arm", sinks=["store"])   # otel-tele serve: on by default
    ...
    duckdb.sql("SELECT name, duration_ns FROM read_parquet('telemetry/store/spans/*/*.parquet')")

or, with ``opentelemetry-instrument``, ``OTEL_TRACES_EXPORTER=otel_tele_store`` (and logs, metrics).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import pyarrow as pa

from otel_tele._internal import quiesce_for_fork
from otel_tele._maintenance import record_run
from otel_tele._settings import Settings
from otel_tele._sink import Sink, SinkLogExporter, SinkMetricExporter, SinkSpanExporter, Written
from otel_tele.domains import store as options

from . import _otlp_rows, _parts, _rows
from .schema import SIGNALS, store_root

__all__ = ["StoreLogExporter", "StoreMetricExporter", "StoreSink", "StoreSpanExporter", "maintain"]

_log = logging.getLogger("otel_tele")
maintain = _parts.maintain


class StoreSink(Sink):
    """Writes every span, log record and metric point to the store (see the module docs).

    Example::

        sink = StoreSink("telemetry/store", flush_seconds=1.0)
        telemetry = otel_tele.setup(local=True, sinks=[])  # or sinks=["store"]
    """

    name = "store"
    signals: ClassVar[frozenset[str]] = frozenset({"traces", "logs", "metrics"})

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        flush_rows: int = options.STORE_FLUSH_ROWS.default,
        flush_bytes: int = options.STORE_FLUSH_BYTES.default,
        flush_seconds: float = options.STORE_FLUSH_SECONDS.default,
        retention_days: float = options.STORE_RETENTION_DAYS.default,
        compact_interval_s: float = options.STORE_COMPACT_INTERVAL_S.default,
        compact_min_parts: int = 16,
        part_bytes: int = options.STORE_PART_BYTES.default,
        fsync: bool = True,
    ) -> None:
        super().__init__()
        # No fork inside a write: a child inheriting pyarrow's internal locks mid-conversion hangs.
        quiesce_for_fork(self, "write_lock")
        self.root = Path(root)
        self.flush_rows = flush_rows
        self.flush_bytes = flush_bytes
        self.flush_seconds = flush_seconds
        self.retention_days = retention_days
        self.compact_interval_s = compact_interval_s
        self.compact_min_parts = compact_min_parts
        self.part_bytes = part_bytes
        self.fsync = fsync
        self._held = {signal: _parts.Held() for signal in SIGNALS}
        self._pending = dict.fromkeys(SIGNALS, 0)  # rows booked pending, per signal
        self._ticker: threading.Thread | None = None
        self._maintained_at = 0.0
        self.parts_written = 0
        self.last_maintenance: dict[str, Any] = {}
        self._attribute_cache: tuple[Any, _otlp_rows.Attributes] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            store_root(settings),
            flush_rows=settings.get(options.STORE_FLUSH_ROWS),
            flush_bytes=settings.get(options.STORE_FLUSH_BYTES),
            flush_seconds=settings.get(options.STORE_FLUSH_SECONDS),
            retention_days=settings.get(options.STORE_RETENTION_DAYS),
            compact_interval_s=settings.get(options.STORE_COMPACT_INTERVAL_S),
            part_bytes=settings.get(options.STORE_PART_BYTES),
        )

    # -- writing ----------------------------------------------------------------------------------
    def write_spans(self, spans: Sequence[Any]) -> Written:
        rows, failed = _rows.convert(spans, _rows.span_row, "span")
        return self._add("traces", rows, failed, 0)

    def write_logs(self, records: Sequence[Any]) -> Written:
        rows, failed = _rows.convert(records, _rows.log_row, "log record")
        return self._add("logs", rows, failed, 0)

    # -- received OTLP, as rows (otel-tele serve's hot path: ``_otlp_rows``) ------------------------
    #: The signals whose OTLP requests :meth:`otlp_rows` turns into rows (the receiver asks this).
    row_signals: ClassVar[frozenset[str]] = frozenset({"traces", "logs"})

    def otlp_rows(
        self, signal: str, request: Any, scrubber: Any, reasons: list[str] | None = None
    ) -> tuple[list[tuple[Any, ...]], int, list[tuple[int, int, int]]]:
        """An OTLP export request of ``signal`` (parsed by ``otel_tele._otlp_raw``) as rows for
        :meth:`write_rows`: (rows, records that could not be decoded, positions of the log records
        that carry an event name). Runs on the receiver's threads, outside the write lock; the
        pipeline's ``scrubber`` applies as it would on export."""
        cache = self._attribute_cache
        if cache is None or cache[0] is not scrubber:
            cache = self._attribute_cache = (scrubber, _otlp_rows.Attributes(scrubber))
        if signal == "logs":
            return _otlp_rows.log_rows(request, cache[1], reasons)
        rows, failed = _otlp_rows.span_rows(request, cache[1], reasons)
        return rows, failed, []

    def write_rows(self, signal: str, rows: Sequence[tuple[Any, ...]]) -> Written:
        """Store rows made by :meth:`otlp_rows` (the caller holds ``write_lock``, as for ``write_*``);
        a row over the size limit or refused by Arrow fails alone."""
        dataset = SIGNALS[signal]
        table, refused = _rows.to_table(dataset, list(rows), dataset[:-1])
        if table is None or _rows.longest_row_text(table) <= _rows.MAX_RECORD_CHARS:
            return self._add_table(signal, table, refused, 0)
        # Some row may be over the limit: each is measured, and only those fail.
        if signal == "traces":
            kept, failed = _rows.convert(rows, _rows.checked_span, "span")
        else:
            kept, failed = _rows.convert(rows, _rows.checked_log, "log record")
        return self._add(signal, kept, failed, 0)

    def write_metrics(self, data: Any) -> Written:
        errors: list[BaseException] = []
        rows, not_routed = _rows.metric_rows(data, errors.append)
        for exc in errors[:1]:
            _rows.reject("metric point", exc)
        return self._add("metrics", rows, len(errors), not_routed)

    def _add(self, signal: str, rows: list[tuple[Any, ...]], failed: int, not_routed: int) -> Written:
        dataset = SIGNALS[signal]
        table, refused = _rows.to_table(dataset, rows, dataset[:-1])
        return self._add_table(signal, table, failed + refused, not_routed)

    def _add_table(self, signal: str, table: pa.Table | None, failed: int, not_routed: int) -> Written:
        accepted = table.num_rows if table is not None else 0
        held = self._held[signal]
        if table is not None:
            held.add(table)
        self._start_ticker()
        durable, lost = self._flush_if_due(signal, time.monotonic())
        # Rows settle oldest first: those booked pending by earlier calls are re-booked now, the rest
        # of what became durable or was lost is this batch's.
        before = self._pending[signal]
        old_durable = min(before, durable)
        old_lost = min(before - old_durable, lost)
        self.stats[signal].settled(exported=old_durable, failed=old_lost)
        new_lost = lost - old_lost
        self._pending[signal] = held.rows
        return Written(
            failed=failed + new_lost,
            pending=accepted - (durable - old_durable) - new_lost,
            not_routed=not_routed,
        )

    def _flush_if_due(self, signal: str, now: float, *, force: bool = False) -> tuple[int, int]:
        """Publish the held rows of ``signal`` if a threshold is reached: (rows durable, rows lost)."""
        held = self._held[signal]
        if not held.rows:
            return 0, 0
        if not (
            force
            or held.rows >= self.flush_rows
            or held.nbytes >= self.flush_bytes
            or now - held.since >= self.flush_seconds
        ):
            return 0, 0
        count = held.rows
        tables = held.take()
        try:
            _parts.publish(self.root, SIGNALS[signal], tables, fsync=self.fsync)
        except Exception as exc:
            _log.error(
                "store sink: a part of %d %s could not be written (%s): booked failed",
                count,
                SIGNALS[signal],
                exc,
            )
            return 0, count
        self.parts_written += 1
        return count, 0

    def _settle_idle(self, *, force: bool = False) -> None:
        """Between batches (a quiet period, a flush): publish due parts and book them, under the write
        lock, so it never interleaves with a write."""
        with self.write_lock:
            if getattr(self, "_closed", False):
                return
            self._settle_all(force=force)

    def _settle_all(self, *, force: bool) -> None:
        now = time.monotonic()
        for signal in SIGNALS:
            durable, lost = self._flush_if_due(signal, now, force=force)
            if durable or lost:
                self.stats[signal].settled(exported=durable, failed=lost)
                self._pending[signal] = self._held[signal].rows

    def flush(self, timeout_millis: float) -> bool:
        """Make every row received so far durable (one part per signal that holds rows)."""
        self._settle_idle(force=True)
        return True

    # -- background: age-based flushes, retention, compaction ---------------------------------------
    def _start_ticker(self) -> None:
        ticker = self._ticker
        if ticker is not None and ticker.is_alive():
            return
        self._ticker = threading.Thread(target=self._tick, name="otel-tele-store", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        period = max(0.01, min(self.flush_seconds / 2, 1.0))
        while not self.closing.wait(period):
            try:
                self._settle_idle()
            except Exception:
                _log.exception("store sink: a timed flush failed")
            if time.monotonic() - self._maintained_at >= self.compact_interval_s:
                self.maintain_now()

    def maintain_now(self) -> dict[str, Any]:
        """Retention and compaction now (the background thread calls it every compact interval)."""
        self._maintained_at = time.monotonic()
        try:
            self.last_maintenance = _parts.maintain(
                self.root,
                retention_days=self.retention_days,
                min_parts=self.compact_min_parts,
                target_bytes=self.part_bytes,
                fsync=self.fsync,
            )
        except Exception:
            _log.exception("store sink: retention/compaction failed (retried next interval)")
            return self.last_maintenance
        done = [r for r in self.last_maintenance.values() if "skipped" not in r]
        if done:  # another process that maintained the datasets records its own pass
            record_run(
                self.root,
                self.name,
                "expiry and compaction",
                sum(r["expired_rows"] for r in done),
                detail=f"{sum(r['parts_in'] for r in done)} parts compacted into "
                f"{sum(r['files_out'] for r in done)}",
                next_run=time.time() + self.compact_interval_s,
            )
        return self.last_maintenance

    # -- lifecycle --------------------------------------------------------------------------------
    def after_fork(self) -> None:
        # Held rows are the parent's (booked there); the parent's thread did not fork.
        self._held = {signal: _parts.Held() for signal in SIGNALS}
        self._pending = dict.fromkeys(SIGNALS, 0)
        self._ticker = None

    def close(self) -> None:
        """Publish every row still held: nothing received is kept back."""
        with self.write_lock:  # the background thread may be publishing at this moment
            self._settle_all(force=True)

    def location(self) -> str:
        return str(self.root)

    def describe(self) -> dict[str, Any]:
        probe = self.root
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        return {
            "location": self.location(),
            "folder": str(self.root),
            "reachable": os.access(probe, os.W_OK),
            "held_rows": {SIGNALS[s]: h.rows for s, h in self._held.items()},
            "retention_days": self.retention_days,
        }


class StoreSpanExporter(SinkSpanExporter):
    """``OTEL_TRACES_EXPORTER=otel_tele_store``."""

    sink_class = StoreSink


class StoreLogExporter(SinkLogExporter):
    """``OTEL_LOGS_EXPORTER=otel_tele_store``."""

    sink_class = StoreSink


class StoreMetricExporter(SinkMetricExporter):
    """``OTEL_METRICS_EXPORTER=otel_tele_store`` (cumulative: stored points are what the SDK reports,
    as an OTLP receiver would get them)."""

    sink_class = StoreSink

    def __init__(self, sink: Sink | None = None, *, cumulative: bool = True) -> None:
        super().__init__(sink, cumulative=cumulative)
