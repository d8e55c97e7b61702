"""Read-only queries over the robot telemetry database (spec 004) — behind the CLI and HTTP routes.

Both spellings users have code against work: spec 004's (``time_range=(start, end)``,
``get_web_latency_stats``, ``get_session_summary`` …) and the original th3cl4w API (``start=``/``end=``
keywords taking epoch seconds or ISO-8601 strings, ``summary()``, ``tail()``, ``get_system_events`` …).
Lists come newest first, as the original returned them. Naive ISO times are read as UTC.

Example::

    from otel_tele.robot_query import TelemetryQuery

    with TelemetryQuery("telemetry/telemetry.db") as q:
        print(q.get_session_summary())
        print(q.get_tracking_error(2, delay_s=0.2)["mean_error_deg"])
        print(q.get_web_latency_stats()["p95_ms"])
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from otel_tele.exporters.sqlite.schema import COUNT_SERIES, connect_read_only

from ._robot_digest import DigestReader
from ._robot_query import (
    ROBOT_TABLES,
    TimeArg,
    TimeRange,
    check_joint,
    check_limit,
    filters,
    latency_block,
    time_clause,
    where,
    window,
)
from ._robot_query import parse_time as parse_time

__all__ = ["ROBOT_TABLES", "TelemetryQuery", "parse_time"]

DEFAULT_DB_PATH = "data/telemetry.db"
Row = dict[str, Any]


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


class TelemetryQuery:
    """A read-only (``mode=ro``) connection to ``telemetry.db`` with the spec's queries.

    Windowed counts and latency statistics come from the sink's digest sidecar
    (``telemetry.digest.db``) when it is in step: exact counts, means and maxima, percentiles within
    2 %. ``exact=True`` reads every row instead (exact percentiles, slower on large tables).

    Raises ``FileNotFoundError`` for a missing file and ``sqlite3.DatabaseError`` for one that is
    not a telemetry database. Use it as a context manager or call :meth:`close`.
    """

    def __init__(self, db_path: str | Path = DEFAULT_DB_PATH, *, exact: bool = False) -> None:
        self.db_path = Path(db_path)
        if self.db_path.is_dir():
            raise IsADirectoryError(
                f"{self.db_path} is a folder, not a telemetry database (the file is usually "
                f"{self.db_path / 'telemetry.db'})"
            )
        if not self.db_path.is_file():
            raise FileNotFoundError(f"telemetry database not found: {self.db_path}")
        self._conn = connect_read_only(self.db_path)
        try:
            names = {
                row[0] for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise sqlite3.DatabaseError(
                f"{self.db_path} is not a readable telemetry database: {exc}"
            ) from exc
        missing = [table for table in ROBOT_TABLES if table not in names]
        if missing:
            self._conn.close()
            raise sqlite3.DatabaseError(
                f"{self.db_path} is not a telemetry database (missing {', '.join(missing)})"
            )
        self._conn.row_factory = _dict_row
        self._digest = DigestReader(self._conn, self.db_path, enabled=not exact)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> TelemetryQuery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _all(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[Row]:
        rows: list[Row] = self._conn.execute(sql, params).fetchall()
        return rows

    def _one(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> Any:
        row = self._conn.execute(sql, params).fetchone()
        return next(iter(row.values())) if row else None

    def _rows(self, table: str, columns: str, clauses: list[str], params: list[Any], limit: int) -> list[Row]:
        sql = f"SELECT {columns} FROM {table}{where(clauses)} ORDER BY ts DESC LIMIT ?"
        return self._all(sql, [*params, check_limit(limit)])

    # -- commands ------------------------------------------------------------------------------
    def get_commands(
        self,
        time_range: TimeRange = None,
        funcode: int | None = None,
        limit: int = 1000,
        *,
        start: TimeArg = None,
        end: TimeArg = None,
    ) -> list[Row]:
        """``dds_commands`` rows, newest first."""
        clauses: list[str] = []
        params: list[Any] = []
        time_clause(*window(time_range, start, end), clauses, params)
        if funcode is not None:
            # ``+`` keeps the planner on the ts index: ORDER BY ts LIMIT stops early instead of sorting.
            clauses.append("+funcode = ?")
            params.append(int(funcode))
        return self._rows("dds_commands", "*", clauses, params, limit)

    def get_command_count(self, start: TimeArg = None, end: TimeArg = None) -> int:
        fast = self._digest.counts(["dds_commands"], *window(None, start, end))
        if fast is not None:
            return fast["dds_commands"]
        clauses, params = filters(None, start, end)
        return int(self._one(f"SELECT count(*) FROM dds_commands{where(clauses)}", params))

    def get_command_rate(self, window_s: float = 10.0, *, window_seconds: float | None = None) -> Row:
        """``{total_commands, rate_hz, by_funcode: {funcode: rate_hz}}`` over the last ``window_s``."""
        span = _positive(window_seconds if window_seconds is not None else window_s, "window_s")
        rows = self._all(
            "SELECT funcode, count(*) AS n FROM dds_commands WHERE ts >= ? GROUP BY +funcode",
            (time.time() - span,),
        )
        total = sum(row["n"] for row in rows)
        return {
            "total_commands": total,
            "rate_hz": total / span,
            "window_s": span,
            "by_funcode": {row["funcode"]: row["n"] / span for row in rows},
        }

    def get_feedback_rate(self, window_s: float = 10.0, *, window_seconds: float | None = None) -> Row:
        """``{total_feedback, rate_hz, by_funcode}`` over the last ``window_s``."""
        span = _positive(window_seconds if window_seconds is not None else window_s, "window_s")
        rows = self._all(
            "SELECT funcode, count(*) AS n FROM dds_feedback WHERE ts >= ? GROUP BY +funcode",
            (time.time() - span,),
        )
        total = sum(row["n"] for row in rows)
        return {
            "total_feedback": total,
            "rate_hz": total / span,
            "window_s": span,
            "by_funcode": {row["funcode"]: row["n"] / span for row in rows},
        }

    # -- feedback / joints ---------------------------------------------------------------------
    def get_joint_history(
        self,
        joint: int,
        time_range: TimeRange = None,
        limit: int = 5000,
        *,
        start: TimeArg = None,
        end: TimeArg = None,
    ) -> list[Row]:
        """``[{ts, angle}]`` of one joint (6: gripper) from angle feedback, newest first."""
        column = f"angle{check_joint(joint)}"
        clauses, params = ["+funcode = 1", f"{column} IS NOT NULL"], list[Any]()
        time_clause(*window(time_range, start, end), clauses, params)
        return self._rows("dds_feedback", f"ts, {column} AS angle", clauses, params, limit)

    def get_all_joints_snapshot(
        self, time_range: TimeRange = None, limit: int = 1000, *, start: TimeArg = None, end: TimeArg = None
    ) -> list[Row]:
        """Full angle snapshots (``funcode = 1``), newest first."""
        clauses, params = ["+funcode = 1"], list[Any]()
        time_clause(*window(time_range, start, end), clauses, params)
        angles = ", ".join(f"angle{i}" for i in range(7))
        return self._rows("dds_feedback", f"ts, seq, {angles}", clauses, params, limit)

    def get_latest_feedback(self) -> Row | None:
        rows = self._all("SELECT * FROM dds_feedback WHERE +funcode = 1 ORDER BY ts DESC LIMIT 1")
        return rows[0] if rows else None

    def get_gripper_log(
        self, time_range: TimeRange = None, limit: int = 1000, *, start: TimeArg = None, end: TimeArg = None
    ) -> list[Row]:
        """``[{ts, position, source}]``: gripper commands (joint 6) and ``angle6`` feedback, newest first."""
        limit = check_limit(limit)
        clauses: list[str] = []
        params: list[Any] = []
        time_clause(*window(time_range, start, end), clauses, params)
        extra = "".join(f" AND {c}" for c in clauses)
        sql = (
            "SELECT * FROM (SELECT ts, target_value AS position, 'command' AS source FROM dds_commands "
            f"WHERE joint_id = 6 AND +funcode = 1{extra} ORDER BY ts DESC LIMIT ?) UNION ALL "
            "SELECT * FROM (SELECT ts, angle6 AS position, 'feedback' AS source FROM dds_feedback "
            f"WHERE +funcode = 1 AND angle6 IS NOT NULL{extra} ORDER BY ts DESC LIMIT ?) "
            "ORDER BY ts DESC LIMIT ?"
        )
        return self._all(sql, [*params, limit, *params, limit, limit])

    # -- tracking error ------------------------------------------------------------------------
    def get_tracking_error(
        self,
        joint: int,
        time_range: TimeRange = None,
        delay_s: float = 0.2,
        *,
        start: TimeArg = None,
        end: TimeArg = None,
        limit: int = 1000,
        max_gap_s: float = 1.0,
    ) -> Row:
        """Commanded vs actual: each of the newest ``limit`` commands to ``joint`` is paired with the
        angle feedback closest to ``command.ts + delay_s`` (none further than ``max_gap_s``).

        Returns ``{mean_error_deg, max_error_deg, samples, errors: [{ts, target, actual, error}]}``
        (errors oldest first).
        """
        column = f"angle{check_joint(joint)}"
        clauses, params = ["joint_id = ?", "target_value IS NOT NULL"], [joint]
        time_clause(*window(time_range, start, end), clauses, params)
        near = f"FROM dds_feedback f WHERE +f.funcode = 1 AND f.{column} IS NOT NULL AND f.ts"
        sql = (
            f"WITH c AS (SELECT ts, target_value FROM dds_commands{where(clauses)} ORDER BY ts DESC LIMIT ?) "
            f"SELECT c.ts, c.target_value, "
            f"(SELECT f.id {near} >= c.ts + ? ORDER BY f.ts LIMIT 1) AS after_id, "
            f"(SELECT f.id {near} < c.ts + ? ORDER BY f.ts DESC LIMIT 1) AS before_id FROM c"
        )
        commands = self._all(sql, [*params, check_limit(limit), delay_s, delay_s])
        ids = sorted({i for c in commands for i in (c["after_id"], c["before_id"]) if i is not None})
        feedback: dict[int, tuple[float, float]] = {}
        for chunk in range(0, len(ids), 900):
            part = ids[chunk : chunk + 900]
            for row in self._all(
                f"SELECT id, ts, {column} AS angle FROM dds_feedback WHERE id IN "
                f"({','.join('?' * len(part))})",
                part,
            ):
                feedback[row["id"]] = (row["ts"], row["angle"])
        errors = []
        for command in sorted(commands, key=lambda c: c["ts"]):
            wanted = command["ts"] + delay_s
            candidates = [feedback[i] for i in (command["after_id"], command["before_id"]) if i in feedback]
            if not candidates:
                continue
            fb_ts, actual = min(candidates, key=lambda fb: abs(fb[0] - wanted))
            if abs(fb_ts - wanted) > max_gap_s:
                continue
            target = command["target_value"]
            errors.append(
                {
                    "ts": command["ts"],
                    "target": target,
                    "actual": actual,
                    "error": abs(target - actual),
                    "feedback_ts": fb_ts,
                }
            )
        values = [e["error"] for e in errors]
        return {
            "joint": joint,
            "delay_s": delay_s,
            "samples": len(errors),
            "mean_error_deg": sum(values) / len(values) if values else 0.0,
            "max_error_deg": max(values) if values else 0.0,
            "errors": errors,
        }

    # -- smoother ------------------------------------------------------------------------------
    def get_smoother_history(
        self,
        joint: int,
        time_range: TimeRange = None,
        limit: int = 2000,
        *,
        start: TimeArg = None,
        end: TimeArg = None,
    ) -> list[Row]:
        """``[{ts, target, current, sent, step_size}]`` of one joint, newest first."""
        clauses, params = ["joint_id = ?"], [check_joint(joint)]
        time_clause(*window(time_range, start, end), clauses, params)
        return self._rows("smoother_state", "ts, target, current, sent, step_size", clauses, params, limit)

    def get_smoother_state(
        self, joint: int | None = None, *, start: TimeArg = None, end: TimeArg = None, limit: int = 2000
    ) -> list[Row]:
        """Whole ``smoother_state`` rows (all joints unless ``joint``), newest first."""
        clauses: list[str] = []
        params: list[Any] = []
        if joint is not None:
            clauses.append("joint_id = ?")
            params.append(check_joint(joint))
        time_clause(*window(None, start, end), clauses, params)
        return self._rows("smoother_state", "*", clauses, params, limit)

    # -- web -----------------------------------------------------------------------------------
    def get_web_requests(
        self,
        time_range: TimeRange = None,
        endpoint: str | None = None,
        limit: int = 500,
        *,
        start: TimeArg = None,
        end: TimeArg = None,
    ) -> list[Row]:
        """``web_requests`` rows, newest first."""
        clauses, params = filters(time_range, start, end, endpoint=_text(endpoint))
        return self._rows("web_requests", "*", clauses, params, limit)

    def get_web_request_latency(
        self, endpoint: str | None = None, *, start: TimeArg = None, end: TimeArg = None, limit: int = 500
    ) -> list[Row]:
        """The original API: request rows (with ``response_ms``), newest first."""
        return self.get_web_requests(None, endpoint, limit, start=start, end=end)

    def get_web_latency_stats(
        self, time_range: TimeRange = None, *, start: TimeArg = None, end: TimeArg = None
    ) -> Row:
        """``{count, mean_ms, p50_ms, p95_ms, p99_ms, max_ms, percentile_rel_error, by_endpoint:
        {endpoint: {...}}}`` (nearest-rank percentiles over every request with a response time).

        Counts, means and maxima are exact. Percentiles come from the sink's digest within
        ``percentile_rel_error`` (0.01) of the exact value, and are exact (0.0) for windows of at most
        20,000 requests or when the digest is missing or out of step."""
        lo, hi = window(time_range, start, end)
        fast = self._digest.latency_stats(lo, hi)
        if fast is not None:
            return fast
        clauses, params = ["response_ms IS NOT NULL"], list[Any]()
        time_clause(lo, hi, clauses, params)
        by_endpoint: dict[str, list[float]] = {}
        cursor = self._conn.cursor()
        cursor.row_factory = None
        for endpoint, value in cursor.execute(
            f"SELECT endpoint, response_ms FROM web_requests{where(clauses)}", params
        ):
            by_endpoint.setdefault(endpoint, []).append(value)
        every: list[float] = []
        blocks = {}
        for endpoint, values in sorted(by_endpoint.items()):
            values.sort()
            every += values
            blocks[endpoint] = latency_block(values)
        every.sort()
        return {**latency_block(every), "by_endpoint": blocks}

    # -- cameras and system events -------------------------------------------------------------
    def get_camera_health(
        self,
        camera_id: str | None = None,
        time_range: TimeRange = None,
        limit: int = 500,
        *,
        start: TimeArg = None,
        end: TimeArg = None,
    ) -> list[Row]:
        """``camera_health`` snapshots, newest first."""
        clauses, params = filters(time_range, start, end, camera_id=_text(camera_id))
        return self._rows("camera_health", "*", clauses, params, limit)

    def get_events(
        self,
        event_type: str | None = None,
        source: str | None = None,
        level: str | None = None,
        time_range: TimeRange = None,
        limit: int = 500,
        *,
        start: TimeArg = None,
        end: TimeArg = None,
    ) -> list[Row]:
        """``system_events`` rows, newest first."""
        clauses, params = filters(
            time_range, start, end, event_type=_text(event_type), source=_text(source), level=_text(level)
        )
        return self._rows("system_events", "*", clauses, params, limit)

    def get_system_events(
        self,
        event_type: str | None = None,
        source: str | None = None,
        level: str | None = None,
        *,
        start: TimeArg = None,
        end: TimeArg = None,
        limit: int = 500,
    ) -> list[Row]:
        """The original name of :meth:`get_events`."""
        return self.get_events(event_type, source, level, None, limit, start=start, end=end)

    def tail(
        self, limit: int = 50, event_types: list[str] | None = None, *, after_id: int | None = None
    ) -> list[Row]:
        """The newest system events (newest first); with ``after_id``, only rows stored after that one."""
        clauses: list[str] = []
        params: list[Any] = []
        if event_types:
            clauses.append(f"event_type IN ({','.join('?' * len(event_types))})")
            params += [str(t) for t in event_types]
        if after_id is not None:
            clauses.append("id > ?")
            params.append(int(after_id))
        sql = f"SELECT * FROM system_events{where(clauses)} ORDER BY id DESC LIMIT ?"
        return self._all(sql, [*params, check_limit(limit)])

    # -- utilities -----------------------------------------------------------------------------
    def get_session_summary(self, *, start: TimeArg = None, end: TimeArg = None) -> Row:
        """``{first_event_ts, last_event_ts, duration_s, total_commands, total_feedback, total_events,
        command_rate_hz, feedback_rate_hz, error_count}`` over every table."""
        clauses, params = filters(None, start, end)
        lo, hi = window(None, start, end)
        firsts, lasts = [], []
        for table in ROBOT_TABLES:
            firsts.append(self._one(f"SELECT min(ts) FROM {table}{where(clauses)}", params))
            lasts.append(self._one(f"SELECT max(ts) FROM {table}{where(clauses)}", params))
        first = min((t for t in firsts if t is not None), default=None)
        last = max((t for t in lasts if t is not None), default=None)
        duration = (last - first) if first is not None and last is not None else 0.0
        counts = self._digest.counts(list(COUNT_SERIES), lo, hi)
        if counts is None:
            counts = {
                table: self._one(f"SELECT count(*) FROM {table}{where(clauses)}", params)
                for table in ("dds_commands", "dds_feedback", "system_events")
            }
            counts["error_events"] = self._one(
                f"SELECT count(*) FROM system_events{where([*clauses, 'level = ?'])}", [*params, "error"]
            )
        errors = counts["error_events"]
        return {
            "first_event_ts": first,
            "last_event_ts": last,
            "duration_s": duration,
            "total_commands": counts["dds_commands"],
            "total_feedback": counts["dds_feedback"],
            "total_events": counts["system_events"],
            "command_rate_hz": counts["dds_commands"] / duration if duration > 0 else 0.0,
            "feedback_rate_hz": counts["dds_feedback"] / duration if duration > 0 else 0.0,
            "error_count": errors,
        }

    def summary(self, *, start: TimeArg = None, end: TimeArg = None) -> Row:
        """The original name of :meth:`get_session_summary`."""
        return self.get_session_summary(start=start, end=end)

    def get_db_stats(self) -> Row:
        """``{table_name: row_count, …, "db_size_bytes", "wal_size_bytes", "schema_version"}``."""
        stats: Row = {table: self._one(f"SELECT count(*) FROM {table}") for table in ROBOT_TABLES}
        stats["db_size_bytes"] = self.db_path.stat().st_size
        wal = self.db_path.with_name(self.db_path.name + "-wal")
        stats["wal_size_bytes"] = wal.stat().st_size if wal.exists() else 0
        stats["schema_version"] = self._one("PRAGMA user_version")
        return stats

    def rows(self, table: str, limit: int = 100, *, start: TimeArg = None, end: TimeArg = None) -> list[Row]:
        """Newest rows of one of the six tables (the debug endpoint); ``ValueError`` for any other name."""
        clauses, params = filters(None, start, end)
        return self._rows(_table(table), "*", clauses, params, limit)

    def iter_rows(self, table: str, *, start: TimeArg = None, end: TimeArg = None) -> Iterator[Row]:
        """Every row of one table, oldest first, streamed (export). Bad arguments raise at the call."""
        clauses, params = filters(None, start, end)
        return iter(self._conn.execute(f"SELECT * FROM {_table(table)}{where(clauses)} ORDER BY id", params))

    def columns(self, table: str) -> list[str]:
        """The column names of one table, in order."""
        return [row["name"] for row in self._all(f"PRAGMA table_info({_table(table)})")]


def _table(name: Any) -> str:
    if name not in ROBOT_TABLES:
        raise ValueError(f"unknown table {name!r}; expected one of {', '.join(ROBOT_TABLES)}")
    return str(name)


def _positive(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        raise ValueError(f"{what}: expected a positive number of seconds, got {value!r}")
    return float(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
