"""``GET /api/debug/query?table=…&limit=…``: the spec's debug endpoint over the robot database, as an
``APIRouter`` to mount (``otel-tele serve`` mounts it through the robot domain's descriptor).

Example::

    from otel_tele.http_robot import debug_router

    app.include_router(debug_router())   # the database of the running pipeline
"""

from __future__ import annotations

import logging
import math
import sqlite3
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException

from otel_tele._http_limits import ascii_int
from otel_tele.instrumentation.robot import current_collector
from otel_tele.robot_query import ROBOT_TABLES, TelemetryQuery

MAX_LIMIT = 1_000
_log = logging.getLogger("otel_tele")


def _json_safe(row: dict[str, Any]) -> dict[str, Any]:
    # JSON has no NaN/inf; say what was stored instead of failing the response.
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def default_db_path() -> Path:
    """The database of the running pipeline: global ``setup()``'s sink, else the collector's, else the
    configured data dir."""
    from otel_tele._settings import resolve
    from otel_tele._setup import get_telemetry
    from otel_tele.exporters.sqlite.schema import DB_NAME

    telemetry = get_telemetry()
    sink = telemetry.sinks.get("sqlite") if telemetry is not None else None
    if sink is not None:
        return Path(sink.location())
    collector = current_collector()
    if collector is not None and collector.db_path is not None:
        return collector.db_path
    return Path(resolve({}).data_dir) / DB_NAME


def debug_router(
    db_path: str | Path | None = None, *, prefix: str = "/api/debug", max_limit: int = MAX_LIMIT
) -> APIRouter:
    """An ``APIRouter`` serving ``GET {prefix}/query?table=<one of the six>&limit=<1..max_limit>``.

    The table is allow-listed, the limit bounded, the connection read-only; anything else is a 400.

    Example::

        app.include_router(debug_router())
    """
    router = APIRouter(prefix=prefix, tags=["telemetry"])

    @router.get("/query")
    def query(table: str = "", limit: str = "100") -> dict[str, Any]:
        if table not in ROBOT_TABLES:
            raise HTTPException(400, f"unknown table; expected one of: {', '.join(ROBOT_TABLES)}")
        count = ascii_int(limit, low=1, high=max_limit)
        if count is None:
            raise HTTPException(400, f"limit must be an integer from 1 to {max_limit} in ASCII digits")
        path = Path(db_path) if db_path is not None else default_db_path()
        try:
            with TelemetryQuery(path) as q:
                rows = q.rows(table, count)
        except FileNotFoundError:
            raise HTTPException(404, "no telemetry database yet") from None
        except sqlite3.DatabaseError as exc:  # corrupt or not a database: say so, never where
            _log.error("debug query on the telemetry database failed: %s", type(exc).__name__)
            raise HTTPException(503, "the telemetry database cannot be read") from None
        return {
            "table": table,
            "limit": count,
            "count": len(rows),
            "rows": [_json_safe(r) for r in rows],
        }

    return router
