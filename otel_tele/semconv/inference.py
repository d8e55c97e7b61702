"""Model-serving vocabulary (spec 002), on the OTel GenAI semantic conventions where they exist."""

from __future__ import annotations

from ._types import Attr, AttrType, Event, Metric

I, F, S, B, J = AttrType.INT, AttrType.FLOAT, AttrType.STR, AttrType.BOOL, AttrType.JSON

# GenAI semantic conventions
OPERATION_NAME = "gen_ai.operation.name"
REQUEST_MODEL = "gen_ai.request.model"
TOKEN_TYPE = "gen_ai.token.type"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
OPERATION_DURATION = "gen_ai.client.operation.duration"
TOKEN_USAGE = "gen_ai.client.token.usage"

# Our own (spec 002 system_telemetry columns)
EVENT_TYPE = "inference.event_type"
COMPONENT = "inference.component"
VALUE = "inference.value"
METADATA = "inference.metadata"
STATUS = "inference.status"
LOAD_SECONDS = "inference.load.duration"
LATENCY_PER_TOKEN_MS = "inference.latency_per_token"

# Event names (spec 002 appendix A event types, plus the generic log())
LOAD_LATENCY = "inference.load_latency"
THOUGHT_LATENCY = "inference.thought_latency"
VRAM_CHECK = "inference.vram_check"
VRAM_LOCKOUT = "inference.vram_lockout"
GENERIC = "inference.telemetry"

_ROW = (Attr(EVENT_TYPE, S), Attr(COMPONENT, S), Attr(VALUE, F), Attr(METADATA, J), Attr(STATUS, S))
EVENTS: tuple[Event, ...] = (
    Event(LOAD_LATENCY, (*_ROW, Attr(REQUEST_MODEL, S), Attr(LOAD_SECONDS, F, "s")), "a model load"),
    Event(THOUGHT_LATENCY, (*_ROW, Attr(REQUEST_MODEL, S), Attr(INPUT_TOKENS, I), Attr(OUTPUT_TOKENS, I),
                            Attr(LATENCY_PER_TOKEN_MS, F, "ms")), "an inference"),
    Event(VRAM_CHECK, _ROW, "free VRAM sample"),
    Event(VRAM_LOCKOUT, _ROW, "VRAM lockout"),
    Event(GENERIC, _ROW, "TelemetryLogger.log() with any event_type"),
)

METRICS: tuple[Metric, ...] = (
    Metric("inference.load.duration", "histogram", "s", "model load duration", LOAD_LATENCY,
           value=LOAD_SECONDS, labels=(REQUEST_MODEL, STATUS),
           buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160)),
    Metric("inference.latency_per_token", "histogram", "ms", "inference latency per generated token",
           THOUGHT_LATENCY, value=LATENCY_PER_TOKEN_MS, labels=(REQUEST_MODEL,),
           buckets=(1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000)),
    Metric("inference.vram.free", "gauge", "MBy", "latest free VRAM", VRAM_CHECK, value=VALUE,
           labels=(COMPONENT,)),
    Metric("inference.vram.lockouts", "counter", "{lockout}", "VRAM lockouts", VRAM_LOCKOUT,
           labels=(COMPONENT,)),
)
