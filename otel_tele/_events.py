"""The domain-event fast path.

A robot controller or a solver loop emits thousands of point events a second; the OTel logs API costs
~10 µs a record on the caller. Here the caller pays for a timestamp, the current context and one deque
append (~0.5 µs); the telemetry thread turns each event into an ordinary OTel log record (typed
attributes from the vocabulary, trace context, event name) and updates the metrics the vocabulary
says the event feeds. Downstream it is plain OTel data: every log processor and exporter sees it.

Memory is bounded: when the queue is full the event's domain policy (:mod:`otel_tele._overload`)
decides — dropped and counted at once, or (a production FDA run) the call waits for room, at most the
policy's maximum wait, then dropped and counted.
"""

from __future__ import annotations

import collections
import logging
import operator
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Protocol, cast

from opentelemetry import context as otel_context
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk._logs import Logger as SdkLogger
from opentelemetry.sdk._logs import LogRecordLimits, ReadWriteLogRecord, SynchronousMultiLogRecordProcessor
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    NonRecordingSpan,
    SpanContext,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace import get_current_span as _get_current_span
from opentelemetry.trace.propagation import _SPAN_KEY as _CONTEXT_SPAN_KEY

from . import _overload, semconv
from ._accel import untrack_plain
from ._internal import at_fork_in_child, bad_input_log, describe_error, guard, take_left, thread_death_log
from ._stats import SinkStats, StatsSnapshot


class RowRoute(Protocol):
    """The row path into a sink, as the telemetry thread uses it (``_event_rows.EventRoute``)."""

    names: frozenset[str]
    #: Whether the sink stores a record's trace context (an event carrying a span then takes the
    #: record path: only a record carries it).
    keeps_trace: bool

    def active(self) -> bool: ...

    def put(self, items: list[Any]) -> int: ...


class Buffer(Protocol):
    """Events a recorder appends in bulk (``_event_buffer.EventBuffer``), as the event stage polls,
    flushes and forks them."""

    def __len__(self) -> int: ...

    def hand_over(self, *, wait: bool = True) -> None: ...

    def discard(self) -> int: ...

    def reset_after_fork(self) -> None: ...


_log = logging.getLogger("otel_tele")


def _context_getter() -> Callable[[], Any]:
    """How ``emit`` reads the current context: with the API's default runtime context (a
    ``ContextVarsRuntimeContext``, unless ``OTEL_PYTHON_CONTEXT`` names another), its ``ContextVar``'s
    own ``get`` (C), which is what ``otel_context.get_current`` returns through two Python calls
    (~0.1 µs an event); with any other runtime context, the API function itself."""
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    if type(runtime) is ContextVarsRuntimeContext and type(variable) is ContextVar:
        return variable.get
    return otel_context.get_current


_get_context = _context_getter()
_time_ns = time.time_ns
_untrack = untrack_plain
_INFO = SeverityNumber.INFO
_MAX_BATCH = 4096
_WAKE_AT = 1024  # queue length at which the caller nudges the telemetry thread
#: Where a queued event's own time and name ride in its attribute dict (see ``DomainEvents.emit``).
_TS_KEY = "otel_tele.event.queued_ts_ns"
_NAME_KEY = _overload.QUEUED_NAME_KEY
_queued_name = operator.itemgetter(_NAME_KEY)
#: Where a queued event emitted inside a span carries that span (see ``DomainEvents._span_only``).
_SPAN_KEY = "otel_tele.event.queued_span"
_NO_SPAN: tuple[Any, Any] = (object(), None)  # ``_last_span`` before any context is seen
_QUEUE_KEYS = frozenset((_TS_KEY, _NAME_KEY, _SPAN_KEY))  # what the queue adds to an attribute dict


def _span_int(ctx: Any) -> int | None:
    """The span context of ``ctx`` packed in one int, when that span is all ``ctx`` holds and it has
    no trace state (what a record needs of the context is then exactly its span context); else
    ``None``. An int: the garbage collector never tracks it, nor the queued dict holding it."""
    if len(ctx) != 1:
        return None
    span = ctx.get(_CONTEXT_SPAN_KEY)
    if span is None:
        return None
    sc = span.get_span_context()
    if sc.trace_state or type(sc.trace_id) is not int or type(sc.span_id) is not int:
        return None
    if not (0 <= sc.trace_id < 1 << 128 and 0 <= sc.span_id < 1 << 64):
        return None
    return (sc.trace_id << 73) | (sc.span_id << 9) | ((int(sc.trace_flags) & 0xFF) << 1) | bool(sc.is_remote)


def _context_of(packed: int) -> Any:
    """The context a :func:`_span_int` stands for: an ordinary OTel context holding a
    non-recording span of that span context (what the record path reads of it)."""
    sc = SpanContext(
        trace_id=packed >> 73,
        span_id=(packed >> 9) & 0xFFFFFFFFFFFFFFFF,
        is_remote=bool(packed & 1),
        trace_flags=TraceFlags((packed >> 1) & 0xFF),
    )
    return set_span_in_context(NonRecordingSpan(sc), Context())


@dataclass
class _EventLogRecord(ReadWriteLogRecord):
    """A log record whose attributes were typed by the vocabulary (see ``coerce_attributes``)."""

    def __post_init__(self) -> None:
        pass  # already valid OTel attribute values: skip the second validation pass


class EventRecord(_EventLogRecord, LogRecord):
    """One domain event: an SDK log record that is its own API record (``log_record`` is ``self``).

    One object per event instead of two, built positionally: the API constructor's keyword handling
    alone costs ~1.7 µs. Records wait in queues while a burst drains, and every waiting object is one
    the garbage collector's full passes walk again (~20 % of a burst's time with two per event).
    ``tests/test_setup.py`` checks it carries exactly the API record's fields, so an SDK upgrade that
    adds one fails a test instead of an exporter.
    """

    def __init__(
        self,
        timestamp: int,
        observed_timestamp: int,
        context: Any,
        span_context: SpanContext,
        severity_number: SeverityNumber,
        attributes: dict[str, Any],
        event_name: str,
        resource: Any,
        scope: Any,
        limits: LogRecordLimits,
    ) -> None:
        self.timestamp = timestamp
        self.observed_timestamp = observed_timestamp
        self.context = context
        self.trace_id = span_context.trace_id
        self.span_id = span_context.span_id
        self.trace_flags = span_context.trace_flags
        self.severity_text = None
        self.severity_number = severity_number
        self.body = None
        self.attributes = attributes
        self.event_name = event_name
        self.exception = None
        self.resource = resource
        self.instrumentation_scope = scope
        self.limits = limits

    @property
    def log_record(self) -> EventRecord:  # type: ignore[override]
        return self

    def __repr__(self) -> str:
        return f"EventRecord({self.event_name!r}, timestamp={self.timestamp}, attributes={self.attributes!r})"


#: Record types whose attributes the vocabulary already typed (no ``None`` values, declared types).
TYPED_RECORDS = (_EventLogRecord, EventRecord)


class BatchingMultiProcessor(SynchronousMultiLogRecordProcessor):
    """The provider's processor chain, able to take a whole batch of event records at once: a
    processor with ``on_emit_batch`` (ours) queues it under one lock instead of one per record."""

    def on_emit_batch(self, records: list[ReadWriteLogRecord], domain: str | None = None) -> int:
        """Hand ``records`` to every processor; returns the most any one of them dropped.
        ``domain`` sets the overload policy of all of them (else each record's own applies)."""
        dropped = 0
        for processor in self._log_record_processors:
            with guard(f"{type(processor).__name__}.on_emit"):
                if hasattr(processor, "on_emit_batch"):
                    dropped = max(dropped, processor.on_emit_batch(records, domain) or 0)
                else:
                    for record in records:
                        processor.on_emit(record)
        return dropped


class EventStageStats(SinkStats):
    """The event queue's books: items still in the deque count as emitted and queued."""

    def __init__(self, pending: Any) -> None:
        super().__init__("events", "logs")
        self._pending = pending

    def snapshot(self) -> StatsSnapshot:
        pending = self._pending()
        base = super().snapshot()
        return StatsSnapshot(
            base.sink,
            base.signal,
            base.emitted + pending,
            base.exported,
            base.dropped,
            base.failed,
            base.queued + pending,
            base.pending,
            base.not_routed,
            base.last_error,
            base.last_error_at,
        )


class _EventMetrics:
    """The metrics the vocabulary says each event feeds, kept cheap for the telemetry thread.

    Counters and gauges are observable instruments over totals we keep (an addition per event instead
    of a ~5 µs ``Counter.add``); histograms need every value and are recorded directly.
    """

    def __init__(
        self, meter: Meter, metrics: Iterable[semconv.Metric], *, cardinality_limit: int = 2_000
    ) -> None:
        self.lock = threading.Lock()
        #: event name → (kind, value attribute, label keys, running values, histogram, metric name)
        self._plans: dict[str, list[tuple[str, str | None, tuple[str, ...], dict[Any, Any], Any, str]]] = (
            collections.defaultdict(list)
        )
        # Label values come from callers (routes, model names, camera ids): each running table keeps
        # at most ``cardinality_limit`` label sets and folds the rest into one overflow series, as the
        # OTel SDK does for its own instruments (histograms are the SDK's: its limit applies).
        self.cardinality_limit = cardinality_limit
        #: metric name → updates folded into its overflow series
        self.overflowed: dict[str, int] = {}
        shared: dict[tuple[str, ...], tuple[str, ...]] = {}  # equal label tuples made one object
        for metric in metrics:
            values: dict[tuple[Any, ...], float] = {}
            histogram = self._create(meter, metric, values)
            labels = shared.setdefault(metric.labels, metric.labels)
            self._plans[metric.event].append(
                (metric.kind, metric.value, labels, values, histogram, metric.name)
            )

    def reset_after_fork(self) -> None:
        """A forked child starts its totals at zero (its series carry its own ``process.pid``)."""
        self.lock = threading.Lock()
        self.overflowed.clear()
        for plans in self._plans.values():
            for plan in plans:
                plan[3].clear()  # the running values

    def _create(self, meter: Meter, metric: semconv.Metric, values: dict[tuple[Any, ...], float]) -> Any:
        if metric.kind == "histogram":
            return meter.create_histogram(
                metric.name,
                unit=metric.unit,
                description=metric.description,
                explicit_bucket_boundaries_advisory=list(metric.buckets) if metric.buckets else None,
            )
        factory = {
            "counter": meter.create_observable_counter,
            "gauge": meter.create_observable_gauge,
            "updown_counter": meter.create_observable_up_down_counter,
        }[metric.kind]
        factory(
            metric.name,
            callbacks=[self._callback(metric, values)],
            unit=metric.unit,
            description=metric.description,
        )
        return None

    def _callback(self, metric: semconv.Metric, values: dict[tuple[Any, ...], float]) -> Any:
        labels = metric.labels

        def observe(_options: CallbackOptions) -> list[Observation]:
            with self.lock:
                items = list(values.items())
            return [Observation(value, _label_attributes(labels, key)) for key, value in items]

        return observe

    def update(self, name: str, attributes: Mapping[str, Any]) -> None:
        """Fold one event into its metrics; the caller holds ``self.lock``."""
        plans = self._plans.get(name)
        if plans:
            self._update_plans(plans, attributes)

    def _update_plans(
        self,
        plans: list[tuple[str, str | None, tuple[str, ...], dict[Any, Any], Any, str]],
        attributes: Mapping[str, Any],
    ) -> None:
        get = attributes.get
        last_labels: tuple[str, ...] | None = None
        key: tuple[Any, ...] = ()
        for kind, value_key, labels, values, histogram, metric_name in plans:
            if value_key is None:
                amount: Any = 1
            else:
                amount = get(value_key)
                if type(amount) not in _NUMBERS or amount != amount:  # absent, not a number, or NaN
                    continue
            if labels is not last_labels:  # an event's metrics mostly share their labels
                last_labels, key = labels, tuple(map(get, labels))
            if kind == "histogram":
                histogram.record(amount, _label_attributes(labels, key))
                continue
            row = key
            if row not in values and len(values) >= self.cardinality_limit:
                row = self._overflow(metric_name)
            if kind == "gauge":
                values[row] = amount
            else:
                values[row] = values.get(row, 0) + amount

    def update_batch(self, name: str, batch: list[dict[str, Any]]) -> None:
        """Fold a batch's events of one name into their metrics, as ``update`` on each in order
        would; the caller holds ``self.lock``. Event counts and latest values are taken a column at
        a time (label tuples by ``zip``, counts by ``Counter``); sums and histograms need every
        value in order, and a metric that may reach its cardinality limit takes ``update``'s path."""
        plans = self._plans.get(name)
        if not plans or not batch:
            return
        columns: dict[tuple[str, ...], tuple[list[tuple[Any, ...]], dict[tuple[Any, ...], None]]] = {}
        slow: list[tuple[str, str | None, tuple[str, ...], dict[Any, Any], Any, str]] = []
        for plan in plans:
            kind, value_key, labels, values, _histogram, _metric = plan
            if kind == "histogram" or (kind != "gauge" and value_key is not None):
                slow.append(plan)
                continue
            column = columns.get(labels)
            if column is None:
                by_label = [list(map(dict.get, batch, repeat(label))) for label in labels]
                if all(values_.count(values_[0]) == len(values_) for values_ in by_label):
                    # One label set (a run's rows): no tuple per event.
                    only = tuple(values_[0] for values_ in by_label)
                    column = columns[labels] = ([only] * len(batch), {only: None})
                else:
                    keys = list(zip(*by_label, strict=True))
                    column = columns[labels] = (keys, dict.fromkeys(keys))  # label sets, first seen first
            keys, distinct = column
            if value_key is None:  # an event count per label set
                counts: dict[tuple[Any, ...], Any] = (
                    {keys[0]: len(keys)} if len(distinct) == 1 else collections.Counter(keys)
                )
            else:  # the latest number per label set (absent, not a number and NaN skipped)
                latest: dict[tuple[Any, ...], Any] = {}
                for i in range(len(batch) - 1, -1, -1):
                    key = keys[i]
                    if key not in latest:
                        amount = batch[i].get(value_key)
                        if type(amount) in _NUMBERS and amount == amount:
                            latest[key] = amount
                            if len(latest) == len(distinct):
                                break
                counts = {key: latest[key] for key in distinct if key in latest}
            if len(values) + len(counts) > self.cardinality_limit and any(k not in values for k in counts):
                slow.append(plan)  # which label sets overflow depends on the order: row by row
            elif value_key is None:
                for key, count in counts.items():
                    values[key] = values.get(key, 0) + count
            else:
                values.update(counts)
        if slow:
            for attributes in batch:
                self._update_plans(slow, attributes)

    def _overflow(self, metric_name: str) -> tuple[Any, ...]:
        count = self.overflowed.get(metric_name, 0)
        if not count:
            _log.warning(
                "metric %s: more than %d label sets; further ones are folded into one "
                "otel.metric.overflow=true series (OTEL_TELE_METRIC_CARDINALITY_LIMIT)",
                metric_name,
                self.cardinality_limit,
            )
        self.overflowed[metric_name] = count + 1
        return _OVERFLOW_ROW


_NUMBERS = (int, float)
#: The running-table row of every label set past the cardinality limit (no real label tuple is it).
_OVERFLOW_ROW: tuple[Any, ...] = (object(),)
_OVERFLOW_ATTRIBUTES = {"otel.metric.overflow": True}


_MAX_TIMESTAMP_NS = 2**63  # a 64-bit integer of nanoseconds: year 2262


def _timestamp_ns(value: Any, now: int) -> int:
    """A caller's ``timestamp_ns`` as the integer every store takes (a float is rounded; 0 is now), or
    ``ValueError``: a time no store can hold fails its record instead of its whole batch."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < _MAX_TIMESTAMP_NS:
        return int(value) or now
    raise ValueError("timestamp_ns is not a time in nanoseconds since 1970 (before year 2262)")


def _event_name(name: Any) -> str:
    """An event name handed over as something else: its ``str`` if it has one, else its JSON."""
    if isinstance(name, str):
        return str.__str__(name)  # a str subclass's own __str__ is not trusted
    return semconv.to_json(name)


def _label_attributes(labels: tuple[str, ...], key: tuple[Any, ...]) -> dict[str, Any]:
    if key is _OVERFLOW_ROW:
        return dict(_OVERFLOW_ATTRIBUTES)
    return {label: value for label, value in zip(labels, key, strict=True) if value is not None}


class DomainEvents:
    """Emit domain events cheaply; the telemetry thread makes them OTel log records and metrics.

    Example::

        import otel_tele

        events = otel_tele.setup(service_name="arm").events
        events.emit("robot.dds.command", {"robot.dds.funcode": 1, "robot.joint.id": 2})
    """

    def __init__(
        self,
        logger: SdkLogger,
        processor: BatchingMultiProcessor,
        meter: Meter,
        *,
        queue_size: int = 262_144,
        metrics: Iterable[semconv.Metric] = semconv.METRICS,
        overload: _overload.Overload | None = None,
        metric_cardinality_limit: int = 2_000,
        metrics_observed: bool = True,
    ) -> None:
        # Records go straight to the provider's processor chain (the one ``logger`` feeds): the SDK
        # Logger would re-validate attributes the vocabulary has already typed, at ~5 µs a record.
        self._emit_batch = processor.on_emit_batch
        self._logger = logger
        self._resource = logger.resource
        self._scope = logger.instrumentation_scope
        self._limits = LogRecordLimits()
        # With no metric reader on the pipeline (``metrics_observed``) nothing would ever read the
        # events' metrics: none are kept, and folding an event into them costs nothing.
        self._metrics = _EventMetrics(
            meter, metrics if metrics_observed else (), cardinality_limit=metric_cardinality_limit
        )
        self._max = queue_size
        self.overload = overload or _overload.Overload()
        self._drop_lock = threading.Lock()
        # Recorders that append events in bulk (``_event_buffer.EventBuffer``): polled while the
        # telemetry thread is idle, handed over at a flush or shutdown.
        self._buffers: weakref.WeakSet[Buffer] = weakref.WeakSet()
        self._buffers_lock = threading.Lock()
        self.stats = EventStageStats(lambda: len(self._queue) + self._buffered())
        #: The row path into a sink (set by the pipeline; see ``_event_rows``), or ``None``.
        self.route: RowRoute | None = None
        # While the route is on, an event emitted inside a span queues its span context as an int
        # (``_span_only``); the context last seen and that int, replaced whole (callers race).
        self._route_on = False
        self._last_span: tuple[Any, int | None] = _NO_SPAN
        self._start()
        at_fork_in_child(self._reinit_after_fork)

    def _start(self) -> None:
        self._queue: collections.deque[tuple[Any, ...] | dict[str, Any]] = collections.deque()
        # Taking a batch and counting it are one step for force_flush: between the two, the batch is
        # in neither the queue nor the count, and a flush would not wait for it.
        self._pop_lock = threading.Lock()
        self._wake = threading.Event()
        self._progress = threading.Condition()
        self._room_waiters = 0  # recording calls waiting for room (overload policy "wait")
        # Domains whose wait ran out: they drop at once until the queue is half empty again, so a
        # stuck sink costs a recording call one maximum wait, not one per record.
        self._gave_up: set[str] = set()
        self._taken = 0
        self._done = 0
        self._in_flight = 0  # events of the batch being turned into records
        self._abandoned = False  # that batch was booked dropped at a shutdown deadline
        self._crashes = 0  # thread deaths so far
        self._death_counted = False  # the dying thread's batch already counted its death
        self._crashes_reported = 0  # ... of which force_flush/shutdown have returned False for
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="otel-tele-events", daemon=True)
        self._thread.start()

    def _reinit_after_fork(self) -> None:
        # A child is a new process: its own books and metric totals; the parent's threads and the
        # locks they may have held at the fork are gone.
        self.stats.reset_after_fork()
        self.overload.reset_after_fork()
        self._drop_lock = threading.Lock()
        self._metrics.reset_after_fork()
        self._buffers_lock = threading.Lock()
        for buffer in self._buffer_list():
            buffer.reset_after_fork()
        if not self._stopping:
            self._start()

    def emit(
        self,
        name: str,
        attributes: Mapping[str, Any],
        *,
        timestamp_ns: int | None = None,
        severity: SeverityNumber | None = None,
    ) -> None:
        """Queue one event. ``attributes`` is taken over: do not mutate it afterwards. Never raises
        on a full queue: the event's overload policy either drops it (counted) at once or waits for
        room, at most the policy's maximum wait (see :mod:`otel_tele._overload`)."""
        queue = self._queue
        if (len(queue) >= self._max or self._stopping) and not self._room_for(name, attributes):
            return
        ctx = _get_context()
        if (
            type(attributes) is dict
            and severity is None
            and _NAME_KEY not in attributes
            and (not ctx or (span := self._span_only(ctx)) is not None)
        ):
            # The common case rides in the attribute dict itself. A dict of plain values is not tracked
            # by the garbage collector while a tuple holding it is, and a burst's backlog would
            # otherwise be walked again by every full collection (~15 % of a burst's time). A dict
            # that holds a dict of plain values (a JSON attribute: robot data, inference metadata)
            # is tracked all the same, so it is untracked here (~20 % of a robot burst's time). A
            # dict handed over twice while still queued takes the tuple below.
            if ctx:
                attributes[_SPAN_KEY] = span
            attributes[_TS_KEY] = _time_ns() if timestamp_ns is None else timestamp_ns
            attributes[_NAME_KEY] = name
            if _untrack is not None:
                _untrack(attributes)
            queue.append(attributes)
        else:
            timestamp = _time_ns() if timestamp_ns is None else timestamp_ns
            queue.append((timestamp, ctx or None, name, attributes, severity))
        if len(queue) == _WAKE_AT:
            self._wake.set()

    def _span_only(self, ctx: Any) -> int | None:
        """For an event emitted inside a span while the row route is on: its span context as an int
        (see :func:`_span_int`), or ``None`` when the event must keep its context object.

        With the route on no consumer of records is attached: the row path reads nothing of the
        context, and a record is made only if a consumer attaches before the event is handed on;
        that record's context then holds an equal non-recording span. Consecutive events share one
        context object, so the int is computed once per context."""
        last = self._last_span
        if last[0] is ctx:
            return last[1]
        span = _span_int(ctx) if self._route_on else None
        self._last_span = (ctx, span)
        return span

    # -- events appended in bulk (``_event_buffer``) ---------------------------------------------
    def add_buffer(self, buffer: Buffer) -> None:
        with self._buffers_lock:
            self._buffers.add(buffer)

    def _buffer_list(self) -> list[Buffer]:
        with self._buffers_lock:
            return list(self._buffers)

    def _buffered(self) -> int:
        return sum(map(len, self._buffer_list())) if self._buffers else 0

    def _hand_over_buffers(self, *, wait: bool) -> None:
        for buffer in self._buffer_list():
            with guard("event buffer hand-over"):
                buffer.hand_over(wait=wait)

    def room(self) -> int:
        """How many events the queue takes now without a wait."""
        return 0 if self._stopping else max(0, self._max - len(self._queue))

    def queued_items(self, name: str, rows: list[dict[str, Any]], ctx: Any) -> list[Any]:
        """``rows`` (attribute dicts holding their time in ns under the queue's time key; taken over)
        as ``emit`` queues events of ``name`` emitted in ``ctx``: the same dicts or tuples, made a
        batch at a time in C."""
        span = self._span_only(ctx) if ctx else None
        if ctx and span is None:
            stamps = map(dict.pop, rows, repeat(_TS_KEY))
            return list(zip(stamps, repeat(ctx), repeat(name), rows, repeat(None)))
        setitem = dict.__setitem__
        if ctx:
            collections.deque(map(setitem, rows, repeat(_SPAN_KEY), repeat(span)), maxlen=0)
        collections.deque(map(setitem, rows, repeat(_NAME_KEY), repeat(name)), maxlen=0)
        return rows

    def queue_buffered(self, name: str, items: list[Any], *, wait: bool = True) -> None:
        """Queue ``items`` (from :meth:`queued_items`) in order. Past a full queue each waits or is
        dropped (counted) as ``emit`` would; without ``wait`` (the telemetry thread's own poll, which
        took no more than :meth:`room`) they are queued as they are."""
        queue = self._queue
        if not self._stopping and (not wait or len(queue) + len(items) <= self._max):
            queue.extend(items)
        else:
            for item in items:
                if (len(queue) >= self._max or self._stopping) and not self._room_for(
                    name, item if type(item) is dict else item[3]
                ):
                    continue
                queue.append(item)
        if len(queue) >= _WAKE_AT:
            self._wake.set()

    def _discard_buffers(self) -> None:
        """Every row still in a buffer booked dropped (refused)."""
        self.refuse(sum(buffer.discard() for buffer in self._buffer_list()))

    def refuse(self, count: int) -> None:
        """Book ``count`` events that never reached the queue as dropped."""
        if count:
            with self._drop_lock:
                self.stats.refused(count)

    def reject(self, what: str, exc: BaseException | None = None, count: int = 1) -> None:
        """Book ``count`` records a recording call could not build as failed, and say so
        (rate-limited, without the value). For the domain helpers, which must never raise into the
        host."""
        self.stats.rejected(count)
        bad_input_log.warning(
            what,
            "%s: record not made (%s); counted as failed",
            what,
            "bad input" if exc is None else describe_error(exc),
        )

    def _room_for(self, name: Any, attributes: Any) -> bool:
        """The full-queue path of ``emit``: True once there is room, False if the event was dropped."""
        with guard("overload policy"):
            domain = _overload.domain_of(name, attributes)
            wait_s = 0.0 if self._stopping else self.overload.wait_s(domain, stuck=domain in self._gave_up)
            if wait_s > 0:
                if self._wait_for_room(domain, wait_s):
                    return True
                self._gave_up.add(domain)
            with self._drop_lock:
                self.stats.refused()
            self.overload.note_drop(domain)
            return False
        with self._drop_lock:  # the policy itself failed: the event is still counted
            self.stats.refused()
        return False

    def _wait_for_room(self, domain: str, wait_s: float) -> bool:
        """Backpressure: block the recording call until the telemetry thread makes room."""
        start = time.monotonic()
        deadline = start + wait_s
        with self._progress:
            self._room_waiters += 1
            try:
                while len(self._queue) >= self._max and not self._stopping:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._thread.is_alive():
                        break
                    self._wake.set()
                    self._progress.wait(min(remaining, 0.05))
            finally:
                self._room_waiters -= 1
        room = len(self._queue) < self._max and not self._stopping
        self.overload.note_wait(domain, time.monotonic() - start, timed_out=not room)
        return room

    # -- telemetry thread ------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._drain()
        except BaseException as exc:  # a thread that stops: noticed, booked, replaced
            self._worker_died(exc)

    def _drain(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                if self._buffers and not self._stopping:
                    self._hand_over_buffers(wait=False)  # a slow loop's rows: within one poll
                    if queue:
                        continue
                if self._stopping:
                    return
                with guard("overload report"):
                    self.overload.report()
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            with self._pop_lock:
                batch = take_left(queue, _MAX_BATCH)
                self._taken += len(batch)
                self._in_flight = len(batch)
                # Booked before anything can raise: from here the batch is queued in the books until
                # it is exported or failed, whatever happens to this thread.
                self.stats.accepted(len(batch))
            if self._room_waiters:
                with self._progress:
                    self._progress.notify_all()
            if self._gave_up and len(queue) < self._max // 2:
                self._gave_up.clear()
            exported, dying = 0, False
            try:
                self._resource = self._logger.resource  # changes after a fork (process.pid)
                route = self.route
                direct = False
                if route is not None:
                    with guard("event route"):
                        direct = route.active()
                if direct is not self._route_on:
                    self._route_on, self._last_span = direct, _NO_SPAN
                with self._metrics.lock:
                    records = (
                        self._direct(batch, route.names, traced=route.keeps_trace)
                        if direct and route
                        else self._records(batch)
                    )
                with guard("log record processors"):
                    if direct and route is not None:
                        route.put(records)
                    else:
                        self._emit_batch(records)
                exported = len(records)
            except BaseException:
                dying = True
                raise
            finally:
                failed = len(batch) - exported
                with self._pop_lock:
                    abandoned = self._abandoned
                    if abandoned:  # booked dropped at a shutdown deadline; handed on after all
                        self.stats.rebook_dropped(exported=exported, failed=failed)
                    else:
                        self.stats.finished(exported=exported, failed=failed)
                    self._in_flight, self._abandoned = 0, False
                    if dying:  # counted before a flush waiting on this batch can return
                        self._crashes += 1
                        self._death_counted = True
                with self._progress:
                    self._done += 0 if abandoned else len(batch)
                    self._progress.notify_all()
            with guard("overload report"):
                self.overload.report()

    def _take_queued(self) -> int:
        """Empty the queue (the caller holds ``_pop_lock``); how many events it held. Popped one by
        one: an emit racing with us is counted, not lost."""
        taken = 0
        while self._queue:
            self._queue.popleft()
            taken += 1
        self._taken += taken
        return taken

    def _worker_died(self, exc: BaseException) -> None:
        """What was queued when the thread died is booked failed (the thread cannot vouch for it);
        ``force_flush``/``shutdown`` report the death; a new thread takes over."""
        with self._pop_lock:
            lost = self._take_queued()
            self.stats.accepted(lost)  # leaving the queue, they leave its pending count
            self.stats.finished(failed=lost)
            if not self._death_counted:  # died outside a batch
                self._crashes += 1
            self._death_counted = False
        with self._progress:
            self._done += lost
            self._progress.notify_all()
        thread_death_log.log(
            logging.ERROR,
            "otel-tele-events",
            "otel-tele-events thread died (%s); %d queued events counted as failed; restarting it",
            describe_error(exc),
            lost,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        if not self._stopping:
            # Started before it is published: shutdown() may join whatever _thread is at any moment.
            thread = threading.Thread(target=self._run, name="otel-tele-events", daemon=True)
            thread.start()
            self._thread = thread

    def _direct(
        self, batch: list[tuple[Any, ...] | dict[str, Any]], names: frozenset[str], *, traced: bool = False
    ) -> list[Any]:
        """``batch`` for the row path (the caller holds the metrics lock): events named in
        ``names`` stay the queued dicts they are (the sink's queue types them, feeds their metrics
        and scrubs them a column at a time); every other event becomes its record, order kept.
        ``traced``: the sink stores trace context, so an event emitted inside a span becomes its
        record too (for any other sink its span is what only a record would carry)."""
        if set(map(type, batch)) == {dict} and set(map(_queued_name, batch)) <= names:
            # The common case, found in C: every event a queued dict the route takes.
            queued = cast("list[dict[str, Any]]", batch)
            if not traced:
                collections.deque(map(dict.pop, queued, repeat(_SPAN_KEY), repeat(None)), maxlen=0)
                return batch
            if not any(map(operator.contains, queued, repeat(_SPAN_KEY))):
                return batch  # none emitted inside a span: nothing only a record carries
        out: list[Any] = []
        others: list[tuple[Any, ...] | dict[str, Any]] = []
        for item in batch:
            if type(item) is not dict:
                # Emitted inside a span (an fda.run). Plain values only.
                timestamp, _ctx, name, attributes, severity = item
                if traced or severity is not None or name not in names or type(attributes) is not dict:
                    others.append(item)
                    continue
                if _NAME_KEY in attributes:  # the dict is queued once more: this event gets a copy
                    attributes = {k: v for k, v in attributes.items() if k not in _QUEUE_KEYS}
                attributes[_TS_KEY] = timestamp
                attributes[_NAME_KEY] = name
                item = attributes
            elif item[_NAME_KEY] not in names or (traced and _SPAN_KEY in item):
                others.append(item)
                continue
            else:
                item.pop(_SPAN_KEY, None)
            if others:
                out += self._records(others)
                others = []
            out.append(item)
        if others:
            out += self._records(others)
        return out

    def _records(self, batch: list[tuple[Any, ...] | dict[str, Any]]) -> list[ReadWriteLogRecord]:
        """The log records of ``batch``; an event that cannot become one is logged and left out
        (counted failed by the caller)."""
        records: list[ReadWriteLogRecord] = []
        append = records.append
        spec_of, coerce = semconv.EVENTS.get, semconv.coerce_attributes
        by_name: dict[str, list[dict[str, Any]]] = {}  # the metrics are fed per name, once per batch
        resource, scope, limits = self._resource, self._scope, self._limits
        observed = _time_ns()  # one per batch: the batch is observed at once
        last_ctx: Any = None
        span_context = INVALID_SPAN_CONTEXT
        last_packed: int | None = None
        packed_ctx: Any = None
        item: Any
        for item in batch:
            name: Any = None
            try:
                if type(item) is dict:
                    timestamp, name, attributes = item.pop(_TS_KEY), item.pop(_NAME_KEY), item
                    ctx = severity = None
                    packed = item.pop(_SPAN_KEY, None)
                    if packed is not None:  # emitted inside a span while the route was on
                        if packed != last_packed:
                            last_packed, packed_ctx = packed, _context_of(packed)
                        ctx = packed_ctx
                else:
                    timestamp, ctx, name, attributes, severity = item
                if type(timestamp) is not int or not 0 < timestamp < _MAX_TIMESTAMP_NS:
                    timestamp = _timestamp_ns(timestamp, observed)
                if type(name) is not str:
                    name = _event_name(name)
                if type(attributes) is not dict and not isinstance(attributes, Mapping):
                    attributes = {"otel_tele.payload": semconv.to_json(attributes)}
                clean, problems = coerce(spec_of(name), attributes)
                if problems:
                    # Keep what could not be typed, visibly, rather than dropping it.
                    clean["otel_tele.invalid_attributes"] = semconv.to_json(problems)
                named = by_name.get(name)
                if named is None:
                    named = by_name[name] = []
                if ctx is not last_ctx:  # consecutive events mostly share one context object
                    last_ctx = ctx
                    span_context = (
                        INVALID_SPAN_CONTEXT if ctx is None else _get_current_span(ctx).get_span_context()
                    )
                append(
                    EventRecord(
                        timestamp,
                        observed,
                        ctx,
                        span_context,
                        severity or _INFO,
                        clean,
                        name,
                        resource,
                        scope,
                        limits,
                    )
                )
                named.append(clean)
            except Exception as exc:  # one bad record fails alone
                bad_input_log.warning(
                    "events",
                    "event %s could not become a log record (%s); counted as failed",
                    name[:100] if type(name) is str else "<unnamed>",
                    describe_error(exc),
                )
        for name, named in by_name.items():
            with guard(f"metrics of {name[:100]}"):
                self._metrics.update_batch(name, named)
        return records

    @property
    def pending(self) -> int:
        """Events queued or being handed on now (a hint: it changes as it is read)."""
        return len(self._queue) + self._in_flight + self._buffered()

    @property
    def metric_overflow(self) -> dict[str, int]:
        """Per event-fed metric, how many updates went to its ``otel.metric.overflow=true`` series."""
        with self._metrics.lock:
            return dict(self._metrics.overflowed)

    # -- control -----------------------------------------------------------------------------
    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        """Wait until every event queued before this call has been handed to the log processors.
        False if the deadline passed first, or if the telemetry thread died since the last report."""
        deadline = time.monotonic() + timeout_millis / 1000
        self._hand_over_buffers(wait=True)
        with self._pop_lock:
            target = self._taken + len(self._queue)
        self._wake.set()
        done = True
        with self._progress:
            while self._done < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    done = self._done >= target
                    break
                self._wake.set()
                self._progress.wait(min(remaining, 0.05))
        with guard("overload report"):  # drops up to here are warned of by the time flush returns
            self.overload.report()
        return self._report_crashes() and done

    def _report_crashes(self) -> bool:
        with self._pop_lock:
            crashes, self._crashes_reported = self._crashes - self._crashes_reported, self._crashes
        return crashes == 0

    def shutdown(self, timeout_millis: float = 30_000) -> bool:
        """Process what is queued, then refuse further events (counted as dropped)."""
        self._hand_over_buffers(wait=True)
        self._stopping = True
        self._wake.set()
        deadline = time.monotonic() + timeout_millis / 1000
        thread = None
        while thread is not self._thread:  # a thread that died hands over to a new one
            thread = self._thread
            thread.join(max(0.0, deadline - time.monotonic()))
        crashes_ok = self._report_crashes()
        self._discard_buffers()  # appended after the hand-over above: too late, counted
        if self._thread.is_alive():
            self.drop_unfinished("shutdown deadline reached")
            return False
        return crashes_ok

    def drop_unfinished(self, why: str) -> int:
        """Book every event not handed on yet as dropped (the queue and the batch in flight) and
        refuse more; a batch in flight that is handed on later is re-booked."""
        self._stopping = True
        self._discard_buffers()
        with self._pop_lock:
            left = self._take_queued()
            if left:
                self.stats.refused(left)
            in_flight = 0 if self._abandoned else self._in_flight
            if in_flight:
                self._abandoned = True
                self.stats.finished(dropped=in_flight)
        if left + in_flight:
            # Pipeline.shutdown() reports every part's losses in one summary line.
            _log.debug("events: %s; %d events not handed on dropped", why, left + in_flight)
        with self._progress:
            self._done += left + in_flight
            self._progress.notify_all()
        return left + in_flight


class NoopDomainEvents(DomainEvents):
    """What a disabled pipeline hands out: same API, does nothing."""

    def __init__(self) -> None:  # no thread, no queue
        self.stats = EventStageStats(lambda: 0)
        self.overload = _overload.Overload()

    @property
    def metric_overflow(self) -> dict[str, int]:
        return {}

    def emit(
        self,
        name: str,
        attributes: Mapping[str, Any],
        *,
        timestamp_ns: int | None = None,
        severity: SeverityNumber | None = None,
    ) -> None:
        return None

    def add_buffer(self, buffer: Buffer) -> None:
        return None

    def room(self) -> int:
        return 1 << 30

    def queued_items(self, name: str, rows: list[dict[str, Any]], ctx: Any) -> list[Any]:
        return rows

    def queue_buffered(self, name: str, items: list[Any], *, wait: bool = True) -> None:
        return None

    def refuse(self, count: int) -> None:
        return None

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000) -> bool:
        return True

    def drop_unfinished(self, why: str) -> int:
        return 0
