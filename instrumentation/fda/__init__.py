"""Record iterative-solver runs (spec 000) as OpenTelemetry signals.

Usage::

    from otel_tele.instrumentation import fda

    with fda.run("deconv_wavelet_v1", mode="production",
                 units={"phi_residual": "relative L2", "invariant_drift_max": "relative"},
                 method={"phi_residual": "||Ax-y||/||y||",
                         "invariant_drift_max": "|mean(x)-mean(x0)|"}) as run:
        for i in range(n):
            ...
            run.iteration(iter=i, phase="GREEN", E=e, grad_norm=g, eta_dd=d, gamma=gap, alpha=step,
                          phi_residual=r, invariant_drift_max=drift, lambda_=lam, sparsity_wx=s)
        run.event("CERT_PASS", {"E_final": e})

A run is a span (``fda.run``); each recorded iteration and each event is a log record (``fda.iteration``,
``fda.run.event``) and feeds the vocabulary's metrics. The recorder writes no files: the capsule sink
(:mod:`otel_tele.exporters.capsule`) turns the records into Parquet.

Configuration:

- ``mode``: ``"production"`` (one immutable capsule per run), ``"dev"`` or ``"tuner"`` (appended to the
  flow's ``dev_telemetry.parquet`` / ``tuner_telemetry.parquet``; tuner runs need a ``trial_id``).
- Sampling (spec 000): dev/tuner record every iteration call up to ``sample_first`` (default 1000) and
  then every ``sample_every``-th call (default 10); production records every call up to ``max_rows``
  (default 1e6) and then emits one ``ROW_CAP_REACHED`` event. Calls are counted from 0; ``iter`` is stored
  as given, so the timeline can be rebuilt.
- Core fields (``phase, iter, E, grad_norm, eta_dd, gamma, alpha, phi_residual, invariant_drift_max``;
  ``t_wall_ms`` is measured) must be in every call: a missing one emits ``SPEC_LINT_FAIL`` (the row is
  kept, with nulls) — or, with ``strict=True``, raises ``ValueError`` before anything is emitted.
  ``strict=True`` also requires units and method for ``phi_residual`` and ``invariant_drift_max``.
- Unknown field names raise ``ValueError`` (a typo must not vanish); ``lambda`` is spelled ``lambda_``.
- Lifecycle events are automatic: RUN_STARTED, RUN_FINISHED (``status`` completed/failed), CANCELLED on
  ``KeyboardInterrupt``; ``timeout_s`` emits TIMEOUT once and sets ``run.timed_out``. The end payload
  carries ``rows_emitted``; the capsule sink adds ``rows_recorded`` (rows in the file) and
  ``rows_dropped``, and a completed run that lost rows is stored as ``completed_with_loss``.
- Timing: ``iteration()`` appends the row to the run's buffer; rows join the telemetry queue 512 at a
  time, before any other event of the run, within ~50 ms when the loop pauses, and at every flush or
  shutdown. An iteration's record time is the run's start on the wall clock plus ``t_wall_ms`` (a
  monotonic offset): a stepped wall clock never reorders a run.
- Overload: a production run's ``iteration()`` waits for queue room rather than lose a row (at most
  ``OTEL_TELE_OVERLOAD_MAX_WAIT`` ms, then the row is dropped and counted); dev and tuner rows are
  dropped and counted when the queue is full (README: Overload).
- Artifacts (spec 000: checkpoints, config snapshots, QA logs): ``run.attach(name, path_or_bytes,
  kind=...)`` and ``run.config(mapping)`` (``config.json``). A path is only *named* in an ``fda.artifact``
  log record: the capsule sink streams the file into the run (hashing as it copies) when it handles the
  record — at the latest when the run ends — so keep the file unchanged until then. Bytes (at most
  1 MiB: larger content goes as a file) travel inline. The recorder never writes a file itself.
- Pipeline: ``telemetry=`` if given, else the global one from ``otel_tele.setup()``, else a private
  default pipeline with the capsule sink under ``OTEL_TELE_DATA_DIR`` (shut down at exit). When a run
  ends the recorder flushes the capsule sink — and only it, never OTLP or another sink — within
  ``flush_timeout_millis``, so the capsule is complete on return.
"""

from ._recorder import Run, default_telemetry, new_run_id, run

__all__ = ["Run", "default_telemetry", "new_run_id", "run"]
