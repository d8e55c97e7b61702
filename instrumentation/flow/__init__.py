"""Per-node flow meters (specs 001, 003): what a service records so FlowTime can replay it.

Usage
-----
::

    import otel_tele
    from otel_tele.instrumentation.flow import FlowMeters

    telemetry = otel_tele.setup(service_name="orders")      # OTEL_TELE_SINKS=capture writes bundles
    meters = FlowMeters(telemetry)
    orders = meters.node("OrderService")
    orders.arrivals()                  # one item arrived
    orders.served(3, class_id="Retail")
    orders.queue_depth(len(queue))     # a gauge: the latest value per bin is kept
    orders.capacity(12)

Every measurement is an ordinary OTel metric (``flow.arrivals``, ``flow.served``, ``flow.errors``,
``flow.external_demand`` counters; ``flow.queue.depth``, ``flow.capacity`` gauges) with attributes
``flow.node`` and, per class, ``flow.class``, so Prometheus and OTLP see it too; the ``capture`` sink
bins it into bundles. Record a node's flow either unclassed or per class: a node's total (FlowTime's
``DEFAULT`` class) is the sum of both.

Configuration
-------------
Nothing beyond the pipeline. Bad values (a negative count, NaN, an empty node id) are never raised
into the caller: they are dropped, counted in ``FlowMeters.invalid`` and logged once per reason.

Memory is bounded: at most ``cardinality_limit`` node/class series (``OTEL_TELE_FLOW_CARDINALITY_LIMIT``,
default 10,000, the rows of a capture grid); measurements of further series fold into one
``otel.metric.overflow=true`` series, are counted in ``overflow_series``/``overflow_points`` (also
exported as ``otel_tele.flow.overflow.series``/``.points``), and a capture bundle warns
``cardinality_overflow`` with both counts.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import Meter, Observation

from otel_tele._internal import fork_safe, guard, safe_repr
from otel_tele._settings import Settings
from otel_tele.domains.flow import FLOW_CARDINALITY_LIMIT
from otel_tele.semconv import flow

__all__ = ["FlowMeters", "NodeMeters"]

_log = logging.getLogger("otel_tele")
_SDK_DEFAULT_LIMIT = 2_000  # the OTel SDK's cardinality limit, for meters not from our pipeline
#: The attributes every measurement past the cardinality limit is recorded with (one shared series).
_OVERFLOW: dict[str, Any] = {flow.OVERFLOW_ATTRIBUTE: True}


class FlowMeters:
    """The six flow instruments of one meter; ``node(id)`` gives a cheap per-node handle.

    ``source`` is a :class:`otel_tele.Pipeline`, an OTel ``Meter``, or ``None`` for the global
    meter provider.
    """

    def __init__(self, source: Any = None, *, cardinality_limit: int | None = None) -> None:
        if source is None:
            meter: Meter = otel_metrics.get_meter("otel_tele.flow")
        elif isinstance(source, Meter):
            meter = source
        else:
            meter = source.meter("otel_tele.flow")
        if cardinality_limit is None:
            settings = getattr(source, "settings", None)
            cardinality_limit = (
                settings.get(FLOW_CARDINALITY_LIMIT)
                if isinstance(settings, Settings)
                else _SDK_DEFAULT_LIMIT - 1
            )
        self.cardinality_limit = cardinality_limit
        self.series = 0  # node/class attribute sets handed out
        self.overflow_series = 0  # of those, past the limit
        self.overflow_points = 0  # measurements recorded on them
        self._instruments: dict[str, Any] = {}
        for metric in flow.FLOW_METRICS:
            factory = meter.create_counter if metric.kind == "counter" else meter.create_gauge
            self._instruments[metric.field] = factory(
                metric.instrument, unit=metric.unit, description=metric.description
            )
        self._nodes: dict[str, NodeMeters] = {}
        self._lock = fork_safe(threading.Lock())
        self._series_lock = fork_safe(threading.Lock())
        self._warned: set[str] = set()
        self.invalid = 0
        meter.create_observable_gauge(
            flow.OVERFLOW_SERIES,
            callbacks=[lambda _options: [Observation(self.overflow_series)]],
            unit="{series}",
            description="flow series past the cardinality limit (not captured)",
        )
        meter.create_observable_counter(
            flow.OVERFLOW_POINTS,
            callbacks=[lambda _options: [Observation(self.overflow_points)]],
            unit="{measurement}",
            description="flow measurements of series past the cardinality limit (not captured)",
        )

    def _series_attributes(self, attrs: dict[str, str]) -> dict[str, Any]:
        """``attrs`` for a new node/class series, or the overflow attributes past the limit."""
        with self._series_lock:  # not self._lock: node() holds that while it builds a handle
            self.series += 1
            if self.series <= self.cardinality_limit:
                return attrs
            self.overflow_series += 1
            first = self.overflow_series == 1
        if first:
            _log.warning(
                "flow meters: more than %d node/class series (OTEL_TELE_FLOW_CARDINALITY_LIMIT); "
                "further ones fold into one otel.metric.overflow=true series and are not captured",
                self.cardinality_limit,
            )
        return _OVERFLOW

    def _lost_point(self) -> None:
        with self._series_lock:
            self.overflow_points += 1

    def node(self, node_id: str) -> NodeMeters:
        """The meters of topology node ``node_id`` (cached: call it once per node)."""
        try:
            handle = self._nodes.get(node_id)
            if handle is None:
                with self._lock:
                    handle = self._nodes.setdefault(node_id, NodeMeters(self, node_id))
        except Exception:  # unhashable, or a hostile __hash__/__eq__: a handle that rejects every value
            return NodeMeters(self, "")
        return handle

    def record(self, field: str, node_id: str, value: float, class_id: str | None = None) -> None:
        """Record ``value`` for semantics ``field`` (``"arrivals"`` … ``"capacity"``) of ``node_id``."""
        self.node(node_id).record(field, value, class_id)

    def _reject(self, reason: str, value: Any = None) -> None:
        with self._lock:
            self.invalid += 1
            first = reason not in self._warned
            self._warned.add(reason)
        if first:
            _log.warning(
                "flow meters: dropped a measurement (%s%s); further ones are counted in FlowMeters.invalid",
                reason,
                "" if value is None else f", got {safe_repr(value)}",
            )


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _plain_number(value: Any) -> int | float | None:
    """A number the SDK can aggregate (a plain int or float), or None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        if type(value) is int:
            return value if _INT64_MIN <= value <= _INT64_MAX else float(value)  # OverflowError if huge
        return float(value)
    except Exception:  # a huge int, a subclass whose __float__ raises
        return None


class NodeMeters:
    """Flow meters bound to one node (attribute dicts are built once, per class)."""

    def __init__(self, owner: FlowMeters, node_id: str) -> None:
        self._owner = owner
        self.node_id = node_id
        if isinstance(node_id, str):
            node_id = str.__str__(node_id)  # a subclass's own methods are not trusted
        self._valid = isinstance(node_id, str) and bool(node_id.strip()) and "\x00" not in node_id
        self._attrs: dict[str | None, dict[str, Any]] = (
            {None: owner._series_attributes({flow.NODE: node_id})} if self._valid else {}
        )

    def _attributes(self, class_id: str | None) -> dict[str, Any] | None:
        if class_id is not None and type(class_id) is not str:
            if not isinstance(class_id, str):
                return None
            class_id = str.__str__(class_id)  # a subclass's own methods are not trusted
        attrs = self._attrs.get(class_id)
        if attrs is None:
            if class_id is None or not class_id.strip() or "\x00" in class_id:
                return None
            attrs = self._attrs[class_id] = self._owner._series_attributes(
                {flow.NODE: self.node_id, flow.CLASS: class_id}
            )
        return attrs

    def record(self, field: str, value: float, class_id: str | None = None) -> None:
        metric = flow.BY_FIELD.get(field) if type(field) is str else None
        if metric is None:
            self._owner._reject("unknown flow field", field)
            return
        if not self._valid:
            self._owner._reject("node id must be a non-empty string")
            return
        attrs = self._attributes(class_id)
        if attrs is None:
            self._owner._reject("class id must be a non-empty string")
            return
        if type(value) is not float and (type(value) is not int or not _INT64_MIN <= value <= _INT64_MAX):
            value = _plain_number(value)  # type: ignore[assignment]
        if value is None or not math.isfinite(value) or (metric.kind == "counter" and value < 0):
            kind = "finite non-negative" if metric.kind == "counter" else "finite"
            self._owner._reject(f"{field} needs a {kind} number", value)
            return
        with guard("flow meter"):
            if attrs is _OVERFLOW:
                self._owner._lost_point()
            instrument = self._owner._instruments[field]
            if metric.kind == "counter":
                instrument.add(value, attrs)
            else:
                instrument.set(value, attrs)

    def arrivals(self, count: float = 1, *, class_id: str | None = None) -> None:
        """``count`` items arrived at the node."""
        self.record("arrivals", count, class_id)

    def served(self, count: float = 1, *, class_id: str | None = None) -> None:
        """``count`` items finished service at the node."""
        self.record("served", count, class_id)

    def errors(self, count: float = 1, *, class_id: str | None = None) -> None:
        """``count`` items failed at the node."""
        self.record("errors", count, class_id)

    def external_demand(self, count: float = 1, *, class_id: str | None = None) -> None:
        """``count`` items of demand arrived from outside the modelled system."""
        self.record("externalDemand", count, class_id)

    def queue_depth(self, depth: float, *, class_id: str | None = None) -> None:
        """The node's current queue depth (a gauge)."""
        self.record("queueDepth", depth, class_id)

    def capacity(self, items_per_bin: float, *, class_id: str | None = None) -> None:
        """The node's current capacity, in items per bin (a gauge)."""
        self.record("capacity", items_per_bin, class_id)
