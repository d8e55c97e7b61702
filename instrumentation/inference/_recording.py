"""Spec 002's synchronous recording calls (``record``, ``record_load``, ``record_thought``,
``record_vram_*``): check the arguments, emit one event, and the GenAI span and histograms.

A base of :class:`~._logger.TelemetryLogger`, which gives it the pipeline (``telemetry``) and the
default ``provider``. A call never raises: bad input is refused (a logged warning, counted rejected,
``False``); a failure inside is counted failed and returns ``False``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from otel_tele._pipeline import Pipeline
from otel_tele.semconv import inference as inf

from . import _records as records
from ._genai import GenAIMetrics, past_span, pipeline_metrics
from ._records import int_problem, name_problem, number_problem

_log = logging.getLogger("otel_tele.inference")
_Call = TypeVar("_Call", bound=Callable[..., bool])


def _never_raises(api: str) -> Callable[[_Call], _Call]:
    """A recording call that fails returns False, counted and logged, instead of raising."""

    def wrap(method: _Call) -> _Call:
        @functools.wraps(method)
        def call(self: RecordingCalls, *args: Any, **kwargs: Any) -> bool:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                self._count_failed(api, exc)
                return False

        return cast(_Call, call)

    return wrap


class RecordingCalls:
    """The synchronous recording calls over ``telemetry`` (None: nothing is recorded, warned once)."""

    provider: str | None
    _warned_no_pipeline = False
    _metrics: tuple[Pipeline, GenAIMetrics] | None = None

    @property
    def telemetry(self) -> Pipeline | None:
        raise NotImplementedError

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
            name_problem("event_type", event_type)
            or (None if value is None else number_problem("value", value))
            or (None if metadata is None or isinstance(metadata, Mapping) else "metadata must be a mapping")
        )
        if problem:
            return self._refuse("log", problem)
        return self._emit(*records.generic(event_type, component, value, metadata, status))

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
        problem = name_problem("model_name", model_name) or number_problem(
            "load_time_seconds", load_time_seconds
        )
        if problem:
            return self._refuse("log_load_latency", problem)
        seconds, provider = float(load_time_seconds), provider or self.provider
        valid, attributes = records.load(model_name, seconds, success, provider)
        telemetry = self.telemetry
        if span and valid and telemetry is not None:
            error = None if success else "load_failed"
            past_span(telemetry, inf.LOAD_OPERATION, model_name, seconds, provider, error)
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
            name_problem("model_name", model_name)
            or number_problem("inference_time_seconds", inference_time_seconds)
            or (None if tokens_generated is None else int_problem("tokens_generated", tokens_generated))
            or (None if prompt_tokens is None else int_problem("prompt_tokens", prompt_tokens))
            or (
                None
                if time_to_first_token is None
                else number_problem("time_to_first_token", time_to_first_token)
            )
        )
        if problem:
            return self._refuse("log_thought_latency", problem)
        seconds = float(inference_time_seconds)
        tokens = None if tokens_generated is None else int(tokens_generated)
        prompt = None if prompt_tokens is None else int(prompt_tokens)
        first = None if time_to_first_token is None else float(time_to_first_token)
        operation, provider = operation or inf.DEFAULT_OPERATION, provider or self.provider
        status, known, attributes = records.thought(
            model_name, seconds, tokens, prompt, first, operation, provider, error_type
        )
        telemetry = self.telemetry
        if status != inf.STATUS_INVALID and telemetry is not None:
            metrics = self._genai_metrics(telemetry)
            if metrics.observed:  # asked here too: the calls' arguments cost as much as the check
                metrics.record(operation, model_name, provider, seconds, tokens, prompt, error_type, first)
            if span and telemetry.spans_observed():
                past_span(telemetry, operation, model_name, seconds, provider, error_type, known)
        return self._emit(inf.THOUGHT_LATENCY, attributes)

    @_never_raises("log_vram_check")
    def record_vram_check(self, gpu_id: str, free_mb: float, *, used_mb: float, total_mb: float) -> bool:
        problem = (
            name_problem("gpu_id", gpu_id)
            or number_problem("free_mb", free_mb)
            or number_problem("used_mb", used_mb)
            or number_problem("total_mb", total_mb)
        )
        if problem:
            return self._refuse("log_vram_check", problem)
        return self._emit(inf.VRAM_CHECK, records.vram_check(gpu_id, free_mb, used_mb, total_mb))

    @_never_raises("log_vram_lockout")
    def record_vram_lockout(self, gpu_id: str, *, trigger_threshold: float, free_vram: float) -> bool:
        problem = (
            name_problem("gpu_id", gpu_id)
            or number_problem("trigger_threshold", trigger_threshold)
            or number_problem("free_vram", free_vram)
        )
        if problem:
            return self._refuse("log_vram_lockout", problem)
        return self._emit(inf.VRAM_LOCKOUT, records.vram_lockout(gpu_id, trigger_threshold, free_vram))

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

    def _genai_metrics(self, telemetry: Pipeline) -> GenAIMetrics:
        cached = self._metrics
        if cached is None or cached[0] is not telemetry:
            cached = self._metrics = (telemetry, pipeline_metrics(telemetry))
        return cached[1]
