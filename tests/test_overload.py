"""Issue 10 §6 and §8: bounded memory under caller-controlled values, and the overload policy.

Overload is made certain, not timed: tiny queues, and a sink that holds its first write until the test
releases it (``HangingSink``), so a burst must either wait or drop.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from otel_tele.exporters.capsule import CapsuleSink
from otel_tele.exporters.capture import CaptureMetricExporter, CaptureSink, Grid
from otel_tele.exporters.capture.schema import CARDINALITY_OVERFLOW
from otel_tele.instrumentation import fda
from otel_tele.instrumentation.flow import FlowMeters

import otel_tele
from otel_tele import SinkLogExporter, Telemetry, _overload
from otel_tele._components import SINKS
from otel_tele._settings import resolve
from otel_tele.runs import Runs
from otel_tele.semconv import fda as v

from ._fake_sinks import HangingSink
from .sink_samples.capsule import CORE
from .test_sink_contract import _sample, run_bounded, stats_of

TINY = {"event_queue_size": 64, "blrp_max_queue_size": 64, "blrp_max_export_batch_size": 16}
QUIET = {"traces_exporter": "none", "metrics_exporter": "none", "logs_exporter": "none"}


def gated(sink: Any, **options: Any) -> Telemetry:
    """A private pipeline whose only log destination is ``sink``, with tiny queues, and an in-memory
    metric reader (``telemetry.metric_reader``) for its self-metrics."""
    settings = resolve({**QUIET, "sinks": "none", **TINY, **options})
    reader = InMemoryMetricReader()
    telemetry = Telemetry(
        settings, local=True, extra_exporters={"logs": [SinkLogExporter(sink)], "metrics": [reader]}
    )
    telemetry.metric_reader = reader  # type: ignore[attr-defined]
    return telemetry


def metric_points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    return [
        point
        for resource_metrics in (data.resource_metrics if data else [])
        for scope in resource_metrics.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


class GatedCapsule(CapsuleSink):
    """The real capsule sink, whose writes wait until ``release`` is set."""

    name = "capsule"

    def __init__(self, root: Path) -> None:
        super().__init__(root, fsync=False)
        self.release = threading.Event()

    def write_logs(self, records: Any) -> int | None:
        self.release.wait()
        return super().write_logs(records)


def only_run(root: Path) -> tuple[dict[str, Any], int]:
    """The manifest and the file's row count of the one production run under ``root``."""
    (run_dir,) = (root / "runs").glob("fda_run_*")
    from otel_tele.exporters.capsule import schema

    return schema.read_manifest(run_dir / "manifest.toml"), pq.read_metadata(
        run_dir / "telemetry.parquet"
    ).num_rows


# -- §8 the policy table ------------------------------------------------------------------------------
def test_policy_table_is_declared_once_and_overridable() -> None:
    assert {p.domain for p in _overload.POLICIES} >= {
        "fda.production",
        "fda.dev",
        "fda.tuner",
        "robot",
        "inference",
        "flow",
        "otlp",
    }
    assert _overload.DEFAULTS["fda.production"] == "wait" and _overload.DEFAULTS["robot"] == "drop"
    settings = resolve({"overload": "robot=wait", "overload_max_wait_ms": 250})
    pipeline = Telemetry(settings, local=True)
    try:
        assert pipeline.overload.modes["robot"] == "wait"
        assert pipeline.overload.wait_s("robot") == 0.25 and pipeline.overload.wait_s("inference") == 0
    finally:
        pipeline.shutdown(5_000)
    with pytest.raises(ValueError, match="domain=wait"):
        resolve({"overload": "robot=maybe"})
    assert resolve({}, {"OTEL_TELE_OVERLOAD": "nonsense"}).overload == {}  # env typo: default kept


def test_domains_of_events() -> None:
    assert _overload.domain_of(v.ITERATION, {v.MODE: "production"}) == "fda.production"
    assert _overload.domain_of(v.ITERATION, {v.MODE: "dev"}) == "fda.dev"
    assert _overload.domain_of(v.RUN_EVENT, {v.MODE: "dev"}) == "fda.events"
    assert _overload.domain_of("robot.dds.command", {}) == "robot"
    assert _overload.domain_of("inference.request", None) == "inference"
    assert _overload.domain_of("custom", {}) == "other"
    assert _overload.domain_of(object(), {}) == "other"


# -- §8 robot: drop and count, visibly; lossless on request -----------------------------------------
def test_robot_burst_past_the_queue_is_dropped_counted_and_warned(caplog: pytest.LogCaptureFixture) -> None:
    sink = HangingSink()
    telemetry = gated(sink)
    with caplog.at_level(logging.WARNING, logger="otel_tele"):
        for i in range(2_000):  # the sink holds its first batch: both queues fill, the rest drops
            telemetry.events.emit("robot.dds.command", {"robot.dds.seq": i, "robot.dds.funcode": 1})
        sink.release.set()
        assert telemetry.force_flush(30_000)
    events, logs = stats_of(telemetry, "events"), stats_of(telemetry, "hanging")
    dropped = events.dropped + logs.dropped
    assert dropped > 0 and events.reconciles and logs.reconciles
    assert len(sink.records) == logs.exported == 2_000 - dropped
    assert telemetry.overload.snapshot()["robot"]["dropped"] == dropped
    warnings = [r.getMessage() for r in caplog.records if "overload:" in r.getMessage()]
    assert warnings and "robot records dropped" in warnings[0]
    seen = {
        p.attributes["otel_tele.domain"]: p.value
        for p in metric_points(telemetry.metric_reader, "otel_tele.overload.dropped")  # type: ignore[attr-defined]
    }
    assert seen["robot"] == dropped and seen["fda.production"] == 0
    telemetry.shutdown(5_000)


def _otlp_request(count: int) -> bytes:
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.common.v1 import common_pb2
    from opentelemetry.proto.logs.v1 import logs_pb2

    records = [
        logs_pb2.LogRecord(
            event_name="robot.dds.command",
            attributes=[common_pb2.KeyValue(key="robot.dds.seq", value=common_pb2.AnyValue(int_value=i))],
        )
        for i in range(count)
    ]
    return logs_service_pb2.ExportLogsServiceRequest(
        resource_logs=[logs_pb2.ResourceLogs(scope_logs=[logs_pb2.ScopeLogs(log_records=records)])]
    ).SerializeToString()


@pytest.mark.parametrize("policy", ["otlp=wait", "otlp=drop"])
def test_otlp_ingest_waits_or_reports_what_it_dropped(policy: str) -> None:
    """otel-tele serve holds a request while the sinks drain (default); under drop, the sender learns
    from the OTLP partial success how many records were dropped, and the books say the same."""
    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

    from otel_tele._receiver import OtlpGrpcReceiver

    sink = HangingSink()
    telemetry = gated(sink, overload=policy, overload_max_wait_ms=60_000)
    receiver = OtlpGrpcReceiver(telemetry, "127.0.0.1:0")
    rejected = 0
    try:
        with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
            export = channel.unary_unary(
                "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                request_serializer=lambda raw: raw,
                response_deserializer=logs_service_pb2.ExportLogsServiceResponse.FromString,
            )
            if policy == "otlp=wait":
                sink.release.set()  # a slow sink, not a stuck one: the sender is held, nothing lost
            for _ in range(10):
                rejected += export(_otlp_request(100), timeout=60).partial_success.rejected_log_records
        sink.release.set()
        assert telemetry.force_flush(30_000)
    finally:
        receiver.stop()
    books = stats_of(telemetry, "hanging")
    assert books.reconciles and books.dropped == rejected
    assert len(sink.records) == 1_000 - rejected
    if policy == "otlp=wait":
        assert rejected == 0
    else:
        assert rejected > 0 and telemetry.overload.snapshot()["otlp"]["dropped"] == rejected
    telemetry.shutdown(5_000)


def test_robot_wait_policy_is_lossless() -> None:
    sink = HangingSink()
    telemetry = gated(sink, overload="robot=wait")
    sink.release.set()
    for i in range(3_000):
        telemetry.events.emit("robot.dds.command", {"robot.dds.seq": i, "robot.dds.funcode": 1})
    assert telemetry.force_flush(30_000)
    assert len(sink.records) == 3_000
    assert stats_of(telemetry, "events").dropped == stats_of(telemetry, "hanging").dropped == 0
    telemetry.shutdown(5_000)


# -- §8 FDA: production lossless, manifests tell the truth ------------------------------------------
def test_production_run_waits_for_room_and_records_every_row(tmp_path: Path) -> None:
    sink = CapsuleSink(tmp_path, fsync=False)
    telemetry = gated(sink)
    with fda.run("flow_a", telemetry=telemetry, units={}, method={}) as run:
        for i in range(5_000):  # ~80 queue lengths: without backpressure most would drop
            run.iteration(iter=i, **CORE)
    manifest, rows = only_run(tmp_path)
    assert rows == 5_000 and manifest["status"] == "completed"
    assert manifest["summary"]["rows_recorded"] == 5_000 and manifest["summary"]["rows_dropped"] == 0
    assert stats_of(telemetry, "events").dropped == 0
    assert telemetry.overload.snapshot()["fda.production"]["waited_s"] > 0
    telemetry.shutdown(5_000)


def test_a_run_that_lost_rows_says_so_and_is_not_completed(tmp_path: Path) -> None:
    sink = GatedCapsule(tmp_path)
    telemetry = gated(sink, overload="fda.production=drop")
    with fda.run("flow_a", telemetry=telemetry, units={}, method={}) as run:
        for i in range(2_000):
            run.iteration(iter=i, **CORE)
        sink.release.set()  # the run's end event (policy wait) then finds room
    assert telemetry.force_flush(30_000)
    manifest, rows = only_run(tmp_path)
    summary = manifest["summary"]
    assert 0 < rows < 2_000
    assert summary["rows_emitted"] == 2_000
    assert (summary["rows_recorded"], summary["rows_dropped"]) == (rows, 2_000 - rows)
    assert manifest["status"] == summary["status"] == v.COMPLETED_WITH_LOSS
    listed = {r["run_id"]: r for r in Runs(tmp_path).list()}
    assert [r["status"] for r in listed.values()] == [v.COMPLETED_WITH_LOSS]
    telemetry.shutdown(5_000)


def test_production_wait_is_bounded_then_drops_and_counts(tmp_path: Path) -> None:
    """A stuck sink costs the solver one maximum wait, then rows are dropped and counted."""
    sink = GatedCapsule(tmp_path)
    telemetry = gated(sink, overload_max_wait_ms=100)
    with fda.run("flow_a", telemetry=telemetry, units={}, method={}, flush_timeout_millis=0) as run:
        for i in range(1_000):
            run.iteration(iter=i, **CORE)
        seen = telemetry.overload.snapshot()["fda.production"]
        sink.release.set()
    assert seen["wait_timeouts"] >= 1 and seen["dropped"] > 0
    assert telemetry.force_flush(30_000)
    manifest, rows = only_run(tmp_path)
    assert manifest["summary"]["rows_dropped"] == 1_000 - rows > 0
    assert manifest["status"] == v.COMPLETED_WITH_LOSS
    events, logs = stats_of(telemetry, "events"), stats_of(telemetry, "capsule")
    assert events.reconciles and logs.reconciles
    assert events.dropped + logs.dropped == telemetry.overload.snapshot()["fda.production"]["dropped"]
    assert events.dropped + logs.dropped == 1_000 - rows
    telemetry.shutdown(5_000)


def test_dev_run_drops_under_overload_and_its_end_event_tells_the_truth(tmp_path: Path) -> None:
    sink = GatedCapsule(tmp_path)
    telemetry = gated(sink)
    with fda.run("flow_a", mode="dev", telemetry=telemetry, units={}, method={}, sample_first=5_000) as run:
        for i in range(2_000):
            run.iteration(iter=i, **CORE)
        sink.release.set()
    assert telemetry.force_flush(30_000)
    ends = Runs(tmp_path).list()
    assert [r["status"] for r in ends] == [v.COMPLETED_WITH_LOSS]
    assert telemetry.overload.snapshot()["fda.dev"]["dropped"] > 0
    telemetry.shutdown(5_000)


# -- §8 visible in doctor --------------------------------------------------------------------------
def test_doctor_shows_the_policy_and_queue_full_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from otel_tele.cli import main

    data_dir = tmp_path / "telemetry"
    sink = HangingSink()
    telemetry = gated(sink, data_dir=data_dir, sinks="sqlite", service_name="arm")
    for i in range(2_000):
        telemetry.events.emit("robot.dds.command", {"robot.dds.seq": i, "robot.dds.funcode": 1})
    sink.release.set()
    assert telemetry.force_flush(30_000)
    telemetry.shutdown(5_000)
    monkeypatch.setenv("OTEL_TELE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("OTEL_TELE_OVERLOAD", "inference=wait")
    out = _run_cli(main, ["doctor", "--format", "json"])
    policy = {row["domain"]: row for row in out["overload_policy"]}
    assert policy["inference"]["policy"] == "wait" and policy["inference"]["source"] == "OTEL_TELE_OVERLOAD"
    assert policy["robot"]["policy"] == "drop"
    (seen,) = [row for row in out["overloads"] if row["domain"] == "robot"]
    assert seen["service"] == "arm" and seen["dropped"] > 0


def _run_cli(main: Any, argv: list[str]) -> Any:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(argv) == 0
    return json.loads(buffer.getvalue())


# -- §8 every registered sink: books equal storage under a burst -----------------------------------
@pytest.mark.parametrize("name", sorted(SINKS))
@pytest.mark.parametrize("lossless", [False, True], ids=["default-policy", "all-wait"])
def test_registered_sink_under_overload_books_equal_storage(
    name: str, lossless: bool, tmp_path: Path
) -> None:
    sample = _sample(name)
    data_dir = tmp_path / "telemetry"
    overrides = {"overload": "robot=wait,inference=wait,fda.dev=wait,fda.tuner=wait"} if lossless else {}
    telemetry = otel_tele.setup(local=True, sinks=[name], data_dir=data_dir, **QUIET, **TINY, **overrides)
    try:
        sample.exercise(telemetry, 3_000)
        assert run_bounded(lambda: telemetry.force_flush(60_000), 120)
        books = {(s.sink, s.signal): s for s in telemetry.sink_stats()}
        for snap in books.values():
            assert snap.reconciles, snap
            assert snap.failed == 0, snap
        stored = sample.stored(data_dir, telemetry)
        events = books[("events", "logs")]
        lost = events.dropped + sum(s.dropped for (sink, _), s in books.items() if sink == name)
        if lossless or name == "capsule":  # production FDA is lossless by default
            assert stored == 3_000 and lost == 0
        else:
            assert stored + lost == 3_000
    finally:
        assert run_bounded(lambda: telemetry.shutdown(30_000), 60)


# -- §6 bounded memory ----------------------------------------------------------------------------
def test_event_metric_running_totals_are_bounded_with_an_overflow_series() -> None:
    from otel_tele import testing

    with testing.capture(metric_cardinality_limit=50) as cap:
        for i in range(500):
            cap.telemetry.events.emit(
                "robot.dds.command", {"robot.dds.funcode": i, "robot.joint.id": 1, "robot.dds.seq": i}
            )
        cap.flush()
        overflow = cap.telemetry.events.metric_overflow
        assert overflow and all(count == 450 for count in overflow.values()), overflow
        data = cap.metric_reader.get_metrics_data()
        for resource_metrics in data.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    if metric.name not in overflow:
                        continue
                    points = metric.data.data_points
                    assert len(points) == 51
                    spill = [p for p in points if p.attributes.get("otel.metric.overflow") is True]
                    assert len(spill) == 1 and spill[0].value == 450
                    assert sum(p.value for p in points) == 500  # nothing lost, only folded


def test_open_production_runs_are_bounded_and_the_excess_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    telemetry = otel_tele.setup(
        local=True, sinks=["capsule"], data_dir=tmp_path, capsule_max_open_runs=5, **QUIET
    )
    with caplog.at_level(logging.ERROR, logger="otel_tele"):
        for i in range(12):
            telemetry.events.emit(
                v.RUN_EVENT,
                {
                    v.RUN_ID: f"fda_run_open_{i}",
                    v.FLOW_NAME: "f",
                    v.MODE: "production",
                    v.EVENT: v.RUN_STARTED,
                },
            )
        assert telemetry.force_flush(30_000)
    sink = telemetry.sinks["capsule"]
    assert isinstance(sink, CapsuleSink)
    assert len(sink._open) == 5 and sink.runs_refused == 7
    assert sink.describe()["runs_refused"] == 7
    assert stats_of(telemetry, "capsule").failed == 7
    assert len([p for p in (tmp_path / "telematry_cfs" / "runs").glob(".tmp-*") if p.is_dir()]) == 5
    assert sum("runs already open" in r.getMessage() for r in caplog.records) == 7
    telemetry.shutdown(10_000)


def _flow_pipeline(sink: CaptureSink, **options: Any) -> Telemetry:
    settings = resolve({**QUIET, "sinks": "none", "service_name": "orders", **options})
    return Telemetry(settings, local=True, extra_exporters={"metrics": [CaptureMetricExporter(sink)]})


def test_live_flow_capture_keeps_every_node_past_the_sdk_default(tmp_path: Path) -> None:
    sink = CaptureSink(tmp_path, grid=Grid(12, 5, "minutes"))
    telemetry = _flow_pipeline(sink)
    meters = FlowMeters(telemetry)
    for n in range(3_000):
        meters.node(f"node{n}").arrivals(1)
    assert telemetry.force_flush(30_000)
    window = sink.binner.checkpoint()
    assert window is not None
    nodes = {key[0] for key in window.series}
    assert len(nodes) == 3_000
    assert meters.overflow_series == 0
    assert stats_of(telemetry, "capture", "metrics").failed == 0
    telemetry.shutdown(10_000)


def test_live_flow_capture_past_its_limit_warns_in_the_bundle(tmp_path: Path) -> None:
    sink = CaptureSink(tmp_path, grid=Grid(12, 5, "minutes"))
    telemetry = _flow_pipeline(sink, flow_cardinality_limit=100)
    meters = FlowMeters(telemetry)
    for n in range(150):
        node = meters.node(f"node{n}")
        node.arrivals(1)
        node.served(1)
    assert telemetry.force_flush(30_000)
    assert (meters.overflow_series, meters.overflow_points) == (50, 100)
    assert stats_of(telemetry, "capture", "metrics").failed == 0
    window = sink.binner.checkpoint()
    assert window is not None and len({key[0] for key in window.series}) == 100
    (bundle,) = sink.bundles()
    manifest = json.loads((bundle / "manifest.json").read_text())
    (warning,) = [w for w in manifest["warnings"] if w["code"] == CARDINALITY_OVERFLOW]
    assert "50 node/class series" in warning["message"] and "100 measurements" in warning["message"]
    telemetry.shutdown(10_000)


def test_doctor_journal_is_bounded(tmp_path: Path) -> None:
    journal = tmp_path / "overload"
    journal.mkdir()
    for pid in range(100):
        (journal / f"{pid + 10_000_000}.json").write_text("{}")
    book = _overload.Overload(journal_dir=journal, service="arm")
    book.note_drop("robot", 3)
    book.report()
    files = list(journal.glob("*.json"))
    assert len(files) == 64
    rows = _overload.read_journal(journal)
    assert [(r["domain"], r["dropped"], r["service"]) for r in rows] == [("robot", 3, "arm")]
