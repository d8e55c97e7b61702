"""``dds_commands``: rows, counts (from the digest when in step) and rates."""

from __future__ import annotations

import time
from typing import Any

from .._robot_query import TimeArg, TimeRange, filters, time_clause, where, window
from ._base import Row, TableReader, positive_seconds


class CommandReads(TableReader):
    """``dds_commands``: rows, counts (from the digest when in step) and rates."""

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
        span = positive_seconds(window_seconds if window_seconds is not None else window_s, "window_s")
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
