"""Model-serving vocabulary (spec 002), on the OTel GenAI semantic conventions where they exist.

Every spec event (appendix A) is one log record carrying the ``system_telemetry`` row as attributes
(``inference.event_type``, ``inference.component``, ``inference.value``, ``inference.metadata``,
``inference.status``) plus the GenAI keys that describe it. Spans use the GenAI conventions
(``{gen_ai.operation.name} {gen_ai.request.model}``); the two GenAI client histograms are recorded next
to those spans (``gen_ai.client.token.usage`` needs one point per token type, which an event-fed metric
cannot express).
"""

from __future__ import annotations

from collections.abc import Mapping

from ._types import Attr, AttrType, Event, Metric

I, F, S, J = AttrType.INT, AttrType.FLOAT, AttrType.STR, AttrType.JSON  # noqa: E741

# GenAI semantic conventions
OPERATION_NAME = "gen_ai.operation.name"
REQUEST_MODEL = "gen_ai.request.model"
PROVIDER_NAME = "gen_ai.provider.name"
TOKEN_TYPE = "gen_ai.token.type"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
ERROR_TYPE = "error.type"
OPERATION_DURATION = "gen_ai.client.operation.duration"
TOKEN_USAGE = "gen_ai.client.token.usage"
SERVER_REQUEST_DURATION = "gen_ai.server.request.duration"
SERVER_TIME_TO_FIRST_TOKEN = "gen_ai.server.time_to_first_token"
SERVER_TIME_PER_OUTPUT_TOKEN = "gen_ai.server.time_per_output_token"
#: Advisory buckets the GenAI conventions recommend (``gen_ai.client.operation.duration`` and
#: ``gen_ai.server.request.duration`` share the duration ones).
DURATION_BUCKETS_S = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
TIME_TO_FIRST_TOKEN_BUCKETS_S = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
TIME_PER_OUTPUT_TOKEN_BUCKETS_S = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
#: ``gen_ai.operation.name`` of an inference unless the caller says otherwise, and of a model load
#: (not a GenAI operation; a custom value, as the conventions allow).
DEFAULT_OPERATION = "text_completion"
LOAD_OPERATION = "load_model"

# Our own: the spec 002 ``system_telemetry`` columns, and measurements the GenAI conventions lack
EVENT_TYPE = "inference.event_type"
COMPONENT = "inference.component"
VALUE = "inference.value"
METADATA = "inference.metadata"
STATUS = "inference.status"
DURATION = "inference.duration"
LOAD_SECONDS = "inference.load.duration"
LATENCY_PER_TOKEN_MS = "inference.latency_per_token"
TIME_TO_FIRST_TOKEN = "inference.time_to_first_token"  # seconds, when the caller marked the first token
ALERT_NAME = "inference.alert.name"
ALERT_THRESHOLD = "inference.alert.threshold"
TABLE_BYTES = "inference.telemetry.size"
TABLE_ROWS = "inference.telemetry.rows"
EFFICIENCY_CHANGE = "inference.efficiency.change"

# Values of :data:`STATUS`
STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_NO_TOKENS = (
    "no_tokens"  # zero or unknown tokens generated: no efficiency score, never a division error
)
STATUS_INVALID = "invalid"  # negative or non-finite measurement, kept in metadata
FAILURE_STATUSES = frozenset({STATUS_FAILED, "error"})

# Spec event types (appendix A) and the event names that carry them
LOAD_LATENCY_TYPE = "LOAD_LATENCY"
THOUGHT_LATENCY_TYPE = "THOUGHT_LATENCY"
VRAM_CHECK_TYPE = "VRAM_CHECK"
VRAM_LOCKOUT_TYPE = "VRAM_LOCKOUT"

LOAD_LATENCY = "inference.load_latency"
THOUGHT_LATENCY = "inference.thought_latency"
VRAM_CHECK = "inference.vram_check"
VRAM_LOCKOUT = "inference.vram_lockout"
GENERIC = "inference.telemetry"  # TelemetryLogger.log() with any other event_type
FOOTPRINT = "inference.footprint"  # a footprint evaluation (feeds gauges; not a table row)
EFFICIENCY_TREND = "inference.efficiency_trend"  # a model's recent vs 60-day efficiency
ALERT = "inference.alert"  # a spec 9.2 threshold crossed (severity WARN)

#: Spec event type → event name; any other type travels as :data:`GENERIC`.
EVENT_NAME_BY_TYPE: Mapping[str, str] = {
    LOAD_LATENCY_TYPE: LOAD_LATENCY,
    THOUGHT_LATENCY_TYPE: THOUGHT_LATENCY,
    VRAM_CHECK_TYPE: VRAM_CHECK,
    VRAM_LOCKOUT_TYPE: VRAM_LOCKOUT,
}
#: The spec's events (appendix A): each carries the row attributes (event type, component, value,
#: metadata, status), with the event type it stands for (:data:`GENERIC` carries the caller's).
SPEC_EVENT_TYPES: Mapping[str, str | None] = {
    **{name: event_type for event_type, name in EVENT_NAME_BY_TYPE.items()},
    GENERIC: None,
}
#: The former name of :data:`SPEC_EVENT_TYPES`; which events a sink stores is the sink's to say.
ROW_EVENTS = SPEC_EVENT_TYPES

_ROW = (Attr(EVENT_TYPE, S), Attr(COMPONENT, S), Attr(VALUE, F), Attr(METADATA, J), Attr(STATUS, S))
_GENAI = (Attr(REQUEST_MODEL, S), Attr(OPERATION_NAME, S), Attr(PROVIDER_NAME, S))
EVENTS: tuple[Event, ...] = (
    Event(
        LOAD_LATENCY,
        (*_ROW, *_GENAI, Attr(LOAD_SECONDS, F, "s")),
        "a model load: value = load time (s), metadata {model, load_time_ms}",
    ),
    Event(
        THOUGHT_LATENCY,
        (
            *_ROW,
            *_GENAI,
            Attr(INPUT_TOKENS, I, "{token}"),
            Attr(OUTPUT_TOKENS, I, "{token}"),
            Attr(DURATION, F, "s"),
            Attr(LATENCY_PER_TOKEN_MS, F, "ms"),
            Attr(TIME_TO_FIRST_TOKEN, F, "s"),
            Attr(ERROR_TYPE, S),
        ),
        "an inference: value = efficiency score (ms per generated token)",
    ),
    Event(
        VRAM_CHECK,
        _ROW,
        "free VRAM sample: component = GPU id, value = free MB, metadata {used, total, percentage}",
    ),
    Event(VRAM_LOCKOUT, _ROW, "VRAM lockout: value 0, metadata {trigger_threshold, free_vram}"),
    Event(GENERIC, _ROW, "TelemetryLogger.log() with any other event_type"),
    Event(
        FOOTPRINT,
        (Attr(TABLE_BYTES, I, "By"), Attr(TABLE_ROWS, I, "{row}")),
        "a footprint evaluation of the system_telemetry table",
    ),
    Event(
        EFFICIENCY_TREND,
        (Attr(REQUEST_MODEL, S), Attr(EFFICIENCY_CHANGE, F, "1")),
        "a model's last-24-hour efficiency against its 60-day baseline (+0.2 = 20 % slower per token)",
    ),
    Event(
        ALERT,
        (
            Attr(ALERT_NAME, S),
            Attr(VALUE, F),
            Attr(ALERT_THRESHOLD, F),
            Attr(COMPONENT, S),
            Attr(METADATA, J),
        ),
        "a spec 9.2 alert threshold was crossed",
    ),
)

METRICS: tuple[Metric, ...] = (
    Metric(
        "inference.load.duration",
        "histogram",
        "s",
        "model load duration",
        LOAD_LATENCY,
        value=LOAD_SECONDS,
        labels=(REQUEST_MODEL, STATUS),
        buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160),
    ),
    Metric(
        "inference.latency_per_token",
        "histogram",
        "ms",
        "inference latency per generated token",
        THOUGHT_LATENCY,
        value=LATENCY_PER_TOKEN_MS,
        labels=(REQUEST_MODEL,),
        buckets=(1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000),
    ),
    Metric(
        "inference.vram.free",
        "gauge",
        "MBy",
        "latest free VRAM",
        VRAM_CHECK,
        value=VALUE,
        labels=(COMPONENT,),
    ),
    Metric(
        "inference.vram.lockouts", "counter", "{lockout}", "VRAM lockouts", VRAM_LOCKOUT, labels=(COMPONENT,)
    ),
    Metric(
        "inference.telemetry.size",
        "gauge",
        "By",
        "system_telemetry size on disk at the last footprint",
        FOOTPRINT,
        value=TABLE_BYTES,
    ),
    Metric(
        "inference.telemetry.rows",
        "gauge",
        "{row}",
        "system_telemetry rows at the last footprint",
        FOOTPRINT,
        value=TABLE_ROWS,
    ),
    Metric(
        "inference.efficiency.change",
        "gauge",
        "1",
        "last-24-hour ms/token against the 60-day baseline, as a fraction (alert above 0.2)",
        EFFICIENCY_TREND,
        value=EFFICIENCY_CHANGE,
        labels=(REQUEST_MODEL,),
    ),
    Metric(
        "inference.alerts",
        "counter",
        "{alert}",
        "alert thresholds crossed",
        ALERT,
        labels=(ALERT_NAME, COMPONENT),
    ),
)
