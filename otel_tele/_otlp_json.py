"""OTLP/JSON request bodies → the OTLP protobuf request, one record at a time.

The OTLP JSON encoding is protobuf's JSON mapping (``google.protobuf.json_format``: lowerCamelCase
or original field names, enums as integers or names, 64-bit integers as strings or numbers, unknown
fields ignored) with two fix-ups here: trace and span ids are hex strings, not base64; and lone
surrogates (``"\\ud800"``) are kept visible as escapes, as the protobuf path keeps
bad UTF-8. Each record (span, log record, metric) is parsed on its own, so one bad record is counted
and left out while its neighbours are kept; a body that is not a JSON object of the request's shape
raises :class:`~otel_tele._http_limits.MalformedBody`.

Example::

    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from otel_tele._otlp_json import parse_json

    body = b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":9},{"traceId":"not hex"}]}]}]}'
    request, failed = parse_json(ExportLogsServiceRequest, body)
    assert len(request.resource_logs[0].scope_logs[0].log_records) == 1 and failed == 1
"""

from __future__ import annotations

import base64
import json
from typing import Any, TypeVar

from google.protobuf import json_format, message
from google.protobuf.descriptor import FieldDescriptor

from ._http_limits import MalformedBody
from ._internal import encodable
from ._otlp_decode import note_reason

M = TypeVar("M", bound=message.Message)

#: Per request type: (resource groups, scope groups, records) as (JSON name, protobuf field name).
_NESTING: dict[str, tuple[tuple[str, str], tuple[str, str], tuple[str, str]]] = {
    "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest": (
        ("resourceSpans", "resource_spans"),
        ("scopeSpans", "scope_spans"),
        ("spans", "spans"),
    ),
    "opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest": (
        ("resourceLogs", "resource_logs"),
        ("scopeLogs", "scope_logs"),
        ("logRecords", "log_records"),
    ),
    "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest": (
        ("resourceMetrics", "resource_metrics"),
        ("scopeMetrics", "scope_metrics"),
        ("metrics", "metrics"),
    ),
}
_WHAT = {"spans": "span", "logRecords": "log record", "metrics": "metric"}
#: Fields that carry hex ids in OTLP/JSON (spans, links, log records, exemplars), both spellings.
_ID_FIELDS = {
    name: size
    for names, size in (
        (("traceId", "trace_id"), 16),
        (("spanId", "span_id", "parentSpanId", "parent_span_id"), 8),
    )
    for name in names
}
#: Subtrees that never hold ids: not walked (attribute values are most of a record).
_NO_IDS = frozenset({"attributes", "body", "resource", "scope"})


def parse_json(request_class: type[M], raw: bytes, reasons: list[str] | None = None) -> tuple[M, int]:
    """The request in ``raw`` and how many records (metric data points for metrics) were left out."""
    try:
        document = json.loads(raw)
    except RecursionError:
        raise MalformedBody("the JSON body nests too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise MalformedBody("the body is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedBody("the body must be a JSON object")
    if (
        b"\\ud" in raw or b"\\uD" in raw
    ):  # a \uD800 escape may be a lone surrogate: kept visible, as in protobuf
        try:
            document = _encodable(document)
        except RecursionError:
            raise MalformedBody("the JSON body nests too deeply") from None
    groups_key, scopes_key, items_key = _NESTING[request_class.DESCRIPTOR.full_name]
    request = request_class()
    failed = 0
    for group in _list(document, groups_key):
        target = getattr(request, groups_key[1])
        scopes = _list(group, scopes_key)
        if not _parse_into(_without(group, scopes_key), target.add(), reasons, "resource"):
            failed += sum(_count(items_key, s) for s in scopes)
            del target[-1]
            continue
        for scoped in scopes:
            scope_target = getattr(target[-1], scopes_key[1])
            items = _list(scoped, items_key)
            if not _parse_into(_without(scoped, items_key), scope_target.add(), reasons, "scope"):
                failed += _count(items_key, scoped)
                del scope_target[-1]
                continue
            records = getattr(scope_target[-1], items_key[1])
            for item in items:
                if not _parse_into(item, records.add(), reasons, _WHAT[items_key[0]]):
                    del records[-1]
                    failed += _record_count(items_key, item)
    return request, failed


def _list(parent: Any, key: tuple[str, str]) -> list[Any]:
    if not isinstance(parent, dict):
        raise MalformedBody("the body does not have the OTLP request's shape")
    value = parent.get(key[0], parent.get(key[1]))
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedBody(f"{key[0]} must be a JSON array")
    return value


def _without(parent: dict[str, Any], key: tuple[str, str]) -> dict[str, Any]:
    return {k: v for k, v in parent.items() if k not in key}


def _count(items_key: tuple[str, str], scoped: Any) -> int:
    items = scoped.get(items_key[0], scoped.get(items_key[1])) if isinstance(scoped, dict) else None
    return sum(_record_count(items_key, item) for item in items) if isinstance(items, list) else 0


def _record_count(items_key: tuple[str, str], item: Any) -> int:
    """A log record or span is one record; a metric is its data points (at least one)."""
    if items_key[0] != "metrics" or not isinstance(item, dict):
        return 1
    for data in item.values():
        points = data.get("dataPoints", data.get("data_points")) if isinstance(data, dict) else None
        if isinstance(points, list):
            return max(1, len(points))
    return 1


def _parse_into(value: Any, target: message.Message, reasons: list[str] | None, what: str) -> bool:
    try:
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        fixed = _hex_ids(value)
        try:
            _fill(target, fixed)
        except Exception:
            # The plain path refused a spelling it does not take (NaN as text, url-safe base64 …) or a
            # bad value: json_format decides, and its error names the field.
            target.Clear()
            json_format.ParseDict(fixed, target, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        note_reason(reasons, what, exc)
        return False
    return True


class _Unplain(Exception):
    """A value outside the plain path's spellings: json_format takes over."""


_INTEGERS = frozenset(
    getattr(FieldDescriptor, f"TYPE_{name}")
    for name in (
        "INT64",
        "UINT64",
        "SINT64",
        "FIXED64",
        "SFIXED64",
        "INT32",
        "UINT32",
        "SINT32",
        "FIXED32",
        "SFIXED32",
    )
)
_PLANS: dict[str, dict[str, FieldDescriptor]] = {}


def _plan(descriptor: Any) -> dict[str, FieldDescriptor]:
    plan = _PLANS.get(descriptor.full_name)
    if plan is None:
        plan = {}
        for field in descriptor.fields:
            plan[field.name] = plan[field.json_name] = field
        _PLANS[descriptor.full_name] = plan
    return plan


def _fill(target: Any, value: dict[str, Any]) -> None:
    """json_format.ParseDict for the plain spellings of OTLP/JSON, several times faster (the per-field
    checks of the general mapping dominate decoding); anything else raises for the fallback."""
    plan = _plan(target.DESCRIPTOR)
    for key, item in value.items():
        field = plan.get(key)
        if field is None or item is None:  # unknown fields are ignored; null is the default
            continue
        if field.containing_oneof is not None and target.WhichOneof(field.containing_oneof.name):
            raise _Unplain("two members of one oneof")
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.is_repeated:
                if type(item) is not list:
                    raise _Unplain(key)
                container = getattr(target, field.name)
                for element in item:
                    if type(element) is not dict:
                        raise _Unplain(key)
                    _fill(container.add(), element)
            else:
                if type(item) is not dict:
                    raise _Unplain(key)
                child = getattr(target, field.name)
                child.SetInParent()
                _fill(child, item)
        elif field.is_repeated:
            if type(item) is not list:
                raise _Unplain(key)
            getattr(target, field.name).extend(_scalar(field, element) for element in item)
        else:
            setattr(target, field.name, _scalar(field, item))


def _scalar(field: FieldDescriptor, value: Any) -> Any:
    kind, value_type = field.type, type(value)
    if kind in _INTEGERS:
        if value_type is int or (value_type is str and value.isascii() and value.lstrip("-").isdigit()):
            return int(value)
    elif kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        if value_type is float or value_type is int:
            return float(value)
    elif kind == FieldDescriptor.TYPE_STRING:
        if value_type is str:
            return value
    elif kind == FieldDescriptor.TYPE_BOOL:
        if value_type is bool:
            return value
    elif kind == FieldDescriptor.TYPE_BYTES:
        if value_type is str:
            return base64.b64decode(value, validate=True)
    elif kind == FieldDescriptor.TYPE_ENUM:
        if value_type is int:
            return value
        if value_type is str and value in field.enum_type.values_by_name:
            return field.enum_type.values_by_name[value].number
    raise _Unplain(field.name)


def _encodable(value: Any) -> Any:
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    if isinstance(value, dict):
        return {encodable(key): _encodable(item) for key, item in value.items()}
    return value


def _hex_ids(value: Any) -> Any:
    """``value`` with every id field's hex string as the base64 json_format expects (a copy)."""
    if isinstance(value, list):
        return [_hex_ids(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        size = _ID_FIELDS.get(key)
        if size is not None and isinstance(item, str) and item:
            out[key] = _hex_to_base64(key, item, size)
        elif key in _NO_IDS:
            out[key] = item
        else:
            out[key] = _hex_ids(item)
    return out


def _hex_to_base64(key: str, text: str, size: int) -> str:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise ValueError(f"{key} must be {2 * size} hex digits")
    return base64.b64encode(raw).decode("ascii")


def to_json(response: message.Message) -> bytes:
    """A response message in OTLP/JSON (lowerCamelCase names, defaults left out)."""
    text: str = json_format.MessageToJson(response, indent=None)
    return text.encode("utf-8")
