"""Record → row mapping of the robot database, generated from the one declaration in :mod:`.schema`.

Log records are matched by event name (the robot vocabulary); HTTP server spans whose route or path
starts with ``/api/`` become ``web_requests`` rows. Values arrive typed by the vocabulary; the
``convert`` hooks only make them SQLite-shaped (booleans as 0/1) and refuse what a ``NOT NULL`` column
cannot hold (NaN is stored by SQLite as NULL), so one bad record is rejected instead of failing its
whole batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.trace import SpanKind

from otel_tele._columns import Col
from otel_tele._mapping import Getter, RowMapper, Table
from otel_tele.semconv import AttrType

from .schema import TABLES

INT, F, B = AttrType.INT, AttrType.FLOAT, AttrType.BOOL
API_PREFIX = "/api/"


def _as_int(value: Any) -> int:
    return int(value)


def _not_nan(value: float) -> float:
    if math.isnan(value):
        raise ValueError("NaN in a NOT NULL column")
    return value


def _attr(record: Any) -> Mapping[str, Any]:
    return getattr(record, "attributes", None) or {}


def _http_route(span: Any) -> str | None:
    attrs = _attr(span)
    value = attrs.get("http.route") or attrs.get("url.path") or attrs.get("http.target")
    return str(value).split("?", 1)[0] if value else None


def _http_status(span: Any) -> int | None:
    attrs = _attr(span)
    value = attrs.get("http.response.status_code", attrs.get("http.status_code"))
    return int(value) if value is not None else None


def _http_ok(span: Any) -> int | None:
    status = _http_status(span)
    return None if status is None else int(status < 400)


#: Sources computed from several span attributes (the core mapper reads one source per column).
EXTRA_SPAN_FIELDS: dict[str, Getter] = {
    "@http_route": _http_route,
    "@http_method": lambda s: _attr(s).get("http.request.method") or _attr(s).get("http.method") or "GET",
    "@http_status": _http_status,
    "@http_ok": _http_ok,
}


def is_api_server_span(span: Any) -> bool:
    """An HTTP server span of an ``/api/`` request (stable or old HTTP semantic conventions)."""
    if getattr(span, "kind", None) is not SpanKind.SERVER:
        return False
    attrs = _attr(span)
    if "http.request.method" not in attrs and "http.method" not in attrs:
        return False
    route = _http_route(span)
    return bool(route) and route.startswith(API_PREFIX)  # type: ignore[union-attr]


def _convert(column: Col, row_type: AttrType) -> Callable[[Any], Any] | None:
    if row_type is B:
        return _as_int
    return _not_nan if row_type is F and column.required else None


def _tables() -> tuple[Table, ...]:
    tables = []
    for spec in TABLES.values():
        tables.append(spec.mapping(convert=_convert))
        if any(c.span for c in spec.columns):  # web_requests: also from HTTP server spans of /api/
            # Span sources are computed fields already SQLite-shaped (``@http_ok`` is 0/1).
            tables.append(spec.mapping(convert=_convert, spans=is_api_server_span, span_type={B: INT}))
    return tuple(tables)


#: The row mapping, generated from :mod:`.schema`: one entry per table fed by a robot event, and
#: ``web_requests`` a second time from HTTP server spans.
ROBOT_TABLES: tuple[Table, ...] = _tables()
MAPPER = RowMapper(ROBOT_TABLES, span_fields=EXTRA_SPAN_FIELDS)
