"""Record → row mapping of the robot database: which event feeds which table, column by column.

Log records are matched by event name (the robot vocabulary); HTTP server spans whose route or path
starts with ``/api/`` become ``web_requests`` rows. Values arrive typed by the vocabulary; the
``convert`` hooks only make them SQLite-shaped (booleans as 0/1) and refuse what a ``NOT NULL`` column
cannot hold (NaN is stored by SQLite as NULL), so one bad record is rejected instead of failing its
whole batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import SpanKind

from otel_tele._mapping import Column, Getter, RowMapper, Table
from otel_tele.semconv import AttrType
from otel_tele.semconv import robot as r

INT, F, S, B = AttrType.INT, AttrType.FLOAT, AttrType.STR, AttrType.BOOL
API_PREFIX = "/api/"


def _as_int(value: Any) -> int:
    return int(value)


def _not_nan(value: float) -> float:
    if math.isnan(value):
        raise ValueError("NaN in a NOT NULL column")
    return value


def _col(
    name: str,
    source: str,
    kind: AttrType,
    *,
    required: bool = False,
    default: Any = None,
    fallback: str | None = None,
) -> Column:
    convert = _as_int if kind is B else (_not_nan if kind is F and required else None)
    return Column(name, source, kind, required=required, default=default, convert=convert, fallback=fallback)


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


ANGLE_COLUMNS = tuple(_col(f"angle{i}", key, F) for i, key in enumerate(r.ANGLES))

ROBOT_TABLES: tuple[Table, ...] = (
    Table(
        "dds_commands",
        (
            _col("ts", "@ts", F, required=True),
            _col("ts_mono", r.TS_MONO, F, required=True, fallback="@ts"),  # wall time for OTLP records
            _col("seq", r.SEQ, INT),
            _col("funcode", r.FUNCODE, INT, required=True),
            _col("joint_id", r.JOINT_ID, INT),
            _col("target_value", r.TARGET_VALUE, F),
            _col("data_json", r.DATA_JSON, S),
            _col("correlation_id", r.CORRELATION_ID, S),
            _col("raw_len", r.RAW_LEN, INT),
        ),
        event=r.DDS_COMMAND,
    ),
    Table(
        "dds_feedback",
        (
            _col("ts", "@ts", F, required=True),
            _col("ts_mono", r.TS_MONO, F, required=True, fallback="@ts"),  # wall time for OTLP records
            _col("seq", r.SEQ, INT),
            _col("funcode", r.FUNCODE, INT, required=True),
            *ANGLE_COLUMNS,
            _col("power_status", r.POWER_STATUS, INT),
            _col("enable_status", r.ENABLE_STATUS, INT),
            _col("error_status", r.ERROR_STATUS, INT),
            _col("recv_status", r.RECV_STATUS, INT),
            _col("exec_status", r.EXEC_STATUS, INT),
        ),
        event=r.DDS_FEEDBACK,
    ),
    Table(
        "smoother_state",
        (
            _col("ts", "@ts", F, required=True),
            _col("joint_id", r.JOINT_ID, INT, required=True),
            _col("target", r.SMOOTHER_TARGET, F, required=True),
            _col("current", r.SMOOTHER_CURRENT, F, required=True),
            _col("sent", r.SMOOTHER_SENT, F, required=True),
            _col("step_size", r.SMOOTHER_STEP, F),
            _col("dirty", r.SMOOTHER_DIRTY, B, required=True, default=True),
        ),
        event=r.SMOOTHER_TICK,
    ),
    Table(
        "web_requests",
        (
            _col("ts", "@ts", F, required=True),
            _col("endpoint", r.ENDPOINT, S, required=True, default=""),
            _col("method", r.METHOD, S, required=True, default="POST"),
            _col("params_json", r.PARAMS_JSON, S),
            _col("response_ms", r.RESPONSE_MS, F),
            _col("status_code", r.STATUS_CODE, INT),
            _col("correlation_id", r.CORRELATION_ID, S),
            _col("ok", r.OK, B),
        ),
        event=r.WEB_REQUEST,
    ),
    Table(
        "web_requests",
        (
            _col("ts", "@start", F, required=True),
            _col("endpoint", "@http_route", S, required=True),
            _col("method", "@http_method", S, required=True),
            _col("params_json", r.PARAMS_JSON, S),
            _col("response_ms", "@duration_ms", F),
            _col("status_code", "@http_status", INT),
            _col("correlation_id", r.CORRELATION_ID, S),
            _col("ok", "@http_ok", INT),
        ),
        select=is_api_server_span,
    ),
    Table(
        "camera_health",
        (
            _col("ts", "@ts", F, required=True),
            _col("camera_id", r.CAMERA_ID, S, required=True, default=""),
            _col("actual_fps", r.ACTUAL_FPS, F),
            _col("target_fps", r.TARGET_FPS, F),
            _col("drop_count", r.DROP_COUNT, INT),
            _col("motion_score", r.MOTION_SCORE, F),
            _col("connected", r.CONNECTED, B),
            _col("resolution_w", r.RESOLUTION_W, INT),
            _col("resolution_h", r.RESOLUTION_H, INT),
            _col("stalled", r.STALLED, B),
        ),
        event=r.CAMERA_HEALTH,
    ),
    Table(
        "system_events",
        (
            _col("ts", "@ts", F, required=True),
            _col("event_type", r.SYSTEM_EVENT_TYPE, S, required=True, default="unknown"),
            _col("source", r.SOURCE, S, required=True, default="system"),
            _col("detail", r.DETAIL, S),
            _col("data_json", r.DATA_JSON, S),
            _col("correlation_id", r.CORRELATION_ID, S),
            _col("level", r.LEVEL, S, default="info"),
        ),
        event=r.SYSTEM_EVENT,
    ),
)


def insert_sql(table: Table) -> str:
    columns = ", ".join(table.column_names)
    return f"INSERT INTO {table.table} ({columns}) VALUES ({', '.join('?' * len(table.columns))})"


def bulk_insert_sql(table: Table) -> str:
    """One statement inserting a whole batch passed as a JSON array of rows (see ``SqliteSink``)."""
    columns = ", ".join(table.column_names)
    values = ", ".join(f"value->>{i}" for i in range(len(table.columns)))
    return f"INSERT INTO {table.table} ({columns}) SELECT {values} FROM json_each(?)"


#: One INSERT per table; the two ``web_requests`` entries share their column list.
INSERTS: dict[str, str] = {t.table: insert_sql(t) for t in ROBOT_TABLES}
BULK_INSERTS: dict[str, str] = {t.table: bulk_insert_sql(t) for t in ROBOT_TABLES}
MAPPER = RowMapper(ROBOT_TABLES, span_fields=EXTRA_SPAN_FIELDS)
