"""OTLP protobuf → the SDK's own record types, so records from any language reach the same sinks.

Log records of a known event name get the vocabulary's typing (a JavaScript client sends ``1`` as a
double), exactly as records from ``events.emit`` do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope as PbScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.sdk._logs import LogRecordLimits, ReadWriteLogRecord
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
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

_LIMITS = LogRecordLimits()
_SPAN_KINDS = {
    1: trace_api.SpanKind.INTERNAL,
    2: trace_api.SpanKind.SERVER,
    3: trace_api.SpanKind.CLIENT,
    4: trace_api.SpanKind.PRODUCER,
    5: trace_api.SpanKind.CONSUMER,
}
_STATUS = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(any_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return semconv.to_json({kv.key: any_value(kv.value) for kv in value.kvlist_value.values})
    return getattr(value, kind) if kind else None


def attributes(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


def _resource(resource: PbResource, schema_url: str) -> Resource:
    return Resource(attributes(resource.attributes), schema_url or None)


def _scope(scope: PbScope, schema_url: str) -> InstrumentationScope:
    return InstrumentationScope(
        scope.name, scope.version or None, schema_url or None, attributes(scope.attributes) or None
    )


def _trace_context(trace_id: bytes, span_id: bytes, flags: int) -> Context | None:
    """The record's trace position as a context, which is how the logs API takes it."""
    if not trace_id or not span_id:
        return None
    span = trace_api.NonRecordingSpan(_span_context(trace_id, span_id, flags))
    return trace_api.set_span_in_context(span, Context())


def log_records(request: Any) -> list[ReadWriteLogRecord]:
    """An ``ExportLogsServiceRequest`` as SDK log records."""
    records: list[ReadWriteLogRecord] = []
    for resource_logs in request.resource_logs:
        resource = _resource(resource_logs.resource, resource_logs.schema_url)
        for scope_logs in resource_logs.scope_logs:
            scope = _scope(scope_logs.scope, scope_logs.schema_url)
            for pb in scope_logs.log_records:
                name = pb.event_name or None
                attrs, problems = semconv.coerce_attributes(
                    semconv.EVENTS.get(name or ""), attributes(pb.attributes)
                )
                if problems:
                    attrs["otel_tele.invalid_attributes"] = semconv.to_json(problems)
                record = LogRecord(
                    timestamp=pb.time_unix_nano or None,
                    observed_timestamp=pb.observed_time_unix_nano or None,
                    context=_trace_context(pb.trace_id, pb.span_id, pb.flags),
                    severity_text=pb.severity_text or None,
                    severity_number=SeverityNumber(pb.severity_number) if pb.severity_number else None,
                    body=any_value(pb.body) if pb.HasField("body") else None,
                    attributes=attrs,
                    event_name=name,
                )
                records.append(_EventLogRecord(record, resource, scope, _LIMITS))
    return records


def _span_context(trace_id: bytes, span_id: bytes, flags: int = 1) -> trace_api.SpanContext:
    return trace_api.SpanContext(
        int.from_bytes(trace_id, "big"),
        int.from_bytes(span_id, "big"),
        is_remote=True,
        trace_flags=trace_api.TraceFlags(flags & 0xFF or 1),
    )


def spans(request: Any) -> list[ReadableSpan]:
    """An ``ExportTraceServiceRequest`` as SDK spans."""
    out: list[ReadableSpan] = []
    for resource_spans in request.resource_spans:
        resource = _resource(resource_spans.resource, resource_spans.schema_url)
        for scope_spans in resource_spans.scope_spans:
            scope = _scope(scope_spans.scope, scope_spans.schema_url)
            for pb in scope_spans.spans:
                out.append(
                    ReadableSpan(
                        name=pb.name,
                        context=_span_context(pb.trace_id, pb.span_id, pb.flags),
                        parent=_span_context(pb.trace_id, pb.parent_span_id) if pb.parent_span_id else None,
                        resource=resource,
                        attributes=attributes(pb.attributes),
                        events=[
                            SpanEvent(e.name, attributes(e.attributes), e.time_unix_nano) for e in pb.events
                        ],
                        kind=_SPAN_KINDS.get(pb.kind, trace_api.SpanKind.INTERNAL),
                        status=Status(
                            _STATUS.get(pb.status.code, StatusCode.UNSET), pb.status.message or None
                        ),
                        start_time=pb.start_time_unix_nano,
                        end_time=pb.end_time_unix_nano,
                        instrumentation_scope=scope,
                    )
                )
    return out


def _number(point: Any) -> NumberDataPoint:
    value = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
    return NumberDataPoint(
        attributes(point.attributes), point.start_time_unix_nano, point.time_unix_nano, value
    )


def _metric_data(pb: Any) -> Any:
    kind = pb.WhichOneof("data")
    if kind == "sum":
        return Sum(
            [_number(p) for p in pb.sum.data_points],
            AggregationTemporality(pb.sum.aggregation_temporality),
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
            )
            for p in pb.histogram.data_points
        ]
        return Histogram(points, AggregationTemporality(pb.histogram.aggregation_temporality))
    return None  # exponential histograms and summaries: no sink consumes them


def metrics_data(request: Any) -> MetricsData:
    """An ``ExportMetricsServiceRequest`` as SDK ``MetricsData`` (sum, gauge, histogram)."""
    resource_metrics = []
    for rm in request.resource_metrics:
        scope_metrics = []
        for sm in rm.scope_metrics:
            metrics = [
                Metric(m.name, m.description or None, m.unit or None, data)
                for m in sm.metrics
                if (data := _metric_data(m)) is not None
            ]
            scope_metrics.append(ScopeMetrics(_scope(sm.scope, sm.schema_url), metrics, sm.schema_url))
        resource_metrics.append(
            ResourceMetrics(_resource(rm.resource, rm.schema_url), scope_metrics, rm.schema_url)
        )
    return MetricsData(resource_metrics)
