"""Read a FlowTime run directory and turn it into a :class:`BundleSource` (spec 001 FR1).

Accepts what FlowTime's C# ``RunArtifactWriter`` writes (UTF-8 BOM, ``classCoverage``) and what its
Rust engine writes (no BOM, ``classesCoverage``). Bindings follow FlowTime's ``RunArtifactReader``:
for each topology node in order, each flow semantics field (arrivals, served, errors, externalDemand,
queueDepth, capacity) that names a series; every index series of that series' node (DEFAULT and each
class) becomes one file. Without topology bindings, ``outputs[]`` whose file name ends in a flow suffix
are used. We are stricter where FlowTime trusts its input: a series ``path`` must stay inside the run
directory, and target file names are made path-safe.

Differences, by choice: ``spec.yaml`` falls back to ``model/model.yaml`` (FlowTime requires spec.yaml).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otel_tele.semconv import flow

try:  # the run-directory reader's own dependency (the [capture] extra), loaded with it
    import yaml
except ImportError:  # pragma: no cover - depends on the installation
    yaml = None

from . import schema
from ._bundle import BundleSource, Provenance, SeriesInput, autocapture_document
from ._format import (
    RawNumber,
    UnsafePath,
    dotnet_compact_json,
    dotnet_double,
    load_json_raw_numbers,
    read_inside,
)
from .schema import (
    BundleFormatError,
    CaptureWarning,
    Grid,
    class_alias,
    load_json,
    parse_value,
    read_series_rows,
    series_file_name,
    sha256_of,
)

DEFAULT_TEMPLATE_ID = "adhoc-model"
DEFAULT_RNG_SEED = 123
_HEX64 = re.compile(r"[a-f0-9]{64}")


class CaptureError(Exception):
    """A run cannot be captured. Messages name run-relative files only, never absolute paths."""


class RunNotFound(CaptureError):
    """The run directory does not exist."""


@dataclass
class RunInfo:
    """The parts of a run directory a capture needs."""

    run_dir: Path
    run_id: str
    grid: Grid
    run: Mapping[str, Any]
    index: Mapping[str, Any]
    model: Mapping[str, Any]
    metadata: Mapping[str, Any] | None  # model/metadata.json
    manifest: Mapping[str, Any] | None  # the run's manifest.json


@functools.cache
def _yaml_loader() -> Any:
    if yaml is None:
        raise ImportError("capturing a run directory needs PyYAML: pip install 'otel-tele[capture]'")
    # libyaml's parser when PyYAML was built with it: the same safe constructor and resolvers, parsing
    # at C speed (the pure-Python parser was ~15 % of a 200-series capture).
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class VerbatimLoader(base):  # type: ignore[misc,valid-type]
        """Timestamps stay strings: ``grid.start`` goes into the manifest verbatim."""

    VerbatimLoader.yaml_implicit_resolvers = {
        key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return VerbatimLoader


def _read(run_dir: Path, relative: str, *, required: bool = True) -> bytes | None:
    try:
        data = read_inside(run_dir, relative)
    except UnsafePath as exc:
        raise CaptureError(f"{relative} in run directory '{run_dir.name}': {exc}") from None
    if data is None and required:
        raise CaptureError(f"{relative} not found in run directory '{run_dir.name}'")
    return data


def _json(run_dir: Path, relative: str, *, required: bool = True) -> Any:
    data = _read(run_dir, relative, required=required)
    if data is None:
        return None
    try:
        value = load_json(data, relative)
    except BundleFormatError as exc:
        raise CaptureError(str(exc)) from None
    if not isinstance(value, Mapping):
        raise CaptureError(f"{relative}: expected a JSON object")
    return value


def _model(run_dir: Path) -> Mapping[str, Any]:
    loader = _yaml_loader()
    for relative in ("spec.yaml", "model/model.yaml"):
        data = _read(run_dir, relative, required=False)
        if data is None:
            continue
        try:
            model = yaml.load(data.decode("utf-8-sig"), Loader=loader)
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise CaptureError(f"{relative}: not a valid YAML model ({type(exc).__name__})") from None
        if not isinstance(model, Mapping):
            raise CaptureError(f"{relative}: expected a YAML mapping")
        return model
    raise CaptureError(f"spec.yaml not found in run directory '{run_dir.name}'")


def _grid(raw: Any, where: str) -> Grid:
    if not isinstance(raw, Mapping):
        raise CaptureError(f"{where}: grid is missing")
    try:
        return Grid(raw.get("bins"), raw.get("binSize"), raw.get("binUnit"))  # type: ignore[arg-type]
    except ValueError as exc:
        raise CaptureError(f"{where}: {exc}") from None


def read_run(run_dir: Path) -> RunInfo:
    """Load run.json, series/index.json, the model and optional metadata of ``run_dir``."""
    if not run_dir.is_dir():
        raise RunNotFound(f"run directory '{run_dir.name}' was not found")
    run = _json(run_dir, "run.json")
    index = _json(run_dir, "series/index.json")
    model = _model(run_dir)
    run_id = run.get("runId")
    if not isinstance(run_id, str) or not run_id:
        raise CaptureError("run.json: runId is missing")
    grid = _grid(index.get("grid") or run.get("grid"), "series/index.json")
    return RunInfo(
        run_dir,
        run_id,
        grid,
        run,
        index,
        model,
        _json(run_dir, "model/metadata.json", required=False),
        _json(run_dir, "manifest.json", required=False),
    )


# -- bindings --------------------------------------------------------------------------------------
def _node_of(series_id: str) -> str:
    return series_id.split("@", 1)[0]


def normalize_reference(value: str) -> str:
    """``file:../series/served@SERVED@DEFAULT.csv`` → ``served@SERVED@DEFAULT`` (FlowTime's rule)."""
    text = value.strip()
    if text.lower().startswith("file:"):
        text = text[5:].lstrip("/\\")
    text = re.split(r"[/\\]", text)[-1]
    return text[:-4] if text.lower().endswith(".csv") else text


def _ensure_csv(name: str) -> str:
    return name if name.lower().endswith(".csv") else f"{name}.csv"


@dataclass(frozen=True)
class _Binding:
    node_id: str
    metric: flow.FlowMetric
    file_name: str
    meta: Mapping[str, Any]


def _aliases(model: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for output in model.get("outputs") or ():
        if isinstance(output, Mapping) and isinstance(output.get("series"), str) and output["series"].strip():
            series = output["series"].strip()
            alias = output.get("as")
            out[series.lower()] = _ensure_csv(
                alias.strip() if isinstance(alias, str) and alias.strip() else f"{series}.csv"
            )
    return out


def bindings(run: RunInfo) -> list[_Binding]:
    """Which index series become which bundle files, in FlowTime's order."""
    by_node: dict[str, list[Mapping[str, Any]]] = {}
    for meta in run.index.get("series") or ():
        if isinstance(meta, Mapping) and isinstance(meta.get("id"), str) and meta["id"].strip():
            by_node.setdefault(_node_of(meta["id"]).lower(), []).append(meta)
    aliases = _aliases(run.model)
    result: list[_Binding] = []
    topology = run.model.get("topology")
    nodes = topology.get("nodes") if isinstance(topology, Mapping) else None
    for node in nodes or ():
        if not isinstance(node, Mapping) or not isinstance(node.get("id"), str):
            continue
        semantics: Mapping[str, Any] = node["semantics"] if isinstance(node.get("semantics"), Mapping) else {}
        for metric in flow.FLOW_METRICS:
            reference = semantics.get(metric.field)
            if not isinstance(reference, str) or not reference.strip():
                continue
            series_node = _node_of(normalize_reference(reference)).lower()
            alias = aliases.get(series_node, series_file_name(node["id"], metric))
            for meta in by_node.get(series_node, ()):
                result.append(_Binding(node["id"], metric, class_alias(alias, _class_of(meta)), meta))
    return result or _fallback_bindings(run.model, by_node, aliases)


def _fallback_bindings(
    model: Mapping[str, Any], by_node: Mapping[str, list[Mapping[str, Any]]], aliases: Mapping[str, str]
) -> list[_Binding]:
    result = []
    for output in model.get("outputs") or ():
        if not isinstance(output, Mapping) or not isinstance(output.get("series"), str):
            continue
        series = output["series"].strip()
        metas = by_node.get(series.lower())
        if not metas:
            continue
        alias = aliases.get(series.lower(), _ensure_csv(series))
        stem = alias[:-4] if alias.lower().endswith(".csv") else alias.rpartition(".")[0] or alias
        for suffix, field_name in schema.FALLBACK_SUFFIXES:
            if stem.lower().endswith(suffix) and stem[: -len(suffix)].rstrip("_"):
                result.append(
                    _Binding(stem[: -len(suffix)].rstrip("_"), flow.BY_FIELD[field_name], alias, metas[0])
                )
                break
    return result


def _class_of(meta: Mapping[str, Any]) -> str:
    value = meta.get("class")
    return value if isinstance(value, str) and value.strip() else flow.DEFAULT_CLASS


# -- series ----------------------------------------------------------------------------------------
def _series_path(meta: Mapping[str, Any]) -> str:
    """The series file's ``/``-separated path relative to the run directory (checked by the read)."""
    relative = meta.get("path")
    series_id = meta.get("id")
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        raise CaptureError(f"series/index.json: series {series_id!r} has no usable path")
    parts = [part for part in relative.replace("\\", "/").split("/") if part not in ("", ".")]
    if relative.startswith(("/", "\\")) or ".." in parts or not parts:
        raise CaptureError(f"series/index.json: path of series {series_id!r} leaves the run directory")
    return "/".join(parts)


def _plain_values(data: bytes) -> list[float | None] | None:
    """The common case at C speed: every row ``index,number``, no blank line, no gap, no thousands
    separator. ``float`` then reads each cell exactly as ``parse_value`` would; anything else (or
    undecodable bytes) returns ``None`` for the general path and its messages."""
    try:
        lines = data.decode("utf-8-sig").split("\n")
    except UnicodeDecodeError:
        return None
    if lines and lines[-1] == "":
        lines.pop()
    try:
        return [float(line[line.index(",") + 1 :]) for line in lines[1:]]
    except ValueError:
        return None


def read_values(data: bytes, name: str) -> list[float | None]:
    """Values of a run series CSV as FlowTime's capture reads them: header skipped, the text after the
    first comma (thousands separators allowed); a 3-column class CSV falls back to its last column."""
    plain = _plain_values(data)
    if plain is not None:
        return plain
    try:
        _header, rows = read_series_rows(data, name)
    except BundleFormatError as exc:
        raise CaptureError(str(exc)) from None
    values = []
    for number, row in rows:
        if len(row) < 2:
            raise CaptureError(f"{name}: line {number}: invalid CSV row {','.join(row)[:60]!r}")
        try:
            try:
                values.append(parse_value(",".join(row[1:])))
            except BundleFormatError:
                if len(row) < 3:
                    raise
                values.append(parse_value(row[-1]))
        except BundleFormatError:
            cell = ",".join(row[1:]).strip()[:40]
            raise CaptureError(f"{name}: line {number}: value {cell!r} is not a number") from None
    return values


def _series_input(run: RunInfo, binding: _Binding) -> SeriesInput:
    relative = _series_path(binding.meta)
    try:
        data = read_inside(run.run_dir, relative)
    except UnsafePath as exc:
        raise CaptureError(f"series file {relative} in run '{run.run_id}': {exc}") from None
    if data is None:
        raise CaptureError(f"series file {relative} not found in run '{run.run_id}'")
    values = read_values(data, relative)
    points = binding.meta.get("points")
    points = (
        points if isinstance(points, int) and not isinstance(points, bool) and points >= 0 else len(values)
    )
    warnings = []
    if points > 0 and len(values) != points:
        warnings.append(
            CaptureWarning(
                schema.LENGTH_MISMATCH,
                f"Series '{relative.rsplit('/', 1)[-1]}' contained {len(values)} points "
                f"but expected {points}.",
            )
        )
    return SeriesInput(
        binding.node_id,
        binding.metric,
        _class_of(binding.meta),
        values,
        binding.file_name,
        points,
        str(binding.meta.get("id")),
        warnings,
    )


def _hash(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return f"sha256:{value}" if _HEX64.fullmatch(value) else value


def bundle_source(run: RunInfo) -> BundleSource:
    """Every bound series of ``run`` as a :class:`BundleSource`; each series file is read (and
    checked) only when the writer gets to it."""
    series = [
        SeriesInput(
            b.node_id,
            b.metric,
            _class_of(b.meta),
            [],
            b.file_name,
            0,
            str(b.meta.get("id")),
            read=functools.partial(_series_input, run, b),
        )
        for b in bindings(run)
    ]
    grid = run.model.get("grid")
    start = grid.get("start") if isinstance(grid, Mapping) else None
    declared = [c.get("id") for c in run.model.get("classes") or () if isinstance(c, Mapping)]
    provenance = Provenance(
        run.run_id, _hash(run.run.get("scenarioHash")) or "", _hash(run.run.get("modelHash"))
    )
    return BundleSource(
        run.grid,
        series,
        provenance,
        window_start=str(start) if start is not None else None,
        declared_classes=[c for c in declared if isinstance(c, str)],
    )


# -- autocapture.json ------------------------------------------------------------------------------
def _normalize_number(value: Any) -> Any:
    # FlowTime rebuilds top-level parameters from JsonElement: integers as Int64, others as double.
    if isinstance(value, RawNumber):
        if re.fullmatch(r"-?\d+", value) and -(2**63) <= int(value) < 2**63:
            return int(value)
        return RawNumber(dotnet_double(float(value)))
    return value


def parameters_hash(
    template_id: str, template_version: str | None, rng_seed: int, parameters: Mapping[str, Any]
) -> str:
    """FlowTime's ``ComputeParametersHash``: SHA-256 of compact JSON with ordinally sorted parameters."""
    ordered = {key: _normalize_number(parameters[key]) for key in sorted(parameters, key=_ordinal)}
    document = {
        "templateId": template_id,
        "templateVersion": template_version,
        "rngSeed": rng_seed,
        "parameters": ordered,
    }
    return sha256_of(dotnet_compact_json(document).encode("utf-8"))


def _ordinal(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")  # .NET compares UTF-16 code units


def autocapture_for(run: RunInfo, *, capture_key: str | None, generated_at: str) -> dict[str, Any]:
    """``autocapture.json`` for a capture of ``run`` (FlowTime's ``TelemetryGenerationService``)."""
    metadata = run.metadata or {}
    raw_parameters: Mapping[str, Any] = {}
    data = _read(run.run_dir, "model/metadata.json", required=False)
    if data is not None:
        parsed = load_json_raw_numbers(data, "model/metadata.json")
        if isinstance(parsed, Mapping) and isinstance(parsed.get("parameters"), Mapping):
            raw_parameters = parsed["parameters"]
    model_meta: Mapping[str, Any] = (
        run.model["metadata"] if isinstance(run.model.get("metadata"), Mapping) else {}
    )
    template_id = metadata.get("templateId") or model_meta.get("id") or DEFAULT_TEMPLATE_ID
    version = metadata.get("templateVersion")
    rng = (run.manifest or {}).get("rng")
    seed = rng.get("seed") if isinstance(rng, Mapping) else None
    seed = (
        seed
        if isinstance(seed, int) and not isinstance(seed, bool) and -(2**31) <= seed < 2**31
        else DEFAULT_RNG_SEED
    )
    scenario = (run.manifest or {}).get("scenarioHash")
    return autocapture_document(
        template_id=str(template_id),
        capture_key=capture_key,
        source_run_id=run.run_id,
        generated_at=generated_at,
        rng_seed=seed,
        parameters_hash=parameters_hash(
            str(template_id), version if isinstance(version, str) else None, seed, raw_parameters
        ),
        scenario_hash=scenario if isinstance(scenario, str) else "",
    )
