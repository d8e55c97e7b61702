"""OTLP export requests parsed with their records' attributes left as wire bytes (issue 15).

In the protobuf runtime, every ``KeyValue`` read from a parsed request is a new wrapper object, and
so is its ``AnyValue``: ~1 µs per attribute, most of what decoding a record costs. These twins of
the logs and trace requests declare the ``attributes`` of a log record, span, span event and span
link as ``repeated bytes`` (the same wire format: a length-delimited field), so reading them
yields the encoded ``KeyValue`` of each attribute as one ``bytes`` — which repeats across records
(a route, a user id, a status code) and can key a cache of its decoded value
(``exporters/store/_otlp_rows``). Everything else is the real message, parsed (and UTF-8
checked) by the same C runtime.

A twin's attribute bytes are not checked when the request is parsed: :func:`key_value` parses
one, repairing bad UTF-8 as :func:`_otlp_decode.parse` repairs a whole request; a ``KeyValue``
that is not protobuf at all fails its own record.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from . import _otlp_decode as decode

_KEY_VALUE = ".opentelemetry.proto.common.v1.KeyValue"
#: The messages whose ``attributes`` the twins carry as bytes (resource and scope keep theirs:
#: they are decoded once per request).
_RAW_ATTRIBUTES = frozenset({"LogRecord", "Span", "Event", "Link"})
_REAL: dict[str, Any] = {
    "logs": logs_service_pb2.ExportLogsServiceRequest,
    "traces": trace_service_pb2.ExportTraceServiceRequest,
}


def _retype(proto: descriptor_pb2.DescriptorProto) -> None:
    for field in proto.field:
        if field.name == "attributes" and field.type_name == _KEY_VALUE and proto.name in _RAW_ATTRIBUTES:
            field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
            field.ClearField("type_name")
    for nested in proto.nested_type:
        _retype(nested)


def _twins() -> dict[str, type[message.Message]]:
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

    out = {}
    for signal, real in _REAL.items():
        add(real.DESCRIPTOR.file)
        out[signal] = message_factory.GetMessageClass(pool.FindMessageTypeByName(real.DESCRIPTOR.full_name))
    return out


#: Per signal ("logs", "traces"): the request class whose records' attributes are bytes.
RAW_REQUESTS = _twins()


def parse(signal: str, data: bytes) -> message.Message:
    """``data`` (an OTLP protobuf request of ``signal``) as its twin. A request the runtime refuses
    for bad UTF-8 in a string field is repaired first (``_otlp_decode.parse``); other damage raises
    ``DecodeError``."""
    twin = RAW_REQUESTS[signal]
    try:
        return twin.FromString(data)
    except message.DecodeError:
        real = decode.parse(_REAL[signal], data)  # repairs bad UTF-8, raises on other damage
        return twin.FromString(real.SerializeToString())


def raw(signal: str, request: message.Message) -> message.Message:
    """``request`` (a real or twin request of ``signal``) as its twin."""
    twin = RAW_REQUESTS[signal]
    if type(request) is twin:
        return request
    return twin.FromString(request.SerializeToString())


def real(signal: str, request: message.Message) -> Any:
    """``request`` (a twin or real request) as the real message, its attributes repaired if need be."""
    cls = _REAL[signal]
    if type(request) is cls:
        return request
    return decode.parse(cls, request.SerializeToString())


def key_value(data: bytes) -> KeyValue:
    """One attribute's wire bytes as a ``KeyValue`` (bad UTF-8 repaired; other damage raises)."""
    return decode.parse(KeyValue, data)
