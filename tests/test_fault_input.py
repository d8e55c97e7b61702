"""Fault injection, issue 10 §1: nothing the host hands over can stop a telemetry thread, and no
public recording call raises into the host.

Every hostile record fails alone (counted ``failed``, logged rate-limited without its value) while
its neighbours are exported; a worker thread that dies anyway is noticed: what it held is booked
failed, a new thread takes over, and ``force_flush``/``shutdown`` report ``False`` once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from otel_tele.instrumentation import fda
from otel_tele.instrumentation.flow import FlowMeters
from otel_tele.instrumentation.inference import TelemetryLogger
from otel_tele.instrumentation.robot import CameraHealthReporter, TelemetryCollector, get_collector

from otel_tele import StatsSnapshot, Telemetry, _overload, testing
from otel_tele._internal import bad_input_log, thread_death_log
from otel_tele.semconv import fda as fda_v

from ._fake_sinks import RecordingSink
from .test_sink_contract import pipeline_with, stats_of


class Hostile:
    """Every dunder a pipeline might call on a value raises, with a message that must not be logged."""

    def __str__(self) -> str:
        raise RuntimeError("SECRET-str")

    def __repr__(self) -> str:
        raise RuntimeError("SECRET-repr")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("SECRET-eq")

    def __hash__(self) -> int:
        raise RuntimeError("SECRET-hash")

    def __bool__(self) -> bool:
        raise RuntimeError("SECRET-bool")


class HostileStr(Hostile):
    """Hashable (a dict key), but unprintable."""

    def __hash__(self) -> int:
        return 7

    def __eq__(self, other: object) -> bool:
        return other is self


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("SECRET-exc")


def deep_dict(depth: int = 5_000) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["a"] = {}
        node = node["a"]
    return root


@pytest.fixture(autouse=True)
def _fresh_rate_limit() -> None:
    for limiter in (bad_input_log, thread_death_log):
        limiter._next.clear()  # a warning suppressed by an earlier test must not hide this one's


def books_balance(telemetry: Telemetry) -> list[StatsSnapshot]:
    snaps = telemetry.sink_stats()
    assert all(s.reconciles and s.queued == 0 for s in snaps), snaps
    return snaps


# -- the event thread --------------------------------------------------------------------------

HOSTILE_EVENTS: dict[str, tuple[Any, Any]] = {
    "name whose str and repr raise": (Hostile(), {"a": 1}),
    "key whose str and repr raise": ("robot.dds.command", {HostileStr(): 1}),
    "key whose hash raises": ("robot.dds.command", {"ok": 1, "k": {1: Hostile()}}),
    "value whose str and repr raise": ("robot.dds.command", {"robot.dds.data_json": Hostile()}),
    "typed value whose int() raises": ("robot.dds.command", {"robot.dds.seq": Hostile()}),
    "5,000-deep dict": ("robot.dds.command", {"robot.dds.data_json": deep_dict()}),
    "dict with tuple keys": ("robot.dds.command", {"robot.dds.data_json": {(1, 2): 3}}),
    "numpy arrays": ("robot.dds.command", {"robot.dds.seq": np.array([1, 2]), "x": np.zeros(3)}),
    "attributes not a mapping, unprintable": ("robot.dds.command", Hostile()),
    "lone surrogates": ("robot.system.event", {"robot.data_json": {"t": "\ud800"}, "k\udfff": "\udfff"}),
    "arrays no exporter encodes": ("robot.dds.command", {"big": [2**70, 1], "text": ["\udfff", "ok"]}),
    "number subclasses": ("robot.dds.command", {"f": np.float64(1.5), "b": np.bool_(True), "i": np.int64(3)}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_EVENTS))
def test_a_hostile_event_fails_alone_and_the_thread_goes_on(case: str) -> None:
    """The hostile event is exported with its bad attributes set aside, or counted failed; the events
    before and after it are exported; the thread lives; the books balance and match the sink."""
    sink = RecordingSink()
    telemetry = pipeline_with(sink)
    try:
        name, attributes = HOSTILE_EVENTS[case]
        telemetry.events.emit("robot.dds.command", {"robot.dds.seq": 1})
        telemetry.events.emit(name, attributes)
        telemetry.events.emit("robot.dds.command", {"robot.dds.seq": 2})
        assert telemetry.force_flush(10_000)
        assert telemetry.events._thread.is_alive()
        books_balance(telemetry)
        events = stats_of(telemetry, "events")
        assert events.emitted == 3 and events.exported + events.failed == 3
        assert len(sink.records) == events.exported == stats_of(telemetry, "recording").exported
        seqs = [r.log_record.attributes.get("robot.dds.seq") for r in sink.records]
        assert seqs[0] == 1 and seqs[-1] == 2
        for record in sink.records:  # what is exported is plain OTel data: string keys, encodable text
            for key, value in record.log_record.attributes.items():
                assert type(key) is str and key.encode("utf-8")
                for item in value if type(value) is tuple else (value,):
                    assert type(item) in (str, int, float, bool), (key, value)
                    assert type(item) is not str or item.encode("utf-8")
                    assert type(item) is not int or -(2**63) <= item < 2**63
    finally:
        assert telemetry.shutdown(10_000)


def test_hostile_name_kills_no_thread_and_later_events_flow() -> None:
    """Today's failure: the error path formats the name and the thread dies with its batch."""
    sink = RecordingSink()
    telemetry = pipeline_with(sink)
    telemetry.events.emit(Hostile(), {"a": 1})  # type: ignore[arg-type]
    for i in range(100):
        telemetry.events.emit("robot.dds.command", {"robot.dds.seq": i})
    assert telemetry.force_flush(10_000)
    events = stats_of(telemetry, "events")
    assert (events.emitted, events.exported, events.failed, events.queued) == (101, 100, 1, 0)
    assert len(sink.records) == 100
    assert telemetry.shutdown(10_000)


def test_an_unusable_timestamp_fails_its_event_alone() -> None:
    """``timestamp_ns`` no store can hold fails its event; a float is rounded, not refused."""
    sink = RecordingSink()
    telemetry = pipeline_with(sink)
    for timestamp in (10**30, -1, Hostile(), float("nan"), 1.7e18):
        telemetry.events.emit("robot.dds.command", {"robot.dds.seq": 1}, timestamp_ns=timestamp)  # type: ignore[arg-type]
    assert telemetry.force_flush(10_000)
    events = stats_of(telemetry, "events")
    assert (events.exported, events.failed) == (1, 4)
    assert [r.log_record.timestamp for r in sink.records] == [1_700_000_000_000_000_000]
    assert telemetry.shutdown(10_000)


def test_bad_records_are_logged_rate_limited_and_never_echoed(caplog: pytest.LogCaptureFixture) -> None:
    """1,000 failing events give one warning, which names neither the value nor its error message."""
    sink = RecordingSink()
    telemetry = pipeline_with(sink)
    with caplog.at_level(logging.WARNING, "otel_tele"):
        for _ in range(1_000):
            telemetry.events.emit(Hostile(), {"a": 1})  # type: ignore[arg-type]
        assert telemetry.force_flush(10_000)
    assert stats_of(telemetry, "events").failed == 1_000
    warnings = [r for r in caplog.records if "counted as failed" in r.getMessage()]
    assert len(warnings) == 1, caplog.text
    assert "SECRET" not in caplog.text
    assert telemetry.shutdown(10_000)


# -- a worker that dies anyway -----------------------------------------------------------------


class ThreadKiller(BaseException):
    """Escapes every ``except Exception``: what a worker thread cannot be protected from by design."""


class KillOnceProcessor:
    """A log processor that, on its first record, waits until the test has queued more, then raises
    an exception nothing catches, killing the thread that called it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.killed = False

    def on_emit(self, record: Any) -> None:
        if not self.killed:
            self.killed = True
            self.entered.set()
            self.release.wait(10)
            raise ThreadKiller()

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def test_a_dead_event_thread_is_noticed_booked_restarted_and_reported() -> None:
    sink = RecordingSink()
    telemetry = pipeline_with(sink)
    killer = KillOnceProcessor()
    telemetry.logger_provider.add_log_record_processor(killer)  # type: ignore[arg-type]
    first = telemetry.events._thread
    telemetry.events.emit("robot.dds.command", {"robot.dds.seq": 0})
    telemetry.events._wake.set()
    assert killer.entered.wait(10)
    for i in range(1, 51):  # queued while the thread is stuck: the queue it dies with
        telemetry.events.emit("robot.dds.command", {"robot.dds.seq": i})
    killer.release.set()
    assert telemetry.events.force_flush(10_000) is False  # the death is reported
    first.join(10)
    assert not first.is_alive() and telemetry.events._thread.is_alive()
    events = stats_of(telemetry, "events")
    assert (events.emitted, events.failed, events.queued, events.reconciles) == (51, 51, 0, True)
    for i in range(10):
        telemetry.events.emit("robot.dds.command", {"robot.dds.seq": 100 + i})
    assert telemetry.force_flush(10_000)  # reported once; the new thread exports
    assert stats_of(telemetry, "events").exported == 10
    # Seq 0 reached the processor ahead of the killer before the thread died: that sink has it.
    assert sorted(r.log_record.attributes["robot.dds.seq"] for r in sink.records) == [0, *range(100, 110)]
    assert telemetry.shutdown(10_000)


class KillAlwaysProcessor(KillOnceProcessor):
    def on_emit(self, record: Any) -> None:
        raise ThreadKiller()


def test_a_cause_that_kills_every_new_thread_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """Every batch kills the thread: each death is booked and reported, but the log says it once."""
    sink = RecordingSink()
    telemetry = pipeline_with(sink)
    telemetry.logger_provider.add_log_record_processor(KillAlwaysProcessor())  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, "otel_tele"):
        for i in range(5):
            telemetry.events.emit("robot.dds.command", {"robot.dds.seq": i})
            assert telemetry.events.force_flush(10_000) is False
        # Its result is not asserted: a death is reported once, by the next flush or by shutdown,
        # and which one depends on whether the flush saw the dying thread's batch finish.
        telemetry.shutdown(10_000)
    events = stats_of(telemetry, "events")
    assert (events.emitted, events.failed, events.queued) == (5, 5, 0)
    assert len([r for r in caplog.records if "thread died" in r.getMessage()]) == 1


class KillOnceSink(RecordingSink):
    """Its first write waits until more is queued, then raises what no handler catches."""

    name = "killonce"

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.killed = False

    def _write(self, batch: Sequence[Any]) -> int | None:
        if not self.killed:
            self.killed = True
            self.entered.set()
            self.release.wait(10)
            raise ThreadKiller()
        return super()._write(batch)


def _kill_batch_worker(telemetry: Telemetry, sink: KillOnceSink) -> threading.Thread:
    batcher = telemetry._batchers[0]
    worker = batcher._worker
    for i in range(10):
        telemetry.events.emit("robot.dds.command", {"robot.dds.seq": i})
    telemetry.events.force_flush(10_000)
    batcher.force_flush(0)  # wakes the worker now rather than at its schedule
    assert sink.entered.wait(10)
    telemetry.events.emit("robot.dds.command", {"robot.dds.seq": 10})
    assert telemetry.events.force_flush(10_000)  # now in the batcher's queue, behind the stuck batch
    sink.release.set()
    worker.join(10)
    assert not worker.is_alive()
    return worker


def test_a_dead_batch_worker_is_noticed_booked_restarted_and_reported() -> None:
    sink = KillOnceSink()
    telemetry = pipeline_with(sink, blrp_max_export_batch_size=10)
    _kill_batch_worker(telemetry, sink)
    assert telemetry.force_flush(10_000) is False
    logs = stats_of(telemetry, "killonce")
    assert (logs.emitted, logs.failed, logs.queued, logs.reconciles) == (11, 11, 0, True)
    assert telemetry._batchers[0]._worker.is_alive()
    for i in range(5):
        telemetry.events.emit("robot.dds.command", {"robot.dds.seq": 20 + i})
    assert telemetry.force_flush(10_000)
    assert stats_of(telemetry, "killonce").exported == 5 and len(sink.records) == 5
    assert telemetry.shutdown(10_000)


def test_shutdown_reports_a_worker_that_died() -> None:
    sink = KillOnceSink()
    telemetry = pipeline_with(sink, blrp_max_export_batch_size=10)
    _kill_batch_worker(telemetry, sink)
    assert telemetry.shutdown(10_000) is False
    assert stats_of(telemetry, "killonce").reconciles


# -- public recording calls --------------------------------------------------------------------


@pytest.fixture
def cap() -> Iterator[testing.Capture]:
    with testing.capture() as capture:
        yield capture


def _collector(cap: testing.Capture) -> TelemetryCollector:
    return TelemetryCollector(telemetry=cap.telemetry)


def _subscribed(cap: testing.Capture) -> TelemetryCollector:
    collector = _collector(cap)
    collector.subscribe(lambda event: None)
    return collector


def _emit_unprintable(cap: testing.Capture) -> None:
    collector = _collector(cap)
    collector.enable()
    collector.emit(Hostile(), Hostile(), {"detail": Hostile()})  # type: ignore[arg-type]
    collector.emit("dds", "state_update", {HostileStr(): 1})


def _hostile_inference(cap: testing.Capture) -> None:
    logger = TelemetryLogger(cap.telemetry)
    assert logger.record_load(Hostile(), 1.0) is False  # type: ignore[arg-type]
    assert logger.record_load("m", 1.0, success=Hostile()) is False  # type: ignore[arg-type]
    assert logger.record_vram_check(Hostile(), 1.0, used_mb=1.0, total_mb=2.0) is False  # type: ignore[arg-type]
    assert logger.record_thought("m", 1.0, Hostile()) is False  # type: ignore[arg-type]


def _numpy_iteration(cap: testing.Capture) -> None:
    with fda.run("hostile_flow", telemetry=cap.telemetry, flush_timeout_millis=0) as run:
        run.iteration(iter=0, phase="RED", E=np.array([1.0, 2.0]), grad_norm=0.5, eta_dd=0.2, gamma=0.1,
                      alpha=0.01, phi_residual=1e-3, invariant_drift_max=0.0)  # fmt: skip
        run.event("NOTE", {"deep": deep_dict(), "text": "\udfff"})
        run.event("NOTE", {"bad": Hostile()})


def _unhashable_node(cap: testing.Capture) -> None:
    meters = FlowMeters(cap.telemetry)
    meters.node([1, 2]).arrivals()  # type: ignore[arg-type]
    meters.node(Hostile()).served(2)  # type: ignore[arg-type]
    meters.node("ok").record(Hostile(), 1)  # type: ignore[arg-type]
    meters.node("ok").arrivals(10**400)
    meters.node("ok").arrivals(1, class_id=[1])  # type: ignore[arg-type]
    assert meters.invalid == 5


PUBLIC_CALLS: dict[str, Callable[[testing.Capture], Any]] = {
    "log_feedback(angles={'angle²': 1.0})": lambda cap: _collector(cap).log_feedback(angles={"angle²": 1.0}),
    "log_smoother_tick(5)": lambda cap: _collector(cap).log_smoother_tick(5),  # type: ignore[arg-type]
    "log_camera_health('cam', [1, 2]) subscribed": lambda cap: _subscribed(cap).log_camera_health(
        "cam",
        [1, 2],  # type: ignore[arg-type]
    ),
    "TelemetryCollector.emit with unprintable objects": _emit_unprintable,
    "record_load/record_vram_check with unprintable objects": _hostile_inference,
    "run.iteration(E=np.array([1., 2.])) and unrepresentable run events": _numpy_iteration,
    "FlowMeters.node(<unhashable>) and unusable values": _unhashable_node,
}


@pytest.mark.parametrize("call", sorted(PUBLIC_CALLS))
def test_public_recording_calls_never_raise(call: str, cap: testing.Capture) -> None:
    """Each call raised on main; now it returns, what it could not record is counted, books balance."""
    PUBLIC_CALLS[call](cap)
    cap.flush()
    books_balance(cap.telemetry)


def test_feedback_with_odd_angle_names_keeps_the_good_ones(cap: testing.Capture) -> None:
    _collector(cap).log_feedback(seq=1, funcode=1, angles={"angle²": 1.0, "angle3": 3.0, "j٣": 4.0})
    cap.flush()
    (event,) = cap.events("robot.dds.feedback")
    assert event["robot.angle3"] == 3.0 and "robot.angle2" not in event


def test_a_call_that_cannot_record_is_counted_failed(cap: testing.Capture) -> None:
    _collector(cap).log_smoother_tick(5)  # type: ignore[arg-type]
    _collector(cap).log_smoother_tick([{"joint_id": 1, "target": 1.0, "current": 1.0, "sent": 1.0}, 7])
    assert TelemetryLogger(cap.telemetry).record_load(Hostile(), 1.0) is False  # type: ignore[arg-type]
    cap.flush()
    events = stats_of(cap.telemetry, "events")
    assert (events.emitted, events.exported, events.failed) == (4, 1, 3)


def test_unprintable_exception_inside_a_run_propagates_unchanged(cap: testing.Capture) -> None:
    """The user's own exception comes out as it went in, and the run is still closed."""
    error = UnprintableError()
    with pytest.raises(UnprintableError) as raised, fda.run("hostile_flow", telemetry=cap.telemetry):
        raise error
    assert raised.value is error
    cap.flush()
    finished = [e for e in cap.events(fda_v.RUN_EVENT) if e[fda_v.EVENT] == fda_v.RUN_FINISHED]
    assert len(finished) == 1 and '"status":"failed"' in finished[0][fda_v.PAYLOAD]
    assert "UnprintableError" in finished[0][fda_v.PAYLOAD]


def _unwritable_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A working directory where ``data/telemetry.db`` cannot be created (even by root: a file is
    where the ``data`` folder would go)."""
    (tmp_path / "data").write_text("not a folder")
    tmp_path.chmod(0o555)
    monkeypatch.chdir(tmp_path)


def test_collector_on_a_read_only_working_directory_does_not_raise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _unwritable_cwd(tmp_path, monkeypatch)
    try:
        collector = get_collector()
        collector.log_command(seq=1, funcode=1)
        assert collector.flush(10_000) is False  # the write failed, and the flush says so
        sqlite = stats_of(collector.telemetry, "sqlite")
        assert sqlite.failed == 1 and sqlite.reconciles
        standalone = TelemetryCollector(db_path=tmp_path / "data" / "x.db")
        standalone.close()
    finally:
        tmp_path.chmod(0o755)


def test_overload_policy_never_compares_a_callers_value() -> None:
    """The full-queue path reads the FDA mode the caller gave: a hostile one is not compared."""
    assert _overload.domain_of("fda.iteration", {fda_v.MODE: Hostile()}) == "fda.production"
    assert _overload.domain_of(Hostile(), {fda_v.MODE: "dev"}) == "other"


def test_camera_reporter_skips_only_the_camera_it_cannot_read(cap: testing.Capture) -> None:
    class BrokenMonitor:
        @property
        def stats(self) -> dict[str, Any]:
            raise RuntimeError("SECRET-camera")

    reporter = CameraHealthReporter(
        {"cam0": {"actual_fps": 5.0}, HostileStr(): {"actual_fps": 1.0}, "cam2": BrokenMonitor()},
        _collector(cap),
    )
    assert reporter.report() == 1
    cap.flush()
    assert [e["robot.camera.id"] for e in cap.events("robot.camera.health")] == ["cam0"]
