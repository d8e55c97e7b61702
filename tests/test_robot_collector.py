"""TelemetryCollector (spec 004): every call site lands as the spec's row, through OTel."""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from otel_tele.instrumentation.robot import (
    CameraHealthReporter,
    EventType,
    SmootherSampler,
    TelemetryCollector,
    TelemetryEvent,
    dds,
    get_collector,
)

import otel_tele
from otel_tele import testing

from ._robot_helpers import TABLES, count, rows, wait_for

SPEC_INDEXES = {
    "idx_dds_commands_ts",
    "idx_dds_commands_cid",
    "idx_dds_commands_funcode",
    "idx_dds_feedback_ts",
    "idx_dds_feedback_funcode",
    "idx_smoother_ts",
    "idx_smoother_joint",
    "idx_web_requests_ts",
    "idx_web_requests_endpoint",
    "idx_camera_health_ts",
    "idx_camera_health_cam",
    "idx_system_events_ts",
    "idx_system_events_type",
}


@pytest.fixture(autouse=True)
def _no_singleton() -> Iterator[None]:
    """Each test starts and ends without the process-wide collector."""
    dds.reset_collector()
    yield
    dds.reset_collector()


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[TelemetryCollector]:
    """A standalone collector writing tmp_path/data/telemetry.db."""
    with TelemetryCollector(db_path=tmp_path / "data" / "telemetry.db") as tc:
        yield tc


def test_schema_created_at_construction(tmp_path: Path) -> None:
    """Folder, exactly six tables, the spec's indexes, WAL and a schema version exist at once."""
    db = tmp_path / "nested" / "dir" / "telemetry.db"
    tc = TelemetryCollector(db_path=db)
    with sqlite3.connect(db) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        indexes = {
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='index' AND name NOT LIKE 'sqlite_%'"
            )
        }
        assert tables == set(TABLES)
        assert indexes == SPEC_INDEXES
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    tc.close()


def test_every_call_site_round_trips(collector: TelemetryCollector) -> None:
    """Typed methods, their original spellings and emit() produce exactly the spec's rows."""
    tc = collector
    cid = tc.new_correlation_id()
    assert len(cid) == 12 and int(cid, 16) >= 0
    tc.log_command(7, 1, 2, 45.5, {"id": 2, "angle": 45.5}, cid, 64)
    tc.log_dds_command(seq=8, funcode=2, data={"angles": [1, 2]})
    tc.log_feedback(9, 1, {f"angle{i}": float(i) for i in range(7)}, None)
    tc.log_dds_feedback(
        seq=10,
        funcode=3,
        status={"power_status": 1, "enable_status": 1, "error_status": 0, "recv_status": 1, "exec_status": 2},
    )
    tc.log_smoother_tick(
        [{"joint_id": 0, "target": 10.0, "current": 5.0, "sent": 6.0, "step_size": 1.0, "dirty": True}]
    )
    tc.log_smoother_state([{"joint_id": 6, "target": 30.0, "current": 30.0, "sent": 30.0, "dirty": False}])
    tc.log_web_request("/api/command/set-joint", "POST", {"joint": 2}, 12.5, 200, True, cid)
    tc.log_camera_health(
        "cam0",
        {
            "camera_id": "cam0",
            "connected": True,
            "actual_fps": 29.7,
            "target_fps": 30.0,
            "drop_count": 3,
            "stalled": False,
            "resolution": (1920, 1080),
            "motion_score": 0.1,
        },
    )
    tc.log_system_event("connect", "dds", "connected to arm", {"iface": "eth0"}, cid, "info")
    tc.close()
    db = tc.db_path
    assert db is not None
    assert rows(
        db, "dds_commands", "seq, funcode, joint_id, target_value, data_json, correlation_id, raw_len"
    ) == [(7, 1, 2, 45.5, '{"id":2,"angle":45.5}', cid, 64), (8, 2, None, None, '{"angles":[1,2]}', None, 0)]
    assert rows(db, "dds_feedback", "seq, funcode, angle0, angle3, angle6, power_status, exec_status") == [
        (9, 1, 0.0, 3.0, 6.0, None, None),
        (10, 3, None, None, None, 1, 2),
    ]
    assert rows(db, "smoother_state", "joint_id, target, current, sent, step_size, dirty") == [
        (0, 10.0, 5.0, 6.0, 1.0, 1),
        (6, 30.0, 30.0, 30.0, None, 0),
    ]
    assert rows(
        db, "web_requests", "endpoint, method, params_json, response_ms, status_code, correlation_id, ok"
    ) == [("/api/command/set-joint", "POST", '{"joint":2}', 12.5, 200, cid, 1)]
    assert rows(
        db,
        "camera_health",
        "camera_id, actual_fps, target_fps, drop_count, motion_score, connected, "
        "resolution_w, resolution_h, stalled",
    ) == [("cam0", 29.7, 30.0, 3, 0.1, 1, 1920, 1080, 0)]
    assert rows(db, "system_events", "event_type, source, detail, data_json, correlation_id, level") == [
        ("connect", "dds", "connected to arm", '{"iface":"eth0"}', cid, "info")
    ]
    ts, mono = rows(db, "dds_commands", "ts, ts_mono")[0]
    assert ts > 1e9 and mono > 0


def test_emit_routes_as_the_spec_says(collector: TelemetryCollector) -> None:
    """emit() is gated by enable(); each EventType goes to its table; WS_SEND is skipped."""
    tc = collector
    assert tc.emit("dds", EventType.DDS_PUBLISH, {"seq": 1, "funcode": 1}) is None  # disabled
    tc.enable()
    assert tc.enabled
    event = tc.emit(
        "dds",
        EventType.DDS_PUBLISH,
        {"seq": 1, "funcode": 1, "joint_id": 3, "target_value": 9.0, "data": {"id": 3}, "raw_len": 20},
        "c1",
    )
    assert isinstance(event, TelemetryEvent) and event.event_type is EventType.DDS_PUBLISH
    tc.emit("dds", EventType.DDS_RECEIVE, {"seq": 2, "funcode": 1, "angles": {"angle1": 11.0}})
    tc.emit("dds", EventType.DDS_RECEIVE, {"seq": 3, "funcode": 3, "status": {"power_status": 1}})
    tc.emit("web", EventType.CMD_SENT, {"endpoint": "/api/command/enable", "params": {"on": True}}, "c1")
    tc.emit("camera", EventType.CAM_FRAME, {"camera_id": "cam1", "actual_fps": 15.0})
    for kind in (
        EventType.ERROR,
        EventType.STATE_UPDATE,
        EventType.CMD_ACK,
        EventType.CMD_EXEC,
        EventType.WS_RECEIVE,
    ):
        tc.emit("dds", kind, {"detail": kind.value}, "c1")
    tc.emit("web", EventType.WS_SEND, {"state": "x"})
    tc.disable()
    tc.close()
    db = tc.db_path
    assert db is not None
    assert rows(db, "dds_commands", "seq, joint_id, target_value, raw_len, correlation_id") == [
        (1, 3, 9.0, 20, "c1")
    ]
    assert rows(db, "dds_feedback", "seq, funcode, angle1, power_status") == [
        (2, 1, 11.0, None),
        (3, 3, None, 1),
    ]
    assert rows(db, "web_requests", "endpoint, method, params_json, response_ms, ok") == [
        ("/api/command/enable", "POST", '{"on":true}', None, None)
    ]
    assert rows(db, "camera_health", "camera_id, actual_fps") == [("cam1", 15.0)]
    assert rows(db, "system_events", "event_type, level, detail, correlation_id") == [
        ("error", "error", "error", "c1"),
        ("state_update", "info", "state_update", "c1"),
        ("cmd_ack", "info", "cmd_ack", "c1"),
        ("cmd_exec", "info", "cmd_exec", "c1"),
        ("ws_receive", "info", "ws_receive", "c1"),
    ]


def test_legacy_reads_include_unflushed_events(tmp_path: Path) -> None:
    """get_events/get_pipeline/get_stats answer from SQLite and see events not yet written."""
    tc = TelemetryCollector(db_path=tmp_path / "t.db", batch_size=10_000, flush_interval_s=3600)
    tc.enable()
    tc.emit("web", EventType.CMD_SENT, {"endpoint": "/api/x"}, "cid1")
    tc.emit("dds", EventType.DDS_PUBLISH, {"seq": 1, "funcode": 1}, "cid1")
    tc.emit("dds", EventType.CMD_ACK, {"detail": "ack"}, "cid1")
    tc.log_system_event("estop", "web", "pressed", level="warning")
    events = tc.get_events(limit=10)
    assert [e.event_type for e in events] == [
        EventType.CMD_SENT,
        EventType.DDS_PUBLISH,
        EventType.CMD_ACK,
        "estop",
    ]
    assert [e.event_type for e in tc.get_events(event_type=EventType.CMD_ACK)] == [EventType.CMD_ACK]
    assert [e.source for e in tc.get_events(source="web")] == ["web", "web"]
    assert len(tc.get_events(limit=2)) == 2
    pipeline = tc.get_pipeline("cid1")
    assert [p["event"]["type"] for p in pipeline] == ["cmd_sent", "dds_publish", "cmd_ack"]
    assert pipeline[0]["latency_ms"] == 0.0 and all(p["latency_ms"] >= 0 for p in pipeline)
    stats = tc.get_stats()
    assert stats["total_events"] == 4
    assert stats["rates_per_sec"]["dds_publish"] == pytest.approx(0.1)
    assert stats["active_correlations"] == 1 and stats["staleness_ms"] is not None
    assert set(stats) == {
        "total_events",
        "rates_per_sec",
        "staleness_ms",
        "avg_pipeline_latency_ms",
        "active_correlations",
    }
    tc.close()


def test_batch_size_and_close_flush(tmp_path: Path) -> None:
    """A full batch is written without waiting for the interval; close() writes the rest."""
    db = tmp_path / "t.db"
    tc = TelemetryCollector(db_path=db, batch_size=20, flush_interval_s=3600)
    for i in range(25):
        tc.log_command(i, 1)
    wait_for(lambda: count(db, "dds_commands") >= 20, what="a full batch")
    assert count(db, "dds_commands") == 20  # the 5 left wait for the interval or close()
    tc.close()
    assert count(db, "dds_commands") == 25
    tc.close()  # idempotent
    tc.start()  # re-opens
    tc.log_command(99, 1)
    tc.stop()
    assert count(db, "dds_commands") == 26


def test_flush_interval_writes_a_partial_batch(tmp_path: Path) -> None:
    """A lone record is written once flush_interval_s passes, without close()."""
    db = tmp_path / "t.db"
    with TelemetryCollector(db_path=db, batch_size=1000, flush_interval_s=0.2) as tc:
        tc.log_system_event("connect", "dds")
        wait_for(lambda: count(db, "system_events") == 1, what="interval flush")


def test_sixteen_threads_exact_counts(collector: TelemetryCollector) -> None:
    """16 threads emitting every kind concurrently: every row is there, nothing more."""
    per_thread = 500
    barrier = threading.Barrier(16)
    collector.enable()

    def work(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            collector.log_command(t * per_thread + i, 1, t % 7, float(i))
            collector.log_feedback(i, 1, [float(t)] * 7, None)
            collector.emit("dds", EventType.STATE_UPDATE, {"detail": str(i)})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Exactness under concurrency, not the shutdown deadline, is under test: on a loaded 2-core
    # machine 24,000 rows can take longer than close()'s 10 s deadline (which would book them dropped).
    assert collector.flush(timeout_millis=300_000)
    collector.close()
    db = collector.db_path
    assert db is not None
    total = 16 * per_thread
    assert count(db, "dds_commands") == count(db, "dds_feedback") == count(db, "system_events") == total
    assert {r[0] for r in rows(db, "dds_commands", "seq")} == set(range(total))
    assert all(s.reconciles and s.dropped == 0 and s.failed == 0 for s in collector.telemetry.sink_stats())


def test_bad_input_never_raises_and_loses_nothing(collector: TelemetryCollector) -> None:
    """Unserialisable payloads, NaN/inf, 10 MB strings, non-UTF-8, wrong types, unknown types."""
    tc = collector
    tc.log_command(1, 1, 0, 1.0)
    tc.flush()
    tc.enable()

    class Weird:
        def __repr__(self) -> str:
            return "<weird>"

    tc.log_command(2, 1, 0, float("nan"), {"obj": Weird(), "set": {1, 2}, "bytes": b"\xff\xfe"})
    tc.log_feedback(3, 1, {"angle0": float("inf"), "angle1": float("nan"), "angle9": 1.0, "bogus": 2}, None)
    tc.log_feedback(4, 1, "not angles", "not status")
    tc.log_smoother_tick([{"joint_id": 1, "target": float("nan"), "current": 0.0, "sent": 0.0}, "junk", None])
    tc.log_smoother_tick(None)
    tc.log_system_event("log", "web", "x" * 10_000_000)
    tc.log_system_event(b"\xff\xfeevent", b"src\x80", "\udcff lone surrogate")
    tc.log_web_request(123, None, Weird(), "slow", "200", "yes")
    tc.log_camera_health(None, 42)
    tc.emit("dds", "no_such_type", ["not", "a", "dict"])
    tc.emit(object(), 12345, None)
    tc.emit("dds", EventType.DDS_PUBLISH, {"seq": "abc", "funcode": None})
    tc.close()
    db = tc.db_path
    assert db is not None
    commands = rows(db, "dds_commands", "seq, target_value, data_json")
    assert commands[0] == (1, 1.0, None) and commands[1][1] is None  # NaN stored as NULL
    assert "<weird>" in commands[1][2]
    assert rows(db, "dds_feedback", "angle0, angle1") == [(math.inf, None), (None, None)]
    assert count(db, "smoother_state") == 0  # NaN target cannot be stored in a NOT NULL column: rejected
    events = rows(db, "system_events", "event_type, source, detail")
    assert len(events[0][2]) == 10_000_000
    assert events[1][0] == "\\xff\\xfeevent" and events[1][1] == "src\\x80"
    assert [e[0] for e in events[2:]] == ["no_such_type", "12345"]
    web = rows(db, "web_requests", "endpoint, method, params_json, status_code")
    assert web[0][0] == "123" and web[0][3] == 200
    assert rows(db, "camera_health", "camera_id") == [("",)]
    logs = next(s for s in tc.telemetry.sink_stats() if s.signal == "logs" and s.sink == "sqlite")
    assert logs.failed == 1 and logs.reconciles  # the NaN smoother state, counted


def test_metrics_and_log_records_from_the_vocabulary() -> None:
    """Commands, feedback and requests feed counters; camera snapshots feed fps/drop gauges."""
    with testing.capture() as cap:
        tc = TelemetryCollector(telemetry=cap.telemetry)
        for funcode in (1, 1, 2):
            tc.log_command(1, funcode)
        tc.log_feedback(1, 1, [0.0] * 7, None)
        tc.log_web_request("/api/x", "GET", None, 1.0, 200, True)
        tc.log_camera_health("cam0", {"actual_fps": 24.5, "drop_count": 7})
        cap.flush()
        assert cap.metric_value("robot.dds.commands", **{"robot.dds.funcode": 1}) == 2
        assert cap.metric_value("robot.dds.feedback") == 1
        assert cap.metric_value("robot.web.requests", **{"http.route": "/api/x"}) == 1
        assert cap.metric_value("robot.camera.fps", **{"robot.camera.id": "cam0"}) == 24.5
        assert cap.metric_value("robot.camera.drops", **{"robot.camera.id": "cam0"}) == 7
        assert cap.events("robot.dds.command")[0]["robot.dds.funcode"] == 1


def test_subscribers(collector: TelemetryCollector) -> None:
    """Listeners get each event as a dict; a failing listener is ignored; unsubscribe stops it."""
    seen: list[dict[str, Any]] = []

    def broken(_event: dict[str, Any]) -> None:
        raise RuntimeError("listener bug")

    collector.subscribe(broken)
    collector.subscribe(seen.append)
    collector.enable()
    collector.emit("dds", EventType.CMD_ACK, {"detail": "ok"}, "c")
    collector.log_command(1, 1)
    collector.unsubscribe(seen.append)
    collector.log_command(2, 1)
    assert [e["event_type"] for e in seen] == ["cmd_ack", "dds_publish"]
    assert set(seen[0]) == {
        "timestamp_ms",
        "wall_time_ms",
        "source",
        "event_type",
        "payload",
        "correlation_id",
    }


def test_get_collector_without_setup_uses_spec_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No setup(): a started singleton writing data/telemetry.db under the working directory."""
    monkeypatch.chdir(tmp_path)
    tc = get_collector()
    assert get_collector() is tc
    tc.log_command(1, 1)
    tc.flush()
    assert count(tmp_path / "data" / "telemetry.db", "dds_commands") == 1


def test_get_collector_follows_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After setup(), get_collector() emits through the global pipeline, even if created before."""
    monkeypatch.chdir(tmp_path)
    early = get_collector()
    early.log_command(1, 1)
    telemetry = otel_tele.setup(sinks=["sqlite"], data_dir=tmp_path / "tel")
    tc = get_collector()
    assert tc is early and tc.telemetry is telemetry
    tc.log_command(2, 1)
    telemetry.force_flush(10_000)
    assert count(tmp_path / "data" / "telemetry.db", "dds_commands") == 1
    assert count(tmp_path / "tel" / "telemetry.db", "dds_commands") == 1
    assert [e.payload["seq"] for e in tc.get_events()] == [2]


def test_smoother_sampler_and_camera_reporter(collector: TelemetryCollector) -> None:
    """Every 5th smoother tick logs the dirty joints; camera snapshots go out every interval."""
    sampler = SmootherSampler(collector)
    states = [
        {"joint_id": 0, "target": 1.0, "current": 0.0, "sent": 0.1, "dirty": True},
        {"joint_id": 1, "target": 1.0, "current": 1.0, "sent": 1.0, "dirty": False},
    ]
    logged = [sampler.tick(lambda: states) for _ in range(20)]
    assert logged.count(True) == 4 and logged[4] and not logged[3]

    class Monitor:
        stats = {"actual_fps": 30.0, "drop_count": 0, "connected": True, "resolution": (640, 480)}

    reporter = CameraHealthReporter({"cam0": Monitor(), "cam1": {"actual_fps": 5.0}}, collector)
    assert reporter.interval_s == 5.0
    assert reporter.poll(now=100.0) and not reporter.poll(now=104.0) and reporter.poll(now=105.0)
    reporter.interval_s = 0.01
    reporter.start()
    wait_for(lambda: reporter.snapshots >= 6, what="camera reporter thread")
    reporter.stop()
    collector.close()
    db = collector.db_path
    assert db is not None
    assert rows(db, "smoother_state", "joint_id") == [(0,)] * 4
    assert count(db, "camera_health") == reporter.snapshots
    with pytest.raises(ValueError):
        SmootherSampler(collector, every_n=0)


def test_constructor_rejects_bad_arguments(tmp_path: Path) -> None:
    """Bad constructor arguments raise ValueError (setup time, not the hot path)."""
    for kwargs in (
        {"batch_size": 0},
        {"batch_size": 1.5},
        {"flush_interval_s": 0},
        {"flush_interval_s": math.nan},
    ):
        with pytest.raises(ValueError):
            TelemetryCollector(db_path=tmp_path / "x.db", **kwargs)


def test_payload_dict_is_copied(collector: TelemetryCollector) -> None:
    """A caller reusing its data dict after the call does not change what was recorded."""
    data = {"angle": 1.0}
    collector.log_command(1, 1, 0, 1.0, data)
    data["angle"] = 2.0
    collector.close()
    assert collector.db_path is not None
    assert json.loads(rows(collector.db_path, "dds_commands", "data_json")[0][0]) == {"angle": 1.0}


def test_get_events_returns_what_was_emitted(tmp_path: Path) -> None:
    """The original's tests: an event comes back with the caller's source and flat payload (the
    web_requests row has no source column and nests the payload under params_json), once."""
    db = tmp_path / "t.db"
    with TelemetryCollector(db_path=db) as tc:
        tc.enable()
        tc.emit("cam", EventType.CMD_SENT, {"endpoint": "/api/snap", "exposure": 3}, "c1")
        tc.emit("web", EventType.CMD_SENT, {"endpoint": "/api/move"}, "c2")
        tc.log_web_request("/api/typed", "GET", None, 1.0, 200, True, "c3")
        (cam,) = tc.get_events(source="cam")
        assert (cam.source, cam.event_type, cam.correlation_id) == ("cam", EventType.CMD_SENT, "c1")
        assert cam.payload == {"endpoint": "/api/snap", "exposure": 3}
        assert [e.payload.get("endpoint") for e in tc.get_events(source="web")] == ["/api/move", "/api/typed"]
        assert len(tc.get_events()) == 3  # the stored rows of emitted events are not listed twice
        assert [p["event"]["source"] for p in tc.get_pipeline("c1")] == ["cam"]
        tc.flush()
        assert count(db, "web_requests") == 3  # still stored in the spec's table


def test_stats_count_every_emitted_type_including_ws_send(tmp_path: Path) -> None:
    """WS_SEND is not stored (spec) but counted in rates_per_sec and total_events, as the original did."""
    with TelemetryCollector(db_path=tmp_path / "t.db") as tc:
        tc.enable()
        for _ in range(5):
            tc.emit("ws", EventType.WS_SEND, {"clients": 2})
        tc.emit("dds", EventType.DDS_PUBLISH, {"seq": 1, "funcode": 1})
        tc.emit("dds", EventType.DDS_PUBLISH, {"seq": 2, "funcode": 1})
        stats = tc.get_stats()
        assert stats["rates_per_sec"]["ws_send"] == pytest.approx(0.5)
        assert stats["rates_per_sec"]["dds_publish"] == pytest.approx(0.2)
        assert stats["total_events"] == 7 and stats["staleness_ms"] is not None
        assert len(tc.get_events(event_type=EventType.WS_SEND)) == 5
        tc.flush()
        assert sum(count(tmp_path / "t.db", table) for table in TABLES) == 2


def test_maxlen_is_the_live_window(tmp_path: Path) -> None:
    """TelemetryCollector(maxlen=N) keeps the last N emitted events as emitted; older ones come back
    from the database as stored, none lost or doubled."""
    with TelemetryCollector(db_path=tmp_path / "t.db", maxlen=3) as tc:
        tc.enable()
        for n in range(5):
            tc.emit("arm", EventType.CMD_ACK, {"n": n})
        events = tc.get_events()
        assert len(events) == 5 and all(e.event_type is EventType.CMD_ACK for e in events)
        assert [e.payload for e in events[2:]] == [{"n": 2}, {"n": 3}, {"n": 4}]  # as emitted
        assert [e.payload["data"] for e in events[:2]] == [{"n": 0}, {"n": 1}]  # as stored
        assert [e.payload for e in tc.get_events(limit=2)] == [{"n": 3}, {"n": 4}]
    for bad in (-1, "5", 2.5, True):
        with pytest.raises(ValueError, match="maxlen"):
            TelemetryCollector(db_path=tmp_path / "bad.db", maxlen=bad)  # type: ignore[arg-type]


def test_setup_builds_a_named_sink_from_sink_options(tmp_path: Path) -> None:
    """What the standalone collector is built on: ``setup(local=True, sink_options=...)`` builds the
    named sink from its class's arguments (here a database path of any name); a wrong argument is a
    clear error at setup."""
    db = tmp_path / "elsewhere" / "robot.db"
    quiet = {"traces_exporter": "none", "metrics_exporter": "none", "logs_exporter": "none"}
    telemetry = otel_tele.setup(local=True, sinks="sqlite", sink_options={"sqlite": {"db_path": db}}, **quiet)
    try:
        assert telemetry.sinks["sqlite"].location() == str(db)
        telemetry.events.emit("robot.system.event", {"robot.system.event_type": "enable"})
        assert telemetry.flush_sink("sqlite", timeout_millis=10_000)
        assert count(db, "system_events") == 1
    finally:
        telemetry.shutdown()
    with pytest.raises(TypeError, match="no_such_argument"):
        otel_tele.setup(local=True, sinks="sqlite", sink_options={"sqlite": {"no_such_argument": 1}}, **quiet)
