"""The original collector's reads (``get_events``, ``get_pipeline``, ``get_stats``) over the robot database.

Each table but ``smoother_state`` stands for one legacy event type (:data:`TABLES`, its payload
columns taken from the sink's schema). The robot collector (instrumentation) imports no query code:
it calls :func:`for_telemetry`, named by the robot domain's descriptor (``Domain.reader``).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from otel_tele._pipeline import Pipeline
from otel_tele.exporters.sqlite import schema
from otel_tele.semconv.robot import EventType

SINK = "sqlite"


class StoredEvent(NamedTuple):
    """One stored row as a legacy event (``ts_ms``: wall time in ms)."""

    ts_ms: float
    source: str
    event_type: EventType | str
    payload: dict[str, Any]
    correlation_id: str | None


#: (event type, ts in epoch seconds): a row the caller already has as emitted.
Key = tuple["EventType | str", float]

# Columns that are the event's own fields, not its payload.
_NOT_PAYLOAD = frozenset({"ts", "ts_mono", "correlation_id", "event_type", "source"})


@dataclass(frozen=True)
class LegacyTable:
    table: str
    kind: EventType | None  # None: the row's own event_type column
    source: str | None  # None: the row's own source column

    @property
    def payload(self) -> tuple[str, ...]:
        return tuple(c for c in schema.TABLES[self.table].column_names if c not in _NOT_PAYLOAD)

    @property
    def has_cid(self) -> bool:
        return "correlation_id" in schema.TABLES[self.table].column_names


TABLES: tuple[LegacyTable, ...] = (
    LegacyTable("dds_commands", EventType.DDS_PUBLISH, "dds"),
    LegacyTable("dds_feedback", EventType.DDS_RECEIVE, "dds"),
    LegacyTable("web_requests", EventType.CMD_SENT, "web"),
    LegacyTable("camera_health", EventType.CAM_FRAME, "camera"),
    LegacyTable("system_events", None, None),
)


def _kind_of(value: Any) -> EventType | str:
    try:
        return EventType(value)
    except ValueError:
        return str(value)


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


def for_telemetry(telemetry: Pipeline) -> Reader:
    """A reader of the database ``telemetry``'s ``sqlite`` sink writes (empty without one): what the
    robot domain registers as its reader (``Domain.reader``)."""
    sink = telemetry.sinks.get(SINK)
    return Reader.open(sink.location() if sink is not None else None)


class Reader:
    """A read-only view of the robot database in the legacy shapes; answers empty while the database
    does not exist yet.

    Example::

        with Reader.open("data/telemetry.db") as reader:
            reader.events(100, None, None)
    """

    def __init__(self, conn: sqlite3.Connection | None) -> None:
        self.conn = conn

    @classmethod
    def open(cls, db_path: str | Path | None) -> Reader:
        if db_path is None or not Path(db_path).exists():
            return cls(None)
        return cls(schema.connect_read_only(db_path))

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()

    def _select(
        self, spec: LegacyTable, where: str, params: list[Any], limit: int, skip: Collection[Key] = ()
    ) -> list[tuple[float, StoredEvent]]:
        """(ts, event) of rows, newest first; rows whose (event type, ts) is in ``skip`` are left out (the
        caller has them as emitted) without shortening the answer."""
        assert self.conn is not None
        columns = ["ts", *spec.payload]
        if spec.has_cid:
            columns.append("correlation_id")
        if spec.kind is None:
            columns += ["event_type", "source"]
        sql = f"SELECT {', '.join(columns)} FROM {spec.table} {where} ORDER BY ts DESC LIMIT ?"
        events: list[tuple[float, StoredEvent]] = []
        for row in self.conn.execute(sql, [*params, limit + len(skip)]):
            values = dict(zip(columns, row, strict=True))
            ts = values.pop("ts")
            kind = _kind_of(values.pop("event_type")) if spec.kind is None else spec.kind
            if (kind, ts) in skip:
                continue
            cid = values.pop("correlation_id", None)
            source = values.pop("source") if spec.source is None else spec.source
            events.append((ts, StoredEvent(ts * 1000, source, kind, _decode(values), cid)))
        return events[:limit]

    def events(
        self, limit: int, kind: EventType | str | None, source: str | None, skip: Collection[Key] = ()
    ) -> list[StoredEvent]:
        """The newest ``limit`` stored events (oldest first), optionally of one type or source."""
        limit = max(0, int(limit))
        found: list[tuple[float, StoredEvent]] = []
        if self.conn is None or not limit:
            return []
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
        found.sort(key=lambda pair: pair[0])
        return [event for _, event in found[-limit:]]

    def correlated(self, correlation_id: str, skip: Collection[Key] = ()) -> list[StoredEvent]:
        """Stored events sharing ``correlation_id``."""
        found: list[StoredEvent] = []
        if self.conn is None:
            return found
        for spec in TABLES:
            if spec.has_cid:
                rows = self._select(spec, "WHERE correlation_id = ?", [str(correlation_id)], 10_000, skip)
                found += [event for _, event in rows]
        return found

    def stats(self, now: float | None = None, window_s: float = 10.0) -> dict[str, Any]:
        """``get_stats``' figures over what is stored; rates over the last ``window_s``."""
        now = time.time() if now is None else now
        stats = empty_stats()
        if self.conn is None:
            return stats
        since = now - window_s
        newest: float | None = None
        spans: dict[str, list[float]] = {}
        for spec in TABLES:
            stats["total_events"] += self.conn.execute(f"SELECT count(*) FROM {spec.table}").fetchone()[0]
            last = self.conn.execute(f"SELECT max(ts) FROM {spec.table}").fetchone()[0]
            newest = last if newest is None or (last is not None and last > newest) else newest
            self._rates(spec, since, window_s, stats["rates_per_sec"])
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

    def _rates(self, spec: LegacyTable, since: float, window_s: float, rates: dict[str, float]) -> None:
        assert self.conn is not None
        if spec.kind is not None:
            count = self.conn.execute(
                f"SELECT count(*) FROM {spec.table} WHERE ts >= ?", (since,)
            ).fetchone()[0]
            rates[spec.kind.value] = rates.get(spec.kind.value, 0.0) + count / window_s
            return
        for kind, count in self.conn.execute(
            f"SELECT event_type, count(*) FROM {spec.table} WHERE ts >= ? GROUP BY event_type", (since,)
        ):
            rates[kind] = rates.get(kind, 0.0) + count / window_s
