"""The one bundle writer: series in, a schema v2 FlowTime capture bundle out.

Both producers feed it — the run-directory reader (spec 001 FR1) and the live capture sink — so a
bundle looks the same whichever way it was made. It mirrors FlowTime's ``TelemetryCapture``: gap
handling per series, one CSV per node x metric x class, then ``manifest.json`` (written last, so a
directory with a manifest is a complete bundle). The manifest is written temp-then-rename; so are
the CSVs of a directory that already existed (a live window's checkpoint, a re-capture), while into a
directory this writer creates each CSV is written under its name at once.

Series stream: a run directory's series is read only when its turn comes and dropped once its CSV is
on disk, so memory does not grow with the number of series. The CSVs are renamed into place only once
every series has been read, so a series that cannot be read leaves the output directory as it was
(a directory the writer created is removed again).

Same inputs and options give byte-identical files; only ``provenance.capturedAtUtc`` differs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otel_tele.semconv import flow

from ._format import (
    atomic_write,
    discard,
    dump_json,
    encode_csv,
    safe_file_name,
    stage,
    unique_names,
    write_new,
)
from ._gaps import GapOptions, handle, inject
from .schema import (
    AUTOCAPTURE,
    FILE_FIELDS,
    MANIFEST,
    MANIFEST_FIELDS,
    SCHEMA_VERSION,
    CaptureWarning,
    Grid,
    sha256_of,
)

Progress = Callable[[int, int], None]


@dataclass
class SeriesInput:
    """One series to capture: node x metric x class, its values (``None`` = gap) and target name.

    With ``read``, the values are not held yet: ``read()`` returns the loaded series when the writer
    gets to it (run directories); the live sink passes values.
    """

    node_id: str
    metric: flow.FlowMetric
    class_id: str
    values: list[float | None]
    file_name: str
    points: int
    source: str = ""  # where it came from (a run series id, or "live"), for plans and logs
    warnings: list[CaptureWarning] = field(default_factory=list)  # found while reading it
    read: Callable[[], SeriesInput] | None = None


@dataclass(frozen=True)
class Provenance:
    run_id: str
    scenario_hash: str
    model_hash: str | None = None


@dataclass
class BundleSource:
    """Everything a bundle is made of, whichever producer gathered it."""

    grid: Grid
    series: list[SeriesInput]
    provenance: Provenance
    window_start: str | None = None
    declared_classes: list[str] = field(default_factory=list)
    warnings: list[CaptureWarning] = field(default_factory=list)  # bundle-level, after the series'


@dataclass(frozen=True)
class PlannedFile:
    node_id: str
    metric: str  # manifest name
    class_id: str
    path: str
    source: str
    points: int


@dataclass
class CapturePlan:
    """What a capture will write (a dry run stops here)."""

    files: list[PlannedFile]
    warnings: list[CaptureWarning]


@dataclass
class WrittenBundle:
    directory: Path
    manifest: dict[str, Any]
    plan: CapturePlan


def utc_timestamp(now: dt.datetime | None = None) -> str:
    """.NET ``DateTime.UtcNow.ToString("O")``: seven fractional digits and ``Z``."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond * 10:07d}Z"


def _planned(
    source: BundleSource, options: GapOptions
) -> Iterator[tuple[PlannedFile, list[float | None], list[CaptureWarning]]]:
    """Series by series: read it, apply injections and gap handling, name its file."""
    names = unique_names(safe_file_name(s.file_name) for s in source.series)
    for pending, name in zip(source.series, names, strict=True):
        item = pending.read() if pending.read is not None else pending
        values = list(item.values)
        warnings = list(item.warnings)
        warnings.extend(inject(values, item.node_id, item.metric, item.class_id, options.inject))
        warnings.extend(handle(values, item.node_id, item.metric, options))
        planned = PlannedFile(
            item.node_id, item.metric.manifest, item.class_id, name, item.source, item.points
        )
        yield planned, values, warnings


def plan_capture(source: BundleSource, options: GapOptions) -> CapturePlan:
    """The files and warnings a capture of ``source`` writes (reads every series, writes nothing)."""
    files, warnings = [], []
    for planned, _values, found in _planned(source, options):
        files.append(planned)
        warnings.extend(found)
    warnings.extend(source.warnings)
    return CapturePlan(files, warnings)


def _ordered_ci(values: Iterable[str]) -> dict[str, str]:
    """Case-insensitive set keeping first spellings in insertion order (FlowTime's HashSet)."""
    out: dict[str, str] = {}
    for value in values:
        if value and value.strip():
            out.setdefault(value.lower(), value)
    return out


def class_summary(declared: Sequence[str], captured: Iterable[str]) -> tuple[bool, list[str] | None, str]:
    """(supportsClassMetrics, classes, classCoverage) exactly as FlowTime derives them."""
    default = flow.DEFAULT_CLASS.lower()
    captured_ci = _ordered_ci(captured)
    declared_ci = _ordered_ci(declared)
    for key, value in captured_ci.items():
        declared_ci.setdefault(key, value)
    declared_nd = {k: v for k, v in declared_ci.items() if k != default}
    captured_nd = {k: v for k, v in captured_ci.items() if k != default}
    supports = bool(captured_nd)
    if not captured_nd:
        coverage = "missing"
    else:
        coverage = "full" if declared_nd and set(declared_nd) == set(captured_nd) else "partial"
    classes = list((declared_nd or captured_nd).values()) if supports else None
    return supports, classes, coverage


def build_manifest(
    source: BundleSource, plan: CapturePlan, hashes: Sequence[str], captured_at: str
) -> dict[str, Any]:
    """manifest.json in FlowTime's record order (nulls omitted)."""
    window: dict[str, Any] = {}
    if source.window_start is not None:
        window["startTimeUtc"] = source.window_start
    if source.grid.duration_minutes is not None:
        window["durationMinutes"] = source.grid.duration_minutes
    files = [
        dict(zip(FILE_FIELDS, (f.node_id, f.metric, f.path, h, f.points, f.class_id), strict=True))
        for f, h in zip(plan.files, hashes, strict=True)
    ]
    provenance: dict[str, Any] = {
        "runId": source.provenance.run_id,
        "scenarioHash": source.provenance.scenario_hash,
    }
    if source.provenance.model_hash is not None:
        provenance["modelHash"] = source.provenance.model_hash
    provenance["capturedAtUtc"] = captured_at
    supports, classes, coverage = class_summary(source.declared_classes, (f.class_id for f in plan.files))
    fields: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "window": window,
        "grid": source.grid.as_json(),
        "files": files,
        "warnings": [w.as_json() for w in plan.warnings],
        "provenance": provenance,
        "supportsClassMetrics": supports,
        "classes": classes,
        "classCoverage": coverage,
    }
    return {key: fields[key] for key in MANIFEST_FIELDS if fields[key] is not None}


def write_bundle(
    source: BundleSource,
    directory: Path,
    *,
    options: GapOptions | None = None,
    captured_at: str | None = None,
    progress: Progress | None = None,
) -> WrittenBundle:
    """Write the CSVs, then ``manifest.json``, into ``directory`` (created; other files are kept).

    Into a directory this call creates, each CSV is written under its own name at once (nothing there
    to keep intact, and without a manifest the directory is not a bundle yet); into an existing one,
    each is staged beside its final name and renamed into place once every series was read.
    """
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    files: list[PlannedFile] = []
    warnings: list[CaptureWarning] = []
    hashes: list[str] = []
    staged: list[tuple[str, Path]] = []
    renamed = 0
    total = len(source.series)
    try:
        for done, (planned, values, found) in enumerate(_planned(source, options or GapOptions()), start=1):
            data = encode_csv(values, planned.class_id)
            del values  # one series in memory at a time
            final = directory / planned.path
            if created:
                write_new(final, data)
                staged.append((str(final), final))  # renamed onto itself: a no-op, removed on failure
            else:
                staged.append((stage(final, data), final))
            hashes.append(sha256_of(data))
            files.append(planned)
            warnings.extend(found)
            if progress is not None:
                progress(done, total)
        for placed, (temporary, final) in enumerate(staged, start=1):
            if temporary != str(final):
                os.replace(temporary, final)
            renamed = placed
    except BaseException:
        for temporary, _final in staged[renamed:]:
            discard(temporary)
        if created:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if still empty
        raise
    warnings.extend(source.warnings)
    plan = CapturePlan(files, warnings)
    manifest = build_manifest(source, plan, hashes, captured_at or utc_timestamp())
    atomic_write(directory / MANIFEST, dump_json(manifest))
    return WrittenBundle(directory, manifest, plan)


def autocapture_document(
    *,
    template_id: str | None,
    capture_key: str | None,
    source_run_id: str,
    generated_at: str,
    rng_seed: int | None,
    parameters_hash: str,
    scenario_hash: str,
) -> dict[str, Any]:
    """``autocapture.json`` (FlowTime's ``TelemetryGenerationMetadata``: camelCase, nulls written)."""
    return {
        "templateId": template_id,
        "captureKey": capture_key,
        "sourceRunId": source_run_id,
        "generatedAtUtc": generated_at,
        "rngSeed": rng_seed,
        "parametersHash": parameters_hash,
        "scenarioHash": scenario_hash,
    }


def write_autocapture(directory: Path, document: dict[str, Any]) -> None:
    atomic_write(directory / AUTOCAPTURE, dump_json(document))
