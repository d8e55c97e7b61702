"""FlowTime capture bundles, read back (specs 001, 003): query code, it never writes.

A bundle is a flat directory of per node x metric x class CSVs (``bin_index,classId,value``) and a
``manifest.json`` (schema v2, published as ``otel_tele/exporters/capture/telemetry-manifest.schema.json``);
its layout is declared in :mod:`otel_tele.exporters.capture.schema`. The ``capture`` sink writes
bundles live, and :func:`otel_tele.exporters.capture.capture_run` captures a FlowTime run directory
into one. FlowTime replays a bundle unchanged; ``read_bundle`` validates it the way FlowTime's strict
readers would and gives the series back exactly as captured (``None`` for an empty cell, NaN/±inf kept).

Usage (paths are illustrative)::

    from otel_tele import bundles
    from otel_tele.exporters.capture import capture_run
    capture_run("data/runs/run_deterministic_72ca609c", "out/order-system")
    bundle = bundles.read_bundle("out/order-system")
    bundle.get("OrderService", "Arrivals").values   # (10.0, 10.0, 10.0, 10.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exporters.capture.schema import (
    MANIFEST,
    SCHEMA_VERSION,
    V1_HEADER,
    V2_HEADER,
    BundleFormatError,
    CaptureWarning,
    Grid,
    is_sha256,
    load_json,
    parse_value,
    read_series_rows,
    schema_errors,
    sha256_of,
)

__all__ = ["Bundle", "BundleError", "CaptureWarning", "Series", "read_bundle", "same_values"]

#: What a v1 bundle (before FlowTime's class support) lacks compared with v2.
V1_MISSING = ("supportsClassMetrics", "classes", "classCoverage", "files[].classId", "CSV classId column")


class BundleError(Exception):
    """A bundle failed validation; ``problems`` lists every finding."""

    def __init__(self, directory: Path, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        shown = "; ".join(self.problems[:5]) + (
            f"; … {len(self.problems) - 5} more" if len(self.problems) > 5 else ""
        )
        super().__init__(f"bundle {directory.name!r} is invalid: {shown}")


@dataclass(frozen=True)
class Series:
    """One captured series (``values``: float per bin, ``None`` for an empty cell)."""

    node_id: str
    metric: str
    class_id: str
    path: str
    points: int
    values: tuple[float | None, ...]


@dataclass
class Bundle:
    """A bundle as read: its manifest, series and warnings; ``problems`` when read with strict=False."""

    directory: Path
    schema_version: int
    manifest: dict[str, Any]
    grid: Grid | None
    series: list[Series]
    warnings: list[CaptureWarning]
    problems: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def get(self, node_id: str, metric: str, class_id: str = "DEFAULT") -> Series:
        """The series of ``node_id`` x ``metric`` (manifest name, e.g. ``"Arrivals"``) x class."""
        for series in self.series:
            if series.node_id == node_id and series.metric == metric and series.class_id == class_id:
                return series
        raise KeyError(f"no series {node_id}:{metric} ({class_id}) in bundle {self.directory.name!r}")


def read_bundle(path: str | Path, *, strict: bool = True) -> Bundle:
    """Read and validate the bundle in directory ``path``.

    Checks the manifest against the published schema (v2), every file's sha256, headers, row count ==
    ``grid.bins`` and bin indices. v1 bundles (no class fields, ``bin_index,value``) are read too, with
    ``missing`` naming what they lack. With ``strict`` (default) any problem raises :class:`BundleError`;
    otherwise problems are returned in ``Bundle.problems``.
    """
    directory = Path(path)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(directory, [f"{MANIFEST} not found"])
    try:
        manifest = load_json(manifest_path.read_bytes(), MANIFEST)
    except BundleFormatError as exc:
        raise BundleError(directory, [str(exc)]) from None
    if not isinstance(manifest, dict):
        raise BundleError(directory, [f"{MANIFEST}: expected a JSON object"])
    version = manifest.get("schemaVersion")
    problems: list[str] = []
    missing: list[str] = []
    if version == SCHEMA_VERSION:
        problems.extend(f"{MANIFEST}: {e}" for e in schema_errors(manifest))
    else:
        missing = [key for key in V1_MISSING if not _has(manifest, key)]
        if version not in (1, None):
            problems.append(f"{MANIFEST}: unsupported schemaVersion {version!r}")
    grid = _manifest_grid(manifest, problems)
    series = _read_files(directory, manifest, grid, version == SCHEMA_VERSION, problems)
    warnings = [CaptureWarning.from_json(w) for w in manifest.get("warnings") or () if isinstance(w, dict)]
    if strict and problems:
        raise BundleError(directory, problems)
    return Bundle(
        directory,
        version if isinstance(version, int) else 1,
        manifest,
        grid,
        series,
        warnings,
        problems,
        missing,
    )


def _has(manifest: dict[str, Any], key: str) -> bool:
    if key == "files[].classId":
        return all(isinstance(f, dict) and "classId" in f for f in manifest.get("files") or ())
    if key == "CSV classId column":
        return False
    return key in manifest


def _manifest_grid(manifest: dict[str, Any], problems: list[str]) -> Grid | None:
    raw = manifest.get("grid")
    try:
        return Grid(raw["bins"], raw["binSize"], raw["binUnit"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        problems.append(f"{MANIFEST}: grid is missing or invalid; row counts not checked")
        return None


def _read_files(
    directory: Path, manifest: dict[str, Any], grid: Grid | None, v2: bool, problems: list[str]
) -> list[Series]:
    files = manifest.get("files")
    if not isinstance(files, list):
        problems.append(f"{MANIFEST}: files is missing")
        return []
    seen: set[str] = set()
    series = []
    root = directory.resolve()
    for entry in files:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            problems.append(f"{MANIFEST}: a files[] entry has no path")
            continue
        name = entry["path"]
        if name.lower() in seen:
            problems.append(f"{name}: listed twice (paths are compared case-insensitively)")
        seen.add(name.lower())
        target = (directory / name).resolve()
        if "\x00" in name or not target.is_relative_to(root) or not target.is_file():
            problems.append(f"{name}: file missing or outside the bundle")
            continue
        data = target.read_bytes()
        # v1 bundles may spell the digest `sha256` and write it as bare hex; v2 is `hash: "sha256:<hex>"`.
        digest = entry.get("hash") if v2 or "hash" in entry else entry.get("sha256")
        if (v2 or digest is not None) and not is_sha256(digest, data, bare_hex=not v2):
            problems.append(
                f"{name}: sha256 does not match the manifest: the file's is {sha256_of(data)}, "
                f"the manifest says {str(digest)[:80]!r}"
            )
        class_id: str = entry["classId"] if isinstance(entry.get("classId"), str) else "DEFAULT"
        values = _read_csv(data, name, class_id, grid, problems)
        series.append(
            Series(
                str(entry.get("nodeId")),
                str(entry.get("metric")),
                class_id,
                name,
                entry["points"] if isinstance(entry.get("points"), int) else len(values),
                tuple(values),
            )
        )
    return series


def _read_csv(
    data: bytes, name: str, class_id: str, grid: Grid | None, problems: list[str]
) -> list[float | None]:
    """FlowTime's strict ``CsvReader`` rules: known header, 0 <= bin_index < bins, no duplicates, and
    (TelemetryBundleBuilder) row count == bins."""
    try:
        header, rows = read_series_rows(data, name)
    except BundleFormatError as exc:
        problems.append(str(exc))
        return []
    columns = {V2_HEADER.lower(): 3, V1_HEADER.lower(): 2}.get(header.replace(" ", "").lower())
    if columns is None:
        problems.append(f"{name}: header {header[:60]!r} is neither {V2_HEADER!r} nor {V1_HEADER!r}")
        columns = 3 if len(rows) and len(rows[0]) == 3 else 2
    values: list[float | None] = []
    seen: set[int] = set()
    for number, row in rows:
        if len(row) != columns:
            problems.append(f"{name}: line {number} has {len(row)} columns, expected {columns}")
            continue
        # A bad cell is one finding: the row still holds its place, so later rows are not reported
        # out of order and the row count stays right.
        try:
            index = int(row[0])
        except ValueError:
            problems.append(f"{name}: line {number}: bin_index {row[0].strip()[:40]!r} is not an integer")
            index = len(values)
        try:
            value = parse_value(row[-1])
        except BundleFormatError:
            problems.append(f"{name}: line {number}: value {row[-1].strip()[:40]!r} is not a number")
            value = None
        if index in seen or index != len(values) or (grid is not None and index >= grid.bins):
            problems.append(
                f"{name}: line {number} has bin_index {index} (duplicate, out of order or out of range)"
            )
        if columns == 3 and row[1].strip() != class_id:
            problems.append(f"{name}: line {number} has classId {row[1][:40]!r}, manifest says {class_id!r}")
        seen.add(index)
        values.append(value)
    if grid is not None and len(values) != grid.bins:
        problems.append(f"{name}: {len(values)} rows, grid.bins is {grid.bins}")
    return values


def same_values(a: Sequence[float | None], b: Sequence[float | None]) -> bool:
    """Exact equality that treats NaN as equal to NaN (for round-trip checks)."""
    return len(a) == len(b) and all(
        x == y or (x is not None and y is not None and math.isnan(x) and math.isnan(y))
        for x, y in zip(a, b, strict=True)
    )
