"""The collector's live listeners (``subscribe``): every event, as the original's dict, to each callback."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from otel_tele._internal import fork_safe

from ._events import EventType, TelemetryEvent

_log = logging.getLogger("otel_tele")
_make_event = TelemetryEvent.make
_mono = time.monotonic

Listener = Callable[[dict[str, Any]], Any]


class Listeners:
    """The subscribed callbacks; ``callbacks`` is empty (falsy) when nobody listens, so a recording
    call pays nothing for them."""

    def __init__(self) -> None:
        self.callbacks: tuple[Listener, ...] = ()
        self._lock = fork_safe(threading.Lock())

    def subscribe(self, callback: Listener) -> None:
        with self._lock:
            self.callbacks = (*self.callbacks, callback)

    def unsubscribe(self, callback: Listener) -> None:
        with self._lock:
            self.callbacks = tuple(cb for cb in self.callbacks if cb != callback)

    def typed(self, source: str, kind: EventType, payload: dict[str, Any], cid: str | None) -> None:
        """What a typed call recorded, as the event ``emit()`` would have made of it."""
        self.notify(_make_event(_mono() * 1000, time.time() * 1000, source, kind, payload, cid))

    def notify(self, event: TelemetryEvent) -> None:
        as_dict = event.as_dict()
        for callback in self.callbacks:
            try:
                callback(as_dict)
            except Exception:  # a listener's bug is the listener's; the event is recorded anyway
                _log.debug("telemetry subscriber %r failed", callback, exc_info=True)
