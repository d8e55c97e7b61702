"""``camera_health`` snapshots and ``system_events`` (filtered, or tailed)."""

from __future__ import annotations

from typing import Any

from .._robot_query import TimeArg, TimeRange, check_limit, filters, where
from ._base import Row, TableReader, text


class EventReads(TableReader):
    """``camera_health`` snapshots and ``system_events`` (filtered, or tailed)."""

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
        clauses, params = filters(time_range, start, end, camera_id=text(camera_id))
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
            time_range, start, end, event_type=text(event_type), source=text(source), level=text(level)
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
