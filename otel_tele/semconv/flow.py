"""Flow/queue vocabulary (specs 001, 003): per-node flow meters and the FlowTime names they map to.

A service records its flow per topology node (``flow.node``) and optionally per class of work
(``flow.class``) on six OTel instruments; the capture sink bins them into FlowTime capture bundles.
Counters become per-bin sums; gauges (queue depth, capacity) are sampled at the end of each bin.

Example::

    from otel_tele.semconv import flow
    flow.BY_FIELD["arrivals"].instrument   # 'flow.arrivals'
    flow.BY_FIELD["queueDepth"].manifest   # 'QueueDepth' (the manifest's metric enum)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ._types import Metric

#: Attribute keys of every flow measurement.
NODE = "flow.node"
CLASS = "flow.class"

#: The class id FlowTime uses for a node's total (no specific class).
DEFAULT_CLASS = "DEFAULT"


@dataclass(frozen=True)
class FlowMetric:
    """One FlowTime flow metric: its topology semantics field, manifest name, bundle file suffix and
    the OTel instrument that carries it live."""

    field: str  # topology ``semantics.<field>`` in a FlowTime model
    manifest: str  # ``files[].metric`` enum value in a capture manifest
    kind: Literal["counter", "gauge"]
    instrument: str  # OTel instrument name
    unit: str
    description: str

    @property
    def file_suffix(self) -> str:
        """FlowTime's default file name suffix: ``<node>_<manifest name lower-cased>.csv``."""
        return self.manifest.lower()


#: In FlowTime's capture order (``RunArtifactReader``: arrivals, served, errors, externalDemand,
#: queueDepth, capacity).
FLOW_METRICS: tuple[FlowMetric, ...] = (
    FlowMetric(
        "arrivals", "Arrivals", "counter", "flow.arrivals", "{item}", "items that arrived at the node"
    ),
    FlowMetric("served", "Served", "counter", "flow.served", "{item}", "items the node finished serving"),
    FlowMetric("errors", "Errors", "counter", "flow.errors", "{item}", "items that failed at the node"),
    FlowMetric(
        "externalDemand",
        "ExternalDemand",
        "counter",
        "flow.external_demand",
        "{item}",
        "demand arriving from outside the modelled system",
    ),
    FlowMetric(
        "queueDepth",
        "QueueDepth",
        "gauge",
        "flow.queue.depth",
        "{item}",
        "items waiting at the node (sampled at bin end)",
    ),
    FlowMetric(
        "capacity",
        "Capacity",
        "gauge",
        "flow.capacity",
        "{item}",
        "items the node can serve per bin (sampled at bin end)",
    ),
)

BY_FIELD: Mapping[str, FlowMetric] = {m.field: m for m in FLOW_METRICS}
BY_MANIFEST: Mapping[str, FlowMetric] = {m.manifest: m for m in FLOW_METRICS}
BY_INSTRUMENT: Mapping[str, FlowMetric] = {m.instrument: m for m in FLOW_METRICS}

#: FlowTime's fallback binding when a model has no topology: output file-name suffix → field.
#: Order matters (``_queue_depth`` before ``_queue``).
FALLBACK_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_arrivals", "arrivals"),
    ("_served", "served"),
    ("_errors", "errors"),
    ("_queue_depth", "queueDepth"),
    ("_queue", "queueDepth"),
    ("_external_demand", "externalDemand"),
    ("_capacity", "capacity"),
)

# Warning codes a capture writes (FlowTime's, plus ours for injection and live windows).
DATA_GAP = "data_gap"
NAN_FILL = "nan_fill"
NAN_DETECTED = "nan_detected"
LENGTH_MISMATCH = "length_mismatch"
INJECTED_ZERO = "injected_zero"
INJECTED_NAN = "injected_nan"
INJECTED_GAP = "injected_gap"
PARTIAL_WINDOW = "partial_window"
#: Bundle warning: node/class series past the flow meters' cardinality limit were not captured.
CARDINALITY_OVERFLOW = "cardinality_overflow"
#: Self-metrics of :class:`~otel_tele.instrumentation.flow.FlowMeters`: series past the limit, and
#: measurements recorded on them (folded into the ``otel.metric.overflow=true`` series).
OVERFLOW_SERIES = "otel_tele.flow.overflow.series"
OVERFLOW_POINTS = "otel_tele.flow.overflow.points"
OVERFLOW_ATTRIBUTE = "otel.metric.overflow"

# Flow meters are recorded straight onto OTel instruments (see instrumentation.flow), not fed by events.
METRICS: tuple[Metric, ...] = ()
