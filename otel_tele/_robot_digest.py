"""Fast paths of :class:`~otel_tele.robot_query.TelemetryQuery` over the sink's digest sidecar.

A window ``[lo, hi]`` is split into whole 16 s units, read from the digest (latency: a few aligned
units of ``16·2^k`` s), and the rest — rows at the window's two ends, rows outside the unit range and
rows newer than the digest's watermark — read raw from ``telemetry.db``. Counts, sums and maxima are
exact; percentiles are within ``ALPHA`` (2 %) relative error, and exact whenever the window holds at
most :data:`EXACT_LIMIT` requests. Every method returns ``None`` when the digest is missing, stale or
unreadable, and the caller computes exactly.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

from otel_tele.exporters.sqlite.schema import (
    ALPHA,
    COUNT_SERIES,
    DIGEST_VERSION,
    LEVELS,
    TS_END,
    UNIT_S,
    bin_value,
    digest_path,
    main_mark,
)
from otel_tele.exporters.sqlite.schema import DIGEST_SCHEMA as SCHEMA

#: Windows with at most this many requests get exact percentiles (reading them is cheap).
EXACT_LIMIT = 20_000
#: More rows than this above the digest's watermark (a sink that gave the digest up): exact path.
DELTA_LIMIT = 50_000
_UNITS_END = int(TS_END / UNIT_S)


def split(lo: float | None, hi: float | None) -> tuple[int, int, list[tuple[float, float, bool]]]:
    """Whole units ``[a, b)`` inside ``[lo, hi]`` and the raw ``(from, to, to_inclusive)`` ts ranges
    around them (unbounded ends are ±inf)."""
    low = -math.inf if lo is None else lo
    high = math.inf if hi is None else hi
    a = 0 if lo is None else max(0, min(_UNITS_END, math.ceil(lo / UNIT_S)))
    b = _UNITS_END if hi is None else max(0, min(_UNITS_END, math.floor(hi / UNIT_S)))
    if a >= b:
        return 0, 0, [(low, high, True)]
    return a, b, [(low, a * UNIT_S, False), (b * UNIT_S, high, True)]


def decompose(a: int, b: int, floor: int | None = None, ceiling: int | None = None) -> list[tuple[int, int]]:
    """``[a, b)`` of level-0 units as few aligned ``(level, unit)`` blocks as the levels allow.

    Units in ``[floor, a)`` and ``[b, ceiling)`` hold no data, so blocks may reach into them: a
    window up to now is then one block per level at most.
    """
    low = a if floor is None else floor
    high = b if ceiling is None else ceiling
    blocks: list[tuple[int, int]] = []
    while a < b:
        level = 0
        while level + 1 < LEVELS:
            start = (a >> (level + 1)) << (level + 1)
            if start < low or start + (2 << level) > high:
                break
            level += 1
        blocks.append((level, a >> level))
        a = ((a >> level) + 1) << level
        low = a
    return blocks


class DigestReader:
    """Reads ``telemetry.digest.db`` attached (read-only) to a TelemetryQuery connection."""

    def __init__(self, conn: sqlite3.Connection, db_path: Path, *, enabled: bool = True) -> None:
        self._conn = conn
        self.path = digest_path(db_path)
        self._attached = False
        self.enabled = enabled

    def _attach(self) -> bool:
        if self._attached:
            return True
        if not self.enabled or not self.path.is_file():
            return False
        try:
            self._conn.execute(
                f"ATTACH DATABASE ? AS {SCHEMA}", (f"file:{self.path.resolve().as_posix()}?mode=ro",)
            )
            self._attached = True
            if self._value(f"PRAGMA {SCHEMA}.user_version") != DIGEST_VERSION:
                return self._give_up()
        except sqlite3.Error:
            return self._give_up()
        return True

    def _give_up(self) -> bool:
        if self._attached:
            self._attached = False
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute(f"DETACH DATABASE {SCHEMA}")
        return False

    def _value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cursor = self._conn.cursor()
        cursor.row_factory = None
        row = cursor.execute(sql, params).fetchone()
        return row[0] if row else None

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self._conn.cursor()
        cursor.row_factory = None
        return cursor.execute(sql, params).fetchall()

    def _read(self, tables: Iterable[str], body: Any) -> Any:
        """``body(marks)`` in one read transaction, digest read first (so telemetry.db is at least as
        new); ``None`` if the digest is missing or out of step with telemetry.db."""
        if not self._attach():
            return None
        try:
            self._conn.execute("BEGIN")
            try:
                marks = {
                    row[0]: (row[1], row[2])
                    for row in self._rows(f"SELECT tbl, max_id, min_ts FROM {SCHEMA}.watermark")
                }
                for table in tables:
                    if table not in marks or not self._in_step(table, *marks[table]):
                        return None
                return body({table: marks[table][0] for table in tables})
            finally:
                self._conn.execute("COMMIT")
        except sqlite3.Error:
            self._give_up()
            return None

    def _in_step(self, table: str, mark: int, min_ts: float | None) -> bool:
        cursor = self._conn.cursor()
        cursor.row_factory = None
        top, lowest = main_mark(cursor, table)
        if top < mark or top - mark > DELTA_LIMIT:
            return False
        if top > mark:  # rows the digest has not folded in yet (a crash between the two commits)
            newest = self._value(f"SELECT min(ts) FROM main.{table} WHERE id > ?", (mark,))
            min_ts = newest if min_ts is None else min(min_ts, newest)
        return bool(lowest == min_ts)

    # -- counts ---------------------------------------------------------------------------------
    def counts(self, series: Sequence[str], lo: float | None, hi: float | None) -> dict[str, int] | None:
        """Rows of each :data:`COUNT_SERIES` entry with ``lo <= ts <= hi``."""
        tables = sorted({COUNT_SERIES[s][0] for s in series})
        return self._read(tables, lambda marks: {s: self._count(s, lo, hi, marks) for s in series})  # type: ignore[no-any-return]

    def _count(self, series: str, lo: float | None, hi: float | None, marks: dict[str, int]) -> int:
        table, condition = COUNT_SERIES[series]
        a, b, raw = split(lo, hi)
        total = int(
            self._value(
                f"SELECT coalesce(sum(n), 0) FROM {SCHEMA}.counts WHERE series = ? AND unit >= ? "
                "AND unit < ?",
                (series, a, b),
            )
        )
        for clause, params in _raw_ranges(raw, lo, hi, marks[table]):
            total += int(self._value(f"SELECT count(*) FROM main.{table} WHERE {clause}{condition}", params))
        return total

    # -- latency --------------------------------------------------------------------------------
    def latency_stats(self, lo: float | None, hi: float | None) -> dict[str, Any] | None:
        """As ``get_web_latency_stats``; ``None`` for the exact path (also for small windows)."""
        return self._read(["web_requests"], lambda marks: self._latency(lo, hi, marks["web_requests"]))  # type: ignore[no-any-return]

    def _latency(self, lo: float | None, hi: float | None, mark: int) -> dict[str, Any] | None:
        a, b, raw = split(lo, hi)
        level0 = f"FROM {SCHEMA}.latency_stats WHERE level = 0 AND unit"
        first = self._value(f"SELECT min(unit) {level0} >= ?", (a,))
        last = self._value(f"SELECT max(unit) {level0} < ?", (b,))
        blocks = []
        if first is not None and last is not None and first <= last:
            before = self._value(f"SELECT max(unit) {level0} < ?", (a,))
            after = self._value(f"SELECT min(unit) {level0} >= ?", (b,))
            floor = 0 if before is None else before + 1
            blocks = decompose(first, last + 1, floor, _UNITS_END if after is None else after)
        chosen = json.dumps(blocks)
        join = (
            f"FROM json_each(?) j JOIN {SCHEMA}.{{t}} s ON s.level = j.value ->> 0 AND s.unit = j.value ->> 1"
        )
        stats: dict[str, list[Any]] = {}
        for endpoint, n, total, top in self._rows(
            f"SELECT endpoint, sum(n), sum(total), max(max) {join.format(t='latency_stats')} "
            "GROUP BY endpoint",
            (chosen,),
        ):
            stats[endpoint] = [n, math.nan if total is None else total, top]
        ranges = _raw_ranges(raw, lo, hi, mark)
        count = sum(s[0] for s in stats.values())
        for clause, params in ranges:  # counted first: a small window is cheaper read once, exactly
            count += self._value(f"SELECT count(*) FROM main.web_requests WHERE {clause}", params)
            if count > EXACT_LIMIT:
                break
        if count <= EXACT_LIMIT:
            return None
        values: dict[str, list[float]] = {}
        for clause, params in ranges:
            for endpoint, value in self._rows(
                "SELECT endpoint, response_ms FROM main.web_requests "
                f"WHERE {clause} AND response_ms IS NOT NULL",
                params,
            ):
                values.setdefault(endpoint, []).append(value)
        bins: dict[str, list[tuple[float, int]]] = {}
        for endpoint, bin_, n in self._rows(
            f"SELECT endpoint, bin, sum(n) {join.format(t='latency_bins')} GROUP BY endpoint, bin", (chosen,)
        ):
            bins.setdefault(endpoint, []).append((bin_value(bin_), n))
        every: list[tuple[float, int]] = []
        every_count, every_total, every_top = 0, 0.0, -math.inf
        blocks_out = {}
        for endpoint in sorted(set(stats) | set(values)):
            raw_values = values.get(endpoint, [])
            n, total, top = stats.get(endpoint, [0, 0.0, -math.inf])
            pairs = bins.get(endpoint, []) + [(v, 1) for v in raw_values]
            n, total, top = n + len(raw_values), total + sum(raw_values), max([top, *raw_values])
            blocks_out[endpoint] = weighted_block(pairs, n, total, top)
            every += pairs
            every_count, every_total, every_top = every_count + n, every_total + total, max(every_top, top)
        return {**weighted_block(every, every_count, every_total, every_top), "by_endpoint": blocks_out}


def _raw_ranges(
    raw: list[tuple[float, float, bool]], lo: float | None, hi: float | None, mark: int
) -> list[tuple[str, tuple[Any, ...]]]:
    """WHERE clauses for the rows not in the digest's units: the window's ends (rows the digest
    holds, ``id <= mark``) and the whole window above the watermark."""
    clauses: list[tuple[str, tuple[Any, ...]]] = []
    for start, stop, inclusive in raw:
        if start < stop or (inclusive and start == stop):
            clause = f"ts >= ? AND ts {'<=' if inclusive else '<'} ? AND id <= ?"
            clauses.append((clause, (start, stop, mark)))
    low = -math.inf if lo is None else lo
    high = math.inf if hi is None else hi
    # ``+ts``: rows above the watermark are found by rowid, not by walking the ts index.
    clauses.append(("id > ? AND +ts >= ? AND +ts <= ?", (mark, low, high)))
    return clauses


def weighted_block(pairs: list[tuple[float, int]], count: int, total: float, top: float) -> dict[str, Any]:
    """``latency_block`` over ``(value, multiplicity)`` pairs with exact count, sum and max."""
    if not count:
        return {
            "count": 0,
            "mean_ms": None,
            "p50_ms": None,
            "p95_ms": None,
            "p99_ms": None,
            "max_ms": None,
            "percentile_rel_error": 0.0,
        }
    pairs.sort()
    cumulative = list(accumulate(n for _, n in pairs))
    found = {
        q: min(pairs[bisect_left(cumulative, max(1, math.ceil(q * count)))][0], top)  # never above the max
        for q in (0.50, 0.95, 0.99)
    }
    return {
        "count": count,
        "mean_ms": total / count,
        "p50_ms": found[0.50],
        "p95_ms": found[0.95],
        "p99_ms": found[0.99],
        "max_ms": top,
        "percentile_rel_error": ALPHA,
    }


__all__ = ["EXACT_LIMIT", "DigestReader", "decompose", "split", "weighted_block"]
