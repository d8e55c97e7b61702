"""Capture cost (spec 001 NFR1): 288 bins x 50 nodes, 2,016 x 500 and 20,160 x 500 (growth).

Each capture runs in a fresh child process that reports wall time and peak RSS (ru_maxrss, includes
the interpreter), interleaved round by round with the obvious alternative, a naive copy (csv module
read/write + sha256 + json.dump, no bindings, gap handling, validation or atomic writes), also in a
fresh child; min/median/max of ``--rounds`` rounds and the per-round time ratio. A further child
reports the tracemalloc peak of the capture alone (the two smaller cases). The live row drives the
flow meters → capture sink for a 288-bin window (one collection per bin, a checkpoint rewrite at
every bin boundary).

Usage: ``python -m bench.bench_flow_capture [--bins 288 --nodes 50 --scale-bins 2016 --scale-nodes 500
--large-bins 20160 --rounds 3]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._harness import Report

CHILD = r"""
import json, resource, sys, time, tracemalloc
from pathlib import Path
mode, run_dir, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
trace = sys.argv[4] == "trace"
if mode == "capture":
    from otel_tele.exporters.capture import capture_run  # imported before the clock starts: like with like
if trace:
    tracemalloc.start()
t0 = time.perf_counter()
if mode == "capture":
    result = capture_run(run_dir, out)
    files = len(result.files)
else:
    import csv, hashlib, io
    index = json.loads((run_dir / "series" / "index.json").read_text(encoding="utf-8-sig"))
    out.mkdir(parents=True)
    manifest = []
    for entry in index["series"]:
        with open(run_dir / entry["path"], encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))[1:]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["bin_index", "classId", "value"])
        writer.writerows([r[0], "DEFAULT", repr(float(r[1]))] for r in rows)
        data = buffer.getvalue().encode()
        (out / (entry["id"].split("@")[0] + ".csv")).write_bytes(data)
        manifest.append({"path": entry["path"], "hash": hashlib.sha256(data).hexdigest()})
    (out / "manifest.json").write_text(json.dumps({"files": manifest}, indent=2))
    files = len(manifest)
seconds = time.perf_counter() - t0
peak = tracemalloc.get_traced_memory()[1] if trace else None
# VmHWM: this process's own peak (ru_maxrss would include the parent's RSS at fork, which the
# exec carries over: the parent holds the generated run in memory).
try:
    status = open("/proc/self/status").read()
    rss = int(status.split("VmHWM:")[1].split()[0]) / 1024
except (OSError, IndexError, ValueError):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "files": files, "maxrss_mb": rss,
                  "tracemalloc_peak_mb": peak / 2**20 if peak is not None else None}))
"""


def build_run(root: Path, bins: int, nodes: int) -> Path:
    """A C#-layout run: per node arrivals, served, errors and queue depth series."""
    from otel_tele.exporters.capture._runwriter import write_run_directory
    from otel_tele.exporters.capture.schema import Grid

    model = [
        f"grid: {{bins: {bins}, binSize: 5, binUnit: minutes, start: '2025-01-01T00:00:00Z'}}",
        "topology:",
        "  nodes:",
    ]
    series: dict[str, list[float | None]] = {}
    for n in range(nodes):
        refs = {"arrivals": f"in{n}", "served": f"out{n}", "errors": f"err{n}", "queueDepth": f"q{n}"}
        model.append(f"    - id: Node{n}\n      semantics: {json.dumps(refs)}")
        for k, ref in enumerate(refs.values()):
            series[f"{ref}@{ref.upper()}@DEFAULT"] = [float((i * (n + 3) + k) % 97) / 7 for i in range(bins)]
    run_dir: Path = write_run_directory(
        root, "run_bench", model_yaml="\n".join(model) + "\n", series=series, grid=Grid(bins, 5, "minutes")
    )
    return run_dir


def child(mode: str, run_dir: Path, out: Path, trace: bool) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(run_dir), str(out), "trace" if trace else "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def bench_run_capture(report: Report, bins: int, nodes: int, tmp: Path, rounds: int, trace: bool) -> None:
    import shutil
    import statistics

    run_dir = build_run(tmp / f"runs_{bins}_{nodes}", bins, nodes)
    ours: list[dict[str, float]] = []
    naive: list[dict[str, float]] = []
    for r in range(rounds):
        for mode, figures in (("capture", ours), ("naive", naive)):
            out = tmp / f"{mode}_{bins}_{nodes}_{r}"
            figures.append(child(mode, run_dir, out, trace=False))
            shutil.rmtree(out)
    traced = child("capture", run_dir, tmp / f"trace_{bins}_{nodes}", trace=True) if trace else None
    seconds = sorted(f["seconds"] for f in ours)
    rss = sorted(f["maxrss_mb"] for f in ours)
    ratios = sorted(o["seconds"] / n["seconds"] for o, n in zip(ours, naive, strict=True))
    report.add(
        case=f"run capture {bins} bins x {nodes} nodes",
        files=int(ours[0]["files"]),
        points=int(ours[0]["files"]) * bins,
        seconds_min_median_max=[
            round(seconds[0], 2),
            round(statistics.median(seconds), 2),
            round(seconds[-1], 2),
        ],
        share_of_run_duration=statistics.median(seconds) / (bins * 5 * 60),
        peak_rss_mb_max=rss[-1],
        naive_peak_rss_mb_max=max(f["maxrss_mb"] for f in naive),
        tracemalloc_peak_mb=traced["tracemalloc_peak_mb"] if traced else None,
        naive_seconds_median=statistics.median(f["seconds"] for f in naive),
        vs_naive_median=statistics.median(ratios),
        vs_naive_rounds=[round(x, 2) for x in ratios],
    )
    shutil.rmtree(run_dir.parent)


def bench_live(report: Report, bins: int, nodes: int, tmp: Path) -> None:
    """Flow meters → periodic-reader collections (one per bin, as the SDK's reader does) → the sink."""
    import tracemalloc

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from otel_tele.exporters.capture import CaptureMetricExporter, CaptureSink, Grid
    from otel_tele.instrumentation.flow import FlowMeters

    grid = Grid(bins, 5, "minutes")
    start = 1_735_689_600 * 10**9
    clock = [start]
    sink = CaptureSink(tmp / "live", grid=grid, clock=lambda: clock[0])
    reader = PeriodicExportingMetricReader(CaptureMetricExporter(sink), export_interval_millis=10**9)
    provider = MeterProvider(metric_readers=[reader])
    handles = [FlowMeters(provider.get_meter("bench")).node(f"Node{n}") for n in range(nodes)]
    tracemalloc.start()
    t0 = time.perf_counter()
    for i in range(bins):
        clock[0] = start + i * grid.bin_ns + 1
        for n, node in enumerate(handles):
            node.arrivals(i % 9 + n % 3)
            node.served(i % 7)
            node.errors(i % 2)
            node.queue_depth(i % 11)
        reader.collect()
    sink.finish_window()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    provider.shutdown()
    report.add(
        case=f"live sink {bins} bins x {nodes} nodes",
        files=nodes * 4,
        points=nodes * 4 * bins,
        seconds=seconds,
        share_of_run_duration=seconds / (bins * 300),
        tracemalloc_peak_mb=peak / 2**20,
        per_bin_ms=seconds / bins * 1000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bins", type=int, default=288)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--scale-bins", type=int, default=2016)
    parser.add_argument("--scale-nodes", type=int, default=500)
    parser.add_argument("--large-bins", type=int, default=20160)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    report = Report(
        "flow_capture", "FlowTime capture bundles: run-directory capture and live sink (spec 001 NFR1)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        bench_run_capture(report, args.bins, args.nodes, Path(tmp), args.rounds, trace=True)
        bench_live(report, args.bins, args.nodes, Path(tmp))
        bench_run_capture(report, args.scale_bins, args.scale_nodes, Path(tmp), args.rounds, trace=True)
        bench_run_capture(report, args.large_bins, args.scale_nodes, Path(tmp), args.rounds, trace=False)
    report.note(
        "targets: runtime well under the run's duration (bins x 5 min), at most the naive copy's, and peak "
        "RSS <= 100 MB at any size (series stream one at a time)"
    )
    report.note("peak_rss_mb is the whole child process's VmHWM (interpreter + imports included)")
    report.finish()


if __name__ == "__main__":
    main()
