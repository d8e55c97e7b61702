"""Sample driver of the capsule sink for the generic sink contract suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from opentelemetry._logs import LogRecord
from otel_tele.instrumentation import fda

import otel_tele
from otel_tele.semconv import fda as v

CORE = {
    "phase": "GREEN",
    "E": 1.0,
    "grad_norm": 0.5,
    "eta_dd": 0.2,
    "gamma": 0.1,
    "alpha": 0.01,
    "phi_residual": 1e-3,
    "invariant_drift_max": 0.0,
}


def exercise(telemetry: otel_tele.Telemetry, n: int) -> None:
    """One production run of ``n`` recorded iterations through the FDA recorder."""
    with fda.run("contract_flow", telemetry=telemetry, units={}, method={}) as run:
        for i in range(n):
            run.iteration(iter=i, **CORE)


def stored(data_dir: Path, telemetry: otel_tele.Telemetry) -> int:
    """Iteration rows in the production capsules under ``data_dir``."""
    files = sorted((data_dir / "telematry_cfs" / "runs").glob("fda_run_*/telemetry.parquet"))
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def exercise_with_poison(telemetry: otel_tele.Telemetry, n: int) -> tuple[int, int]:
    """A run event and raw iteration records carrying lone surrogates in the middle of the run: on main
    they failed the run's batch, and the run lost its rows."""
    raw = telemetry.logger("poison")
    with fda.run("contract_flow", telemetry=telemetry, units={}, method={}) as run:
        for i in range(n):
            run.iteration(iter=i, **CORE)
            if i == n // 2:
                run.event("NOTE", {"text": "\udfff"})
                attributes: dict[str, Any] = {**CORE, "iter": -1, "phase": "RED\ud800"}
                attributes.update({v.RUN_ID: run.run_id, v.FLOW_NAME: run.flow_name, v.MODE: run.mode})
                raw.emit(LogRecord(event_name="fda.iteration", attributes=attributes))
    return 1, 0
