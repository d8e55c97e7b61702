"""FDA iterations appended to the run's buffer (``otel_tele._event_buffer``) and handed to the event
queue a chunk at a time: nothing held back from a flush, a shutdown or a slow loop, order and
trace context kept, nothing lost under backpressure or from two threads, a forked child never sends
its parent's rows."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from opentelemetry import trace
from opentelemetry.sdk._logs import LogRecordProcessor
from otel_tele.instrumentation import fda
from otel_tele.instrumentation.fda import _recorder

from otel_tele._event_buffer import TIME_KEY, EventBuffer

from ._consumers import Seen, books, capsule_only
from ._fork import forked
from .sink_samples.capsule import CORE


class Counted(LogRecordProcessor):
    """A log consumer that says when it has seen ``wanted`` iteration records."""

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.records: list[Any] = []
        self.reached = threading.Event()

    def on_emit(self, log_record: Any) -> None:
        self.records.append(log_record)
        if sum(r.log_record.event_name == "fda.iteration" for r in self.records) >= self.wanted:
            self.reached.set()

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def test_a_slow_loops_rows_reach_the_consumers_without_a_flush(tmp_path: Path) -> None:
    """Fewer rows than a chunk, then the loop stops calling: the idle telemetry thread hands them
    over within its poll."""
    telemetry = capsule_only(tmp_path)
    counted = Counted(3)
    telemetry.logger_provider.add_log_record_processor(counted)
    try:
        with fda.run("slow", telemetry=telemetry, units={}, method={}) as run:
            for i in range(3):
                run.iteration(iter=i, **CORE)
            assert len(run._buffer) <= 3
            assert counted.reached.wait(10), "buffered rows never left the run"
    finally:
        telemetry.shutdown(10_000)


def test_events_keep_their_order_and_each_row_its_context(tmp_path: Path) -> None:
    telemetry = capsule_only(tmp_path)
    seen = Seen()
    telemetry.logger_provider.add_log_record_processor(seen)
    try:
        with fda.run("order", telemetry=telemetry, units={}, method={}) as run:
            run_span = trace.get_current_span().get_span_context()
            for i in range(10):
                run.iteration(iter=i, **CORE)
            run.event("CERT_PASS", {"ok": True})
            with telemetry.tracer("test").start_as_current_span("inner") as inner:
                run.iteration(iter=10, **CORE)
            worker = threading.Thread(target=lambda: run.iteration(iter=11, **CORE))
            worker.start()
            worker.join()
            run.iteration(iter=12, **CORE)
        assert telemetry.force_flush(10_000)
    finally:
        telemetry.shutdown(10_000)
    names = [r.log_record.event_name for r in seen.records]
    assert names[0] == "fda.run.event" and names[-1] == "fda.run.event"
    records = [r.log_record for r in seen.records]
    order = [
        r.attributes.get("iter", r.attributes.get("fda.event"))
        for r in records
        if r.event_name == "fda.iteration" or r.attributes.get("fda.event") == "CERT_PASS"
    ]
    assert order == [*range(10), "CERT_PASS", 10, 11, 12]
    by_iter = {r.attributes["iter"]: r for r in records if r.event_name == "fda.iteration"}
    assert by_iter[0].span_id == run_span.span_id and by_iter[12].span_id == run_span.span_id
    assert by_iter[10].span_id == inner.get_span_context().span_id  # the caller's own span
    assert by_iter[11].span_id in (None, 0)  # another thread: no span current there
    assert by_iter[0].attributes["fda.run_id"] == run.run_id
    stamps = [by_iter[i].timestamp for i in range(13)]
    assert stamps == sorted(stamps) and abs(stamps[0] - time.time_ns()) < 60e9


def test_a_flush_and_a_shutdown_take_what_the_run_holds(tmp_path: Path) -> None:
    telemetry = capsule_only(tmp_path)
    seen = Seen()
    telemetry.logger_provider.add_log_record_processor(seen)
    # Only a flush or a shutdown hands rows over here: the telemetry thread's idle poll is off.
    hand_over = telemetry.events._hand_over_buffers
    telemetry.events._hand_over_buffers = lambda *, wait: hand_over(wait=wait) if wait else None  # type: ignore[method-assign]
    with fda.run("flushes", telemetry=telemetry, units={}, method={}, flush_timeout_millis=0) as run:
        for i in range(7):
            run.iteration(iter=i, **CORE)
        assert telemetry.force_flush(10_000)
        assert sum(r.log_record.event_name == "fda.iteration" for r in seen.records) == 7
        for i in range(7, 12):
            run.iteration(iter=i, **CORE)
        assert telemetry.events.pending == 5  # held by the run, booked queued
        assert books(telemetry)["events/logs"][6] == 5
        assert telemetry.shutdown(10_000)
        assert sum(r.log_record.event_name == "fda.iteration" for r in seen.records) == 12
        run.iteration(iter=12, **CORE)  # after the shutdown: refused, counted
    assert run.recorded == 13
    events = books(telemetry)["events/logs"]
    assert events[0] == events[1] + events[2] + events[3] + events[4]  # every event booked
    assert events[2] >= 1  # the late iteration (and the run's end event) dropped


def test_backpressure_loses_no_iteration_of_a_production_run(tmp_path: Path) -> None:
    """An event queue far smaller than a chunk: production runs wait for room, every row stored."""
    telemetry = capsule_only(tmp_path, event_queue_size=64)
    try:
        with fda.run("tight", telemetry=telemetry, units={}, method={}) as run:
            for i in range(5_000):
                run.iteration(iter=i, **CORE)
        stats = {s.sink: s for s in telemetry.sink_stats()}
        assert stats["events"].dropped == 0 and stats["capsule"].dropped == 0
    finally:
        telemetry.shutdown(10_000)
    capsule = next(tmp_path.glob("**/runs/fda_run_*/telemetry.parquet"))
    assert pq.read_table(capsule).column("iter").to_pylist() == list(range(5_000))


def test_two_threads_recording_one_run_lose_nothing(tmp_path: Path) -> None:
    telemetry = capsule_only(tmp_path)
    try:
        with fda.run("threads", telemetry=telemetry, units={}, method={}) as run:
            start = threading.Barrier(2)

            def work(offset: int) -> None:
                start.wait()
                for i in range(offset, offset + 20_000):
                    run.iteration(iter=i, **CORE)

            workers = [threading.Thread(target=work, args=(k * 20_000,)) for k in range(2)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
    finally:
        telemetry.shutdown(10_000)
    capsule = next(tmp_path.glob("**/runs/fda_run_*/telemetry.parquet"))
    assert sorted(pq.read_table(capsule).column("iter").to_pylist()) == list(range(40_000))


def _child_reports_its_buffer(run: Any, write_fd: int) -> None:
    held = len(run._buffer)
    pending = run.telemetry.events.pending
    os.write(write_fd, f"{held} {pending}".encode())
    os._exit(0)


def test_a_forked_child_never_sends_its_parents_buffered_rows(tmp_path: Path) -> None:
    telemetry = capsule_only(tmp_path)
    try:
        with fda.run("forks", telemetry=telemetry, units={}, method={}) as run:
            for i in range(5):
                run.iteration(iter=i, **CORE)
            held = len(run._buffer)
            pid, read_fd = forked(_child_reports_its_buffer, run)
            report = os.read(read_fd, 100).decode()
            os.close(read_fd)
            assert os.waitpid(pid, 0)[1] == 0
        assert report == "0 0", report
        assert held <= 5
    finally:
        telemetry.shutdown(10_000)
    capsule = next(tmp_path.glob("**/runs/fda_run_*/telemetry.parquet"))
    assert pq.read_table(capsule).num_rows == 5  # the parent's rows, once


def test_iteration_times_are_the_start_plus_the_monotonic_offset(monkeypatch: Any, tmp_path: Path) -> None:
    """A stepped wall clock does not reorder a run's rows: each row's time is the run's start on
    the wall clock plus its offset on the monotonic one (the offset ``t_wall_ms`` is made of)."""
    ticks = iter(range(1_000, 10_000_000, 1_000))
    monkeypatch.setattr(_recorder, "_clock", lambda: next(ticks))
    monkeypatch.setattr(_recorder, "_wall_ns", lambda: 1_767_225_600_000_000_000)
    telemetry = capsule_only(tmp_path)
    seen = Seen()
    telemetry.logger_provider.add_log_record_processor(seen)
    try:
        with fda.run("clock", telemetry=telemetry, units={}, method={}) as run:
            for i in range(3):
                run.iteration(iter=i, **CORE)
        assert telemetry.force_flush(10_000)
    finally:
        telemetry.shutdown(10_000)
    rows = [r.log_record for r in seen.records if r.log_record.event_name == "fda.iteration"]
    offsets = [r.attributes["t_wall_ms"] for r in rows]
    assert [r.timestamp for r in rows] == [1_767_225_600_000_000_000 + round(ms * 1e6) for ms in offsets]
    assert offsets == sorted(offsets) and len(set(offsets)) == 3


def test_an_iteration_after_the_run_ended_is_booked_not_held(tmp_path: Path) -> None:
    telemetry = capsule_only(tmp_path)
    try:
        with fda.run("late", telemetry=telemetry, units={}, method={}) as run:
            run.iteration(iter=0, **CORE)
        run.iteration(iter=1, **CORE)  # the run has ended: this row is the sink's to refuse
        assert telemetry.force_flush(10_000)
        assert len(run._buffer) == 0 and run.recorded == 2
        for snapshot in telemetry.sink_stats():  # every record accounted for
            booked = snapshot.exported + snapshot.dropped + snapshot.failed + snapshot.pending
            assert snapshot.emitted == booked, snapshot
        emitted, exported, dropped, failed, pending = books(telemetry)["capsule/logs"][:5]
        assert emitted == 5 and exported == 4  # run started, lint, iteration 0, run finished: stored
        assert dropped + failed + pending == 1  # the late row: the sink's to decide, booked
    finally:
        telemetry.shutdown(10_000)
    # The run's own capsule holds only its own rows (the late one went wherever the sink put it).
    capsule = next(tmp_path.glob(f"**/runs/{run.run_id}/telemetry.parquet"))
    assert pq.read_table(capsule).column("iter").to_pylist() == [0]


def test_a_buffer_collected_with_rows_hands_them_over(tmp_path: Path) -> None:
    """A recorder built by hand and dropped before it handed its rows over: they still go out."""
    telemetry = capsule_only(tmp_path)
    seen = Seen()
    telemetry.logger_provider.add_log_record_processor(seen)
    try:
        buffer = EventBuffer(telemetry.events, "fda.iteration", {"fda.run_id": "fda_run_x"}, context=None)
        buffer.append({"iter": 7, **CORE, "t_wall_ms": 0.5, TIME_KEY: time.time_ns()})
        del buffer
        assert telemetry.force_flush(10_000)
        [record] = [r.log_record for r in seen.records]
        assert record.attributes["iter"] == 7 and record.attributes["fda.run_id"] == "fda_run_x"
        assert books(telemetry)["events/logs"][:3] == (1, 1, 0)
    finally:
        telemetry.shutdown(10_000)


class _RaisingEq(float):
    """A float whose comparisons raise (a hostile library type)."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparing me")

    __hash__ = float.__hash__


class _EqualsEverything:
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


def test_the_short_path_never_raises_on_hostile_values(tmp_path: Path) -> None:
    """Once a call site's names are known, calls take the short path; a value whose ``==`` raises,
    claims to equal ``None``, or is an array fails nothing: every row is stored or booked."""
    import numpy as np

    telemetry = capsule_only(tmp_path)
    try:
        with fda.run("hostile", telemetry=telemetry, units={}, method={}) as run:
            for i in range(30):
                value: Any = 0.5
                if i == 10:
                    value = _RaisingEq(0.5)
                elif i == 20:
                    value = _EqualsEverything()
                elif i == 25:
                    value = np.array([1.0, 2.0])
                run.iteration(iter=i, **{**CORE, "gamma": value})
        assert run.recorded == 30 and run.lint_failures == 0
        for snapshot in telemetry.sink_stats():
            booked = snapshot.exported + snapshot.dropped + snapshot.failed + snapshot.pending
            assert snapshot.emitted == booked, snapshot
    finally:
        telemetry.shutdown(10_000)
    capsule = next(tmp_path.glob(f"**/runs/{run.run_id}/telemetry.parquet"))
    table = pq.read_table(capsule)
    assert table.column("iter").to_pylist() == list(range(30))
    gamma = table.column("gamma").to_pylist()
    assert gamma[0] == 0.5 and gamma[10] == 0.5  # a float subclass is its value
    assert gamma[20] is None and gamma[25] is None  # no float to be had: left out of its row alone
