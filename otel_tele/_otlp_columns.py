"""Received OTLP straight into a sink that takes rows: ``otel-tele serve``'s hot path (issue 15).

The generic path (``_otlp_decode``) makes an OTel SDK record of every received record and hands it
to every processor. When a sink can turn a request into its own rows itself (the general store:
``otlp_rows``/``write_rows``), and no consumer that needs OTel data would see a record, building
those SDK objects is the whole cost of ``serve``. :class:`ColumnRoute` decides, per signal, when
that holds — once, from what the pipeline has attached — and then:

- the sink makes the request's rows on the receiving thread and they enter a queue of its own
  (a :class:`BatchingProcessor`: the same bound, overload policy and books as the sink's record
  queue — its counts are the sink's ``stats``, so ``sink_stats()`` still reconciles);
- log records that carry an event name — the only ones our domain sinks (SQLite, capsules,
  PostgreSQL) store — are also decoded the generic way and handed to those sinks' processors
  (never to the store's, which has them as rows already).

Any other consumer of the signal (an OTLP or console exporter, a processor we do not know, a sink
that takes every record) keeps the whole signal on the generic path: every record stays ordinary
OTel data for it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from . import _otlp_decode as decode
from . import _otlp_raw
from ._internal import guard
from ._processor import BatchingProcessor, LogBatchProcessor
from ._sink import Sink, booking_of
from ._stats import Booking

if TYPE_CHECKING:
    from ._pipeline import Pipeline

_log = logging.getLogger("otel_tele")

#: Our sinks that store a log record only when its event name is one of their vocabulary's (any
#: other they book not routed): a record without an event name is nothing to them.
EVENT_ROUTED_LOG_SINKS = frozenset({"sqlite", "capsule", "postgres"})


class RowSink(Protocol):
    """What a sink offers to take received OTLP as rows (see ``StoreSink.otlp_rows``)."""

    row_signals: frozenset[str]

    def otlp_rows(
        self, signal: str, request: Any, scrubber: Any, reasons: list[str] | None = None
    ) -> tuple[list[tuple[Any, ...]], int, list[tuple[int, int, int]]]: ...

    def write_rows(self, signal: str, rows: Sequence[tuple[Any, ...]]) -> Any: ...


@dataclass(frozen=True)
class Taken:
    """What became of one request's records: ``decoded`` handed on, ``failed`` not decodable,
    ``dropped`` refused by a full queue (the most any consumer refused)."""

    decoded: int
    failed: int
    dropped: int


class ColumnRoute:
    """The row path of one signal into one sink. :meth:`of` finds the sink; :meth:`active` says,
    for the consumers attached at this moment, whether the path applies (a processor attached
    later — the dashboard's live tail, a user's exporter — turns it off from its next request)."""

    def __init__(self, telemetry: Pipeline, signal: str, sink: Sink) -> None:
        self.telemetry = telemetry
        self.signal = signal
        self.sink = sink
        self.rows: RowSink = sink  # type: ignore[assignment]
        #: The processors that get the records carrying an event name, as OTel records.
        self.named: list[LogBatchProcessor] = []
        self._seen: object = None  # the consumers ``active`` last looked at
        self._active = False
        self._feed: BatchingProcessor[tuple[Any, ...]] | None = None

    @classmethod
    def of(cls, telemetry: Pipeline, signal: str) -> ColumnRoute | None:
        """The row path for ``signal`` when exactly one sink takes it as rows, else ``None``."""
        sinks = [
            sink
            for sink in telemetry.sinks.values()
            if signal in getattr(sink, "row_signals", ()) and signal in sink.signals
        ]
        return cls(telemetry, signal, sinks[0]) if len(sinks) == 1 else None

    def _consumers(self) -> tuple[Any, ...]:
        if self.signal == "traces":
            return tuple(self.telemetry._span_batchers)
        return tuple(self.telemetry._log_processors._log_record_processors)

    def active(self) -> bool:
        """Whether every consumer of the signal allows the row path now."""
        consumers = self._consumers()
        if consumers != self._seen:
            self._active, self.named = self._plan(consumers)
            self._seen = consumers
        return self._active

    def _plan(self, consumers: tuple[Any, ...]) -> tuple[bool, list[LogBatchProcessor]]:
        owner_name, sinks = self.sink.name, self.telemetry.sinks
        if self.signal == "traces":
            # Spans carry no event name: any other span consumer takes them all.
            return all(batcher.stats.sink == owner_name for batcher in consumers), []
        named: list[LogBatchProcessor] = []
        for processor in consumers:
            if not isinstance(processor, LogBatchProcessor):
                return False, []
            owner = processor.batching.stats.sink
            if owner == owner_name:
                continue
            if owner not in EVENT_ROUTED_LOG_SINKS or owner not in sinks:
                return False, []
            named.append(processor)
        return True, named

    @property
    def feed(self) -> BatchingProcessor[tuple[Any, ...]]:
        """The sink's queue of rows, built on first use (the same bound, delay and batch size as
        its record queue for the signal)."""
        feed = self._feed
        if feed is None:
            stats = self.sink.stats[self.signal]
            feed = self._feed = self.telemetry.attach_feed(self.signal, self._export, stats)
        return feed

    def ingest(self, request: Any, reasons: list[str] | None) -> Taken:
        """Rows of ``request`` into the sink's queue; its named log records to the domain sinks."""
        request = _otlp_raw.raw(self.signal, request)
        rows, failed, positions = self.rows.otlp_rows(self.signal, request, self.telemetry.scrubber, reasons)
        dropped = self.feed.put_many(rows, "otlp") if rows else 0
        if positions and self.named:
            records = decode.log_records_at(_otlp_raw.real("logs", request), positions)
            for processor in self.named:
                with guard(f"{type(processor).__name__}.on_emit"):
                    dropped = max(dropped, processor.on_emit_batch(records, "otlp"))
        with guard("overload report"):
            self.telemetry.overload.report()
        return Taken(len(rows), failed, dropped)

    def _export(self, batch: list[tuple[Any, ...]]) -> Booking:
        sink, signal = self.sink, self.signal
        with sink.write_lock:
            try:
                booking = booking_of(self.rows.write_rows(signal, batch), len(batch))
            except Exception as exc:  # no transient errors to retry: the store has none
                _log.exception("sink %s: %d %s could not be written", sink.name, len(batch), signal)
                sink.stats[signal].export_failed(exc)
                return Booking(0, len(batch))
        if booking.failed:
            sink.stats[signal].note_error(f"{booking.failed} of {len(batch)} {signal} rejected as unusable")
        return booking
