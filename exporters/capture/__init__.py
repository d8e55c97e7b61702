"""The ``capture`` sink: bins live flow metrics into FlowTime capture bundles (specs 001, 003).

It consumes the metrics of :mod:`otel_tele.instrumentation.flow` (``flow.arrivals``, ``flow.served``,
``flow.errors``, ``flow.external_demand``, ``flow.queue.depth``, ``flow.capacity`` with ``flow.node`` and
optional ``flow.class``), bins them on a time grid (see ``_live`` for the exact rule) and writes
one schema v2 bundle per window under ``<data_dir>/captures/<captureKey>/`` through the same writer as
run captures (:func:`capture_run`: a FlowTime run directory into a bundle), so FlowTime can replay a
real service's telemetry. The layout (file names, CSV columns, manifest fields, warning codes, the JSON
schema) is declared in :mod:`otel_tele.exporters.capture.schema`; :mod:`otel_tele.bundles` reads
bundles back.

Usage::

    OTEL_TELE_SINKS=capture OTEL_TELE_CAPTURE_BIN_SIZE=5 OTEL_TELE_CAPTURE_BIN_UNIT=minutes \\
    OTEL_TELE_CAPTURE_BINS=288 python app.py

or, in process::

    sink = CaptureSink(data_dir, grid=Grid(bins=12, bin_size=5, bin_unit="minutes"))
    telemetry = Pipeline(resolve({"sinks": "none"}), local=True,
                          extra_exporters={"metrics": [CaptureMetricExporter(sink)]})

Durability: the open window is rewritten at bin boundaries (at most every ``checkpoint_interval_s`` of
wall time), on ``force_flush()`` and at shutdown (as a partial bundle with a ``partial_window``
warning), and for the last time when it completes.

A run directory, from the CLI (``otel-tele capture --run-dir DIR``) or in process::

    from otel_tele.exporters.capture import capture_run, gap_options
    capture_run("data/runs/run_1", "out/run_1", options=gap_options(gaps="warn"), dry_run=True)
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricsData

from otel_tele._internal import encodable
from otel_tele._settings import Settings
from otel_tele._sink import Sink, SinkMetricExporter, Written
from otel_tele.domains.flow import CAPTURE_BIN_SIZE, CAPTURE_BIN_UNIT, CAPTURE_BINS, CAPTURE_KEY
from otel_tele.semconv import flow

from . import schema
from ._bundle import BundleSource, PlannedFile, Provenance, SeriesInput, write_bundle
from ._gaps import GapInjection, GapMode, GapOptions, load_injections
from ._live import Binner, Point, WindowSeries, iso_utc

if TYPE_CHECKING:
    from ._run import CaptureResult, capture_run, default_output, gap_options
    from ._rundir import CaptureError, RunNotFound
from .schema import MANIFEST, CaptureWarning, Grid, class_alias, series_file_name

#: The run-directory capture loads on first use of one of its names, and PyYAML with it (the model
#: is YAML): the live sink, which ``setup()`` attaches, needs neither.
_LAZY = {
    "CaptureError": "._rundir",
    "CaptureResult": "._run",
    "RunNotFound": "._rundir",
    "capture_run": "._run",
    "default_output": "._run",
    "gap_options": "._run",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CaptureError",
    "CaptureMetricExporter",
    "CaptureResult",
    "CaptureSink",
    "CaptureWarning",
    "GapInjection",
    "GapMode",
    "GapOptions",
    "Grid",
    "PlannedFile",
    "RunNotFound",
    "capture_run",
    "default_output",
    "gap_options",
    "load_injections",
]

_log = logging.getLogger("otel_tele")
_KEY = re.compile(r"[^A-Za-z0-9_.\-]")


#: Environment knobs of the sink built by name (``OTEL_TELE_SINKS=capture``): (variable, default).
class CaptureSink(Sink):
    """Bins flow metrics per window and writes FlowTime capture bundles.

    ``clock`` (epoch ns) decides which bin an export belongs to; inject one to drive bins
    deterministically in tests. ``key_prefix`` names the bundles (``<prefix>-<window start>``; default
    the service name). ``classes`` declares the expected classes (for ``classCoverage``).
    """

    name = "capture"
    signals = frozenset({"metrics"})

    def __init__(
        self,
        data_dir: str | Path,
        *,
        grid: Grid | None = None,
        clock: Callable[[], int] = time.time_ns,
        key_prefix: str = "",
        classes: tuple[str, ...] = (),
        origin_ns: int = 0,
        options: GapOptions | None = None,
    ) -> None:
        super().__init__()
        self.root = Path(data_dir) / schema.CAPTURES_DIR
        self.grid = grid or Grid(288, 5, "minutes")
        self.clock = clock
        self.key_prefix = key_prefix
        self.classes = classes
        self.options = options or GapOptions()
        self.binner = Binner(self.grid, origin_ns=origin_ns)
        self.written: list[Path] = []  # bundle directories, in the order windows were first written
        self._dirs: dict[int, Path] = {}
        self._cumulative: dict[tuple[str, Any], tuple[int, float]] = {}
        self._service = ""
        #: Flow series and measurements past the meters' cardinality limit (latest reported), and
        #: overflow data points seen (the SDK's, or a sender's): a bundle warning names them.
        self.overflow_series = 0
        self.overflow_points = 0
        self._lock = threading.RLock()
        self._process_tag = ""  # a forked child names its bundles apart from its parent's
        self._dirty = False
        self._pending: dict[int, int] = {}  # window start → points in it no bundle holds yet
        self.checkpoint_interval_s = 10.0  # wall time between bin-boundary rewrites (bounds their cost)
        self._last_checkpoint = -math.inf
        # Collect often enough that a boundary shifts at most a second's worth of counts.
        self.export_interval_millis = max(100, min(1_000, self.grid.bin_ns // 10_000_000))

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        grid = Grid(
            settings.get(CAPTURE_BINS), settings.get(CAPTURE_BIN_SIZE), settings.get(CAPTURE_BIN_UNIT)
        )
        key_prefix = settings.get(CAPTURE_KEY) or settings.service_name or ""
        return cls(settings.data_dir, grid=grid, key_prefix=key_prefix)

    # -- metrics in -------------------------------------------------------------------------------
    def write_metrics(self, data: MetricsData) -> Written:
        now = self.clock()
        points, rejected, not_routed = self._points(data)
        with self._lock:
            window = self.binner.window
            position = (window.start_ns, window.last_bin) if window is not None else None
            late = self.binner.late
            booked = sum(self._pending.values())
            completed = self.binner.add(now, points)
            newly_late = self.binner.late - late
            rejected += newly_late  # data for a window already finished: counted, not kept
            if self.binner.window is not None and len(points) > newly_late:
                start = self.binner.window.start_ns
                self._pending[start] = self._pending.get(start, 0) + len(points) - newly_late
            self._dirty = True
            for finished in completed:
                self._write(finished)
            if (
                self._crossed_bin(position)
                and time.monotonic() - self._last_checkpoint >= self.checkpoint_interval_s
            ):
                self._checkpoint()  # persist the bins so far, rate-limited for fast (simulated) clocks
            # Points are pending until a bundle holds them; those booked earlier settle first.
            durable = booked + len(points) - newly_late - sum(self._pending.values())
            earlier = min(booked, durable)
            self.stats["metrics"].settled(exported=earlier)
            pending = len(points) - newly_late - (durable - earlier)
        return Written(failed=rejected, pending=pending, not_routed=not_routed)

    def _crossed_bin(self, before: tuple[int, int] | None) -> bool:
        """Did the last export move the open window into a later bin?"""
        window = self.binner.window
        return (
            before is not None
            and window is not None
            and before[0] == window.start_ns
            and window.last_bin > before[1]
        )

    def _points(self, data: MetricsData) -> tuple[list[Point], int, int]:
        """The flow points of ``data``, how many were unusable, how many are not flow metrics."""
        points: list[Point] = []
        rejected = not_routed = 0
        for resource_metrics in data.resource_metrics:
            service = resource_metrics.resource.attributes.get("service.name")
            if isinstance(service, str) and not self._service:
                self._service = service
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    meter = flow.BY_INSTRUMENT.get(metric.name)
                    if meter is None:
                        self._note_overflow_metric(metric)
                        not_routed += len(metric.data.data_points)  # not a flow metric: not ours
                        continue
                    cumulative = (
                        getattr(metric.data, "aggregation_temporality", None)
                        == AggregationTemporality.CUMULATIVE
                        and meter.kind == "counter"
                    )
                    for dp in metric.data.data_points:
                        if (dp.attributes or {}).get(flow.OVERFLOW_ATTRIBUTE):
                            continue  # series past the limit: counted by the meters, warned of
                        point = self._point(meter, dp, cumulative)
                        if point is None:
                            rejected += 1
                        else:
                            points.append(point)
        return points, rejected, not_routed

    def _note_overflow_metric(self, metric: Any) -> None:
        if metric.name not in (flow.OVERFLOW_SERIES, flow.OVERFLOW_POINTS):
            return
        total = sum(int(getattr(dp, "value", 0) or 0) for dp in metric.data.data_points)
        with self._lock:
            if metric.name == flow.OVERFLOW_SERIES:
                self.overflow_series = max(self.overflow_series, total)
            else:
                self.overflow_points = max(self.overflow_points, total)

    def _point(self, meter: flow.FlowMetric, dp: Any, cumulative: bool) -> Point | None:
        attrs = dp.attributes or {}
        node = attrs.get(flow.NODE)
        class_id = attrs.get(flow.CLASS, flow.DEFAULT_CLASS)
        value = getattr(dp, "value", None)
        if (
            not isinstance(node, str)
            or not node
            or not isinstance(class_id, str)
            or not class_id
            or not isinstance(value, int | float)
        ):
            return None
        node, class_id = encodable(node), encodable(class_id)  # bundle files are UTF-8
        if cumulative:  # a cumulative sum: keep our own delta per series and start time
            key = (meter.instrument, tuple(sorted(attrs.items())))
            start, previous = self._cumulative.get(key, (dp.start_time_unix_nano, 0.0))
            self._cumulative[key] = (dp.start_time_unix_nano, float(value))
            value = value - previous if start == dp.start_time_unix_nano else value
        return Point(node, meter, class_id, float(value))

    # -- bundles out ------------------------------------------------------------------------------
    def flush(self, timeout_millis: float) -> bool:
        """Persist the open window as it stands (a partial bundle) so everything recorded is on disk."""
        with self._lock:
            if self._dirty:
                self.stats["metrics"].settled(exported=self._checkpoint())
        return True

    def finish_window(self) -> Path | None:
        """Write the open window now and end it (complete once its last bin was reached, else partial);
        for simulations and jobs that stop on a window boundary. Returns the bundle directory."""
        with self._lock:
            window = self.binner.finish()
            if window is None:
                return None
            self.stats["metrics"].settled(exported=self._write(window))
            self._dirty = False
            return self._dirs.get(window.start_ns)

    def close(self) -> None:
        self.flush(10_000)

    def after_fork(self) -> None:
        # The open window is the parent's to write; the child bins its own records from zero into
        # bundles of its own (``<key>-<window start>-pid<child pid>``): processes never share one.
        self._lock = threading.RLock()
        self._process_tag = f"-pid{os.getpid()}"
        self.binner = Binner(self.grid, origin_ns=self.binner.origin_ns)
        self.written = []
        self._dirs = {}
        self._cumulative = {}
        self._pending = {}
        self.overflow_series = self.overflow_points = 0
        self._dirty = False
        self._last_checkpoint = -math.inf

    def _checkpoint(self) -> int:
        self._last_checkpoint = time.monotonic()
        window = self.binner.checkpoint()
        durable = self._write(window) if window is not None else 0
        self._dirty = False
        return durable

    def _write(self, window: WindowSeries) -> int:
        """Write ``window``'s bundle; returns how many pending points it made durable."""
        if not window.series:
            return 0  # no flow metric reached this window (an idle service): no empty bundle
        directory = self._directory(window.start_ns)
        write_bundle(self.bundle_source(window), directory, options=self.options)
        if directory not in self.written:
            self.written.append(directory)
        return self._pending.pop(window.start_ns, 0)

    def _directory(self, start_ns: int) -> Path:
        directory = self._dirs.get(start_ns)
        if directory is None:
            prefix = _KEY.sub("_", self.key_prefix or self._service or "live").strip("._-")[:80] or "live"
            stamp = iso_utc(start_ns).replace("-", "").replace(":", "")
            base = self.root / f"{prefix}-{stamp}{self._process_tag}"
            directory, n = base, 2
            while (directory / MANIFEST).exists():  # another process or an earlier run had this window
                directory = base.with_name(f"{base.name}-{n}")
                n += 1
            self._dirs[start_ns] = directory
        return directory

    def bundle_source(self, window: WindowSeries) -> BundleSource:
        """The bundle of one window: series sorted by node, metric order, DEFAULT first, then class."""
        order = {m.field: i for i, m in enumerate(flow.FLOW_METRICS)}
        keys = sorted(window.series, key=lambda k: (k[0], order[k[1]], k[2] != flow.DEFAULT_CLASS, k[2]))
        series = []
        for node, field_name, class_id in keys:
            metric = flow.BY_FIELD[field_name]
            name = class_alias(series_file_name(node, metric), class_id)
            series.append(
                SeriesInput(
                    node,
                    metric,
                    class_id,
                    window.series[(node, field_name, class_id)],
                    name,
                    window.bins,
                    "live",
                )
            )
        grid = Grid(window.bins, self.grid.bin_size, self.grid.bin_unit)
        start = iso_utc(window.start_ns)
        run_id = self._directory(window.start_ns).name
        identity = json.dumps(
            {"service": self._service, "grid": self.grid.as_json(), "windowStart": start}, sort_keys=True
        )
        provenance = Provenance(run_id, "sha256:" + hashlib.sha256(identity.encode()).hexdigest())
        warnings = (
            []
            if window.complete
            else [
                CaptureWarning(
                    schema.PARTIAL_WINDOW, f"Window captured after {window.bins} of {self.grid.bins} bins."
                )
            ]
        )
        if self.overflow_series or self.overflow_points:
            warnings.append(
                CaptureWarning(
                    schema.CARDINALITY_OVERFLOW,
                    f"{self.overflow_series} node/class series past the flow cardinality limit were not "
                    f"captured ({self.overflow_points} measurements lost so far); raise "
                    "OTEL_TELE_FLOW_CARDINALITY_LIMIT",
                )
            )
        return BundleSource(
            grid,
            series,
            provenance,
            window_start=start,
            declared_classes=list(self.classes),
            warnings=warnings,
        )

    def location(self) -> str:
        return str(self.root)

    def describe(self) -> dict[str, Any]:
        return {
            "location": self.location(),
            "folder": str(self.root),
            "reachable": _writable(self.root),
            "grid": f"{self.grid.bins} x {self.grid.bin_size} {self.grid.bin_unit}",
        }

    def bundles(self) -> Iterator[Path]:
        """Bundle directories this sink has written."""
        return iter(list(self.written))


def _writable(root: Path) -> bool:
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return os.access(probe, os.W_OK)


class CaptureMetricExporter(SinkMetricExporter):
    """OTel ``MetricExporter`` for the capture sink (entry point ``otel_tele_capture``)."""

    sink_class = CaptureSink
