"""``smoother_state``: one joint's interpolation history, or whole rows."""

from __future__ import annotations

from typing import Any

from .._robot_query import TimeArg, TimeRange, check_joint, time_clause, window
from ._base import Row, TableReader


class SmootherReads(TableReader):
    """``smoother_state``: one joint's interpolation history, or whole rows."""

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
