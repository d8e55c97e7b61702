"""``dds_feedback``: rates, one joint's history, full snapshots, the gripper."""

from __future__ import annotations

import time
from typing import Any

from .._robot_query import TimeArg, TimeRange, check_joint, check_limit, time_clause, window
from ._base import Row, TableReader, positive_seconds


class FeedbackReads(TableReader):
    """``dds_feedback``: rates, one joint's history, full snapshots, the gripper."""

    def get_feedback_rate(self, window_s: float = 10.0, *, window_seconds: float | None = None) -> Row:
        """``{total_feedback, rate_hz, by_funcode}`` over the last ``window_s``."""
        span = positive_seconds(window_seconds if window_seconds is not None else window_s, "window_s")
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
