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

from pathlib import Path

from ._robot_digest import DigestReader
from ._robot_query import ROBOT_TABLES
from ._robot_query import parse_time as parse_time
from ._robot_tables._base import open_telemetry_db
from ._robot_tables.commands import CommandReads
from ._robot_tables.events import EventReads
from ._robot_tables.export import ExportReads
from ._robot_tables.feedback import FeedbackReads
from ._robot_tables.session import SessionReads
from ._robot_tables.smoother import SmootherReads
from ._robot_tables.tracking import TrackingReads
from ._robot_tables.web import WebReads

__all__ = ["ROBOT_TABLES", "TelemetryQuery", "parse_time"]

DEFAULT_DB_PATH = "data/telemetry.db"


class TelemetryQuery(
    CommandReads,
    FeedbackReads,
    TrackingReads,
    SmootherReads,
    WebReads,
    EventReads,
    SessionReads,
    ExportReads,
):
    """A read-only (``mode=ro``) connection to ``telemetry.db`` with the spec's queries.

    Windowed counts and latency statistics come from the sink's digest sidecar
    (``telemetry.digest.db``) when it is in step: exact counts, means and maxima, percentiles within
    2 %. ``exact=True`` reads every row instead (exact percentiles, slower on large tables).

    Raises ``FileNotFoundError`` for a missing file and ``sqlite3.DatabaseError`` for one that is
    not a telemetry database. Use it as a context manager or call :meth:`close`.

    A façade: each query lives with its table's reader in ``otel_tele._robot_tables`` (commands,
    feedback, tracking error, smoother, web requests, cameras and system events, the session summary,
    export), all over this one connection.
    """

    def __init__(self, db_path: str | Path = DEFAULT_DB_PATH, *, exact: bool = False) -> None:
        self.db_path = Path(db_path)
        self._conn = open_telemetry_db(self.db_path)
        self._digest = DigestReader(self._conn, self.db_path, enabled=not exact)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> TelemetryQuery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
