"""The FDA domain's views of the SQL catalog (``otel-tele sql``): ``fda_telemetry`` and ``fda_events``.

The same views :class:`otel_tele.runs.Runs` queries (``telemetry``, ``events``), built by the capsule
layout's own :func:`~otel_tele.exporters.capsule.schema.view_sql` over every production run folder
and flow file; columns are the capsule's Arrow schemas.
"""

from __future__ import annotations

from functools import partial

from otel_tele._settings import Settings
from otel_tele._sql_view import SqlView
from otel_tele.exporters.capsule import schema

_DESCRIPTIONS = {
    "telemetry": "one row per solver iteration of every FDA run (production, dev and tuner)",
    "events": "one row per FDA run event (start, end, warnings, artifacts …)",
}


def sql_views(settings: Settings) -> tuple[SqlView, ...]:
    """``fda_telemetry`` and ``fda_events`` over the capsule root (``telematry_cfs``)."""
    root = schema.capsule_root(settings)
    return tuple(
        SqlView(
            f"fda_{table}",
            schema.SCHEMAS[table].remove_metadata(),
            _DESCRIPTIONS.get(table, table),
            f"DuckDB read_parquet: {schema.DEFAULT_ROOT_NAME}/ runs and flows",
            select=partial(schema.view_sql, root, table),
            paths=(root,),
        )
        for table in schema.TABLES
    )
