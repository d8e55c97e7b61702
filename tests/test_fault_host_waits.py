"""The host never waits for what it did not ask for (issue 10 §5).

A collector and a database host that accept TCP connections and never answer (made here, on
loopback). Structural checks: a domain helper that reads or completes its own storage flushes its own
sink only, so the hung collector is never even contacted by it; ``setup()`` opens no connection.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from otel_tele.instrumentation import fda
from otel_tele.instrumentation.inference import TelemetryLogger
from otel_tele.instrumentation.robot import TelemetryCollector

from otel_tele import Telemetry

from ._dead_peers import HungPeer, hung_listener
from .sink_samples.capsule import CORE
from .test_sink_contract import run_bounded, sink_pipeline, stats_of

#: Generous: the bug is a 5-20 s wait per call; the checks that matter are structural.
NOT_BLOCKED_S = 2.0


@pytest.fixture
def collector() -> Iterator[HungPeer]:
    with hung_listener() as peer:
        yield peer


def _pipeline(sink: str, data_dir: Path, collector: HungPeer) -> Telemetry:
    """One sink and OTLP logs to the hung collector; OTLP exports only when flushed (no schedule)."""
    return sink_pipeline(
        sink,
        data_dir,
        logs_exporter="otlp",
        otlp_protocol="http/protobuf",
        otlp_endpoint=f"http://127.0.0.1:{collector.port}",
        otlp_timeout_millis=10_000,
        blrp_schedule_delay_millis=600_000,
    )


def _otlp_untouched(telemetry: Telemetry, collector: HungPeer, emitted: int) -> None:
    """The OTLP processor was not flushed: nothing reached the collector, its records still queued."""
    assert collector.connections == 0
    otlp = stats_of(telemetry, "otlp")
    assert (otlp.queued, otlp.exported, otlp.failed) == (emitted, 0, 0), otlp


def _close(telemetry: Telemetry) -> None:
    run_bounded(lambda: telemetry.shutdown(1_000), 30)


def test_fda_run_end_flushes_the_capsule_sink_only(tmp_path: Path, collector: HungPeer) -> None:
    telemetry = _pipeline("capsule", tmp_path, collector)
    try:
        started = time.monotonic()
        with fda.run("hostwait_flow", telemetry=telemetry, units={}, method={}) as run:
            for i in range(50):
                run.iteration(iter=i, **CORE)
        assert time.monotonic() - started < NOT_BLOCKED_S
        capsule = stats_of(telemetry, "capsule")
        assert capsule.queued == 0 and capsule.exported == capsule.emitted > 50, capsule
        _otlp_untouched(telemetry, collector, capsule.emitted)
    finally:
        _close(telemetry)


def test_inference_queries_flush_the_inference_sink_only(tmp_path: Path, collector: HungPeer) -> None:
    telemetry = _pipeline("postgres", tmp_path, collector)
    try:
        logger = TelemetryLogger(telemetry)
        for i in range(20):
            logger.record_thought("model-a", 0.01 * (i + 1), 10 + i, prompt_tokens=5)
        started = time.monotonic()
        assert logger.query("footprint")["row_count"] == 20
        assert time.monotonic() - started < NOT_BLOCKED_S
        _otlp_untouched(telemetry, collector, 20)
    finally:
        _close(telemetry)


def test_robot_reads_flush_the_sqlite_sink_only(tmp_path: Path, collector: HungPeer) -> None:
    telemetry = _pipeline("sqlite", tmp_path, collector)
    try:
        robot = TelemetryCollector(telemetry=telemetry)
        for i in range(30):
            robot.log_command(seq=i, funcode=1, joint_id=i % 7, target_value=float(i), data={"i": i})
        started = time.monotonic()
        assert len(robot.get_events(limit=100)) == 30
        assert robot.flush(10_000)
        assert time.monotonic() - started < NOT_BLOCKED_S
        _otlp_untouched(telemetry, collector, 30)
    finally:
        _close(telemetry)


def test_setup_opens_no_connection_to_the_database(tmp_path: Path) -> None:
    """A PostgreSQL host that accepts TCP and never answers: setup() neither connects nor waits."""
    with hung_listener() as database:
        started = time.monotonic()
        dsn = f"postgresql://app@127.0.0.1:{database.port}/telemetry"
        telemetry = sink_pipeline("postgres", tmp_path, postgres_dsn=dsn)
        try:
            assert time.monotonic() - started < NOT_BLOCKED_S
            assert database.connections == 0
            (where,) = [where for _signal, name, where in telemetry.destinations if name == "sink:postgres"]
            assert str(database.port) in where
        finally:
            _close(telemetry)


def test_flush_sink_still_stores_what_was_emitted(tmp_path: Path) -> None:
    """flush_sink is a real flush of that sink: afterwards the rows are in the database."""
    telemetry = sink_pipeline("sqlite", tmp_path, blrp_schedule_delay_millis=600_000)
    try:
        for i in range(10):
            telemetry.events.emit("robot.dds.command", {"robot.dds.seq": i, "robot.dds.funcode": 1})
        assert telemetry.flush_sink("sqlite", 10_000)
        with sqlite3.connect(tmp_path / "telemetry.db") as conn:
            assert conn.execute("SELECT count(*) FROM dds_commands").fetchone() == (10,)
    finally:
        _close(telemetry)
