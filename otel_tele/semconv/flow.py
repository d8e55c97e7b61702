"""Flow/queue vocabulary (specs 001, 003): per-node flow meters and the FlowTime names they map to.

A service records its flow per topology node (``flow.node``) and optionally per class of work
(``flow.class``) on six OTel instruments; the capture sink bins them into FlowTime capture bundles.
Counters become per-bin sums; gauges (queue depth, capacity) are sampled at the end of each bin.
Names, types and units only: how a bundle stores them (file names, warning codes) is declared in
``otel_tele.exporters.capture.schema``.

Example::

    from otel_tele.semconv import flow
    flow.BY_FIELD["arrivals"].instrument   # 'flow.arrivals'
    flow.BY_FIELD["queueDepth"].manifest   # 'QueueDepth' (FlowTime's metric name)
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
    """One FlowTime flow metric: its topology semantics field, FlowTime metric name and the OTel
    instrument that carries it live."""

    field: str  # topology ``semantics.<field>`` in a FlowTime model
    manifest: str  # FlowTime's metric name (a capture manifest's ``files[].metric``)
    kind: Literal["counter", "gauge"]
    instrument: str  # OTel instrument name
    unit: str
    description: str


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

#: Self-metrics of :class:`~otel_tele.instrumentation.flow.FlowMeters`: series past the limit, and
#: measurements recorded on them (folded into the ``otel.metric.overflow=true`` series).
OVERFLOW_SERIES = "otel_tele.flow.overflow.series"
OVERFLOW_POINTS = "otel_tele.flow.overflow.points"
OVERFLOW_ATTRIBUTE = "otel.metric.overflow"

# Flow meters are recorded straight onto OTel instruments (see instrumentation.flow), not fed by events.
METRICS: tuple[Metric, ...] = ()
