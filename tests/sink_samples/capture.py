"""Capture sink sample for the sink contract suite, and FlowTime fixture runs for the flow tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from otel_tele.exporters.capture._rundir import read_values
from otel_tele.exporters.capture._runwriter import write_run_directory
from otel_tele.exporters.capture.schema import Grid
from otel_tele.instrumentation.flow import FlowMeters

import otel_tele
from otel_tele import bundles

NODE = "ContractNode"
FIXTURES = Path(
    os.environ.get(
        "OTEL_TELE_FLOWTIME_FIXTURES",
        Path(__file__).resolve().parents[1] / "fixtures" / "flowtime",  # a copy of shared/fixtures/flowtime
    )
)
RETRY = FIXTURES / "retry-service-time"


def exercise(telemetry: otel_tele.Telemetry, n: int) -> None:
    """Record n arrivals at one node through the flow meters."""
    node = FlowMeters(telemetry).node(NODE)
    for _ in range(n):
        node.arrivals()


def stored(data_dir: Path, telemetry: otel_tele.Telemetry) -> int:
    """Arrivals of the sample node found in the bundles on disk (after a flush writes the open window)."""
    telemetry.force_flush(10_000)
    total = 0.0
    for directory in sorted((Path(data_dir) / "captures").glob("*")):
        if (directory / "manifest.json").is_file():
            bundle = bundles.read_bundle(directory)
            for series in bundle.series:
                if series.node_id == NODE and series.metric == "Arrivals" and series.class_id == "DEFAULT":
                    total += sum(v for v in series.values if v is not None)
    return int(total)


def fixture_series() -> dict[str, list[float | None]]:
    """The retry-service-time CSVs as run series ``<stem>@<STEM>@DEFAULT``."""
    return {
        f"{p.stem}@{p.stem.upper()}@DEFAULT": read_values(p.read_bytes(), p.name)
        for p in sorted(RETRY.glob("*.csv"))
    }


def fixture_run(root: Path, run_id: str = "run_deterministic_72ca609c", **overrides: Any) -> Path:
    """A run directory as FlowTime lays it out, with retry-service-time as its ``model/`` and series."""
    kwargs: dict[str, Any] = {
        "model_yaml": (RETRY / "model.yaml").read_text(encoding="utf-8"),
        "series": fixture_series(),
        "grid": Grid(4, 5, "minutes"),
        "model_files": {p.name: p.read_bytes() for p in RETRY.iterdir()},
        "metadata": {
            "templateId": "retry-service-time",
            "templateVersion": "1.0.0",
            "mode": "simulation",
            "parameters": {"bins": 4, "arrivalRate": 10.0, "label": "a<b>&'c'+"},
        },
    }
    kwargs.update(overrides)
    run_dir: Path = write_run_directory(root, run_id, **kwargs)
    return run_dir


def exercise_with_poison(telemetry: otel_tele.Telemetry, n: int) -> tuple[int, int]:
    """Node and class ids with lone surrogates: on main they failed every bundle write, forever."""
    meters = FlowMeters(telemetry)
    half = n // 2
    exercise(telemetry, half)
    meters.node("bad\ud800").arrivals(5)
    meters.node(NODE).arrivals(1, class_id="retail\udfff")  # counts into the node's DEFAULT total
    exercise(telemetry, n - half)
    return 1, 0
