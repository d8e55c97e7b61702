"""Binning a live flow-metric stream onto a FlowTime grid, one window of ``bins`` bins at a time.

The rule that makes bins exact and testable: **an export belongs to the bin its collection time falls
in** (the sink's clock, read when the metrics arrive). Counters arrive as per-collection deltas and are
summed per bin; gauges are sampled, the bin keeping the last value seen (carried forward into later
bins that saw an export but no new sample, since a queue keeps its depth until it changes). A bin in
which no export arrived at all is a gap (an empty cell). Collect at bin boundaries (or often: the sink
asks for ≤ 1 s export intervals) and the bins are exact; a test drives an injectable clock and calls
``force_flush()`` once per bin.

A node's ``DEFAULT`` series is its total: unclassed records plus every class.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from otel_tele.semconv import flow

from .schema import Grid

Key = tuple[str, str, str]  # (node id, semantics field, class id)


@dataclass(frozen=True)
class Point:
    """One flow measurement from an export: a counter delta or a gauge sample."""

    node_id: str
    metric: flow.FlowMetric
    class_id: str
    value: float


@dataclass
class Window:
    """The bins of one capture window while it fills."""

    start_ns: int
    bins: int
    observed: bytearray
    sums: dict[Key, list[float]] = field(default_factory=dict)
    samples: dict[Key, list[float | None]] = field(default_factory=dict)
    last_bin: int = -1

    @classmethod
    def empty(cls, start_ns: int, bins: int) -> Window:
        return cls(start_ns, bins, bytearray(bins))


@dataclass
class WindowSeries:
    """A finished (or checkpointed) window: bins elapsed so far and each series' values."""

    start_ns: int
    bins: int  # bins covered (== the window's bins once complete)
    complete: bool
    series: dict[Key, list[float | None]]


def iso_utc(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Binner:
    """Accumulate points into windows of ``grid.bins`` bins aligned to ``origin_ns`` (epoch by default)."""

    def __init__(self, grid: Grid, *, origin_ns: int = 0) -> None:
        self.grid = grid
        self.bin_ns = grid.bin_ns
        self.window_ns = self.bin_ns * grid.bins
        self.origin_ns = origin_ns
        self.window: Window | None = None
        self.closed_until_ns = 0  # windows ending at or before this were written for good
        self.late = 0  # points that arrived for an already finished window (not kept)
        self._gauge_carry: dict[Key, float] = {}  # last gauge value, across windows

    def add(self, now_ns: int, points: Iterable[Point]) -> list[WindowSeries]:
        """Record one export collected at ``now_ns``; returns the windows it completed."""
        done: list[WindowSeries] = []
        if now_ns < self.closed_until_ns:
            points = list(points)
            self.late += len(points)
            return done
        window = self.window
        if window is not None and now_ns >= window.start_ns + self.window_ns:
            done.append(self._finish(window, complete=True))
            window = None
        if window is None:
            start = self.origin_ns + (now_ns - self.origin_ns) // self.window_ns * self.window_ns
            window = self.window = Window.empty(start, self.grid.bins)
        # A clock that steps back lands in the latest bin seen: bins never reopen.
        index = max((now_ns - window.start_ns) // self.bin_ns, window.last_bin, 0)
        window.observed[index] = 1
        window.last_bin = index
        for point in points:
            self._record(window, index, point)
        return done

    def _record(self, window: Window, index: int, point: Point) -> None:
        keys = [(point.node_id, point.metric.field, point.class_id)]
        if point.metric.kind == "counter":
            if point.class_id != flow.DEFAULT_CLASS:
                keys.append((point.node_id, point.metric.field, flow.DEFAULT_CLASS))
            for key in keys:
                sums = window.sums.get(key)
                if sums is None:
                    sums = window.sums[key] = [0.0] * window.bins
                sums[index] += point.value
        else:
            samples = window.samples.get(keys[0])
            if samples is None:
                samples = window.samples[keys[0]] = [None] * window.bins
            samples[index] = point.value

    def checkpoint(self) -> WindowSeries | None:
        """The current window up to its latest observed bin (for flushes and shutdown)."""
        window = self.window
        return None if window is None or window.last_bin < 0 else self._series(window, complete=False)

    def finish(self) -> WindowSeries | None:
        """End the current window now (complete if its last bin has been reached)."""
        window = self.window
        if window is None or window.last_bin < 0:
            return None
        return self._finish(window, complete=window.last_bin == window.bins - 1)

    def _finish(self, window: Window, *, complete: bool) -> WindowSeries:
        series = self._series(window, complete=complete)
        for key, values in window.samples.items():
            carried = self._carry(key, values, window.observed)
            if carried[-1] is not None:
                self._gauge_carry[key] = carried[-1]
        self.window = None
        self.closed_until_ns = max(self.closed_until_ns, window.start_ns + self.window_ns)
        return series

    def _series(self, window: Window, *, complete: bool) -> WindowSeries:
        bins = window.bins if complete else window.last_bin + 1
        observed = window.observed[:bins]
        out: dict[Key, list[float | None]] = {}
        for key, sums in window.sums.items():
            out[key] = [value if observed[i] else None for i, value in enumerate(sums[:bins])]
        classed: dict[tuple[str, str], list[list[float | None]]] = {}
        for key, samples in window.samples.items():
            carried = self._carry(key, samples[:bins], observed)
            out[key] = carried
            if key[2] != flow.DEFAULT_CLASS:
                classed.setdefault(key[:2], []).append(carried)
        for (node, field_name), parts in classed.items():
            own = out.get((node, field_name, flow.DEFAULT_CLASS))
            out[(node, field_name, flow.DEFAULT_CLASS)] = _sum_parts([*parts, *([own] if own else [])])
        return WindowSeries(window.start_ns, bins, complete, out)

    def _carry(self, key: Key, samples: list[float | None], observed: bytearray) -> list[float | None]:
        last = self._gauge_carry.get(key)
        carried: list[float | None] = []
        for i, value in enumerate(samples):
            if value is not None:
                last = value
            carried.append(last if observed[i] else None)
        return carried


def _sum_parts(parts: list[list[float | None]]) -> list[float | None]:
    total: list[float | None] = []
    for column in zip(*parts, strict=True):
        present = [v for v in column if v is not None]
        total.append(sum(present) if present else None)
    return total
