"""Capture bundles are byte-identical to the golden ones recorded before capture streamed series one at a
time (``tests/fixtures/capture_golden.json``: sha256 of every file of every case).

The cases cover what the writer does differently per series: C# and Rust layouts, classes and
aliases, the outputs fallback, every gap option, injections (by bins and by seeded fraction), a length
mismatch, awkward values, a grid of many series, and the live sink's in-memory path. Regenerate only
for an intended format change: ``OTEL_TELE_REGENERATE_GOLDEN=1 pytest tests/test_flow_capture_golden.py``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from otel_tele.exporters.capture import CaptureError, GapInjection, capture_run, gap_options
from otel_tele.exporters.capture._bundle import BundleSource, Provenance, SeriesInput, write_bundle
from otel_tele.exporters.capture.schema import Grid

from otel_tele.semconv import flow

from .sink_samples.capture import fixture_run

GOLDEN = Path(__file__).parent / "fixtures" / "capture_golden.json"
CAPTURED_AT = "2025-06-01T12:00:00.0000000Z"

MANY_NODES = 12
MANY_BINS = 300


def many_series_run(root: Path) -> Path:
    model = [f"grid: {{bins: {MANY_BINS}, binSize: 5, binUnit: minutes, start: '2025-01-01T00:00:00Z'}}"]
    model += ["classes: [{id: Retail}, {id: Wholesale}]", "topology:", "  nodes:"]
    series: dict[str, list[float | None]] = {}
    for n in range(MANY_NODES):
        refs = {"arrivals": f"in{n}", "served": f"out{n}", "errors": f"err{n}", "queueDepth": f"q{n}"}
        model.append(f"    - id: Node {n}\n      semantics: {json.dumps(refs)}")
        for k, ref in enumerate(refs.values()):
            values: list[float | None] = [((i * (n + 3) + k) % 97) / 7 for i in range(MANY_BINS)]
            if n % 3 == 0:
                values[n] = None
            if n % 4 == 1:
                values[2 * n + 1] = math.nan
            series[f"{ref}@{ref.upper()}@DEFAULT"] = values
            if n % 5 == 0:
                series[f"{ref}@{ref.upper()}@Retail"] = [v / 2 for v in range(MANY_BINS)]
    return fixture_run(
        root,
        model_yaml="\n".join(model) + "\n",
        series=series,
        grid=Grid(MANY_BINS, 5, "minutes"),
        classes=["Retail", "Wholesale"],
        model_files={},
    )


def awkward_run(root: Path) -> Path:
    model = (
        "grid: {bins: 9, binSize: 1, binUnit: hours}\ntopology:\n  nodes:\n    - id: 'we/ird ..'\n"
        "      semantics:\n        arrivals: a\n        capacity: c\n"
    )
    values = [0.6, 1e20, -2.5, 1e-5, math.inf, -math.inf, 123456789012345678.0, -0.0, 5e-324]
    return fixture_run(
        root,
        model_yaml=model,
        series={"a@A@DEFAULT": values, "c@C@DEFAULT": [1.0] * 9},
        grid=Grid(9, 1, "hours"),
        model_files={},
    )


def mismatch_run(root: Path) -> Path:
    run = fixture_run(root)
    index_path = run / "series" / "index.json"
    index = json.loads(index_path.read_text(encoding="utf-8-sig"))
    index["series"][0]["points"] = 5
    del index["series"][1]["points"]
    index_path.write_text(json.dumps(index))
    return run


def fallback_run(root: Path) -> Path:
    model = (
        "grid: {bins: 2, binSize: 1, binUnit: weeks}\noutputs:\n  - {series: a, as: Shop_queue_depth.csv}\n"
        "  - {series: b, as: Shop_served}\n  - {series: c, as: Shop_latency.csv}\n"
    )
    series: dict[str, list[float | None]] = {
        "a@A@DEFAULT": [1, 2],
        "b@B@DEFAULT": [3, 4],
        "c@C@DEFAULT": [5, 6],
    }
    return fixture_run(root, model_yaml=model, series=series, grid=Grid(2, 1, "weeks"), model_files={})


def capture(run: Callable[[Path], Path], **options: Any) -> Callable[[Path], None]:
    def make(out: Path) -> None:
        capture_run(
            run(out.parent / f"{out.name}-run"),
            out,
            options=gap_options(**options),
            captured_at=CAPTURED_AT,
            autocapture=True,
            capture_key="golden",
        )

    return make


def live(out: Path) -> None:
    """The live sink's path: values already in memory."""
    series = [
        SeriesInput(
            "Shop", flow.BY_FIELD["arrivals"], "DEFAULT", [1.0, None, 3.0, math.nan], "Shop_arrivals.csv", 4
        ),
        SeriesInput(
            "Shop", flow.BY_FIELD["served"], "Retail", [0.5, 0.25, None, 2.0], "Shop_served_Retail.csv", 4
        ),
    ]
    source = BundleSource(
        Grid(4, 5, "minutes"), series, Provenance("live-run", ""), window_start="2025-01-01T00:00:00Z"
    )
    write_bundle(source, out, options=gap_options(gaps="warn"), captured_at=CAPTURED_AT)


INJECTIONS = [
    GapInjection("zero", node_id="OrderService", metric="arrivals", bins=(0,)),
    GapInjection("nan", node_id="SupportQueue", metric="QueueDepth", bins=(1, 2)),
    GapInjection("gap", node_id="OrderService", metric="served", bins=(3, 9)),
]
CASES: dict[str, Callable[[Path], None]] = {
    "fixture_csharp": capture(fixture_run),
    "fixture_rust": capture(lambda root: fixture_run(root, engine="rust")),
    "fixture_warn_fill": capture(fixture_run, gaps="fill_zero", fill_nan=True),
    "fixture_injected": capture(fixture_run, gaps="warn", inject=INJECTIONS),
    "fixture_fraction": capture(
        fixture_run, fill_nan=True, gaps="warn", inject=[GapInjection("gap", fraction=0.5, seed=7)]
    ),
    "many_series": capture(many_series_run, gaps="warn"),
    "many_series_filled": capture(many_series_run, gaps="fill_zero", fill_nan=True),
    "awkward_values": capture(awkward_run),
    "length_mismatch": capture(mismatch_run),
    "outputs_fallback": capture(fallback_run),
    "live_in_memory": live,
}


def digests(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_bundles_are_byte_identical_to_the_golden_ones(tmp_path: Path) -> None:
    found = {}
    for name, make in CASES.items():
        make(tmp_path / name)
        found[name] = digests(tmp_path / name)
    if os.environ.get("OTEL_TELE_REGENERATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert sorted(found) == sorted(golden)
    for name in CASES:
        assert found[name] == golden[name], name
    assert len(found["many_series"]) > 4 * MANY_NODES  # every series really was captured


@pytest.mark.parametrize("name", ["fixture_injected", "many_series", "length_mismatch"])
def test_dry_run_plans_what_the_capture_writes(tmp_path: Path, name: str) -> None:
    make = CASES[name]
    make(tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    run = next(p for p in (tmp_path).iterdir() if p.name == "out-run")
    run_dir = next(run.iterdir())
    options = {
        "fixture_injected": gap_options(gaps="warn", inject=INJECTIONS),
        "many_series": gap_options(gaps="warn"),
        "length_mismatch": gap_options(),
    }[name]
    plan = capture_run(run_dir, tmp_path / "dry", options=options, dry_run=True)
    assert not (tmp_path / "dry").exists()
    assert [f.path for f in plan.files] == [f["path"] for f in manifest["files"]]
    assert [f.points for f in plan.files] == [f["points"] for f in manifest["files"]]
    assert [w.as_json() for w in plan.warnings] == manifest["warnings"]


def test_unreadable_series_leaves_the_output_as_it_was(tmp_path: Path) -> None:
    """Series are read as the writer reaches them; one that cannot be read (here the last) fails the
    capture before any CSV is renamed into place: the previous bundle stays whole, no temp file remains."""
    run = fixture_run(tmp_path / "runs")
    capture_run(run, tmp_path / "out", captured_at=CAPTURED_AT)
    before = digests(tmp_path / "out")
    index = json.loads((run / "series" / "index.json").read_text(encoding="utf-8-sig"))
    for entry in index["series"]:
        (run / entry["path"]).write_text("bin_index,value\n0,1\n1,2\n2,3\n3,4\n")
    (run / index["series"][-1]["path"]).write_text("bin_index,value\n0,lots\n")
    with pytest.raises(CaptureError, match="lots"):
        capture_run(run, tmp_path / "out", captured_at=CAPTURED_AT)
    assert digests(tmp_path / "out") == before
    with pytest.raises(CaptureError):
        capture_run(run, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_peak_memory_does_not_grow_with_the_number_of_series(tmp_path: Path) -> None:
    """tracemalloc peak of a capture of 400 series is not much above that of 100 (same bins): one
    series is held at a time (holding them all would take 4x)."""
    import tracemalloc

    from otel_tele.exporters.capture._runwriter import write_run_directory

    bins = 3000

    def run_of(nodes: int) -> Path:
        model = [f"grid: {{bins: {bins}, binSize: 5, binUnit: minutes}}", "topology:", "  nodes:"]
        series: dict[str, list[float | None]] = {}
        for n in range(nodes):
            model.append(f"    - id: N{n}\n      semantics: {{arrivals: a{n}}}")
            series[f"a{n}@A{n}@DEFAULT"] = [float(i % 89) / 3 for i in range(bins)]
        return write_run_directory(
            tmp_path / f"runs{nodes}",
            "r",
            model_yaml="\n".join(model) + "\n",
            series=series,
            grid=Grid(bins, 5, "minutes"),
        )

    peaks = {}
    for nodes in (100, 400):
        run = run_of(nodes)
        tracemalloc.start()
        capture_run(run, tmp_path / f"out{nodes}", captured_at=CAPTURED_AT)
        peaks[nodes] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    one_series = bins * 40  # bytes of one series' CSV text, about
    assert peaks[400] < peaks[100] + 300 * one_series / 4, peaks
