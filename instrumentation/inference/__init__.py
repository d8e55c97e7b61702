"""Model-serving telemetry (spec 002): load latency, token-aware thought latency, VRAM, statistics.

Usage::

    import otel_tele
    from otel_tele.instrumentation.inference import get_telemetry_logger, load_timer, thought_timer

    otel_tele.setup(service_name="llm-gateway")   # OTEL_TELE_POSTGRES_DSN → PostgreSQL, else embedded
    telemetry = get_telemetry_logger()             # one per process; set_telemetry_logger() injects

    with load_timer("gemma2:27b"):
        ollama.pull("gemma2:27b")
    with thought_timer("gemma2:27b") as t:
        reply = ollama.generate(model="gemma2:27b", prompt=prompt)
        t.tokens(generated=reply["eval_count"], prompt=reply["prompt_eval_count"])

    # the spec's async interface
    start = telemetry.start_timer()
    ...
    await telemetry.log_thought_latency("gemma2:27b", telemetry.measure_latency(start), tokens_generated=412)
    stats = await telemetry.get_60day_statistics()
    best_model = stats["model_trends"][0]

Logging never touches the database: each call emits one domain event (a few microseconds) and returns
``True`` once it is queued; the ``postgres`` sink writes it. A GenAI span (``text_completion
gemma2:27b``) and the GenAI client histograms (``gen_ai.client.operation.duration``,
``gen_ai.client.token.usage``) are recorded too. Invalid input (wrong types) is refused with a logged
warning and ``False``; out-of-range measurements (negative, NaN) are kept with status ``invalid``.
The ``get_*`` queries flush the pipeline first, so they see everything logged before the call, and run
in a worker thread. They read through a reader (``TelemetryLogger(reader=...)``; default: the one the
``inference`` domain registers, :mod:`otel_tele.inference_stats`): this package speaks only OpenTelemetry
and never touches a sink or its storage. Pruning is the store's maintenance
(``otel-tele inference prune``, :mod:`otel_tele.exporters.postgres.maintenance`).
"""

from ._logger import (
    Reader,
    ReaderFactory,
    TelemetryLogger,
    get_telemetry_logger,
    registered_reader,
    set_telemetry_logger,
)
from ._timers import LoadTimer, Recorder, ThoughtTimer, load_timer, thought_timer, tokens_of

__all__ = [
    "LoadTimer",
    "Reader",
    "ReaderFactory",
    "Recorder",
    "TelemetryLogger",
    "ThoughtTimer",
    "get_telemetry_logger",
    "load_timer",
    "registered_reader",
    "set_telemetry_logger",
    "thought_timer",
    "tokens_of",
]
