"""SQLite sink: robot telemetry (spec 004) into ``telemetry.db``, through OTel.

The sink maps robot log records (``robot.*`` events) and HTTP server spans of ``/api/`` requests to
the spec's six tables and writes each export batch in one transaction, so a batch is either wholly on
disk or not at all — even if the process is killed mid-write.

Usage::

    import otel_tele
    otel_tele.setup(service_name="arm-server", sinks=["sqlite"])   # → $OTEL_TELE_DATA_DIR/telemetry.db

or with no code at all::

    OTEL_LOGS_EXPORTER=otel_tele_sqlite OTEL_TRACES_EXPORTER=otel_tele_sqlite opentelemetry-instrument …

Configuration: ``OTEL_TELE_DATA_DIR`` (folder of ``telemetry.db``), ``TELEMETRY_RETENTION_DAYS``
(default 7; rows older than that are deleted at start-up and hourly, in small batches).

The package: :mod:`.schema` declares the database (public: what readers use), :mod:`.maintenance`
holds retention, the private modules write (``_writer`` the sink, ``_db`` creation and migrations,
``_mapping`` records → rows, ``_digest`` the aggregates sidecar).
"""

from ._db import SchemaTooNew, init_db
from ._writer import SqliteLogExporter, SqliteSink, SqliteSpanExporter

__all__ = ["SchemaTooNew", "SqliteLogExporter", "SqliteSink", "SqliteSpanExporter", "init_db"]
