"""The original collector's read API (``get_events``, ``get_pipeline``, ``get_stats``) over SQLite.

Each table stands for one legacy event type; the table → event mapping is declared once below.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otel_tele.exporters._sqlite_schema import connect

from ._dds_events import EventType, TelemetryEvent, event_type_of

RATE_WINDOW_S = 10.0


@dataclass(frozen=True)
class LegacyTable:
    table: str
    kind: EventType | None  # None: the row's own event_type column
    source: str | None  # None: the row's own source column
    payload: tuple[str, ...]
    has_cid: bool


TABLES: tuple[LegacyTable, ...] = (
    LegacyTable(
        "dds_commands",
        EventType.DDS_PUBLISH,
        "dds",
        ("seq", "funcode", "joint_id", "target_value", "data_json", "raw_len"),
        True,
    ),
    LegacyTable(
        "dds_feedback",
        EventType.DDS_RECEIVE,
        "dds",
        (
            "seq",
            "funcode",
            *(f"angle{i}" for i in range(7)),
            "power_status",
            "enable_status",
            "error_status",
            "recv_status",
            "exec_status",
        ),
        False,
    ),
    LegacyTable(
        "web_requests",
        EventType.CMD_SENT,
        "web",
        ("endpoint", "method", "params_json", "response_ms", "status_code", "ok"),
        True,
    ),
    LegacyTable(
        "camera_health",
        EventType.CAM_FRAME,
        "camera",
        (
            "camera_id",
            "actual_fps",
            "target_fps",
            "drop_count",
            "motion_score",
            "connected",
            "resolution_w",
            "resolution_h",
            "stalled",
        ),
        False,
    ),
    LegacyTable("system_events", None, None, ("detail", "data_json", "level"), True),
)


def empty_stats() -> dict[str, Any]:
    return {
        "total_events": 0,
        "rates_per_sec": {kind.value: 0.0 for kind in EventType},
        "staleness_ms": None,
        "avg_pipeline_latency_ms": 0.0,
        "active_correlations": 0,
    }


def _decode(payload: dict[str, Any]) -> dict[str, Any]:
    for key, name in (("data_json", "data"), ("params_json", "params")):
        text = payload.get(key)
        if isinstance(text, str):
            with contextlib.suppress(ValueError):
                payload[name] = json.loads(text)
                del payload[key]
    return {key: value for key, value in payload.items() if value is not None}


class Reader:
    """A read-only view of the robot database in the legacy shapes."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, db_path: Path | None) -> Reader | None:
        if db_path is None or not Path(db_path).exists():
            return None
        return cls(connect(db_path, read_only=True))

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def _select(self, spec: LegacyTable, where: str, params: list[Any], limit: int) -> list[TelemetryEvent]:
        columns = ["ts", *spec.payload]
        if spec.has_cid:
            columns.append("correlation_id")
        if spec.kind is None:
            columns += ["event_type", "source"]
        sql = f"SELECT {', '.join(columns)} FROM {spec.table} {where} ORDER BY ts DESC LIMIT ?"
        events = []
        for row in self.conn.execute(sql, [*params, limit]):
            values = dict(zip(columns, row, strict=True))
            ts_ms = values.pop("ts") * 1000
            cid = values.pop("correlation_id", None)
            kind = event_type_of(values.pop("event_type")) if spec.kind is None else spec.kind
            source = values.pop("source") if spec.source is None else spec.source
            events.append(TelemetryEvent(ts_ms, ts_ms, source, kind, _decode(values), cid))
        return events

    def events(self, limit: int, kind: EventType | str | None, source: str | None) -> list[TelemetryEvent]:
        limit = max(0, int(limit))
        found: list[TelemetryEvent] = []
        for spec in TABLES:
            where, params = [], []
            if kind is not None:
                if spec.kind is None:
                    where.append("event_type = ?")
                    params.append(kind.value if isinstance(kind, EventType) else kind)
                elif spec.kind is not kind:
                    continue
            if source is not None:
                if spec.source is None:
                    where.append("source = ?")
                    params.append(source)
                elif spec.source != source:
                    continue
            clause = f"WHERE {' AND '.join(where)}" if where else ""
            found += self._select(spec, clause, params, limit)
        found.sort(key=lambda event: event.wall_time_ms)
        return found[-limit:] if limit else []

    def pipeline(self, correlation_id: str) -> list[dict[str, Any]]:
        found: list[TelemetryEvent] = []
        for spec in TABLES:
            if spec.has_cid:
                found += self._select(spec, "WHERE correlation_id = ?", [str(correlation_id)], 10_000)
        found.sort(key=lambda event: event.wall_time_ms)
        steps = []
        for i, event in enumerate(found):
            kind = event.event_type
            steps.append(
                {
                    "event": {
                        "ts": event.wall_time_ms,
                        "type": kind.value if isinstance(kind, EventType) else kind,
                        "source": event.source,
                    },
                    "latency_ms": event.wall_time_ms - found[i - 1].wall_time_ms if i else 0.0,
                }
            )
        return steps

    def stats(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        since = now - RATE_WINDOW_S
        stats = empty_stats()
        newest: float | None = None
        spans: dict[str, list[float]] = {}
        for spec in TABLES:
            stats["total_events"] += self.conn.execute(f"SELECT count(*) FROM {spec.table}").fetchone()[0]
            last = self.conn.execute(f"SELECT max(ts) FROM {spec.table}").fetchone()[0]
            newest = last if newest is None or (last is not None and last > newest) else newest
            self._rates(spec, since, stats["rates_per_sec"])
            if spec.has_cid:
                rows = self.conn.execute(
                    f"SELECT correlation_id, min(ts), max(ts) FROM {spec.table} "
                    "WHERE ts >= ? AND correlation_id IS NOT NULL GROUP BY correlation_id",
                    (since,),
                )
                for cid, first, last_ts in rows:
                    bounds = spans.setdefault(cid, [first, last_ts])
                    bounds[0], bounds[1] = min(bounds[0], first), max(bounds[1], last_ts)
        stats["staleness_ms"] = (now - newest) * 1000 if newest is not None else None
        stats["active_correlations"] = len(spans)
        chains = [(last - first) * 1000 for first, last in spans.values()]
        stats["avg_pipeline_latency_ms"] = sum(chains) / len(chains) if chains else 0.0
        return stats

    def _rates(self, spec: LegacyTable, since: float, rates: dict[str, float]) -> None:
        if spec.kind is not None:
            count = self.conn.execute(
                f"SELECT count(*) FROM {spec.table} WHERE ts >= ?", (since,)
            ).fetchone()[0]
            rates[spec.kind.value] = rates.get(spec.kind.value, 0.0) + count / RATE_WINDOW_S
            return
        for kind, count in self.conn.execute(
            f"SELECT event_type, count(*) FROM {spec.table} WHERE ts >= ? GROUP BY event_type", (since,)
        ):
            rates[kind] = rates.get(kind, 0.0) + count / RATE_WINDOW_S
