"""The original collector's read API (``get_events``, ``get_pipeline``, ``get_stats``) over SQLite.

Each table stands for one legacy event type; the table → event mapping is declared once below.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otel_tele.exporters._sqlite_schema import connect

from ._dds_events import ROUTES, EventType, TelemetryEvent, event_type_of, system_route

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


def table_of(kind: EventType | str) -> str | None:
    """The table ``emit()`` stores an event of this type in (None: not stored, as ``WS_SEND``)."""
    if ROUTES.get(kind, system_route) is None:
        return None
    return next((spec.table for spec in TABLES if spec.kind is kind), "system_events")


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

    def _select(
        self,
        spec: LegacyTable,
        where: str,
        params: list[Any],
        limit: int,
        skip: Collection[tuple[str, float]] = (),
    ) -> list[TelemetryEvent]:
        """Rows as events, newest first; rows whose (table, ts) is in ``skip`` are left out (the
        caller has them as emitted) without shortening the answer."""
        columns = ["ts", *spec.payload]
        if spec.has_cid:
            columns.append("correlation_id")
        if spec.kind is None:
            columns += ["event_type", "source"]
        sql = f"SELECT {', '.join(columns)} FROM {spec.table} {where} ORDER BY ts DESC LIMIT ?"
        events = []
        for row in self.conn.execute(sql, [*params, limit + len(skip)]):
            if (spec.table, row[0]) in skip:
                continue
            values = dict(zip(columns, row, strict=True))
            ts_ms = values.pop("ts") * 1000
            cid = values.pop("correlation_id", None)
            kind = event_type_of(values.pop("event_type")) if spec.kind is None else spec.kind
            source = values.pop("source") if spec.source is None else spec.source
            events.append(TelemetryEvent(ts_ms, ts_ms, source, kind, _decode(values), cid))
        return events[:limit]

    def events(
        self,
        limit: int,
        kind: EventType | str | None,
        source: str | None,
        skip: Collection[tuple[str, float]] = (),
    ) -> list[TelemetryEvent]:
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
            found += self._select(spec, clause, params, limit, skip)
        found.sort(key=lambda event: event.wall_time_ms)
        return found[-limit:] if limit else []

    def correlated(
        self, correlation_id: str, skip: Collection[tuple[str, float]] = ()
    ) -> list[TelemetryEvent]:
        """Stored events sharing ``correlation_id``."""
        found: list[TelemetryEvent] = []
        for spec in TABLES:
            if spec.has_cid:
                found += self._select(spec, "WHERE correlation_id = ?", [str(correlation_id)], 10_000, skip)
        return found

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


def pipeline_steps(events: Iterable[TelemetryEvent]) -> list[dict[str, Any]]:
    """``get_pipeline``'s shape: the events in time order, each with ``latency_ms`` to the previous."""
    found = sorted(events, key=lambda event: event.wall_time_ms)
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


def add_unstored(stats: dict[str, Any], events: Iterable[TelemetryEvent], now: float) -> None:
    """Count emitted events that no table keeps (``WS_SEND``) into ``get_stats``' figures."""
    since_ms = (now - RATE_WINDOW_S) * 1000
    rates = stats["rates_per_sec"]
    newest: float | None = None
    for event in events:
        stats["total_events"] += 1
        newest = event.wall_time_ms if newest is None else max(newest, event.wall_time_ms)
        if event.wall_time_ms >= since_ms:
            kind = event.event_type
            name = kind.value if isinstance(kind, EventType) else kind
            rates[name] = rates.get(name, 0.0) + 1 / RATE_WINDOW_S
    if newest is not None:
        staleness = max(0.0, now * 1000 - newest)
        current = stats["staleness_ms"]
        stats["staleness_ms"] = staleness if current is None else min(current, staleness)
