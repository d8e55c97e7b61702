"""Live path: flow meters → OTel metrics → capture sink → bundles whose bins equal the driven pattern."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from otel_tele.exporters.capture import CaptureMetricExporter, CaptureSink, Grid, gap_options
from otel_tele.exporters.capture.schema import schema_errors
from otel_tele.instrumentation.flow import FlowMeters

from otel_tele import bundles
from otel_tele._pipeline import Telemetry
from otel_tele._settings import resolve

START_NS = 1_735_689_600 * 10**9  # 2025-01-01T00:00:00Z, a window boundary for 1-hour windows
GRID = Grid(12, 5, "minutes")


class ManualClock:
    """The sink's clock, moved by the test."""

    def __init__(self, ns: int) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns

    def at_bin(self, index: int, offset_ns: int = 1) -> None:
        self.ns = START_NS + index * GRID.bin_ns + offset_ns


def pipeline(sink: CaptureSink, *, cumulative: bool = False) -> Telemetry:
    settings = resolve(
        {
            "sinks": "none",
            "traces_exporter": "none",
            "metrics_exporter": "none",
            "logs_exporter": "none",
            "service_name": "orders",
        }
    )
    return Telemetry(
        settings,
        local=True,
        extra_exporters={"metrics": [CaptureMetricExporter(sink, cumulative=cumulative)]},
    )


ARRIVALS = [5, 0, 3, 12, 7, 7, 1, 0, 0, 9, 4, 2]
RETAIL = [2, 0, 1, 5, 3, 3, 0, 0, 0, 4, 2, 1]
QUEUE = [0, 1, 4, 9, 6, 2, 2, 0, 0, 3, 5, 1]


def drive(tmp_path: Path, *, cumulative: bool = False, flushes_per_bin: int = 1) -> CaptureSink:
    """Drive one full window of a known pattern, then step into the next window."""
    clock = ManualClock(START_NS)
    sink = CaptureSink(tmp_path, grid=GRID, clock=clock, classes=("Retail", "Wholesale"))
    telemetry = pipeline(sink, cumulative=cumulative)
    meters = FlowMeters(telemetry)
    orders, queue = meters.node("OrderService"), meters.node("Support Queue")
    for i in range(GRID.bins):
        for part in range(flushes_per_bin):
            clock.at_bin(i, 1 + part * 1_000_000_000)
            if part == 0:
                for _ in range(ARRIVALS[i] - RETAIL[i]):
                    orders.arrivals(class_id="Wholesale")
                orders.arrivals(RETAIL[i], class_id="Retail")
                orders.served(ARRIVALS[i] // 2)
                orders.errors(i % 2)
                orders.external_demand(ARRIVALS[i])
                queue.queue_depth(QUEUE[i])
                if i in (0, 6):
                    orders.capacity(10 + i)
            assert telemetry.force_flush(10_000)
    clock.at_bin(GRID.bins)  # first bin of the next window: the full window is written
    assert telemetry.force_flush(10_000)
    assert telemetry.shutdown(10_000)
    return sink


def test_known_arrival_pattern_gives_exact_bins(tmp_path: Path) -> None:
    """Every bin of every series equals the driven pattern, and the manifest validates."""
    sink = drive(tmp_path)
    first = sink.written[0]
    assert first.name == "orders-20250101T000000Z" and first.parent == tmp_path / "captures"
    bundle = bundles.read_bundle(first)
    assert schema_errors(bundle.manifest) == [] and bundle.warnings == []
    assert bundle.get("OrderService", "Arrivals").values == tuple(map(float, ARRIVALS))
    assert bundle.get("OrderService", "Arrivals", "Retail").values == tuple(map(float, RETAIL))
    assert bundle.get("OrderService", "Arrivals", "Wholesale").values == tuple(
        float(a - r) for a, r in zip(ARRIVALS, RETAIL, strict=True)
    )
    assert bundle.get("OrderService", "Served").values == tuple(float(a // 2) for a in ARRIVALS)
    assert bundle.get("OrderService", "Errors").values == tuple(float(i % 2) for i in range(12))
    assert bundle.get("OrderService", "ExternalDemand").values == tuple(map(float, ARRIVALS))
    assert bundle.get("Support Queue", "QueueDepth").values == tuple(map(float, QUEUE))
    assert bundle.get("OrderService", "Capacity").values == (10.0,) * 6 + (16.0,) * 6  # carried forward
    manifest = bundle.manifest
    assert manifest["window"] == {"startTimeUtc": "2025-01-01T00:00:00Z", "durationMinutes": 60}
    assert manifest["classes"] == ["Retail", "Wholesale"] and manifest["classCoverage"] == "full"
    assert "Support_Queue_queuedepth.csv" in [f["path"] for f in manifest["files"]]


def test_several_exports_per_bin_sum_into_that_bin(tmp_path: Path) -> None:
    """Three collections inside each bin still give the pattern exactly."""
    bundle = bundles.read_bundle(drive(tmp_path, flushes_per_bin=3).written[0])
    assert bundle.get("OrderService", "Arrivals").values == tuple(map(float, ARRIVALS))


def test_cumulative_temporality_gives_the_same_bins(tmp_path: Path) -> None:
    """An exporter asking for cumulative sums is differenced back into per-bin counts."""
    bundle = bundles.read_bundle(drive(tmp_path, cumulative=True).written[0])
    assert bundle.get("OrderService", "Arrivals").values == tuple(map(float, ARRIVALS))


def test_live_bundles_are_deterministic(tmp_path: Path) -> None:
    """The same driven pattern twice gives byte-identical bundles, capturedAtUtc aside."""
    from .test_flow_capture import bundle_digest

    a, b = drive(tmp_path / "a").written[0], drive(tmp_path / "b").written[0]
    assert bundle_digest(a) == bundle_digest(b)


def test_bins_without_exports_are_gaps_and_shutdown_writes_a_partial_window(tmp_path: Path) -> None:
    """Unobserved bins are empty cells; shutdown persists the open window with partial_window."""
    clock = ManualClock(START_NS)
    sink = CaptureSink(tmp_path, grid=GRID, clock=clock, options=gap_options(gaps="warn"))
    telemetry = pipeline(sink)
    node = FlowMeters(telemetry).node("Q")
    for i, depth in ((0, 3), (3, 5)):
        clock.at_bin(i)
        node.arrivals(2)
        node.queue_depth(depth)
        assert telemetry.force_flush(10_000)
    clock.at_bin(4)
    assert telemetry.shutdown(10_000)
    bundle = bundles.read_bundle(sink.written[0])
    assert bundle.grid is not None and bundle.grid.bins == 5
    assert bundle.get("Q", "Arrivals").values == (2.0, None, None, 2.0, 0.0)
    assert bundle.get("Q", "QueueDepth").values == (3.0, None, None, 5.0, 5.0)
    codes = [(w.code, w.bins) for w in bundle.warnings]
    assert (
        ("data_gap", (1,)) in codes and ("data_gap", (2,)) in codes and codes[-1] == ("partial_window", None)
    )
    assert schema_errors(bundle.manifest) == []


def test_flush_makes_the_open_window_readable(tmp_path: Path) -> None:
    """force_flush() writes the bins so far; the completed window later replaces it in place."""
    clock = ManualClock(START_NS)
    sink = CaptureSink(tmp_path, grid=GRID, clock=clock)
    telemetry = pipeline(sink)
    FlowMeters(telemetry).node("N").served(4)
    assert telemetry.force_flush(10_000)
    partial = bundles.read_bundle(sink.written[0])
    assert partial.get("N", "Served").values == (4.0,) and partial.warnings[0].code == "partial_window"
    telemetry.shutdown(10_000)


def test_invalid_measurements_are_counted_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Negative counts, NaN, empty ids and unknown fields are dropped, counted and logged once each."""
    clock = ManualClock(START_NS)
    sink = CaptureSink(tmp_path, grid=GRID, clock=clock)
    telemetry = pipeline(sink)
    meters = FlowMeters(telemetry)
    with caplog.at_level(logging.WARNING, logger="otel_tele"):
        meters.node("N").arrivals(-1)
        meters.node("N").arrivals(-2)
        meters.node("N").queue_depth(float("nan"))
        meters.node("").served()
        meters.node("N").served(1, class_id="")
        meters.record("latency", "N", 3)
        meters.node("N").served(True)
    assert meters.invalid == 7
    assert len([r for r in caplog.records if "dropped a measurement" in r.message]) == 6
    meters.node("N").arrivals(1)
    assert telemetry.force_flush(10_000)
    bundle = bundles.read_bundle(sink.written[0])
    assert [(s.metric, s.values) for s in bundle.series] == [("Arrivals", (1.0,))]
    telemetry.shutdown(10_000)


def test_hostile_node_ids_stay_inside_the_capture_directory(tmp_path: Path) -> None:
    """A node id full of path syntax becomes a safe file name; nothing is written outside."""
    clock = ManualClock(START_NS)
    sink = CaptureSink(tmp_path / "data", grid=GRID, clock=clock, key_prefix="../../escape")
    telemetry = pipeline(sink)
    FlowMeters(telemetry).node("../../../etc/passwd\\x").arrivals(3)
    assert telemetry.shutdown(10_000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    directory = sink.written[0]
    assert directory.parent == tmp_path / "data" / "captures" and directory.name.startswith("escape-")
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["files"][0]["path"] == ".._.._.._etc_passwd_x_arrivals.csv"
    assert manifest["files"][0]["nodeId"] == "../../../etc/passwd\\x"


def test_sink_reads_its_grid_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """OTEL_TELE_CAPTURE_* configure the named sink; bad values are logged and defaulted."""
    monkeypatch.setenv("OTEL_TELE_CAPTURE_BIN_SIZE", "1")
    monkeypatch.setenv("OTEL_TELE_CAPTURE_BIN_UNIT", "hours")
    monkeypatch.setenv("OTEL_TELE_CAPTURE_BINS", "24")
    sink = CaptureSink.from_settings(resolve({"data_dir": str(tmp_path), "service_name": "svc"}))
    assert (sink.grid, sink.key_prefix, sink.export_interval_millis) == (Grid(24, 1, "hours"), "svc", 1_000)
    assert sink.describe()["reachable"] is True
    monkeypatch.setenv("OTEL_TELE_CAPTURE_BIN_UNIT", "fortnights")
    with caplog.at_level(logging.ERROR, logger="otel_tele"):
        assert CaptureSink.from_settings(resolve({"data_dir": str(tmp_path)})).grid == Grid(24, 1, "minutes")
    assert "OTEL_TELE_CAPTURE" in caplog.text


def test_finish_window_completes_it_and_late_data_is_counted(tmp_path: Path) -> None:
    """finish_window() writes a complete bundle; later data for that window is counted as failed."""
    clock = ManualClock(START_NS)
    sink = CaptureSink(tmp_path, grid=GRID, clock=clock)
    telemetry = pipeline(sink)
    node = FlowMeters(telemetry).node("N")
    for i in range(GRID.bins):
        clock.at_bin(i)
        node.arrivals(1)
        assert telemetry.force_flush(10_000)
    directory = sink.finish_window()
    assert directory is not None
    assert bundles.read_bundle(directory).warnings == []
    node.arrivals(5)  # the clock is still inside the finished window
    assert telemetry.force_flush(10_000)
    (stats,) = [s for s in telemetry.sink_stats() if s.sink == "capture"]
    assert stats.failed == 1 and stats.reconciles
    assert bundles.read_bundle(directory).get("N", "Arrivals").values == (1.0,) * GRID.bins
    telemetry.shutdown(10_000)


def test_bin_boundaries_checkpoint_the_open_window_without_a_flush(tmp_path: Path) -> None:
    """Periodic collections that cross a bin boundary persist the bins so far (rate limit permitting)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    clock = ManualClock(START_NS)
    sink = CaptureSink(tmp_path, grid=GRID, clock=clock)
    sink.checkpoint_interval_s = 0.0
    reader = PeriodicExportingMetricReader(CaptureMetricExporter(sink), export_interval_millis=10**9)
    provider = MeterProvider(metric_readers=[reader])
    node = FlowMeters(provider.get_meter("t")).node("N")
    node.arrivals(2)
    reader.collect()  # bin 0: nothing on disk yet
    assert sink.written == []
    clock.at_bin(1)
    node.arrivals(3)
    reader.collect()  # crossed into bin 1: bins 0..1 are written
    assert bundles.read_bundle(sink.written[0]).get("N", "Arrivals").values == (2.0, 3.0)
    sink.checkpoint_interval_s = 3600.0
    clock.at_bin(2)
    reader.collect()  # within the rate limit: no rewrite
    assert bundles.read_bundle(sink.written[0]).grid == Grid(2, 5, "minutes")
    provider.shutdown()
