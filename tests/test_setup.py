"""setup(): option resolution, the one global pipeline, local pipelines, resource, disabled mode."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger_provider

import otel_tele
from otel_tele import testing
from otel_tele._settings import Settings, all_options, from_environment, redact_dsn, resolve
from otel_tele.domains.fda import CAPSULE_DIR, CAPSULE_FLUSH_SECONDS
from otel_tele.domains.flow import CAPTURE_BINS, FLOW_CARDINALITY_LIMIT
from otel_tele.domains.inference import POSTGRES_DSN
from otel_tele.domains.robot import SQLITE_RETENTION_DAYS


def test_argument_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit argument wins over its environment variable, which wins over the default."""
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "9999")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    settings = resolve({"service_name": "from-arg"})
    assert (settings.service_name, settings.sources["service_name"]) == ("from-arg", "argument")
    assert (settings.prometheus_port, settings.sources["prometheus_port"]) == (
        9999,
        "OTEL_EXPORTER_PROMETHEUS_PORT",
    )
    assert (settings.otlp_protocol, settings.sources["otlp_protocol"]) == ("grpc", "default")


@pytest.mark.parametrize(
    ("env", "raw", "option", "default"),
    [
        ("OTEL_EXPORTER_PROMETHEUS_PORT", "99999", "prometheus_port", 9464),
        ("OTEL_METRIC_EXPORT_INTERVAL", "-5", "metric_export_interval_millis", 60_000),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon", "otlp_protocol", "grpc"),
        ("OTEL_SDK_DISABLED", "maybe", "disabled", False),
        # A list keeps its known names: falling back to all four sinks would ignore what was asked.
        ("OTEL_TELE_SINKS", "sqlite,floppy", "sinks", ("sqlite",)),
        ("OTEL_BLRP_MAX_QUEUE_SIZE", "lots", "blrp_max_queue_size", 262_144),
    ],
)
def test_bad_environment_value_is_logged_and_defaulted(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    env: str,
    raw: str,
    option: str,
    default: object,
) -> None:
    """A deployment typo is reported and replaced by the default (a list: by its known names), never
    fatal; doctor lists the message (Settings.problems)."""
    monkeypatch.setenv(env, raw)
    with caplog.at_level(logging.ERROR, logger="otel_tele"):
        settings = resolve({})
    assert getattr(settings, option) == default
    assert env in caplog.text
    assert len(settings.problems) == 1 and env in settings.problems[0]


@pytest.mark.parametrize(
    "arguments",
    [
        {"prometheus_port": 70000},
        {"otlp_protocol": "smtp"},
        {"sinks": ["sqlite", "nope"]},
        {"metric_export_interval_millis": 0},
        {"service_name": ""},
        {"no_such_option": 1},
        {"data_dir": 3.5j},
        {"disabled": "perhaps"},
    ],
)
def test_bad_argument_raises_value_error(arguments: dict[str, object]) -> None:
    """A bad explicit argument is the caller's bug: ValueError."""
    with pytest.raises(ValueError):
        otel_tele.setup(local=True, **arguments)  # type: ignore[arg-type]


def test_every_option_has_an_environment_variable_and_doc() -> None:
    """The option table (the core's and every domain's) documents itself (doctor prints it)."""
    for option in all_options():
        assert option.env and option.doc, option


def test_domain_options_resolve_typed_through_the_one_table(tmp_path: Path) -> None:
    """A domain's options (declared by its descriptor) take arguments, variables and defaults like the
    core's, keep their variable names, and read back typed; a Settings built by hand gives defaults."""
    settings = resolve(
        {"capsule_dir": tmp_path, "postgres_dsn": "host=db", "capture_bins": "12"},
        environ={"TELEMETRY_RETENTION_DAYS": "soon", "OTEL_TELE_FLOW_CARDINALITY_LIMIT": "50"},
    )
    assert settings.get(CAPSULE_DIR) == tmp_path and settings.sources["capsule_dir"] == "argument"
    assert (settings.get(POSTGRES_DSN), settings.get(CAPTURE_BINS)) == ("host=db", 12)
    assert settings.get(FLOW_CARDINALITY_LIMIT) == 50
    assert settings.sources["flow_cardinality_limit"] == "OTEL_TELE_FLOW_CARDINALITY_LIMIT"
    assert settings.get(SQLITE_RETENTION_DAYS) == 7.0 and "TELEMETRY_RETENTION_DAYS" in settings.problems[0]
    assert from_environment(SQLITE_RETENTION_DAYS, {"TELEMETRY_RETENTION_DAYS": "-1"}) == -1.0
    assert Settings({}).get(CAPSULE_FLUSH_SECONDS) == 1.0
    with pytest.raises(ValueError, match="capture_bins"):
        resolve({"capture_bins": 0}, environ={})


def test_setup_twice_warns_and_returns_the_same_handle() -> None:
    """The second call warns and hands back the first pipeline, which owns the OTel globals."""
    first = otel_tele.setup(service_name="svc")
    with pytest.warns(RuntimeWarning, match="already called"):
        second = otel_tele.setup(service_name="other")
    assert second is first and otel_tele.get_telemetry() is first
    assert trace.get_tracer_provider() is first.tracer_provider
    assert metrics.get_meter_provider() is first.meter_provider
    assert get_logger_provider() is first.logger_provider


def test_local_pipelines_leave_globals_alone() -> None:
    """local=True pipelines are independent and never become the global providers."""
    a = otel_tele.setup(local=True, service_name="a")
    b = otel_tele.setup(local=True, service_name="b")
    try:
        assert a is not b and otel_tele.get_telemetry() is None
        assert trace.get_tracer_provider() is not a.tracer_provider
    finally:
        a.shutdown(2_000)
        b.shutdown(2_000)


def test_resource_carries_service_host_and_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """service.name/version, OTEL_RESOURCE_ATTRIBUTES, host and process attributes are all present."""
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test,team=robots")
    telemetry = otel_tele.setup(local=True, service_name="arm-server", service_version="1.2.3")
    try:
        attrs = telemetry.resource.attributes
        assert attrs["service.name"] == "arm-server" and attrs["service.version"] == "1.2.3"
        assert attrs["team"] == "robots" and attrs["deployment.environment.name"] == "test"
        assert attrs["host.name"] and attrs["process.pid"] > 0 and attrs["telemetry.sdk.language"] == "python"
    finally:
        telemetry.shutdown(2_000)


def test_service_name_from_resource_attributes_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_RESOURCE_ATTRIBUTES' service.name is used when neither argument nor OTEL_SERVICE_NAME is set."""
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-resource")
    telemetry = otel_tele.setup(local=True)
    try:
        assert telemetry.resource.attributes["service.name"] == "from-resource"
    finally:
        telemetry.shutdown(2_000)


def test_sdk_disabled_gives_a_working_noop_handle(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SDK_DISABLED=true: same API, nothing recorded, nothing raised."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    telemetry = otel_tele.setup(service_name="off")
    telemetry.events.emit("robot.dds.command", {"robot.dds.funcode": 1})
    with telemetry.tracer("x").start_as_current_span("nothing") as span:
        assert not span.is_recording()
    telemetry.meter("x").create_counter("c").add(1)
    assert telemetry.force_flush(1_000) and telemetry.shutdown(1_000)
    assert telemetry.sink_stats() == []


def test_events_become_typed_log_records_with_trace_context(capture: testing.Capture) -> None:
    """An emitted event is an OTel log record: event name, typed attributes, current trace context."""
    tracer = capture.telemetry.tracer("test")
    with tracer.start_as_current_span("command") as span:
        capture.telemetry.events.emit(
            "robot.dds.command",
            {
                "robot.dds.funcode": "1",
                "robot.joint.id": 2.0,
                "robot.target_value": 10,
                "robot.data_json": {"angles": [1, 2]},
                "custom.extra": b"\xff\xfe",
            },
        )
    capture.flush()
    record = capture.logs()[0].log_record
    assert record.event_name == "robot.dds.command"
    assert record.trace_id == span.get_span_context().trace_id
    assert record.span_id == span.get_span_context().span_id
    attrs = dict(record.attributes or {})
    assert attrs["robot.dds.funcode"] == 1 and attrs["robot.joint.id"] == 2
    assert attrs["robot.target_value"] == 10.0 and isinstance(attrs["robot.target_value"], float)
    assert attrs["robot.data_json"] == '{"angles":[1,2]}'
    assert attrs["custom.extra"] == "\\xff\\xfe"


def test_events_outside_a_span_keep_exactly_their_attributes(capture: testing.Capture) -> None:
    """Outside any span an event's time and name ride in its dict while queued (the GC-free path);
    none of that may show on the record, and time, name and severity must survive."""
    from opentelemetry._logs import SeverityNumber

    capture.telemetry.events.emit("robot.dds.command", {"robot.joint.id": 4}, timestamp_ns=1_000)
    capture.telemetry.events.emit("robot.dds.command", {"robot.joint.id": 5}, severity=SeverityNumber.WARN)
    capture.flush()
    first, second = (r.log_record for r in capture.logs())
    assert dict(first.attributes or {}) == {"robot.joint.id": 4}
    assert first.timestamp == 1_000 and first.event_name == "robot.dds.command" and first.trace_id == 0
    assert first.severity_number == SeverityNumber.INFO
    assert dict(second.attributes or {}) == {"robot.joint.id": 5}
    assert second.severity_number == SeverityNumber.WARN


def test_one_dict_handed_over_twice_gives_two_right_records(capture: testing.Capture) -> None:
    """Handing the same dict to two emits (the second while the first is still queued) must not mix
    up their names or times, nor stop the telemetry thread."""
    shared = {"robot.joint.id": 1}
    with capture.telemetry.events._pop_lock:  # hold the thread back: both are queued at once
        capture.telemetry.events.emit("robot.dds.command", shared, timestamp_ns=10)
        capture.telemetry.events.emit("robot.dds.feedback", shared, timestamp_ns=20)
    capture.telemetry.events.emit("robot.system.event", {"robot.system.event_type": "after"})
    capture.flush()
    names = [(r.log_record.event_name, r.log_record.timestamp) for r in capture.logs()]
    assert names[:2] == [("robot.dds.command", 10), ("robot.dds.feedback", 20)]
    assert names[2][0] == "robot.system.event"  # the thread carried on
    assert all(dict(r.log_record.attributes or {}) == {"robot.joint.id": 1} for r in capture.logs()[:2])


def test_untypeable_values_are_kept_visibly_not_dropped(capture: testing.Capture) -> None:
    """A value that cannot take its declared type is reported on the record, not silently lost."""
    capture.telemetry.events.emit("robot.dds.command", {"robot.dds.funcode": "one", "robot.joint.id": 3})
    capture.telemetry.events.emit(42, ["not", "a", "mapping"])  # type: ignore[arg-type]
    capture.flush()
    first, second = (r.log_record for r in capture.logs())
    assert first.attributes["robot.joint.id"] == 3
    assert "robot.dds.funcode" in first.attributes["otel_tele.invalid_attributes"]
    assert second.event_name == "42" and second.attributes["otel_tele.payload"] == '["not","a","mapping"]'


def test_event_fed_metrics_follow_the_vocabulary(capture: testing.Capture) -> None:
    """Counters count events per label; gauges keep the latest value; NaN is not recorded as a gauge."""
    events = capture.telemetry.events
    for funcode in (1, 1, 2):
        events.emit("robot.dds.command", {"robot.dds.funcode": funcode})
    events.emit("robot.camera.health", {"robot.camera.id": "cam0", "robot.camera.actual_fps": 29.5})
    events.emit("robot.camera.health", {"robot.camera.id": "cam0", "robot.camera.actual_fps": float("nan")})
    capture.flush()
    assert capture.metric_value("robot.dds.commands", **{"robot.dds.funcode": 1}) == 2
    assert capture.metric_value("robot.dds.commands", **{"robot.dds.funcode": 2}) == 1
    assert capture.metric_value("robot.camera.fps", **{"robot.camera.id": "cam0"}) == 29.5


def test_self_metrics_report_sink_counts(capture: testing.Capture) -> None:
    """otel_tele.sink.* metrics expose exported/dropped/failed/queue depth per sink."""
    capture.telemetry.events.emit("robot.dds.command", {"robot.dds.funcode": 1})
    capture.flush()
    assert capture.metric_value("otel_tele.sink.exported", **{"otel_tele.sink": "events"}) == 1
    assert capture.metric_value("otel_tele.sink.dropped", **{"otel_tele.sink": "events"}) == 0
    assert capture.metric_value("otel_tele.sink.queue_depth", **{"otel_tele.sink": "events"}) == 0


def test_testing_reset_clears_the_global_pipeline() -> None:
    """testing.reset() shuts the global pipeline down so another setup() builds a fresh one."""
    first = otel_tele.setup(service_name="one")
    testing.reset()
    second = otel_tele.setup(service_name="two")
    assert second is not first
    assert trace.get_tracer_provider() is second.tracer_provider


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://user:s3cret@db:5432/app", "postgresql://user:***@db:5432/app"),
        ("host=db user=u password=s3cret dbname=app", "host=db user=u password=*** dbname=app"),
    ],
)
def test_dsn_password_is_redacted(dsn: str, shown: str) -> None:
    """Passwords never reach logs or doctor output."""
    assert redact_dsn(dsn) == shown


def test_data_dir_accepts_paths(tmp_path: Path) -> None:
    """data_dir takes str or Path."""
    assert resolve({"data_dir": tmp_path}).data_dir == tmp_path
    assert resolve({"data_dir": str(tmp_path)}).data_dir == tmp_path


def test_standard_log_exporters_get_readable_records() -> None:
    """A stock exporter (console, which calls ReadableLogRecord.to_json) exports events: none fail."""
    telemetry = otel_tele.setup(local=True, logs_exporter="console")
    try:
        telemetry.events.emit("robot.dds.command", {"robot.dds.funcode": 7})
        assert telemetry.force_flush(5_000)
        console = next(s for s in telemetry.sink_stats() if s.sink == "console")
        assert (console.exported, console.failed) == (1, 0)
    finally:
        telemetry.shutdown(5_000)


def test_event_records_carry_exactly_the_api_fields() -> None:
    """The event path's fast LogRecord sets the same fields as the API constructor (guards SDK upgrades)."""
    from opentelemetry import context as otel_context
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.sdk._logs import LogRecordLimits
    from opentelemetry.trace import INVALID_SPAN_CONTEXT

    from otel_tele._events import EventRecord

    ctx = otel_context.get_current()
    api = LogRecord(
        timestamp=1,
        observed_timestamp=2,
        context=ctx,
        severity_number=SeverityNumber.INFO,
        attributes={"a": 1},
        event_name="e",
    )
    fast = EventRecord(
        1, 2, ctx, INVALID_SPAN_CONTEXT, SeverityNumber.INFO, {"a": 1}, "e", None, None, LogRecordLimits()
    )
    own = {"resource", "instrumentation_scope", "limits"}
    assert {k: v for k, v in vars(fast).items() if k not in own} == vars(api)
    assert fast.log_record is fast
