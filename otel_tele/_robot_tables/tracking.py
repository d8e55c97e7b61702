"""Commanded vs actual: each command paired with the angle feedback after it."""

from __future__ import annotations

from .._robot_query import TimeArg, TimeRange, check_joint, check_limit, time_clause, where, window
from ._base import Row, TableReader


class TrackingReads(TableReader):
    """Commanded vs actual: each command paired with the angle feedback after it."""

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
