"""The general store's vocabulary: none of its own. It stores every record with the names and
attributes it arrived with (see :mod:`otel_tele.exporters.store.schema` for its columns)."""

from __future__ import annotations

from ._types import Event, Metric

EVENTS: tuple[Event, ...] = ()
METRICS: tuple[Metric, ...] = ()
