"""Helpers of :mod:`otel_tele.robot_query`: time arguments, filters and percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from otel_tele.exporters.sqlite.schema import TABLE_NAMES

TimeArg = float | int | str | datetime | None
TimeRange = tuple[TimeArg, TimeArg] | None

#: The tables a generic read (debug endpoint, export) may name.
ROBOT_TABLES: tuple[str, ...] = TABLE_NAMES


def parse_time(value: TimeArg, what: str = "time") -> float | None:
    """Epoch seconds from a number, a numeric string or an ISO-8601 string (naive means UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise ValueError(f"{what}: expected a finite epoch time, got {value!r}")
        return seconds
    elif isinstance(value, str):
        text = value.strip()
        try:
            return parse_time(float(text), what)
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{what}: expected epoch seconds or an ISO-8601 time, got {value!r}") from None
    else:
        raise ValueError(f"{what}: expected epoch seconds or an ISO-8601 time, got {type(value).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def window(time_range: TimeRange, start: TimeArg, end: TimeArg) -> tuple[float | None, float | None]:
    """(lo, hi) from the spec's ``time_range`` tuple or the original ``start=``/``end=`` keywords."""
    if time_range is not None:
        if not isinstance(time_range, tuple | list) or len(time_range) != 2:
            raise ValueError(f"time_range: expected (start, end), got {time_range!r}")
        start = time_range[0] if start is None else start
        end = time_range[1] if end is None else end
    lo, hi = parse_time(start, "start"), parse_time(end, "end")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"the time range is inverted: start {start!r} is after end {end!r}")
    return lo, hi


def time_clause(
    lo: float | None, hi: float | None, clauses: list[str], params: list[Any], column: str = "ts"
) -> None:
    if lo is not None:
        clauses.append(f"{column} >= ?")
        params.append(lo)
    if hi is not None:
        clauses.append(f"{column} <= ?")
        params.append(hi)


def filters(
    time_range: TimeRange = None, start: TimeArg = None, end: TimeArg = None, **equals: Any
) -> tuple[list[str], list[Any]]:
    """WHERE clauses and parameters: ``column = ?`` for every non-None keyword, then the time window."""
    clauses = [f"{column} = ?" for column, value in equals.items() if value is not None]
    params = [value for value in equals.values() if value is not None]
    time_clause(*window(time_range, start, end), clauses, params)
    return clauses, params


def where(clauses: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""


def check_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit: expected a non-negative integer, got {limit!r}")
    return limit


def check_joint(joint: Any) -> int:
    if isinstance(joint, bool) or not isinstance(joint, int) or not 0 <= joint <= 6:
        raise ValueError(f"joint: expected 0-6 (6 is the gripper), got {joint!r}")
    return joint


def nearest_rank(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-quantile by nearest rank (no interpolation): a value that was actually observed."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_block(sorted_values: Sequence[float]) -> dict[str, Any]:
    count = len(sorted_values)
    return {
        "count": count,
        "mean_ms": sum(sorted_values) / count if count else None,
        "p50_ms": nearest_rank(sorted_values, 0.50),
        "p95_ms": nearest_rank(sorted_values, 0.95),
        "p99_ms": nearest_rank(sorted_values, 0.99),
        "max_ms": sorted_values[-1] if count else None,
        "percentile_rel_error": 0.0,
    }
