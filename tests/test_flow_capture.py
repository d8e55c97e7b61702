"""Run-directory capture (spec 001 FR1): FlowTime layout in, schema v2 bundle out, read back exactly."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from otel_tele.exporters.capture import (
    CaptureError,
    GapInjection,
    RunNotFound,
    capture_run,
    gap_options,
    load_injections,
)
from otel_tele.exporters.capture._format import format_value, safe_file_name
from otel_tele.exporters.capture._rundir import parameters_hash, read_values
from otel_tele.exporters.capture.schema import Grid, manifest_schema, parse_value, schema_errors, sha256_of

from otel_tele import bundles

from .sink_samples.capture import RETRY, fixture_run, fixture_series

CAPTURED = [
    "OrderService_arrivals.csv",
    "OrderService_served.csv",
    "OrderService_errors.csv",
    "OrderService_capacity.csv",
    "SupportQueue_arrivals.csv",
    "SupportQueue_served.csv",
    "SupportQueue_errors.csv",
    "SupportQueue_queuedepth.csv",
]


def strict_flowtime_csv(data: bytes, bins: int, class_id: str) -> list[str]:
    """FlowTime's CsvReader + TelemetryBundleBuilder rules, spelled out independently of our reader."""
    assert not data.startswith(b"\xef\xbb\xbf") and b"\r" not in data and data.endswith(b"\n")
    lines = data.decode("utf-8").split("\n")[:-1]
    assert lines[0].strip().lower() == "bin_index,classid,value"
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == bins
    assert [int(r[0]) for r in rows] == list(range(bins))
    assert all(r[1] == class_id for r in rows)
    return [r[2] for r in rows]


# -- number text and names -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (10.0, "10"),
        (0.6, "0.59999999999999998"),
        (1.0, "1"),
        (-2.5, "-2.5"),
        (1e20, "1E+20"),
        (1e-5, "1.0000000000000001E-05"),
        (0.0001, "0.0001"),
        (123456789012345678.0, "1.2345678901234568E+17"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (None, ""),
    ],
)
def test_values_are_written_as_dotnet_g17(value: float | None, text: str) -> None:
    """Values use .NET G17 invariant text, NaN/Infinity literals and an empty cell for a gap."""
    assert format_value(value) == text


@given(st.floats(allow_nan=True, allow_infinity=True) | st.none())
def test_value_text_round_trips(value: float | None) -> None:
    """Every double (and a gap) survives format → parse exactly."""
    back = parse_value(format_value(value))
    assert back == value or (
        value is not None and back is not None and math.isnan(value) and math.isnan(back)
    )


@given(st.text())
def test_safe_file_names_never_leave_the_directory(name: str) -> None:
    """Any node id or alias becomes one flat, non-hidden-dot-only file name."""
    cleaned = safe_file_name(name)
    assert cleaned and "/" not in cleaned and "\\" not in cleaned and "\x00" not in cleaned
    assert cleaned.strip(".") and len(cleaned) <= 200


# -- the fixture run -------------------------------------------------------------------------------
def test_fixture_run_captures_a_valid_flowtime_bundle(tmp_path: Path) -> None:
    """retry-service-time as a C# run (BOM) captures into a bundle FlowTime's strict readers accept."""
    run = fixture_run(tmp_path / "runs")
    assert (run / "series" / "index.json").read_bytes().startswith(b"\xef\xbb\xbf")
    result = capture_run(run, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert schema_errors(manifest) == [] and result.schema_errors == []
    assert [f["path"] for f in manifest["files"]] == CAPTURED  # attempts, retryEcho … are not flow metrics
    assert manifest["window"] == {"startTimeUtc": "2025-01-01T00:00:00Z", "durationMinutes": 20}
    assert manifest["grid"] == {"bins": 4, "binSize": 5, "binUnit": "minutes"}
    assert manifest["supportsClassMetrics"] is False and manifest["classCoverage"] == "missing"
    assert "classes" not in manifest and manifest["warnings"] == []
    run_json = json.loads((run / "run.json").read_text(encoding="utf-8-sig"))
    assert manifest["provenance"]["runId"] == "run_deterministic_72ca609c"
    assert manifest["provenance"]["scenarioHash"] == run_json["scenarioHash"]
    assert manifest["provenance"]["modelHash"] == run_json["modelHash"]
    series = fixture_series()
    for entry in manifest["files"]:
        data = (tmp_path / "out" / entry["path"]).read_bytes()
        assert entry["hash"] == sha256_of(data) and entry["points"] == 4 and entry["classId"] == "DEFAULT"
        cells = strict_flowtime_csv(data, 4, "DEFAULT")
        source = entry["path"][:-4].replace("queuedepth", "queue")
        assert [float(c) for c in cells] == series[f"{source}@{source.upper()}@DEFAULT"]
    assert (
        tmp_path / "out" / "OrderService_arrivals.csv"
    ).read_bytes() == b"bin_index,classId,value\n0,DEFAULT,10\n1,DEFAULT,10\n2,DEFAULT,10\n3,DEFAULT,10\n"


def test_capture_reads_back_the_original_series_exactly(tmp_path: Path) -> None:
    """capture → read_bundle gives every captured series back, value for value."""
    run = fixture_run(tmp_path / "runs")
    capture_run(run, tmp_path / "out")
    bundle = bundles.read_bundle(tmp_path / "out")
    assert bundle.get("SupportQueue", "QueueDepth").values == (2.0, 10.0, 20.0, 0.0)
    assert bundle.get("OrderService", "Capacity").values == (12.0, 7.0, 9.0, 4.0)
    assert bundle.problems == [] and bundle.missing == [] and len(bundle.series) == 8


def test_awkward_values_round_trip_exactly(tmp_path: Path) -> None:
    """NaN, ±inf, gaps and non-representable decimals come back bit for bit."""
    values: list[float | None] = [0.1 + 0.2, float("nan"), None, float("-inf"), 1e-300, 5e-324]
    model = (
        "grid: {bins: 6, binSize: 1, binUnit: hours}\ntopology:\n  nodes:\n    - id: N\n      semantics:\n"
        "        arrivals: n_arrivals\n"
    )
    run = fixture_run(
        tmp_path / "runs",
        model_yaml=model,
        series={"n_arrivals@N_ARRIVALS@DEFAULT": values},
        grid=Grid(6, 1, "hours"),
        model_files={},
    )
    result = capture_run(run, tmp_path / "out")
    assert [w.code for w in result.warnings] == ["nan_detected", "nan_detected"]
    assert bundles.same_values(bundles.read_bundle(tmp_path / "out").get("N", "Arrivals").values, values)


def bundle_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        data = path.read_bytes()
        if path.name == "manifest.json":
            manifest = json.loads(data)
            manifest["provenance"]["capturedAtUtc"] = ""
            data = json.dumps(manifest).encode()
        digest.update(path.name.encode() + b"\0" + data)
    return digest.hexdigest()


def test_same_inputs_and_options_give_byte_identical_bundles(tmp_path: Path) -> None:
    """Two captures with the same options hash the same, capturedAtUtc aside; other options differ."""
    run = fixture_run(tmp_path / "runs")
    options = gap_options(fill_nan=True, gaps="warn", inject=[GapInjection("gap", fraction=0.5, seed=7)])
    capture_run(run, tmp_path / "a", options=options)
    capture_run(run, tmp_path / "b", options=options)
    capture_run(run, tmp_path / "c", options=gap_options(gaps="warn"))
    assert bundle_digest(tmp_path / "a") == bundle_digest(tmp_path / "b") != bundle_digest(tmp_path / "c")


def test_rust_engine_run_captures_to_the_same_csvs(tmp_path: Path) -> None:
    """A Rust-engine run (no BOM, classesCoverage) yields the same CSV bytes as the C# layout."""
    capture_run(fixture_run(tmp_path / "cs"), tmp_path / "a")
    rust = fixture_run(tmp_path / "rs", engine="rust")
    assert not (rust / "run.json").read_bytes().startswith(b"\xef\xbb\xbf")
    assert "classesCoverage" in json.loads((rust / "series" / "index.json").read_text())
    capture_run(rust, tmp_path / "b")
    for name in CAPTURED:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


CLASS_MODEL = """schemaVersion: 1
grid: {bins: 3, binSize: 1, binUnit: days, start: 2025-02-01T00:00:00Z}
classes: [{id: Retail}, {id: Wholesale}, {id: Partner}]
topology:
  nodes:
    - id: Order Service
      semantics:
        arrivals: "file:../series/orders_in@ORDERS_IN@DEFAULT.csv"
        served: "file:../series/orders_out@ORDERS_OUT@DEFAULT.csv"
outputs:
  - {series: orders_in, as: orders_in}
"""


def test_rewritten_semantics_classes_and_output_aliases(tmp_path: Path) -> None:
    """FlowTime-rewritten file refs bind every class; outputs[].as names files; coverage is partial."""
    series = {
        "orders_in@ORDERS_IN@DEFAULT": [3, 4, 5],
        "orders_in@ORDERS_IN@Retail": [1, 1, 2],
        "orders_in@ORDERS_IN@Wholesale": [2, 3, 3],
        "orders_out@ORDERS_OUT@DEFAULT": [3, 3, 3],
    }
    run = fixture_run(
        tmp_path / "runs",
        model_yaml=CLASS_MODEL,
        series=series,
        grid=Grid(3, 1, "days"),
        classes=["Retail", "Wholesale", "Partner"],
        model_files={},
    )
    result = capture_run(run, tmp_path / "out")
    assert result.schema_errors == []
    manifest = result.manifest or {}
    assert [(f["path"], f["classId"]) for f in manifest["files"]] == [
        ("orders_in.csv", "DEFAULT"),
        ("orders_in_Retail.csv", "Retail"),
        ("orders_in_Wholesale.csv", "Wholesale"),
        ("Order_Service_served.csv", "DEFAULT"),
    ]
    assert manifest["window"] == {"startTimeUtc": "2025-02-01T00:00:00Z", "durationMinutes": 4320}
    assert manifest["supportsClassMetrics"] is True
    assert (
        manifest["classes"] == ["Retail", "Wholesale", "Partner"] and manifest["classCoverage"] == "partial"
    )
    strict_flowtime_csv((tmp_path / "out" / "orders_in_Retail.csv").read_bytes(), 3, "Retail")
    assert bundles.read_bundle(tmp_path / "out").get("Order Service", "Arrivals", "Wholesale").values == (
        2,
        3,
        3,
    )


def test_outputs_fallback_when_the_model_has_no_topology(tmp_path: Path) -> None:
    """Without topology bindings, outputs whose file name ends in a flow suffix are captured."""
    model = (
        "grid: {bins: 2, binSize: 1, binUnit: weeks}\noutputs:\n  - {series: a, as: Shop_queue_depth.csv}\n"
        "  - {series: b, as: Shop_served}\n  - {series: c, as: Shop_latency.csv}\n"
    )
    series = {"a@A@DEFAULT": [1, 2], "b@B@DEFAULT": [3, 4], "c@C@DEFAULT": [5, 6]}
    run = fixture_run(
        tmp_path / "runs", model_yaml=model, series=series, grid=Grid(2, 1, "weeks"), model_files={}
    )
    manifest = capture_run(run, tmp_path / "out").manifest or {}
    assert [(f["nodeId"], f["metric"], f["path"]) for f in manifest["files"]] == [
        ("Shop", "QueueDepth", "Shop_queue_depth.csv"),
        ("Shop", "Served", "Shop_served.csv"),
    ]
    assert manifest["window"] == {}  # weeks have no durationMinutes in FlowTime


# -- gaps, injection, warnings ---------------------------------------------------------------------
def gap_run(root: Path) -> Path:
    model = (
        "grid: {bins: 4, binSize: 5, binUnit: minutes}\ntopology:\n  nodes:\n    - id: Q\n      semantics:\n"
        "        queueDepth: q_queue\n"
    )
    return fixture_run(
        root,
        model_yaml=model,
        series={"q_queue@Q_QUEUE@DEFAULT": [1.0, None, float("nan"), 4.0]},
        model_files={},
    )


@pytest.mark.parametrize(
    ("flags", "codes", "values"),
    [
        ({}, ["nan_detected"], (1.0, None, math.nan, 4.0)),
        ({"fill_nan": True}, ["nan_fill"], (1.0, None, 0.0, 4.0)),
        ({"gaps": "warn"}, ["data_gap", "nan_detected"], (1.0, None, math.nan, 4.0)),
        ({"gaps": "fill_zero", "fill_nan": True}, ["data_gap", "nan_fill"], (1.0, 0.0, 0.0, 4.0)),
    ],
)
def test_gap_options_match_flowtime(
    tmp_path: Path, flags: dict[str, object], codes: list[str], values: tuple[float | None, ...]
) -> None:
    """Each FlowTime gap option rewrites the series and reports per-bin warnings with node and bins."""
    result = capture_run(
        gap_run(tmp_path / "runs"),
        tmp_path / "out",
        options=gap_options(**flags),  # type: ignore[arg-type]
    )
    assert [w.code for w in result.warnings] == codes
    assert all(w.node_id == "Q" and w.bins and len(w.bins) == 1 for w in result.warnings)
    assert result.schema_errors == []
    assert all(w["severity"] == "warning" for w in (result.manifest or {})["warnings"])
    assert bundles.same_values(bundles.read_bundle(tmp_path / "out").get("Q", "QueueDepth").values, values)


def test_injection_records_machine_readable_warnings(tmp_path: Path) -> None:
    """Zero-fill, NaN and removal of chosen bins are applied and reported per series."""
    injections = [
        GapInjection("zero", node_id="OrderService", metric="arrivals", bins=(0,)),
        GapInjection("nan", node_id="SupportQueue", metric="QueueDepth", bins=(1, 2)),
        GapInjection("gap", node_id="OrderService", metric="served", bins=(3, 9)),
    ]
    result = capture_run(
        fixture_run(tmp_path / "runs"),
        tmp_path / "out",
        options=gap_options(gaps="warn", inject=injections),
    )
    found = {(w.code, w.node_id, w.bins) for w in result.warnings}
    assert {
        ("injected_zero", "OrderService", (0,)),
        ("injected_nan", "SupportQueue", (1, 2)),
        ("injected_gap", "OrderService", (3,)),
        ("nan_detected", "SupportQueue", (1,)),
        ("data_gap", "OrderService", (3,)),
    } <= found
    bundle = bundles.read_bundle(tmp_path / "out")
    assert bundle.get("OrderService", "Arrivals").values[0] == 0.0
    assert bundle.get("OrderService", "Served").values[3] is None
    assert result.schema_errors == []


def test_injections_load_from_yaml_and_reject_bad_entries(tmp_path: Path) -> None:
    """An injection file is validated: unknown keys, modes and metrics are clear errors."""
    path = tmp_path / "gaps.yaml"
    path.write_text("injections:\n  - {mode: gap, fraction: 0.5, seed: 3}\n  - {mode: nan, bins: [1]}\n")
    assert [i.mode for i in load_injections(path)] == ["gap", "nan"]
    for bad in (
        {"mode": "explode", "bins": [1]},
        {"mode": "nan"},
        {"mode": "nan", "bins": [-1]},
        {"mode": "nan", "bins": [1], "metric": "latency"},
        {"mode": "nan", "bins": [1], "x": 1},
    ):
        with pytest.raises(ValueError):
            GapInjection.from_mapping(bad)


def test_length_mismatch_is_reported_without_a_node(tmp_path: Path) -> None:
    """A series with fewer rows than index points yields FlowTime's length_mismatch warning."""
    run = fixture_run(tmp_path / "runs")
    index_path = run / "series" / "index.json"
    index = json.loads(index_path.read_text(encoding="utf-8-sig"))
    index["series"][0]["points"] = 5
    index_path.write_text(json.dumps(index))
    warning = capture_run(run, dry_run=True).warnings[0]
    assert warning.code == "length_mismatch" and warning.node_id is None and "expected 5" in warning.message


# -- provenance ------------------------------------------------------------------------------------
def test_autocapture_parameters_hash_is_computed_flowtimes_way(tmp_path: Path) -> None:
    """parametersHash = sha256 of compact JSON, ordinal key order, JavaScriptEncoder escaping."""
    run = fixture_run(tmp_path / "runs")
    capture_run(run, tmp_path / "out", autocapture=True, capture_key="retry")
    doc = json.loads((tmp_path / "out" / "autocapture.json").read_text())
    assert list(doc) == [
        "templateId",
        "captureKey",
        "sourceRunId",
        "generatedAtUtc",
        "rngSeed",
        "parametersHash",
        "scenarioHash",
    ]
    expected_json = (
        '{"templateId":"retry-service-time","templateVersion":"1.0.0","rngSeed":123,"parameters":'
        '{"arrivalRate":10,"bins":4,"label":"a\\u003Cb\\u003E\\u0026\\u0027c\\u0027\\u002B"}}'
    )
    assert doc["parametersHash"] == "sha256:" + hashlib.sha256(expected_json.encode()).hexdigest()
    assert (
        doc["captureKey"] == "retry" and doc["rngSeed"] == 123 and doc["templateId"] == "retry-service-time"
    )
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8-sig"))
    assert doc["scenarioHash"] == manifest["scenarioHash"]
    assert parameters_hash("t", None, 1, {}) == sha256_of(
        b'{"templateId":"t","templateVersion":null,"rngSeed":1,"parameters":{}}'
    )


def test_published_schema_is_flowtimes_plus_severity() -> None:
    """The packaged schema differs from FlowTime's only by allowing warnings[].severity."""
    schema = manifest_schema()
    warning = schema["properties"]["warnings"]["items"]
    assert set(warning["properties"]) == {"code", "message", "nodeId", "bins", "severity"}
    assert warning["additionalProperties"] is False and warning["required"] == ["code", "message"]
    assert schema["required"] == ["schemaVersion", "grid", "files", "provenance", "supportsClassMetrics"]
    assert schema["properties"]["files"]["items"]["properties"]["metric"]["enum"] == [
        "Arrivals",
        "Served",
        "Errors",
        "ExternalDemand",
        "QueueDepth",
        "Capacity",
    ]


# -- bad input -------------------------------------------------------------------------------------
def test_missing_run_and_missing_spec_are_clear_errors(tmp_path: Path) -> None:
    """A missing run, a run without spec.yaml/model.yaml, and corrupt JSON raise CaptureError."""
    with pytest.raises(RunNotFound):
        capture_run(tmp_path / "nope", dry_run=True)
    run = fixture_run(tmp_path / "runs")
    (run / "spec.yaml").unlink()
    assert capture_run(run, dry_run=True).files  # model/model.yaml is the fallback
    (run / "model" / "model.yaml").unlink()
    with pytest.raises(CaptureError, match=r"spec\.yaml not found"):
        capture_run(run, dry_run=True)
    run2 = fixture_run(tmp_path / "runs", run_id="run_2")
    (run2 / "run.json").write_bytes(b"{not json")
    with pytest.raises(CaptureError, match=r"run\.json: invalid JSON") as info:
        capture_run(run2, dry_run=True)
    assert str(tmp_path) not in str(info.value)


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "series/../../outside.csv", "a\x00b"])
def test_series_paths_cannot_leave_the_run(tmp_path: Path, path: str) -> None:
    """An index.json series path outside the run directory is refused, not read."""
    (tmp_path / "outside.csv").write_text("bin_index,value\n0,1\n")
    run = fixture_run(tmp_path / "runs")
    index_path = run / "series" / "index.json"
    index = json.loads(index_path.read_text(encoding="utf-8-sig"))
    for entry in index["series"]:
        entry["path"] = path
    index_path.write_text(json.dumps(index))
    with pytest.raises(CaptureError):
        capture_run(run, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_corrupt_series_values_are_refused(tmp_path: Path) -> None:
    """Non-UTF-8 bytes or an unparsable value stop the capture with the file named."""
    assert read_values(b"bin_index,value\n0,1,234\n", "x.csv") == [1234.0]  # thousands separator, as FlowTime
    with pytest.raises(CaptureError, match=r"x\.csv"):
        read_values(b"bin_index,value\n0,\xff\n", "x.csv")
    with pytest.raises(CaptureError, match=r"^x\.csv: line 4: value 'ten' is not a number$"):
        read_values(b"bin_index,value\n0,1\n\n1,ten\n", "x.csv")
    run = fixture_run(tmp_path / "runs", model_files={})
    hostile = (
        "topology:\n  nodes:\n    - id: ../../evil\n"
        "      semantics: {arrivals: 'file:OrderService_arrivals.csv'}\n"
        "grid: {bins: 4, binSize: 5, binUnit: minutes}\n"
    )
    (run / "spec.yaml").write_text(hostile)
    result = capture_run(run, tmp_path / "out")
    assert [f.path for f in result.files] == [".._.._evil_arrivals.csv"] and (tmp_path / "out").is_dir()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".._.._evil_arrivals.csv",
        "manifest.json",
    ]


# -- read_bundle -----------------------------------------------------------------------------------
def test_read_bundle_detects_tampering(tmp_path: Path) -> None:
    """Changed bytes, wrong row counts and headers are each reported; strict mode raises."""
    capture_run(fixture_run(tmp_path / "runs"), tmp_path / "out")
    out = tmp_path / "out"
    (out / "OrderService_errors.csv").write_bytes(b"bin_index,classId,value\n0,DEFAULT,1\n1,DEFAULT,1\n")
    (out / "OrderService_served.csv").write_bytes(b"t,value\n0,9\n1,6\n2,9\n3,4\n")
    with pytest.raises(bundles.BundleError) as info:
        bundles.read_bundle(out)
    problems = info.value.problems
    assert any("OrderService_errors.csv: sha256" in p for p in problems)
    assert any("OrderService_errors.csv: 2 rows, grid.bins is 4" in p for p in problems)
    assert any("OrderService_served.csv: header" in p for p in problems)
    assert len(bundles.read_bundle(out, strict=False).problems) == len(problems)


def test_read_bundle_rejects_a_broken_manifest(tmp_path: Path) -> None:
    """Missing, corrupt or schema-invalid manifests and escaping paths are reported."""
    with pytest.raises(bundles.BundleError, match=r"manifest\.json not found"):
        bundles.read_bundle(tmp_path)
    (tmp_path / "manifest.json").write_bytes(b"\xff\xfe")
    with pytest.raises(bundles.BundleError, match=r"not UTF\-8"):
        bundles.read_bundle(tmp_path)
    manifest = {
        "schemaVersion": 2,
        "grid": {"bins": 1, "binSize": 1, "binUnit": "hours"},
        "supportsClassMetrics": True,
        "provenance": {"runId": "r", "scenarioHash": "sha256:" + "0" * 64, "capturedAtUtc": "yesterday"},
        "files": [{"nodeId": "n", "metric": "Latency", "path": "../secret.csv", "hash": "x", "points": 1}],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    problems = bundles.read_bundle(tmp_path, strict=False).problems
    assert any("Latency" in p for p in problems) and any("capturedAtUtc" in p for p in problems)
    assert any("classes" in p for p in problems) and any("outside the bundle" in p for p in problems)


def test_v1_bundles_are_read_and_what_is_missing_is_named(tmp_path: Path) -> None:
    """A v1 bundle (http-demo CSVs, no class fields) reads; missing v2 parts are listed."""
    demo = RETRY.parent / "http-demo"
    files = []
    for csv in sorted(demo.glob("*.csv")):
        (tmp_path / csv.name).write_bytes(csv.read_bytes())
        node, _, metric = csv.stem.partition("_")
        files.append(
            {
                "nodeId": node,
                "metric": {"queue": "QueueDepth"}.get(metric, metric.capitalize()),
                "path": csv.name,
                "hash": sha256_of(csv.read_bytes()),
                "points": 4,
            }
        )
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "schemaVersion": 1,
                "grid": {"bins": 4, "binSize": 5, "binUnit": "minutes"},
                "files": files,
                "warnings": [],
            }
        )
    )
    bundle = bundles.read_bundle(tmp_path)
    assert bundle.schema_version == 1 and bundle.problems == []
    assert bundle.missing == list(bundles.V1_MISSING)
    assert bundle.get("SupportQueue", "QueueDepth").values == (2.0, 4.0, 5.0, 3.0)


def _v1_bundle(directory: Path, files: dict[str, bytes], digests: dict[str, str], key: str) -> Path:
    directory.mkdir()
    entries = []
    for name, data in files.items():
        (directory / name).write_bytes(data)
        entries.append({"nodeId": "n", "metric": name.removesuffix(".csv"), "path": name, key: digests[name]})
    manifest = {"schemaVersion": 1, "grid": {"bins": 4, "binSize": 5, "binUnit": "minutes"}, "files": entries}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


@pytest.mark.parametrize("key", ["sha256", "hash"])
def test_v1_bundles_with_bare_hex_digests_load(tmp_path: Path, key: str) -> None:
    """FlowTime v1 wrote files[].sha256 as bare hex (no "sha256:" prefix): such bundles load; a digest
    that does not match names the file and both digests."""
    good, bad = b"bin_index,value\n0,1\n1,2\n2,3\n3,4\n", b"bin_index,value\n0,1\n1,2\n2,3\n3,5\n"
    digests = {"a.csv": hashlib.sha256(good).hexdigest(), "b.csv": hashlib.sha256(good).hexdigest().upper()}
    bundle = bundles.read_bundle(_v1_bundle(tmp_path / "ok", {"a.csv": good, "b.csv": good}, digests, key))
    assert bundle.problems == [] and bundle.get("n", "a").values == (1.0, 2.0, 3.0, 4.0)

    stated = hashlib.sha256(good).hexdigest()
    with pytest.raises(bundles.BundleError) as info:
        bundles.read_bundle(_v1_bundle(tmp_path / "tampered", {"a.csv": bad}, {"a.csv": stated}, key))
    (problem,) = info.value.problems
    assert problem.startswith("a.csv: sha256 does not match")
    assert sha256_of(bad) in problem and stated in problem


def test_non_numeric_cell_is_one_finding_naming_file_line_and_value(tmp_path: Path) -> None:
    """A bad value or bin index is reported with its file, line (blank lines counted) and text, and
    the rows after it are not reported out of order, nor the row count wrong."""
    data = b"bin_index,value\n0,1\n\n1,lots\nx,3\n3,4\n"
    digest = {"a.csv": hashlib.sha256(data).hexdigest()}
    bundle = bundles.read_bundle(_v1_bundle(tmp_path / "b", {"a.csv": data}, digest, "sha256"), strict=False)
    assert bundle.problems == [
        "a.csv: line 4: value 'lots' is not a number",
        "a.csv: line 5: bin_index 'x' is not an integer",
    ]
    assert bundle.get("n", "a").values == (1.0, None, 3.0, 4.0)
