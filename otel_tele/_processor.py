"""A batching processor that keeps its promises: bounded memory, exact counts, real timeouts.

The SDK's ``BatchProcessor`` drops silently when full, and its ``force_flush`` ignores the timeout
(it exports on the caller's thread). Ours exports only on its own worker thread — so exports are never
concurrent — and ``force_flush``/``shutdown`` wait on that thread with a deadline, so a hung sink or a
dead collector costs the caller at most the timeout.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ._internal import (
    at_fork_in_child,
    run_with_deadline,
    suppress_instrumentation,
    take_left,
    thread_death_log,
)
from ._overload import Overload
from ._stats import Booking, SinkStats

_log = logging.getLogger("otel_tele")

T = TypeVar("T")
#: Exports one batch; returns (exported, failed) or a :class:`Booking`. Must not raise (exceptions
#: are caught anyway). An export that failed as a whole (error, timeout, retries exhausted) also
#: calls ``stats.export_failed()``.
ExportFn = Callable[[list[Any]], tuple[int, int] | Booking]


class BatchingProcessor(Generic[T]):
    """Queue items, export them in batches from one worker thread."""

    def __init__(
        self,
        export: ExportFn,
        stats: SinkStats,
        *,
        on_shutdown: Callable[[float], object] | None = None,
        prepare: Callable[[list[T]], None] | None = None,
        max_queue_size: int = 65_536,
        schedule_delay_millis: float = 1_000,
        max_export_batch_size: int = 2_048,
        overload: Overload | None = None,
    ) -> None:
        self._export = export
        #: The overload policy, for a sink's queue: records of a "wait" domain wait for room there.
        #: A standard exporter's queue (OTLP) never makes anyone wait: a dead collector must not
        #: cost the host.
        self.overload = overload
        self._on_shutdown = on_shutdown
        self._prepare = prepare  # runs on the worker, before export (the scrubber)
        self.stats = stats
        self._max_queue_size = max_queue_size
        self._delay_s = schedule_delay_millis / 1000
        self._batch_size = max_export_batch_size
        self._shutdown = False
        self._init_state()
        at_fork_in_child(self._reinit_after_fork)

    def _init_state(self) -> None:
        self._queue: collections.deque[T] = collections.deque()
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # the worker waits here: for a batch, a flush, shutdown
        # Flushes and producers short of room wait here, and are woken only once what they wait for
        # may be there: waking every waiter after every batch (50 records by default) costs the
        # worker and the waiters a thread switch per batch for nothing.
        self._progress = threading.Condition(lock)
        self._flush_targets: list[int] = []  # what each waiting flush waits for, ascending
        self._room_wanted: list[int] = []  # the room each producer short of room waits for
        self._accepted = 0  # items ever accepted
        self._finished = 0  # items ever finished (exported, failed or dropped)
        self._flush_requested = False
        # A wait that ran out marks the sink stuck (at that many finished records): no more waiting
        # until it finishes another batch, so a stuck sink costs one maximum wait, not one per batch.
        self._stuck_at: int | None = None
        self._in_flight = 0  # records of the batch being exported
        self._abandoned = 0  # of those, already booked dropped at a shutdown deadline
        self._crashes = 0  # worker deaths so far
        self._crashes_reported = 0  # ... of which force_flush/shutdown have returned False for
        self._start_worker()

    def _start_worker(self) -> None:
        # Started before it is published: a flush or shutdown may look at _worker at any moment.
        worker = threading.Thread(
            target=self._run, name=f"otel-tele-{self.stats.sink}-{self.stats.signal}", daemon=True
        )
        worker.start()
        self._worker = worker

    def _reinit_after_fork(self) -> None:
        # The parent's queued items are the parent's to export; the child starts empty and counts anew.
        self.stats.reset_after_fork()
        if not self._shutdown:
            self._init_state()

    # -- producer side -------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        """Items waiting behind the batch being exported (a hint: it changes as it is read)."""
        return len(self._queue)

    def put(self, item: T) -> None:
        with self._cond:
            if self._shutdown or len(self._queue) >= self._max_queue_size:
                self.stats.refused()
                return
            self._queue.append(item)
            self._accepted += 1
            self.stats.accepted()
            if len(self._queue) >= self._batch_size:
                self._cond.notify()

    def put_many(self, items: list[T], domain: str | None = None) -> int:
        """``put`` for a batch, under one lock; returns how many did not fit (counted as dropped).

        When the queue is short of room the overload policy decides: records of a "wait" domain
        (each record's own, or ``domain`` for all) wait for the worker to make room, at most the
        policy's maximum wait; the rest is dropped and counted.
        """
        with self._cond:
            if self._stuck_at is not None and self._finished != self._stuck_at:
                self._stuck_at = None
            room = 0 if self._shutdown else max(0, self._max_queue_size - len(self._queue))
            taken = items if len(items) <= room else items[:room]
            self._take(taken)
            if len(taken) == len(items):
                return 0
            rest = items[len(taken) :]
            overload = self.overload
            if overload is not None and not self._shutdown:
                stuck = self._stuck_at is not None
                wait_s, waiting = (
                    overload.wait_for_records(rest, stuck=stuck)
                    if domain is None
                    else (overload.wait_s(domain, stuck=stuck), domain)
                )
                if wait_s > 0:
                    rest = self._wait_and_take(rest, wait_s, waiting)
            if rest:
                self.stats.refused(len(rest))
        if rest and overload is not None:
            if domain is None:
                overload.note_drops(rest)
            else:
                overload.note_drop(domain, len(rest))
        return len(rest)

    def _take(self, taken: list[T]) -> None:
        self._queue.extend(taken)
        self._accepted += len(taken)
        if taken:
            self.stats.accepted(len(taken))
        if len(self._queue) >= self._batch_size:
            self._cond.notify()

    def _wait_and_take(self, rest: list[T], wait_s: float, domain: str) -> list[T]:
        """Backpressure (the caller holds ``self._cond``): take ``rest`` as room appears."""
        assert self.overload is not None
        start = time.monotonic()
        deadline = start + wait_s
        while rest and not self._shutdown and self._worker.is_alive():
            room = max(0, self._max_queue_size - len(self._queue))
            if room:
                self._take(rest[:room])
                rest = rest[room:]
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._cond.notify()  # a full queue is a batch: have the worker export now
            # Woken when a quarter of the queue is free (or all it needs): the worker goes on
            # exporting meanwhile, so the producer is not woken for every batch.
            wanted = min(len(rest), max(self._batch_size, self._max_queue_size // 4), self._max_queue_size)
            self._room_wanted.append(wanted)
            try:
                self._progress.wait(min(remaining, 0.05))
            finally:
                self._room_wanted.remove(wanted)
        self.overload.note_wait(domain, time.monotonic() - start, timed_out=bool(rest))
        self._stuck_at = self._finished if rest else None
        return rest

    # -- worker ------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # a worker that stops: noticed, booked, replaced
            self._worker_died(exc)

    def _worker_died(self, exc: BaseException) -> None:
        """What was queued when the worker died is booked failed (it cannot vouch for it);
        ``force_flush``/``shutdown`` report the death; a new worker takes over."""
        with self._cond:
            lost = len(self._queue)
            self._queue.clear()
            self._finished += lost
            self._crashes += 1
            self._notify_everyone()
            restart = not self._shutdown
            if restart:
                self._start_worker()
        self.stats.finished(failed=lost)
        self.stats.note_error(f"worker died ({type(exc).__name__}); {lost} queued records failed")
        thread_death_log.log(
            logging.ERROR,
            f"{self.stats.sink}/{self.stats.signal}",
            "%s/%s worker died (%s); %d queued records counted as failed; %s",
            self.stats.sink,
            self.stats.signal,
            type(exc).__name__,
            lost,
            "restarted it" if restart else "shutting down",
            exc_info=(type(exc), exc, exc.__traceback__),
        )

    def _report_crashes(self) -> bool:
        """True unless a worker died since the last call (each death is reported once)."""
        with self._cond:
            crashes, self._crashes_reported = self._crashes - self._crashes_reported, self._crashes
        return crashes == 0

    def _loop(self) -> None:
        with suppress_instrumentation():
            while True:
                with self._cond:
                    deadline = time.monotonic() + self._delay_s
                    while len(self._queue) < self._batch_size and not (
                        self._shutdown or self._flush_requested
                    ):
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                    if not self._queue:
                        self._flush_requested = False
                        if self._shutdown:
                            return
                        continue
                    batch = take_left(self._queue, self._batch_size)
                    self._in_flight = len(batch)
                    if not self._queue:
                        self._flush_requested = False
                self._export_batch(batch)

    def _export_batch(self, batch: list[T]) -> None:
        booking = Booking(0, 0)
        try:
            if self._prepare is not None:
                self._prepare(batch)
            booking = Booking(*self._export(batch))
        except Exception as exc:
            _log.exception("exporter %s raised; counting %d records as failed", self.stats.sink, len(batch))
            self.stats.export_failed(exc)
        finally:  # even if the worker is dying: the batch is finished in the books, failed if unsure
            size = len(batch)
            exported = min(max(0, booking.exported), size)
            pending = min(max(0, booking.pending), size - exported)
            not_routed = min(max(0, booking.not_routed), size - exported - pending)
            books = {
                "exported": exported,
                "failed": size - exported - pending - not_routed,  # the rest: failed or lost
                "pending": pending,
                "not_routed": not_routed,
            }
            with self._cond:
                if self._abandoned:  # a shutdown deadline booked it dropped; it landed after all
                    self.stats.rebook_dropped(**books)
                else:
                    self.stats.finished(**books)
                    self._finished += size
                self._in_flight = self._abandoned = 0
                self._notify_progress()

    def _notify_progress(self) -> None:
        """After a batch (the caller holds the lock): wake the waiters whose wait is over."""
        if (self._flush_targets and self._flush_targets[0] <= self._finished) or (
            self._room_wanted and min(self._room_wanted) <= self._max_queue_size - len(self._queue)
        ):
            self._progress.notify_all()

    def _notify_everyone(self) -> None:
        """After anything but a batch (a death, a shutdown, a drop; the caller holds the lock)."""
        self._cond.notify_all()
        self._progress.notify_all()

    # -- control -----------------------------------------------------------------------------
    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        """Wait until everything accepted before this call is finished, at most ``timeout_millis``."""
        deadline = time.monotonic() + timeout_millis / 1000
        failures = self.stats.failed_exports
        with self._cond:
            target = self._accepted
            self._flush_requested = True
            self._cond.notify()
            self._flush_targets.append(target)  # ascending: _accepted never goes back
            try:
                while self._finished < target:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._worker.is_alive():
                        return False
                    self._progress.wait(min(remaining, 0.05))
            finally:
                self._flush_targets.remove(target)
        # An export that stored nothing of its batch (OTLP error or timeout, retries exhausted) while we
        # waited makes the flush a failure: the records are booked failed, not delivered.
        crashes_ok = self._report_crashes()
        return self.stats.failed_exports == failures and crashes_ok

    def shutdown(self, timeout_millis: float = 30_000) -> bool:
        """Export what is queued, then stop; whatever the deadline leaves behind is counted as dropped."""
        deadline = time.monotonic() + timeout_millis / 1000
        with self._cond:
            if self._shutdown:
                return True
            self._shutdown = True
            self._notify_everyone()
        worker = None
        while worker is not self._worker:  # a worker that died hands over to a new one
            worker = self._worker
            worker.join(max(0.0, deadline - time.monotonic()))
        crashes_ok = self._report_crashes()
        done = not self._worker.is_alive()
        if not done:
            self.drop_unfinished("shutdown deadline reached")
        done = done and crashes_ok
        if self._on_shutdown is not None:
            remaining = max(0.0, deadline - time.monotonic())
            done = (
                run_with_deadline(
                    lambda: self._on_shutdown(remaining * 1000),  # type: ignore[misc]
                    remaining,
                    f"shutdown of {self.stats.sink}",
                    quiet=True,
                )
                and done
            )
        return done

    def drop_unfinished(self, why: str) -> int:
        """Book everything not exported yet as dropped — the queue and the batch in flight — and
        refuse more. A batch in flight that lands later is re-booked (``SinkStats.rebook_dropped``)."""
        with self._cond:
            self._shutdown = True
            left = len(self._queue)
            self._queue.clear()
            in_flight = 0 if self._abandoned else self._in_flight
            self._abandoned = self._in_flight
            self._finished += left + in_flight
            if left + in_flight:
                self.stats.finished(dropped=left + in_flight)
            self._notify_everyone()
        if left + in_flight:
            _log.debug(  # Pipeline.shutdown() reports every part's losses in one summary line
                "%s/%s: %s; %d unexported records dropped",
                self.stats.sink,
                self.stats.signal,
                why,
                left + in_flight,
            )
        return left + in_flight


class SpanBatchProcessor(SpanProcessor):
    """A ``SpanProcessor`` over :class:`BatchingProcessor` (sampled spans only)."""

    def __init__(self, batching: BatchingProcessor[ReadableSpan]) -> None:
        self.batching = batching

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self.batching.put(span)

    def shutdown(self) -> None:
        self.batching.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.batching.force_flush(timeout_millis)


class LogBatchProcessor(LogRecordProcessor):
    """A ``LogRecordProcessor`` over :class:`BatchingProcessor`."""

    def __init__(self, batching: BatchingProcessor[ReadableLogRecord]) -> None:
        self.batching = batching

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        # Exporters read only log_record/resource/instrumentation_scope, which both record classes
        # carry; skipping the frozen copy saves ~1 µs a record on the telemetry thread.
        self.batching.put(log_record)  # type: ignore[arg-type]

    def on_emit_batch(self, log_records: list[ReadWriteLogRecord], domain: str | None = None) -> int:
        return self.batching.put_many(log_records, domain)  # type: ignore[arg-type]

    def shutdown(self) -> None:
        self.batching.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.batching.force_flush(timeout_millis)
