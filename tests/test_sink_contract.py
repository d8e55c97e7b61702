"""The sink contract, tested once for every sink: never raise, never concurrent, bounded, reconciled.

The first part drives misbehaving fake sinks through a real pipeline; the second runs every sink
registered in ``otel_tele._components.SINKS`` through the same checks with its sample driver
(``tests/sink_samples/<name>.py``).
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import otel_tele
from otel_tele import RetryPolicy, SinkLogExporter, SinkSpanExporter, StatsSnapshot, Telemetry
from otel_tele._components import SINKS, ComponentUnavailable, load_sink_class
from otel_tele._settings import resolve

from ._fake_sinks import FlakySink, HangingSink, RaisingSink, RecordingSink, RejectingSink

FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff_s=0.001, max_backoff_s=0.002)


def pipeline_with(sink: RecordingSink, **options: Any) -> Telemetry:
    """A private pipeline whose only log/span destination is ``sink``."""
    settings = resolve(
        {
            "traces_exporter": "none",
            "metrics_exporter": "none",
            "logs_exporter": "none",
            "sinks": "none",
            **options,
        }
    )
    return Telemetry(
        settings,
        local=True,
        extra_exporters={"logs": [SinkLogExporter(sink)], "traces": [SinkSpanExporter(sink)]},
    )


def stats_of(telemetry: Telemetry, sink: str, signal: str = "logs") -> StatsSnapshot:
    return next(s for s in telemetry.sink_stats() if s.sink == sink and s.signal == signal)


def emit_commands(telemetry: Telemetry, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        telemetry.events.emit("robot.dds.command", {"robot.dds.seq": i, "robot.dds.funcode": 1})


@pytest.fixture
def pipelines() -> Iterator[list[Telemetry]]:
    created: list[Telemetry] = []
    yield created
    for telemetry in created:
        telemetry.shutdown(timeout_millis=2_000)


def test_recording_sink_gets_every_event_with_reconciled_counts(pipelines: list[Telemetry]) -> None:
    """Every emitted event reaches the sink once; both stages reconcile."""
    sink = RecordingSink()
    telemetry = pipeline_with(sink)
    pipelines.append(telemetry)
    emit_commands(telemetry, 1_000)
    assert telemetry.force_flush(10_000)
    assert sorted(r.log_record.attributes["robot.dds.seq"] for r in sink.records) == list(range(1_000))
    for snap in telemetry.sink_stats():
        assert snap.reconciles, snap
    assert stats_of(telemetry, "recording").exported == 1_000
    assert stats_of(telemetry, "events").exported == 1_000


def test_raising_sink_never_raises_into_the_host_and_counts_failures(pipelines: list[Telemetry]) -> None:
    """A sink that always fails costs the caller nothing and every record is counted as failed."""
    sink = RaisingSink()
    telemetry = pipeline_with(sink)
    pipelines.append(telemetry)
    emit_commands(telemetry, 300)
    with telemetry.tracer("t").start_as_current_span("work"):
        pass
    assert telemetry.force_flush(10_000) is False  # every export failed, and the flush says so
    logs, spans = stats_of(telemetry, "raising"), stats_of(telemetry, "raising", "traces")
    assert (logs.failed, logs.exported, logs.reconciles) == (300, 0, True)
    assert (spans.failed, spans.reconciles) == (1, True)
    # The books keep the last error and its time (the health page shows them).
    assert logs.last_error == "RuntimeError: disk on fire" and logs.last_error_at is not None
    assert stats_of(telemetry, "events").last_error is None


def test_transient_errors_are_retried_until_written(pipelines: list[Telemetry]) -> None:
    """Two transient failures, then success: nothing lost, nothing counted as failed."""
    sink = FlakySink(failures=2)
    sink.retry = FAST_RETRY  # type: ignore[misc]
    telemetry = pipeline_with(sink)
    pipelines.append(telemetry)
    emit_commands(telemetry, 50)
    assert telemetry.force_flush(10_000)
    snap = stats_of(telemetry, "flaky")
    assert (snap.exported, snap.failed) == (50, 0)
    assert len(sink.records) == 50 and sink.attempts == 3


def test_retries_are_bounded_and_the_rest_counted_failed(pipelines: list[Telemetry]) -> None:
    """A sink that stays down exhausts the bounded retries; records are failed, not lost."""
    sink = FlakySink(failures=10**9)
    sink.retry = FAST_RETRY  # type: ignore[misc]
    telemetry = pipeline_with(sink)
    pipelines.append(telemetry)
    emit_commands(telemetry, 20)
    assert telemetry.force_flush(10_000) is False
    snap = stats_of(telemetry, "flaky")
    assert (snap.failed, snap.exported, snap.reconciles) == (20, 0, True)
    assert sink.attempts == FAST_RETRY.max_attempts
    assert snap.last_error == "TransientFault: restarting"


def test_rejected_records_are_counted_as_failed(pipelines: list[Telemetry]) -> None:
    """A sink that reports unusable records gets them counted as failed."""
    sink = RejectingSink()
    telemetry = pipeline_with(sink, blrp_max_export_batch_size=10)
    pipelines.append(telemetry)
    emit_commands(telemetry, 100)
    assert telemetry.force_flush(10_000)
    snap = stats_of(telemetry, "rejecting")
    assert snap.exported + snap.failed == 100 and snap.failed == 50 and snap.reconciles
    assert snap.last_error is not None and snap.last_error.endswith("of 10 logs rejected as unusable")


def run_bounded(fn: Any, limit_s: float) -> Any:
    """Run ``fn`` on a thread; fail if it has not returned after ``limit_s`` (a hang, not slowness)."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    thread.start()
    thread.join(limit_s)
    assert not thread.is_alive(), "call hung past its timeout"
    return result[0]


def test_hanging_sink_cannot_hang_flush_or_shutdown() -> None:
    """force_flush and shutdown return False at their deadline while the sink hangs; books balance."""
    sink = HangingSink()
    telemetry = pipeline_with(sink, blrp_max_export_batch_size=100)
    emit_commands(telemetry, 1_000)
    assert run_bounded(lambda: telemetry.force_flush(300), 10) is False
    assert sink.entered.is_set()
    assert run_bounded(lambda: telemetry.shutdown(500), 10) is False
    assert stats_of(telemetry, "hanging").reconciles
    # The processor books what its deadline left behind as dropped as it gives up, which may be a
    # moment after shutdown() has returned to the caller; the books balance at every instant.
    deadline = time.monotonic() + 10
    while (snap := stats_of(telemetry, "hanging")).dropped == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # polling for the state change, bounded
    assert snap.reconciles and snap.dropped > 0, snap
    sink.release.set()


def test_blocked_sink_with_a_million_emits_stays_bounded_and_reconciles() -> None:
    """1M emits into a blocked sink: queues never exceed their bounds; afterwards every event is
    exported or counted as dropped, at both stages."""
    sink = HangingSink()
    telemetry = pipeline_with(
        sink, event_queue_size=20_000, blrp_max_queue_size=10_000, blrp_max_export_batch_size=1_000
    )
    events_queue = telemetry.events._queue
    batcher = telemetry._batchers[0]
    high_water = 0
    for i in range(1_000_000):
        telemetry.events.emit("robot.dds.command", {"robot.dds.seq": i})
        if i % 10_000 == 0:
            high_water = max(high_water, len(events_queue))
            assert len(batcher._queue) <= 10_000
    assert high_water <= 20_000
    sink.release.set()
    assert telemetry.force_flush(60_000)
    events, logs = stats_of(telemetry, "events"), stats_of(telemetry, "hanging")
    assert events.emitted == 1_000_000 and events.reconciles
    assert events.dropped > 0 and logs.dropped > 0
    assert logs.emitted == events.exported and logs.reconciles
    assert len(sink.records) == logs.exported
    telemetry.shutdown(5_000)


def test_32_threads_with_concurrent_flushes_never_export_concurrently(pipelines: list[Telemetry]) -> None:
    """32 threads emit logs and spans and flush at once: one export at a time, exact totals."""
    sink = RecordingSink(delay_s=0.0005)
    telemetry = pipeline_with(sink, blrp_max_export_batch_size=64, bsp_max_export_batch_size=16)
    pipelines.append(telemetry)
    barrier = threading.Barrier(32)
    tracer = telemetry.tracer("contract")

    def worker(worker_id: int) -> None:
        barrier.wait()
        for i in range(500):
            telemetry.events.emit("robot.dds.command", {"robot.dds.seq": worker_id * 1_000 + i})
            if i % 50 == 0:
                with tracer.start_as_current_span("op"):
                    pass
                telemetry.force_flush(10_000)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert telemetry.force_flush(30_000)
    assert sink.max_active == 1
    logs, spans = stats_of(telemetry, "recording"), stats_of(telemetry, "recording", "traces")
    assert (logs.exported, spans.exported) == (32 * 500, 32 * 10)
    assert logs.reconciles and spans.reconciles


def test_records_after_shutdown_are_counted_as_dropped() -> None:
    """Emitting after shutdown neither raises nor vanishes: it is counted as dropped."""
    sink = RecordingSink()
    telemetry = pipeline_with(sink)
    emit_commands(telemetry, 10)
    assert telemetry.shutdown(5_000)
    emit_commands(telemetry, 5)
    with telemetry.tracer("t").start_as_current_span("late"):
        pass
    events = stats_of(telemetry, "events")
    assert (events.exported, events.dropped) == (10, 5)
    assert stats_of(telemetry, "recording", "traces").dropped == 1
    assert sink.closed


# -- every registered sink ----------------------------------------------------------------------


def _sample(name: str) -> Any:
    try:
        load_sink_class(name)
    except ComponentUnavailable as exc:
        pytest.skip(str(exc))
    try:
        return importlib.import_module(f"tests.sink_samples.{name}")
    except ModuleNotFoundError:
        pytest.fail(f"sink {name!r} has no sample driver tests/sink_samples/{name}.py")


def sink_pipeline(name: str, data_dir: Path, **options: Any) -> Telemetry:
    """A private pipeline whose only destination is the registered sink ``name`` (``options`` may
    name exporters too)."""
    settings: dict[str, Any] = {
        "traces_exporter": "none",
        "metrics_exporter": "none",
        "logs_exporter": "none",
    }
    return otel_tele.setup(local=True, sinks=[name], data_dir=data_dir, **{**settings, **options})


@pytest.mark.parametrize("name", sorted(SINKS))
def test_registered_sink_honours_the_contract(name: str, tmp_path: Path) -> None:
    """Each real sink persists what its sample emits, with reconciled counts, inside its deadlines."""
    sample = _sample(name)
    data_dir = tmp_path / "telemetry"
    telemetry = sink_pipeline(name, data_dir)
    try:
        sample.exercise(telemetry, 200)
        assert run_bounded(lambda: telemetry.force_flush(30_000), 60)
        for snap in telemetry.sink_stats():
            assert snap.reconciles, snap
            assert snap.failed == 0 and snap.dropped == 0, snap
            assert snap.pending == 0, snap  # after a flush, nothing held back is booked as if stored
        assert sample.stored(data_dir, telemetry) == 200
    finally:
        assert run_bounded(lambda: telemetry.shutdown(30_000), 60)
