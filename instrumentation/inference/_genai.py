"""The GenAI semantic conventions' signals of an inference: the client and server histograms and a
span for an operation the caller measured (it ended now)."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_tele._internal import fork_safe
from otel_tele._pipeline import Pipeline
from otel_tele.semconv import inference as inf


class GenAIMetrics:
    """The GenAI client and server histograms of one pipeline (advisory buckets from the conventions)."""

    def __init__(self, telemetry: Pipeline) -> None:
        # With no reader on the pipeline a point goes nowhere: five SDK records a call (~20 µs) saved.
        self.observed = telemetry.metrics_observed
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

    def record(
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
        if not self.observed:
            return
        labels = {inf.OPERATION_NAME: operation, inf.REQUEST_MODEL: model}
        if provider:
            labels[inf.PROVIDER_NAME] = provider
        outcome = {**labels, inf.ERROR_TYPE: error_type} if error_type else labels
        self.duration.record(seconds, outcome)
        self.server_duration.record(seconds, outcome)
        if error_type is not None:
            return
        for kind, count in (("input", prompt), ("output", tokens)):
            if count is not None:  # an unknown count is absent, never a zero
                self.tokens.record(count, {**labels, inf.TOKEN_TYPE: kind})
        if time_to_first_token is not None:
            self.time_to_first_token.record(time_to_first_token, labels)
        # After the first token when it was marked; otherwise the whole duration over every token.
        if time_to_first_token is not None and tokens is not None and tokens > 1:
            self.time_per_output_token.record((seconds - time_to_first_token) / (tokens - 1), labels)
        elif time_to_first_token is None and tokens:
            self.time_per_output_token.record(seconds / tokens, labels)


#: One set of instruments per pipeline, shared by every logger over it (a logger made per request
#: would otherwise create five histograms each time); gone with the pipeline.
_metrics_of: weakref.WeakKeyDictionary[Pipeline, GenAIMetrics] = weakref.WeakKeyDictionary()
_metrics_lock = fork_safe(threading.Lock())


def pipeline_metrics(telemetry: Pipeline) -> GenAIMetrics:
    metrics = _metrics_of.get(telemetry)
    if metrics is None:
        with _metrics_lock:
            metrics = _metrics_of.get(telemetry)
            if metrics is None:
                metrics = _metrics_of[telemetry] = GenAIMetrics(telemetry)
    return metrics


def past_span(
    telemetry: Pipeline,
    operation: str,
    model: str,
    seconds: float,
    provider: str | None,
    error_type: str | None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """A GenAI span for an operation measured by the caller (it ended now), when a span processor
    would receive it (building one nobody receives is most of a recording call's cost)."""
    if not telemetry.spans_observed():
        return
    end = time.time_ns()
    attributes: dict[str, Any] = {inf.OPERATION_NAME: operation, inf.REQUEST_MODEL: model, **(extra or {})}
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
