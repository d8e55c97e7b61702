"""Across the tables: the session summary and the database's own figures."""

from __future__ import annotations

from otel_tele.exporters.sqlite.schema import COUNT_SERIES

from .._robot_query import ROBOT_TABLES, TimeArg, filters, where, window
from ._base import Row, TableReader


class SessionReads(TableReader):
    """Across the tables: the session summary and the database's own figures."""

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
