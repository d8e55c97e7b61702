"""Domain events straight into the one sink that stores them as rows: the FDA recorder's, the
robot collector's and the inference helpers' hot path (issue 14).

The event path (``_events``) makes an OTel log record of every event and hands it to every log
processor; a sink then reads each record's attributes back into its columns. When a sink can take
an event's attribute dicts as columns itself (``event_rows``/``write_event_rows``: the capsule sink,
the SQLite sink, the inference sink) and that sink's queue is the only consumer of log records,
building those records is most of the cost of a solver run, a robot burst or an inference burst.
:class:`EventRoute` decides, for the consumers attached at each batch of the telemetry thread,
whether that holds, and then:

- events of the sink's ``event_rows`` names go to a queue of the sink's own as the attribute dicts
  the caller handed over (no record, no per-record scrubbing); every other event still becomes an
  ordinary record, in the same queue, so the sink sees everything in emission order;
- that queue (a :class:`BatchingProcessor`: the same bound, overload policy and books as the sink's
  record queue, its counts the sink's ``stats``) takes a batch's dicts a column at a time: typed,
  scrubbed and fed to the event's metrics per column, exactly as the record path would per record
  (a batch whose values are not already what the vocabulary's typing would make of them — a numpy
  number, a non-ASCII string, an undeclared key — takes the record path, record by record);
- a sink that also builds its rows (``event_row_items``: the SQLite sink) gets them built on the
  telemetry thread, a whole batch of it at a time (:meth:`EventRoute.put`), as plain tuples led by
  their event's name (see ``_kind``) its worker only writes (``write_event_row_items``), told
  whether more rows follow (a burst: the SQLite sink's digest then folds them in with a later one).

Any other log consumer (an OTLP or console exporter, a user's processor, the dashboard's live tail,
another sink) turns the route off from the next batch: every event is an ordinary OTel log record
for it. Switching either way first drains the queue used so far, so the sink's order is kept.
"""

from __future__ import annotations

import functools
import itertools
import logging
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from . import semconv
from ._accel import gather
from ._event_columns import json_values
from ._events import _NAME_KEY, _TS_KEY, _queued_name
from ._internal import guard
from ._processor import BatchingProcessor, LogBatchProcessor
from ._sink import GaveUp, Sink, Written, booking_of, retrying
from ._stats import Booking
from .semconv import AttrType, to_json_each

if TYPE_CHECKING:
    from ._events import DomainEvents

_log = logging.getLogger("otel_tele")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_TIMESTAMP_NS = 2**63
_SWITCH_FLUSH_MS = 30_000  # draining the other queue when the route turns on or off


class RowSink(Protocol):
    """What a sink offers to take events as columns (see ``CapsuleSink.write_event_rows``)."""

    name: str
    event_rows: frozenset[str]
    #: (optional, default False) whether the sink stores records' trace context: events emitted
    #: inside a span then reach it as records, and every batch of columns is untraced.

    def write_event_rows(
        self, name: str, timestamps: list[int], columns: dict[str, list[Any]]
    ) -> int | Written | None: ...

    def write_logs(self, records: Sequence[Any]) -> int | Written | None: ...


class EventRoute:
    """The row path of domain events into one sink. :meth:`of` finds the sink; :meth:`active`
    says, for the log consumers attached at this moment, whether the path applies."""

    def __init__(self, telemetry: Any, sink: Sink) -> None:
        self.telemetry = telemetry
        self.sink = sink
        self.rows: RowSink = sink  # type: ignore[assignment]
        self.names: frozenset[str] = frozenset(self.rows.event_rows)
        self.keeps_trace: bool = bool(getattr(sink, "keeps_trace_context", False))
        self._seen: object = None  # the consumers ``active`` last looked at
        self._active = False
        self._own: list[LogBatchProcessor] = []  # the sink's record queue (drained on a switch)
        self._feed: BatchingProcessor[Any] | None = None
        #: The sink's row builder, when it has one: events become its rows on the telemetry thread.
        self._build: Callable[..., list[tuple[Any, ...]] | None] | None = getattr(
            sink, "event_row_items", None
        )
        self._write_rows: Callable[..., int | Written | None] | None = getattr(
            sink, "write_event_row_items", None
        )

    @classmethod
    def of(cls, telemetry: Any) -> EventRoute | None:
        """The row path when exactly one sink takes events as rows, else ``None``. ``telemetry``:
        the :class:`~otel_tele.Pipeline` (not imported: it imports this module)."""
        sinks = [
            sink
            for sink in telemetry.sinks.values()
            if getattr(sink, "event_rows", None) and "logs" in sink.signals
        ]
        return cls(telemetry, sinks[0]) if len(sinks) == 1 else None

    def active(self) -> bool:
        """Whether the sink's record queue is the only log consumer now. Called by the telemetry
        thread before each batch; a change drains the queue used so far first."""
        consumers = tuple(self.telemetry._log_processors._log_record_processors)
        if consumers is not self._seen and consumers != self._seen:
            self._seen = consumers
            active = (
                len(consumers) == 1
                and isinstance(consumers[0], LogBatchProcessor)
                and consumers[0].batching.stats.sink == self.sink.name
            )
            if active != self._active:
                with guard("event route switch"):
                    self._drain(to_rows=active)
            self._active = active
            self._own = [
                c
                for c in consumers
                if isinstance(c, LogBatchProcessor) and c.batching.stats.sink == self.sink.name
            ]
        return self._active

    def _drain(self, *, to_rows: bool) -> None:
        """Before switching: what the sink's other queue holds is written first (order kept)."""
        if to_rows:
            for processor in self._own:
                processor.batching.force_flush(_SWITCH_FLUSH_MS)
        elif self._feed is not None:
            self._feed.force_flush(_SWITCH_FLUSH_MS)

    @property
    def feed(self) -> BatchingProcessor[Any]:
        """The sink's queue of events, built on first use (the bound, delay and batch size of its
        record queue)."""
        feed = self._feed
        if feed is None:
            feed = self._feed = self.telemetry.attach_feed("logs", self._export, self.sink.stats["logs"])
        return feed

    def put(self, items: list[Any]) -> int:
        """Queue a batch of the telemetry thread (event dicts and records, in order); returns how
        many did not fit (booked dropped by the queue, each under its own overload domain).

        For a sink that builds rows (``event_row_items``: the SQLite sink) each run of one event
        becomes its rows here, a telemetry-thread batch at a time (up to thousands of events, typed,
        scrubbed and fed to the metrics per column, as at the worker), so the worker only writes —
        and this work runs while the worker waits on the database, not after it. A run that takes
        the record path, or holds a row the sink would reject, stays dicts: the worker decides."""
        if self._build is not None:
            items = self._built(items)
        return self.feed.put_many(items)

    def _built(self, items: list[Any]) -> list[Any]:
        assert self._build is not None
        out: list[Any] = []
        scrubber, events = self.telemetry.scrubber, self.telemetry.events
        for name, run in _runs(items):
            rows = None
            if name is not None:
                try:
                    columns = exact_columns(semconv.EVENTS.get(name), run, scrubber)
                    if columns is not None:
                        rows = self._build(name, columns.pop(TS_COLUMN), columns)
                except Exception:  # a value whose own methods raise: the worker's record path
                    rows = None
                if rows is not None and len(rows) == len(run):
                    with events._metrics.lock:
                        events._metrics.update_batch(name, run)
                else:
                    rows = None
            out += run if rows is None else rows
        return out

    def settle(self) -> None:
        """After a flush: let the sink finish what it left for a later write (the SQLite sink's
        digest, which a burst folds in with a later batch, ``settle``)."""
        settle = getattr(self.sink, "settle", None)
        if settle is not None and self._feed is not None:
            with self.sink.write_lock, guard(f"settling sink {self.sink.name}"):
                settle()

    # -- the sink's worker ----------------------------------------------------------------------
    def _export(self, batch: list[Any]) -> Booking:
        sink = self.sink
        total = Booking(0, 0)
        with sink.write_lock:
            try:
                for name, items in _runs(batch):
                    write, count = self._prepare(name, items)
                    # Retried as the sink's record queue retries (a locked database), each segment
                    # alone: the segments before it are committed, and its metrics are fed once.
                    booking = booking_of(retrying(sink, "logs", write, count) if count else 0, count)
                    if count < len(items):  # events that could not become records
                        booking = booking._replace(failed=booking.failed + len(items) - count)
                    total = Booking(*(a + b for a, b in zip(total, booking, strict=True)))
            except Exception as exc:
                if not isinstance(exc, GaveUp):  # GaveUp: booked and logged by ``retrying``
                    _log.exception("sink %s: %d logs could not be written", sink.name, len(batch))
                    sink.stats["logs"].export_failed(exc)
                return Booking(total.exported, len(batch) - total.exported, total.pending, total.not_routed)
        if total.failed:
            sink.stats["logs"].note_error(f"{total.failed} of {len(batch)} logs rejected as unusable")
        return total

    def _prepare(self, name: str | tuple[str] | None, items: list[Any]) -> tuple[Callable[[], Any], int]:
        """The write of one segment (typed, scrubbed, its metrics fed) and how many records it
        holds: its rows, its columns, or its records (fewer when an event could not become one)."""
        if isinstance(name, tuple):  # rows built by ``put`` (only for a sink that writes them)
            assert self._write_rows is not None
            # Rows behind these: in this queue, or still in the event stage on their way to it.
            more_queued = (
                self._feed is not None and self._feed.queued > 0
            ) or self.telemetry.events.pending > 0
            return functools.partial(self._write_rows, items, more_queued=more_queued), len(items)
        scrubber = self.telemetry.scrubber
        events: DomainEvents = self.telemetry.events
        columns = None
        if name is not None:
            try:
                columns = exact_columns(semconv.EVENTS.get(name), items, scrubber)
            except Exception:  # a value whose own methods raise (a hostile __eq__): record by record
                columns = None
        if columns is None:
            records = items
            if name is not None:  # dicts the vocabulary must type: the record path, as it would be
                with events._metrics.lock:
                    records = events._records(items)
            scrubber.log_records(records)
            return functools.partial(self.rows.write_logs, records), len(records)
        assert name is not None
        with events._metrics.lock:
            events._metrics.update_batch(name, items)
        timestamps = columns.pop(TS_COLUMN)
        return functools.partial(self.rows.write_event_rows, name, timestamps, columns), len(items)


TS_COLUMN = "@ts_ns"


def _runs(items: list[Any]) -> Iterator[tuple[Any, list[Any]]]:
    """``items`` cut into runs of one :func:`_kind`: (kind, run), in order. A batch of queued dicts
    of one event (the common case) is found as such in C."""
    kinds = set(map(type, items))
    if len(kinds) == 1:
        (kind,) = kinds
        if kind is dict:
            names = set(map(_queued_name, items))
            if len(names) == 1:
                yield names.pop(), items
                return
        elif kind is tuple:  # built rows (see ``_kind``)
            names = set(map(_row_event, items))
            if len(names) == 1:
                yield (names.pop(),), items
                return
    for kind, segment in itertools.groupby(items, _kind):
        yield kind, list(segment)


_row_event = operator.itemgetter(0)


def _kind(item: Any) -> Any:
    """A queued event dict's name (see ``DomainEvents.emit``), a built row's as a 1-tuple (rows of
    one event); ``None`` for a record.

    A sink's queue holds an event already made its row (:meth:`EventRoute.put`) as a plain
    ``tuple``, its event's name first, then the row's values. Plain, not a tagged subclass: the
    garbage collector untracks a tuple of plain values at its first pass, never a subclass's, and a
    burst's backlog of rows would be walked by every full pass (measured: 9 full passes, 0.5 s, in
    a 300k-row burst). The overload policy reads the name first (``_overload``), so a row is dropped
    or waited for under its event's domain, as its record would be."""
    kind = type(item)
    if kind is dict:
        return item[_NAME_KEY]
    return (item[0],) if kind is tuple else None


def exact_columns(spec: Any, rows: list[dict[str, Any]], scrubber: Any) -> dict[str, list[Any]] | None:
    """``rows`` (queued event dicts of one event) as columns — the timestamps under
    :data:`TS_COLUMN` — scrubbed; or ``None`` unless every value is already what
    ``coerce_attributes`` would keep unchanged (a declared ASCII key, its native type, a string only
    if ASCII, an integer in 64 bits; ``None`` stands for absent) or would encode as JSON (a key
    declared JSON: its ``to_json`` text, computed here), and the scrubber leaves every number
    alone: then typing, scrubbing and metrics per column equal the record path's per record.
    """
    if spec is None or not rows:
        return None
    natives = spec.natives
    json_keys = _json_keys(spec)
    count = len(rows)
    # A call site passes the same keys: the first row's (a row holding one it lacks is caught below).
    keys = tuple(key for key in rows[0] if key != _TS_KEY and key != _NAME_KEY)
    for key in keys:
        if natives.get(key) is None and key not in json_keys:
            return None
    gathered, kinds, nones, absents, total = gather(rows, (_TS_KEY, *keys))
    timestamps = gathered[0]
    if kinds[0] is not int or nones[0] or absents[0]:
        return None
    if min(timestamps) <= 0 or max(timestamps) >= _MAX_TIMESTAMP_NS:
        return None
    # Every row holds the queued time and name, and the keys counted present: nothing else.
    if total != 2 * count + sum(count - absent for absent in absents[1:]):
        return None
    columns: dict[str, list[Any]] = {TS_COLUMN: timestamps}
    scrub = scrubber.enabled
    for key, column, kind, none, absent in zip(
        keys, gathered[1:], kinds[1:], nones[1:], absents[1:], strict=True
    ):
        if kind is None:  # no value but None
            columns[key] = column
            continue
        native = natives.get(key)
        has_none = none > 0 or absent > 0
        values = None
        if native is None:  # a JSON attribute: its text, as the vocabulary makes it of any value
            encoded = _json_column(column, has_none)
            if encoded is None:
                return None
            values, column = column, encoded
        elif kind is not native:  # of another type, or of several
            return None
        if native is str or native is None:
            distinct = set(column)
            distinct.discard(None)
            if native is str and not all(map(str.isascii, distinct)):
                return None
            if scrub:
                changed = scrubber.texts(key, distinct)
                if changed:
                    if values is not None:  # a value whose text changed is not what is stored
                        values = [
                            None if text in changed else value
                            for value, text in zip(values, column, strict=True)
                        ]
                    column = [changed.get(text, text) for text in column]
            if values is not None:
                columns[json_values(key)] = values
        else:
            if native is int:
                present = [value for value in column if value is not None] if has_none else column
                if min(present) < _INT64_MIN or max(present) > _INT64_MAX:
                    return None
            if scrub and not scrubber.is_plain_key(key):
                return None
        columns[key] = column
    return columns


def _json_keys(spec: Any) -> frozenset[str]:
    """The ASCII keys ``spec`` declares as JSON: ``coerce_attributes`` encodes any value under them
    with ``to_json`` (a string too), so a column of them is encoded the same way. Remembered per
    spec object (hashing a spec would hash every attribute it declares)."""
    known = _JSON_KEYS.get(id(spec))
    if known is None or known[0] is not spec:
        keys = frozenset(
            attr.key
            for attr in spec.attributes
            if attr.type is AttrType.JSON and type(attr.key) is str and attr.key.isascii()
        )
        known = _JSON_KEYS[id(spec)] = (spec, keys)
    return known[1]


_JSON_KEYS: dict[int, tuple[Any, frozenset[str]]] = {}


def _json_column(column: list[Any], has_none: bool) -> list[Any] | None:
    """``column``'s values as ``to_json`` text (``None``, absent, stays); ``None`` if a value has
    none (the record path then says which)."""
    try:
        if not has_none:
            return to_json_each(column)
        texts = iter(to_json_each([value for value in column if value is not None]))
        return [None if value is None else next(texts) for value in column]
    except ValueError:
        return None
