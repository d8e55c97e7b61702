"""A small queueing network for the demo, instrumented with the flow meters (specs 001, 003).

Orders arrive at a ``Gateway`` (Poisson, two classes, a demand ramp), queue at ``OrderService``
(finite capacity per bin, 4 % failures) and failures open tickets at a slower ``SupportQueue``. One
hour is simulated as 12 bins of 5 minutes, paced over the demo's wall-clock seconds. Every arrival,
service, error, queue depth and capacity goes through :mod:`otel_tele.instrumentation.flow` — on the
demo's pipeline (Prometheus/OTLP see ``flow.*``) and on a capture pipeline whose sink bins the stream
on a simulated clock and writes a FlowTime capture bundle under ``<data_dir>/captures/``.
"""

from __future__ import annotations

import math
import pathlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import otel_tele
from otel_tele import bundles
from otel_tele._pipeline import Pipeline
from otel_tele._settings import resolve
from otel_tele.exporters.capture import CaptureMetricExporter, CaptureSink, Grid
from otel_tele.instrumentation.flow import FlowMeters, NodeMeters

GRID = Grid(12, 5, "minutes")
CLASSES = ("Retail", "Wholesale")


@dataclass
class Station:
    """A FIFO server with a per-bin capacity."""

    name: str
    capacity: int
    queue: int = 0
    totals: dict[str, float] = field(
        default_factory=lambda: {"arrivals": 0, "served": 0, "errors": 0, "peak": 0}
    )


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means of a demo.
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class _Fanout:
    """The same measurement on several meters (the demo pipeline and the capture pipeline)."""

    def __init__(self, *targets: NodeMeters) -> None:
        self.targets = targets

    def __getattr__(self, name: str) -> Callable[..., None]:
        def call(*args: object, **kwargs: object) -> None:
            for target in self.targets:
                getattr(target, name)(*args, **kwargs)

        return call


def _step(rng: random.Random, t: int, stations: dict[str, Station], nodes: dict[str, _Fanout]) -> None:
    """One bin: arrivals by class at the gateway, service at both stations, failures to support."""
    orders, support = stations["OrderService"], stations["SupportQueue"]
    arrived = 0
    for class_id, share in zip(CLASSES, (0.7, 0.3), strict=True):
        count = _poisson(rng, share * (30 + 4 * t))  # demand ramps up through the hour
        nodes["Gateway"].external_demand(count, class_id=class_id)
        nodes["Gateway"].arrivals(count, class_id=class_id)
        nodes["Gateway"].served(count, class_id=class_id)
        arrived += count
    nodes["OrderService"].arrivals(arrived)
    orders.totals["arrivals"] += arrived
    orders.queue += arrived
    served = min(orders.queue, orders.capacity)
    orders.queue -= served
    failed = sum(1 for _ in range(served) if rng.random() < 0.04)
    nodes["OrderService"].served(served - failed)
    nodes["OrderService"].errors(failed)
    orders.totals["served"] += served - failed
    orders.totals["errors"] += failed
    support.queue += failed
    nodes["SupportQueue"].arrivals(failed)
    support.totals["arrivals"] += failed
    handled = min(support.queue, support.capacity)
    support.queue -= handled
    nodes["SupportQueue"].served(handled)
    support.totals["served"] += handled
    for station in (orders, support):
        nodes[station.name].queue_depth(station.queue)
        nodes[station.name].capacity(station.capacity)
        station.totals["peak"] = max(station.totals["peak"], station.queue)


def run(telemetry: otel_tele.Pipeline, data_dir: pathlib.Path, *, seconds: float, seed: int = 7) -> list[str]:
    """Simulate one hour of the network over about ``seconds``; return summary lines with the bundle."""
    start_ns = time.time_ns() // 3_600_000_000_000 * 3_600_000_000_000
    clock = [start_ns]
    sink = CaptureSink(
        data_dir, grid=GRID, clock=lambda: clock[0], key_prefix="queueing-demo", classes=CLASSES
    )
    capture = Pipeline(
        resolve(
            {
                "sinks": "none",
                "traces_exporter": "none",
                "metrics_exporter": "none",
                "logs_exporter": "none",
                "service_name": "queueing-demo",
            }
        ),
        local=True,
        extra_exporters={"metrics": [CaptureMetricExporter(sink)]},
    )
    live, captured = FlowMeters(telemetry), FlowMeters(capture)
    names = ("Gateway", "OrderService", "SupportQueue")
    nodes = {name: _Fanout(live.node(name), captured.node(name)) for name in names}
    stations = {"OrderService": Station("OrderService", 52), "SupportQueue": Station("SupportQueue", 2)}
    rng = random.Random(seed)
    try:
        for t in range(GRID.bins):
            clock[0] = start_ns + t * GRID.bin_ns + 1
            _step(rng, t, stations, nodes)
            capture.force_flush(10_000)  # the collection for bin t
            time.sleep(max(0.0, seconds) / GRID.bins)  # pace the simulated hour over the demo
        sink.finish_window()  # the simulated hour is over: its bundle is complete
    finally:
        capture.shutdown(10_000)
    return _summary(sink, stations)


def _summary(sink: CaptureSink, stations: dict[str, Station]) -> list[str]:
    directory = sink.written[0]
    bundle = bundles.read_bundle(directory)  # validates schema, hashes, rows
    lines = [
        f"flow: queueing simulation, {GRID.bins} bins x {GRID.bin_size} {GRID.bin_unit}, "
        f"capture bundle {directory}",
        f"  manifest valid, {len(bundle.series)} CSVs sha256-verified, "
        f"classes {bundle.manifest.get('classes')}",
    ]
    for name, station in stations.items():
        t = station.totals
        lines.append(
            f"  {name:<13} arrivals {t['arrivals']:>4.0f}  served {t['served']:>4.0f}  "
            f"errors {t['errors']:>3.0f}  peak queue {t['peak']:>3.0f}"
        )
    queue = bundle.get("OrderService", "QueueDepth").values
    lines.append("  OrderService queue by bin: " + " ".join(f"{v:.0f}" for v in queue if v is not None))
    lines.append("  files: " + ", ".join(s.path for s in bundle.series))
    return lines
