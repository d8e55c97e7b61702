"""Metrics received over OTLP, exposed on the pipeline's Prometheus endpoint (``serve``'s ``/metrics``).

The SDK's Prometheus reader shows only this process's own instruments; points that arrive from other
processes would otherwise be visible nowhere but the general store. This keeps the latest state of
each received series — the last value of a gauge or cumulative sum/histogram, the running total of a
delta one — and renders them at each scrape with ``prometheus_client``'s public metric families.

Series are keyed by metric name, ``service_name`` (the sender's ``service.name``) and the point's
attributes; at most ``max_series`` are kept (more are counted in ``dropped_series`` and left out), so
a sender with unbounded label values cannot grow memory without bound. A received name in the
pipeline's own namespace (``otel_tele_*``: another otel-tele process's self-metrics) is shown as
``received_otel_tele_*``, so it never collides with serve's own family of the same name. Names follow
the OpenTelemetry → Prometheus compatibility specification as the SDK's own Prometheus exporter
applies it (its unit mapping is used): the OTel name in Prometheus' alphabet (``.`` → ``_``), then the
unit as a suffix unless the name ends with it already (``s`` → ``_seconds``, ``By`` → ``_bytes``,
``m/s`` → ``_meters_per_second``, ``{request}`` and ``1`` → none), then ``_total`` for a monotonic
sum. Summaries are Prometheus summaries (``{quantile="…"}``, ``_sum``, ``_count``); exponential
histograms are kept in the general store only (Prometheus' text format has no native histograms).

Example::

    received = ReceivedMetrics()
    registry.register(received)        # a prometheus_client CollectorRegistry
    received.update(metrics_data)      # what the OTLP receiver decoded
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.exporter.prometheus._mapping import map_unit
from opentelemetry.sdk.metrics.export import AggregationTemporality, Gauge, Histogram, MetricsData, Sum

from ._otlp_decode import Summary

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


#: Names the pipeline exports itself: a received family of such a name gets ``received_`` before it.
RESERVED_PREFIXES = ("otel_tele_", "target_info")


def prometheus_name(name: str) -> str:
    """``http.server.duration`` → ``http_server_duration`` (Prometheus' name alphabet)."""
    cleaned = _INVALID.sub("_", name)
    cleaned = f"_{cleaned}" if cleaned[:1].isdigit() else cleaned
    return f"received_{cleaned}" if cleaned.startswith(RESERVED_PREFIXES) else cleaned


def family_name(name: str, unit: str | None, counter: bool = False) -> tuple[str, str]:
    """(the Prometheus family name before ``_total``, its unit): ``http.server.duration``, ``s`` →
    ``http_server_duration_seconds``, ``seconds``."""
    base = prometheus_name(name)
    if counter and base.endswith("_total"):  # the unit goes before it
        base = base[: -len("_total")]
    suffix = map_unit(unit or "")
    if suffix and not base.endswith("_" + suffix):
        base = f"{base}_{suffix}"
    return base, suffix


def _label(key: str) -> str:
    cleaned = _INVALID_LABEL.sub("_", key)
    return f"_{cleaned}" if cleaned[:1].isdigit() or not cleaned else cleaned


def _label_value(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    return str(value)


@dataclass
class _Family:
    kind: str  # counter, gauge, histogram, summary
    description: str
    unit: str
    series: dict[tuple[tuple[str, str], ...], Any] = field(default_factory=dict)


class ReceivedMetrics:
    """The latest state of every received series; a ``prometheus_client`` collector."""

    def __init__(self, max_series: int = 10_000) -> None:
        self.max_series = max_series
        self.dropped_series = 0
        self._families: dict[str, _Family] = {}
        self._count = 0
        self._lock = threading.Lock()

    def update(self, data: MetricsData) -> None:
        """Fold one export's points in. Never raises on a point it cannot use (it is skipped)."""
        with self._lock:
            for rm in data.resource_metrics:
                service = (rm.resource.attributes or {}).get("service.name")
                base = (("service_name", str(service)),) if service is not None else ()
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        self._fold(metric, base)

    def _fold(self, metric: Any, base: tuple[tuple[str, str], ...]) -> None:
        data = metric.data
        if isinstance(data, Histogram):
            kind = "histogram"
        elif isinstance(data, Summary):
            kind = "summary"
        elif isinstance(data, Sum) and data.is_monotonic:
            kind = "counter"
        elif isinstance(data, Sum | Gauge):
            kind = "gauge"
        else:
            return  # exponential histograms: in the general store only (see the module docs)
        name, unit = family_name(metric.name, metric.unit, kind == "counter")
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = _Family(kind, metric.description or metric.name, unit)
        elif family.kind != kind:
            return  # one name, two kinds from two senders: the first one keeps the name
        delta = getattr(data, "aggregation_temporality", None) == AggregationTemporality.DELTA
        for point in data.data_points:
            labels = base + tuple(
                sorted((_label(k), _label_value(v)) for k, v in (point.attributes or {}).items())
            )
            known = labels in family.series
            if not known and self._count >= self.max_series:
                self.dropped_series += 1
                continue
            if kind == "histogram":
                old = family.series.get(labels) if delta else None
                counts = list(point.bucket_counts)
                bounds = list(point.explicit_bounds)
                if old is not None and old[1] == bounds:
                    counts = [a + b for a, b in zip(old[0], counts, strict=True)]
                    total = old[2] + point.sum
                else:
                    total = point.sum
                family.series[labels] = (counts, bounds, total)
            elif kind == "summary":
                family.series[labels] = (point.count, point.sum, tuple(point.quantile_values))
            else:
                value = float(point.value)
                if delta and kind == "counter":
                    value += family.series.get(labels, 0.0)
                family.series[labels] = value
            if not known:
                self._count += 1

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
            Metric,
        )

        with self._lock:
            snapshot = {
                name: (f.kind, f.description, f.unit, dict(f.series)) for name, f in self._families.items()
            }
        for name, (kind, description, unit, series) in snapshot.items():
            if not series:
                continue  # every series of it was over the bound
            label_names = sorted({key for labels in series for key, _ in labels})
            if kind == "histogram":
                family: Any = HistogramMetricFamily(name, description, labels=label_names, unit=unit)
                for labels, (counts, bounds, total) in series.items():
                    values = _values(labels, label_names)
                    cumulative, buckets = 0, []
                    for bound, count in zip([*bounds, math.inf], counts, strict=False):
                        cumulative += count
                        buckets.append(("+Inf" if bound == math.inf else repr(float(bound)), cumulative))
                    family.add_metric(values, buckets, total)
            elif kind == "summary":
                family = Metric(name, description, "summary", unit)
                for labels, (count, total, quantiles) in series.items():
                    present = dict(zip(label_names, _values(labels, label_names), strict=True))
                    for quantile, value in quantiles:
                        family.add_sample(name, {**present, "quantile": repr(float(quantile))}, value)
                    family.add_sample(name + "_count", present, count)
                    family.add_sample(name + "_sum", present, total)
            elif kind == "counter":
                family = CounterMetricFamily(name, description, labels=label_names, unit=unit)
                for labels, value in series.items():
                    family.add_metric(_values(labels, label_names), value)
            else:
                family = GaugeMetricFamily(name, description, labels=label_names, unit=unit)
                for labels, value in series.items():
                    family.add_metric(_values(labels, label_names), value)
            yield family

    def describe(self) -> list[Any]:
        return []  # the families are known only at scrape time; nothing to check at registration


def _values(labels: tuple[tuple[str, str], ...], names: list[str]) -> list[str]:
    present: Mapping[str, str] = dict(labels)
    return [present.get(name, "") for name in names]
