"""The sink contract: the one base every storage exporter of otel-tele builds on.

A :class:`Sink` knows a storage (SQLite, Parquet, PostgreSQL, bundle files) and nothing of OTel's
exporter interfaces; the adapters below make it an OTel span, log record or metric exporter. The
adapters own the contract:

- ``export()`` never raises and never runs twice at once for the same sink (one lock per sink, so a
  sink fed by a log and a span exporter still sees one writer);
- transient errors (``Sink.transient_errors``) are retried with bounded exponential backoff inside the
  export deadline; anything still unwritten is counted as *failed*, never silently lost;
- shutdown interrupts a backoff sleep, so a dead database cannot hang it.

A sink is built either by ``setup()`` (``OTEL_TELE_SINKS``) or, through the exporter entry points, by
``opentelemetry-instrument`` with no arguments: then it reads its configuration from the environment.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ._internal import at_fork_in_child, fork_safe
from ._settings import Settings, resolve
from ._stats import Booking, SinkStats

_log = logging.getLogger("otel_tele")
_R = TypeVar("_R")

Signal = str  # "traces" | "logs" | "metrics"


@dataclass(frozen=True)
class Written:
    """What a ``write_*`` did with a batch, beyond storing it durably.

    ``failed``: rejected as unusable; ``pending``: kept in memory, not yet durable (the sink books
    them later through ``stats[signal].settled``); ``not_routed``: records of a kind this sink does
    not store. Whatever is left of the batch is booked exported.

    Example::

        def write_logs(self, records):
            ours = [r for r in records if r.log_record.event_name == "my.event"]
            self.store(ours)  # committed: booked exported
            return Written(not_routed=len(records) - len(ours))
    """

    failed: int = 0
    pending: int = 0
    not_routed: int = 0


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for transient sink errors."""

    max_attempts: int = 6
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 2.0
    multiplier: float = 2.0

    def delays(self) -> list[float]:
        delays, delay = [], self.initial_backoff_s
        for _ in range(self.max_attempts - 1):
            delays.append(min(delay, self.max_backoff_s))
            delay *= self.multiplier
        return delays


class Sink(abc.ABC):
    """A storage target. Subclasses declare what they consume and implement the ``write_*`` they need.

    ``write_*`` raise on failure (an instance of ``transient_errors`` is retried) and may return the
    number of records they rejected as unusable (counted as failed), or a :class:`Written` that also
    names the records not yet durable and those not routed to this sink. Create storage lazily, on the
    first record the sink actually keeps: a service that never emits robot events gets no robot
    database.
    """

    name: ClassVar[str]
    signals: ClassVar[frozenset[Signal]]
    transient_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    retry: ClassVar[RetryPolicy] = RetryPolicy()

    def __init__(self) -> None:
        self.write_lock = threading.Lock()
        self.closing = threading.Event()
        self.stats: dict[Signal, SinkStats] = {
            signal: SinkStats(self.name, signal) for signal in self.signals
        }
        at_fork_in_child(self._reinit_after_fork)

    def _reinit_after_fork(self) -> None:
        # The parent's writer thread may have held the lock mid-write when the process forked.
        self.write_lock = threading.Lock()
        closing, self.closing = self.closing, threading.Event()
        if closing.is_set():
            self.closing.set()
        for stats in self.stats.values():
            stats.reset_after_fork()
        self.after_fork()

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Build the sink from resolved settings (``OTEL_TELE_DATA_DIR`` …)."""

    @classmethod
    def from_environment(cls) -> Self:
        return cls.from_settings(resolve({}))

    def write_logs(self, records: Sequence[ReadableLogRecord]) -> int | Written | None:
        raise NotImplementedError

    def write_spans(self, spans: Sequence[ReadableSpan]) -> int | Written | None:
        raise NotImplementedError

    def write_metrics(self, data: MetricsData) -> int | Written | None:
        raise NotImplementedError

    def open(self) -> object:
        """Create the storage now rather than on the first record kept: for a caller whose contract
        says the storage exists once it has started. Raises what creating it raises; most sinks need
        nothing."""
        return None

    def flush(self, timeout_millis: float) -> bool:
        """Make written data durable/visible; most sinks commit per batch and need nothing."""
        return True

    def close(self) -> None:  # noqa: B027 - optional hook, most sinks hold nothing open
        """Release connections and files. Called once, after the last write."""

    def after_fork(self) -> None:  # noqa: B027 - optional hook, most sinks hold nothing open
        """In a forked child, before it runs anything else: forget the parent's connections, open
        files and locks (hand them to ``abandon_inherited``, never close them — they are the
        parent's) so the child opens its own on its first write."""

    def describe(self) -> dict[str, Any]:
        """Where data goes and whether it is reachable, for ``otel-tele doctor`` (may do I/O)."""
        return {}

    def location(self) -> str:
        """Where data goes, printable, found without any I/O: ``setup()`` lists it on the caller's
        thread, where a database host that never answers must cost nothing."""
        return ""


def booking_of(result: int | Written | None, count: int) -> Booking:
    """The books of a batch of ``count`` records from what ``write_*`` returned."""
    written = result if isinstance(result, Written) else Written(failed=int(result or 0))
    failed = max(0, min(int(written.failed), count))
    not_routed = max(0, min(int(written.not_routed), count - failed))
    pending = max(0, min(int(written.pending), count - failed - not_routed))
    return Booking(count - failed - not_routed - pending, failed, pending, not_routed)


def write_with_retry(
    sink: Sink, signal: Signal, batch: Any, count: int, timeout_s: float | None = None
) -> Booking:
    """Write ``batch`` (``count`` records) through ``sink``: returns its :class:`Booking`. Never raises.

    Retries stop when the policy's attempts are used up or the next backoff would pass ``timeout_s``.
    """
    writers: dict[Signal, Callable[[Any], int | Written | None]] = {
        "logs": sink.write_logs,
        "traces": sink.write_spans,
        "metrics": sink.write_metrics,
    }
    writer = writers[signal]
    with sink.write_lock:
        try:
            booking = booking_of(retrying(sink, signal, lambda: writer(batch), count, timeout_s), count)
        except GaveUp:
            return Booking(0, count)
        except Exception as exc:
            _log.exception("sink %s: %d %s could not be written", sink.name, count, signal)
            sink.stats[signal].export_failed(exc)
            return Booking(0, count)
        if booking.failed:
            sink.stats[signal].note_error(f"{booking.failed} of {count} {signal} rejected as unusable")
        return booking


class GaveUp(Exception):
    """A write whose transient errors outlasted the sink's retry policy (booked and logged)."""


def retrying(
    sink: Sink, signal: Signal, write: Callable[[], _R], count: int, timeout_s: float | None = None
) -> _R:
    """``write()`` (the caller holds ``sink.write_lock``), retried on the sink's transient errors
    with its backoff; once the attempts are used up, the sink is closing or the next backoff would
    pass ``timeout_s``, the failure is booked and logged and :class:`GaveUp` raised. Any other
    error is raised as it is."""
    delays = sink.retry.delays()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    for attempt in range(len(delays) + 1):
        try:
            return write()
        except sink.transient_errors as exc:
            out_of_time = (
                deadline is not None
                and attempt < len(delays)
                and time.monotonic() + delays[attempt] > deadline
            )
            if attempt == len(delays) or sink.closing.is_set() or out_of_time:
                sink.stats[signal].export_failed(exc)
                _log.error(
                    "sink %s: giving up on %d %s after %d attempts: %s",
                    sink.name,
                    count,
                    signal,
                    attempt + 1,
                    exc,
                )
                raise GaveUp from exc
            _log.warning("sink %s: transient error (%s); retrying in %.2fs", sink.name, exc, delays[attempt])
            sink.closing.wait(delays[attempt])
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover


class _SinkExporterMixin:
    """Shared by the three adapters: which sink, and how it is built when no sink is given."""

    sink_class: ClassVar[type[Sink] | None] = None
    _signal: ClassVar[Signal]

    def _init_sink(self, sink: Sink | None) -> None:
        if sink is None:
            if self.sink_class is None:
                raise TypeError(f"{type(self).__name__} needs a sink")
            sink = shared_sink(self.sink_class)
        self.sink = sink
        self.stats = sink.stats[self._signal]

    def export_counted(self, batch: Any, count: int, timeout_s: float | None = None) -> Booking:
        """Used by otel-tele's processor, which keeps the books itself."""
        return write_with_retry(self.sink, self._signal, batch, count, timeout_s)

    def _export_and_count(self, batch: Any, count: int) -> bool:
        """False when the export failed as a whole; records rejected one by one are counted failed
        but do not fail the export."""
        failures = self.stats.failed_exports
        booking = self.export_counted(batch, count)
        self.stats.passed_through(**booking._asdict())
        return self.stats.failed_exports == failures

    def shutdown(self, timeout_millis: float = 30_000, **_: Any) -> None:
        self.sink.closing.set()
        release_sink(self.sink)

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        return self.sink.flush(timeout_millis)


class SinkSpanExporter(_SinkExporterMixin, SpanExporter):
    """An OTel ``SpanExporter`` writing through a :class:`Sink`."""

    _signal = "traces"

    def __init__(self, sink: Sink | None = None) -> None:
        self._init_sink(sink)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        ok = self._export_and_count(spans, len(spans))
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE


class SinkLogExporter(_SinkExporterMixin, LogRecordExporter):
    """An OTel ``LogRecordExporter`` writing through a :class:`Sink`."""

    _signal = "logs"

    def __init__(self, sink: Sink | None = None) -> None:
        self._init_sink(sink)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        ok = self._export_and_count(batch, len(batch))
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE


class SinkMetricExporter(_SinkExporterMixin, MetricExporter):
    """An OTel ``MetricExporter`` writing through a :class:`Sink` (delta temporality by default:
    a sink that bins the stream wants per-interval increments)."""

    _signal = "metrics"

    def __init__(self, sink: Sink | None = None, *, cumulative: bool = False) -> None:
        from opentelemetry.sdk.metrics import (
            Counter,
            Histogram,
            ObservableCounter,
            ObservableUpDownCounter,
            UpDownCounter,
        )

        temporality = AggregationTemporality.CUMULATIVE if cumulative else AggregationTemporality.DELTA
        super().__init__(
            preferred_temporality={
                Counter: temporality,
                ObservableCounter: temporality,
                Histogram: temporality,
                UpDownCounter: AggregationTemporality.CUMULATIVE,
                ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
            }
        )
        self._init_sink(sink)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **_: Any
    ) -> MetricExportResult:
        count = count_points(metrics_data)
        ok = self._export_and_count(metrics_data, count)
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.sink.flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **_: Any) -> None:
        _SinkExporterMixin.shutdown(self, timeout_millis)


def count_points(data: MetricsData) -> int:
    return sum(
        len(metric.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    )


# Sinks built from the environment (exporter entry points) are shared per class, so the log and the
# span exporter of one sink write through one instance, one lock and one set of counters.
_shared: dict[type[Sink], tuple[Sink, int]] = {}
_shared_lock = fork_safe(threading.Lock())


def shared_sink(sink_class: type[Sink]) -> Sink:
    with _shared_lock:
        sink, users = _shared.get(sink_class, (None, 0))
        if sink is None:
            sink = sink_class.from_environment()
        _shared[sink_class] = (sink, users + 1)
        return sink


def release_sink(sink: Sink) -> None:
    """Close ``sink`` when its last exporter shuts down."""
    with _shared_lock:
        entry = _shared.get(type(sink))
        if entry is not None and entry[0] is sink:
            users = entry[1] - 1
            if users > 0:
                _shared[type(sink)] = (sink, users)
                return
            del _shared[type(sink)]
    close_once(sink)


def close_once(sink: Sink) -> None:
    with sink.write_lock:
        if getattr(sink, "_closed", False):
            return
        sink._closed = True  # type: ignore[attr-defined]
    try:
        sink.close()
    except Exception:
        _log.exception("sink %s: close failed", sink.name)
