"""The robot domain's views of the SQL catalog (``otel-tele sql``): one per ``telemetry.db`` table.

``robot_<table>`` holds the table as stored (``ts`` in epoch seconds, booleans as 0/1), columns taken
from :mod:`otel_tele.exporters.sqlite.schema`. The tables carry no trace id (spec 004 fixes their
columns); a row joins the HTTP request that caused it through ``correlation_id``, which the request's
server span carries as the attribute ``robot.correlation_id``.
"""

from __future__ import annotations

import pyarrow as pa

from otel_tele._settings import Settings
from otel_tele._sql_view import SQLITE_READER, SqliteSource, SqlView
from otel_tele.exporters.sqlite import schema
from otel_tele.semconv import AttrType

#: Each vocabulary type as the table stores it (:data:`schema.SQL_TYPES`: booleans 0/1, JSON text).
_ARROW: dict[AttrType, pa.DataType] = {
    AttrType.INT: pa.int64(),
    AttrType.FLOAT: pa.float64(),
    AttrType.STR: pa.string(),
    AttrType.JSON: pa.string(),
    AttrType.BOOL: pa.int64(),
}

_DESCRIPTIONS = {
    "dds_commands": "one row per DDS command sent to the arm",
    "dds_feedback": "one row per DDS feedback frame (angles and/or status)",
    "smoother_state": "one row per sampled command-smoother tick and joint",
    "web_requests": "one row per /api/ request of an instrumented FastAPI app",
    "camera_health": "one row per camera health report",
    "system_events": "one row per system event (connect, power, errors …)",
}


def arrow_schema(table: str) -> pa.Schema:
    """``table``'s columns as stored (``id`` first), typed from the schema declaration."""
    spec = schema.TABLES[table]
    typed = zip(spec.columns, spec.types, strict=True)
    return pa.schema([("id", pa.int64()), *((column.name, _ARROW[kind]) for column, kind in typed)])


def sql_views(settings: Settings) -> tuple[SqlView, ...]:
    """``robot_dds_commands`` … ``robot_system_events`` over ``<data_dir>/telemetry.db``."""
    db = settings.data_dir / schema.DB_NAME
    views = []
    for table in schema.TABLE_NAMES:
        columns = arrow_schema(table)
        views.append(
            SqlView(
                f"robot_{table}",
                columns,
                _DESCRIPTIONS.get(table, table),
                f"{SQLITE_READER}: {schema.DB_NAME}",
                sqlite=SqliteSource(db, table),
            )
        )
    return tuple(views)
