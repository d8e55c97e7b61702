"""OTLP protobuf → the SDK's own record types, so records from any language reach the same sinks.

Log records of a known event name get the vocabulary's typing (a JavaScript client sends ``1`` as a
double), exactly as records from ``events.emit`` do.

One bad record fails alone: a record that cannot be decoded (an unknown severity, a kvlist nested
too deep for JSON) is left out and counted, its neighbours are decoded. A request whose strings are
not valid UTF-8 — which the protobuf runtime refuses as a whole — is repaired by :func:`parse`: the
bad bytes are kept visible as escapes (a lone surrogate as ``\\udXXX``) and every record is kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from opentelemetry import trace as trace_api
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope as PbScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.sdk._logs import LogRecordLimits, ReadWriteLogRecord
from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Buckets,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event as SpanEvent
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Status, StatusCode

from . import semconv
from ._events import _EventLogRecord
from ._internal import bad_input_log, describe_error, encodable

_LIMITS = LogRecordLimits()
_SPAN_KINDS = {
    1: trace_api.SpanKind.INTERNAL,
    2: trace_api.SpanKind.SERVER,
    3: trace_api.SpanKind.CLIENT,
    4: trace_api.SpanKind.PRODUCER,
    5: trace_api.SpanKind.CONSUMER,
}
_STATUS = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}
#: Where log records carried their event name before OTLP's ``event_name`` field.
LEGACY_EVENT_NAME = "event.name"


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind in _SCALARS:
        return getattr(value, kind)
    return _COMPOSITES[kind](value)


def body_value(value: AnyValue) -> Any:
    """A log body as itself: a kvlist is a ``dict``, an array a ``list``, bytes stay ``bytes``
    (attribute values cannot be maps, so :func:`any_value` turns a kvlist into JSON text; a body can)."""
    kind = value.WhichOneof("value")
    if kind == "kvlist_value":
        out: dict[str, Any] = {}
        for kv in value.kvlist_value.values:
            out[kv.key] = body_value(kv.value)
        return out
    if kind == "array_value":
        return [body_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def _array(value: AnyValue) -> tuple[Any, ...]:
    return tuple([any_value(v) for v in value.array_value.values])


def _kvlist(value: AnyValue) -> str:
    return semconv.to_json(attributes(value.kvlist_value.values))


#: The AnyValue kinds read as they are, and the rest by what they are (None: no value set).
_SCALARS = frozenset(("string_value", "bool_value", "int_value", "double_value", "bytes_value"))
_COMPOSITES: dict[str | None, Callable[[AnyValue], Any]] = {
    "array_value": _array,
    "kvlist_value": _kvlist,
    None: lambda value: None,
}


def attributes(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    # The hot loop of serve (issue 14): the common scalar kinds are read inline, one WhichOneof per
    # value, no call per attribute; a key sent twice keeps its last value, as a dict display does.
    out: dict[str, Any] = {}
    scalars, composites = _SCALARS, _COMPOSITES
    for kv in kvs:
        value = kv.value
        kind = value.WhichOneof("value")
        out[kv.key] = getattr(value, kind) if kind in scalars else composites[kind](value)
    return out


def _resource(resource: PbResource, schema_url: str) -> Resource:
    return Resource(attributes(resource.attributes), schema_url or None)


def _scope(scope: PbScope, schema_url: str) -> InstrumentationScope:
    return InstrumentationScope(
        scope.name, scope.version or None, schema_url or None, attributes(scope.attributes) or None
    )


def _trace_context(
    trace_id: bytes, span_id: bytes, flags: int, seen: dict[tuple[bytes, bytes, int], Context] | None = None
) -> Context | None:
    """The record's trace position as a context, which is how the logs API takes it. ``seen``: the
    contexts already built for this request (a batch's records mostly share their span)."""
    if not trace_id or not span_id:
        return None
    key = (trace_id, span_id, flags)
    if seen is not None:
        context = seen.get(key)
        if context is not None:
            return context
    span = trace_api.NonRecordingSpan(_span_context(trace_id, span_id, flags))
    context = trace_api.set_span_in_context(span, Context())
    if seen is not None:
        seen[key] = context  # contexts are never changed in place: records may share one
    return context


T = TypeVar("T")


#: Reasons kept per request for the sender's partial-success message (the count is always exact).
MAX_REASONS = 3


def note_reason(reasons: list[str] | None, what: str, exc: BaseException) -> None:
    """Why a record was left out, for its sender (who sent the value, so the message may name it)."""
    if reasons is None or len(reasons) >= MAX_REASONS:
        return
    try:
        detail = encodable(str(exc))[:200]
    except Exception:
        detail = ""
    reason = f"a {what} left out ({type(exc).__name__}{': ' + detail if detail else ''})"
    if reason not in reasons:
        reasons.append(reason)


def _each(
    items: Iterable[Any],
    decode: Callable[[Any], T],
    what: str,
    out: list[T],
    reasons: list[str] | None = None,
) -> int:
    """Decode every item into ``out``; one that fails is left out alone. Returns how many failed;
    the first few reasons go to ``reasons``."""
    failed = 0
    for item in items:
        try:
            out.append(decode(item))
        except Exception as exc:
            failed += 1
            note_reason(reasons, what, exc)
            bad_input_log.warning(
                "otlp " + what, "OTLP receiver: a %s left out (%s)", what, describe_error(exc)
            )
    return failed


def _groups(
    groups: Iterable[Any], inner: str, items: str
) -> Iterator[tuple[Resource, InstrumentationScope, Any]]:
    """(resource, scope, repeated items) of a request's resource/scope nesting."""
    for group in groups:
        resource = _resource(group.resource, group.schema_url)
        for scoped in getattr(group, inner):
            yield resource, _scope(scoped.scope, scoped.schema_url), getattr(scoped, items)


def _log_record(
    pb: Any,
    resource: Resource,
    scope: InstrumentationScope,
    contexts: dict[tuple[bytes, bytes, int], Context],
) -> ReceivedLogRecord:
    name = pb.event_name or None
    raw = attributes(pb.attributes)
    if name is None and isinstance(raw.get(LEGACY_EVENT_NAME), str) and raw[LEGACY_EVENT_NAME]:
        name = raw.pop(LEGACY_EVENT_NAME)  # senders from before the event_name field
    attrs, problems = semconv.coerce_attributes(semconv.EVENTS.get(name or ""), raw)
    if problems:
        attrs["otel_tele.invalid_attributes"] = semconv.to_json(problems)
    record = LogRecord(
        timestamp=pb.time_unix_nano or None,
        observed_timestamp=pb.observed_time_unix_nano or None,
        context=_trace_context(pb.trace_id, pb.span_id, pb.flags, contexts),
        severity_text=pb.severity_text or None,
        severity_number=_severity(pb.severity_number),
        body=body_value(pb.body) if pb.HasField("body") else None,
        attributes=attrs,
        event_name=name,
    )
    out = ReceivedLogRecord(record, resource, scope, _LIMITS)
    out.received_dropped_attributes = pb.dropped_attributes_count
    return out


def log_records(request: Any, reasons: list[str] | None = None) -> tuple[list[ReadWriteLogRecord], int]:
    """An ``ExportLogsServiceRequest`` as SDK log records, and how many records could not be decoded."""
    records: list[ReadWriteLogRecord] = []
    failed = 0
    contexts: dict[tuple[bytes, bytes, int], Context] = {}
    for resource, scope, pbs in _groups(request.resource_logs, "scope_logs", "log_records"):

        def decode(pb: Any, resource: Resource = resource, scope: InstrumentationScope = scope) -> Any:
            return _log_record(pb, resource, scope, contexts)

        failed += _each(pbs, decode, "log record", records, reasons)
    return records, failed


def log_records_at(request: Any, positions: Iterable[tuple[int, int, int]]) -> list[ReadWriteLogRecord]:
    """The log records of ``request`` at ``positions`` ((resource, scope, record) indexes, in
    order) as SDK log records: the few a domain sink wants of a request otherwise stored as rows
    (``_otlp_columns``). One that cannot be decoded is left out (and logged)."""
    records: list[ReadWriteLogRecord] = []
    contexts: dict[tuple[bytes, bytes, int], Context] = {}
    origins: dict[tuple[int, int], tuple[Resource, InstrumentationScope]] = {}
    groups = request.resource_logs
    resources: dict[int, Resource] = {}
    for g, s, r in positions:
        origin = origins.get((g, s))
        if origin is None:
            group = groups[g]
            resource = resources.get(g)
            if resource is None:
                resource = resources[g] = _resource(group.resource, group.schema_url)
            scoped = group.scope_logs[s]
            origin = origins[(g, s)] = (resource, _scope(scoped.scope, scoped.schema_url))
        pb = groups[g].scope_logs[s].log_records[r]

        def one(pb: Any, origin: tuple[Resource, InstrumentationScope] = origin) -> ReceivedLogRecord:
            return _log_record(pb, origin[0], origin[1], contexts)

        _each([pb], one, "log record", records)
    return records


_SEVERITIES = {severity.value: severity for severity in SeverityNumber}


def _severity(number: int) -> SeverityNumber | None:
    """The record's severity; none for 0 (unspecified); an unknown number raises (that record fails)."""
    if not number:
        return None
    severity = _SEVERITIES.get(number)
    return severity if severity is not None else SeverityNumber(number)


def _span_context(
    trace_id: bytes, span_id: bytes, flags: int = 1, trace_state: str = ""
) -> trace_api.SpanContext:
    if len(trace_id) != 16 or len(span_id) != 8:  # OTLP: exactly 16 and 8 bytes, never padded
        raise ValueError(f"trace id of {len(trace_id)} bytes or span id of {len(span_id)} bytes")
    return trace_api.SpanContext(
        int.from_bytes(trace_id, "big"),
        int.from_bytes(span_id, "big"),
        is_remote=True,
        trace_flags=trace_api.TraceFlags(flags & 0xFF or 1),
        trace_state=trace_api.TraceState.from_header([trace_state]) if trace_state else None,
    )


class ReceivedLogRecord(_EventLogRecord):
    """A received log record: also carries the sender's count of attributes it dropped."""

    received_dropped_attributes = 0

    @property
    def dropped_attributes(self) -> int:
        return self.received_dropped_attributes or super().dropped_attributes


class ReceivedEvent(SpanEvent):
    """A received span event and the sender's count of attributes it dropped."""

    def __init__(self, name: str, attrs: dict[str, Any], timestamp: int, dropped: int) -> None:
        super().__init__(name, attrs, timestamp)
        self.received_dropped_attributes = dropped

    @property
    def dropped_attributes(self) -> int:
        return self.received_dropped_attributes


class ReceivedLink(trace_api.Link):
    """A received span link and the sender's count of attributes it dropped."""

    def __init__(self, context: trace_api.SpanContext, attrs: dict[str, Any], dropped: int) -> None:
        super().__init__(context, attrs)
        self.received_dropped_attributes = dropped

    @property
    def dropped_attributes(self) -> int:
        return self.received_dropped_attributes


class ReceivedSpan(ReadableSpan):
    """A received span and the sender's counts of what it dropped (attributes, events, links): the
    SDK's own spans count those in their bounded containers, which a decoded span does not have."""

    received_dropped: tuple[int, int, int] = (0, 0, 0)

    @property
    def dropped_attributes(self) -> int:
        return self.received_dropped[0]

    @property
    def dropped_events(self) -> int:
        return self.received_dropped[1]

    @property
    def dropped_links(self) -> int:
        return self.received_dropped[2]


def _event(pb: Any) -> ReceivedEvent:
    return ReceivedEvent(pb.name, attributes(pb.attributes), pb.time_unix_nano, pb.dropped_attributes_count)


def _links(pbs: Iterable[Any]) -> list[trace_api.Link]:
    return [
        ReceivedLink(
            _span_context(pb.trace_id, pb.span_id, pb.flags, pb.trace_state),
            attributes(pb.attributes),
            pb.dropped_attributes_count,
        )
        for pb in pbs
    ]


def spans(request: Any, reasons: list[str] | None = None) -> tuple[list[ReadableSpan], int]:
    """An ``ExportTraceServiceRequest`` as SDK spans, and how many spans could not be decoded."""
    out: list[ReadableSpan] = []
    failed = 0
    for resource, scope, pbs in _groups(request.resource_spans, "scope_spans", "spans"):

        def decode(pb: Any, resource: Resource = resource, scope: InstrumentationScope = scope) -> Any:
            span = ReceivedSpan(
                name=pb.name,
                context=_span_context(pb.trace_id, pb.span_id, pb.flags, pb.trace_state),
                parent=_span_context(pb.trace_id, pb.parent_span_id) if pb.parent_span_id else None,
                resource=resource,
                attributes=attributes(pb.attributes),
                events=[
                    ReceivedEvent(
                        e.name, attributes(e.attributes), e.time_unix_nano, e.dropped_attributes_count
                    )
                    for e in pb.events
                ],
                links=_links(pb.links),
                kind=_SPAN_KINDS.get(pb.kind, trace_api.SpanKind.INTERNAL),
                status=Status(_STATUS.get(pb.status.code, StatusCode.UNSET), pb.status.message or None),
                start_time=pb.start_time_unix_nano,
                end_time=pb.end_time_unix_nano,
                instrumentation_scope=scope,
            )
            dropped = (pb.dropped_attributes_count, pb.dropped_events_count, pb.dropped_links_count)
            if any(dropped):
                span.received_dropped = dropped
            return span

        failed += _each(pbs, decode, "span", out, reasons)
    return out, failed


def _exemplars(point: Any) -> list[Exemplar]:
    return [
        Exemplar(
            attributes(e.filtered_attributes),
            e.as_int if e.WhichOneof("value") == "as_int" else e.as_double,
            e.time_unix_nano,
            int.from_bytes(e.span_id, "big") if e.span_id else None,
            int.from_bytes(e.trace_id, "big") if e.trace_id else None,
        )
        for e in point.exemplars
    ]


def _number(point: Any) -> NumberDataPoint:
    value = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
    return NumberDataPoint(
        attributes(point.attributes),
        point.start_time_unix_nano,
        point.time_unix_nano,
        value,
        _exemplars(point),
    )


def _temporality(value: int) -> AggregationTemporality:
    """A sum's or histogram's temporality; unspecified (0) or unknown is refused, never guessed."""
    if not value:
        raise ValueError("aggregation temporality unspecified")
    return AggregationTemporality(value)


def _metric_data(pb: Any) -> Any:
    kind = pb.WhichOneof("data")
    if kind == "sum":
        return Sum(
            [_number(p) for p in pb.sum.data_points],
            _temporality(pb.sum.aggregation_temporality),
            pb.sum.is_monotonic,
        )
    if kind == "gauge":
        return Gauge([_number(p) for p in pb.gauge.data_points])
    if kind == "histogram":
        points = [
            HistogramDataPoint(
                attributes(p.attributes),
                p.start_time_unix_nano,
                p.time_unix_nano,
                p.count,
                p.sum,
                list(p.bucket_counts),
                list(p.explicit_bounds),
                p.min,
                p.max,
                _exemplars(p),
            )
            for p in pb.histogram.data_points
        ]
        return Histogram(points, _temporality(pb.histogram.aggregation_temporality))
    if kind == "exponential_histogram":
        return ExponentialHistogram(
            [
                ReceivedExponentialPoint(
                    attributes(p.attributes),
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    p.count,
                    p.sum,
                    p.scale,
                    p.zero_count,
                    Buckets(p.positive.offset, list(p.positive.bucket_counts)),
                    Buckets(p.negative.offset, list(p.negative.bucket_counts)),
                    p.flags,
                    p.min,
                    p.max,
                    _exemplars(p),
                    p.zero_threshold,
                )
                for p in pb.exponential_histogram.data_points
            ],
            _temporality(pb.exponential_histogram.aggregation_temporality),
        )
    if kind == "summary":
        return Summary(
            [
                SummaryDataPoint(
                    attributes(p.attributes),
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    p.count,
                    p.sum,
                    tuple((q.quantile, q.value) for q in p.quantile_values),
                )
                for p in pb.summary.data_points
            ]
        )
    raise ValueError("a metric without data")  # refused and reported to the sender, never guessed


@dataclass(frozen=True)
class ReceivedExponentialPoint(ExponentialHistogramDataPoint):
    """An exponential histogram point with OTLP's ``zero_threshold`` (the SDK's own points have none:
    its aggregation's zero bucket holds exact zeros only)."""

    zero_threshold: float = 0.0


@dataclass(frozen=True)
class SummaryDataPoint:
    """One point of an OTLP summary (the SDK has no type for it: its own instruments never make
    one; older Prometheus-style clients and collectors send them). ``quantile_values``: (quantile,
    value) pairs, quantile in [0, 1]."""

    attributes: Any
    start_time_unix_nano: int
    time_unix_nano: int
    count: int
    sum: float
    quantile_values: tuple[tuple[float, float], ...] = ()
    exemplars: Sequence[Exemplar] = dataclasses.field(
        default_factory=tuple
    )  # summaries carry none; for readers


@dataclass(frozen=True)
class Summary:
    """A received OTLP summary metric's data (see :class:`SummaryDataPoint`)."""

    data_points: Sequence[SummaryDataPoint]


def metrics_data(request: Any, reasons: list[str] | None = None) -> tuple[MetricsData, int]:
    """An ``ExportMetricsServiceRequest`` as SDK ``MetricsData`` (sum, gauge, histogram, exponential
    histogram; a summary as :class:`Summary`), and how many
    data points could not be decoded (a metric that fails is left out with its points)."""
    resource_metrics = []
    failed = 0
    for rm in request.resource_metrics:
        scope_metrics = []
        for sm in rm.scope_metrics:
            metrics: list[Metric] = []

            def decode(m: Any) -> Metric:
                return Metric(m.name, m.description or None, m.unit or None, _metric_data(m))

            for m in sm.metrics:
                if _each([m], decode, "metric", metrics, reasons):
                    failed += max(1, point_count(m))
            scope_metrics.append(ScopeMetrics(_scope(sm.scope, sm.schema_url), metrics, sm.schema_url))
        resource_metrics.append(
            ResourceMetrics(_resource(rm.resource, rm.schema_url), scope_metrics, rm.schema_url)
        )
    return MetricsData(resource_metrics), failed


def point_count(pb: Any) -> int:
    kind = pb.WhichOneof("data")
    return len(getattr(pb, kind).data_points) if kind else 0


# -- requests whose strings are not valid UTF-8 ---------------------------------------------------

M = TypeVar("M", bound=message.Message)


def parse(request_class: type[M], data: bytes) -> M:
    """``request_class.FromString(data)``; a request the runtime refuses for bad UTF-8 in a string
    field is parsed as its bytes twin, its strings repaired, and parsed again. Other damage raises."""
    try:
        return cast(M, request_class.FromString(data))
    except message.DecodeError as exc:
        refused = exc
    parsed = _bytes_twin(request_class.DESCRIPTOR).FromString(data)  # damage beyond text raises here
    if not _repair(parsed):
        raise refused
    return cast(M, request_class.FromString(parsed.SerializeToString()))


_TWINS: dict[str, type[message.Message]] = {}
_STRING = FieldDescriptor.TYPE_STRING


def _bytes_twin(descriptor: Descriptor) -> type[message.Message]:
    """The message with every string field declared ``bytes`` (the same wire format, no UTF-8 check)."""
    twin = _TWINS.get(descriptor.full_name)
    if twin is None:
        pool = descriptor_pool.DescriptorPool()
        added: set[str] = set()

        def add(file: Any) -> None:
            if file.name in added:
                return
            added.add(file.name)
            for dependency in file.dependencies:
                add(dependency)
            proto = descriptor_pb2.FileDescriptorProto()
            file.CopyToProto(proto)
            for message_type in proto.message_type:
                _retype(message_type)
            pool.Add(proto)

        add(descriptor.file)
        twin = _TWINS[descriptor.full_name] = message_factory.GetMessageClass(
            pool.FindMessageTypeByName(descriptor.full_name)
        )
    return twin


def _retype(proto: descriptor_pb2.DescriptorProto) -> None:
    for field in proto.field:
        if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING:
            field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
    for nested in proto.nested_type:
        _retype(nested)


def _repaired_text(raw: bytes) -> bytes:
    try:
        text = raw.decode("utf-8", "surrogatepass")  # CESU-style lone surrogates: escaped as \udXXX
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "backslashreplace")  # other bad bytes: escaped as \xNN
    return encodable(text).encode("utf-8")


def _repair(twin: message.Message) -> int:
    """Make every field that is a string in the real message valid UTF-8; how many were changed."""
    changed = 0
    original = _ORIGINAL_STRING_FIELDS
    for field, value in twin.ListFields():
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in value if field.is_repeated else (value,):
                changed += _repair(item)
        elif field.type == FieldDescriptor.TYPE_BYTES and field.full_name in original:
            if field.is_repeated:
                for i, raw in enumerate(value):
                    fixed = _repaired_text(raw)
                    if fixed != raw:
                        value[i] = fixed
                        changed += 1
            else:
                fixed = _repaired_text(value)
                if fixed != value:
                    setattr(twin, field.name, fixed)
                    changed += 1
    return changed


def _string_fields(descriptor: Descriptor, seen: set[str], out: set[str]) -> set[str]:
    if descriptor.full_name in seen:
        return out
    seen.add(descriptor.full_name)
    for field in descriptor.fields:
        if field.type == _STRING:
            out.add(field.full_name)
        elif field.message_type is not None:
            _string_fields(field.message_type, seen, out)
    return out


def _all_string_fields() -> set[str]:
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    seen: set[str] = set()
    out: set[str] = set()
    for request in (
        logs_service_pb2.ExportLogsServiceRequest,
        trace_service_pb2.ExportTraceServiceRequest,
        metrics_service_pb2.ExportMetricsServiceRequest,
    ):
        _string_fields(request.DESCRIPTOR, seen, out)
    return out


#: Full names of the OTLP fields that are strings (the same names in the bytes twins).
_ORIGINAL_STRING_FIELDS = _all_string_fields()
