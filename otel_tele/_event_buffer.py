"""Events of one name recorded in bulk: a recorder's hot loop appends attribute dicts, and they join
the event queue a chunk at a time (see :class:`EventBuffer`).

Why: ``DomainEvents.emit`` costs a caller ~0.5 µs an event (a clock, the context, three keys stamped
into the dict, the queue's checks). A solver loop recording a million iterations pays that a million
times for values that are the same in every row of the run (the run's identity, the event name, its
span). Here the caller pays a deque append; the stamping is done a chunk at a time, in C. The call
itself is a row recorder (:func:`row_recorder`): C where the module was built, else its twin here.
"""

from __future__ import annotations

import collections
import operator
import threading
import time
from collections.abc import Callable, Mapping
from itertools import repeat
from typing import TYPE_CHECKING, Any

from ._accel import speedups
from ._events import _TS_KEY, _get_context
from ._internal import take_left

if TYPE_CHECKING:
    from ._events import DomainEvents

__all__ = [
    "CONTEXT_KEY",
    "TIME_KEY",
    "EventBuffer",
    "RowRecorderPy",
    "current_context",
    "holds_none",
    "row_recorder",
]

#: Where an appended row carries its time (ns since the epoch): the queue's own key for it.
TIME_KEY = _TS_KEY

#: Where a row recorded in a context other than the buffer's (a span of the caller's own inside the
#: run, another thread) keeps that context until it is handed over.
CONTEXT_KEY = "otel_tele.event.buffered_context"

#: The current OTel context, as ``DomainEvents.emit`` reads it (one C call).
current_context = _get_context


class EventBuffer:
    """The events of one recorder (an FDA run's iterations) on their way into the event queue.

    ``append(attributes)`` is all a recording costs its caller, the row's time (ns) stamped under
    :data:`TIME_KEY`. The dicts join the queue in the order they were appended — each the event
    ``emit(name, {**attributes, **common}, timestamp_ns=...)`` would have queued in ``context`` (or
    the context stored under :data:`CONTEXT_KEY`) — when:

    - the caller hands them over (:meth:`hand_over`; the FDA recorder does every 512 rows, and
      before any other event of its own, so events keep their order),
    - the telemetry thread finds them while it is idle (within its 50 ms poll: a slow loop's rows
      are not held back),
    - the pipeline flushes or shuts down.

    The buffer is polled for as long as it lives (a row appended after its recorder ended still
    goes out, to be refused or stored as the sink decides); the event stage holds it weakly, and a
    buffer collected with rows hands them over (or counts them dropped) as it goes.

    Example::

        buffer = EventBuffer(events, "fda.iteration", {"fda.run_id": run_id}, context=current_context())
        buffer.append({"iter": 0, "E": 1.0, TIME_KEY: time.time_ns()})
        buffer.hand_over()  # or leave it to the telemetry thread's poll
    """

    def __init__(
        self,
        events: DomainEvents,
        name: str,
        common: Mapping[str, Any],
        *,
        context: Any,
    ) -> None:
        self.name = name
        self.common = dict(common)
        self.context = context
        self.taken = 0  # rows handed over or discarded
        self.rows: collections.deque[dict[str, Any]] = collections.deque()
        #: The caller's whole cost of a recording: one append (thread-safe, and never lost to a
        #: hand-over racing with it: a hand-over pops what is there, an append lands behind it).
        self.append = self.rows.append
        self._events = events
        # Hand-overs one at a time: two racing ones would queue their chunks out of order.
        self._lock = threading.Lock()
        events.add_buffer(self)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def appended(self) -> int:
        """Rows appended so far."""
        return self.taken + len(self.rows)

    def hand_over(self, *, wait: bool = True) -> None:
        """Queue every row appended so far. ``wait``: a full queue makes the caller wait as ``emit``
        would (the event's overload policy); without it only what fits is taken, and nothing if
        another hand-over is under way (the telemetry thread's own poll, which must never wait for
        itself or for a caller)."""
        rows = self.rows
        if not rows or not self._lock.acquire(blocking=wait):
            return
        try:
            count = len(rows) if wait else min(len(rows), self._events.room())
            if count <= 0:
                return
            taken = take_left(rows, count)
            self.taken += count
            try:
                items = self._items(taken)
            except Exception as exc:  # never expected (the rows are the recorder's): booked, not raised
                self._events.reject(f"{self.name} (buffered)", exc, len(taken))
                return
            self._events.queue_buffered(self.name, items, wait=wait)
        finally:
            self._lock.release()

    def __del__(self) -> None:
        # Collected with rows still held (a recorder built by hand and dropped unended): they go
        # out now, or are counted dropped; they never vanish. Never raises (it may run at exit).
        try:
            if self.rows:
                self.hand_over(wait=False)
                self._events.refuse(self.discard())
        except Exception:
            pass

    def discard(self) -> int:
        """Drop every row not handed over (appended after a shutdown took them); how many."""
        with self._lock:
            count = len(self.rows)
            self.rows.clear()
            self.taken += count
        return count

    def reset_after_fork(self) -> None:
        """In a forked child: the parent's rows are the parent's; a hand-over in flight at the fork
        may have left the lock held."""
        self._lock = threading.Lock()
        self.rows.clear()

    def _items(self, rows: list[dict[str, Any]]) -> list[Any]:
        """``rows`` as the queue holds events (see ``DomainEvents.emit``), stamped in C."""
        if any(map(operator.contains, rows, repeat(CONTEXT_KEY))):
            return self._items_one_by_one(rows)
        collections.deque(map(dict.update, rows, repeat(self.common)), maxlen=0)
        return self._events.queued_items(self.name, rows, self.context)

    def _items_one_by_one(self, rows: list[dict[str, Any]]) -> list[Any]:
        """Rows recorded in contexts of their own (rare): each queued in its own context."""
        items: list[Any] = []
        for row in rows:
            context = row.pop(CONTEXT_KEY, self.context)
            row.update(self.common)
            items += self._events.queued_items(self.name, [row], context)
        return items


def holds_none(fields: Mapping[Any, Any]) -> bool:
    """Whether a value of ``fields`` *is* ``None`` (a value whose ``==`` claims it, or raises, or is
    not a bool — a numpy array — is a value). Asked with ``in`` first: a C-speed scan."""
    try:
        if None not in fields.values():
            return False
    except Exception:  # == raised or gave no bool: ask by identity
        pass
    return any(value is None for value in fields.values())


#: ``time.perf_counter_ns`` reads CLOCK_MONOTONIC here: the C recorder reads that clock itself.
_PERF_COUNTER_IS_MONOTONIC = (
    time.get_clock_info("perf_counter").implementation == "clock_gettime(CLOCK_MONOTONIC)"
)
#: Never the names of a call (keyword names are str): no call takes the short path before a check.
_NO_NAMES: tuple[Any, ...] = (None,)


class RowRecorderPy:
    """A recorder's hot call, ``record(**fields)``: one row into an :class:`EventBuffer`.

    A call takes the short path (no check at all) when its field names are the ones last found valid
    (:attr:`valid_names`, set by ``check``), in the same order, no value is ``None``, and fewer than
    :attr:`fast_calls` calls came before it. Any other call asks ``check(index, fields)`` whether to
    record it (it may raise, rename or add fields, and sets :attr:`valid_names`). A recorded row
    then gets its offset since ``start_ns`` in ms under ``offset_key``, its time
    (``origin_ns`` + the offset) under ``time_key``, the current context under ``context_key`` when
    it is not the buffer's, and is appended; every ``chunk`` rows the buffer is handed over.

    A value is ``None`` when it *is* ``None`` (a value whose ``==`` claims it, or raises, is a value).
    This is the pure-Python twin of ``otel_tele._speedups.RowRecorder`` (the same behaviour);
    :func:`row_recorder` picks one.

    Example::

        recorder = row_recorder(buffer, check, start_ns=time.perf_counter_ns(), origin_ns=time.time_ns(),
                                fast_calls=10**9, offset_key="t_wall_ms")
        recorder.record(iter=0, E=1.0)
    """

    def __init__(
        self,
        *,
        rows: collections.deque[dict[str, Any]],
        hand_over: Callable[[], None],
        context: Any,
        get_context: Callable[[], Any],
        check: Callable[[int, dict[str, Any]], bool],
        clock: Callable[[], int],
        start_ns: int,
        origin_ns: int,
        fast_calls: int,
        offset_key: str,
        time_key: str,
        context_key: str,
        chunk: int,
        native_clock: bool,
    ) -> None:
        self.calls = 0
        self.fast_calls = fast_calls
        self.valid_names: tuple[Any, ...] = _NO_NAMES
        self.renames = False
        self._rows = rows
        self._append = rows.append
        self._hand_over = hand_over
        self.context = context  # the buffer's: a row recorded in another keeps its own
        self._get_context = get_context
        self._check = check
        self._clock = clock
        self._start_ns = start_ns
        self._origin_ns = origin_ns
        self._offset_key = offset_key
        self._time_key = time_key
        self._context_key = context_key
        self._chunk = max(chunk, 1)

    def record(self, **fields: Any) -> None:
        """One row (see the class)."""
        index = self.calls
        self.calls = index + 1
        checked = index < self.fast_calls and tuple(fields) == self.valid_names
        if checked and holds_none(fields):
            checked = False
        if checked:
            if self.renames:
                fields["lambda"] = fields.pop("lambda_")
        elif not self._check(index, fields):
            return
        offset = self._clock() - self._start_ns
        fields[self._offset_key] = offset / 1e6
        fields[self._time_key] = self._origin_ns + offset
        context = self._get_context()
        if context is not self.context:  # a span of the caller's own, another thread
            fields[self._context_key] = context
        self._append(fields)  # the kwargs dict is ours to hand over
        if len(self._rows) >= self._chunk:
            self._hand_over()

    __call__ = record


def row_recorder(
    buffer: EventBuffer,
    check: Callable[[int, dict[str, Any]], bool],
    *,
    start_ns: int,
    origin_ns: int,
    fast_calls: int,
    offset_key: str,
    clock: Callable[[], int] = time.perf_counter_ns,
    chunk: int = 512,
) -> RowRecorderPy:
    """The row recorder of ``buffer`` (see :class:`RowRecorderPy`): the C one where it was built.
    ``start_ns`` is a reading of ``clock``."""
    native = speedups is not None
    factory: Any = speedups.RowRecorder if speedups is not None else RowRecorderPy
    recorder: RowRecorderPy = factory(
        rows=buffer.rows,
        hand_over=buffer.hand_over,
        context=buffer.context,
        get_context=current_context,
        check=check,
        clock=clock,
        start_ns=start_ns,
        origin_ns=origin_ns,
        fast_calls=fast_calls,
        offset_key=offset_key,
        time_key=TIME_KEY,
        context_key=CONTEXT_KEY,
        chunk=chunk,
        native_clock=native and clock is time.perf_counter_ns and _PERF_COUNTER_IS_MONOTONIC,
    )
    if native:
        recorder.valid_names = _NO_NAMES
    return recorder
