"""TelemetryLogger and the timers: events per spec appendix A, GenAI spans and metrics, bad input."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import pytest
from otel_tele.instrumentation import inference
from otel_tele.instrumentation.inference import (
    TelemetryLogger,
    get_telemetry_logger,
    load_timer,
    set_telemetry_logger,
    thought_timer,
)

from otel_tele import testing
from otel_tele.semconv import inference as inf


def only(cap: testing.Capture, name: str) -> dict[str, Any]:
    cap.flush()
    events = cap.events(name)
    assert len(events) == 1, events
    return events[0]


def meta(event: dict[str, Any]) -> dict[str, Any]:
    import json

    parsed: dict[str, Any] = json.loads(event[inf.METADATA])
    return parsed


def test_thought_latency_event_matches_appendix_a(capture: testing.Capture) -> None:
    """THOUGHT_LATENCY: component = model, value = ms per token, metadata per appendix A."""
    logger = TelemetryLogger(capture.telemetry)
    assert asyncio.run(logger.log_thought_latency("gemma2:27b", 1.5, 300, prompt_tokens=20)) is True
    event = only(capture, inf.THOUGHT_LATENCY)
    assert (event[inf.EVENT_TYPE], event[inf.COMPONENT], event[inf.STATUS]) == (
        "THOUGHT_LATENCY",
        "gemma2:27b",
        "ok",
    )
    assert event[inf.VALUE] == pytest.approx(5.0)
    assert meta(event) == {
        "model": "gemma2:27b",
        "inference_time_ms": 1500.0,
        "tokens_generated": 300,
        "prompt_tokens": 20,
        "total_tokens": 320,
        "latency_per_token_ms": 5.0,
    }
    assert (event[inf.INPUT_TOKENS], event[inf.OUTPUT_TOKENS]) == (20, 300)
    span = capture.spans("text_completion gemma2:27b")[0]
    assert span.attributes[inf.OPERATION_NAME] == "text_completion"
    assert span.attributes[inf.REQUEST_MODEL] == "gemma2:27b"
    assert (span.end_time - span.start_time) == pytest.approx(1.5e9, rel=1e-6)
    assert capture.metric_value(inf.TOKEN_USAGE, **{inf.TOKEN_TYPE: "output"}) == 300
    assert capture.metric_value(inf.TOKEN_USAGE, **{inf.TOKEN_TYPE: "input"}) == 20
    assert capture.metric_value(inf.OPERATION_DURATION, **{inf.REQUEST_MODEL: "gemma2:27b"}) == pytest.approx(
        1.5
    )
    assert capture.metric_value(
        "inference.latency_per_token", **{inf.REQUEST_MODEL: "gemma2:27b"}
    ) == pytest.approx(5.0)


def test_zero_tokens_is_a_status_not_an_error(capture: testing.Capture) -> None:
    """Zero generated tokens: recorded with status no_tokens and no efficiency score."""
    logger = TelemetryLogger(capture.telemetry)
    assert logger.record_thought("m", 0.5, 0)
    event = only(capture, inf.THOUGHT_LATENCY)
    assert event[inf.STATUS] == inf.STATUS_NO_TOKENS and inf.VALUE not in event
    assert meta(event)["latency_per_token_ms"] is None and meta(event)["inference_time_ms"] == 500.0


def test_load_latency_and_vram_events(capture: testing.Capture) -> None:
    """LOAD_LATENCY (seconds + load_time_ms), VRAM_CHECK (free MB + used/total/%), VRAM_LOCKOUT (0)."""
    logger = TelemetryLogger(capture.telemetry)
    assert asyncio.run(logger.log_load_latency("m", 2.25, success=False))
    assert asyncio.run(logger.log_vram_check("gpu0", 4000.0, used_mb=20000.0, total_mb=24000.0))
    assert asyncio.run(logger.log_vram_lockout("gpu0", trigger_threshold=5000.0, free_vram=4000.0))
    load = only(capture, inf.LOAD_LATENCY)
    assert (load[inf.VALUE], load[inf.STATUS], meta(load)["load_time_ms"]) == (2.25, "failed", 2250.0)
    vram = only(capture, inf.VRAM_CHECK)
    assert (vram[inf.COMPONENT], vram[inf.VALUE]) == ("gpu0", 4000.0)
    assert meta(vram) == {"used": 20000.0, "total": 24000.0, "percentage": pytest.approx(83.333333)}
    lockout = only(capture, inf.VRAM_LOCKOUT)
    assert lockout[inf.VALUE] == 0.0 and meta(lockout) == {"trigger_threshold": 5000.0, "free_vram": 4000.0}
    assert capture.metric_value("inference.vram.free", **{inf.COMPONENT: "gpu0"}) == 4000.0
    assert capture.metric_value("inference.vram.lockouts") == 1
    assert capture.metric_value("inference.load.duration", **{inf.STATUS: "failed"}) == 2.25
    assert capture.spans("load_model m")[0].status.status_code.name == "ERROR"


def test_generic_log_routes_spec_event_types(capture: testing.Capture) -> None:
    """log() with a spec event type uses that event; any other type is the generic event."""
    logger = TelemetryLogger(capture.telemetry)
    assert asyncio.run(logger.log("VRAM_CHECK", "gpu1", 123.0, {"used": 1, "total": 2}))
    assert asyncio.run(logger.log("CACHE_HIT", "router", 1.0, status="ok"))
    assert only(capture, inf.VRAM_CHECK)[inf.COMPONENT] == "gpu1"
    generic = only(capture, inf.GENERIC)
    assert (generic[inf.EVENT_TYPE], generic[inf.STATUS]) == ("CACHE_HIT", "ok")


def test_bad_input_returns_false_with_a_warning(
    capture: testing.Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """Wrong types are refused (False + warning); NaN or negative measurements are kept as invalid."""
    logger = TelemetryLogger(capture.telemetry)
    with caplog.at_level(logging.WARNING, "otel_tele.inference"):
        assert not logger.record_thought("m", "1s", 10)  # type: ignore[arg-type]
        assert not logger.record_thought("m", 1.0, 2.5)  # type: ignore[arg-type]
        assert not logger.record_thought("", 1.0, 1)
        assert not logger.record_load(None, 1.0)  # type: ignore[arg-type]
        assert not logger.record_vram_check("gpu0", "lots", used_mb=1, total_mb=2)  # type: ignore[arg-type]
        assert not logger.record("X", value="high")  # type: ignore[arg-type]
    assert caplog.text.count("not recorded") == 6
    assert logger.record_thought("m", math.nan, 10)
    assert logger.record_load("m", -1.0)
    capture.flush()
    assert capture.events(inf.THOUGHT_LATENCY)[0][inf.STATUS] == inf.STATUS_INVALID
    assert capture.events(inf.LOAD_LATENCY)[0][inf.STATUS] == inf.STATUS_INVALID


def test_without_a_pipeline_logging_returns_false(caplog: pytest.LogCaptureFixture) -> None:
    """No setup(): log calls return False (one warning), never raise."""
    logger = TelemetryLogger()
    with caplog.at_level(logging.WARNING, "otel_tele.inference"):
        assert not asyncio.run(logger.log_thought_latency("m", 0.1, 10))
        assert not logger.record_load("m", 1.0)
        with thought_timer("m", logger=logger) as timer:
            timer.tokens(5)
    assert timer.seconds is not None and timer.seconds >= 0
    assert caplog.text.count("call otel_tele.setup() first") == 1


def test_timer_precision_uses_perf_counter() -> None:
    """start_timer/measure_latency are perf_counter based: sub-millisecond resolution, monotonic."""
    start = TelemetryLogger.start_timer()
    first = TelemetryLogger.measure_latency(start)
    time.sleep(0.002)
    second = TelemetryLogger.measure_latency(start)
    assert 0 <= first < second and second >= 0.002
    assert time.get_clock_info("perf_counter").resolution < 1e-6


def test_thought_timer_context_manager_sync_and_async(capture: testing.Capture) -> None:
    """with / async with: span per GenAI conventions, event in the span's trace, tokens from t.tokens()."""
    logger = TelemetryLogger(capture.telemetry)
    with logger.thought_timer("m1") as timer:
        timer.tokens(generated=40, prompt=4)

    async def run() -> None:
        async with logger.thought_timer("m2", operation="chat") as atimer:
            await asyncio.sleep(0)
            atimer.tokens(generated=8)

    asyncio.run(run())
    capture.flush()
    sync_span, async_span = capture.spans("text_completion m1")[0], capture.spans("chat m2")[0]
    assert sync_span.kind.name == "CLIENT" and async_span.attributes[inf.OPERATION_NAME] == "chat"
    events = {e[inf.COMPONENT]: e for e in capture.events(inf.THOUGHT_LATENCY)}
    assert events["m1"][inf.OUTPUT_TOKENS] == 40 and events["m2"][inf.OUTPUT_TOKENS] == 8
    records = {
        r.log_record.attributes[inf.COMPONENT]: r.log_record
        for r in capture.logs()
        if r.log_record.event_name == inf.THOUGHT_LATENCY
    }
    assert records["m1"].trace_id == sync_span.context.trace_id
    assert records["m1"].span_id == sync_span.context.span_id
    assert meta(events["m1"])["inference_time_ms"] == pytest.approx(
        (sync_span.end_time - sync_span.start_time) / 1e6, abs=5
    )


def test_decorators_sync_and_async_read_tokens_from_results(capture: testing.Capture) -> None:
    """@thought_timer reads Ollama/OpenAI token counts from the result; @load_timer times loads."""
    logger = TelemetryLogger(capture.telemetry)

    @thought_timer("ollama-model", logger=logger)
    def generate() -> dict[str, int]:
        return {"eval_count": 12, "prompt_eval_count": 3}

    @thought_timer("openai-model", logger=logger)
    async def chat() -> dict[str, Any]:
        return {"usage": {"completion_tokens": 7, "prompt_tokens": 2}}

    @thought_timer("custom", logger=logger, tokens_from=lambda text: len(text.split()))
    def words() -> str:
        return "one two three"

    @load_timer("ollama-model", logger=logger)
    async def load() -> None:
        await asyncio.sleep(0)

    assert generate() == {"eval_count": 12, "prompt_eval_count": 3}
    generate()
    asyncio.run(chat())
    words()
    asyncio.run(load())
    capture.flush()
    tokens = [
        (e[inf.COMPONENT], e[inf.OUTPUT_TOKENS], e.get(inf.INPUT_TOKENS))
        for e in capture.events(inf.THOUGHT_LATENCY)
    ]
    assert tokens == [
        ("ollama-model", 12, 3),
        ("ollama-model", 12, 3),
        ("openai-model", 7, 2),
        ("custom", 3, None),  # the prompt count is unknown: absent, not zero
    ]
    assert len(capture.spans("text_completion ollama-model")) == 2  # a fresh timer per call
    assert only(capture, inf.LOAD_LATENCY)[inf.STATUS] == "ok"
    assert len(capture.spans("load_model ollama-model")) == 1


def test_exception_in_timer_marks_failure_and_propagates(capture: testing.Capture) -> None:
    """An exception inside a timer is recorded (status failed, error.type) and re-raised unchanged."""
    logger = TelemetryLogger(capture.telemetry)
    with pytest.raises(TimeoutError), logger.thought_timer("m") as timer:
        timer.tokens(3)
        raise TimeoutError("model hung")
    with pytest.raises(RuntimeError), logger.load_timer("m"):
        raise RuntimeError("out of memory")
    event = only(capture, inf.THOUGHT_LATENCY)
    assert event[inf.STATUS] == "failed" and inf.VALUE not in event
    assert only(capture, inf.LOAD_LATENCY)[inf.STATUS] == "failed"
    span = capture.spans("text_completion m")[0]
    assert span.status.status_code.name == "ERROR" and span.attributes[inf.ERROR_TYPE] == "TimeoutError"
    assert capture.metric_value(inf.OPERATION_DURATION, **{inf.ERROR_TYPE: "TimeoutError"}) is not None


def test_one_logger_per_process_and_injectable() -> None:
    """get_telemetry_logger() is a process singleton; set_telemetry_logger() injects a replacement."""
    first = get_telemetry_logger()
    assert get_telemetry_logger() is first
    replacement = TelemetryLogger()
    previous = set_telemetry_logger(replacement)
    try:
        assert previous is first and get_telemetry_logger() is replacement
        assert load_timer("m").logger is replacement
    finally:
        set_telemetry_logger(None)
    assert inference.get_telemetry_logger() is not replacement


def test_logging_is_fast_and_never_blocks_on_storage(capture: testing.Capture) -> None:
    """log_* only queue an event: 1,000 calls complete and every one is delivered after a flush."""
    logger = TelemetryLogger(capture.telemetry)

    async def burst() -> list[bool]:
        return [await logger.log_thought_latency(f"m{i % 4}", 0.001 * (i + 1), i + 1) for i in range(1000)]

    assert all(asyncio.run(burst()))
    capture.flush()
    assert len(capture.events(inf.THOUGHT_LATENCY)) == 1000


def test_tracer_and_instruments_are_looked_up_once_per_pipeline(capture: testing.Capture) -> None:
    """Issue 14: a timed inference asks no provider for its tracer or histograms per call; a second
    logger over the same pipeline shares its instruments; a forked child's pipeline asks afresh and
    still records spans in the same trace as its events."""
    telemetry = capture.telemetry
    tracer = telemetry.tracer("otel_tele.inference")
    assert telemetry.tracer("otel_tele.inference") is tracer
    assert telemetry.tracer("otel_tele.inference", "2") is not tracer
    first, second = TelemetryLogger(telemetry), TelemetryLogger(telemetry)
    for logger in (first, second):
        with logger.thought_timer("m1") as timer:
            timer.tokens(generated=10, prompt=2)
    assert first._metrics is not None and second._metrics is not None
    assert first._metrics[1] is second._metrics[1]
    telemetry._reinit_after_fork()  # what the at-fork hook runs in the child
    assert telemetry._tracers == {}
    with first.thought_timer("m2") as timer:
        timer.tokens(generated=10)
    capture.flush()
    assert len(capture.spans("text_completion m1")) == 2 and len(capture.spans("text_completion m2")) == 1
    assert capture.metric_value(inf.OPERATION_DURATION, **{inf.REQUEST_MODEL: "m2"}) is not None


def test_with_nobody_listening_no_genai_span_or_point_is_built_and_a_listener_added_later_gets_them(
    tmp_path: Any,
) -> None:
    """A pipeline with no span processor and no metric reader: the call still queues its event (the
    sink's row), builds no span and records no histogram point (nothing would receive them); a span
    processor added later receives the GenAI spans of the calls after it."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import otel_tele

    telemetry = otel_tele.setup(
        local=True, data_dir=tmp_path, sinks=["postgres"], traces_exporter="none", logs_exporter="none",
        metrics_exporter="none",
    )  # fmt: skip
    try:
        assert not telemetry.spans_observed() and not telemetry.metrics_observed
        built: list[str] = []
        start_span = telemetry.tracer("otel_tele.inference").start_span

        def counting(name: str, *args: Any, **kwargs: Any) -> Any:
            built.append(name)
            return start_span(name, *args, **kwargs)

        telemetry.tracer("otel_tele.inference").start_span = counting  # type: ignore[method-assign]
        logger = TelemetryLogger(telemetry)
        assert logger.record_thought("m", 1.0, 10, 5) and logger.record_load("m", 2.0)
        assert built == []
        memory = InMemorySpanExporter()
        telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(memory))
        assert telemetry.spans_observed()
        assert logger.record_thought("m", 1.0, 10, 5)
        assert built == ["text_completion m"]
        assert [span.name for span in memory.get_finished_spans()] == ["text_completion m"]
        assert telemetry.force_flush(10_000)
        stats = next(s for s in telemetry.sink_stats() if s.sink == "events")
        assert stats.emitted == 3 and stats.dropped == stats.failed == 0
    finally:
        telemetry.shutdown(10_000)


def test_a_pipeline_with_a_reader_records_the_genai_points(capture: testing.Capture) -> None:
    assert capture.telemetry.metrics_observed and capture.telemetry.spans_observed()
    TelemetryLogger(capture.telemetry).record_thought("m", 1.0, 10, 5)
    capture.flush()
    assert capture.metric_points(inf.OPERATION_DURATION) and capture.spans("text_completion m")
