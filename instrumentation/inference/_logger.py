"""The spec 002 sensor, :class:`TelemetryLogger`: recording calls that emit one event each, and the
query helpers that read through an injected reader (see the package docstring).

A façade over parts with one job each: the synchronous recording calls (:mod:`._recording`, events
built by :mod:`._records`, GenAI spans and histograms by :mod:`._genai`), the spec's async interface
(:mod:`._async_api`), the load and thought timers (:mod:`._timers`) and the reader the queries go
through (:mod:`._stats_reader`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from otel_tele._internal import fork_safe
from otel_tele._pipeline import Pipeline
from otel_tele._setup import get_telemetry, on_reset

from ._async_api import AsyncInterface
from ._stats_reader import Reader, ReaderFactory, StatsReaders, registered_reader
from ._timers import LoadTimer, ThoughtTimer, load_timer, thought_timer, use_default_recorder

__all__ = [
    "Reader",
    "ReaderFactory",
    "TelemetryLogger",
    "get_telemetry_logger",
    "registered_reader",
    "set_telemetry_logger",
]

_log = logging.getLogger("otel_tele.inference")


class TelemetryLogger(AsyncInterface):
    """The spec 002 sensor: log loads, inferences and VRAM; query efficiency, trends and footprint.

    ``telemetry`` is the pipeline to emit to (default: the global one at each call); ``stats`` the
    query API to read through; ``reader`` opens one per pipeline instead (default: the one the
    inference domain registers, over the store the pipeline's settings name).

    Example::

        logger = TelemetryLogger(provider="ollama")
        logger.record_thought("gemma2:27b", 1.2, tokens_generated=412)
    """

    def __init__(
        self,
        telemetry: Pipeline | None = None,
        *,
        stats: Reader | None = None,
        reader: ReaderFactory | None = None,
        provider: str | None = None,
        flush_timeout_millis: float = 10_000,
    ) -> None:
        self._telemetry = telemetry
        self._readers = StatsReaders(stats, reader)
        self.provider = provider
        self.flush_timeout_millis = flush_timeout_millis

    @property
    def telemetry(self) -> Pipeline | None:
        return self._telemetry if self._telemetry is not None else get_telemetry()

    # -- the spec's timer ------------------------------------------------------------------------
    @staticmethod
    def start_timer() -> float:
        """High-precision timer start (``time.perf_counter()``)."""
        return time.perf_counter()

    @staticmethod
    def measure_latency(start_time: float) -> float:
        """Seconds elapsed since ``start_time`` (from :meth:`start_timer`)."""
        return time.perf_counter() - start_time

    def load_timer(self, model: str) -> LoadTimer:
        return load_timer(model, logger=self, provider=self.provider)

    def thought_timer(self, model: str, **kwargs: Any) -> ThoughtTimer:
        return thought_timer(model, logger=self, provider=kwargs.pop("provider", self.provider), **kwargs)

    # -- queries -----------------------------------------------------------------------------------
    @property
    def stats(self) -> Reader:
        """The query API this logger reads (see :mod:`otel_tele.inference_stats`)."""
        return self._readers.for_pipeline(self.telemetry)

    def query(self, method: str, *args: Any) -> Any:
        """Flush the inference sink (so earlier events are stored; never OTLP or another sink), then
        call ``InferenceStats.<method>``."""
        telemetry = self.telemetry
        if telemetry is not None and not telemetry.flush_sink("postgres", self.flush_timeout_millis):
            _log.warning(
                "telemetry flush did not finish within %.0f ms; the answer may miss recent events",
                self.flush_timeout_millis,
            )
        return getattr(self.stats, method)(*args)

    def close(self) -> None:
        """Release the reader this logger opened (not one it was given)."""
        self._readers.close()


_default: TelemetryLogger | None = None
_default_lock = fork_safe(threading.Lock())


def get_telemetry_logger() -> TelemetryLogger:
    """The process's :class:`TelemetryLogger` (created on first use, over the global pipeline)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = TelemetryLogger()
        return _default


def set_telemetry_logger(logger: TelemetryLogger | None) -> TelemetryLogger | None:
    """Inject the process's logger (None: the next ``get_telemetry_logger()`` makes a fresh one);
    returns the previous one."""
    global _default
    with _default_lock:
        previous, _default = _default, logger
        return previous


on_reset(lambda: set_telemetry_logger(None))
use_default_recorder(get_telemetry_logger)  # timers created without a logger record through this one
