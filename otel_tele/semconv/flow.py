"""Flow/queue vocabulary (specs 001, 003): per-node flow meters that capture bundles are binned from."""

from __future__ import annotations

from ._types import Metric

NODE = "flow.node"
CLASS = "flow.class"

#: FlowTime metric name → OTel instrument (kind, name, unit). Counters are per-bin sums once binned;
#: gauges (queue depth, capacity) are sampled at bin end.
METERS: dict[str, tuple[str, str, str]] = {
    "arrivals": ("counter", "flow.arrivals", "{item}"),
    "served": ("counter", "flow.served", "{item}"),
    "errors": ("counter", "flow.errors", "{item}"),
    "externalDemand": ("counter", "flow.external_demand", "{item}"),
    "queue": ("gauge", "flow.queue.depth", "{item}"),
    "capacity": ("gauge", "flow.capacity", "{item}"),
}

# Flow meters are recorded straight onto OTel instruments (see instrumentation.flow), not from events.
METRICS: tuple[Metric, ...] = ()
