"""The spec 002 sensor, :class:`TelemetryLogger`: recording calls that emit one event each, and the
query helpers that read through an injected reader (see the package docstring)."""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, cast

from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_tele._internal import fork_safe, safe_repr
from otel_tele._pipeline import Telemetry
from otel_tele._registry import domains
from otel_tele._setup import get_telemetry, on_reset
from otel_tele.semconv import inference as inf

from ._timers import LoadTimer, ThoughtTimer, load_timer, thought_timer, use_default_recorder

_log = logging.getLogger("otel_tele.inference")


class Reader(Protocol):
    """The query API the ``get_*`` helpers read through (``otel_tele.inference_stats.InferenceStats``)."""

    def aggregated_efficiency(self, component: str | None = None, hours: float = 24) -> dict[str, Any]: ...

    def statistics_60day(self, days: int | None = None, component: str | None = None) -> dict[str, Any]: ...

    def footprint(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


#: Opens a :class:`Reader` over the store a pipeline's inference sink writes (None: the global setup).
ReaderFactory = Callable[[Telemetry | None], Reader]


def registered_reader(telemetry: Telemetry | None) -> Reader:
    """The reader the inference domain registers (``Domain.reader``): instrumentation names no query
    module, the registry wires it."""
    target = next((d.reader for d in domains() if d.name == "inference" and d.reader), None)
    if target is None:
        raise RuntimeError("no reader is registered for the inference domain")
    module_name, _, attr = target.partition(":")
    factory: ReaderFactory = getattr(importlib.import_module(module_name), attr)
    return factory(telemetry)


_Recorder = TypeVar("_Recorder", bound=Callable[..., bool])


def _never_raises(api: str) -> Callable[[_Recorder], _Recorder]:
    """A recording call that fails returns False, counted and logged, instead of raising."""

    def wrap(method: _Recorder) -> _Recorder:
        @functools.wraps(method)
        def call(self: TelemetryLogger, *args: Any, **kwargs: Any) -> bool:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                self._count_failed(api, exc)
                return False

        return cast(_Recorder, call)

    return wrap


def _number_problem(name: str, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number, got {type(value).__name__}"
    return None


def _int_problem(name: str, value: Any) -> str | None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not value.is_integer())
    ):
        return f"{name} must be an integer, got {safe_repr(value)}"
    return None


def _name_problem(name: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return f"{name} must be a non-empty string, got {safe_repr(value)}"
    return None


class _GenAIMetrics:
    """The GenAI client and server histograms of one pipeline (advisory buckets from the conventions)."""

    def __init__(self, telemetry: Telemetry) -> None:
        meter = telemetry.meter("otel_tele.inference")

        def seconds(name: str, description: str, buckets: tuple[float, ...]) -> Any:
            return meter.create_histogram(
                name, unit="s", description=description, explicit_bucket_boundaries_advisory=list(buckets)
            )

        self.duration = seconds(inf.OPERATION_DURATION, "GenAI operation duration", inf.DURATION_BUCKETS_S)
        self.tokens = meter.create_histogram(
            inf.TOKEN_USAGE,
            unit="{token}",
            description="Measures number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(inf.TOKEN_BUCKETS),
        )
        self.server_duration = seconds(
            inf.SERVER_REQUEST_DURATION,
            "Generative AI server request duration such as time-to-last byte or last output token.",
            inf.DURATION_BUCKETS_S,
        )
        self.time_to_first_token = seconds(
            inf.SERVER_TIME_TO_FIRST_TOKEN,
            "Time to generate first token for successful responses.",
            inf.TIME_TO_FIRST_TOKEN_BUCKETS_S,
        )
        self.time_per_output_token = seconds(
            inf.SERVER_TIME_PER_OUTPUT_TOKEN,
            "Time per output token generated after the first token for successful responses.",
            inf.TIME_PER_OUTPUT_TOKEN_BUCKETS_S,
        )


#: One set of instruments per pipeline, shared by every logger over it (a logger made per request
#: would otherwise create five histograms each time); gone with the pipeline.
_metrics_of: weakref.WeakKeyDictionary[Telemetry, _GenAIMetrics] = weakref.WeakKeyDictionary()
_metrics_lock = fork_safe(threading.Lock())


def _pipeline_metrics(telemetry: Telemetry) -> _GenAIMetrics:
    metrics = _metrics_of.get(telemetry)
    if metrics is None:
        with _metrics_lock:
            metrics = _metrics_of.get(telemetry)
            if metrics is None:
                metrics = _metrics_of[telemetry] = _GenAIMetrics(telemetry)
    return metrics


class TelemetryLogger:
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
        telemetry: Telemetry | None = None,
        *,
        stats: Reader | None = None,
        reader: ReaderFactory | None = None,
        provider: str | None = None,
        flush_timeout_millis: float = 10_000,
    ) -> None:
        self._telemetry = telemetry
        self._stats = stats
        self._reader = reader or registered_reader
        self.provider = provider
        self.flush_timeout_millis = flush_timeout_millis
        self._owned: tuple[Telemetry | None, Reader] | None = None  # (pipeline, the reader we opened)
        self._metrics: tuple[Telemetry, _GenAIMetrics] | None = None
        self._lock = fork_safe(threading.Lock())
        self._warned_no_pipeline = False

    @property
    def telemetry(self) -> Telemetry | None:
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

    # -- the spec's async interface (no I/O: these return as soon as the event is queued) --------
    async def log(
        self,
        event_type: str,
        component: str | None = None,
        value: float | None = None,
        metadata: dict[str, Any] | None = None,
        status: str | None = None,
    ) -> bool:
        """Generic telemetry logging with JSONB metadata."""
        return self.record(event_type, component, value, metadata, status)

    async def log_load_latency(self, model_name: str, load_time_seconds: float, success: bool = True) -> bool:
        """Logs VRAM model load latency with sub-second precision."""
        return self.record_load(model_name, load_time_seconds, success=success)

    async def log_thought_latency(
        self,
        model_name: str,
        inference_time_seconds: float,
        tokens_generated: int | None,
        prompt_tokens: int | None = None,
    ) -> bool:
        """Logs inference latency with token-aware efficiency metrics (value = ms per token)."""
        return self.record_thought(model_name, inference_time_seconds, tokens_generated, prompt_tokens)

    async def log_vram_check(self, gpu_id: str, free_mb: float, *, used_mb: float, total_mb: float) -> bool:
        """VRAM_CHECK: value = free VRAM (MB), metadata {used, total, percentage}."""
        return self.record_vram_check(gpu_id, free_mb, used_mb=used_mb, total_mb=total_mb)

    async def log_vram_lockout(self, gpu_id: str, *, trigger_threshold: float, free_vram: float) -> bool:
        """VRAM_LOCKOUT: value 0, metadata {trigger_threshold, free_vram}."""
        return self.record_vram_lockout(gpu_id, trigger_threshold=trigger_threshold, free_vram=free_vram)

    async def get_aggregated_efficiency(
        self, component: str | None = None, hours: int = 24
    ) -> dict[str, Any]:
        """Calculates token-weighted efficiency scores over the time window (see InferenceStats)."""
        return await asyncio.to_thread(self.query, "aggregated_efficiency", component, hours)

    async def get_60day_statistics(self, component: str | None = None) -> dict[str, Any]:
        """60-day trends; ``model_trends`` ordered by efficiency ascending (best first); ``component``
        keeps one model."""
        return await asyncio.to_thread(self.query, "statistics_60day", None, component)

    async def get_telemetry_footprint(self) -> dict[str, Any]:
        """Database footprint; ``table_sizes[0]`` is ``system_telemetry``."""
        return await asyncio.to_thread(self.query, "footprint")

    # -- synchronous forms -------------------------------------------------------------------------
    @_never_raises("log")
    def record(
        self,
        event_type: str,
        component: str | None = None,
        value: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        status: str | None = None,
    ) -> bool:
        """:meth:`log` for synchronous code."""
        problem = (
            _name_problem("event_type", event_type)
            or (None if value is None else _number_problem("value", value))
            or (None if metadata is None or isinstance(metadata, Mapping) else "metadata must be a mapping")
        )
        if problem:
            return self._refuse("log", problem)
        name = inf.EVENT_NAME_BY_TYPE.get(event_type, inf.GENERIC)
        attributes = {
            inf.EVENT_TYPE: event_type,
            inf.COMPONENT: component,
            inf.VALUE: value,
            inf.METADATA: dict(metadata) if metadata else {},
            inf.STATUS: status,
        }
        return self._emit(name, attributes)

    @_never_raises("log_load_latency")
    def record_load(
        self,
        model_name: str,
        load_time_seconds: float,
        success: bool = True,
        *,
        span: bool = True,
        provider: str | None = None,
    ) -> bool:
        """:meth:`log_load_latency` for synchronous code (``span=False``: the caller has one)."""
        problem = _name_problem("model_name", model_name) or _number_problem(
            "load_time_seconds", load_time_seconds
        )
        if problem:
            return self._refuse("log_load_latency", problem)
        seconds = float(load_time_seconds)
        valid = math.isfinite(seconds) and seconds >= 0
        status = (inf.STATUS_OK if success else inf.STATUS_FAILED) if valid else inf.STATUS_INVALID
        provider = provider or self.provider
        attributes = {
            inf.EVENT_TYPE: inf.LOAD_LATENCY_TYPE,
            inf.COMPONENT: model_name,
            inf.VALUE: seconds if valid else None,
            inf.STATUS: status,
            inf.METADATA: {"model": model_name, "load_time_ms": seconds * 1000, "success": bool(success)},
            inf.REQUEST_MODEL: model_name,
            inf.OPERATION_NAME: inf.LOAD_OPERATION,
            inf.PROVIDER_NAME: provider,
            inf.LOAD_SECONDS: seconds if valid else None,
        }
        if span and valid:
            self._past_span(
                inf.LOAD_OPERATION, model_name, seconds, provider, None if success else "load_failed"
            )
        return self._emit(inf.LOAD_LATENCY, attributes)

    @_never_raises("log_thought_latency")
    def record_thought(
        self,
        model_name: str,
        inference_time_seconds: float,
        tokens_generated: int | None,
        prompt_tokens: int | None = None,
        *,
        span: bool = True,
        operation: str | None = None,
        provider: str | None = None,
        error_type: str | None = None,
        time_to_first_token: float | None = None,
    ) -> bool:
        """:meth:`log_thought_latency` for synchronous code. Zero or unknown (``None``) tokens: recorded
        with status ``no_tokens`` and no efficiency score — an unknown count is left out, never written
        as zero; ``error_type``: a failed inference; ``time_to_first_token`` (seconds): a streaming
        response's first token."""
        problem = (
            _name_problem("model_name", model_name)
            or _number_problem("inference_time_seconds", inference_time_seconds)
            or (None if tokens_generated is None else _int_problem("tokens_generated", tokens_generated))
            or (None if prompt_tokens is None else _int_problem("prompt_tokens", prompt_tokens))
            or (
                None
                if time_to_first_token is None
                else _number_problem("time_to_first_token", time_to_first_token)
            )
        )
        if problem:
            return self._refuse("log_thought_latency", problem)
        seconds = float(inference_time_seconds)
        tokens = None if tokens_generated is None else int(tokens_generated)
        prompt = None if prompt_tokens is None else int(prompt_tokens)
        first = None if time_to_first_token is None else float(time_to_first_token)
        ms = seconds * 1000
        score: float | None = None
        if not (
            math.isfinite(ms)
            and ms >= 0
            and (tokens or 0) >= 0
            and (prompt or 0) >= 0
            and (first is None or 0 <= first <= seconds)
        ):
            status = inf.STATUS_INVALID
        elif error_type is not None:
            status = inf.STATUS_FAILED
        elif not tokens:
            status = inf.STATUS_NO_TOKENS
        else:
            status, score = inf.STATUS_OK, ms / tokens
        operation, provider = operation or inf.DEFAULT_OPERATION, provider or self.provider
        metadata: dict[str, Any] = {"model": model_name, "inference_time_ms": ms}
        counts = {inf.INPUT_TOKENS: prompt, inf.OUTPUT_TOKENS: tokens}
        known = {key: value for key, value in counts.items() if value is not None}
        if tokens is not None:
            metadata["tokens_generated"] = tokens
        if prompt is not None:
            metadata["prompt_tokens"] = prompt
        if tokens is not None and prompt is not None:
            metadata["total_tokens"] = tokens + prompt
        metadata["latency_per_token_ms"] = score
        if first is not None and error_type is None:
            metadata["time_to_first_token_s"] = first
        if error_type is not None:
            metadata["error_type"] = error_type
        attributes = {
            inf.EVENT_TYPE: inf.THOUGHT_LATENCY_TYPE,
            inf.COMPONENT: model_name,
            inf.VALUE: score,
            inf.STATUS: status,
            inf.METADATA: metadata,
            inf.REQUEST_MODEL: model_name,
            inf.OPERATION_NAME: operation,
            inf.PROVIDER_NAME: provider,
            **known,
            inf.DURATION: seconds,
            inf.LATENCY_PER_TOKEN_MS: score,
            inf.TIME_TO_FIRST_TOKEN: metadata.get("time_to_first_token_s"),
            inf.ERROR_TYPE: error_type,
        }
        if status != inf.STATUS_INVALID:
            self._genai_metrics(operation, model_name, provider, seconds, tokens, prompt, error_type, first)
            if span:
                self._past_span(operation, model_name, seconds, provider, error_type, known)
        return self._emit(inf.THOUGHT_LATENCY, attributes)

    @_never_raises("log_vram_check")
    def record_vram_check(self, gpu_id: str, free_mb: float, *, used_mb: float, total_mb: float) -> bool:
        problem = (
            _name_problem("gpu_id", gpu_id)
            or _number_problem("free_mb", free_mb)
            or _number_problem("used_mb", used_mb)
            or _number_problem("total_mb", total_mb)
        )
        if problem:
            return self._refuse("log_vram_check", problem)
        percentage = used_mb / total_mb * 100 if total_mb else None
        return self._emit(
            inf.VRAM_CHECK,
            {
                inf.EVENT_TYPE: inf.VRAM_CHECK_TYPE,
                inf.COMPONENT: gpu_id,
                inf.VALUE: free_mb,
                inf.METADATA: {"used": used_mb, "total": total_mb, "percentage": percentage},
            },
        )

    @_never_raises("log_vram_lockout")
    def record_vram_lockout(self, gpu_id: str, *, trigger_threshold: float, free_vram: float) -> bool:
        problem = (
            _name_problem("gpu_id", gpu_id)
            or _number_problem("trigger_threshold", trigger_threshold)
            or _number_problem("free_vram", free_vram)
        )
        if problem:
            return self._refuse("log_vram_lockout", problem)
        return self._emit(
            inf.VRAM_LOCKOUT,
            {
                inf.EVENT_TYPE: inf.VRAM_LOCKOUT_TYPE,
                inf.COMPONENT: gpu_id,
                inf.VALUE: 0.0,
                inf.METADATA: {"trigger_threshold": trigger_threshold, "free_vram": free_vram},
            },
        )

    # -- internals ---------------------------------------------------------------------------------
    def _emit(self, name: str, attributes: dict[str, Any]) -> bool:
        telemetry = self.telemetry
        if telemetry is None:
            if not self._warned_no_pipeline:
                self._warned_no_pipeline = True
                _log.warning("inference telemetry is not recorded: call otel_tele.setup() first")
            return False
        telemetry.events.emit(name, attributes)
        return True

    def _refuse(self, method: str, problem: str) -> bool:
        _log.warning("TelemetryLogger.%s: %s; not recorded", method, problem)
        telemetry = self.telemetry
        if telemetry is not None:
            telemetry.events.stats.rejected()
        return False

    def _count_failed(self, api: str, exc: BaseException) -> None:
        telemetry = self.telemetry
        if telemetry is not None:
            telemetry.events.reject(f"TelemetryLogger.{api}", exc)
        else:
            _log.warning("TelemetryLogger.%s: not recorded (%s)", api, type(exc).__name__)

    def _genai_metrics(
        self,
        operation: str,
        model: str,
        provider: str | None,
        seconds: float,
        tokens: int | None,
        prompt: int | None,
        error_type: str | None,
        time_to_first_token: float | None = None,
    ) -> None:
        telemetry = self.telemetry
        if telemetry is None:
            return
        cached = self._metrics
        if cached is None or cached[0] is not telemetry:
            cached = self._metrics = (telemetry, _pipeline_metrics(telemetry))
        metrics = cached[1]
        labels = {inf.OPERATION_NAME: operation, inf.REQUEST_MODEL: model}
        if provider:
            labels[inf.PROVIDER_NAME] = provider
        outcome = {**labels, inf.ERROR_TYPE: error_type} if error_type else labels
        metrics.duration.record(seconds, outcome)
        metrics.server_duration.record(seconds, outcome)
        if error_type is not None:
            return
        for kind, count in (("input", prompt), ("output", tokens)):
            if count is not None:  # an unknown count is absent, never a zero
                metrics.tokens.record(count, {**labels, inf.TOKEN_TYPE: kind})
        if time_to_first_token is not None:
            metrics.time_to_first_token.record(time_to_first_token, labels)
        # After the first token when it was marked; otherwise the whole duration over every token.
        if time_to_first_token is not None and tokens is not None and tokens > 1:
            metrics.time_per_output_token.record((seconds - time_to_first_token) / (tokens - 1), labels)
        elif time_to_first_token is None and tokens:
            metrics.time_per_output_token.record(seconds / tokens, labels)

    def _past_span(
        self,
        operation: str,
        model: str,
        seconds: float,
        provider: str | None,
        error_type: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """A GenAI span for an operation measured by the caller (it ended now)."""
        telemetry = self.telemetry
        if telemetry is None:
            return
        end = time.time_ns()
        attributes: dict[str, Any] = {
            inf.OPERATION_NAME: operation,
            inf.REQUEST_MODEL: model,
            **(extra or {}),
        }
        if provider:
            attributes[inf.PROVIDER_NAME] = provider
        span = telemetry.tracer("otel_tele.inference").start_span(
            f"{operation} {model}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=end - int(seconds * 1e9),
        )
        if error_type:
            span.set_attribute(inf.ERROR_TYPE, error_type)
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end)

    # -- queries -----------------------------------------------------------------------------------
    @property
    def stats(self) -> Reader:
        """The query API this logger reads (see :mod:`otel_tele.inference_stats`)."""
        if self._stats is not None:
            return self._stats
        telemetry = self.telemetry
        with self._lock:
            if self._owned is not None and self._owned[0] is telemetry:
                return self._owned[1]
            if self._owned is not None:
                self._owned[1].close()
                self._owned = None
            stats = self._reader(telemetry)
            self._owned = (telemetry, stats)
            return stats

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
        with self._lock:
            owned, self._owned = self._owned, None
        if owned is not None:
            owned[1].close()


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
