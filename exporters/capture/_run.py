"""Capture a FlowTime run directory into a schema v2 bundle (spec 001 FR1): the public entry point
over the run-directory reader (``_rundir``) and the one bundle writer (``_bundle``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ._bundle import (
    CapturePlan,
    PlannedFile,
    Progress,
    WrittenBundle,
    plan_capture,
    utc_timestamp,
    write_autocapture,
    write_bundle,
)
from ._gaps import GapInjection, GapMode, GapOptions
from ._rundir import autocapture_for, bundle_source, read_run
from .schema import CAPTURES_DIR, CaptureWarning, schema_errors


@dataclass
class CaptureResult:
    """What ``capture_run`` planned (and wrote, unless it was a dry run)."""

    run_id: str
    directory: Path
    plan: CapturePlan
    manifest: dict[str, Any] | None

    @cached_property
    def schema_errors(self) -> list[str]:
        """The written manifest's JSON Schema violations (none for a dry run), checked on first use:
        loading jsonschema and validating costs more than writing a small bundle, and only the CLI's
        report and tests ask."""
        return schema_errors(self.manifest) if self.manifest is not None else []

    @property
    def files(self) -> list[PlannedFile]:
        files: list[PlannedFile] = self.plan.files
        return files

    @property
    def warnings(self) -> list[CaptureWarning]:
        warnings: list[CaptureWarning] = self.plan.warnings
        return warnings


def gap_options(
    *, fill_nan: bool = False, gaps: GapMode | str = GapMode.IGNORE, inject: Sequence[GapInjection] = ()
) -> GapOptions:
    """Build :class:`GapOptions` from CLI-style flags (``gaps``: ignore, warn, fill_zero)."""
    return GapOptions(fill_nan_with_zero=fill_nan, missing=GapMode(gaps), inject=tuple(inject))


def default_output(run_id: str) -> Path:
    """``<OTEL_TELE_DATA_DIR>/captures/<runId>`` (FlowTime's CLI uses ``<data>/telemetry/<runId>``)."""
    from otel_tele._settings import resolve

    return Path(resolve({}).data_dir) / CAPTURES_DIR / run_id


def capture_run(
    run_dir: str | Path,
    output: str | Path | None = None,
    *,
    options: GapOptions | None = None,
    dry_run: bool = False,
    captured_at: str | None = None,
    progress: Progress | None = None,
    capture_key: str | None = None,
    autocapture: bool = False,
) -> CaptureResult:
    """Capture FlowTime run directory ``run_dir`` into a schema v2 bundle at ``output``.

    ``options`` carries gap handling and injections (FlowTime's defaults when omitted). A dry run
    plans files and warnings and writes nothing. ``autocapture`` also writes ``autocapture.json``.
    Raises :class:`RunNotFound` / :class:`CaptureError` with messages free of absolute paths.

    Usage::

        capture_run("data/runs/run_1", "out/run_1", options=gap_options(gaps="warn"), dry_run=True)
    """
    run = read_run(Path(run_dir))
    source = bundle_source(run)
    options = options or GapOptions()
    directory = Path(output) if output is not None else default_output(run.run_id)
    if dry_run:
        return CaptureResult(run.run_id, directory, plan_capture(source, options), None)
    written: WrittenBundle = write_bundle(
        source, directory, options=options, captured_at=captured_at, progress=progress
    )
    plan = written.plan
    if autocapture:
        write_autocapture(
            directory,
            autocapture_for(run, capture_key=capture_key, generated_at=captured_at or utc_timestamp()),
        )
    return CaptureResult(run.run_id, directory, plan, written.manifest)
