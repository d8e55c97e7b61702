"""SDK records → Arrow tables of the store's schema; a record that cannot be converted fails alone.

One Python tuple per record (the fields in schema order), transposed into one Arrow array per
column: the cheapest path through pyarrow for small mixed-type rows. Resource and scope are encoded
once per batch (every record of a request shares the same objects).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from opentelemetry.sdk.metrics.export import ExponentialHistogram, Gauge, Histogram, MetricsData, Sum

from otel_tele._internal import bad_input_log, describe_error, encodable
from otel_tele._otlp_decode import Summary
from otel_tele.semconv import to_json

from .schema import SCHEMAS

_log = logging.getLogger("otel_tele")
#: A record whose text (names, bodies, attribute JSON) is longer than this fails alone: one huge
#: value must not turn a part into a memory spike for every reader of it.
MAX_RECORD_CHARS = 8 * 1024 * 1024
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError,
                 OverflowError, UnicodeError)  # fmt: skip


class RecordTooLarge(ValueError):
    pass


def _json(attrs: Mapping[str, Any] | None) -> str | None:
    if not attrs:
        return None
    return to_json(attrs if type(attrs) is dict else dict(attrs))


def _hex(value: int | None, width: int) -> str | None:
    return value.to_bytes(width // 2, "big").hex() if value else None


class _Origins:
    """Resource and scope columns, encoded once per object seen in a batch."""

    def __init__(self) -> None:
        self._resources: dict[int, tuple[Any, tuple[str | None, str | None]]] = {}
        self._scopes: dict[int, tuple[Any, tuple[str | None, str | None, str | None]]] = {}

    _last: tuple[Any, Any, tuple[str | None, ...]] | None = None

    def of(self, resource: Any, scope: Any) -> tuple[str | None, ...]:
        last = self._last
        if last is not None and last[0] is resource and last[1] is scope:  # a request's records
            return last[2]
        seen = self._resources.get(id(resource))
        if seen is None or seen[0] is not resource:
            attrs = getattr(resource, "attributes", None) or {}
            name = attrs.get("service.name")
            seen = self._resources[id(resource)] = (
                resource,
                (_json(attrs), name if isinstance(name, str) else None),
            )
        scoped = self._scopes.get(id(scope))
        if scoped is None or scoped[0] is not scope:
            scoped = self._scopes[id(scope)] = (
                scope,
                (
                    getattr(scope, "name", None) or None,
                    getattr(scope, "version", None) or None,
                    _json(getattr(scope, "attributes", None)),
                ),
            )
        columns = (*seen[1], *scoped[1])
        self._last = (resource, scope, columns)
        return columns


def _check_size(row: tuple[Any, ...], nested: int = 0) -> tuple[Any, ...]:
    size = nested
    for cell in row:
        if type(cell) is str:
            size += len(cell)
    if size > MAX_RECORD_CHARS:
        raise RecordTooLarge(f"a record of {size} characters, over the store's {MAX_RECORD_CHARS}")
    return row


def longest_row_text(table: pa.Table) -> int:
    """At least the text of any one row of ``table`` as :func:`_check_size` counts it, from Arrow's
    own arrays (no Python per row): the table's size in bytes when that is under the limit, else each
    string column's longest value plus all the text nested in list columns (events, links) of the
    whole table, in UTF-8 bytes (never fewer than characters). Under ``MAX_RECORD_CHARS``, no row
    of the table can be over it."""
    total: int = table.nbytes  # every buffer of every column: a bound already, and one C call
    if total <= MAX_RECORD_CHARS:
        return total
    total = 0
    for column in table.columns:
        kind = column.type
        if pa.types.is_string(kind):
            longest = pc.max(pc.binary_length(column)).as_py()
            total += longest or 0
        elif pa.types.is_list(kind) and pa.types.is_struct(kind.value_type):
            items = pc.list_flatten(column)
            for field in kind.value_type:
                if pa.types.is_string(field.type):
                    total += pc.sum(pc.binary_length(pc.struct_field(items, field.name))).as_py() or 0
    return total


def checked_log(row: tuple[Any, ...], _origins: _Origins) -> tuple[Any, ...]:
    """A log row made elsewhere (``_otlp_rows``), held to the size limit of the rows made here."""
    return _check_size(row)


def checked_span(row: tuple[Any, ...], _origins: _Origins) -> tuple[Any, ...]:
    """As :func:`checked_log`, for a span row (its events' and links' text counts too)."""
    nested = 0
    for event in row[13]:
        nested += len(event["name"]) + len(event["attributes"] or "")
    for link in row[14]:
        nested += len(link["attributes"] or "")
    return _check_size(row, nested)


def span_row(span: Any, origins: _Origins) -> tuple[Any, ...]:
    ctx = span.context
    parent = span.parent
    status = span.status
    start, end = span.start_time, span.end_time
    nested = 0
    events = []
    for event in span.events:
        attrs = _json(event.attributes)
        nested += len(event.name) + len(attrs or "")
        events.append(
            {
                "time": event.timestamp,
                "name": event.name,
                "attributes": attrs,
                "dropped_attributes_count": _dropped(event),
            }
        )
    links = []
    for link in span.links:
        attrs = _json(link.attributes)
        nested += len(attrs or "")
        state = link.context.trace_state
        links.append(
            {
                "trace_id": _hex(link.context.trace_id, 32),
                "span_id": _hex(link.context.span_id, 16),
                "trace_state": state.to_header() if state else None,
                "attributes": attrs,
                "dropped_attributes_count": _dropped(link),
            }
        )
    state = ctx.trace_state
    return _check_size(
        (
            start,
            end,
            end - start if start is not None and end is not None else None,
            _hex(ctx.trace_id, 32),
            _hex(ctx.span_id, 16),
            _hex(parent.span_id, 16) if parent is not None else None,
            state.to_header() if state else None,
            int(ctx.trace_flags),
            span.name,
            span.kind.name,
            status.status_code.name,
            status.description or None,
            _json(span.attributes),
            events,
            links,
            span.dropped_attributes,
            span.dropped_events,
            span.dropped_links,
            *origins.of(span.resource, span.instrumentation_scope),
        ),
        nested,
    )


def _dropped(item: Any) -> int:
    """An event's or link's dropped-attribute count (the SDK's, or the sender's for a received one)."""
    return int(getattr(item, "dropped_attributes", 0) or 0)


def _plain(value: Any) -> Any:
    """``value`` with bytes as base64 text (how OTLP/JSON writes bytes), for a JSON body."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def body_columns(body: Any) -> tuple[str | None, str | None]:
    """A log body as (``body``, ``body_type``): see ``schema.BODY_TYPES`` for the encoding."""
    if body is None:
        return None, None
    if isinstance(body, str):
        return str.__str__(body), "string"
    if isinstance(body, bool):
        return to_json(bool(body)), "bool"
    if isinstance(body, int):
        return to_json(int(body)), "int"
    if isinstance(body, float):
        return to_json(float(body)), "double"
    if isinstance(body, bytes | bytearray):
        return base64.b64encode(body).decode("ascii"), "bytes"
    if isinstance(body, Mapping):
        return to_json(_plain(dict(body))), "kvlist"
    if isinstance(body, list | tuple):
        return to_json(_plain(body)), "array"
    return to_json(body), "json"  # a local record's body of no OTLP kind: its JSON text


def log_row(record: Any, origins: _Origins) -> tuple[Any, ...]:
    lr = record.log_record
    text, kind = body_columns(lr.body)
    severity = lr.severity_number
    return _check_size(
        (
            lr.timestamp or None,
            lr.observed_timestamp or None,
            severity.value if severity is not None else None,
            lr.severity_text or None,
            text,
            kind,
            lr.event_name or None,
            _hex(lr.trace_id, 32),
            _hex(lr.span_id, 16),
            int(lr.trace_flags) if lr.trace_flags is not None and lr.trace_id else None,
            _json(lr.attributes),
            record.dropped_attributes,
            *origins.of(record.resource, record.instrumentation_scope),
        )
    )


def _exemplars(point: Any) -> list[dict[str, Any]]:
    return [
        {
            "time": e.time_unix_nano or None,
            "value": float(e.value),
            "trace_id": _hex(e.trace_id, 32),
            "span_id": _hex(e.span_id, 16),
            "attributes": _json(e.filtered_attributes),
        }
        for e in getattr(point, "exemplars", None) or ()
    ]


def _number_values(value: Any) -> tuple[float | None, int | None]:
    if type(value) is int:
        return float(value), value
    return float(value), None


def metric_rows(
    data: MetricsData, on_error: Callable[[BaseException], None]
) -> tuple[list[tuple[Any, ...]], int]:
    """One row per data point, and how many points are of a kind the store has no columns for
    (none of OTLP's five: a foreign type only). A point that cannot be read calls ``on_error``."""
    origins = _Origins()
    rows: list[tuple[Any, ...]] = []
    not_routed = 0
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            origin = origins.of(rm.resource, sm.scope)
            for metric in sm.metrics:
                points = metric.data.data_points
                try:
                    head = _metric_head(metric)
                except LookupError:
                    not_routed += len(points)
                    continue
                for point in points:
                    try:
                        rows.append(_check_size((*_point(head, point), *origin)))
                    except Exception as exc:
                        on_error(exc)
    return rows, not_routed


def _metric_head(metric: Any) -> tuple[Any, ...]:
    data = metric.data
    if isinstance(data, Sum):
        kind, temporality, monotonic = (
            "sum",
            data.aggregation_temporality.name.lower(),
            bool(data.is_monotonic),
        )
    elif isinstance(data, Gauge):
        kind, temporality, monotonic = "gauge", None, None
    elif isinstance(data, Histogram):
        kind, temporality, monotonic = "histogram", data.aggregation_temporality.name.lower(), None
    elif isinstance(data, ExponentialHistogram):
        kind, temporality, monotonic = (
            "exponential_histogram",
            data.aggregation_temporality.name.lower(),
            None,
        )
    elif isinstance(data, Summary):
        kind, temporality, monotonic = "summary", None, None
    else:
        raise LookupError(type(data).__name__)
    return (metric.name, metric.description or None, metric.unit or None, kind, temporality, monotonic)


_NO_EXPONENTIAL = (None,) * 7


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _point(head: tuple[Any, ...], point: Any) -> tuple[Any, ...]:
    times = (point.time_unix_nano or None, point.start_time_unix_nano or None)
    attrs = _json(point.attributes)
    kind = head[3]
    if kind == "histogram":
        return (
            *times,
            *head,
            None,
            None,
            point.count,
            float(point.sum),
            _float(point.min),
            _float(point.max),
            list(point.bucket_counts),
            [float(b) for b in point.explicit_bounds],
            _exemplars(point),
            attrs,
            *_NO_EXPONENTIAL,
            None,
        )
    if kind == "exponential_histogram":
        positive, negative = point.positive, point.negative
        return (
            *times,
            *head,
            None,
            None,
            point.count,
            float(point.sum),
            _float(point.min),
            _float(point.max),
            None,
            None,
            _exemplars(point),
            attrs,
            point.scale,
            point.zero_count,
            float(getattr(point, "zero_threshold", 0.0)),
            positive.offset,
            list(positive.bucket_counts),
            negative.offset,
            list(negative.bucket_counts),
            None,
        )
    if kind == "summary":
        return (
            *times,
            *head,
            None,
            None,
            point.count,
            float(point.sum),
            None,
            None,
            None,
            None,
            [],
            attrs,
            *_NO_EXPONENTIAL,
            [{"quantile": float(q), "value": float(v)} for q, v in point.quantile_values],
        )
    return (
        *times,
        *head,
        *_number_values(point.value),
        None,
        None,
        None,
        None,
        None,
        None,
        _exemplars(point),
        attrs,
        *_NO_EXPONENTIAL,
        None,
    )


def table_of(dataset: str, rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    schema = SCHEMAS[dataset]
    columns = zip(*rows, strict=True) if rows else ([] for _ in schema)
    arrays = [pa.array(column, field.type) for column, field in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


def to_table(dataset: str, rows: list[tuple[Any, ...]], what: str) -> tuple[pa.Table | None, int]:
    """``rows`` as one table, and how many were left out: a row Arrow refuses fails alone."""
    if not rows:
        return None, 0
    try:
        return table_of(dataset, rows), 0
    except _ARROW_ERRORS:
        pass
    kept = []
    for row in rows:
        try:
            table_of(dataset, [row])
        except _ARROW_ERRORS as exc:
            row = _repaired(row)  # a lone surrogate in a name or body: kept as its \udXXX escape
            try:
                table_of(dataset, [row])
            except _ARROW_ERRORS:
                reject(what, exc)
                continue
        kept.append(row)
    return (table_of(dataset, kept) if kept else None), len(rows) - len(kept)


def _repaired(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(encodable(cell) if type(cell) is str else cell for cell in row)


def reject(what: str, exc: BaseException) -> None:
    bad_input_log.warning("store " + what, "store sink: a %s rejected (%s)", what, describe_error(exc))


def convert(
    records: Iterable[Any], row: Callable[[Any, _Origins], tuple[Any, ...]], what: str
) -> tuple[list[tuple[Any, ...]], int]:
    """Rows of ``records``; a record that cannot be read fails alone. (rows, failed)."""
    origins = _Origins()
    rows: list[tuple[Any, ...]] = []
    failed = 0
    for record in records:
        try:
            rows.append(row(record, origins))
        except Exception as exc:
            failed += 1
            reject(what, exc)
    return rows, failed
