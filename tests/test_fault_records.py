"""Fault injection, issue 10 §2: one bad record fails only itself.

In every registered sink (through its sample driver, ``tests/sink_samples``) and in the OTLP
receiver's decoding, a bad record is repaired where that is lossless and safe (lone surrogates kept
as ``\\udXXX`` escapes) or rejected alone and counted ``failed``; its neighbours are written, and
what is stored equals what the books say.
"""

from __future__ import annotations

import importlib
import sqlite3
from pathlib import Path
from typing import Any

import grpc
import pyarrow.parquet as pq
import pytest
from google.protobuf import message
from opentelemetry._logs import LogRecord
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from otel_tele.exporters.sqlite import SqliteSink, init_db
from otel_tele.instrumentation import fda
from otel_tele.instrumentation.robot import TelemetryCollector

import otel_tele
from otel_tele import _otlp_decode as decode
from otel_tele._components import SINKS, ComponentUnavailable, load_sink_class
from otel_tele._receiver import OtlpGrpcReceiver
from otel_tele.semconv import to_json
from otel_tele.semconv._types import COERCERS, AttrType

from ._otlp_receiver import OtlpReceiver
from .sink_samples.capsule import CORE
from .test_sink_contract import run_bounded, stats_of

#: Sinks whose sample ``stored()`` counts every record the sink is handed (the capsule sample counts
#: iterations, not run events; the capture sink's books count data points, not arrivals).
COUNTS_EVERY_RECORD = {"sqlite", "postgres"}


def _sample(name: str) -> Any:
    try:
        load_sink_class(name)
    except ComponentUnavailable as exc:
        pytest.skip(str(exc))
    return importlib.import_module(f"tests.sink_samples.{name}")


def _pipeline(data_dir: Path, *sinks: str) -> otel_tele.Telemetry:
    return otel_tele.setup(
        local=True,
        sinks=list(sinks),
        data_dir=data_dir,
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="none",
    )


@pytest.mark.parametrize("name", sorted(SINKS))
def test_a_bad_record_fails_only_itself_in_every_sink(name: str, tmp_path: Path) -> None:
    """Poison in the middle of a sample's records: the repaired poison is stored, the rest is counted
    failed, every neighbour is stored, and storage equals the books."""
    sample = _sample(name)
    data_dir = tmp_path / "telemetry"
    telemetry = _pipeline(data_dir, name)
    try:
        repaired, rejected = sample.exercise_with_poison(telemetry, 200)
        assert run_bounded(lambda: telemetry.force_flush(30_000), 60)
        for snap in telemetry.sink_stats():
            assert snap.reconciles and snap.queued == 0 and snap.dropped == 0, snap
        sink = stats_of(telemetry, name, next(iter(sorted(telemetry.sinks[name].signals))))
        assert sink.failed == rejected, sink
        assert sample.stored(data_dir, telemetry) == 200 + repaired
        if name in COUNTS_EVERY_RECORD:
            assert sink.exported == 200 + repaired
    finally:
        assert run_bounded(lambda: telemetry.shutdown(30_000), 60)


def test_one_surrogate_among_2000_system_events_loses_nothing(tmp_path: Path) -> None:
    """The issue's case: one ``robot.system.event`` with ``"\\ud800"`` in its data; on main none of
    the 2,000 rows of its batch were stored."""
    collector = TelemetryCollector(db_path=tmp_path / "t.db", batch_size=2_000)
    for i in range(2_000):
        collector.log_system_event("note", data={"i": i, "t": "\ud800" if i == 1_000 else "ok"})
    assert collector.flush(10_000)
    sqlite = stats_of(collector.telemetry, "sqlite")
    collector.close()
    with sqlite3.connect(tmp_path / "t.db") as conn:
        rows = conn.execute("SELECT data_json FROM system_events ORDER BY id").fetchall()
    assert len(rows) == 2_000 == sqlite.exported
    assert rows[1_000][0] == '{"i":1000,"t":"\\ud800"}'  # the escape json.loads reads back as "\ud800"


def test_sqlite_rows_the_driver_refuses_are_escaped_or_rejected_alone(tmp_path: Path) -> None:
    conn = init_db(tmp_path / "t.db")
    good = (1.0, 1.0, 1, 1, 0, 0.0, "{}", "ok", 0)
    surrogate = (1.0, 1.0, 2, 1, 0, 0.0, "{\ud800}", "c\udfff", 0)
    too_big = (1.0, 1.0, 2**64, 1, 0, 0.0, "{}", "big", 0)
    conn.execute("BEGIN")
    rejected = SqliteSink._insert(conn, "dds_commands", [good, surrogate, too_big, good])
    conn.execute("COMMIT")
    rows = conn.execute("SELECT seq, data_json, correlation_id FROM dds_commands ORDER BY id").fetchall()
    assert rejected == 1
    assert rows == [(1, "{}", "ok"), (2, "{\\ud800}", "c\\udfff"), (1, "{}", "ok")]
    conn.close()


def test_capsule_run_event_with_a_surrogate_loses_no_run(tmp_path: Path) -> None:
    """The issue's case: ``run.event("NOTE", {"text": "\\udfff"})`` lost the run's 300 iterations,
    and the other runs of the batch."""
    telemetry = _pipeline(tmp_path, "capsule")
    try:
        with (
            fda.run("flow_a", telemetry=telemetry, flush_timeout_millis=0) as first,
            fda.run("flow_b", telemetry=telemetry, flush_timeout_millis=0) as second,
        ):
            for i in range(300):
                first.iteration(iter=i, **CORE)
                second.iteration(iter=i, **CORE)
            first.event("NOTE", {"text": "\udfff"})
        assert telemetry.force_flush(10_000)
        capsule = stats_of(telemetry, "capsule")
        assert capsule.failed == 0 and capsule.reconciles
        runs = tmp_path / "telematry_cfs" / "runs"
        for run in (first, second):
            assert pq.ParquetFile(runs / run.run_id / "telemetry.parquet").metadata.num_rows == 300
        events = pq.read_table(runs / first.run_id / "events.parquet").to_pylist()
        (note,) = [e for e in events if e["event"] == "NOTE"]
        assert note["payload"] == '{"text":"\\udfff"}'
    finally:
        telemetry.shutdown(10_000)


def test_text_repair_keeps_other_non_ascii_text() -> None:
    """A lone surrogate next to other non-ASCII text: escaped, the rest kept (this raised on main)."""
    assert COERCERS[AttrType.STR]("é\udfff") == "é\\udfff"
    assert to_json({"k": "é\ud800"}) == '{"k":"\\u00e9\\ud800"}'


# -- the OTLP receiver ---------------------------------------------------------------------------


def _logs_request(count: int) -> logs_service_pb2.ExportLogsServiceRequest:
    request = logs_service_pb2.ExportLogsServiceRequest()
    scope_logs = request.resource_logs.add().scope_logs.add()
    for i in range(count):
        record = scope_logs.log_records.add()
        record.event_name = "robot.system.event"
        for key, value in (("robot.system.event_type", f"MARK{i:03d}"), ("robot.source", "otlp")):
            attribute = record.attributes.add()
            attribute.key, attribute.value.string_value = key, value
    return request


def _export(port: int, service: str, data: bytes) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        channel.unary_unary(f"/opentelemetry.proto.collector.{service}/Export")(data, timeout=10)


def test_receiver_repairs_bad_utf8_and_rejects_an_undecodable_record_alone(tmp_path: Path) -> None:
    """A request with invalid UTF-8 in two records (which the protobuf runtime refuses whole) and one
    record with an unknown severity: 99 of 100 records stored, the bad bytes kept as escapes."""
    request = _logs_request(100)
    request.resource_logs[0].scope_logs[0].log_records[50].severity_number = 99  # not a severity
    data = request.SerializeToString()
    data = data.replace(b"MARK001", b"MA\xed\xa0\x80K1").replace(b"MARK002", b"MARK\xff02")
    with pytest.raises(message.DecodeError, match="UTF-8"):
        logs_service_pb2.ExportLogsServiceRequest.FromString(data)
    telemetry = _pipeline(tmp_path, "sqlite")
    receiver = OtlpGrpcReceiver(telemetry, "127.0.0.1:0")
    try:
        _export(receiver.port, "logs.v1.LogsService", data)
        assert telemetry.force_flush(10_000)
        received = stats_of(telemetry, "otlp-receiver", "logs")
        assert (received.emitted, received.exported, received.failed) == (100, 99, 1)
        assert stats_of(telemetry, "sqlite").exported == 99
        with sqlite3.connect(tmp_path / "telemetry.db") as conn:
            types = {row[0] for row in conn.execute("SELECT event_type FROM system_events")}
        assert len(types) == 99 and "MARK050" not in types
        assert {"MA\\ud800K1", "MARK\\xff02"} <= types
    finally:
        receiver.stop(1)
        telemetry.shutdown(10_000)


def test_receiver_metrics_one_bad_metric_fails_alone() -> None:
    """A metric with an unknown aggregation temporality is left out with its points; the others decode."""
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    metrics = request.resource_metrics.add().scope_metrics.add().metrics
    for name, temporality in (("good", 1), ("bad", 7), ("also_good", 2)):
        metric = metrics.add(name=name)
        metric.sum.aggregation_temporality = temporality
        metric.sum.data_points.add(as_int=1)
        metric.sum.data_points.add(as_int=2)
    data, failed = decode.metrics_data(request)
    names = [m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    assert names == ["good", "also_good"] and failed == 2


def test_parse_still_refuses_a_corrupt_request() -> None:
    """Repair is for text only: truncated wire data is refused as before."""
    data = _logs_request(3).SerializeToString()[:-5]
    with pytest.raises(message.DecodeError):
        decode.parse(logs_service_pb2.ExportLogsServiceRequest, data)


def test_otlp_exporter_fails_only_the_record_it_cannot_encode() -> None:
    """A log record whose body no OTLP encoder takes, among 20: on main the exporter raised and the
    whole batch failed; now the 19 others reach the collector and the one is counted failed."""
    receiver = OtlpReceiver()
    telemetry = otel_tele.setup(
        local=True,
        otlp_endpoint=f"http://127.0.0.1:{receiver.port}",
        otlp_protocol="grpc",
        traces_exporter="none",
        metrics_exporter="none",
        logs_exporter="otlp",
        sinks="none",
    )
    try:
        logger = telemetry.logger("tests.fault")
        for i in range(20):
            logger.emit(LogRecord(body=object() if i == 7 else f"line {i}"))
        assert telemetry.force_flush(20_000)
        otlp = stats_of(telemetry, "otlp")
        assert (otlp.exported, otlp.failed, otlp.reconciles) == (19, 1, True)
        bodies = sorted(record.body.string_value for _resource, record in receiver.log_records())
        assert bodies == sorted(f"line {i}" for i in range(20) if i != 7)
    finally:
        telemetry.shutdown(10_000)
        receiver.stop()
