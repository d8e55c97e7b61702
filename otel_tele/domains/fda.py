"""Iterative solvers (FDA, spec 000): iteration recorder and run events -> Parquet run capsules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._options import Option, parse_path, parse_positive_float, parse_positive_int
from .._registry import Domain, SinkSpec

CAPSULE_DIR: Option[Path | None] = Option(
    "capsule_dir",
    "OTEL_TELE_CAPSULE_DIR",
    parse_path,
    None,
    "FDA capsule root (default <data_dir>/telematry_cfs)",
)

CAPSULE_FLUSH_ROWS: Option[int] = Option(
    "capsule_flush_rows",
    "OTEL_TELE_CAPSULE_FLUSH_ROWS",
    parse_positive_int,
    65_536,
    "a production run's rows reach its journal (durable) at least every this many rows",
)

CAPSULE_FLUSH_SECONDS: Option[float] = Option(
    "capsule_flush_seconds",
    "OTEL_TELE_CAPSULE_FLUSH_SECONDS",
    parse_positive_float,
    1.0,
    "... or this many seconds after the oldest row not yet durable",
)

CAPSULE_MAX_OPEN_RUNS: Option[int] = Option(
    "capsule_max_open_runs",
    "OTEL_TELE_CAPSULE_MAX_OPEN_RUNS",
    parse_positive_int,
    64,
    "production runs the capsule sink keeps open at once; records of further runs are rejected",
)

#: The domain's options, joined to the option table through ``options`` below.
OPTIONS: tuple[Option[Any], ...] = (
    CAPSULE_DIR,
    CAPSULE_FLUSH_ROWS,
    CAPSULE_FLUSH_SECONDS,
    CAPSULE_MAX_OPEN_RUNS,
)

DOMAIN = Domain(
    name="fda",
    title="Iterative solver (spec 000) -> Parquet run capsules",
    vocabulary="otel_tele.semconv.fda",
    order=20,
    sinks=(SinkSpec("capsule", "otel_tele.exporters.capsule:CapsuleSink", "capsule", "otel_tele_capsule"),),
    options="otel_tele.domains.fda:OPTIONS",
    cli="otel_tele.cli._runs",
    router="otel_tele.http_fda:runs_router",
    dashboard="otel_tele.dashboard._fda:page",
    demo="otel_tele.demo._solver",
    instrumentation=("otel_tele.instrumentation.fda",),
)
