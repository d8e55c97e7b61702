"""The robot telemetry database (spec 004), declared once: tables, columns, indexes, the digest sidecar.

Every column of the six tables is spelled here only, as a :class:`~otel_tele._columns.Col`: where its
value comes from (a key of the robot vocabulary ``otel_tele.semconv.robot``, or a record field such as
``@ts``) and its constraints; its type is the vocabulary's, stored as :data:`SQL_TYPES` says. From
this one declaration come the DDL (:data:`DDL`), the inserts (:data:`INSERTS`, :func:`bulk_insert`),
the sink's row mapping (``_mapping``) and what readers name (:data:`TABLE_NAMES`, :func:`columns`).
The layout of the digest sidecar ``telemetry.digest.db`` (pre-aggregated counts and latency
histograms the sink keeps beside the database) is declared here too, for its writer and its readers.

Layout only: nothing here writes. Readers (``otel_tele.robot_query``) open the database with
:func:`connect_read_only`; the sink (``otel_tele.exporters.sqlite``) creates and writes it.

Example::

    from otel_tele.exporters.sqlite import schema

    schema.TABLE_NAMES                      # ('dds_commands', 'dds_feedback', ...)
    schema.columns("web_requests")          # ('id', 'ts', 'endpoint', ...)
"""

from __future__ import annotations

import functools
import math
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from otel_tele._columns import Col, StoredTable
from otel_tele.semconv import AttrType
from otel_tele.semconv import robot as r

#: The schema version, kept in ``PRAGMA user_version`` (no extra table: the spec says exactly six).
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 5_000
#: The database's file name in the data folder.
DB_NAME = "telemetry.db"

#: How this database stores each vocabulary type (booleans as 0/1, JSON as its text).
SQL_TYPES: Mapping[AttrType, str] = {
    AttrType.INT: "INTEGER",
    AttrType.FLOAT: "REAL",
    AttrType.STR: "TEXT",
    AttrType.JSON: "TEXT",
    AttrType.BOOL: "INTEGER",
}


def _ts(span: str | None = None) -> Col:
    return Col("ts", "@ts", required=True, span=span)


# ``ts_mono`` falls back to the wall time for records that never had one (OTLP).
_TS_MONO = Col("ts_mono", r.TS_MONO, required=True, fallback="@ts")


def _table(name: str, event: str, *columns: Col) -> StoredTable:
    return StoredTable(name, (event,), columns)


#: Every table, in the spec's order (``id`` is implicit). Types are the vocabulary's; ``storage``
#: spells the few columns with an SQL default; ``span`` is the source on an HTTP server span.
TABLES: Mapping[str, StoredTable] = {
    t.name: t
    for t in (
        _table(
            "dds_commands",
            r.DDS_COMMAND,
            _ts(),
            _TS_MONO,
            Col("seq", r.SEQ),
            Col("funcode", r.FUNCODE, required=True),
            Col("joint_id", r.JOINT_ID),
            Col("target_value", r.TARGET_VALUE),
            Col("data_json", r.DATA_JSON),
            Col("correlation_id", r.CORRELATION_ID),
            Col("raw_len", r.RAW_LEN),
        ),
        _table(
            "dds_feedback",
            r.DDS_FEEDBACK,
            _ts(),
            _TS_MONO,
            Col("seq", r.SEQ),
            Col("funcode", r.FUNCODE, required=True),
            *(Col(f"angle{i}", key) for i, key in enumerate(r.ANGLES)),
            Col("power_status", r.POWER_STATUS),
            Col("enable_status", r.ENABLE_STATUS),
            Col("error_status", r.ERROR_STATUS),
            Col("recv_status", r.RECV_STATUS),
            Col("exec_status", r.EXEC_STATUS),
        ),
        _table(
            "smoother_state",
            r.SMOOTHER_TICK,
            _ts(),
            Col("joint_id", r.JOINT_ID, required=True),
            Col("target", r.SMOOTHER_TARGET, required=True),
            Col("current", r.SMOOTHER_CURRENT, required=True),
            Col("sent", r.SMOOTHER_SENT, required=True),
            Col("step_size", r.SMOOTHER_STEP),
            Col("dirty", r.SMOOTHER_DIRTY, required=True, default=True, storage="INTEGER NOT NULL DEFAULT 1"),
        ),
        _table(
            "web_requests",
            r.WEB_REQUEST,
            _ts(span="@start"),
            Col("endpoint", r.ENDPOINT, required=True, default="", span="@http_route"),
            Col(
                "method",
                r.METHOD,
                required=True,
                default="POST",
                storage="TEXT NOT NULL DEFAULT 'POST'",
                span="@http_method",
            ),
            Col("params_json", r.PARAMS_JSON, span=r.PARAMS_JSON),
            Col("response_ms", r.RESPONSE_MS, span="@duration_ms"),
            Col("status_code", r.STATUS_CODE, span="@http_status"),
            Col("correlation_id", r.CORRELATION_ID, span=r.CORRELATION_ID),
            Col("ok", r.OK, span="@http_ok"),
        ),
        _table(
            "camera_health",
            r.CAMERA_HEALTH,
            _ts(),
            Col("camera_id", r.CAMERA_ID, required=True, default=""),
            Col("actual_fps", r.ACTUAL_FPS),
            Col("target_fps", r.TARGET_FPS),
            Col("drop_count", r.DROP_COUNT),
            Col("motion_score", r.MOTION_SCORE),
            Col("connected", r.CONNECTED),
            Col("resolution_w", r.RESOLUTION_W),
            Col("resolution_h", r.RESOLUTION_H),
            Col("stalled", r.STALLED),
        ),
        _table(
            "system_events",
            r.SYSTEM_EVENT,
            _ts(),
            Col("event_type", r.SYSTEM_EVENT_TYPE, required=True, default="unknown"),
            Col("source", r.SOURCE, required=True, default="system"),
            Col("detail", r.DETAIL),
            Col("data_json", r.DATA_JSON),
            Col("correlation_id", r.CORRELATION_ID),
            Col("level", r.LEVEL, default="info", storage="TEXT DEFAULT 'info'"),
        ),
    )
}

#: The tables a generic read (debug endpoint, export) may name, in the spec's order.
TABLE_NAMES: tuple[str, ...] = tuple(TABLES)


def columns(table: str) -> tuple[str, ...]:
    """Every column of ``table`` as stored, ``id`` first."""
    return ("id", *TABLES[table].column_names)


def _create(spec: StoredTable) -> str:
    body = ",\n".join(
        ["    id INTEGER PRIMARY KEY AUTOINCREMENT", *(f"    {c}" for c in spec.sql_columns(SQL_TYPES))]
    )
    return f"CREATE TABLE IF NOT EXISTS {spec.name} (\n{body}\n)"


#: table name → CREATE TABLE statement, in the spec's order.
DDL: Mapping[str, str] = {name: _create(spec) for name, spec in TABLES.items()}

#: index name → (table, columns), exactly the spec's.
INDEXES: Mapping[str, tuple[str, str]] = {
    "idx_dds_commands_ts": ("dds_commands", "ts"),
    "idx_dds_commands_cid": ("dds_commands", "correlation_id"),
    "idx_dds_commands_funcode": ("dds_commands", "funcode"),
    "idx_dds_feedback_ts": ("dds_feedback", "ts"),
    "idx_dds_feedback_funcode": ("dds_feedback", "funcode"),
    "idx_smoother_ts": ("smoother_state", "ts"),
    "idx_smoother_joint": ("smoother_state", "joint_id, ts"),
    "idx_web_requests_ts": ("web_requests", "ts"),
    "idx_web_requests_endpoint": ("web_requests", "endpoint, ts"),
    "idx_camera_health_ts": ("camera_health", "ts"),
    "idx_camera_health_cam": ("camera_health", "camera_id, ts"),
    "idx_system_events_ts": ("system_events", "ts"),
    "idx_system_events_type": ("system_events", "event_type, ts"),
}


def _insert(spec: StoredTable) -> str:
    names = ", ".join(spec.column_names)
    return f"INSERT INTO {spec.name} ({names}) VALUES ({', '.join('?' * len(spec.columns))})"


@functools.lru_cache(maxsize=512)
def bulk_insert(table: str, rows: int, *, lead: int = 0) -> str:
    """One statement inserting ``rows`` rows of ``table`` (``INSERT … VALUES (…), (…), …``), its
    parameters the rows' values one after another (see ``SqliteSink``); with ``lead``, each row's
    values follow that many the statement is bound but does not use (a row's tag)."""
    spec = TABLES[table]
    width = len(spec.columns)
    if not lead:
        one = f"({', '.join('?' * width)})"
        values = ", ".join([one] * rows)
    else:  # numbered: row k's columns are parameters k·(lead+width) + lead + 1 …
        step = lead + width
        values = ", ".join(
            "(" + ", ".join(f"?{k * step + lead + i + 1}" for i in range(width)) + ")" for k in range(rows)
        )
    return f"INSERT INTO {spec.name} ({', '.join(spec.column_names)}) VALUES {values}"


#: One INSERT per table, its values in :attr:`StoredTable.columns` order.
INSERTS: Mapping[str, str] = {name: _insert(spec) for name, spec in TABLES.items()}


def connect_read_only(db_path: str | Path, *, timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """A read-only connection (``mode=ro``, ``query_only``; the file must exist) with the spec's
    ``busy_timeout``."""
    uri = f"file:{Path(db_path).resolve().as_posix()}?mode=ro"
    conn = sqlite3.connect(
        uri, uri=True, timeout=timeout_ms / 1000, check_same_thread=False, isolation_level=None
    )
    conn.execute("PRAGMA query_only = ON")
    conn.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")
    return conn


# -- the digest sidecar ``telemetry.digest.db`` --------------------------------------------------
# Why a sidecar: spec 004 fixes ``telemetry.db`` at six tables and their indexes, yet exact percentiles
# read every latency and a windowed ``count(*)`` walks an index range. The sink keeps, beside the
# database and in the same write transaction as the rows (it is ``ATTACH``ed; in a burst, in a later
# batch's transaction: ``Digest.due``), per time unit:
#
# - ``counts``: rows of ``dds_commands``, ``dds_feedback``, ``system_events`` and of error events, per
#   16 s unit (a week is ~38k small rows per series; one upsert per table and batch);
# - ``latency_stats`` / ``latency_bins``: per endpoint, the count, sum and max of ``response_ms`` and a
#   log-bucket histogram (relative error ALPHA), at levels 0..16 of units of ``16·2^k`` s, so a
#   window is a few aligned units plus raw rows at its two ends.
#
# Unit widths are powers of two so ``floor(ts / 16)`` is exact and a row's unit agrees with the
# readers' ``ts`` range tests. Rows with ``ts`` outside ``[0, TS_END)`` (or non-finite) are in no unit:
# readers take them raw. ``watermark`` says what the sidecar reflects of each table (highest ``id``,
# lowest ``ts``): WAL commits of attached databases are atomic per file only, so after a crash between
# the two — and in a burst, until a later batch folds them in — a reader takes rows above the
# watermark raw, and anything else inconsistent is rebuilt by the sink on open.

DIGEST_VERSION = 1
DIGEST_SCHEMA = "digest"  # the ATTACH name
UNIT_S = 16.0  # a power of two: ts / UNIT_S is exact
LEVELS = 17  # level k units span UNIT_S * 2**k seconds (level 16: ~12 days)
TS_END = UNIT_S * 2.0**42  # rows at or beyond this (or before 0) are in no unit
#: Relative error of every percentile taken from the histograms (DDSketch-style log buckets).
ALPHA = 0.02
GAMMA = (1 + ALPHA) / (1 - ALPHA)
LN_GAMMA = math.log(GAMMA)
BIN_OFFSET = 100_000  # bins of positive values are OFFSET + ceil(log_gamma(v)); |log_gamma| < 40,000
INF_BIN = 200_000

#: series → (table, extra condition): the windowed counts the session summary needs.
COUNT_SERIES: Mapping[str, tuple[str, str]] = {
    "dds_commands": ("dds_commands", ""),
    "dds_feedback": ("dds_feedback", ""),
    "system_events": ("system_events", ""),
    "error_events": ("system_events", " AND level = 'error'"),
}
#: The tables the digest follows (a watermark each).
COVERED = ("dds_commands", "dds_feedback", "system_events", "web_requests")

#: The sidecar's tables, ``{s}`` standing for its schema name.
DIGEST_DDL = (
    "CREATE TABLE IF NOT EXISTS {s}.watermark (tbl TEXT PRIMARY KEY, max_id INTEGER NOT NULL, min_ts REAL)",
    "CREATE TABLE IF NOT EXISTS {s}.counts (series TEXT NOT NULL, unit INTEGER NOT NULL, "
    "n INTEGER NOT NULL, PRIMARY KEY (series, unit)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS {s}.latency_stats (level INTEGER NOT NULL, unit INTEGER NOT NULL, "
    "endpoint TEXT NOT NULL, n INTEGER NOT NULL, total REAL, max REAL, "
    "PRIMARY KEY (level, unit, endpoint)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS {s}.latency_bins (level INTEGER NOT NULL, unit INTEGER NOT NULL, "
    "endpoint TEXT NOT NULL, bin INTEGER NOT NULL, n INTEGER NOT NULL, "
    "PRIMARY KEY (level, unit, endpoint, bin)) WITHOUT ROWID",
)


def digest_path(db_path: str | Path) -> Path:
    """``telemetry.db`` → ``telemetry.digest.db`` (same folder)."""
    path = Path(db_path)
    return path.with_name(f"{path.stem}.digest{path.suffix or '.db'}")


def bin_value(bin_: int) -> float:
    """The value a histogram bin stands for: within :data:`ALPHA` (relative) of every value in it."""
    if bin_ == 0:
        return 0.0
    if abs(bin_) == INF_BIN:
        return math.copysign(math.inf, bin_)
    magnitude = 2 * GAMMA ** (abs(bin_) - BIN_OFFSET) / (GAMMA + 1)
    return math.copysign(magnitude, bin_)


def main_mark(conn: sqlite3.Connection | sqlite3.Cursor, table: str) -> tuple[int, float | None]:
    """(highest id, lowest ts) of a main table, what a digest watermark is compared with: two index
    seeks (one aggregate per statement keeps SQLite's min/max shortcut)."""
    top = conn.execute(f"SELECT coalesce(max(id), 0) FROM main.{table}").fetchone()[0]
    return int(top), conn.execute(f"SELECT min(ts) FROM main.{table}").fetchone()[0]
