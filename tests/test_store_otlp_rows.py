"""The row path of received OTLP (``_otlp_columns``, ``store/_otlp_rows``) stores exactly what the
generic path (SDK records, then ``_rows.log_row``/``span_row``) stores: the same requests through an
``OtlpIngest`` with and without it give identical Parquet rows, and equal books."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

import otel_tele
from otel_tele import _otlp_decode as decode
from otel_tele import semconv
from otel_tele._receiver import OtlpIngest

T0 = 1_764_547_200_000_000_000  # 2025-12-01: inside every retention window of the tests


def _value(target: AnyValue, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, list):
        target.array_value.SetInParent()
        for item in value:
            _value(target.array_value.values.add(), item)
    elif isinstance(value, dict):
        target.kvlist_value.SetInParent()
        for key, item in value.items():
            kv = target.kvlist_value.values.add(key=key)
            _value(kv.value, item)
    elif value is None:
        target.SetInParent()  # an AnyValue with no kind set


def _attrs(kvs: Any, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        _value(kvs.add(key=key).value, value)


#: Every attribute value kind, empty ones, repeats, hostile text (the parser repairs bad UTF-8).
ATTRS: dict[str, Any] = {
    "s": "text",
    "empty": "",
    "b": True,
    "i": -(2**63),
    "big": 2**63 - 1,
    "d": 1.5,
    "nan": math.nan,
    "inf": -math.inf,
    "raw": b"\x00\xffbytes",
    "arr": ["a", "b"],
    "mixed": [1, "a", 2.5, None],
    "nested": [[1, 2], {"k": "v"}],
    "kv": {"a": 1, "b": {"c": [True, b"x"]}, "d": None},
    "none": None,
    "unicode": "h\u00e9llo \u2603 \U0001f600",
    "quote": 'say "hi"\\ \n\t\x00',
    "password": "hunter2",
    "http.url": "https://user:secret@example.com/p?token=abc",
    "note": "api_key=sk-123456789012345678901234",
}


def log_request() -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    for g in range(2):
        group = request.resource_logs.add(schema_url="https://schema/r" if g else "")
        _attrs(group.resource.attributes, {"service.name": f"svc{g}", "host.id": g, "tags": ["x"]})
        for s in range(2):
            scoped = group.scope_logs.add(schema_url="" if s else "https://schema/s")
            scoped.scope.name, scoped.scope.version = f"scope{s}", "1.0" if s else ""
            _attrs(scoped.scope.attributes, {"lib": "x"} if s else {})
            out = scoped.log_records
            out.add()  # every field missing
            record = out.add(time_unix_nano=T0 + 1, observed_time_unix_nano=T0 + 2, severity_number=17)
            record.severity_text = "ERROR"
            record.body.string_value = "plain body"
            record.trace_id, record.span_id, record.flags = bytes(range(1, 17)), bytes(range(1, 9)), 0
            record.dropped_attributes_count = 3
            _attrs(record.attributes, ATTRS)
            for body in (True, 7, 2.5, b"\x01\x02", ["a", 1, {"k": b"z"}], {"m": [1, {"n": None}]}, None):
                r = out.add(time_unix_nano=T0 + 3, observed_time_unix_nano=T0 + 3, severity_number=5)
                _value(r.body, body)
                r.trace_id, r.span_id, r.flags = bytes(16), bytes(range(1, 9)), 0x101  # zero trace id
            only_trace = out.add(time_unix_nano=T0 + 4, observed_time_unix_nano=T0 + 4)
            only_trace.trace_id = bytes(range(16))  # no span id: no trace context at all
            out.add(time_unix_nano=T0 + 5, observed_time_unix_nano=T0 + 5, severity_number=99)  # fails
            bad_ids = out.add(time_unix_nano=T0 + 6, observed_time_unix_nano=T0 + 6)
            bad_ids.trace_id, bad_ids.span_id = b"\x01" * 15, b"\x02" * 8  # fails
            legacy = out.add(time_unix_nano=T0 + 7, observed_time_unix_nano=T0 + 7)
            _attrs(legacy.attributes, {"event.name": "my.legacy.event", "k": 1})
            named = out.add(time_unix_nano=T0 + 8, observed_time_unix_nano=T0 + 8, event_name="my.event")
            named.body.kvlist_value.SetInParent()
            _attrs(named.attributes, {"x": "y"})
            plain = out.add(time_unix_nano=T0 + 10, observed_time_unix_nano=T0 + 10, severity_number=9)
            plain.body.string_value = "password=hunter2 and a card 4111 1111 1111 1111"
            _attrs(
                plain.attributes, {"password": "x", "http.url": "https://u:p@h/x?token=1", "n": 1, "s": "t"}
            )
            twice = out.add(time_unix_nano=T0 + 11, observed_time_unix_nano=T0 + 11)
            _attrs(twice.attributes, {"k": 1, "other": "o"})
            _attrs(twice.attributes, {"k": "second"})  # a key sent twice: the last value, first place
            robot = out.add(
                time_unix_nano=T0 + 9, observed_time_unix_nano=T0 + 9, event_name=semconv.robot.DDS_COMMAND
            )
            _attrs(robot.attributes, {semconv.robot.FUNCODE: 3.0, "robot.dds.seq": "12", "extra": [1, "a"]})
    return request


def span_request() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    group = request.resource_spans.add()
    _attrs(group.resource.attributes, {"service.name": "spans"})
    out = group.scope_spans.add().spans
    for i, (kind, code, message) in enumerate(
        [(0, 0, ""), (2, 1, "ok text"), (3, 2, "boom password=x"), (9, 7, "unknown"), (5, 2, "")]
    ):
        span = out.add(name=f"GET /items/{i}?token=abc", kind=kind, flags=0x301 if i else 0)
        span.trace_id, span.span_id = (i + 1).to_bytes(16, "big"), (i + 1).to_bytes(8, "big")
        if i:
            span.parent_span_id = bytes(8) if i == 3 else (i + 100).to_bytes(8, "big")
        span.trace_state = "" if i == 0 else ("a=1,b=2" if i == 1 else "bad state!!")
        span.start_time_unix_nano, span.end_time_unix_nano = T0 + i, T0 + 1000 + i
        span.status.code, span.status.message = code, message
        _attrs(span.attributes, ATTRS if i == 1 else {"n": i, "token": "t"})
        if i == 4:
            _attrs(span.attributes, {"n": "twice"})
        span.dropped_attributes_count, span.dropped_events_count, span.dropped_links_count = i, 2 * i, 3 * i
        for e in range(i):
            event = span.events.add(name=f"e{e}", time_unix_nano=0 if e == 0 else T0 + e)
            event.dropped_attributes_count = e
            _attrs(event.attributes, {"secret_key": "v", "k": [1, 2], "kv": {"a": b"b"}} if e else {})
        if i == 2:
            link = span.links.add(trace_id=bytes(range(16)), span_id=bytes(range(8)), trace_state="x=y")
            link.dropped_attributes_count = 4
            _attrs(link.attributes, {"token": "abc", "n": 1})
            span.links.add(trace_id=bytes(16), span_id=bytes(range(8)))
    bad = out.add(name="bad ids")
    bad.trace_id, bad.span_id = b"\x01" * 16, b"\x01" * 7  # fails alone
    bad_parent = out.add(name="bad parent")
    bad_parent.trace_id, bad_parent.span_id, bad_parent.parent_span_id = b"\x01" * 16, b"\x01" * 8, b"\x02"
    bad_link = out.add(name="bad link")
    bad_link.trace_id, bad_link.span_id = b"\x01" * 16, b"\x01" * 8
    bad_link.links.add(trace_id=b"\x01" * 3, span_id=b"\x01" * 8)
    return request


def _ints(kind: Any) -> Any:
    """``kind`` with nanosecond timestamps read as integers (Python's datetime has microseconds)."""
    import pyarrow as pa

    if pa.types.is_timestamp(kind):
        return pa.int64()
    if pa.types.is_list(kind):
        return pa.list_(_ints(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([f.with_type(_ints(f.type)) for f in kind])
    return kind


def _store_rows(data: Path, dataset: str) -> list[dict[str, Any]]:
    import pyarrow as pa

    rows: list[dict[str, Any]] = []
    for path in sorted((data / "store" / dataset).glob("*/*.parquet")):
        table = pq.read_table(path)
        for row in table.cast(pa.schema([f.with_type(_ints(f.type)) for f in table.schema])).to_pylist():
            # A record sent without an observed time gets its receive time (as the SDK gives it).
            if (row.get("observed_time") or 0) > T0 + 10**15:
                row["observed_time"] = "received"
            rows.append(row)
    return sorted(rows, key=repr)


def _through(
    tmp: Path, *, rows: bool, signal: str, body: bytes, sinks: list[str], scrub: bool = True
) -> tuple[Any, ...]:
    telemetry = otel_tele.setup(
        local=True,
        data_dir=tmp,
        sinks=sinks,
        traces_exporter="none",
        logs_exporter="none",
        metrics_exporter="none",
        scrub=scrub,
    )
    try:
        ingest = OtlpIngest(telemetry, rows=rows)
        assert (signal in ingest.routes and ingest.routes[signal].active()) is rows
        request_class = ExportLogsServiceRequest if signal == "logs" else ExportTraceServiceRequest
        # The receivers parse as ingest.parse does: the row path's twin (attributes as bytes, see
        # _otlp_raw) when it applies; the generic path gets the real message.
        request = ingest.parse(signal, body) if rows else decode.parse(request_class, body)
        outcome = ingest.ingest(signal, request)
        assert telemetry.force_flush(10_000)
        books = {(s.sink, s.signal): s for s in telemetry.sink_stats()}
    finally:
        telemetry.shutdown(10_000)
    for snap in books.values():
        assert snap.reconciles, snap
    return outcome, books


@pytest.mark.parametrize("signal", ["logs", "traces"])
def test_the_row_path_stores_exactly_what_the_generic_path_stores(tmp_path: Path, signal: str) -> None:
    body = (log_request() if signal == "logs" else span_request()).SerializeToString()
    dataset = "logs" if signal == "logs" else "spans"
    generic, fast = tmp_path / "generic", tmp_path / "rows"
    outcome_generic, books_generic = _through(generic, rows=False, signal=signal, body=body, sinks=["store"])
    outcome_fast, books_fast = _through(fast, rows=True, signal=signal, body=body, sinks=["store"])
    expected, got = _store_rows(generic, dataset), _store_rows(fast, dataset)
    assert len(expected) == (60 if signal == "logs" else 5)
    assert got == expected
    assert outcome_fast.rejected == outcome_generic.rejected == (8 if signal == "logs" else 3)
    for key in (("store", signal), ("otlp-receiver", signal)):
        generic_books, fast_books = books_generic[key], books_fast[key]
        assert (fast_books.emitted, fast_books.exported, fast_books.failed) == (
            generic_books.emitted,
            generic_books.exported,
            generic_books.failed,
        ), key


def plain_log_request(records: int) -> ExportLogsServiceRequest:
    """Records as most senders send them (the row path's column-wise case), every few of them an
    irregular one (an event name, a bad severity, a secret to scrub, a kvlist body, one id only),
    in two scopes: stored in the order sent, each irregular one as the generic path stores it."""
    request = ExportLogsServiceRequest()
    group = request.resource_logs.add()
    _attrs(group.resource.attributes, {"service.name": "plain"})
    for s in range(2):
        out = group.scope_logs.add().log_records
        for i in range(records):
            seq = s * records + i
            record = out.add(time_unix_nano=T0 + seq, observed_time_unix_nano=T0 + seq)
            record.severity_number = (0, 9, 17)[i % 3]
            record.severity_text = "INFO" if i % 3 == 1 else ""
            if i % 4:
                record.body.string_value = f"request {seq} handled in {i % 50} ms \u00e9"
            if i % 5:
                record.trace_id = bytes(16) if i % 5 == 1 else seq.to_bytes(16, "big")
                record.span_id = bytes(8) if i % 5 == 2 else (seq + 1).to_bytes(8, "big")
                record.flags = (0, 1, 0x301)[i % 3]
            record.dropped_attributes_count = i % 2
            if i % 6:
                _attrs(record.attributes, {"http.route": "/items/{id}", "user.id": f"u{i % 7}", "n": i % 3})
            if i % 11 == 3:
                _attrs(record.attributes, {"password": "hunter2"})  # scrubbed: its own JSON
            match i % 17:
                case 5:
                    record.event_name = "my.event"
                case 7:
                    record.severity_number = 99  # fails alone
                case 9:
                    record.body.string_value = "password=hunter2 card 4111 1111 1111 1111"
                case 11:
                    record.body.kvlist_value.values.add(key="k").value.int_value = seq
                case 13:
                    record.ClearField("span_id")  # a trace id alone: no trace context
                case 15:
                    record.body.string_value = ' {"token": "abc"}'
    return request


def plain_span_request(spans: int) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    group = request.resource_spans.add()
    _attrs(group.resource.attributes, {"service.name": "plain"})
    out = group.scope_spans.add().spans
    for i in range(spans):
        span = out.add(name=("GET /items/{id}", "GET /a?token=abc", f"op {i % 3}")[i % 3], kind=i % 6)
        span.trace_id, span.span_id = (i + 1).to_bytes(16, "big"), (i + 1).to_bytes(8, "big")
        if i % 4:
            span.parent_span_id = bytes(8) if i % 4 == 1 else (i + 7).to_bytes(8, "big")
        span.trace_state = "a=1" if i % 5 == 1 else ""
        span.flags = (0, 1, 0x301)[i % 3]
        span.start_time_unix_nano, span.end_time_unix_nano = T0 + i, T0 + 1000 + 3 * i
        span.status.code = i % 3
        span.status.message = "boom token=abc" if i % 9 == 2 else ""
        if i % 6:
            _attrs(span.attributes, {"http.route": "/items/{id}", "http.status_code": 200 + i % 2})
        for e in range(i % 3):
            event = span.events.add(name=f"e{e}", time_unix_nano=T0 + i + e)
            _attrs(event.attributes, {"k": f"v{e}"} if e else {})
        if i % 13 == 4:
            span.links.add(trace_id=bytes(range(16)), span_id=bytes(range(8)))
        if i % 19 == 6:
            span.span_id = b"\x01" * 7  # fails alone
    return request


@pytest.mark.parametrize("scrub", [True, False], ids=["scrubbed", "not-scrubbed"])
@pytest.mark.parametrize("signal", ["logs", "traces"])
def test_plain_records_taken_a_column_at_a_time_store_what_the_generic_path_stores_in_order(
    tmp_path: Path, signal: str, scrub: bool
) -> None:
    request = plain_log_request(120) if signal == "logs" else plain_span_request(200)
    body, dataset = request.SerializeToString(), "logs" if signal == "logs" else "spans"
    generic, fast = tmp_path / "generic", tmp_path / "rows"
    outcome_generic, _ = _through(generic, rows=False, signal=signal, body=body, sinks=["store"], scrub=scrub)
    outcome_fast, _ = _through(fast, rows=True, signal=signal, body=body, sinks=["store"], scrub=scrub)
    expected = _store_rows(generic, dataset)
    assert _store_rows(fast, dataset) == expected
    assert outcome_fast.rejected == outcome_generic.rejected == (2 * 7 if signal == "logs" else 11)
    assert len(expected) == (240 - 14 if signal == "logs" else 200 - 11)
    (part,) = (fast / "store" / dataset).glob("*/*.parquet")
    times = pq.read_table(part, columns=["time" if signal == "logs" else "start_time"]).column(0)
    sent = times.cast("int64").to_pylist()
    assert sent == sorted(sent)  # the order sent, irregular records in their place
    if scrub:
        assert not any("hunter2" in repr(row) or "4111" in repr(row) for row in expected)


@pytest.mark.parametrize("signal", ["logs", "traces"])
def test_attribute_bytes_that_are_not_protobuf_fail_their_record_alone(tmp_path: Path, signal: str) -> None:
    from otel_tele import _otlp_raw

    twin = _otlp_raw.RAW_REQUESTS[signal]()
    if signal == "logs":
        out = twin.resource_logs.add().scope_logs.add().log_records
        for i in range(6):
            record = out.add(time_unix_nano=T0 + i, observed_time_unix_nano=T0 + i)
            record.attributes.append(b"\xff\xff\xff not a KeyValue" if i == 3 else b"\n\x01k\x12\x03\n\x01v")
    else:
        out = twin.resource_spans.add().scope_spans.add().spans
        for i in range(6):
            span = out.add(name="s", trace_id=(i + 1).to_bytes(16, "big"), span_id=(i + 1).to_bytes(8, "big"))
            span.start_time_unix_nano = span.end_time_unix_nano = T0 + i
            span.events.add(name="e").attributes.append(b"\xff\xff\xff" if i == 3 else b"\n\x01k")
    outcome, books = _through(
        tmp_path, rows=True, signal=signal, body=twin.SerializeToString(), sinks=["store"]
    )
    assert outcome.rejected == 1
    assert len(_store_rows(tmp_path, "logs" if signal == "logs" else "spans")) == 5
    assert books[("store", signal)].exported == 5


def test_a_received_record_over_the_size_limit_fails_alone_on_the_row_path(tmp_path: Path) -> None:
    from otel_tele.exporters.store._rows import MAX_RECORD_CHARS

    logs = ExportLogsServiceRequest()
    out = logs.resource_logs.add().scope_logs.add().log_records
    for i in range(5):
        out.add(time_unix_nano=T0 + i, observed_time_unix_nano=T0 + i).body.string_value = "x" * (
            MAX_RECORD_CHARS + 1 if i == 2 else 10
        )
    traces = ExportTraceServiceRequest()
    spans = traces.resource_spans.add().scope_spans.add().spans
    for i in range(5):
        span = spans.add(name="s", trace_id=(i + 1).to_bytes(16, "big"), span_id=(i + 1).to_bytes(8, "big"))
        span.start_time_unix_nano = span.end_time_unix_nano = T0 + i
        event = span.events.add(name="e", time_unix_nano=T0)
        _attrs(event.attributes, {"big": "y" * (MAX_RECORD_CHARS if i == 3 else 1)})
    for signal, request, dataset in (("logs", logs, "logs"), ("traces", traces, "spans")):
        _, books = _through(
            tmp_path / signal, rows=True, signal=signal, body=request.SerializeToString(), sinks=["store"],
            scrub=False,
        )  # fmt: skip
        stored = _store_rows(tmp_path / signal, dataset)
        assert len(stored) == 4, signal
        assert (books[("store", signal)].exported, books[("store", signal)].failed) == (4, 1), signal


@pytest.mark.parametrize("in_body", [True, False], ids=["body-and-attributes", "attributes-only"])
def test_hostile_strings_repaired_by_the_parser_store_the_same_on_both_paths(
    tmp_path: Path, in_body: bool
) -> None:
    # A request whose strings are not UTF-8, built with the bytes twin; parse() repairs them. With
    # bad text in attributes only, the row path's parser does not see it (attributes stay bytes)
    # and each attribute is repaired when it is decoded.
    twin = decode._bytes_twin(ExportLogsServiceRequest.DESCRIPTOR)()
    record = twin.resource_logs.add().scope_logs.add().log_records.add(time_unix_nano=T0)
    record.observed_time_unix_nano = T0
    record.body.string_value = b"bad \xff\xfe and \xed\xa0\x80 surrogate" if in_body else b"fine"
    kv = record.attributes.add(key=b"k\xff")
    kv.value.string_value = b"\xc3"
    kv = record.attributes.add(key=b"ok")
    kv.value.array_value.values.add().string_value = b"\xed\xa0\x80 lone"
    body = twin.SerializeToString()
    generic, fast = tmp_path / "generic", tmp_path / "rows"
    _through(generic, rows=False, signal="logs", body=body, sinks=["store"])
    _through(fast, rows=True, signal="logs", body=body, sinks=["store"])
    expected = _store_rows(generic, "logs")
    assert len(expected) == 1 and _store_rows(fast, "logs") == expected
    assert "\\udc" in expected[0]["attributes"] or "\\x" in expected[0]["attributes"]


def test_a_request_mixing_domain_events_and_plain_logs_lands_in_both_the_domain_table_and_the_store(
    tmp_path: Path,
) -> None:
    import sqlite3

    request = ExportLogsServiceRequest()
    out = request.resource_logs.add().scope_logs.add().log_records
    for i in range(5):
        plain = out.add(time_unix_nano=T0 + i, observed_time_unix_nano=T0 + i, severity_number=9)
        plain.body.string_value = f"plain {i}"
        event = out.add(time_unix_nano=T0 + i, observed_time_unix_nano=T0 + i)
        event.event_name = semconv.robot.SYSTEM_EVENT
        _attrs(event.attributes, {"robot.system.event_type": "enable", "robot.system.detail": f"d{i}"})
    outcome, books = _through(
        tmp_path, rows=True, signal="logs", body=request.SerializeToString(), sinks=["sqlite", "store"]
    )
    assert outcome.rejected == 0
    stored = _store_rows(tmp_path, "logs")
    assert len(stored) == 10
    assert sum(1 for row in stored if row["event_name"] == semconv.robot.SYSTEM_EVENT) == 5
    with sqlite3.connect(tmp_path / "telemetry.db") as conn:
        (count,) = conn.execute("SELECT count(*) FROM system_events").fetchone()
    assert count == 5
    assert books[("store", "logs")].exported == 10
    assert books[("sqlite", "logs")].exported == 5  # only the named records went the generic way


def test_another_consumer_keeps_the_signal_on_the_generic_path_even_when_attached_later(
    tmp_path: Path,
) -> None:
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    telemetry = otel_tele.setup(
        local=True, data_dir=tmp_path, sinks=["store"], logs_exporter="console", traces_exporter="none",
        metrics_exporter="none",
    )  # fmt: skip
    try:
        ingest = OtlpIngest(telemetry)
        assert not ingest.routes["logs"].active() and ingest.routes["traces"].active()
    finally:
        telemetry.shutdown(5_000)
    telemetry = otel_tele.setup(
        local=True, data_dir=tmp_path / "later", sinks=["store"], logs_exporter="none",
        traces_exporter="none", metrics_exporter="none",
    )  # fmt: skip
    try:
        ingest = OtlpIngest(telemetry)
        assert ingest.routes["logs"].active()
        body = log_request().SerializeToString()
        parsed_before = ingest.parse("logs", body)  # a request in flight while the processor arrives
        memory = InMemoryLogRecordExporter()
        telemetry.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
        assert not ingest.routes["logs"].active()
        ingest.ingest("logs", parsed_before)
        ingest.ingest("logs", ingest.parse("logs", body))
        assert telemetry.force_flush(10_000)
        assert len(memory.get_finished_logs()) == 2 * 60  # every decodable record, as OTel data
        assert len(_store_rows(tmp_path / "later", "logs")) == 2 * 60
    finally:
        telemetry.shutdown(5_000)
