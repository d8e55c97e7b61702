"""Exact books at deadlines (issue 10 §7): when ``shutdown(t)`` returns after missing its deadline
nothing is left booked ``queued``; ``force_flush()`` is False when an export in the flush failed."""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor

import otel_tele
from otel_tele import StatsSnapshot, Telemetry

from ._dead_peers import hung_listener
from ._fake_sinks import HangingSink, RecordingSink
from .test_sink_contract import emit_commands, pipeline_with, run_bounded, stats_of


def _nothing_queued(telemetry: Telemetry) -> list[StatsSnapshot]:
    snaps = telemetry.sink_stats()
    for snap in snaps:
        assert snap.reconciles, snap
        assert snap.queued == 0, snap
    return snaps


def test_shutdown_past_its_deadline_books_the_batch_in_flight_dropped_then_rebooks_it() -> None:
    sink = HangingSink()
    telemetry = pipeline_with(sink, blrp_max_export_batch_size=100)
    emit_commands(telemetry, 1_000)
    assert sink.entered.wait(10)  # one batch of 100 is in flight on the hung sink
    assert run_bounded(lambda: telemetry.shutdown(300), 10) is False
    # At the moment shutdown returned: every record not exported is dropped, none queued.
    _nothing_queued(telemetry)
    logs = stats_of(telemetry, "hanging")
    assert logs.emitted == stats_of(telemetry, "events").exported
    assert (logs.exported, logs.dropped) == (0, logs.emitted)
    # The late write lands after all: its records move from dropped to exported, books still exact.
    sink.release.set()
    telemetry._batchers[0]._worker.join(10)
    logs = stats_of(telemetry, "hanging")
    assert logs.reconciles and logs.queued == 0
    assert logs.exported == len(sink.records) == 100
    assert logs.dropped == logs.emitted - 100


class _BlockingProcessor(LogRecordProcessor):
    """A log processor stuck in on_emit: the event thread hangs with a batch in its hands."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def on_emit(self, log_record: Any) -> None:
        self.entered.set()
        self.release.wait()

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def test_shutdown_past_its_deadline_books_pending_events_dropped() -> None:
    sink = RecordingSink()
    telemetry = pipeline_with(sink)
    blocker = _BlockingProcessor()
    telemetry.logger_provider.add_log_record_processor(blocker)
    emit_commands(telemetry, 10)
    assert blocker.entered.wait(10)
    emit_commands(telemetry, 500, start=10)  # waits in the event queue behind the stuck batch
    assert run_bounded(lambda: telemetry.shutdown(300), 10) is False
    _nothing_queued(telemetry)
    events = stats_of(telemetry, "events")
    assert (events.emitted, events.dropped) == (510, 510)
    blocker.release.set()
    telemetry.events._thread.join(10)
    events = stats_of(telemetry, "events")
    assert events.reconciles and events.queued == 0
    assert events.exported == 10 and events.dropped == 500


def _otlp_to(port: int, **exporters: str) -> Telemetry:
    return otel_tele.setup(
        local=True,
        sinks="none",
        otlp_protocol="http/protobuf",
        otlp_endpoint=f"http://127.0.0.1:{port}",
        otlp_timeout_millis=200,
        **exporters,
    )


def test_force_flush_is_false_when_every_otlp_export_fails() -> None:
    """A collector that accepts and never answers: each export times out; the flush says so."""
    with hung_listener() as peer:
        telemetry = _otlp_to(peer.port, traces_exporter="otlp", logs_exporter="otlp", metrics_exporter="otlp")
        try:
            emit_commands(telemetry, 5)
            with telemetry.tracer("t").start_as_current_span("s"):
                pass
            assert telemetry.force_flush(30_000) is False
            for signal in ("logs", "traces"):
                snap = stats_of(telemetry, "otlp", signal)
                assert snap.reconciles and snap.failed > 0 and snap.exported == 0, snap
        finally:
            run_bounded(lambda: telemetry.shutdown(2_000), 10)


def test_force_flush_is_false_when_the_metric_export_fails() -> None:
    with hung_listener() as peer:
        telemetry = _otlp_to(peer.port, traces_exporter="none", logs_exporter="none", metrics_exporter="otlp")
        try:
            telemetry.meter("t").create_counter("c").add(1)
            assert telemetry.force_flush(30_000) is False
        finally:
            run_bounded(lambda: telemetry.shutdown(2_000), 10)


def test_force_flush_is_true_when_every_export_succeeds() -> None:
    sink = RecordingSink()
    telemetry = pipeline_with(sink)
    emit_commands(telemetry, 50)
    assert telemetry.force_flush(10_000) is True
    assert stats_of(telemetry, "recording").exported == 50
    telemetry.shutdown(5_000)
