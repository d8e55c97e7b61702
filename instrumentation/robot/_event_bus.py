"""The original collector's event bus: ``emit(source, event_type, payload, correlation_id)`` behind
an on/off switch, routed to a table by :data:`._events.ROUTES`, remembered in the live window and
handed to the subscribers.

A base of :class:`~._collector.TelemetryCollector` (as :mod:`._typed_calls`), so ``emit()`` costs the
caller what it did before the collector was split (``bench/bench_robot_emit.py``).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from ._events import ROUTES, EventType, Route, TelemetryEvent, event_type_of, system_route
from ._listeners import Listeners
from ._records import RobotRecords

_make_event = TelemetryEvent.make
_time_ns = time.time_ns
_mono = time.monotonic


class EventBus:
    """``emit`` and the subscribers, over ``_records``, ``_listeners`` and ``_live`` (the live window:
    (event, record time in ns)), set by the collector."""

    _records: RobotRecords
    _listeners: Listeners
    _live: deque[tuple[TelemetryEvent, int]]
    _enabled: bool = False

    def _failed(self, what: str, exc: BaseException | None = None) -> None:
        raise NotImplementedError

    def enable(self) -> None:
        """Turn ``emit()`` on (typed methods always record)."""
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    @property
    def enabled(self) -> bool:
        return self._enabled

    @staticmethod
    def new_correlation_id() -> str:
        """12 hex characters, as the original."""
        return os.urandom(6).hex()

    def emit(
        self,
        source: str,
        event_type: EventType | str,
        payload: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> TelemetryEvent | None:
        """Record one legacy event, routed to its table (``WS_SEND`` is not stored); ``None`` if disabled."""
        if not self._enabled:
            return None
        try:
            kind = event_type if type(event_type) is EventType else event_type_of(event_type)
            if payload is None:
                payload = {}
            elif type(payload) is not dict:
                payload = dict(payload) if isinstance(payload, Mapping) else {"value": payload}
            if type(source) is not str:
                source = str(source)
            now_ns = _time_ns()
            event = _make_event(_mono() * 1000, now_ns / 1e6, source, kind, payload, correlation_id)
            self._live.append((event, now_ns))
            if self._listeners.callbacks:
                self._listeners.notify(event)
            route: Route | None = ROUTES.get(kind, system_route)
            if route is not None:
                route(self._records, source, kind, payload, correlation_id, now_ns)
            return event
        except Exception as exc:
            self._failed("TelemetryCollector.emit", exc)
            return None

    def subscribe(self, callback: Callable[[dict[str, Any]], Any]) -> None:
        """Call ``callback(event_dict)`` for every event from now on (a failing callback is ignored)."""
        self._listeners.subscribe(callback)

    def unsubscribe(self, callback: Callable[[dict[str, Any]], Any]) -> None:
        self._listeners.unsubscribe(callback)
