"""Iterative solvers (FDA, spec 000): iteration recorder and run events -> Parquet run capsules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..plugin import (
    DROP,
    WAIT,
    Domain,
    Option,
    OverloadPolicy,
    SinkSpec,
    parse_path,
    parse_positive_float,
    parse_positive_int,
)

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
    sinks=(
        SinkSpec(
            "capsule",
            "otel_tele.exporters.capsule:CapsuleSink",
            "capsule",
            "otel_tele_capsule",
            state="otel_tele.exporters.capsule.maintenance:storage_state",
        ),
    ),
    options="otel_tele.domains.fda:OPTIONS",
    cli="otel_tele.cli._runs",
    router="otel_tele.http_fda:runs_router",
    dashboard="otel_tele.dashboard._fda:page",
    sql_views="otel_tele._fda_sql:sql_views",
    demo="otel_tele.demo._solver",
    instrumentation=("otel_tele.instrumentation.fda",),
    # A run's records are told apart by its mode (spec 000: production runs are lossless, dev and
    # tuner runs are sampled); the first policy is also that of a record without a known mode.
    overload=(
        OverloadPolicy(
            "fda.production",
            WAIT,
            "spec 000: a production run records every iteration (certification); the solver waits for room",
        ),
        OverloadPolicy(
            "fda.dev",
            DROP,
            "already sampled (first sample_first calls, then every sample_every-th); more is dropped, "
            "counted",
        ),
        OverloadPolicy(
            "fda.tuner", DROP, "as fda.dev: a tuner trial is sampled and must not slow the search"
        ),
        OverloadPolicy(
            "fda.events",
            WAIT,
            "run events of every mode (RUN_STARTED, RUN_FINISHED, CERT_PASS …): a few per run, and they "
            "carry its configuration and books",
            events=("fda.run.event",),
            always_waits=True,
        ),
    ),
    overload_classifier="otel_tele.semconv.fda:overload_policy",
)
