"""The inference store's tables: their names, ``system_telemetry`` declared once (which events become
its rows, its columns and their sources), and the text rules of its key columns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from otel_tele._columns import Col, StoredTable
from otel_tele._internal import encodable
from otel_tele.semconv import inference as inf

#: The embedded store's file, under the data folder (used when no DSN is configured).
DB_FILE = "inference.db"

TABLE = "system_telemetry"
VERSION_TABLE = "system_telemetry_schema"
BATCH_TABLE = "system_telemetry_batches"  # ids of committed batches: a retried batch is written once


@dataclass(frozen=True)
class Rollup:
    table: str
    seconds: int


ROLLUP_MINUTE = Rollup("system_telemetry_rollup_1m", 60)
ROLLUP_HOUR = Rollup("system_telemetry_rollup_1h", 3600)
ROLLUPS: tuple[Rollup, ...] = (ROLLUP_MINUTE, ROLLUP_HOUR)
#: Every table the store owns, ``system_telemetry`` first (the footprint lists them in this order).
TABLES: tuple[str, ...] = (TABLE, *(r.table for r in ROLLUPS), BATCH_TABLE, VERSION_TABLE)

KEY_COLUMNS: tuple[str, ...] = ("bucket", "event_type", "component")
#: Events that become ``system_telemetry`` rows: every spec event, with the event type a record
#: lacking one gets.
ROW_EVENTS: Mapping[str, str | None] = inf.SPEC_EVENT_TYPES
#: ``system_telemetry``, declared once: columns in write order (types from the vocabulary; timestamp:
#: epoch seconds in SQLite, timestamptz in PostgreSQL; ``since``: the schema version adding it).
ROW_TABLE = StoredTable(
    TABLE,
    tuple(ROW_EVENTS),
    (
        Col("event_type", inf.EVENT_TYPE, required=True),
        Col("component", inf.COMPONENT),
        Col("value", inf.VALUE),
        Col("metadata", inf.METADATA, default="{}"),  # JSON text already (AttrType.JSON on the wire)
        Col("status", inf.STATUS),
        Col("timestamp", "@ts", required=True, storage="ts"),
        Col("trace_id", "@trace_id", since=3),
        Col("span_id", "@span_id", since=3),
    ),
)
ROW_COLUMNS: tuple[str, ...] = ROW_TABLE.column_names
#: Longest event_type/component/status kept in the column; the full text goes to metadata.
MAX_KEY_CHARS = 256


def clean_text(text: str) -> str:
    """Text as the store keeps it: NUL made visible; a lone surrogate (not encodable as UTF-8) kept
    as its escape."""
    if "\x00" in text:
        text = text.replace("\x00", "\\u0000")
    return encodable(text)
