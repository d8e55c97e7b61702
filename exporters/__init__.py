"""Storage exporters: one module per sink, each built on :class:`otel_tele.Sink`.

- ``sqlite`` (:mod:`otel_tele.exporters.sqlite`): robot log records and HTTP server spans → the
  spec 004 SQLite tables.
- ``capsule`` (:mod:`otel_tele.exporters.capsule`): FDA log records → Parquet run capsules (spec 000).
- ``postgres`` (:mod:`otel_tele.exporters.postgres`): inference log records → ``system_telemetry`` and
  its rollups (spec 002), on PostgreSQL or an embedded SQLite file.
- ``capture`` (:mod:`otel_tele.exporters.capture`): flow metrics → FlowTime capture bundles (specs
  001/003).
"""
