"""The domain vocabulary of otel-tele, declared once: event names, attribute keys, metrics and units.

Instrumentation emits with these names; exporters map by them. Each domain has a module (ours:
``robot``, ``fda``, ``inference``, ``flow``); this package indexes every registered domain's
vocabulary (:mod:`otel_tele._registry`), a third party's included.

Example::

    from otel_tele import semconv
    semconv.EVENTS[semconv.robot.DDS_COMMAND].attributes_by_key[semconv.robot.FUNCODE].type
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from .._registry import domains
from . import fda, flow, inference, robot
from ._types import (
    Attr,
    AttrType,
    Event,
    Metric,
    MetricKind,
    coerce_attributes,
    encoder_function,
    to_json,
    to_json_each,
)

_DOMAINS = tuple(importlib.import_module(domain.vocabulary) for domain in domains())

#: Every declared event by name.
EVENTS: Mapping[str, Event] = {
    event.name: event for domain in _DOMAINS for event in getattr(domain, "EVENTS", ())
}
#: Every event-fed metric.
METRICS: tuple[Metric, ...] = tuple(
    metric for domain in _DOMAINS for metric in getattr(domain, "METRICS", ())
)

__all__ = [
    "EVENTS",
    "METRICS",
    "Attr",
    "AttrType",
    "Event",
    "Metric",
    "MetricKind",
    "coerce_attributes",
    "encoder_function",
    "fda",
    "flow",
    "inference",
    "robot",
    "to_json",
    "to_json_each",
]
