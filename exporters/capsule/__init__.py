"""FDA run capsules (spec 000): ``fda.iteration`` / ``fda.run.event`` log records → Parquet.

Under the capsule root (``<data_dir>/telematry_cfs``, or ``OTEL_TELE_CAPSULE_DIR``):

- ``runs/fda_run_<id>/`` — a production run: ``manifest.toml``, ``telemetry.parquet``, ``events.parquet``.
  Built in ``runs/.tmp-…`` while the run goes on and renamed into place when its RUN_FINISHED or
  CANCELLED record arrives (or, for a run still open, when the sink closes: ``status = "incomplete"``),
  so a run folder is whole or absent, and never changes afterwards.
- ``flows/<flow_name>/`` — dev and tuner runs appended to ``dev_telemetry.parquet`` /
  ``tuner_telemetry.parquet`` (+ ``dev_events.parquet`` / ``tuner_events.parquet``) and a
  ``manifest.toml``; see :mod:`otel_tele.exporters.capsule._flow` for the append-safe layout.
- Artifacts (``fda.artifact`` records: checkpoints, config snapshots, QA logs) — streamed into a
  production run's temp folder (published with it, listed in its manifest with size and sha256) or
  ``flows/<flow_name>/artifacts/<run_id>/``; see :mod:`otel_tele.exporters.capsule._artifacts`.
- ``duckdb.db`` — views over all of it, refreshed by ``otel-tele runs consolidate``.

The package: :mod:`~otel_tele.exporters.capsule.schema` (public) declares the layout — Arrow schemas
derived from the vocabulary, file names, manifests, the DuckDB views — for writers and readers alike;
the private modules write: ``_sink`` (:class:`CapsuleSink`: each run's records to its writer, the
books), ``_batch`` (a batch split per run, converted to Arrow), ``_books``, ``_writers``, ``_journal``,
``_recovery``, ``_flow``, ``_artifacts``;
:mod:`~otel_tele.exporters.capsule.maintenance` compacts, applies retention, archives and exports
(``otel-tele runs consolidate | prune``). Queries go through :class:`otel_tele.runs.Runs`.

Usage::

    telemetry = otel_tele.setup(service_name="solver", sinks=["capsule"])
    with fda.run("deconv_wavelet_v1", telemetry=telemetry) as run:
        run.iteration(iter=0, phase="RED", E=1.0, ...)

or, with ``opentelemetry-instrument``, ``OTEL_LOGS_EXPORTER=otel_tele_capsule``.
"""

from __future__ import annotations

from ._sink import DEFAULT_MAX_OPEN_RUNS, CapsuleLogExporter, CapsuleSink
from .schema import NewerSchemaError

__all__ = ["DEFAULT_MAX_OPEN_RUNS", "CapsuleLogExporter", "CapsuleSink", "NewerSchemaError"]
