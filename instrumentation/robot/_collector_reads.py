"""The collector's reads (``get_events``, ``get_pipeline``, ``get_stats``): the live window of what
``emit()`` returned, merged with what the robot domain's reader finds stored.

The live window keeps the last ``maxlen`` emitted events as the caller made them (source, payload;
the tables keep only their columns) and the event types no table keeps (``WS_SEND``); older events
are answered from the database, through the reader the robot descriptor registers (``Domain.reader``,
the query layer, loaded by name: instrumentation names no query module).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from otel_tele import _registry
from otel_tele._pipeline import Pipeline

from ._events import EventType, TelemetryEvent, event_type_of, is_stored

#: The window of ``get_stats``' rates.
RATE_WINDOW_S = 10.0

#: Opens a reader of what a pipeline stored: ``reader(telemetry)`` → a context manager with
#: ``events``, ``correlated`` and ``stats`` (``otel_tele._robot_legacy.Reader``).
ReaderFactory = Callable[[Pipeline], Any]


def registered_reader(telemetry: Pipeline) -> Any:
    """The reader the robot domain registers (``Domain.reader``): instrumentation names no query
    module, the registry does."""
    target = next((d.reader for d in _registry.domains() if d.name == "robot" and d.reader), None)
    if target is None:
        raise RuntimeError("no reader is registered for the robot domain")
    factory: ReaderFactory = _registry.load(target)
    return factory(telemetry)


class CollectorReads:
    """``live``: (event, record time in ns) of what ``emit()`` returned — the collector appends to it
    directly; ``open_stored()``: a reader of the database, current to the call."""

    def __init__(self, maxlen: int, open_stored: Callable[[], Any]) -> None:
        if not isinstance(maxlen, int) or isinstance(maxlen, bool) or maxlen < 0:
            raise ValueError(f"maxlen must be a non-negative integer, got {maxlen!r}")
        self.live: deque[tuple[TelemetryEvent, int]] = deque(maxlen=maxlen)
        self._open_stored = open_stored

    def _live_window(self) -> list[tuple[TelemetryEvent, int]]:
        while True:
            try:
                return list(self.live)
            except RuntimeError:  # appended to while copied: copy again
                continue

    def _emitted(
        self, keep: Callable[[TelemetryEvent], bool]
    ) -> tuple[list[TelemetryEvent], frozenset[tuple[EventType | str, float]]]:
        """Remembered events that ``keep`` selects, and the (event type, ts) keys of every remembered
        event's stored row (so the database answer leaves those rows out)."""
        live = self._live_window()
        keys = frozenset(
            (event.event_type, ts_ns / 1e9) for event, ts_ns in live if is_stored(event.event_type)
        )
        return [event for event, _ in live if keep(event)], keys

    def events(
        self, limit: int, event_type: EventType | str | None, source: str | None
    ) -> list[TelemetryEvent]:
        kind = event_type_of(event_type) if event_type is not None else None
        emitted, keys = self._emitted(
            lambda e: (kind is None or e.event_type == kind) and (source is None or e.source == source)
        )
        with self._open_stored() as reader:
            stored = [_as_event(row) for row in reader.events(limit, kind, source, skip=keys)]
        limit = max(0, int(limit))
        return sorted(stored + emitted, key=lambda e: e.wall_time_ms)[-limit:] if limit else []

    def pipeline(self, correlation_id: str) -> list[dict[str, Any]]:
        cid = str(correlation_id)
        emitted, keys = self._emitted(lambda e: e.correlation_id == cid)
        with self._open_stored() as reader:
            stored = [_as_event(row) for row in reader.correlated(cid, skip=keys)]
        return _pipeline_steps(stored + emitted)

    def stats(self) -> dict[str, Any]:
        now = time.time()
        with self._open_stored() as reader:
            stats: dict[str, Any] = reader.stats(now, RATE_WINDOW_S)
        unstored, _ = self._emitted(lambda e: not is_stored(e.event_type))
        _add_unstored(stats, unstored, now)
        return stats


def _as_event(row: Any) -> TelemetryEvent:
    """A stored row as the original returned it: the wall time in both time fields."""
    return TelemetryEvent(row.ts_ms, row.ts_ms, row.source, row.event_type, row.payload, row.correlation_id)


def _pipeline_steps(events: Iterable[TelemetryEvent]) -> list[dict[str, Any]]:
    """``get_pipeline``'s shape: the events in time order, each with ``latency_ms`` to the previous."""
    found = sorted(events, key=lambda event: event.wall_time_ms)
    steps = []
    for i, event in enumerate(found):
        kind = event.event_type
        steps.append(
            {
                "event": {
                    "ts": event.wall_time_ms,
                    "type": kind.value if isinstance(kind, EventType) else kind,
                    "source": event.source,
                },
                "latency_ms": event.wall_time_ms - found[i - 1].wall_time_ms if i else 0.0,
            }
        )
    return steps


def _add_unstored(stats: dict[str, Any], events: Iterable[TelemetryEvent], now: float) -> None:
    """Count emitted events that no table keeps (``WS_SEND``) into ``get_stats``' figures."""
    since_ms = (now - RATE_WINDOW_S) * 1000
    rates = stats["rates_per_sec"]
    newest: float | None = None
    for event in events:
        stats["total_events"] += 1
        newest = event.wall_time_ms if newest is None else max(newest, event.wall_time_ms)
        if event.wall_time_ms >= since_ms:
            kind = event.event_type
            name = kind.value if isinstance(kind, EventType) else kind
            rates[name] = rates.get(name, 0.0) + 1 / RATE_WINDOW_S
    if newest is not None:
        staleness = max(0.0, now * 1000 - newest)
        current = stats["staleness_ms"]
        stats["staleness_ms"] = staleness if current is None else min(current, staleness)
