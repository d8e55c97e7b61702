"""Write a run directory laid out exactly as FlowTime's writers do (for tests, benchmarks, demos).

``engine="csharp"`` follows ``RunArtifactWriter`` (UTF-8 BOM on every file, ``classCoverage``, series
hashes over the BOM bytes); ``engine="rust"`` follows ``engine/core/src/sink.rs`` (no BOM,
``classesCoverage``, no grid timezone in the index, ``rng {kind: none, seed: 0}``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from ._format import dotnet_double, format_value
from .schema import Grid, sha256_of

_BOM = b"\xef\xbb\xbf"


def _number(value: float | None) -> str:
    return format_value(value, dotnet_double)  # double.ToString(InvariantCulture): shortest round-trip


def series_csv(values: Sequence[float | None]) -> str:
    return "bin_index,value\n" + "".join(f"{i},{_number(v)}\n" for i, v in enumerate(values))


def write_run_directory(
    root: Path,
    run_id: str,
    *,
    model_yaml: str,
    series: Mapping[str, Sequence[float | None]],
    grid: Grid,
    classes: Sequence[str] = (),
    engine: Literal["csharp", "rust"] = "csharp",
    metadata: Mapping[str, Any] | None = None,
    model_files: Mapping[str, bytes] | None = None,
    seed: int = 123,
) -> Path:
    """Create ``root/run_id`` with run.json, manifest.json, spec.yaml, model/ and series/.

    ``series`` maps series ids (``<node>@<NODE>@<class>``) to values; ``model_files`` are extra files
    copied into ``model/`` (FlowTime copies a fixture folder there).
    """
    bom = _BOM if engine == "csharp" else b""
    run_dir = root / run_id
    (run_dir / "series").mkdir(parents=True)
    (run_dir / "model").mkdir()
    (run_dir / "aggregates").mkdir()

    def write(relative: str, text: str) -> bytes:
        data = bom + text.encode("utf-8")
        (run_dir / relative).write_bytes(data)
        return data

    model_bytes = write("model/model.yaml", model_yaml)
    write("spec.yaml", model_yaml)
    for name, data in (model_files or {}).items():
        (run_dir / "model" / name).write_bytes(data)
    model_hash = "sha256:" + hashlib.sha256(model_bytes).hexdigest()
    scenario_hash = "sha256:" + hashlib.sha256(f"{model_yaml.strip()}\n{seed}\nnull".encode()).hexdigest()
    entries = []
    for series_id, values in series.items():
        data = write(f"series/{series_id}.csv", series_csv(values))
        node, _, rest = series_id.partition("@")
        class_id = rest.rpartition("@")[2] or "DEFAULT"
        entries.append(
            {
                "id": series_id,
                "kind": "flow",
                "path": f"series/{series_id}.csv",
                "unit": "entities/bin",
                "componentId": node.upper(),
                "class": class_id,
                "classKind": "fallback" if class_id == "DEFAULT" else "specific",
                "points": len(values),
                "hash": sha256_of(data),
            }
        )
    class_docs = [{"id": c, "displayName": None, "description": None} for c in classes]
    coverage_key, coverage = (
        ("classCoverage", "full" if classes else "missing")
        if engine == "csharp"
        else ("classesCoverage", "full" if classes else "none")
    )
    grid_json: dict[str, Any] = {"bins": grid.bins, "binSize": grid.bin_size, "binUnit": grid.bin_unit}
    index_grid = {**grid_json, "timezone": "UTC"} if engine == "csharp" else grid_json
    write(
        "series/index.json",
        _json(
            {
                "schemaVersion": 1,
                "grid": index_grid,
                "series": entries,
                "formats": {
                    "aggregatesTable": {
                        "path": "aggregates/node_time_bin.parquet",
                        "dimensions": ["time_bin", "component_id", "class"],
                        "measures": ["arrivals", "served", "errors"],
                    }
                },
                "classes": class_docs,
                coverage_key: coverage,
            }
        ),
    )
    created = dt.datetime(2025, 1, 1, tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")
    write(
        "run.json",
        _json(
            {
                "schemaVersion": 1,
                "runId": run_id,
                "engineVersion": "0.1.0",
                "source": "engine",
                "inputHash": None,
                "grid": {**grid_json, "timezone": "UTC", "align": "left"},
                "modelHash": model_hash,
                "scenarioHash": scenario_hash,
                "createdUtc": created,
                coverage_key: coverage,
                "warnings": [],
                "series": [{"id": e["id"], "path": e["path"], "unit": e["unit"]} for e in entries],
                "classes": class_docs,
            }
        ),
    )
    rng = {"kind": "pcg32", "seed": seed} if engine == "csharp" else {"kind": "none", "seed": 0}
    write(
        "manifest.json",
        _json(
            {
                "schemaVersion": 1,
                "scenarioHash": scenario_hash,
                "rng": rng,
                "seriesHashes": {e["id"]: e["hash"] for e in entries},
                "eventCount": 0,
                "createdUtc": created,
                "modelHash": model_hash,
                "classes": class_docs,
            }
        ),
    )
    if metadata is not None:
        write("model/metadata.json", _json({"schemaVersion": 1, "modelHash": model_hash, **metadata}))
    return run_dir


def _json(value: Any) -> str:
    return json.dumps(value, indent=2)
