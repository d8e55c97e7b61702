"""What the logger's ``get_*`` queries read through: a :class:`Reader` (the query API), given, or
opened per pipeline by a :data:`ReaderFactory` (default: the one the inference descriptor registers,
``Domain.reader``: this package names no query module, the registry wires it)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from otel_tele._internal import fork_safe
from otel_tele._pipeline import Pipeline
from otel_tele._registry import domains, load


class Reader(Protocol):
    """The query API the ``get_*`` helpers read through (``otel_tele.inference_stats.InferenceStats``)."""

    def aggregated_efficiency(self, component: str | None = None, hours: float = 24) -> dict[str, Any]: ...

    def statistics_60day(self, days: int | None = None, component: str | None = None) -> dict[str, Any]: ...

    def footprint(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


#: Opens a :class:`Reader` over the store a pipeline's inference sink writes (None: the global setup).
ReaderFactory = Callable[[Pipeline | None], Reader]


def registered_reader(telemetry: Pipeline | None) -> Reader:
    """The reader the inference domain registers (``Domain.reader``): instrumentation names no query
    module, the registry wires it."""
    target = next((d.reader for d in domains() if d.name == "inference" and d.reader), None)
    if target is None:
        raise RuntimeError("no reader is registered for the inference domain")
    factory: ReaderFactory = load(target)
    return factory(telemetry)


class StatsReaders:
    """The reader a logger reads through: the one it was given, else one it opens for the current
    pipeline (reopened when the pipeline changes) and closes."""

    def __init__(self, given: Reader | None, factory: ReaderFactory | None) -> None:
        self._given = given
        self._factory = factory or registered_reader
        self._owned: tuple[Pipeline | None, Reader] | None = None  # (pipeline, the reader we opened)
        self._lock = fork_safe(threading.Lock())

    def for_pipeline(self, telemetry: Pipeline | None) -> Reader:
        if self._given is not None:
            return self._given
        with self._lock:
            if self._owned is not None and self._owned[0] is telemetry:
                return self._owned[1]
            if self._owned is not None:
                self._owned[1].close()
                self._owned = None
            stats = self._factory(telemetry)
            self._owned = (telemetry, stats)
            return stats

    def close(self) -> None:
        """Release the reader opened here (not one that was given)."""
        with self._lock:
            owned, self._owned = self._owned, None
        if owned is not None:
            owned[1].close()
